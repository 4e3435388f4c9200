/*
 * internal.h — helpers shared by the library's modules, not part of the
 * public API. Names start with lib_ so the shared library's version script
 * (libpycache.map) keeps them local.
 */
#ifndef PYCACHE_INTERNAL_H
#define PYCACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

/* Little-endian 32-bit load/store: pyc headers are little-endian on every
 * platform (importlib._bootstrap_external._unpack_uint32). */
static inline uint32_t lib_load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void lib_store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint64_t lib_load_le64(const unsigned char *p)
{
    return (uint64_t)lib_load_le32(p) | (uint64_t)lib_load_le32(p + 4) << 32;
}

static inline void lib_store_le64(unsigned char *p, uint64_t v)
{
    lib_store_le32(p, (uint32_t)v);
    lib_store_le32(p + 4, (uint32_t)(v >> 32));
}

/* memrchr, which POSIX lacks (a GNU and BSD extension; not macOS): the last
 * byte C in the N bytes at S, or NULL. The libc's where the probe found it
 * (vectorised: every cache name is parsed from its end), else a loop. */
static inline const char *lib_memrchr(const char *s, int c, size_t n)
{
#if PYC_HAVE_MEMRCHR
    return memrchr(s, c, n);
#else
    while (n--)
        if ((unsigned char)s[n] == (unsigned char)c)
            return s + n;
    return NULL;
#endif
}

/* Writes V in decimal at P (no NUL); returns the digit count (at most 10). */
static inline size_t lib_put_uint(char *p, unsigned v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* ---- the marshal reader (marshal.c), shared with the model (marshal_tree.c)
 *
 * marshal.c holds the one walk of a marshal stream: every rule of the
 * version's marshal.loads is applied there, once. pyc_marshal_validate runs
 * it with no sink (nothing allocated per object); pyc_marshal_parse runs it
 * with the tree-building sink below, so a parsed tree has passed the same
 * rules. */

#include <stdbool.h>

#include "pycache.h"

/* The code-object layouts of TYPE_CODE (Python/marshal.c r_object). */
enum lib_code_layout {
    LIB_CODE_27,  /* 2.7 */
    LIB_CODE_36,  /* 3.4-3.7 (the 3.0 layout plus nothing) */
    LIB_CODE_38,  /* 3.8-3.10: + co_posonlyargcount */
    LIB_CODE_311, /* 3.11+: co_localsplusnames / co_localspluskinds */
};

/* What the model needs to know about a version's format. FIELDS is the
 * TYPE_CODE field string, one character per field in stream order: 'L' an
 * r_long, any other character an r_object (its expected type, marshal.c's
 * enum field); NAMES the co_* names of the same fields. */
struct lib_marshal_format {
    bool py2;        /* 2.7: whole type byte, TYPE_STRINGREF, no FLAG_REF */
    bool refs;       /* 3.4+: FLAG_REF, TYPE_REF */
    bool slice;      /* 3.14+: TYPE_SLICE */
    bool judged;     /* pyc_marshal_validate gives a verdict (2.7, 3.6+) */
    int minor;
    enum lib_code_layout layout;
    const char *fields;
    const char *const *names;
};

/* Fills *OUT for M; -1 when M's marshal format is not modelled (CPython
 * before 2.7, 3.0-3.3, PyPy, GraalPy). */
int lib_marshal_format(const pyc_magic *m, struct lib_marshal_format *out);

/* The tree-building sink. ALLOC returns zeroed memory that lives as long as
 * the tree (NULL on ENOMEM). The walk fills the rest: the node of the top
 * object, the ref table (3.4+: a slot is NULL while reserved, and stays
 * NULL when its object turned out NULL) and the 2.7 interned strings, both
 * malloc'd arrays the caller frees whatever the status; END is the offset
 * after the top object. */
struct lib_marshal_sink {
    void *(*alloc)(void *ctx, size_t size);
    void *ctx;
    pyc_object *root;
    pyc_object **slots;
    size_t nslots, capslots;
    pyc_object **strings;
    size_t nstrings;
    size_t end;
    bool past_end;   /* 2.7 read a long past the end of the data as EOF
                        bytes (r_long's rs_byte), and went on */
};

/* The walk: BODY as M's marshal.loads reads it, with every rule it applies
 * (the status of pyc_marshal_validate), building the tree into SINK when
 * SINK is not NULL. For 3.4 and 3.5 (judged false) it applies r_object's
 * rules (marshal format 4, unchanged from 3.4 to 3.6) but not PyCode_New's.
 * *OFFSET as pyc_marshal_validate. PYC_MARSHAL_UNCHECKED with errno ENOTSUP
 * or ENOMEM. */
pyc_marshal_status lib_marshal_walk(const pyc_magic *m, const void *body,
                                    size_t len, struct lib_marshal_sink *sink,
                                    size_t *offset);

#endif /* PYCACHE_INTERNAL_H */
