/*
 * marshal.c — would marshal.loads accept this cache file's body?
 *
 * A pyc whose header is valid but whose body is damaged makes the import
 * fail: importlib's _compile_bytecode (3.x) and import.c's
 * read_compiled_module (2.7) call marshal.loads(body) and raise when it
 * fails or when the result is not a code object ("Non-code object"); there
 * is no fallback to the source. `check --deep` must know that without
 * running Python, so this module walks the byte stream the way
 * Python/marshal.c r_object() of interpreter M reads it, and accepts exactly
 * what that r_object() would turn into a code object.
 *
 * This is the one reader of the marshal stream in libpycache: every rule
 * below is applied here and only here. The walk runs two ways:
 *   - validation (pyc_marshal_validate, `check --deep`): no objects are
 *     built. Each object read is summarised by a `struct obj` (its type and
 *     the few facts the readers of its enclosing objects look at: a length,
 *     whether it is hashable, whether a tuple holds only exact str, ...),
 *     and nothing is allocated per object;
 *   - with the model's sink (pyc_marshal_parse, marshal_tree.c): the same
 *     walk also makes a node per object (type code, FLAG_REF, the slot it
 *     fills or names, its bytes), so a tree exists only for a body that
 *     passed every rule.
 * The walk is one function instantiated twice with a constant `build`
 * flag (walk_validate, walk_build), so the validating copy carries no
 * trace of the sink. The stream is walked with an explicit stack bounded by
 * the version's MAX_MARSHAL_STACK_DEPTH, so there is no recursion; the ref
 * table of 3.4+ (r_ref / r_ref_reserve / r_ref_insert) keeps one summary
 * per slot. Time is linear in the body; memory is O(number of refs)
 * validating, O(body) building.
 *
 *
 * What r_object() of each version checks, and this file mirrors:
 *   - type codes: 2.7 knows 0 N F T S . i I f g x y l s t R u ( [ { < > c,
 *     reading the whole byte as the code (bytes >= 0x80 are unknown);
 *     3.4+ drops R, adds a A z Z ) r and FLAG_REF (0x80) on any code;
 *     3.14+ adds TYPE_SLICE ':' (marshal version 5). Anything else is
 *     "bad marshal data (unknown type code)".
 *   - EOF: 3.4+ r_string/r_long raise "marshal data too short"; 2.7's r_long
 *     and r_short read EOF as 0xFF bytes and go on (rs_byte), so only
 *     r_byte/r_string/the type byte fail there.
 *   - sizes: 32-bit signed, negative ones rejected ("... size out of range");
 *     long digits in 0..0x7FFF and the top one non-zero (r_PyLong).
 *   - float strings (TYPE_FLOAT, TYPE_COMPLEX): PyOS_string_to_double on the
 *     bytes up to the first NUL; unicode: strict UTF-8 (2.7, which accepts
 *     encoded surrogates) or UTF-8 with "surrogatepass" (3.x).
 *   - NULL ('0'): an error inside tuples, lists, sets and at the top
 *     (read_object); the end of a dict as a key; as a dict value it ends the
 *     dict (3.x) or drops the pair (2.7); as a code field it makes the code
 *     object a silent NULL, which its container treats the same (2.7-3.10;
 *     3.11+ raise), as does a NULL slice part (3.14+).
 *   - hashability: dict keys and set items go through PyDict_SetItem /
 *     PySet_Add, which raise TypeError for lists, dicts, sets and tuples or
 *     code objects containing them.
 *   - refs (3.4+): TYPE_REF n must name a filled slot: a code object,
 *     non-empty frozenset or slice is only inserted once complete
 *     (r_ref_reserve / r_ref_insert), a tuple, list, dict or set is
 *     registered before its items (R_REF; so a tuple can be referenced
 *     while still holding NULL items: any use that looks at its items
 *     crashes the real interpreter — counted as a failure), a scalar after
 *     it is read. Singletons, TYPE_NULL and TYPE_REF never take a slot,
 *     whatever their FLAG_REF bit says. So slots are numbered in pre-order
 *     of the flagged objects, which lets pyc_marshal_normalize renumber
 *     them in one pass. 2.7 has TYPE_INTERNED 't', appended to p->strings,
 *     and TYPE_STRINGREF 'R' naming one.
 *   - code objects: the fields of the version's TYPE_CODE reader, then the
 *     argument checks of PyCode_New (2.7: argcount, nlocals >= 0; 3.6-3.7:
 *     argcount, kwonlyargcount, nlocals >= 0 and "varnames is too small"),
 *     PyCode_NewWithPosOnlyArgs (3.8-3.10: also posonlyargcount <=
 *     argcount, stacksize and flags >= 0) or _PyCode_Validate (3.11+: the
 *     same without nlocals, len(localsplusnames) == len(localspluskinds),
 *     an even co_code, "co_varnames is too small" computed in wrapping
 *     int), intern_strings ("non-string found in code slot") and, 3.12 and
 *     3.13, _PyCode_Quicken's crash on instrumented opcodes.
 *   - depth: MAX_MARSHAL_STACK_DEPTH is 2000 for every version on POSIX.
 * The rules were read from CPython's Python/marshal.c (2.7, 3.11, 3.14) and
 * Objects/codeobject.c, and every one was checked against the real
 * interpreters 2.7 and 3.6-3.13 (tests/integration/test_marshal.py, and
 * hand-made bodies for each check); where the source and an interpreter
 * differed, the interpreter won.
 *
 * Versions whose rules could not be checked against an interpreter are not
 * judged: CPython before 2.7 and 3.0-3.5, PyPy and GraalPy give
 * PYC_MARSHAL_UNCHECKED. 3.4 and 3.5 write marshal format 4, read by the
 * same r_object() as 3.6 (v3.4.0, v3.6.0): the model parses them with
 * r_object's rules above but without PyCode_New's (not compared with an
 * interpreter), and pyc_marshal_validate does not judge them. 3.14 and
 * later use the 3.13 rules plus TYPE_SLICE, without the quickening check
 * (their opcode tables are not known here).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"
#include "lib/internal.h"

/* Python/marshal.c: MAX_MARSHAL_STACK_DEPTH (2000 outside Windows, in 2.7
 * and every 3.x). */
#define MAX_DEPTH 2000
#define FLAG_REF 0x80

/* Object kinds, as r_object() produces them. */
enum kind {
    K_NULL = 0,   /* TYPE_NULL, or a code object / slice with a NULL part */
    K_NONE, K_BOOL, K_ELLIPSIS, K_STOPITER,
    K_INT, K_FLOAT, K_COMPLEX,
    K_BYTES,      /* 3.x bytes ('s'); 2.7 str ('s', 't', 'R') */
    K_STR,        /* 3.x str; 2.7 unicode ('u') */
    K_TUPLE, K_LIST, K_DICT, K_SET, K_FROZENSET, K_CODE, K_SLICE,
};

/* struct obj flags. */
#define O_HASHABLE 0x01   /* hash() succeeds */
#define O_NAMES    0x02   /* tuple whose items are all exact str (the
                             version's intern_strings accepts it) */
#define O_PARTIAL  0x04   /* a tuple referenced while being read: its items
                             are still NULL */
#define O_TAINTED  0x08   /* a tuple holding (through tuples) a tuple that
                             was referenced while partial: it is part of a
                             cycle or holds NULLs; recursing into it never
                             ends well */
/* Bytes are looked at only where a code object uses them (as co_code:
 * _PyCode_Quicken; as co_localspluskinds: the local count), and what is
 * found is kept in the ref slot, so bytes that several code objects share
 * through TYPE_REF are scanned once: the work stays linear in the body. */
#define O_BADCODE  0x10   /* bytes that would crash _PyCode_Quicken as
                             co_code (3.12, 3.13), with O_QUICKENED */
#define O_QUICKENED 0x20  /* O_BADCODE is known */
#define O_COUNTED  0x40   /* nlocals is known */

struct obj {
    uint8_t kind;
    uint8_t flags;
    uint32_t size;      /* tuple / bytes length */
    uint32_t nlocals;   /* bytes with O_COUNTED: how many bytes have
                           CO_FAST_LOCAL (0x20), for 3.11+ co_localspluskinds */
    uint32_t slot;      /* the ref slot holding this object, plus one; 0 if
                           none */
    const unsigned char *data; /* bytes: the bytes themselves */
};

/* Ref table slot states (3.4+). */
enum slot_state {
    SLOT_RESERVED = 0, /* r_ref_reserve: holds None until r_ref_insert */
    SLOT_PARTIAL,      /* a tuple still being read */
    SLOT_READY,
};

struct slot {
    struct obj obj;
    uint8_t state;
};

/* Field descriptors of TYPE_CODE: 'L' an r_long, or the type an r_object
 * field must have for the code object to be built. Characters, so a layout
 * is a string the model (marshal_tree.c) walks too. */
enum field {
    F_LONG = 'L',
    F_CODESTR = 'c', /* 2.7 co_code: PyObject_CheckReadBuffer (str or unicode) */
    F_BYTES = 'b',   /* bytes (3.x) / str (2.7) */
    F_STR = 'u',     /* 3.x str (PyUnicode_Check) */
    F_TUPLE = 't',   /* co_consts */
    F_NAMES = 'n',   /* a tuple of exact str: intern_strings */
};

/* The layouts, in stream order (Python/marshal.c r_object, TYPE_CODE, at
 * v2.7.18, v3.4.0, v3.8.0 and v3.11.0; 3.10 renamed co_lnotab to
 * co_linetable without moving it):
 *   2.7       argcount nlocals stacksize flags code consts names varnames
 *             freevars cellvars filename name firstlineno lnotab
 *   3.4-3.7   argcount kwonlyargcount nlocals stacksize flags code consts
 *             names varnames freevars cellvars filename name firstlineno
 *             lnotab
 *   3.8-3.10  + posonlyargcount after argcount
 *   3.11+     argcount posonlyargcount kwonlyargcount stacksize flags code
 *             consts names localsplusnames localspluskinds filename name
 *             qualname firstlineno linetable exceptiontable */
static const char fields_27[] = "LLLLctnnnnbbLb";
static const char fields_36[] = "LLLLLbtnnnnuuLb";
static const char fields_38[] = "LLLLLLbtnnnnuuLb";
static const char fields_311[] = "LLLLLbtnnbuuuLbb";

static const char *const names_27[] = {
    "co_argcount", "co_nlocals", "co_stacksize", "co_flags", "co_code",
    "co_consts", "co_names", "co_varnames", "co_freevars", "co_cellvars",
    "co_filename", "co_name", "co_firstlineno", "co_lnotab",
};
static const char *const names_36[] = {
    "co_argcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize",
    "co_flags", "co_code", "co_consts", "co_names", "co_varnames",
    "co_freevars", "co_cellvars", "co_filename", "co_name",
    "co_firstlineno", "co_lnotab",
};
static const char *const names_38[] = {
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
    "co_stacksize", "co_flags", "co_code", "co_consts", "co_names",
    "co_varnames", "co_freevars", "co_cellvars", "co_filename", "co_name",
    "co_firstlineno", "co_lnotab",
};
static const char *const names_310[] = {
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
    "co_stacksize", "co_flags", "co_code", "co_consts", "co_names",
    "co_varnames", "co_freevars", "co_cellvars", "co_filename", "co_name",
    "co_firstlineno", "co_linetable",
};
static const char *const names_311[] = {
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount",
    "co_stacksize", "co_flags", "co_code", "co_consts", "co_names",
    "co_localsplusnames", "co_localspluskinds", "co_filename", "co_name",
    "co_qualname", "co_firstlineno", "co_linetable", "co_exceptiontable",
};

#define MAX_CODE_OBJECTS 10 /* object fields: 10 in every layout */
#define MAX_CODE_LONGS 8 /* 3.8-3.10: 6 leading longs + co_firstlineno */

/* 3.12 and 3.13 build every code object through _PyCode_Quicken
 * (Python/specialize.c), which walks co_code one instruction at a time,
 * skipping _PyOpcode_Caches[_Py_GetBaseOpcode(op)] inline-cache units
 * after each. _Py_GetBaseOpcode dereferences code->_co_monitoring, NULL in
 * a fresh code object, for INSTRUMENTED_LINE and INSTRUMENTED_INSTRUCTION:
 * such an opcode at an instruction boundary crashes marshal.loads
 * (SIGSEGV). The tables give the cache units skipped after each opcode
 * byte, 0xFF for the two crashing ones; they were measured on 3.12.1 and
 * 3.13.0 (an instrumented opcode placed k units after opcode X crashes iff
 * k > caches(X)) and agree with opcode._inline_cache_entries mapped through
 * opcode._specializations. Other versions: 3.11 quickens lazily, 3.14+ not
 * modelled. */
static const uint8_t quicken_caches_312[256] = {
    0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0,
    1, 0, 1, 1, 1, 1, 1, 3, 3, 1, 0, 0, 3, 3, 0, 0,
    0, 0, 3, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 0, 0, 0, 0, 0, 0, 0, 3, 1, 1, 1, 1, 0, 1, 1,
    1, 1, 1, 1, 0, 0, 9, 0, 9, 9, 0, 0, 9, 9, 9, 9,
    9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 4,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0, 4,
    4, 4, 0, 0, 4, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    0, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1,
    1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 3, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    0, 3, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0,
};
static const uint8_t quicken_caches_313[256] = {
    0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 1, 0, 0,
    0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0,
    0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0,
    0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0,
    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9,
    9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 4, 4, 1, 1, 0,
    1, 4, 4, 4, 1, 1, 3, 3, 3, 3, 3, 3, 1, 1, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 1, 1, 3, 0, 0, 0xFF, 0, 1, 1, 1, 1, 1, 0xFF, 0,
};


/* The two opcodes of each table that crash (0xFF): INSTRUMENTED_LINE and
 * INSTRUMENTED_INSTRUCTION. */
#define QUICKEN_CRASH_312_A 253
#define QUICKEN_CRASH_312_B 254
#define QUICKEN_CRASH_313_A 247
#define QUICKEN_CRASH_313_B 254

/* Whether co_code bytes S would crash _PyCode_Quicken (see above). Only
 * the two crashing opcodes A and B matter, so a co_code where neither byte
 * value occurs at all (nearly every real one; memchr is vectorised) needs
 * no walk. */
static int quicken_crashes(const uint8_t *caches, int a, int b,
                           const unsigned char *s, size_t n)
{
    size_t units = n / 2;
    if (!memchr(s, a, 2 * units) && !memchr(s, b, 2 * units))
        return 0;
    for (size_t i = 0; i < units; i++) {
        uint8_t c = caches[s[2 * i]];
        if (c == 0xFF)
            return 1;
        i += c;
    }
    return 0;
}

/* How many of the N bytes at S have CO_FAST_LOCAL (0x20) set, as
 * get_localsplus_counts counts the locals of a 3.11+ code object: eight
 * bytes at a time, bit 5 of each byte shifted to bit 0, masked, and the
 * eight 0/1 bytes summed into the top byte by one multiplication. */
static uint32_t count_fast_locals(const unsigned char *s, uint32_t n)
{
    const uint64_t ones = 0x0101010101010101u;
    uint32_t count = 0, k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, s + k, sizeof w);
        count += (uint32_t)((((w >> 5) & ones) * ones) >> 56);
    }
    for (; k < n; k++)
        count += (s[k] & 0x20) != 0;
    return count;
}

/* Stack frames: an object whose sub-objects are being read. */
enum frame_kind {
    FR_TUPLE, FR_LIST, FR_SET, FR_FROZENSET, FR_DICT, FR_CODE, FR_SLICE,
};

/* frame flags of code objects and slices: a part was NULL, so the object
 * is a NULL (without an exception) to its container. */
#define FR_NULL_RESULT 0x80

struct frame {
    uint8_t kind;
    uint8_t flags;       /* tuple: O_* of the result so far; code: whether a
                            field was NULL (then the result is NULL) */
    uint8_t field;       /* code: next field; dict: 1 when a key is pending;
                            slice: parts read */
    uint8_t nobj;        /* code: object fields read */
    uint8_t key_hashable;/* dict: the pending key's hashability */
    uint8_t nlongs;      /* code: longs read */
    uint32_t remaining;  /* sequences: items left to read */
    uint32_t size;       /* tuple: its length */
    int64_t ref;         /* ref slot of this object, -1 if none */
    size_t start;        /* offset of the type byte */
    /* Model sink only: the node being filled and the room in its items
     * array, which grows with what is read (not with the size the stream
     * claims: nested containers may all claim the rest of the body). */
    pyc_object *node;
    size_t cap;
    /* code objects */
    int32_t longs[MAX_CODE_LONGS];
    struct obj fobj[MAX_CODE_OBJECTS];
};

struct rules {
    int py2;            /* 2.7 reader */
    int refs;           /* FLAG_REF / TYPE_REF, a A z Z ) (3.4+) */
    int slice;          /* TYPE_SLICE (3.14+) */
    int judged;         /* pyc_marshal_validate answers (2.7, 3.6+) */
    int code_checks;    /* PyCode_New's checks are modelled (judged) */
    int recursive_consts; /* intern_string_constants recurses into tuples
                             (3.7+) */
    int null_code_error;  /* a NULL code field raises (3.11+) */
    int minor;
    uint8_t name_kind;  /* what intern_strings accepts: 2.7 str, 3.x str */
    const uint8_t *quicken; /* _PyCode_Quicken cache table, or NULL */
    int crash_a, crash_b;   /* its two crashing opcodes */
    enum lib_code_layout layout;
    const char *fields;
    const char *const *names;
    size_t nfields;
    size_t consts_index; /* co_consts among the object fields */
    char objfields[MAX_CODE_OBJECTS + 1]; /* FIELDS without the longs */
};

struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    size_t err_at;
    const struct rules *r;
    struct slot *slots;
    size_t nslots, capslots;
    size_t nstrings;          /* 2.7: interned strings (TYPE_STRINGREF) */
    struct frame *stack;
    size_t depth, capstack;
    /* The model sink (pyc_marshal_parse), NULL when validating: the node
     * of the object just read, and the nodes of the ref table and of the
     * 2.7 interned strings. */
    struct lib_marshal_sink *sink;
    pyc_object *node;
    size_t capstrings;
    size_t vstart;            /* where the object just read began: an error
                                 its container finds is reported there */
};

/* The hot helpers of the walk are forced inline: the walk is instantiated
 * twice (see walk_validate), and each copy wants them in its loop. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* ---- byte readers ------------------------------------------------------- */

static ALWAYS_INLINE int rd_byte(struct reader *rd, int *out)
{
    if (rd->pos >= rd->len)
        return -1;
    *out = rd->p[rd->pos++];
    return 0;
}

/* r_long: a little-endian 32-bit signed value. 3.4+ raise EOFError at the
 * end of the data (r_string); 2.7 reads missing bytes as EOF (-1) through
 * rs_byte and goes on, which this mirrors (returns 0 then). */
static ALWAYS_INLINE int rd_long(struct reader *rd, int32_t *out)
{
    if (rd->len - rd->pos >= 4) {
        *out = (int32_t)lib_load_le32(rd->p + rd->pos);
        rd->pos += 4;
        return 0;
    }
    if (!rd->r->py2) {
        rd->pos = rd->len;
        return -1;
    }
    /* 2.7: x = b0 | b1 << 8 | b2 << 16 | b3 << 24 with EOF == -1 for each
     * missing byte, as longs; then sign-extended from 32 bits. (Only a
     * non-code body can end so and be accepted: see past_end.) */
    if (rd->sink)
        rd->sink->past_end = true;
    long x = 0;
    for (int i = 0; i < 4; i++) {
        long b = rd->pos < rd->len ? (long)rd->p[rd->pos++] : -1L;
        x |= (long)((unsigned long)b << (8 * i));
    }
    *out = (int32_t)(uint32_t)((unsigned long)x & 0xFFFFFFFFUL);
    return 0;
}

/* ---- value checks --------------------------------------------------------- */

/* PyOS_string_to_double(buf, NULL, NULL) succeeds: _Py_dg_strtod (optional
 * sign, digits with at most one '.', at least one digit, optional exponent)
 * or _Py_parse_inf_or_nan ("inf", "infinity", "nan", any case, optional
 * sign), consuming the whole string; no whitespace, no underscores. The
 * string ends at its first NUL (r_float_str copies it into a C string). */
static int float_string_ok(const unsigned char *s, size_t n)
{
    const unsigned char *nul = memchr(s, 0, n);
    if (nul)
        n = (size_t)(nul - s);
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = 0;
    size_t j = i;
    while (j < n && s[j] >= '0' && s[j] <= '9') {
        j++;
        digits++;
    }
    if (j < n && s[j] == '.') {
        j++;
        while (j < n && s[j] >= '0' && s[j] <= '9') {
            j++;
            digits++;
        }
    }
    if (digits > 0) {
        if (j < n && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < n && (s[k] == '+' || s[k] == '-'))
                k++;
            size_t e0 = k;
            while (k < n && s[k] >= '0' && s[k] <= '9')
                k++;
            if (k > e0)
                j = k;
        }
        return j == n;
    }
    /* _Py_parse_inf_or_nan */
    size_t rest = n - i;
    static const char *const words[] = {"inf", "infinity", "nan"};
    for (size_t w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (rest != wl)
            continue;
        size_t k;
        for (k = 0; k < wl; k++) {
            unsigned char c = s[i + k];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            if (c != (unsigned char)words[w][k])
                break;
        }
        if (k == wl)
            return 1;
    }
    return 0;
}

/* PyUnicode_DecodeUTF8: strict in 2.7 (whose decoder accepts encoded
 * surrogates, U+D800-DFFF, as any other code point), "surrogatepass" in 3.x
 * (which lets exactly those through too). So both accept well-formed UTF-8
 * extended to the surrogate range: no overlong forms, nothing above
 * U+10FFFF, no truncated sequences. ASCII runs are skipped eight bytes at a
 * time, as CPython's ascii_decode does. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, sizeof w);
            if (!(w & 0x8080808080808080u)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- the model sink ---------------------------------------------------------- *
 *
 * The walk is one function, instantiated twice (walk_validate and
 * walk_build): BUILD is a constant in each, so the validating copy carries
 * no trace of the sink, and the building copy adds a node per object to
 * exactly the checks the validator makes. */

/* A node for the object whose type code (FLAG_REF removed) and FLAG_REF
 * bit were just read. */
static pyc_object *node_new(struct reader *rd, int type, int flag)
{
    pyc_object *o = rd->sink->alloc(rd->sink->ctx, sizeof *o);
    if (!o)
        return NULL;
    o->type = (uint8_t)type;
    o->flag_ref = flag != 0;
    o->ref = -1;
    return o;
}

/* Room made for a container's items before any is read: its claimed
 * size up to this. A claim is only a promise (nested containers may each
 * claim the rest of the body), so beyond it the array grows with what is
 * read; below it the waste of the containers still open is at most
 * MAX_DEPTH * ITEMS_AHEAD pointers. */
#define ITEMS_AHEAD 256

/* Appends CHILD to the items of frame F's node, growing the array in the
 * arena (doubling, up to the frame's size when it has one): memory stays
 * linear in what was read. */
static int node_append(struct reader *rd, struct frame *f, pyc_object *child)
{
    pyc_object *o = f->node;
    if (o->count == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        if (f->size && cap > f->size)
            cap = f->size;
        pyc_object **p = rd->sink->alloc(rd->sink->ctx, cap * sizeof *p);
        if (!p)
            return -1;
        if (o->count)
            memcpy(p, o->items, o->count * sizeof *p);
        o->items = p;
        f->cap = cap;
    }
    o->items[o->count++] = child;
    return 0;
}

/* Appends to the sink's 2.7 interned strings (p->strings). */
static int string_append(struct reader *rd, pyc_object *o)
{
    struct lib_marshal_sink *s = rd->sink;
    if (s->nstrings == rd->capstrings) {
        size_t cap = rd->capstrings ? rd->capstrings * 2 : 64;
        pyc_object **p = realloc(s->strings, cap * sizeof *p);
        if (!p)
            return -1;
        s->strings = p;
        rd->capstrings = cap;
    }
    s->strings[s->nstrings++] = o;
    return 0;
}

/* ---- ref table (3.4+) ------------------------------------------------------- */

/* r_ref / r_ref_reserve: append a slot, and with the sink its node (NULL
 * while reserved). Returns its index, or -1 on ENOMEM. (CPython's own
 * limit, "index list too large" at 0x7ffffffe slots, needs more objects
 * than a 32-bit-sized body can hold.) */
static ALWAYS_INLINE int64_t slot_append(struct reader *rd, const struct obj *o,
                                          int state, pyc_object *node,
                                          const bool build)
{
    if (rd->nslots == rd->capslots) {
        size_t cap = rd->capslots ? rd->capslots * 2 : 64;
        struct slot *s = realloc(rd->slots, cap * sizeof *s);
        if (!s)
            return -1;
        rd->slots = s;
        rd->capslots = cap;
        if (build) {
            pyc_object **n = realloc(rd->sink->slots, cap * sizeof *n);
            if (!n)
                return -1;
            rd->sink->slots = n;
            rd->sink->capslots = cap;
        }
    }
    rd->slots[rd->nslots].obj = *o;
    rd->slots[rd->nslots].obj.slot = (uint32_t)rd->nslots + 1;
    rd->slots[rd->nslots].state = (uint8_t)state;
    if (build) {
        rd->sink->slots[rd->nslots] = state == SLOT_RESERVED ? NULL : node;
        rd->sink->nslots = rd->nslots + 1;
    }
    return (int64_t)rd->nslots++;
}

/* ---- the walk ---------------------------------------------------------------- */

enum step {
    STEP_VALUE,   /* an object was read: deliver it to the enclosing frame */
    STEP_PUSHED,  /* a frame was pushed: read its first sub-object */
    STEP_FAIL,
};

#define FAIL(rd, st, at) \
    do { (rd)->err_at = (at); *status = (st); return STEP_FAIL; } while (0)

static int is_hashable(const struct obj *o)
{
    return (o->flags & O_HASHABLE) != 0;
}

/* Pushes a frame; the stack grows on demand (depth is bounded by
 * MAX_DEPTH before any push). NULL on ENOMEM. */
static ALWAYS_INLINE struct frame *push(struct reader *rd, int kind, size_t start)
{
    if (rd->depth == rd->capstack) {
        size_t cap = rd->capstack ? rd->capstack * 2 : 16;
        if (cap > MAX_DEPTH)
            cap = MAX_DEPTH;
        struct frame *st = realloc(rd->stack, cap * sizeof *st);
        if (!st)
            return NULL;
        rd->stack = st;
        rd->capstack = cap;
    }
    struct frame *f = &rd->stack[rd->depth++];
    memset(f, 0, offsetof(struct frame, longs));
    f->kind = (uint8_t)kind;
    f->ref = -1;
    f->start = start;
    return f;
}

/* Reads the code of one object; scalars come back in *out (STEP_VALUE),
 * containers push a frame (STEP_PUSHED) unless empty. With the sink, the
 * object's node is rd->node. */
static ALWAYS_INLINE enum step read_object(struct reader *rd, struct obj *out,
                                           pyc_marshal_status *status,
                                           const bool build)
{
    const struct rules *r = rd->r;
    size_t start = rd->pos;
    int code;
    int32_t n;
    pyc_object *node = NULL;

    memset(out, 0, sizeof *out);
    rd->vstart = start;
    if (rd_byte(rd, &code) < 0)
        FAIL(rd, start == 0 ? PYC_MARSHAL_EMPTY : PYC_MARSHAL_TRUNCATED, start);
    /* r_object: p->depth++ > MAX_MARSHAL_STACK_DEPTH -> "recursion limit
     * exceeded". The stack holds the enclosing objects. */
    if (rd->depth + 1 > MAX_DEPTH)
        FAIL(rd, PYC_MARSHAL_TOO_DEEP, start);

    int flag = 0, type = code;
    if (r->refs) {
        flag = code & FLAG_REF;
        type = code & ~FLAG_REF;
    }
    if (build) {
        node = rd->node = node_new(rd, type, flag);
        if (!node)
            goto nomem;
    }

    switch (type) {
    case '0':
        out->kind = K_NULL;
        if (build)
            node->is_null = true;
        return STEP_VALUE;
    /* Singletons never take a slot, whatever their FLAG_REF bit says. */
    case 'N':
        out->kind = K_NONE;
        out->flags = O_HASHABLE;
        return STEP_VALUE;
    case 'F':
    case 'T':
        out->kind = K_BOOL;
        out->flags = O_HASHABLE;
        return STEP_VALUE;
    case '.':
        out->kind = K_ELLIPSIS;
        out->flags = O_HASHABLE;
        return STEP_VALUE;
    case 'S':
        out->kind = K_STOPITER;
        out->flags = O_HASHABLE;
        return STEP_VALUE;

    case 'i': /* TYPE_INT */
        if (rd_long(rd, &n) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        out->kind = K_INT;
        out->flags = O_HASHABLE;
        if (build)
            node->value = n;
        break;

    case 'I': /* TYPE_INT64: r_long64, low word then high word (2.7: two
                 r_long, EOF-tolerant) */
        if (r->py2) {
            int32_t hi;
            if (rd_long(rd, &n) < 0 || rd_long(rd, &hi) < 0)
                FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
            if (build)
                node->value = (int64_t)((uint64_t)(uint32_t)n |
                                        (uint64_t)(uint32_t)hi << 32);
        } else {
            if (rd->len - rd->pos < 8) {
                rd->pos = rd->len;
                FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
            }
            if (build)
                node->value = (int64_t)lib_load_le64(rd->p + rd->pos);
            rd->pos += 8;
        }
        out->kind = K_INT;
        out->flags = O_HASHABLE;
        break;

    case 'l': { /* TYPE_LONG: r_PyLong, a signed digit count, then |n|
                   15-bit digits */
        if (rd_long(rd, &n) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        if (n == INT32_MIN) /* n < -SIZE32_MAX: "long size out of range" */
            FAIL(rd, PYC_MARSHAL_BAD_VALUE, start);
        uint32_t digits = n < 0 ? (uint32_t)(-(int64_t)n) : (uint32_t)n;
        if (build) {
            node->value = n;
            node->data = rd->p + rd->pos;
            node->size = 2 * (size_t)digits;
        }
        for (uint32_t k = 0; k < digits; k++) {
            size_t at = rd->pos;
            if (rd->len - rd->pos < 2) {
                /* 3.x: "marshal data too short"; 2.7: r_short reads EOF
                 * bytes, which makes the digit negative: out of range. */
                rd->pos = rd->len;
                FAIL(rd, r->py2 ? PYC_MARSHAL_BAD_VALUE : PYC_MARSHAL_TRUNCATED,
                     at);
            }
            unsigned d = rd->p[rd->pos] | (unsigned)rd->p[rd->pos + 1] << 8;
            rd->pos += 2;
            /* md < 0 || md > PyLong_MARSHAL_BASE, md a sign-extended short:
             * "digit out of range in long" */
            if (d & 0x8000)
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, at);
            /* "unnormalized long data": the top digit is zero. */
            if (d == 0 && k == digits - 1)
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, at);
        }
        out->kind = K_INT;
        out->flags = O_HASHABLE;
        break;
    }

    case 'f': /* TYPE_FLOAT: r_float_str, a one-byte length and the text */
    case 'x': { /* TYPE_COMPLEX: two of them (the node's data keeps both
                   length bytes) */
        int parts = type == 'f' ? 1 : 2;
        size_t from = rd->pos;
        for (int k = 0; k < parts; k++) {
            int len;
            size_t at = rd->pos;
            if (rd_byte(rd, &len) < 0 || rd->len - rd->pos < (size_t)len) {
                rd->pos = rd->len;
                FAIL(rd, PYC_MARSHAL_TRUNCATED, at);
            }
            if (!float_string_ok(rd->p + rd->pos, (size_t)len))
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, at);
            rd->pos += (size_t)len;
        }
        if (build) {
            if (type == 'f')
                from++;
            node->data = rd->p + from;
            node->size = rd->pos - from;
        }
        out->kind = type == 'f' ? K_FLOAT : K_COMPLEX;
        out->flags = O_HASHABLE;
        break;
    }

    case 'g': /* TYPE_BINARY_FLOAT: 8 bytes, any value (IEEE platform) */
    case 'y': { /* TYPE_BINARY_COMPLEX: 16 */
        size_t need = type == 'g' ? 8 : 16;
        if (rd->len - rd->pos < need) {
            rd->pos = rd->len;
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        }
        if (build) {
            node->data = rd->p + rd->pos;
            node->size = need;
        }
        rd->pos += need;
        out->kind = type == 'g' ? K_FLOAT : K_COMPLEX;
        out->flags = O_HASHABLE;
        break;
    }

    case 'z': /* TYPE_SHORT_ASCII (3.4+) */
    case 'Z': { /* TYPE_SHORT_ASCII_INTERNED (3.4+): the commonest objects
                   of a 3.x pyc (names), so read on their own path: a
                   one-byte length, Latin-1 text, nothing to check */
        int len;
        if (!r->refs)
            FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
        if (rd_byte(rd, &len) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        if (rd->len - rd->pos < (size_t)len) {
            rd->pos = rd->len;
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        }
        out->kind = K_STR;
        out->flags = O_HASHABLE;
        out->size = (uint32_t)len;
        if (build) {
            node->data = rd->p + rd->pos;
            node->size = (size_t)len;
        }
        rd->pos += (size_t)len;
        break;
    }

    case 's': /* TYPE_STRING: bytes (3.x), str (2.7) */
    case 't': /* TYPE_INTERNED: str (2.7, appended to the strings list);
                 interned unicode (3.x) */
    case 'u': /* TYPE_UNICODE */
    case 'a': /* TYPE_ASCII (3.4+) */
    case 'A': { /* TYPE_ASCII_INTERNED (3.4+) */
        if (!r->refs && (type == 'a' || type == 'A'))
            FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
        uint32_t len;
        if (rd_long(rd, &n) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        if (n < 0) /* "... size out of range" */
            FAIL(rd, PYC_MARSHAL_BAD_VALUE, start);
        len = (uint32_t)n;
        if (rd->len - rd->pos < len) {
            rd->pos = rd->len;
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        }
        const unsigned char *s = rd->p + rd->pos;
        rd->pos += len;
        int unicode = r->py2 ? type == 'u' : type != 's';
        /* PyUnicode_DecodeUTF8 for 'u' (both) and 't' (3.x); the ASCII
         * codes take the bytes as Latin-1 (PyUnicode_FromKindAndData). */
        if ((type == 'u' || (type == 't' && !r->py2)) && !utf8_ok(s, len))
            FAIL(rd, PYC_MARSHAL_BAD_VALUE, start);
        out->kind = unicode ? K_STR : K_BYTES;
        out->flags = O_HASHABLE;
        out->size = len;
        out->data = s;
        if (build) {
            node->data = s;
            node->size = len;
        }
        if (r->py2 && type == 't') {
            rd->nstrings++;
            if (build && string_append(rd, node) < 0)
                goto nomem;
        }
        break;
    }

    case 'R': /* TYPE_STRINGREF (2.7): an index into the interned strings */
        if (!r->py2)
            FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
        if (rd_long(rd, &n) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        if (n < 0 || (uint64_t)n >= rd->nstrings) /* "string ref out of range" */
            FAIL(rd, PYC_MARSHAL_BAD_REF, start);
        out->kind = K_BYTES;
        out->flags = O_HASHABLE;
        /* Its length is not tracked: a stringref as co_code is the only use
         * of the length in 2.7 and any length is accepted there. */
        if (build)
            node->ref = n;
        return STEP_VALUE;

    case 'r': { /* TYPE_REF (3.4+) */
        if (!r->refs)
            FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
        if (rd_long(rd, &n) < 0)
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        /* "bad marshal data (invalid reference)": out of the list, or a slot
         * still holding its None placeholder. */
        if (n < 0 || (uint64_t)n >= rd->nslots)
            FAIL(rd, PYC_MARSHAL_BAD_REF, start);
        const struct slot *sl = &rd->slots[n];
        if (sl->state == SLOT_RESERVED)
            FAIL(rd, PYC_MARSHAL_BAD_REF, start);
        *out = sl->obj;
        if (sl->state == SLOT_PARTIAL)
            out->flags = O_PARTIAL; /* items unreadable, not hashable */
        /* A REF takes no slot of its own: the node names the slot. */
        if (build)
            node->ref = n;
        return STEP_VALUE;
    }

    case '(': /* TYPE_TUPLE */
    case ')': /* TYPE_SMALL_TUPLE (3.4+) */
    case '[': /* TYPE_LIST */
    case '<': /* TYPE_SET */
    case '>': { /* TYPE_FROZENSET */
        if (type == ')') {
            int b;
            if (!r->refs)
                FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
            /* (unsigned char)r_byte(p): EOF gives 255 items, then EOF. */
            if (rd_byte(rd, &b) < 0)
                FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
            n = b;
        } else {
            if (rd_long(rd, &n) < 0)
                FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
            if (n < 0)
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, start);
        }
        /* Every item takes at least one byte: a count beyond the data is
         * truncated whatever the items (CPython may fail earlier with
         * MemoryError; either way loads fails). */
        if ((uint32_t)n > rd->len - rd->pos) {
            rd->pos = rd->len;
            FAIL(rd, PYC_MARSHAL_TRUNCATED, start);
        }
        int fk = type == '(' || type == ')' ? FR_TUPLE
               : type == '[' ? FR_LIST
               : type == '<' ? FR_SET : FR_FROZENSET;
        struct obj self;
        memset(&self, 0, sizeof self);
        self.kind = fk == FR_TUPLE ? K_TUPLE : fk == FR_LIST ? K_LIST
                  : fk == FR_SET ? K_SET : K_FROZENSET;
        self.size = (uint32_t)n;
        int64_t ref = -1;
        if (flag) {
            /* Tuples, lists and sets: R_REF(v) right after creation, before
             * the items. Frozensets: r_ref_reserve before the items and
             * r_ref_insert after (the empty one: R_REF after, same slot). */
            int state = fk == FR_TUPLE ? SLOT_PARTIAL
                      : fk == FR_FROZENSET ? SLOT_RESERVED : SLOT_READY;
            if (fk == FR_FROZENSET && n == 0)
                state = SLOT_READY;
            if (state == SLOT_READY && fk == FR_FROZENSET)
                self.flags = O_HASHABLE;
            ref = slot_append(rd, &self, state, node, build);
            if (ref < 0)
                goto nomem;
            if (build)
                node->ref = (int32_t)ref;
        }
        if (n == 0) {
            *out = self;
            if (fk == FR_TUPLE)
                out->flags = O_HASHABLE | O_NAMES;
            else if (fk == FR_FROZENSET)
                out->flags = O_HASHABLE;
            if (ref >= 0)
                rd->slots[ref].obj = *out, rd->slots[ref].state = SLOT_READY;
            return STEP_VALUE;
        }
        struct frame *f = push(rd, fk, start);
        if (!f)
            goto nomem;
        f->remaining = (uint32_t)n;
        f->size = (uint32_t)n;
        if (build) {
            f->cap = n < ITEMS_AHEAD ? (size_t)n : ITEMS_AHEAD;
            node->items = rd->sink->alloc(rd->sink->ctx, f->cap * sizeof *node->items);
            if (!node->items)
                goto nomem;
        }
        f->ref = ref;
        f->flags = fk == FR_TUPLE ? (O_HASHABLE | O_NAMES) : 0;
        f->node = node;
        return STEP_PUSHED;
    }

    case '{': { /* TYPE_DICT: R_REF before the items */
        struct obj self;
        memset(&self, 0, sizeof self);
        self.kind = K_DICT;
        int64_t ref = -1;
        if (flag && (ref = slot_append(rd, &self, SLOT_READY, node, build)) < 0)
            goto nomem;
        if (build)
            node->ref = (int32_t)ref;
        struct frame *f = push(rd, FR_DICT, start);
        if (!f)
            goto nomem;
        f->ref = ref;
        f->node = node;
        return STEP_PUSHED;
    }

    case 'c': { /* TYPE_CODE: r_ref_reserve first (3.4+) */
        int64_t ref = -1;
        struct obj self;
        memset(&self, 0, sizeof self);
        self.kind = K_CODE;
        if (flag && (ref = slot_append(rd, &self, SLOT_RESERVED, node, build)) < 0)
            goto nomem;
        if (build)
            node->ref = (int32_t)ref;
        struct frame *f = push(rd, FR_CODE, start);
        if (!f)
            goto nomem;
        f->ref = ref;
        f->node = node;
        f->size = MAX_CODE_OBJECTS;
        /* Leading longs; 3.x fails on EOF, 2.7 goes on with EOF bytes. */
        while (r->fields[f->field] == F_LONG) {
            int32_t v;
            size_t at = rd->pos;
            if (rd_long(rd, &v) < 0)
                FAIL(rd, PYC_MARSHAL_TRUNCATED, at);
            f->longs[f->nlongs++] = v;
            f->field++;
        }
        return STEP_PUSHED;
    }

    case ':': { /* TYPE_SLICE (3.14+): r_ref_reserve, start, stop, step */
        if (!r->slice)
            FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
        int64_t ref = -1;
        struct obj self;
        memset(&self, 0, sizeof self);
        self.kind = K_SLICE;
        if (flag && (ref = slot_append(rd, &self, SLOT_RESERVED, node, build)) < 0)
            goto nomem;
        if (build)
            node->ref = (int32_t)ref;
        struct frame *f = push(rd, FR_SLICE, start);
        if (!f)
            goto nomem;
        f->ref = ref;
        f->flags = O_HASHABLE;
        f->node = node;
        f->size = 3;
        return STEP_PUSHED;
    }

    default:
        /* "bad marshal data (unknown type code)" */
        FAIL(rd, PYC_MARSHAL_BAD_TYPE, start);
    }

    /* Scalars read whole: R_REF after creation. */
    if (flag) {
        int64_t ref = slot_append(rd, out, SLOT_READY, node, build);
        if (ref < 0)
            goto nomem;
        out->slot = (uint32_t)ref + 1;
        if (build)
            node->ref = (int32_t)ref;
    }
    return STEP_VALUE;

nomem:
    errno = ENOMEM;
    FAIL(rd, PYC_MARSHAL_UNCHECKED, start);
}

/* Wraps like CPython's int arithmetic (built with -fwrapv). */
static int32_t wrap32(int64_t v)
{
    return (int32_t)(uint32_t)(uint64_t)v;
}

/* Bytes X as co_code would crash _PyCode_Quicken (3.12, 3.13). Kept in
 * X's slot (see O_QUICKENED). */
static int bad_code_bytes(struct reader *rd, const struct obj *x)
{
    const struct rules *r = rd->r;
    if (!r->quicken)
        return 0;
    if (x->flags & O_QUICKENED)
        return (x->flags & O_BADCODE) != 0;
    int bad = quicken_crashes(r->quicken, r->crash_a, r->crash_b, x->data, x->size);
    if (x->slot)
        rd->slots[x->slot - 1].obj.flags |= (uint8_t)(O_QUICKENED | (bad ? O_BADCODE : 0));
    return bad;
}

/* How many bytes of X have CO_FAST_LOCAL set (see count_fast_locals); kept
 * in X's slot (O_COUNTED). */
static uint32_t fast_locals(struct reader *rd, const struct obj *x)
{
    if (x->flags & O_COUNTED)
        return x->nlocals;
    uint32_t n = count_fast_locals(x->data, x->size);
    if (x->slot) {
        struct obj *s = &rd->slots[x->slot - 1].obj;
        s->flags |= O_COUNTED;
        s->nlocals = n;
    }
    return n;
}

/* The code object is fully read: the checks of PyCode_New (2.7, 3.6, 3.7),
 * PyCode_NewWithPosOnlyArgs (3.8-3.10), _PyCode_Validate (3.11+), and
 * intern_strings / intern_string_constants on what they walk. Returns 0 if
 * a code object is built. */
static int code_ok(struct reader *rd, const struct frame *f)
{
    const struct rules *r = rd->r;
    const struct obj *o = f->fobj;
    size_t k = 0; /* index into the object fields */
    const int32_t *L = f->longs;

    /* 3.4 and 3.5: PyCode_New's checks of those versions are not modelled
     * (no interpreter to check them against); r_object's are applied. */
    if (!r->code_checks)
        return 0;

    /* Types of the object fields: PyErr_BadInternalCall. */
    for (; k < MAX_CODE_OBJECTS; k++) {
        enum field fd = (enum field)r->objfields[k];
        const struct obj *x = &o[k];
        switch (fd) {
        case F_CODESTR:
            if (x->kind != K_BYTES && x->kind != K_STR)
                return -1;
            break;
        case F_BYTES:
            if (x->kind != K_BYTES)
                return -1;
            break;
        case F_STR:
            if (x->kind != K_STR)
                return -1;
            break;
        case F_TUPLE:
            if (x->kind != K_TUPLE)
                return -1;
            break;
        case F_NAMES:
            /* PyTuple_Check, then intern_strings: "non-string found in
             * code slot" (Py_FatalError before 3.8, SystemError after). */
            if (x->kind != K_TUPLE || !(x->flags & O_NAMES) ||
                (x->flags & O_PARTIAL))
                return -1;
            break;
        case F_LONG:
            break;
        }
    }

    const struct obj *codebytes, *consts;
    int32_t argcount, posonly = 0, kwonly = 0, nlocals = 0, stacksize, flags;
    const int CO_VARARGS = 0x4, CO_VARKEYWORDS = 0x8;

    switch (r->layout) {
    case LIB_CODE_27:
        /* argcount < 0 || nlocals < 0 -> PyErr_BadInternalCall */
        argcount = L[0];
        nlocals = L[1];
        if (argcount < 0 || nlocals < 0)
            return -1;
        /* The consts loop tests PyString_Check on each item (no refs in
         * 2.7, so never a NULL item). */
        return 0;
    case LIB_CODE_36:
        argcount = L[0];
        kwonly = L[1];
        nlocals = L[2];
        stacksize = L[3];
        flags = L[4];
        codebytes = &o[0];
        consts = &o[1];
        break;
    case LIB_CODE_38:
        argcount = L[0];
        posonly = L[1];
        kwonly = L[2];
        nlocals = L[3];
        stacksize = L[4];
        flags = L[5];
        codebytes = &o[0];
        consts = &o[1];
        break;
    case LIB_CODE_311:
    default:
        argcount = L[0];
        posonly = L[1];
        kwonly = L[2];
        stacksize = L[3];
        flags = L[4];
        codebytes = &o[0];
        consts = &o[1];
        break;
    }

    if (r->layout == LIB_CODE_36) {
        /* argcount < 0 || kwonlyargcount < 0 || nlocals < 0 */
        if (argcount < 0 || kwonly < 0 || nlocals < 0)
            return -1;
    } else {
        /* argcount < posonlyargcount || posonlyargcount < 0 ||
         * kwonlyargcount < 0 || [nlocals < 0 ||] stacksize < 0 || flags < 0 */
        if (argcount < posonly || posonly < 0 || kwonly < 0 || nlocals < 0 ||
            stacksize < 0 || flags < 0)
            return -1;
    }
    (void)stacksize;

    /* "code: co_code is malformed": not a whole number of code units
     * (_PyCode_Validate, 3.11+; 3.6-3.10 accept an odd length). */
    if (r->layout == LIB_CODE_311 && codebytes->size % 2)
        return -1;
    /* _PyCode_Quicken crashes on an instrumented opcode (3.12, 3.13). */
    if (bad_code_bytes(rd, codebytes))
        return -1;

    /* consts: the items are looked at (3.6: all_name_chars on each;
     * 3.7+: intern_string_constants, recursing into tuples and
     * frozensets): a tuple still being read has NULL items, a cyclic one
     * never ends. */
    if (consts->flags & O_PARTIAL)
        return -1;
    if (r->recursive_consts && (consts->flags & O_TAINTED))
        return -1;

    if (r->layout == LIB_CODE_311) {
        /* _PyCode_Validate: len(localsplusnames) == len(localspluskinds);
         * "code: co_varnames is too small" when the locals
         * (get_localsplus_counts: kinds with CO_FAST_LOCAL) cannot hold the
         * arguments, computed in int. */
        const struct obj *lpnames = &o[3], *lpkinds = &o[4];
        if (lpnames->size != lpkinds->size)
            return -1;
        uint32_t kinds = fast_locals(rd, lpkinds);
        int32_t nplain = wrap32((int64_t)(int32_t)kinds - argcount);
        nplain = wrap32((int64_t)nplain - kwonly);
        nplain = wrap32((int64_t)nplain - ((flags & CO_VARARGS) != 0));
        nplain = wrap32((int64_t)nplain - ((flags & CO_VARKEYWORDS) != 0));
        if (nplain < 0)
            return -1;
    } else {
        /* "code: varnames is too small" (3.6-3.10) */
        const struct obj *varnames = &o[3];
        int64_t nvar = varnames->size;
        int64_t total = (int64_t)argcount + kwonly + ((flags & CO_VARARGS) != 0) +
                        ((flags & CO_VARKEYWORDS) != 0);
        if (argcount > nvar || kwonly > nvar)
            total = nvar + 1;
        if (total > nvar)
            return -1;
    }
    return 0;
}

/* An object was completed; hand it to the enclosing frame. Returns
 * STEP_PUSHED when the frame needs more sub-objects, STEP_VALUE when the
 * frame completed too (then *v is its result, and with the sink rd->node
 * its node), STEP_FAIL on error. */
static ALWAYS_INLINE enum step deliver(struct reader *rd, struct obj *v,
                                       pyc_marshal_status *status,
                                       const bool build)
{
    const struct rules *r = rd->r;
    struct frame *f = &rd->stack[rd->depth - 1];
    int done = 0;

    if (build && node_append(rd, f, rd->node) < 0) {
        errno = ENOMEM;
        FAIL(rd, PYC_MARSHAL_UNCHECKED, rd->pos);
    }
    switch (f->kind) {
    case FR_TUPLE:
    case FR_LIST:
    case FR_SET:
    case FR_FROZENSET:
        /* "NULL object in marshal data for tuple/list/set" */
        if (v->kind == K_NULL)
            FAIL(rd, PYC_MARSHAL_BAD_VALUE, rd->vstart);
        if (f->kind == FR_TUPLE) {
            if (v->kind != r->name_kind)
                f->flags &= (uint8_t)~O_NAMES;
            if (!is_hashable(v) || (v->flags & (O_PARTIAL | O_TAINTED)))
                f->flags &= (uint8_t)~O_HASHABLE;
            if (v->kind == K_TUPLE && (v->flags & (O_PARTIAL | O_TAINTED)))
                f->flags |= O_TAINTED;
        } else if (f->kind != FR_LIST) {
            /* PySet_Add: TypeError unhashable */
            if (!is_hashable(v))
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, rd->vstart);
        }
        if (--f->remaining == 0)
            done = 1;
        break;

    case FR_DICT:
        if (!f->field) {
            if (v->kind == K_NULL) {
                done = 1; /* the NULL key ends the dict */
            } else {
                f->field = 1;
                f->key_hashable = (uint8_t)is_hashable(v);
            }
        } else {
            f->field = 0;
            if (v->kind == K_NULL) {
                /* 3.x: a NULL value ends the dict (the key is dropped);
                 * 2.7: the pair is dropped and the loop goes on. */
                if (!r->py2)
                    done = 1;
            } else if (!f->key_hashable) {
                /* PyDict_SetItem: TypeError unhashable type (found once
                 * the value is read) */
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, rd->vstart);
            }
        }
        break;

    case FR_CODE: {
        if (v->kind == K_NULL) {
            /* A NULL field: code_error. 3.11+ raise "NULL object in
             * marshal data for code object" (3.11.7 does, Debian's 3.11.2
             * does not: the newer behaviour is kept); before, the code
             * object is a silent NULL to its container (a dict key or
             * value then ends the dict). */
            if (r->null_code_error)
                FAIL(rd, PYC_MARSHAL_BAD_VALUE, rd->vstart);
            f->flags = FR_NULL_RESULT;
            done = 1;
            break;
        }
        f->fobj[f->nobj++] = *v;
        f->field++;
        while (r->fields[f->field] == F_LONG) {
            int32_t x;
            size_t at = rd->pos;
            if (rd_long(rd, &x) < 0)
                FAIL(rd, PYC_MARSHAL_TRUNCATED, at);
            f->longs[f->nlongs++] = x;
            f->field++;
        }
        if (f->field == r->nfields)
            done = 1;
        break;
    }

    case FR_SLICE:
        if (v->kind == K_NULL) {
            f->flags = FR_NULL_RESULT;
            done = 1;
            break;
        }
        if (!is_hashable(v))
            f->flags &= (uint8_t)~O_HASHABLE;
        if (++f->field == 3)
            done = 1;
        break;
    }

    if (!done)
        return STEP_PUSHED;

    /* The frame is complete: build its summary. */
    struct obj res;
    memset(&res, 0, sizeof res);
    switch (f->kind) {
    case FR_TUPLE:
        res.kind = K_TUPLE;
        res.size = f->size;
        res.flags = f->flags & (O_HASHABLE | O_NAMES | O_TAINTED);
        break;
    case FR_LIST:
        res.kind = K_LIST;
        break;
    case FR_SET:
        res.kind = K_SET;
        break;
    case FR_FROZENSET:
        res.kind = K_FROZENSET;
        res.flags = O_HASHABLE;
        break;
    case FR_DICT:
        res.kind = K_DICT;
        break;
    case FR_CODE:
        if (build) {
            memcpy(f->node->longs, f->longs, f->nlongs * sizeof *f->longs);
            f->node->nlongs = f->nlongs;
        }
        if (f->flags & FR_NULL_RESULT) {
            res.kind = K_NULL;
            if (build)
                f->node->is_null = true;
            break;
        }
        if (code_ok(rd, f) < 0)
            FAIL(rd, PYC_MARSHAL_BAD_VALUE, f->start);
        res.kind = K_CODE;
        /* code_hash hashes co_consts (and names, which are str). */
        {
            const struct obj *consts = &f->fobj[r->consts_index];
            if (is_hashable(consts) && !(consts->flags & (O_PARTIAL | O_TAINTED)))
                res.flags = O_HASHABLE;
        }
        break;
    case FR_SLICE:
        if (f->flags & FR_NULL_RESULT) {
            res.kind = K_NULL;
            if (build)
                f->node->is_null = true;
            break;
        }
        res.kind = K_SLICE;
        res.flags = f->flags & O_HASHABLE;
        break;
    }
    if (f->ref >= 0 && res.kind != K_NULL) {
        rd->slots[f->ref].obj = res;
        rd->slots[f->ref].state = SLOT_READY;
        if (build)
            rd->sink->slots[f->ref] = f->node;
    }
    if (build)
        rd->node = f->node;
    rd->vstart = f->start;
    rd->depth--;
    *v = res;
    return STEP_VALUE;
}

/* The walk: objects are read (read_object) and handed up (deliver) until
 * the top one is complete. */
static ALWAYS_INLINE pyc_marshal_status walk(struct reader *rd, const bool build)
{
    pyc_marshal_status status = PYC_MARSHAL_OK;
    struct obj v;

    for (;;) {
        enum step s = read_object(rd, &v, &status, build);
        if (s == STEP_FAIL)
            return status;
        if (s == STEP_PUSHED)
            continue;
        /* Deliver completed objects upwards. */
        while (rd->depth > 0) {
            s = deliver(rd, &v, &status, build);
            if (s == STEP_FAIL)
                return status;
            if (s == STEP_PUSHED)
                break;
        }
        if (rd->depth == 0)
            break;
    }
    if (build) {
        rd->sink->root = rd->node;
        rd->sink->end = rd->pos;
    }
    /* read_object(): a NULL result is "NULL object in marshal data for
     * object"; importlib wants a code object. */
    rd->err_at = 0;
    if (v.kind == K_NULL)
        return PYC_MARSHAL_BAD_VALUE;
    if (v.kind != K_CODE)
        return PYC_MARSHAL_NOT_CODE;
    return PYC_MARSHAL_OK;
}

static pyc_marshal_status walk_validate(struct reader *rd)
{
    return walk(rd, false);
}

static pyc_marshal_status walk_build(struct reader *rd)
{
    return walk(rd, true);
}

static int rules_for(const pyc_magic *m, struct rules *r)
{
    memset(r, 0, sizeof *r);
    if (!m || m->implementation != PYC_IMPL_CPYTHON)
        return -1;
    int maj = m->major, min = m->minor;
    r->minor = min;
    if (maj == 2 && min == 7) {
        r->py2 = 1;
        r->judged = 1;
        r->code_checks = 1;
        r->name_kind = K_BYTES;
        r->layout = LIB_CODE_27;
        r->fields = fields_27;
        r->names = names_27;
    } else if (maj == 3 && min >= 4) {
        /* 3.4 and 3.5 write marshal format 4, read by the same r_object
         * as 3.6's; what their PyCode_New checks was never compared with
         * an interpreter, so they are parsed but not judged. */
        r->refs = 1;
        r->judged = min >= 6;
        r->code_checks = min >= 6;
        r->name_kind = K_STR;
        r->slice = min >= 14;
        r->recursive_consts = min >= 7;
        r->null_code_error = min >= 11;
        if (min == 12) {
            r->quicken = quicken_caches_312;
            r->crash_a = QUICKEN_CRASH_312_A;
            r->crash_b = QUICKEN_CRASH_312_B;
        } else if (min == 13) {
            r->quicken = quicken_caches_313;
            r->crash_a = QUICKEN_CRASH_313_A;
            r->crash_b = QUICKEN_CRASH_313_B;
        }
        if (min <= 7) {
            r->layout = LIB_CODE_36;
            r->fields = fields_36;
            r->names = names_36;
        } else if (min <= 10) {
            r->layout = LIB_CODE_38;
            r->fields = fields_38;
            r->names = min == 10 ? names_310 : names_38;
        } else {
            r->layout = LIB_CODE_311;
            r->fields = fields_311;
            r->names = names_311;
        }
    } else {
        return -1;
    }
    r->nfields = strlen(r->fields);
    for (size_t i = 0, k = 0; i < r->nfields; i++)
        if (r->fields[i] != F_LONG)
            r->objfields[k++] = r->fields[i];
    for (size_t i = 0; r->fields[i] != F_TUPLE; i++)
        r->consts_index += r->fields[i] != F_LONG;
    return 0;
}

int lib_marshal_format(const pyc_magic *m, struct lib_marshal_format *out)
{
    struct rules r;
    memset(out, 0, sizeof *out);
    if (rules_for(m, &r) < 0)
        return -1;
    out->py2 = r.py2;
    out->refs = r.refs;
    out->slice = r.slice;
    out->judged = r.judged;
    out->minor = r.minor;
    out->layout = r.layout;
    out->fields = r.fields;
    out->names = r.names;
    return 0;
}

pyc_marshal_status lib_marshal_walk(const pyc_magic *m, const void *body,
                                    size_t len, struct lib_marshal_sink *sink,
                                    size_t *offset)
{
    struct rules rules;
    struct reader rd;
    pyc_marshal_status status;

    if (offset)
        *offset = 0;
    if (rules_for(m, &rules) < 0) {
        errno = m ? ENOTSUP : EINVAL;
        return PYC_MARSHAL_UNCHECKED;
    }
    if (len == 0 || !body)
        return PYC_MARSHAL_EMPTY;

    memset(&rd, 0, sizeof rd);
    rd.p = body;
    rd.len = len;
    rd.r = &rules;
    rd.sink = sink;
    status = sink ? walk_build(&rd) : walk_validate(&rd);
    if (offset && status != PYC_MARSHAL_OK)
        *offset = rd.err_at;
    free(rd.stack);
    free(rd.slots);
    return status;
}

pyc_marshal_status pyc_marshal_validate(const pyc_magic *m, const void *body,
                                        size_t len, size_t *offset)
{
    struct rules rules;
    if (offset)
        *offset = 0;
    if (rules_for(m, &rules) < 0 || !rules.judged) {
        errno = m ? ENOTSUP : EINVAL;
        return PYC_MARSHAL_UNCHECKED;
    }
    return lib_marshal_walk(m, body, len, NULL, offset);
}

const char *pyc_marshal_status_message(pyc_marshal_status status)
{
    switch (status) {
    case PYC_MARSHAL_OK:
        return "ok";
    case PYC_MARSHAL_EMPTY:
        return "marshal data too short";
    case PYC_MARSHAL_TRUNCATED:
        return "marshal data truncated";
    case PYC_MARSHAL_BAD_TYPE:
        return "bad marshal data (unknown type code)";
    case PYC_MARSHAL_BAD_REF:
        return "bad marshal data (invalid reference)";
    case PYC_MARSHAL_TOO_DEEP:
        return "marshal data nested too deeply";
    case PYC_MARSHAL_BAD_VALUE:
        return "bad marshal data";
    case PYC_MARSHAL_NOT_CODE:
        return "not a code object";
    case PYC_MARSHAL_TRAILING:
        return "trailing data";
    case PYC_MARSHAL_UNCHECKED:
        return "marshal format of this version not checked";
    }
    return "unknown marshal status";
}
