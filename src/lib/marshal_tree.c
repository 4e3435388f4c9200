/*
 * marshal_tree.c — the marshal object model: parse a cache file's body into
 * a tree, write it back byte for byte, rewrite it into a canonical form,
 * compare two trees structurally (include/pycache.h, section 7b).
 *
 * The objects are read by marshal.c's walk, the one reader of the stream,
 * through a sink (struct lib_marshal_sink, src/lib/internal.h): the walk
 * applies every rule of the version's marshal.loads (r_object's and
 * PyCode_New's: see marshal.c) and, for each object, hands this module a
 * node that keeps every detail of its encoding (the type code, FLAG_REF, a
 * small tuple's one-byte size, interned or not, the slot it fills or a
 * back-reference names), so pyc_marshal_write reproduces the stream
 * exactly. A tree therefore exists only for a body marshal.loads accepts
 * (or, for 3.4 and 3.5, one r_object accepts). The slot numbering this
 * module's normalize relies on (pre-order of the flagged objects) is
 * described there.
 *
 * Nodes live in an arena owned by the tree; a body of N bytes has at most N
 * nodes (each takes at least its type byte), and item arrays grow with the
 * items read, so memory is linear. A tree is at most 2000 levels deep
 * (r_object's MAX_MARSHAL_STACK_DEPTH, which the walk enforces), which
 * bounds the recursion of writing and normalizing; canonical keys and
 * comparing follow refs, and carry their own bounds.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"
#include "lib/internal.h"

#define MAX_DEPTH 2000
#define FLAG_REF 0x80

struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
};

struct pyc_marshal_tree {
    unsigned char *body;      /* private copy of the parsed bytes */
    size_t len;
    size_t end;               /* where the top object ended */
    pyc_object *root;
    pyc_object **slots;       /* 3.4+: p->refs; NULL while reserved */
    size_t nslots, capslots;
    pyc_object **strings;     /* 2.7: p->strings */
    size_t nstrings;
    struct block *blocks;
    bool py2, refs;
    int minor;
    const pyc_magic *magic;
    enum lib_code_layout layout;
    const char *fields;       /* marshal.c's layout: 'L' an r_long, any
                                 other character an object field */
    const char *const *field_names;
    bool past_end;            /* 2.7 read EOF bytes as a long's last bytes:
                                 the written stream is cut at len */
};

/* ---- arena ------------------------------------------------------------- */

static void *arena_alloc(pyc_marshal_tree *t, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct block *b = t->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = t->blocks;
        b->used = 0;
        b->cap = cap;
        t->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

/* ---- parse: the walk of marshal.c with this module's sink ------------------ */

static void *tree_alloc(void *ctx, size_t size)
{
    return arena_alloc(ctx, size);
}

void pyc_marshal_tree_free(pyc_marshal_tree *t)
{
    if (!t)
        return;
    struct block *b = t->blocks;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(t->slots);
    free(t->strings);
    free(t->body);
    free(t);
}

pyc_marshal_tree *pyc_marshal_parse(const pyc_magic *m, const void *body,
                                    size_t len, pyc_marshal_status *status,
                                    size_t *offset)
{
    if (status)
        *status = PYC_MARSHAL_UNCHECKED;
    if (offset)
        *offset = 0;
    if (!body && len) {
        errno = EINVAL;
        return NULL;
    }
    pyc_marshal_tree *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    struct lib_marshal_format fmt;
    if (lib_marshal_format(m, &fmt) < 0) {
        free(t);
        errno = m ? ENOTSUP : EINVAL;
        return NULL;
    }
    t->py2 = fmt.py2;
    t->refs = fmt.refs;
    t->minor = fmt.minor;
    t->magic = m;
    t->layout = fmt.layout;
    t->fields = fmt.fields;
    t->field_names = fmt.names;
    t->body = malloc(len ? len : 1);
    if (!t->body) {
        free(t);
        return NULL;
    }
    if (len)
        memcpy(t->body, body, len);
    t->len = len;

    /* The walk reads the private copy, so the nodes point into it. */
    struct lib_marshal_sink sink = {.alloc = tree_alloc, .ctx = t};
    size_t at = 0;
    pyc_marshal_status st = lib_marshal_walk(m, t->body, len, &sink, &at);
    t->slots = sink.slots;
    t->nslots = sink.nslots;
    t->capslots = sink.capslots;
    t->strings = sink.strings;
    t->nstrings = sink.nstrings;
    if (st != PYC_MARSHAL_OK && st != PYC_MARSHAL_NOT_CODE) {
        int err = st == PYC_MARSHAL_UNCHECKED ? errno : EINVAL;
        if (status)
            *status = st;
        if (offset && st != PYC_MARSHAL_UNCHECKED)
            *offset = at;
        pyc_marshal_tree_free(t);
        errno = err;
        return NULL;
    }
    t->root = sink.root;
    t->end = sink.end;
    t->past_end = sink.past_end;
    if (status)
        *status = st;
    return t;
}

const pyc_magic *pyc_marshal_magic(const pyc_marshal_tree *t)
{
    return t ? t->magic : NULL;
}

const pyc_object *pyc_marshal_root(const pyc_marshal_tree *t)
{
    return t ? t->root : NULL;
}

const pyc_object *pyc_marshal_resolve(const pyc_marshal_tree *t,
                                      const pyc_object *o)
{
    /* A slot always holds a non-REF object (REF takes no slot), so one
     * step suffices. */
    if (o && o->type == 'r' && t->refs && o->ref >= 0 &&
        (size_t)o->ref < t->nslots && t->slots[o->ref])
        return t->slots[o->ref];
    if (o && o->type == 'R' && t->py2 && o->ref >= 0 &&
        (size_t)o->ref < t->nstrings)
        return t->strings[o->ref];
    return o;
}

const char *pyc_marshal_code_field_name(const pyc_marshal_tree *t, size_t i)
{
    if (!t || i >= strlen(t->fields))
        return NULL;
    return t->field_names[i];
}

int pyc_marshal_code(const pyc_marshal_tree *t, const pyc_object *o,
                     pyc_code *out)
{
    memset(out, 0, sizeof *out);
    if (!t || !o || o->type != 'c' || o->is_null ||
        o->nlongs + o->count != strlen(t->fields)) {
        errno = EINVAL;
        return -1;
    }
    const pyc_object *const *it = (const pyc_object *const *)o->items;
    const int32_t *L = o->longs;
#define R(i) pyc_marshal_resolve(t, it[i])
    switch (t->layout) {
    case LIB_CODE_27:
        out->argcount = L[0];
        out->nlocals = L[1];
        out->stacksize = L[2];
        out->flags = L[3];
        out->firstlineno = L[4];
        out->has_nlocals = true;
        break;
    case LIB_CODE_36:
        out->argcount = L[0];
        out->kwonlyargcount = L[1];
        out->nlocals = L[2];
        out->stacksize = L[3];
        out->flags = L[4];
        out->firstlineno = L[5];
        out->has_nlocals = true;
        break;
    case LIB_CODE_38:
        out->argcount = L[0];
        out->posonlyargcount = L[1];
        out->kwonlyargcount = L[2];
        out->nlocals = L[3];
        out->stacksize = L[4];
        out->flags = L[5];
        out->firstlineno = L[6];
        out->has_nlocals = true;
        out->has_posonlyargcount = true;
        break;
    case LIB_CODE_311:
        out->argcount = L[0];
        out->posonlyargcount = L[1];
        out->kwonlyargcount = L[2];
        out->stacksize = L[3];
        out->flags = L[4];
        out->firstlineno = L[5];
        out->has_posonlyargcount = true;
        out->code = R(0);
        out->consts = R(1);
        out->names = R(2);
        out->localsplusnames = R(3);
        out->localspluskinds = R(4);
        out->filename = R(5);
        out->name = R(6);
        out->qualname = R(7);
        out->linetable = R(8);
        out->exceptiontable = R(9);
        return 0;
    }
    out->code = R(0);
    out->consts = R(1);
    out->names = R(2);
    out->varnames = R(3);
    out->freevars = R(4);
    out->cellvars = R(5);
    out->filename = R(6);
    out->name = R(7);
    out->linetable = R(8);
#undef R
    return 0;
}

/* ---- writer ------------------------------------------------------------ */

struct out {
    unsigned char *p;
    size_t len, cap;
    size_t limit;   /* stop (fail) past this many bytes; 0: none */
    bool failed;
    bool nomem;     /* failed for want of memory (not the limit) */
};

static void put(struct out *w, const void *s, size_t n)
{
    if (w->failed)
        return;
    if (w->limit && w->len + n > w->limit) {
        w->failed = true;
        return;
    }
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n)
            cap *= 2;
        unsigned char *q = realloc(w->p, cap);
        if (!q) {
            w->failed = true;
            w->nomem = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_byte(struct out *w, unsigned b)
{
    unsigned char c = (unsigned char)b;
    put(w, &c, 1);
}

static void put_long(struct out *w, uint32_t v)
{
    unsigned char b[4];
    lib_store_le32(b, v);
    put(w, b, 4);
}

static void write_object(const pyc_marshal_tree *t, const pyc_object *o,
                         struct out *w)
{
    put_byte(w, o->type | (o->flag_ref ? FLAG_REF : 0));
    switch (o->type) {
    case 'i':
        put_long(w, (uint32_t)o->value);
        return;
    case 'I': {
        unsigned char b[8];
        lib_store_le64(b, (uint64_t)o->value);
        put(w, b, 8);
        return;
    }
    case 'l':
        put_long(w, (uint32_t)o->value);
        put(w, o->data, o->size);
        return;
    case 'f':
    case 'z':
    case 'Z':
        put_byte(w, (unsigned)o->size);
        put(w, o->data, o->size);
        return;
    case 'x': case 'g': case 'y':
        put(w, o->data, o->size);
        return;
    case 's': case 't': case 'u': case 'a': case 'A':
        put_long(w, (uint32_t)o->size);
        put(w, o->data, o->size);
        return;
    case 'R': case 'r':
        put_long(w, (uint32_t)o->ref);
        return;
    case ')':
        put_byte(w, (unsigned)o->count);
        break;
    case '(': case '[': case '<': case '>':
        put_long(w, (uint32_t)o->count);
        break;
    case '{': case ':':
        break;
    case 'c': {
        size_t li = 0, oi = 0;
        for (const char *f = t->fields; *f; f++) {
            if (*f == 'L') {
                if (li >= o->nlongs)
                    return;
                put_long(w, (uint32_t)o->longs[li++]);
            } else {
                if (oi >= o->count)
                    return;
                write_object(t, o->items[oi++], w);
            }
        }
        return;
    }
    default: /* singletons and NULL */
        return;
    }
    for (size_t i = 0; i < o->count; i++)
        write_object(t, o->items[i], w);
}

int pyc_marshal_write(const pyc_marshal_tree *t, unsigned char **out,
                      size_t *len)
{
    struct out w = {0};
    *out = NULL;
    *len = 0;
    write_object(t, t->root, &w);
    /* What followed the top object (marshal.loads ignores it). */
    put(&w, t->body + t->end, t->len - t->end);
    /* A 2.7 body that ended inside a long (r_long reads EOF as bytes and
     * goes on; only a non-code top object survives that): the long was
     * written whole, the body did not have its last bytes. 2.7 trees are
     * never rewritten (no normalize), so the cut gives the body back. */
    if (t->past_end && !w.failed && w.len > t->len)
        w.len = t->len;
    if (w.failed) {
        free(w.p);
        errno = ENOMEM;
        return -1;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

/* ---- canonical keys ------------------------------------------------------ */

/* The canonical bytes of O, for ordering set items and comparing them:
 * refs followed, FLAG_REF dropped, every str type written as 'u', every
 * tuple as '(' with a 4-byte size. Fails (w->failed) past w->limit bytes or
 * MAX_DEPTH levels, which bounds self-referencing input. */
static void key_object(const pyc_marshal_tree *t, const pyc_object *o,
                       struct out *w, int depth)
{
    if (depth > MAX_DEPTH) {
        w->failed = true;
        return;
    }
    if (w->failed)
        return;
    o = pyc_marshal_resolve(t, o);
    int type = o->type;
    switch (type) {
    case 't':
        type = t->py2 ? 's' : 'u';
        break;
    case 'a': case 'A': case 'z': case 'Z':
        type = 'u';
        break;
    case ')':
        type = '(';
        break;
    }
    switch (type) {
    case 'u': case 's':
        put_byte(w, (unsigned)type);
        put_long(w, (uint32_t)o->size);
        put(w, o->data, o->size);
        return;
    case '(': case '[': case '<': case '>': case '{': case ':':
        put_byte(w, (unsigned)type);
        put_long(w, (uint32_t)o->count);
        for (size_t i = 0; i < o->count; i++)
            key_object(t, o->items[i], w, depth + 1);
        return;
    case 'c': {
        put_byte(w, (unsigned)type);
        size_t li = 0, oi = 0;
        for (const char *f = t->fields; *f; f++) {
            if (*f == 'L' && li < o->nlongs)
                put_long(w, (uint32_t)o->longs[li++]);
            else if (*f != 'L' && oi < o->count)
                key_object(t, o->items[oi++], w, depth + 1);
        }
        return;
    }
    default: {
        /* Scalars and singletons: their own encoding, without FLAG_REF. */
        pyc_object copy = *o;
        copy.flag_ref = false;
        write_object(t, &copy, w);
        return;
    }
    }
}

struct keyed {
    pyc_object *item;
    unsigned char *key;
    size_t len;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Keys for ITEMS[0..N). Returns 0; 1 when some key is too big to make
 * (hostile input: then the order is left alone); -1 on ENOMEM. */
#define KEY_LIMIT (1u << 20)
static int make_keys(const pyc_marshal_tree *t, pyc_object *const *items,
                     size_t n, struct keyed *k)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct out w = {.limit = KEY_LIMIT};
        key_object(t, items[i], &w, 0);
        k[i].item = items[i];
        k[i].key = w.p;
        k[i].len = w.len;
        if (w.nomem) {
            for (size_t j = i + 1; j < n; j++)
                k[j].key = NULL;
            return -1;
        }
        if (w.failed)
            rc = 1;
    }
    return rc;
}

static void free_keys(struct keyed *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].key);
}

/* ---- normalize ------------------------------------------------------------ */

struct norm {
    pyc_marshal_tree *t;
    bool *used;          /* old slot -> a REF names it */
    int32_t *renum;      /* old slot -> new slot */
    uint32_t *stamp;     /* old slot -> set-check generation */
    uint32_t gen;
    pyc_object **newslots;
    size_t nnew;
    bool changed;
    bool nomem;
};

/* Marks the slots defined under O with the current generation. */
static void mark_defs(struct norm *n, const pyc_object *o)
{
    if (o->ref >= 0 && o->type != 'r' && o->type != 'R')
        n->stamp[o->ref] = n->gen;
    for (size_t i = 0; i < o->count; i++)
        mark_defs(n, o->items[i]);
}

/* Whether a REF under O names a slot of the current generation: one
 * defined under the same set's items, which reordering could put after the
 * REF. */
static bool refs_marked(struct norm *n, const pyc_object *o)
{
    if (o->type == 'r')
        return n->stamp[o->ref] == n->gen;
    for (size_t i = 0; i < o->count; i++)
        if (refs_marked(n, o->items[i]))
            return true;
    return false;
}

static void sort_sets(struct norm *n, pyc_object *o)
{
    for (size_t i = 0; i < o->count && !n->nomem; i++)
        sort_sets(n, o->items[i]);
    if ((o->type != '<' && o->type != '>') || o->count < 2 || n->nomem)
        return;
    n->gen++;
    for (size_t i = 0; i < o->count; i++)
        mark_defs(n, o->items[i]);
    for (size_t i = 0; i < o->count; i++)
        if (refs_marked(n, o->items[i]))
            return;
    struct keyed *k = calloc(o->count, sizeof *k);
    if (!k) {
        n->nomem = true;
        return;
    }
    int rc = make_keys(n->t, o->items, o->count, k);
    if (rc < 0)
        n->nomem = true;
    if (rc == 0) {
        qsort(k, o->count, sizeof *k, keyed_cmp);
        for (size_t i = 0; i < o->count; i++) {
            if (o->items[i] != k[i].item)
                n->changed = true;
            o->items[i] = k[i].item;
        }
    }
    free_keys(k, o->count);
    free(k);
}

static void renumber(struct norm *n, pyc_object *o)
{
    if (o->type == 'r') {
        int32_t r = n->renum[o->ref];
        if (r != o->ref)
            n->changed = true;
        o->ref = r;
        return;
    }
    if (o->flag_ref) {
        bool keep = o->ref >= 0 && n->used[o->ref];
        if (keep) {
            n->renum[o->ref] = (int32_t)n->nnew;
            if (o->ref != (int32_t)n->nnew)
                n->changed = true;
            o->ref = (int32_t)n->nnew;
            n->newslots[n->nnew++] = o;
        } else {
            o->flag_ref = false;
            o->ref = -1;
            n->changed = true;
        }
    }
    for (size_t i = 0; i < o->count; i++)
        renumber(n, o->items[i]);
}

static void mark_used(struct norm *n, const pyc_object *o)
{
    if (o->type == 'r')
        n->used[o->ref] = true;
    for (size_t i = 0; i < o->count; i++)
        mark_used(n, o->items[i]);
}

int pyc_marshal_normalize(pyc_marshal_tree *t)
{
    /* 2.7 has no FLAG_REF; its 'R' string refs count TYPE_INTERNED strings
     * in stream order, and its sets are left as they are. */
    if (t->py2)
        return 0;
    struct norm n = {.t = t};
    size_t ns = t->nslots ? t->nslots : 1;
    n.used = calloc(ns, sizeof *n.used);
    n.renum = calloc(ns, sizeof *n.renum);
    n.stamp = calloc(ns, sizeof *n.stamp);
    n.newslots = calloc(ns, sizeof *n.newslots);
    if (!n.used || !n.renum || !n.stamp || !n.newslots) {
        n.nomem = true;
        goto out;
    }
    /* From 3.11 marshal writes set items sorted by their own marshalled
     * bytes (w_complex_object, bpo-37596): already deterministic, and in an
     * order this must not undo. */
    if (t->minor <= 10)
        sort_sets(&n, t->root);
    if (n.nomem)
        goto out;
    mark_used(&n, t->root);
    renumber(&n, t->root);
    free(t->slots);
    t->slots = n.newslots;
    t->nslots = n.nnew;
    t->capslots = ns;
    n.newslots = NULL;
out:
    free(n.used);
    free(n.renum);
    free(n.stamp);
    free(n.newslots);
    if (n.nomem) {
        errno = ENOMEM;
        return -1;
    }
    return n.changed ? 1 : 0;
}

/* ---- compare ---------------------------------------------------------------- */

struct cmp {
    const pyc_marshal_tree *a, *b;
    unsigned flags;
    char *path;
    size_t size;
    size_t len;        /* current path length */
    uint64_t budget;   /* node visits left: refs make a DAG, and a hostile
                          one is exponential when unfolded */
    int err;
};

/* Appends a field name (S), or an index I in brackets: [I] for sequence
 * items, {I} for set items in canonical order (BRACE). */
static void path_push(struct cmp *c, int brace, const char *s, size_t i)
{
    if (!c->size)
        return;
    char buf[96];
    int k;
    if (s)
        k = snprintf(buf, sizeof buf, "%s%s", c->len ? "." : "", s);
    else if (brace)
        k = snprintf(buf, sizeof buf, "{%zu}", i);
    else
        k = snprintf(buf, sizeof buf, "[%zu]", i);
    if (k < 0)
        return;
    size_t room = c->size - 1 - (c->len < c->size - 1 ? c->len : c->size - 1);
    size_t m = (size_t)k < room ? (size_t)k : room;
    if (c->len < c->size - 1)
        memcpy(c->path + c->len, buf, m);
    c->len += (size_t)k;
    c->path[c->len < c->size - 1 ? c->len : c->size - 1] = 0;
}

static void path_pop(struct cmp *c, size_t len)
{
    c->len = len;
    if (c->size)
        c->path[len < c->size - 1 ? len : c->size - 1] = 0;
}

/* The class an object compares in: str, bytes, int, tuple, or its type. */
static int cmp_class(const pyc_marshal_tree *t, int type)
{
    switch (type) {
    case 't':
        return t->py2 ? 's' : 'u';
    case 'a': case 'A': case 'z': case 'Z':
        return 'u';
    case ')':
        return '(';
    case 'I': case 'l':
        return 'i';
    default:
        return type;
    }
}

/* An int object as sign and 15-bit digits (r_PyLong's base). */
static size_t int_digits(const pyc_object *o, int *sign, uint16_t *d,
                         size_t max, const unsigned char **raw)
{
    *raw = NULL;
    if (o->type == 'l') {
        *sign = o->value < 0 ? -1 : o->value > 0;
        *raw = o->data;
        return o->size / 2;
    }
    int64_t v = o->value;
    *sign = v < 0 ? -1 : v > 0;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    while (m && n < max) {
        d[n++] = (uint16_t)(m & 0x7FFF);
        m >>= 15;
    }
    return n;
}

static int int_equal(const pyc_object *x, const pyc_object *y)
{
    if (x->type == y->type && x->type != 'l')
        return x->value == y->value;
    int sx, sy;
    uint16_t dx[8], dy[8];
    const unsigned char *rx, *ry;
    size_t nx = int_digits(x, &sx, dx, 8, &rx);
    size_t ny = int_digits(y, &sy, dy, 8, &ry);
    if (sx != sy || nx != ny)
        return 0;
    for (size_t i = 0; i < nx; i++) {
        unsigned a = rx ? (unsigned)(rx[2 * i] | rx[2 * i + 1] << 8) : dx[i];
        unsigned b = ry ? (unsigned)(ry[2 * i] | ry[2 * i + 1] << 8) : dy[i];
        if (a != b)
            return 0;
    }
    return 1;
}

static int compare_object(struct cmp *c, const pyc_object *x,
                          const pyc_object *y, int depth);

static int compare_items(struct cmp *c, pyc_object *const *xi,
                         pyc_object *const *yi, size_t n, int depth)
{
    size_t len = c->len;
    for (size_t i = 0; i < n; i++) {
        path_push(c, 0, NULL, i);
        int r = compare_object(c, xi[i], yi[i], depth + 1);
        if (r)
            return r;
        path_pop(c, len);
    }
    return 0;
}

/* Set items in canonical order, so hash order does not matter. */
static int compare_sets(struct cmp *c, const pyc_object *x,
                        const pyc_object *y, int depth)
{
    size_t n = x->count;
    struct keyed *kx = calloc(n ? n : 1, sizeof *kx);
    struct keyed *ky = calloc(n ? n : 1, sizeof *ky);
    int r = -1;
    if (!kx || !ky) {
        c->err = ENOMEM;
        goto out;
    }
    int rx = make_keys(c->a, x->items, n, kx);
    int ry = make_keys(c->b, y->items, n, ky);
    if (rx < 0 || ry < 0) {
        c->err = ENOMEM;
        goto out;
    }
    if (rx > 0 || ry > 0) {
        c->err = ELOOP;
        goto out;
    }
    qsort(kx, n, sizeof *kx, keyed_cmp);
    qsort(ky, n, sizeof *ky, keyed_cmp);
    size_t len = c->len;
    r = 0;
    for (size_t i = 0; i < n && !r; i++) {
        path_push(c, 1, NULL, i);
        r = compare_object(c, kx[i].item, ky[i].item, depth + 1);
        if (!r)
            path_pop(c, len);
    }
out:
    if (kx)
        free_keys(kx, n);
    if (ky)
        free_keys(ky, n);
    free(kx);
    free(ky);
    return r;
}

static int compare_object(struct cmp *c, const pyc_object *x,
                          const pyc_object *y, int depth)
{
    if (c->budget-- == 0 || depth > 4 * MAX_DEPTH) {
        c->err = ELOOP;
        return -1;
    }
    x = pyc_marshal_resolve(c->a, x);
    y = pyc_marshal_resolve(c->b, y);
    int kx = cmp_class(c->a, x->type), ky = cmp_class(c->b, y->type);
    if (kx != ky || x->is_null != y->is_null)
        return 1;
    switch (kx) {
    case 'i':
        return !int_equal(x, y);
    case 'u': case 's': case 'f': case 'g': case 'x': case 'y':
        return x->size != y->size || memcmp(x->data, y->data, x->size) != 0;
    case '(': case '[': case '{': case ':':
        if (x->count != y->count)
            return 1;
        return compare_items(c, x->items, y->items, x->count, depth);
    case '<': case '>':
        if (x->count != y->count)
            return 1;
        return compare_sets(c, x, y, depth);
    case 'c': {
        if (x->count != y->count || x->nlongs != y->nlongs)
            return 1;
        size_t li = 0, oi = 0, len = c->len;
        const char *f = c->a->fields;
        for (size_t i = 0; f[i]; i++) {
            const char *name = c->a->field_names[i];
            if (f[i] == 'L') {
                if (li >= x->nlongs)
                    break;
                if (x->longs[li] != y->longs[li]) {
                    path_push(c, 0, name, 0);
                    return 1;
                }
                li++;
                continue;
            }
            if (oi >= x->count)
                break;
            if ((c->flags & PYC_COMPARE_IGNORE_FILENAME) &&
                strcmp(name, "co_filename") == 0) {
                oi++;
                continue;
            }
            path_push(c, 0, name, 0);
            int r = compare_object(c, x->items[oi], y->items[oi], depth + 1);
            if (r)
                return r;
            path_pop(c, len);
            oi++;
        }
        return 0;
    }
    default:
        return 0; /* singletons, NULL */
    }
}

int pyc_marshal_compare(const pyc_marshal_tree *a, const pyc_marshal_tree *b,
                        unsigned flags, char *path, size_t path_size)
{
    struct cmp c = {
        .a = a, .b = b, .flags = flags, .path = path, .size = path_size,
        .budget = 64 * (uint64_t)(a->len + b->len) + 1000000,
    };
    if (path_size)
        path[0] = 0;
    if (a->layout != b->layout) {
        /* Different code-object layouts: not the same code. */
        return 1;
    }
    int r = compare_object(&c, a->root, b->root, 0);
    if (r < 0) {
        errno = c.err ? c.err : ENOMEM;
        return -1;
    }
    if (r == 0 && path_size)
        path[0] = 0;
    return r;
}
