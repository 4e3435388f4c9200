/*
 * pycache.h — libpycache, CPython's bytecode-cache rules in C.
 *
 * This is the only header a user of the library includes. Read it top to
 * bottom: each section builds on the ones before it.
 *
 *   1. Version and error convention
 *   2. Magic numbers: which interpreter wrote a cache file
 *   3. Headers: the 8, 12 or 16 bytes in front of the marshalled code
 *   4. Source hash: PEP 552's importlib.util.source_hash(), per version
 *   5. Source stamps: the mtime and size a version records for a source
 *   6. Cache paths: cache_from_source / source_from_cache, legacy and prefix
 *   7. Marshal: validating a cache file's body (what marshal.loads rejects),
 *      and its object model: parse, write back byte-exactly, normalize, compare
 *   8. Verdict: what CPython's import system would do with one cache file
 *   9. Walk: the tree engine every command rides on
 *
 * Conventions. The library never prints and never exits. Functions that can
 * fail return 0 on success and -1 on failure with errno set (or NULL with
 * errno set, for functions returning pointers); errno is never clobbered on
 * the success path of a caller's interest. Strings are NUL-terminated byte
 * strings: file names are bytes, as the kernel has them, never re-encoded.
 * Objects the library allocates have a matching free function, and every
 * free function accepts NULL.
 *
 * Every rule reproduced here names the CPython function it mirrors, in the
 * .c file that implements it; the tests check it against real interpreters.
 */
#ifndef PYCACHE_H
#define PYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * 1. Version and error convention
 * ====================================================================== */

#define PYC_VERSION_MAJOR 0
#define PYC_VERSION_MINOR 1
#define PYC_VERSION_PATCH 0
#define PYC_VERSION_STRING "0.1.0"
#define PYC_VERSION_NUMBER \
    (PYC_VERSION_MAJOR * 10000 + PYC_VERSION_MINOR * 100 + PYC_VERSION_PATCH)

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH". */
const char *pyc_version_string(void);

/* ======================================================================
 * 2. Magic numbers
 *
 * The first two bytes of a cache file are a little-endian 16-bit number that
 * changes whenever the bytecode format does; for CPython the next two bytes
 * are b"\r\n" (importlib._bootstrap_external.MAGIC_NUMBER). The table holds
 * every CPython magic from 1.0 to the newest alpha in CPython's main branch
 * (the final value of each release and the alpha/beta values between them),
 * plus the magics of other implementations that write into __pycache__
 * (PyPy, GraalPy), so their files are named rather than called corrupt.
 * ====================================================================== */

typedef enum pyc_implementation {
    PYC_IMPL_CPYTHON = 0,
    PYC_IMPL_PYPY,
    PYC_IMPL_GRAALPY,
} pyc_implementation;

/* "cpython", "pypy", "graalpy". */
const char *pyc_implementation_name(pyc_implementation impl);

/* The header layout a magic implies; the value is the header's length. */
typedef enum pyc_layout {
    PYC_LAYOUT_MTIME = 8,       /* magic, mtime: 1.x, 2.x, 3.0-3.2 */
    PYC_LAYOUT_MTIME_SIZE = 12, /* magic, mtime, size: 3.3-3.6 */
    PYC_LAYOUT_FLAGS = 16,      /* magic, flags, mtime+size or hash: 3.7+ */
} pyc_layout;

typedef struct pyc_magic {
    uint32_t word;       /* the first 4 bytes read as little-endian uint32
                            (importlib's _RAW_MAGIC_NUMBER), e.g. 0x0a0d0da7 */
    uint16_t number;     /* the 16-bit magic number, e.g. 3495 */
    pyc_implementation implementation;
    uint8_t major;       /* language version this magic belongs to: 3 */
    uint8_t minor;       /* 11 */
    const char *release; /* release(s) that wrote it: "3.11b4", "2.7a0",
                            "1.5-1.5.2", "pypy 7.3.x (3.9)" */
    const char *tag;     /* sys.implementation.cache_tag of that interpreter,
                            "cpython-311", "pypy39"; NULL before 3.2,
                           and where it is not known (old PyPy3) */
    pyc_layout layout;
    bool final;          /* the value the version's final releases use */
    const char *note;    /* CPython's own comment for the bump, or "" */
} pyc_magic;

/* The entry for a magic word (the header's first 4 bytes, little-endian),
 * or NULL when no known interpreter writes it. */
const pyc_magic *pyc_magic_lookup(uint32_t word);

/* The magic the final releases of IMPL MAJOR.MINOR write; for a version that
 * has no final release yet (an alpha in CPython's main branch), the newest
 * one known. NULL when the version is unknown. */
const pyc_magic *pyc_magic_final(pyc_implementation impl, int major, int minor);

/* The final magic of the interpreter whose cache tag is TAG (TAG_LEN bytes,
 * need not be NUL-terminated), e.g. "cpython-311" -> 3495. NULL if unknown. */
const pyc_magic *pyc_magic_for_tag(const char *tag, size_t tag_len);

/* Parses a version the way users write it: "3.11", "2.7", "311",
 * "cpython-311", "pypy3.10", "pypy310". Precisely: an optional prefix
 * "cpython", "python", "pypy", "graalpy" or "graalpython" (any case), an
 * optional '-', then MAJOR.MINOR[.MICRO] (micro ignored) or the compact
 * MAJOR digit + MINOR ("311", "27"); a bare "3" names no single format and
 * is malformed. Returns the final magic, or NULL with errno = EINVAL
 * (malformed) or ENOENT (well-formed but unknown). */
const pyc_magic *pyc_magic_parse_version(const char *text);

/* Iteration over the whole table, in table order (by implementation, then
 * chronologically). */
size_t pyc_magic_count(void);
const pyc_magic *pyc_magic_at(size_t index);

/* ======================================================================
 * 3. Headers
 *
 * 1.x-3.2: magic(4) mtime(4)                              8 bytes
 * 3.3-3.6: magic(4) mtime(4) size(4)                      12 bytes
 * 3.7+ (PEP 552): magic(4) flags(4) then either
 *          mtime(4) size(4)        flags == 0 (timestamp)
 *          source_hash(8)          flags & 1 (hash-based; & 2: checked)
 * All integers little-endian uint32.
 * ====================================================================== */

typedef enum pyc_mode {
    PYC_MODE_TIMESTAMP = 0,
    PYC_MODE_CHECKED_HASH,
    PYC_MODE_UNCHECKED_HASH,
} pyc_mode;

/* "timestamp", "checked-hash", "unchecked-hash". */
const char *pyc_mode_name(pyc_mode mode);
/* Parses one of those names. 0, or -1 with errno = EINVAL. */
int pyc_mode_parse(const char *name, pyc_mode *out);

#define PYC_HEADER_MAX 16

typedef enum pyc_header_status {
    PYC_HEADER_OK = 0,
    PYC_HEADER_TRUNCATED,     /* fewer bytes than the layout needs
                                 (fewer than 4: no magic at all) */
    PYC_HEADER_UNKNOWN_MAGIC, /* 4 bytes no known interpreter writes */
    PYC_HEADER_BAD_FLAGS,     /* 3.7+ flags with bits other than 0b11 set:
                                 _classify_pyc raises ImportError */
} pyc_header_status;

typedef struct pyc_header {
    uint32_t magic_word;    /* always set when at least 4 bytes were given */
    const pyc_magic *magic; /* NULL when the word is unknown */
    pyc_layout layout;      /* from the magic; PYC_LAYOUT_FLAGS if unknown */
    uint32_t flags;         /* 3.7+ layout only, else 0 */
    pyc_mode mode;          /* flags & 1 ? (flags & 2 ? checked : unchecked)
                               : timestamp; always timestamp before 3.7 */
    uint32_t mtime;         /* timestamp mode */
    uint32_t source_size;   /* timestamp mode, 3.3+ layouts */
    uint8_t source_hash[8]; /* hash modes, as stored */
    size_t length;          /* bytes of header parsed (8, 12 or 16) */
} pyc_header;

/* Parses the header at the start of BUF (LEN bytes available). Fills OUT as
 * far as the bytes allow and returns how it went; never reads past LEN. */
pyc_header_status pyc_header_parse(const void *buf, size_t len, pyc_header *out);

/* Writes H in the layout of H->layout into OUT. For PYC_LAYOUT_FLAGS the
 * flags are derived from H->mode. Returns the number of bytes written. */
size_t pyc_header_encode(const pyc_header *h, uint8_t out[PYC_HEADER_MAX]);

/* "header too short", "unknown magic number", ... for a status. */
const char *pyc_header_status_message(pyc_header_status status);

/* ======================================================================
 * 4. Source hash (PEP 552, Python 3.7+)
 *
 * importlib.util.source_hash(data) == _imp.source_hash(_RAW_MAGIC_NUMBER,
 * data): a keyed SipHash of the source bytes with k0 = the magic word and
 * k1 = 0. The SipHash variant is the one the version's Python/pyhash.c
 * uses for _Py_KeyedHash (2-4 through 3.10, 1-3 from 3.11).
 * ====================================================================== */

uint64_t pyc_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);
uint64_t pyc_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* The 8 bytes interpreter M stores for source bytes SRC. Returns -1 with
 * errno = EINVAL when M writes no hash-based pycs (before 3.7). */
int pyc_source_hash(const pyc_magic *m, const void *src, size_t len,
                    uint8_t out[8]);

/* The same for the file NAME relative to DIRFD (AT_FDCWD for a path),
 * read through symlinks as importlib reads it, with O_NOATIME where the
 * kernel grants it (the caller's files): its access time is left alone.
 * -1 with errno on I/O error. */
int pyc_source_hash_file(const pyc_magic *m, int dirfd, const char *name,
                         uint8_t out[8]);

/* ======================================================================
 * 5. Source stamps
 *
 * What interpreter M records for a source in a timestamp pyc, and compares
 * at import: derived from stat() exactly as that version does it (3.x:
 * int(os.stat().st_mtime) where st_mtime is the double sec + nsec * 1e-9,
 * masked to 32 bits; 2.x: st_mtime seconds). Some versions can never match
 * some mtimes (their comparison is not masked): then mtime_matchable is
 * false and every pyc of that source is stale for that version.
 * ====================================================================== */

typedef struct pyc_stamp {
    uint32_t mtime;       /* the value the version writes into the header */
    bool mtime_matchable; /* whether any header can match at import */
    uint32_t size;        /* st_size & 0xFFFFFFFF */
    bool size_checked;    /* the version compares the size (3.3+) */
} pyc_stamp;

void pyc_stamp_from_stat(const pyc_magic *m, const struct stat *st,
                         pyc_stamp *out);

/* ======================================================================
 * 6. Cache paths
 *
 * importlib.util.cache_from_source / source_from_cache for a given
 * interpreter, with the rules of its version:
 *   2.x            NAME.pyc / NAME.pyo beside the source
 *   3.2-3.4        __pycache__/NAME.TAG.pyc, .pyo under -O
 *   3.5+           __pycache__/NAME.TAG.pyc, NAME.TAG.opt-N.pyc (PEP 488)
 *   3.8+ prefix    PREFIX/<absolute source dir>/NAME.TAG[.opt-N].pyc
 * and the classification of a directory entry by its name alone.
 * ====================================================================== */

/* Where interpreter M puts the cache of SOURCE at optimization level OPT
 * (0, 1, 2). PREFIX is PYTHONPYCACHEPREFIX or NULL; CWD is the directory a
 * relative SOURCE is resolved against when a prefix is used (NULL: the
 * process's cwd). Returns a malloc'd path, or NULL with errno: EINVAL (bad
 * OPT, a prefix before 3.8, ...), ENOMEM. */
char *pyc_cache_from_source(const pyc_magic *m, const char *source, int opt,
                            const char *prefix, const char *cwd);

/* The same, and when it fails with EINVAL, *WHY (if WHY is not NULL) is a
 * static message: CPython's own when M's cache_from_source raises (with a
 * prefix, 3.8+ index the absolute head's second character: an absolute head
 * shorter than 2 characters raises IndexError "string index out of range"),
 * else which argument was refused. */
char *pyc_cache_from_source_why(const pyc_magic *m, const char *source,
                                int opt, const char *prefix, const char *cwd,
                                const char **why);

/* The source of the cache file CACHE as interpreter M's source_from_cache
 * computes it (for 2.x: NAME.pyc -> NAME.py). Returns a malloc'd path, or
 * NULL with errno = EINVAL when M's source_from_cache raises ValueError; then
 * *WHY (if WHY is not NULL) is a static message naming the rule, as
 * CPython's. */
char *pyc_source_from_cache(const pyc_magic *m, const char *cache,
                            const char *prefix, const char **why);

typedef enum pyc_cache_kind {
    PYC_KIND_NONE = 0, /* not a cache file */
    PYC_KIND_PYCACHE,  /* __pycache__/NAME.TAG[.opt-N].py[co] */
    PYC_KIND_LEGACY,   /* NAME.pyc / NAME.pyo beside the sources */
    PYC_KIND_PREFIX,   /* an entry of a PYTHONPYCACHEPREFIX tree */
    PYC_KIND_TEMP,     /* CPython's leftover temp file: a cache name
                          followed by ".DIGITS" (_write_atomic's id()) */
} pyc_cache_kind;

/* "pycache", "legacy", "prefix", "temp". */
const char *pyc_cache_kind_name(pyc_cache_kind kind);

#define PYC_OPT_UNREAD (-2) /* pyc_cache_name.opt: see there */

typedef struct pyc_cache_name {
    pyc_cache_kind kind;
    size_t stem_len;  /* NAME is name[0 .. stem_len): the source is NAME.py */
    size_t tag_off;   /* the tag is name[tag_off .. tag_off + tag_len) */
    size_t tag_len;   /* 0 for legacy files (no tag in the name) */
    int opt;          /* optimization level: 0, 1, 2 from ".opt-N";
                         -1 for a .pyo (optimized, level unknown);
                         other N are kept as written (-OOO writes
                         opt-3); PYC_OPT_UNREAD for a level no
                         interpreter writes at import ("opt-0",
                         "opt-01", "opt-x", beyond INT_MAX) */
    bool pyo;         /* the suffix is .pyo */
    size_t cache_len; /* for TEMP: length of the cache name it would have
                         been renamed to; else strlen(name) */
} pyc_cache_name;

/* Classifies the directory entry NAME by name alone. IN_PYCACHE says the
 * entry's directory is named __pycache__; IN_PREFIX that it lies in a
 * PYTHONPYCACHEPREFIX tree. Returns OUT->kind. */
pyc_cache_kind pyc_cache_name_parse(const char *name, bool in_pycache,
                                    bool in_prefix, pyc_cache_name *out);

/* ======================================================================
 * 7. Marshal
 *
 * Validates the marshalled code object after the header the way
 * marshal.loads of interpreter M would accept or reject it (Python/marshal.c
 * r_object and the code-object checks it calls): type codes that version
 * knows, lengths within the data, float text, UTF-8, long digits,
 * hashability, refs to objects already read, nesting depth, a code object
 * at the top. The same reader parses the object model (7b): validation is
 * that reader building nothing.
 * ====================================================================== */

typedef enum pyc_marshal_status {
    PYC_MARSHAL_OK = 0,
    PYC_MARSHAL_EMPTY,     /* no data after the header: "marshal data too short" */
    PYC_MARSHAL_TRUNCATED, /* the data ends inside an object */
    PYC_MARSHAL_BAD_TYPE,  /* a type code that version does not know */
    PYC_MARSHAL_BAD_REF,   /* a back-reference to an object not yet read */
    PYC_MARSHAL_TOO_DEEP,  /* nesting beyond that version's MAX_MARSHAL_STACK_DEPTH */
    PYC_MARSHAL_BAD_VALUE, /* a length or value marshal.loads rejects */
    PYC_MARSHAL_NOT_CODE,  /* valid marshal data, but not a code object:
                              import raises ImportError */
    PYC_MARSHAL_TRAILING,  /* unused; reserved */
    PYC_MARSHAL_UNCHECKED, /* not judged: errno EINVAL (M is NULL), ENOTSUP
                              (a version whose marshal format is not
                              modelled: CPython before 2.7 and 3.0-3.5,
                              PyPy, GraalPy) or ENOMEM. Not a verdict on
                              the body: callers must not call it bad. */
} pyc_marshal_status;

/* Checks BODY (LEN bytes after the header) as M's marshal.loads would.
 * *OFFSET (if not NULL) receives where the problem was found (0 for OK,
 * NOT_CODE and UNCHECKED). */
pyc_marshal_status pyc_marshal_validate(const pyc_magic *m, const void *body,
                                        size_t len, size_t *offset);

const char *pyc_marshal_status_message(pyc_marshal_status status);

/* ----------------------------------------------------------------------
 * 7b. Marshal object model
 *
 * pyc_marshal_parse reads a body into a tree of pyc_object nodes, one per
 * object in the stream, exactly as Python/marshal.c r_object() of the
 * cache's interpreter reads it: code objects with their fields, every
 * marshal type, and back-references kept as REF nodes (never followed), so
 * pyc_marshal_write gives back the very bytes that were parsed. Formats:
 * CPython 2.7 (marshal version 2) and 3.4-3.14 (versions 3-5). Parsing is
 * pyc_marshal_validate's own walk with a node made per object, so it
 * applies every rule validation does: a tree is returned only for a body
 * marshal.loads of M accepts, and a refusal carries the status and offset
 * pyc_marshal_validate gives; there is no need to validate first. 3.4
 * and 3.5, which pyc_marshal_validate does not judge, are parsed with
 * r_object's rules (marshal format 4, the same reader as 3.6) but not
 * PyCode_New's.
 * ---------------------------------------------------------------------- */

/* Node types: the marshal type code itself, FLAG_REF (0x80) removed. */
typedef enum pyc_object_type {
    PYC_OBJ_NULL = '0',               /* ends a dict; an error elsewhere */
    PYC_OBJ_NONE = 'N',
    PYC_OBJ_FALSE = 'F',
    PYC_OBJ_TRUE = 'T',
    PYC_OBJ_STOPITER = 'S',
    PYC_OBJ_ELLIPSIS = '.',
    PYC_OBJ_INT = 'i',                /* value */
    PYC_OBJ_INT64 = 'I',              /* value (2.7, and read by 3.x) */
    PYC_OBJ_LONG = 'l',               /* value: signed digit count; data:
                                         the 15-bit digits, 2 bytes each */
    PYC_OBJ_FLOAT = 'f',              /* data: the repr text */
    PYC_OBJ_BINARY_FLOAT = 'g',       /* data: 8 bytes, IEEE little-endian */
    PYC_OBJ_COMPLEX = 'x',            /* data: len, text, len, text */
    PYC_OBJ_BINARY_COMPLEX = 'y',     /* data: 16 bytes */
    PYC_OBJ_STRING = 's',             /* data: bytes (2.7: str) */
    PYC_OBJ_INTERNED = 't',           /* data: UTF-8 (2.7: an interned str) */
    PYC_OBJ_STRINGREF = 'R',          /* 2.7: ref = the interned string's
                                         index */
    PYC_OBJ_UNICODE = 'u',            /* data: UTF-8 (surrogatepass) */
    PYC_OBJ_ASCII = 'a',              /* data: ASCII (3.4+) */
    PYC_OBJ_ASCII_INTERNED = 'A',
    PYC_OBJ_SHORT_ASCII = 'z',
    PYC_OBJ_SHORT_ASCII_INTERNED = 'Z',
    PYC_OBJ_TUPLE = '(',              /* items */
    PYC_OBJ_SMALL_TUPLE = ')',        /* items (3.4+: a one-byte size) */
    PYC_OBJ_LIST = '[',
    PYC_OBJ_DICT = '{',               /* items: key, value, ..., then the
                                         object(s) that ended it */
    PYC_OBJ_SET = '<',
    PYC_OBJ_FROZENSET = '>',
    PYC_OBJ_CODE = 'c',               /* items: object fields; longs */
    PYC_OBJ_REF = 'r',                /* ref = the slot named (3.4+) */
    PYC_OBJ_SLICE = ':',              /* items: start, stop, step (3.14+) */
} pyc_object_type;

typedef struct pyc_object pyc_object;

/* One object of the stream. Read-only to the caller; owned by its tree. */
struct pyc_object {
    uint8_t type;         /* a pyc_object_type */
    bool flag_ref;        /* the type code carried FLAG_REF */
    bool is_null;         /* its container sees NULL: PYC_OBJ_NULL, or a
                             code object or slice with a NULL part (2.7-3.10
                             read those as a NULL without an error) */
    int32_t ref;          /* the slot it fills (flag_ref on a type that
                             r_object registers), -1 if none; REF: the slot
                             it names; STRINGREF: the string index */
    int64_t value;        /* INT, INT64, LONG: see pyc_object_type */
    const unsigned char *data; /* scalars: see pyc_object_type */
    size_t size;          /* bytes at data */
    pyc_object **items;   /* containers and code objects */
    size_t count;
    int32_t longs[8];     /* code: the 32-bit fields in stream order */
    uint8_t nlongs;
};

typedef struct pyc_marshal_tree pyc_marshal_tree;

/* Parses BODY (LEN bytes after the header) as written by interpreter M.
 * Returns the tree (a private copy of BODY inside) when marshal.loads of M
 * accepts BODY: *STATUS (if not NULL) is then PYC_MARSHAL_OK, or
 * PYC_MARSHAL_NOT_CODE when the top object is not a code object (loads
 * accepts it, import would not). Otherwise NULL with errno: EINVAL when
 * marshal.loads rejects the data (*STATUS and *OFFSET, each if not NULL,
 * are exactly what pyc_marshal_validate gives), ENOTSUP for a format not
 * modelled (CPython before 2.7, 3.0-3.3, PyPy, GraalPy; *STATUS
 * PYC_MARSHAL_UNCHECKED), ENOMEM. Trailing bytes after the top object are
 * kept and written back (marshal.loads ignores them). */
pyc_marshal_tree *pyc_marshal_parse(const pyc_magic *m, const void *body,
                                    size_t len, pyc_marshal_status *status,
                                    size_t *offset);

void pyc_marshal_tree_free(pyc_marshal_tree *tree);

/* The top object. */
const pyc_object *pyc_marshal_root(const pyc_marshal_tree *tree);

/* The interpreter whose format TREE was parsed in (the M given). */
const pyc_magic *pyc_marshal_magic(const pyc_marshal_tree *tree);

/* The object O stands for: the target of a REF (or STRINGREF), followed
 * until it is neither; O itself otherwise. */
const pyc_object *pyc_marshal_resolve(const pyc_marshal_tree *tree,
                                      const pyc_object *o);

/* Serialises TREE: *OUT (malloc'd, free() it) and *LEN. An unmodified tree
 * gives back the parsed bytes exactly. Returns 0, or -1 with errno ENOMEM. */
int pyc_marshal_write(const pyc_marshal_tree *tree, unsigned char **out,
                      size_t *len);

/* Rewrites TREE into the canonical form (3.4+; 2.7 has no refs): FLAG_REF
 * kept only on objects a REF names, slots renumbered in stream order, and
 * (3.4-3.10) the items of each set and frozenset in the order of their
 * canonical bytes (unless a REF inside one names an object inside
 * another). marshal writes FLAG_REF wherever an object's reference count
 * was above one, and before 3.11 set items in hash order (which
 * PYTHONHASHSEED changes; 3.11+ sort them, bpo-37596), so equal code
 * compiled in different processes gives different bytes; after this it
 * gives the same. marshal.loads of the
 * result equals that of the original. Returns 1 when something changed, 0
 * when the tree was canonical already, -1 with errno ENOMEM. */
int pyc_marshal_normalize(pyc_marshal_tree *tree);

/* The fields of a code object, whatever the version's layout. Object
 * fields are resolved (pyc_marshal_resolve); a field the version lacks is
 * NULL, a count it lacks 0 (has_* says which exist). */
typedef struct pyc_code {
    int32_t argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize,
        flags, firstlineno;
    bool has_posonlyargcount; /* 3.8+ */
    bool has_nlocals;         /* before 3.11 */
    const pyc_object *code, *consts, *names;
    const pyc_object *varnames, *freevars, *cellvars; /* before 3.11 */
    const pyc_object *localsplusnames, *localspluskinds; /* 3.11+ */
    const pyc_object *filename, *name;
    const pyc_object *qualname;       /* 3.11+ */
    const pyc_object *linetable;      /* co_lnotab before 3.10 */
    const pyc_object *exceptiontable; /* 3.11+ */
} pyc_code;

/* Fills OUT from the code object O (after pyc_marshal_resolve). Returns 0,
 * or -1 with errno EINVAL when O is not a complete code object. */
int pyc_marshal_code(const pyc_marshal_tree *tree, const pyc_object *o,
                     pyc_code *out);

/* The name of code field I (0-based, stream order, longs included) in
 * TREE's layout, "co_consts"; NULL past the last. */
const char *pyc_marshal_code_field_name(const pyc_marshal_tree *tree,
                                        size_t i);

/* pyc_marshal_compare flags. */
#define PYC_COMPARE_IGNORE_FILENAME 0x1 /* co_filename of every code object */

/* Compares the objects of A and B structurally: refs followed, FLAG_REF,
 * interning, tuple and string encodings ignored (equal values, equal
 * answer), set items compared in canonical order. Returns 0 when equal, 1
 * when they differ, with the path of the first difference written to PATH
 * (PATH_SIZE bytes, NUL-terminated, truncated to fit), e.g.
 * "co_consts[3].co_code"; "" for the top object; -1 with errno ENOMEM, or
 * ELOOP when the objects reference themselves too deeply to be compared. */
int pyc_marshal_compare(const pyc_marshal_tree *a, const pyc_marshal_tree *b,
                        unsigned flags, char *path, size_t path_size);

/* ======================================================================
 * 8. Verdict
 *
 * One cache file and its source (or the lack of one) in, the decision
 * CPython's import system would make out, judged by the interpreter the file
 * belongs to (its tag, else its magic):
 *   fresh       would be loaded, and matches its source
 *   stale       its source exists; it would be rejected and recompiled
 *   stale-used  an unchecked-hash pyc whose source changed: loaded anyway
 *   orphan      in __pycache__ or a prefix tree with no source: never loaded
 *   sourceless  a legacy NAME.pyc with no NAME.py: imported as the module
 *   shadowed    a legacy .pyc/.pyo its interpreter ignores
 *   corrupt     no interpreter could load it (it would make import fail)
 *   temp        CPython's leftover temp file from an interrupted write
 *   missing     (commands only) a source with no fresh cache
 *   foreign     (commands only) a non-bytecode file inside __pycache__
 * ====================================================================== */

typedef enum pyc_status {
    PYC_FRESH = 0,
    PYC_STALE,
    PYC_STALE_USED,
    PYC_ORPHAN,
    PYC_SOURCELESS,
    PYC_SHADOWED,
    PYC_CORRUPT,
    PYC_TEMP,
    PYC_MISSING,
    PYC_FOREIGN,
    PYC_STATUS_COUNT
} pyc_status;

typedef enum pyc_reason {
    PYC_REASON_NONE = 0,
    PYC_REASON_MTIME,        /* header mtime != source mtime */
    PYC_REASON_SIZE,         /* header size != source size */
    PYC_REASON_HASH,         /* header hash != source hash */
    PYC_REASON_MAGIC,        /* magic no interpreter writes */
    PYC_REASON_TAG_MISMATCH, /* a known magic of another version than the
                                tag in the file's name */
    PYC_REASON_FLAGS,        /* invalid 3.7+ flags */
    PYC_REASON_TRUNCATED,    /* header shorter than its layout */
    PYC_REASON_EMPTY,        /* header but no body */
    PYC_REASON_BODY,         /* body marshal.loads rejects (--deep) */
    PYC_REASON_NO_SOURCE,    /* no source file */
    PYC_REASON_SOURCE,       /* a legacy file beside its source (3.x loads
                                the source instead) */
    PYC_REASON_PACKAGE,      /* a package directory of that name wins */
    PYC_REASON_EXTENSION,    /* an extension module of that name wins */
    PYC_REASON_PYO,          /* a .pyo its interpreter never reads (3.5+) */
    PYC_REASON_UNCHECKED,    /* fresh only because the hash is unchecked */
    PYC_REASON_NOT_CHECKED,  /* hash not compared (--check-hash-based-pycs
                                never, or an unchecked pyc); source unchanged
                                is unknown */
    PYC_REASON_UNREADABLE,   /* the file or its source could not be read */
    PYC_REASON_NOT_BYTECODE, /* foreign: not a cache file name */
    PYC_REASON_INTERRUPTED,  /* temp: an interrupted atomic write */
    PYC_REASON_NO_CACHE,     /* missing: no cache file at all */
    PYC_REASON_NAME,         /* a legacy file whose name is no module name
                                (a dot in NAME: import never asks for it) */
    PYC_REASON_ZIPIMPORT,    /* a __pycache__ entry of a zip archive on
                                sys.path: zipimport never reads one */
    PYC_REASON_ZIPIMPORT_UNREADABLE, /* a cache in a zip archive whose
                                zipimport of that version cannot open the
                                archive at all (a trailing comment before
                                3.8, zip64 before 3.13): nothing in it is
                                ever imported */
    PYC_REASON_COUNT
} pyc_reason;

/* Stable short words used in output: "fresh", "stale-used", ...,
 * "mtime", "tag-mismatch", ...; "" for PYC_REASON_NONE. */
const char *pyc_status_name(pyc_status status);
const char *pyc_reason_name(pyc_reason reason);
/* Parses a status name; -1 with errno = EINVAL if unknown. */
int pyc_status_parse(const char *name, pyc_status *out);

/* How much a status matters to the program that imports, one table for
 * every tool (check's default --fail-on, doctor, the pre-commit hooks,
 * GitHub annotations):
 *   DANGEROUS  what is imported differs from the source, or the import
 *              fails: stale-used, sourceless, corrupt;
 *   EXPECTED   a cache that was asked for is not there (missing: only with
 *              check --expect);
 *   CLUTTER    never loaded, or rejected and recompiled: stale, orphan,
 *              shadowed, temp (space and confusion, no wrong import);
 *   FINE       fresh; foreign (not bytecode, never touched). */
typedef enum pyc_severity {
    PYC_SEVERITY_FINE = 0,
    PYC_SEVERITY_CLUTTER,
    PYC_SEVERITY_EXPECTED,
    PYC_SEVERITY_DANGEROUS,
} pyc_severity;
pyc_severity pyc_status_severity(pyc_status status);

/* --check-hash-based-pycs (Python/import.c _imp.check_hash_based_pycs). */
typedef enum pyc_check_hash {
    PYC_CHECK_HASH_DEFAULT = 0, /* checked pycs checked, unchecked not */
    PYC_CHECK_HASH_ALWAYS,
    PYC_CHECK_HASH_NEVER,
} pyc_check_hash;

typedef struct pyc_verdict_options {
    pyc_check_hash check_hash;
    bool deep;              /* also validate the marshalled body */
    bool skip_file_stat;    /* make no fstat of the cache file: file_size
                               and file_blocks stay -1 and the file is not
                               checked to be a regular file. Only for a
                               caller that knows it is one (d_type DT_REG)
                               and needs no sizes: it saves a syscall per
                               file (it is opened O_NONBLOCK either way). */
} pyc_verdict_options;

/* What the caller knows of the source; lets a walker stat each source once
 * for all the tags and optimization levels that share it. */
typedef struct pyc_source {
    int dirfd;              /* directory the source name is relative to */
    const char *name;       /* the source's name (NAME.py), relative */
    int state;              /* -1 not looked at yet (the verdict stats it and
                               fills st/errno_), 0 absent, 1 present */
    int errno_;             /* when state is 0: ENOENT, or the stat error */
    struct stat st;         /* when state is 1: stat() through symlinks */
} pyc_source;

typedef struct pyc_verdict {
    pyc_status status;
    pyc_reason reason;
    pyc_cache_name name;            /* how the file name was classified */
    pyc_header header;              /* as parsed (see header_status) */
    pyc_header_status header_status;
    bool header_read;               /* false if the file could not be read */
    const pyc_magic *judge;         /* interpreter whose rules decided: from
                                       the tag, else the magic; may be NULL */
    int64_t file_size;              /* the cache file's st_size, -1 unknown */
    int64_t file_blocks;            /* st_blocks * 512, -1 unknown */
    bool source_exists;
    int64_t source_size;            /* -1 unknown */
    int64_t source_mtime;           /* seconds, unknown: INT64_MIN */
    int error;                      /* errno of a failed read, else 0 */
    const char *error_op;           /* "open", "read", "stat"... or NULL */
    const char *cache_name;         /* the CACHE_NAME judged (borrowed) */
} pyc_verdict;

/* Judges the cache file CACHE_NAME in directory CACHE_DIRFD, whose name was
 * classified by pyc_cache_name_parse into NAME (NULL: classify it here as an
 * entry outside __pycache__ and any prefix tree). SOURCE_DIRFD is the
 * directory its source (if any) lives in: for a __pycache__ entry, the
 * parent of __pycache__; for a legacy file, the same directory; for a prefix
 * entry, the source directory the prefix path maps to (-1 when that
 * directory does not exist). SRC may be NULL (the verdict stats NAME.py
 * itself); a caller that judges several files sharing one source passes the
 * same SRC (name set, state -1 the first time) and the verdict fills it in.
 * The cache file (and a source hashed) is opened with O_NOATIME where the
 * kernel grants it: judging leaves access times alone.
 * Returns 0 with OUT filled; an unreadable file is still a verdict (status
 * by what could be learnt, error and error_op set). -1 with errno = EINVAL
 * only for invalid arguments, ENAMETOOLONG for a source name too long. */
int pyc_verdict_judge(int cache_dirfd, const char *cache_name,
                      const pyc_cache_name *name, int source_dirfd,
                      pyc_source *src, const pyc_verdict_options *options,
                      pyc_verdict *out);

/* As pyc_verdict_judge, for a caller that has read the start of the cache
 * file itself (a walker batching its reads, with io_uring say): HEAD holds
 * the file's first HEAD_LEN bytes — PYC_HEADER_MAX + 1 of them, or all of
 * them when the file is shorter (the byte after the header tells an empty
 * body). The cache file is neither opened nor stat'ed: file_size and
 * file_blocks stay -1, and the caller vouches that it is a regular file.
 * OPTIONS->deep needs the whole body and is refused (EINVAL), as is a NULL
 * HEAD with HEAD_LEN > 0. */
int pyc_verdict_judge_head(const char *cache_name, const pyc_cache_name *name,
                           int source_dirfd, pyc_source *src,
                           const pyc_verdict_options *options,
                           const unsigned char *head, size_t head_len,
                           pyc_verdict *out);

/* What a caller knows of the directory a source would be in, when that
 * directory is not on a file system the verdict can reach with *at() calls:
 * the members of an archive, say. The verdict asks it instead of stat'ing
 * and reading files, and does no I/O of its own. Names are relative to the
 * source directory and may hold '/' ("pkg/__init__.py": a package lookup). */
typedef struct pyc_source_view {
    /* As stat(2) through symlinks: 0 with ST's st_mode (S_IFREG for a
     * file), st_size and st_mtim filled as the file will be where the
     * interpreter reads it, or -1 with errno (ENOENT when absent). */
    int (*stat)(void *ctx, const char *name, struct stat *st);
    /* The 8 bytes interpreter M stores for source NAME's bytes
     * (pyc_source_hash of them): 0, or -1 with errno. Called only for
     * hash-based pycs whose source exists. */
    int (*source_hash)(void *ctx, const pyc_magic *m, const char *name,
                       uint8_t out[8]);
    void *ctx;
    /* Judge as zipimport does for a zip archive on sys.path (legacy
     * NAME.pyc beside NAME.py only, the lenient +-1 s timestamp against
     * the source's DOS time, each version's fallbacks), instead of as
     * the file-system finder does once the files are extracted. */
    bool zipimport;
} pyc_source_view;

/* As pyc_verdict_judge, for a cache file the caller has in memory and a
 * source directory given by VIEW (an archive front end): DATA holds the
 * cache file's first LEN bytes, at least PYC_HEADER_MAX + 1 of them (or all,
 * when it is shorter); with OPTIONS->deep, the whole file. file_size and
 * file_blocks stay -1 (the caller knows them). Returns 0 with OUT filled,
 * -1 with errno = EINVAL for invalid arguments, ENOMEM. */
int pyc_verdict_judge_view(const char *cache_name, const pyc_cache_name *name,
                           const pyc_source_view *view,
                           const pyc_verdict_options *options,
                           const unsigned char *data, size_t len,
                           pyc_verdict *out);

/* Judges a cache file given by path (for `inspect`): finds the directory,
 * the kind and the source itself. PREFIX: a PYTHONPYCACHEPREFIX root if the
 * file lies in one, else NULL. */
int pyc_verdict_judge_path(const char *path, const char *prefix,
                           const pyc_verdict_options *options,
                           pyc_verdict *out);

/* Whether V, a fresh timestamp cache whose file was last written at
 * CACHE_MTIME (the cache file's own st_mtime), is racy: written no later
 * than the second its source's recorded mtime names. CPython records the
 * source's mtime in whole seconds (and its size), so an edit made later in
 * that same second that keeps the size leaves the header matching: the old
 * code keeps loading (cpython#75953). Once the cache was written in a later
 * second, any edit moves the mtime past the recorded one. This is git's
 * racy-index rule (an entry whose mtime is not older than the index file is
 * suspect), with the pyc as the index. False for anything else (hash-based,
 * stale, unknown source mtime). */
bool pyc_verdict_racy(const pyc_verdict *v, const struct timespec *cache_mtime);

/* ======================================================================
 * 9. Walk
 *
 * A depth-first walk in the manner of bfs: each directory opened relative
 * to its parent's fd, entries read with getdents64 into a large buffer,
 * d_type used to avoid stat, directory symlinks never followed, errors
 * delivered as entries (the walk goes on), trees deeper than PATH_MAX
 * handled (the path is built for display only; syscalls are *at() calls).
 * Open directory fds are bounded; ancestors closed to respect the bound are
 * reopened by name and checked to be the same directory (dev, ino).
 *
 * Order within a directory: its DIR_PRE, then all its non-directory entries
 * (so per-directory caches work), then each subdirectory (DIR_PRE ...
 * DIR_POST), then its DIR_POST; getdents order, never sorted. A DIR_PRE not
 * pruned always gets its DIR_POST (unless the walk stops). Directories the
 * options skip are not delivered at all; the options never apply to roots.
 * Entries that vanish during the walk are skipped silently. The walk reads
 * a directory through its own fd, whose offset is its own (with skip_venvs
 * it may have read the listing before the DIR_PRE): a callback that lists
 * a directory opens it itself.
 * ====================================================================== */

typedef enum pyc_walk_event {
    PYC_WALK_FILE = 0,  /* any non-directory entry (see type) */
    PYC_WALK_DIR_PRE,   /* a directory, before its entries */
    PYC_WALK_DIR_POST,  /* a directory, after its entries (post-order) */
    PYC_WALK_ERROR,     /* an entry that could not be opened or read */
    PYC_WALK_FILES_END, /* only with options->files_end: a directory's last
                           non-directory entry has been delivered (see
                           pyc_walk_options) */
} pyc_walk_event;

typedef struct pyc_walk_dir pyc_walk_dir; /* an open directory in the walk */

typedef struct pyc_walk_entry {
    pyc_walk_event event;
    const pyc_walk_dir *parent; /* the directory holding the entry; NULL for
                                   a root */
    int dirfd;             /* fd of parent (AT_FDCWD for a root) */
    const char *name;      /* the name relative to dirfd */
    const char *path;      /* root + "/" + ... + name, for display only */
    size_t path_len;
    unsigned char type;    /* DT_REG, DT_DIR, DT_LNK, ... (never
                              DT_UNKNOWN: resolved with fstatat) */
    int depth;             /* 0 for a root */
    dev_t dev;             /* for directories: their device and inode */
    ino_t ino;
    int error;             /* PYC_WALK_ERROR: the errno */
    const char *error_op;  /* PYC_WALK_ERROR: "open", "read", "stat" */
} pyc_walk_entry;

typedef enum pyc_walk_action {
    PYC_WALK_CONTINUE = 0, /* go on (enter the directory for DIR_PRE) */
    PYC_WALK_PRUNE,        /* DIR_PRE: do not enter it (no DIR_POST) */
    PYC_WALK_STOP,         /* end the walk now */
} pyc_walk_action;

typedef pyc_walk_action pyc_walk_fn(const pyc_walk_entry *entry, void *ctx);

typedef struct pyc_walk_options {
    bool one_file_system;  /* do not cross mount points */
    bool skip_vcs;         /* do not enter .git .hg .svn .bzr _darcs */
    bool skip_node_modules;
    bool skip_venvs;       /* do not enter a virtual environment (a
                              directory holding a regular pyvenv.cfg) nor
                              a conda environment (a conda-meta/ dir) */
    const char *const *ignore_names; /* NULL-terminated, or NULL: names of
                                        directories never entered, each a
                                        name or an fnmatch(3) pattern */
    int max_open_fds;      /* bound on directory fds; 0: a default */
    bool roots_nofollow;   /* open roots with O_NOFOLLOW too: a root that is
                              (or became) a symlink is one FILE entry of
                              type DT_LNK, never entered (for callers that
                              split a walk they started into several) */
    bool files_end;        /* deliver PYC_WALK_FILES_END after each directory's
                              FILE (and ERROR) entries, before its first
                              subdirectory: parent is that directory, dirfd
                              its fd — the one its FILE entries had, still
                              open — depth theirs, path the directory's, name
                              "" (for callers that batch a directory's files
                              and must finish with them while its fd is
                              valid). The action returned is ignored but
                              for PYC_WALK_STOP. */
} pyc_walk_options;

/* Walks each root in turn (a root that is a file is delivered as one FILE
 * entry; a root symlink to a directory is followed, as find -H does).
 * Returns 0 when the walk completed (whatever errors were delivered as
 * entries), 1 when the callback stopped it, -1 with errno on failure to
 * allocate. */
int pyc_walk(const char *const *roots, size_t nroots,
             const pyc_walk_options *options, pyc_walk_fn *fn, void *ctx);

/* As pyc_walk, for one root the caller has open: DIRFD, a directory fd
 * (the walk takes it over and closes it, whatever happens), walked as the
 * root whose display path is PATH. PATH is never opened or resolved: a
 * caller that splits a walk it started into several opens a directory it
 * met relative to its parent's fd (O_NOFOLLOW) and hands that fd to
 * another walk, so no component of the path is looked up again (a
 * directory swapped for a symbolic link meanwhile cannot lead that walk
 * elsewhere). The root's entries get dirfd AT_FDCWD and name PATH, as a
 * root's do. -1 with errno = EINVAL for a negative DIRFD or a NULL PATH
 * (nothing is closed), else as pyc_walk. */
int pyc_walk_fd(int dirfd, const char *path, const pyc_walk_options *options,
                pyc_walk_fn *fn, void *ctx);

/* An fd for directory DIR, valid until the callback returns; reopened if the
 * walk had closed it. -1 with errno (ENOENT, ESTALE if a different directory
 * now has its name...). */
int pyc_walk_dir_fd(const pyc_walk_dir *dir);
/* DIR's parent (NULL at a root), its name and its path. The path is a copy
 * valid until the next pyc_walk_dir_path() call or the callback's return. */
const pyc_walk_dir *pyc_walk_dir_parent(const pyc_walk_dir *dir);
const char *pyc_walk_dir_name(const pyc_walk_dir *dir);
const char *pyc_walk_dir_path(const pyc_walk_dir *dir);

#ifdef __cplusplus
}
#endif

#endif /* PYCACHE_H */
