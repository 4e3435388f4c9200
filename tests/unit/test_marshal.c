/*
 * test_marshal.c — pyc_marshal_validate on hand-made bodies: each type code,
 * each failure status, every truncation of real bodies. Every body checked
 * through V() is parsed too, which must agree (one reader, two ways). The bodies below
 * follow Python/marshal.c's format; the integration test
 * (tests/integration/test_marshal.py) compares with the real interpreters.
 */
#include <errno.h>

#include "unit.h"

static const pyc_magic *M(int major, int minor)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    assert_non_null(m);
    return m;
}

/* Validates B, and checks the other way of the one reader on it: parsing
 * (the same walk with the tree sink) gives the same status and offset, a
 * tree exactly for OK and NOT_CODE, which writes B back byte for byte. */
static pyc_marshal_status V(int major, int minor, const void *b, size_t n)
{
    size_t off = 99, poff = 99;
    pyc_marshal_status st = pyc_marshal_validate(M(major, minor), b, n, &off);
    pyc_marshal_status pst = PYC_MARSHAL_OK;
    pyc_marshal_tree *t = pyc_marshal_parse(M(major, minor), b, n, &pst, &poff);
    assert_int_equal(pst, st);
    assert_int_equal(poff, off);
    if (st == PYC_MARSHAL_OK || st == PYC_MARSHAL_NOT_CODE) {
        assert_non_null(t);
        unsigned char *out;
        size_t len;
        assert_int_equal(pyc_marshal_write(t, &out, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, b, n);
        free(out);
        pyc_marshal_tree_free(t);
    } else {
        assert_null(t);
        assert_int_equal(errno, EINVAL);
    }
    return st;
}

#define VS(maj, min, lit) V(maj, min, lit, sizeof(lit) - 1)

/* Growable byte buffer for building bodies. */
struct buf {
    unsigned char d[8192];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put_byte(struct buf *b, int c)
{
    unsigned char x = (unsigned char)c;
    put(b, &x, 1);
}

static void put_long(struct buf *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char x[4] = {(unsigned char)u, (unsigned char)(u >> 8),
                          (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
    put(b, x, 4);
}

static void put_str(struct buf *b, int type, const char *s, size_t n)
{
    put_byte(b, type);
    put_long(b, (int32_t)n);
    put(b, s, n);
}

/* Options of a hand-made code object. */
struct code_opts {
    int32_t argcount, posonly, kwonly, nlocals, stacksize, flags;
    const char *co_code;
    size_t co_code_len;
    int names_nonstr;      /* put an int into co_names */
    int null_field;        /* put TYPE_NULL as co_consts */
    int nvarnames;         /* varnames / localsplusnames (all CO_FAST_LOCAL) */
    int kinds_mismatch;    /* 3.11+: one kind byte fewer than names */
};

/* A code object in the layout of MAJOR.MINOR's TYPE_CODE reader. */
static void put_code(struct buf *b, int major, int minor, const struct code_opts *o)
{
    int py2 = major == 2;
    int s = py2 ? 's' : 'u';   /* a str of that version */
    put_byte(b, 'c');
    put_long(b, o->argcount);
    if (py2) {
        put_long(b, o->nlocals);
    } else if (minor >= 11) {
        put_long(b, o->posonly);
        put_long(b, o->kwonly);
    } else {
        if (minor >= 8)
            put_long(b, o->posonly);
        put_long(b, o->kwonly);
        put_long(b, o->nlocals);
    }
    put_long(b, o->stacksize);
    put_long(b, o->flags);
    put_str(b, 's', o->co_code ? o->co_code : "d\0S\0", o->co_code ? o->co_code_len : 4);
    if (o->null_field) {
        put_byte(b, '0');
        return;
    }
    put_byte(b, '(');            /* co_consts: (None,) */
    put_long(b, 1);
    put_byte(b, 'N');
    put_byte(b, '(');            /* co_names */
    put_long(b, o->names_nonstr ? 1 : 0);
    if (o->names_nonstr) {
        put_byte(b, 'i');
        put_long(b, 7);
    }
    put_byte(b, '(');            /* co_varnames / co_localsplusnames */
    put_long(b, o->nvarnames);
    for (int i = 0; i < o->nvarnames; i++)
        put_str(b, s, "v", 1);
    if (!py2 && minor >= 11) {
        int nk = o->nvarnames - (o->kinds_mismatch ? 1 : 0);
        put_byte(b, 's');        /* co_localspluskinds: CO_FAST_LOCAL */
        put_long(b, nk);
        for (int i = 0; i < nk; i++)
            put_byte(b, 0x20);
    } else {
        put_byte(b, '(');        /* co_freevars */
        put_long(b, 0);
        put_byte(b, '(');        /* co_cellvars */
        put_long(b, 0);
    }
    put_str(b, s, "m.py", 4);    /* co_filename */
    put_str(b, s, "<module>", 8); /* co_name */
    if (!py2 && minor >= 11)
        put_str(b, s, "<module>", 8); /* co_qualname */
    put_long(b, 1);              /* co_firstlineno */
    put_str(b, 's', "", 0);      /* co_lnotab / co_linetable */
    if (!py2 && minor >= 11)
        put_str(b, 's', "", 0);  /* co_exceptiontable */
}

static const int versions[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13},
};
#define NVERSIONS (sizeof versions / sizeof versions[0])

static pyc_marshal_status code_status(int major, int minor, const struct code_opts *o)
{
    struct buf b = {.n = 0};
    put_code(&b, major, minor, o);
    return V(major, minor, b.d, b.n);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_minimal_code_every_version(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVERSIONS; i++) {
        struct code_opts o = {0};
        assert_int_equal(code_status(versions[i][0], versions[i][1], &o),
                         PYC_MARSHAL_OK);
    }
}

static void test_scalars_are_not_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVERSIONS; i++) {
        int a = versions[i][0], b = versions[i][1];
        assert_int_equal(VS(a, b, "N"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "T"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "F"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "S"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "."), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "i\1\0\0\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "I\1\0\0\0\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "l\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "l\2\0\0\0\1\0\1\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "l\376\377\377\377\1\0\1\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "f\0031.5"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "f\004-inF"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "f\0051e+10"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "f\0051.5\0x"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "x\0011\003nan"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "g\0\0\0\0\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "y\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
                         PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "s\3\0\0\0abc"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "t\3\0\0\0abc"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "u\3\0\0\0\xe2\x82\xac"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "u\3\0\0\0\xed\xa0\x80"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "(\2\0\0\0NN"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "[\1\0\0\0N"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "{NN0"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, "<\1\0\0\0N"), PYC_MARSHAL_NOT_CODE);
        assert_int_equal(VS(a, b, ">\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
    }
}

static void test_version_specific_codes(void **state)
{
    (void)state;
    /* 3.4+ only: short strings, small tuples, refs. */
    assert_int_equal(VS(3, 6, "z\2ab"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 6, "Z\2ab"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 6, "a\2\0\0\0ab"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 6, "A\2\0\0\0\xff\xfe"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 6, ")\1N"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 6, "(\2\0\0\0\xe9\1\0\0\0r\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(2, 7, "z\2ab"), PYC_MARSHAL_BAD_TYPE);
    assert_int_equal(VS(2, 7, ")\0"), PYC_MARSHAL_BAD_TYPE);
    assert_int_equal(VS(2, 7, "r\0\0\0\0"), PYC_MARSHAL_BAD_TYPE);
    assert_int_equal(VS(2, 7, "\xe9\1\0\0\0"), PYC_MARSHAL_BAD_TYPE);
    /* 2.7 only: interned-string refs. */
    assert_int_equal(VS(2, 7, "(\2\0\0\0t\1\0\0\0aR\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(2, 7, "(\2\0\0\0s\1\0\0\0aR\0\0\0\0"), PYC_MARSHAL_BAD_REF);
    assert_int_equal(VS(3, 11, "R\0\0\0\0"), PYC_MARSHAL_BAD_TYPE);
    /* TYPE_SLICE is 3.14's. */
    assert_int_equal(VS(3, 13, ":NNN"), PYC_MARSHAL_BAD_TYPE);
    const pyc_magic *m314 = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 14);
    if (m314)
        assert_int_equal(pyc_marshal_validate(m314, ":NNN", 4, NULL),
                         PYC_MARSHAL_NOT_CODE);
    /* 2.7's UTF-8 is strict, 3.x's 'surrogatepass': both take surrogates,
     * neither takes overlong forms. 3.x ASCII codes take any byte. */
    assert_int_equal(VS(2, 7, "u\2\0\0\0\xc0\x80"), PYC_MARSHAL_BAD_VALUE);
    assert_int_equal(VS(3, 9, "u\2\0\0\0\xc0\x80"), PYC_MARSHAL_BAD_VALUE);
    assert_int_equal(VS(3, 9, "t\1\0\0\0\xff"), PYC_MARSHAL_BAD_VALUE);
    assert_int_equal(VS(2, 7, "t\1\0\0\0\xff"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(3, 9, "u\4\0\0\0\xf4\x90\x80\x80"), PYC_MARSHAL_BAD_VALUE);
}

static void test_unknown_codes(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVERSIONS; i++) {
        int a = versions[i][0], b = versions[i][1];
        assert_int_equal(VS(a, b, "?"), PYC_MARSHAL_BAD_TYPE);
        assert_int_equal(VS(a, b, "q"), PYC_MARSHAL_BAD_TYPE);
        assert_int_equal(VS(a, b, "\xbf"), PYC_MARSHAL_BAD_TYPE);
        assert_int_equal(VS(a, b, "(\1\0\0\0!"), PYC_MARSHAL_BAD_TYPE);
    }
}

static void test_empty_and_truncated(void **state)
{
    (void)state;
    size_t off = 99;
    assert_int_equal(pyc_marshal_validate(M(3, 11), "", 0, &off), PYC_MARSHAL_EMPTY);
    for (size_t i = 0; i < NVERSIONS; i++) {
        int a = versions[i][0], b = versions[i][1];
        assert_int_equal(VS(a, b, "s\5\0\0\0abc"), PYC_MARSHAL_TRUNCATED);
        assert_int_equal(VS(a, b, "(\2\0\0\0N"), PYC_MARSHAL_TRUNCATED);
        assert_int_equal(VS(a, b, "{N"), PYC_MARSHAL_TRUNCATED);
        assert_int_equal(VS(a, b, "g\0\0\0"), PYC_MARSHAL_TRUNCATED);
        assert_int_equal(VS(a, b, "f\5ab"), PYC_MARSHAL_TRUNCATED);
    }
    /* 3.x r_long fails at EOF; 2.7 reads EOF bytes and goes on. */
    assert_int_equal(VS(3, 8, "i\1\0"), PYC_MARSHAL_TRUNCATED);
    assert_int_equal(VS(2, 7, "i\1\0"), PYC_MARSHAL_NOT_CODE);
    /* ... but 2.7's r_short makes a missing digit out of range. */
    assert_int_equal(VS(2, 7, "l\1\0\0\0\1"), PYC_MARSHAL_BAD_VALUE);
    off = 0;
    assert_int_equal(pyc_marshal_validate(M(3, 11), "(\2\0\0\0Ns", 7, &off),
                     PYC_MARSHAL_TRUNCATED);
    assert_int_equal(off, 6);
}

static void test_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVERSIONS; i++) {
        int a = versions[i][0], b = versions[i][1];
        /* negative sizes */
        assert_int_equal(VS(a, b, "s\377\377\377\377"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "(\377\377\377\377"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "[\0\0\0\200"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "<\0\0\0\200"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "u\377\377\377\377"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "l\0\0\0\200"), PYC_MARSHAL_BAD_VALUE);
        /* long digits: out of range, unnormalized */
        assert_int_equal(VS(a, b, "l\1\0\0\0\0\200"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "l\2\0\0\0\1\0\0\0"), PYC_MARSHAL_BAD_VALUE);
        /* float strings */
        assert_int_equal(VS(a, b, "f\4 1.5"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "f\0021e"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "f\1."), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "f\0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "f\0031_0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "x\0011\2in"), PYC_MARSHAL_BAD_VALUE);
        /* NULL where an object is needed */
        assert_int_equal(VS(a, b, "0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "(\1\0\0\0" "0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "[\1\0\0\0" "0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, ">\1\0\0\0" "0"), PYC_MARSHAL_BAD_VALUE);
        /* unhashable dict keys and set items */
        assert_int_equal(VS(a, b, "{[\0\0\0\0N0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, "<\1\0\0\0{0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, ">\1\0\0\0(\1\0\0\0[\0\0\0\0"), PYC_MARSHAL_BAD_VALUE);
        assert_int_equal(VS(a, b, ">\1\0\0\0(\1\0\0\0N"), PYC_MARSHAL_NOT_CODE);
    }
    /* A NULL dict value: 3.x ends the dict, 2.7 drops the pair. */
    assert_int_equal(VS(3, 10, "{[\0\0\0\0" "0"), PYC_MARSHAL_NOT_CODE);
    assert_int_equal(VS(2, 7, "{[\0\0\0\0" "0"), PYC_MARSHAL_TRUNCATED);
    assert_int_equal(VS(2, 7, "{[\0\0\0\0" "0" "0"), PYC_MARSHAL_NOT_CODE);
}

static void test_refs(void **state)
{
    (void)state;
    size_t off = 0;
    /* no such slot */
    assert_int_equal(pyc_marshal_validate(M(3, 11), "(\1\0\0\0r\0\0\0\0", 10, &off),
                     PYC_MARSHAL_BAD_REF);
    assert_int_equal(off, 5);
    assert_int_equal(VS(3, 11, "(\2\0\0\0\xe9\1\0\0\0r\1\0\0\0"), PYC_MARSHAL_BAD_REF);
    assert_int_equal(VS(3, 11, "(\1\0\0\0r\377\377\377\377"), PYC_MARSHAL_BAD_REF);
    /* a frozenset's slot holds None until it is complete */
    assert_int_equal(VS(3, 11, "\xbe\1\0\0\0r\0\0\0\0"), PYC_MARSHAL_BAD_REF);
    /* a tuple's slot is filled at once: it can hold itself */
    assert_int_equal(VS(3, 11, "\xa8\1\0\0\0r\0\0\0\0"), PYC_MARSHAL_NOT_CODE);
    /* ... but hashing it crashes CPython: not a set item */
    assert_int_equal(VS(3, 11, "\xa8\1\0\0\0<\1\0\0\0r\0\0\0\0"), PYC_MARSHAL_BAD_VALUE);
    /* FLAG_REF on a singleton reserves nothing */
    assert_int_equal(VS(3, 11, "(\2\0\0\0\xcer\0\0\0\0"), PYC_MARSHAL_BAD_REF);
    /* a code object's slot is reserved before its fields */
    struct buf b = {.n = 0};
    struct code_opts o = {0};
    put_byte(&b, '(');
    put_long(&b, 2);
    put_code(&b, 3, 11, &o);
    b.d[5] |= 0x80;
    put_byte(&b, 'r');
    put_long(&b, 0);
    assert_int_equal(V(3, 11, b.d, b.n), PYC_MARSHAL_NOT_CODE);
    struct buf c = {.n = 0};
    put_code(&c, 3, 11, &o);
    c.d[0] |= 0x80;
    assert_int_equal(V(3, 11, c.d, c.n), PYC_MARSHAL_OK);
}

static void test_depth(void **state)
{
    (void)state;
    static unsigned char b[2001 * 5 + 5];
    for (int depth = 2000; depth <= 2001; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth - 1; i++) {
            memcpy(b + n, "(\1\0\0\0", 5);
            n += 5;
        }
        memcpy(b + n, "(\0\0\0\0", 5);
        n += 5;
        for (size_t v = 0; v < NVERSIONS; v++)
            assert_int_equal(V(versions[v][0], versions[v][1], b, n),
                             depth == 2000 ? PYC_MARSHAL_NOT_CODE
                                           : PYC_MARSHAL_TOO_DEEP);
    }
}

static void test_code_checks(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVERSIONS; i++) {
        int a = versions[i][0], b = versions[i][1];
        struct code_opts o = {0};
        o.argcount = -1;
        assert_int_equal(code_status(a, b, &o), PYC_MARSHAL_BAD_VALUE);
        struct code_opts n = {0};
        n.names_nonstr = 1;
        assert_int_equal(code_status(a, b, &n), PYC_MARSHAL_BAD_VALUE);
        struct code_opts z = {0};
        z.null_field = 1; /* a silent NULL, then NULL at the top */
        assert_int_equal(code_status(a, b, &z), PYC_MARSHAL_BAD_VALUE);
        struct code_opts v = {0};
        v.argcount = 2;
        v.nvarnames = 2;
        v.nlocals = 2;
        assert_int_equal(code_status(a, b, &v), PYC_MARSHAL_OK);
        if (a == 3) {
            v.argcount = 3; /* "varnames is too small" */
            assert_int_equal(code_status(a, b, &v), PYC_MARSHAL_BAD_VALUE);
            struct code_opts odd = {0};
            odd.co_code = "d\0S";
            odd.co_code_len = 3; /* "co_code is malformed": 3.11+ only */
            assert_int_equal(code_status(a, b, &odd),
                             b >= 11 ? PYC_MARSHAL_BAD_VALUE : PYC_MARSHAL_OK);
        }
        if (a == 3 && b >= 8) {
            struct code_opts p = {0};
            p.posonly = 1; /* argcount < posonlyargcount */
            assert_int_equal(code_status(a, b, &p), PYC_MARSHAL_BAD_VALUE);
        }
        if (a == 3 && b >= 11) {
            struct code_opts k = {0};
            k.nvarnames = 2;
            k.kinds_mismatch = 1;
            assert_int_equal(code_status(a, b, &k), PYC_MARSHAL_BAD_VALUE);
        }
    }
    /* 3.12/3.13: INSTRUMENTED_LINE (254) in co_code crashes _PyCode_Quicken;
     * hidden in an inline cache (after LOAD_ATTR: 9 units), it is skipped. */
    struct code_opts q = {0};
    q.co_code = "\xfe\0S\0";
    q.co_code_len = 4;
    assert_int_equal(code_status(3, 12, &q), PYC_MARSHAL_BAD_VALUE);
    assert_int_equal(code_status(3, 13, &q), PYC_MARSHAL_BAD_VALUE);
    assert_int_equal(code_status(3, 11, &q), PYC_MARSHAL_OK);
    q.co_code = "j\0\xfe\0";
    assert_int_equal(code_status(3, 12, &q), PYC_MARSHAL_OK);
    assert_int_equal(code_status(3, 13, &q), PYC_MARSHAL_BAD_VALUE); /* 106: no cache */
    /* A code object with a NULL field: a silent NULL before 3.11 (as a dict
     * key it ends the dict), an error from 3.11. */
    for (size_t i = 0; i < NVERSIONS; i++) {
        struct buf d = {.n = 0};
        struct code_opts z = {0};
        z.null_field = 1;
        put_byte(&d, '{');
        put_code(&d, versions[i][0], versions[i][1], &z);
        put_byte(&d, 'N');
        put_byte(&d, '0');
        assert_int_equal(V(versions[i][0], versions[i][1], d.d, d.n),
                         versions[i][0] == 3 && versions[i][1] >= 11
                             ? PYC_MARSHAL_BAD_VALUE : PYC_MARSHAL_NOT_CODE);
    }
}

/* Real bodies: marshal.dumps(compile(SRC, 'm.py', 'exec')) of
 *   x = (1, 2.5, "s")
 *   def f(a):
 *       return a + x[0]
 * by 2.7.18 and 3.11.7. */
static const char body27_hex[] =
    "630000000000000000030000004000000073130000006405005a00006403008400005a01"
    "0064040053280600000069010000006700000000000004407401000000736301000000"
    "010000000300000043000000730c0000007c000074000064010019175328020000004e"
    "6900000000280100000074010000007828010000007401000000612800000000280000"
    "000073040000006d2e707974010000006602000000730200000000014e280300000069"
    "01000000670000000000000440520000000028020000005201000000520300000028000"
    "000002800000000280000000073040000006d2e707974080000003c6d6f64756c653e01"
    "00000073020000000601";
static const char body311_hex[] =
    "e30000000000000000000000000100000000000000f310000000970064005a00640184"
    "005a016402530029032903e901000000670000000000000440da017363010000000000"
    "0000000000000300000003000000f32200000097007c00740000000000000000000000"
    "6401190000000000000000007a000000530029024ee9000000002901da01782901da01"
    "61730100000020fa046d2e7079da0166720900000002000000730f0000008000d80b0c"
    "8d7190118c748938804ff3000000004e290272060000007209000000a900720a000000"
    "7208000000fa083c6d6f64756c653e720c000000010000007323000000f00301010"
    "1d804118001f002010114f000010114f000010114f000010114f000010114720a000000";

static void check_truncations(int major, int minor, const char *hex)
{
    unsigned char body[1024];
    char clean[2048];
    size_t k = 0;
    for (const char *p = hex; *p; p++)
        clean[k++] = *p;
    clean[k] = 0;
    long n = unit_unhex(clean, body, sizeof body);
    assert_true(n > 0);
    assert_int_equal(V(major, minor, body, (size_t)n), PYC_MARSHAL_OK);
    /* Every proper prefix fails: the top object is a code object whose last
     * field is an r_object (co_lnotab / co_exceptiontable), so EOF always
     * reaches an r_object or r_string, which fail in every version. */
    for (long i = 0; i < n; i++) {
        pyc_marshal_status st = V(major, minor, body, (size_t)i);
        assert_true(st != PYC_MARSHAL_OK);
    }
    /* Trailing bytes are ignored by marshal.loads. */
    body[n] = 'X';
    assert_int_equal(V(major, minor, body, (size_t)n + 1), PYC_MARSHAL_OK);
}

static void test_real_bodies_truncated(void **state)
{
    (void)state;
    check_truncations(2, 7, body27_hex);
    check_truncations(3, 11, body311_hex);
}

/* Found by fuzz_marshal on its first seed: a 3.8-3.10 code object has six
 * leading longs and co_firstlineno, one more than the array of longs held
 * (an overflow the integration test could not see). Every body under
 * every version's rules must be judged without UB. */
static const char fuzz_crash_1[] =
    "e30000000000000000000000000000000001000000400000007304000000640053002901"
    "4ea900720100000072010000007201000000fa0f636f6d6d6f6e5f656d7074792e7079da"
    "083c6d6f64756c653e01000000f300000000";

static void test_foreign_layouts(void **state)
{
    (void)state;
    const char *bodies[] = {body27_hex, body311_hex, fuzz_crash_1};
    for (size_t k = 0; k < 3; k++) {
        unsigned char body[1024];
        long n = unit_unhex(bodies[k], body, sizeof body);
        assert_true(n > 0);
        for (size_t i = 0; i < pyc_magic_count(); i++) {
            const pyc_magic *m = pyc_magic_at(i);
            size_t off = 0;
            pyc_marshal_status st = pyc_marshal_validate(m, body, (size_t)n, &off);
            assert_true(off <= (size_t)n);
            assert_true(st <= PYC_MARSHAL_UNCHECKED);
            /* The model reads it with the same walk (3.4 and 3.5 too,
             * which validation does not judge). */
            pyc_marshal_status pst;
            size_t poff = 99;
            errno = 0;
            pyc_marshal_tree *t = pyc_marshal_parse(m, body, (size_t)n, &pst, &poff);
            if (st != PYC_MARSHAL_UNCHECKED) {
                assert_int_equal(pst, st);
                assert_int_equal(t != NULL,
                                 st == PYC_MARSHAL_OK || st == PYC_MARSHAL_NOT_CODE);
            } else if (t) {
                assert_true(m->major == 3 && (m->minor == 4 || m->minor == 5));
            }
            pyc_marshal_tree_free(t);
        }
    }
    unsigned char body[1024];
    long n = unit_unhex(fuzz_crash_1, body, sizeof body);
    assert_int_equal(V(3, 8, body, (size_t)n), PYC_MARSHAL_OK);
    assert_int_equal(V(3, 10, body, (size_t)n), PYC_MARSHAL_OK);
    assert_true(V(3, 7, body, (size_t)n) != PYC_MARSHAL_OK);
}

static void test_unchecked(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(pyc_marshal_validate(NULL, "N", 1, NULL), PYC_MARSHAL_UNCHECKED);
    assert_int_equal(errno, EINVAL);
    const pyc_magic *m35 = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 5);
    if (m35) {
        errno = 0;
        assert_int_equal(pyc_marshal_validate(m35, "N", 1, NULL), PYC_MARSHAL_UNCHECKED);
        assert_int_equal(errno, ENOTSUP);
    }
}

static void test_messages(void **state)
{
    (void)state;
    for (int s = PYC_MARSHAL_OK; s <= PYC_MARSHAL_UNCHECKED; s++) {
        const char *msg = pyc_marshal_status_message((pyc_marshal_status)s);
        assert_non_null(msg);
        assert_true(msg[0] != 0);
    }
    assert_string_equal(pyc_marshal_status_message(PYC_MARSHAL_BAD_TYPE),
                        "bad marshal data (unknown type code)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_code_every_version),
        cmocka_unit_test(test_scalars_are_not_code),
        cmocka_unit_test(test_version_specific_codes),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_empty_and_truncated),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_code_checks),
        cmocka_unit_test(test_real_bodies_truncated),
        cmocka_unit_test(test_foreign_layouts),
        cmocka_unit_test(test_unchecked),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests_name("marshal", tests, NULL, NULL);
}
