/*
 * magic.c — which interpreter wrote a cache file: the magic-number table.
 *
 * Every bytecode cache file starts with a 4-byte magic word. For CPython it
 * is the 16-bit magic number, little-endian, followed by b"\r\n"
 * (importlib._bootstrap_external.MAGIC_NUMBER; Python/import.c before 3.3),
 * and it changes whenever the bytecode format does. This module holds every
 * magic CPython has used from 1.0 to the newest alpha of its main branch,
 * plus the magics other implementations write into __pycache__ (PyPy,
 * GraalPy), and answers: which interpreter wrote this word (pyc_magic_lookup),
 * what the final releases of a version write (pyc_magic_final), which magic
 * a cache tag stands for (pyc_magic_for_tag), and what a user meant by
 * "3.11" or "pypy310" (pyc_magic_parse_version).
 *
 * Sources, per part of the table:
 *   - CPython 1.5 to 3.13: the "Known values" comment above MAGIC_NUMBER in
 *     Lib/importlib/_bootstrap_external.py (as shipped with 3.13.0);
 *     3.14 and 3.15: Include/internal/pycore_magic_number.h of CPython's
 *     main branch (commit 00e7800e4c3e), whose PYC_MAGIC_NUMBER is 3657, a
 *     value that has no comment entry yet. Release labels and notes are
 *     CPython's own, with two exceptions said where they occur (62011,
 *     3351). Values before 1.5 are not in CPython's comment: 1.0 (39170),
 *     1.1/1.2 (39171), 1.3 (11913) and 1.4 (5892) come from
 *     rocky/python-xdis xdis/magics.py, which also records (int2magic) that
 *     1.0 and 1.1 wrote b"\x99\x00" instead of b"\r\n" after the number.
 *   - Python 2.x -U: with Py_UnicodeFlag set, Python/import.c's
 *     _PyImport_Init does `pyc_magic = MAGIC + 1` (2.0 to 2.7; CPython keeps
 *     its 2.x magics odd and 2 apart for this reason). Those words are in the
 *     table, except where MAGIC + 1 is itself a real magic (62091 + 1 ==
 *     62092, 2.5a0): there the real one wins.
 *   - Header layouts: 8 bytes (magic, mtime) until 3210 (3.3a1 "added size
 *     modulo 2**32 to the pyc header"), 12 bytes until 3392 (3.7a4 "PEP 552:
 *     Deterministic pycs", the flags word), 16 bytes after.
 *   - Cache tags: sys.implementation.cache_tag (imp.get_tag() in 3.2), which
 *     PEP 3147 introduced in 3.2: "cpython-3N" from 3160 (3.2a1, whose
 *     comment entry reads "tag: cpython-32") on.
 *   - PyPy and GraalPy: see the comments on their part of the table.
 *
 * The table is in pyc_magic_at order: by implementation, then
 * chronologically. Lookups by word use a sorted index built once (binary
 * search: pyc_magic_lookup runs once per cache file in a tree walk); final
 * values per version are indexed at the same time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"

/* b"\r\n" in the upper half of the little-endian magic word. */
#define CRLF ((uint32_t)'\r' << 16 | (uint32_t)'\n' << 24)
/* b"\x99\x00": what 1.0 and 1.1 wrote instead (xdis int2magic). */
#define X99 ((uint32_t)0x99 << 16)

#define MTIME PYC_LAYOUT_MTIME
#define MTIME_SIZE PYC_LAYOUT_MTIME_SIZE
#define FLAGS PYC_LAYOUT_FLAGS

#define ENTRY(impl, word, num, maj, min, rel, tag, layout, fin, note) \
    { (word), (num), (impl), (maj), (min), (rel), (tag), (layout), (fin), (note) }
#define CP(num, maj, min, rel, tag, layout, fin, note) \
    ENTRY(PYC_IMPL_CPYTHON, (uint32_t)(num) | CRLF, num, maj, min, rel, tag, layout, fin, note)
#define PP(num, maj, min, rel, tag, layout, fin, note) \
    ENTRY(PYC_IMPL_PYPY, (uint32_t)(num) | CRLF, num, maj, min, rel, tag, layout, fin, note)
#define GP(num, maj, min, rel, tag, layout, fin, note) \
    ENTRY(PYC_IMPL_GRAALPY, (uint32_t)(num) | CRLF, num, maj, min, rel, tag, layout, fin, note)

static const pyc_magic table[] = {
    /* ---- CPython -------------------------------------------------------- */
    /* 1.0-1.4: rocky/python-xdis xdis/magics.py (not in CPython's comment). */
    ENTRY(PYC_IMPL_CPYTHON, 39170u | X99, 39170, 1, 0, "1.0", NULL, MTIME, true,
          "magic word ends in b\"\\x99\\x00\", not b\"\\r\\n\""),
    ENTRY(PYC_IMPL_CPYTHON, 39171u | X99, 39171, 1, 1, "1.1-1.2", NULL, MTIME, true,
          "magic word ends in b\"\\x99\\x00\", not b\"\\r\\n\""),
    CP(11913, 1, 3, "1.3", NULL, MTIME, true, ""),
    CP(5892, 1, 4, "1.4", NULL, MTIME, true, ""),
    /* From here on: CPython's "Known values" comment. */
    CP(20121, 1, 5, "1.5-1.5.2", NULL, MTIME, true, ""),
    CP(50428, 1, 6, "1.6", NULL, MTIME, true, ""),
    CP(50823, 2, 0, "2.0-2.0.1", NULL, MTIME, true, ""),
    CP(50824, 2, 0, "2.0-2.0.1 -U", NULL, MTIME, false, "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(60202, 2, 1, "2.1-2.1.2", NULL, MTIME, true, ""),
    CP(60203, 2, 1, "2.1-2.1.2 -U", NULL, MTIME, false, "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(60717, 2, 2, "2.2", NULL, MTIME, true, ""),
    CP(60718, 2, 2, "2.2 -U", NULL, MTIME, false, "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62011, 2, 3, "2.3a0, 2.3", NULL, MTIME, true,
       "listed twice: 2.3a0 went to 62021 and back (!)"),
    CP(62012, 2, 3, "2.3a0, 2.3 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62021, 2, 3, "2.3a0", NULL, MTIME, false, ""),
    CP(62022, 2, 3, "2.3a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62041, 2, 4, "2.4a0", NULL, MTIME, false, ""),
    CP(62042, 2, 4, "2.4a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62051, 2, 4, "2.4a3", NULL, MTIME, false, ""),
    CP(62052, 2, 4, "2.4a3 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62061, 2, 4, "2.4b1", NULL, MTIME, true, ""),
    CP(62062, 2, 4, "2.4b1 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62071, 2, 5, "2.5a0", NULL, MTIME, false, ""),
    CP(62072, 2, 5, "2.5a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62081, 2, 5, "2.5a0", NULL, MTIME, false,
       "ast-branch"),
    CP(62082, 2, 5, "2.5a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62091, 2, 5, "2.5a0", NULL, MTIME, false,
       "with"),
    CP(62092, 2, 5, "2.5a0", NULL, MTIME, false,
       "changed WITH_CLEANUP opcode"),
    CP(62093, 2, 5, "2.5a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62101, 2, 5, "2.5b3", NULL, MTIME, false,
       "fix wrong code: for x, in ..."),
    CP(62102, 2, 5, "2.5b3 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62111, 2, 5, "2.5b3", NULL, MTIME, false,
       "fix wrong code: x += yield"),
    CP(62112, 2, 5, "2.5b3 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62121, 2, 5, "2.5c1", NULL, MTIME, false,
       "fix wrong lnotab with for loops and storing constants that should have "
       "been removed"),
    CP(62122, 2, 5, "2.5c1 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62131, 2, 5, "2.5c2", NULL, MTIME, true,
       "fix wrong code: for x, in ... in listcomp/genexp"),
    CP(62132, 2, 5, "2.5c2 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62151, 2, 6, "2.6a0", NULL, MTIME, false,
       "peephole optimizations and STORE_MAP opcode"),
    CP(62152, 2, 6, "2.6a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62161, 2, 6, "2.6a1", NULL, MTIME, true,
       "WITH_CLEANUP optimization"),
    CP(62162, 2, 6, "2.6a1 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62171, 2, 7, "2.7a0", NULL, MTIME, false,
       "optimize list comprehensions/change LIST_APPEND"),
    CP(62172, 2, 7, "2.7a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62181, 2, 7, "2.7a0", NULL, MTIME, false,
       "optimize conditional branches: introduce POP_JUMP_IF_FALSE and "
       "POP_JUMP_IF_TRUE"),
    CP(62182, 2, 7, "2.7a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62191, 2, 7, "2.7a0", NULL, MTIME, false,
       "introduce SETUP_WITH"),
    CP(62192, 2, 7, "2.7a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62201, 2, 7, "2.7a0", NULL, MTIME, false,
       "introduce BUILD_SET"),
    CP(62202, 2, 7, "2.7a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(62211, 2, 7, "2.7a0", NULL, MTIME, true,
       "introduce MAP_ADD and SET_ADD"),
    CP(62212, 2, 7, "2.7a0 -U", NULL, MTIME, false,
       "-U (Py_UnicodeFlag): MAGIC + 1"),
    CP(3000, 3, 0, "3000", NULL, MTIME, false, ""),
    CP(3010, 3, 0, "3000", NULL, MTIME, false,
       "removed UNARY_CONVERT"),
    CP(3020, 3, 0, "3000", NULL, MTIME, false,
       "added BUILD_SET"),
    CP(3030, 3, 0, "3000", NULL, MTIME, false,
       "added keyword-only parameters"),
    CP(3040, 3, 0, "3000", NULL, MTIME, false,
       "added signature annotations"),
    CP(3050, 3, 0, "3000", NULL, MTIME, false,
       "print becomes a function"),
    CP(3060, 3, 0, "3000", NULL, MTIME, false,
       "PEP 3115 metaclass syntax"),
    CP(3061, 3, 0, "3000", NULL, MTIME, false,
       "string literals become unicode"),
    CP(3071, 3, 0, "3000", NULL, MTIME, false,
       "PEP 3109 raise changes"),
    CP(3081, 3, 0, "3000", NULL, MTIME, false,
       "PEP 3137 make __file__ and __name__ unicode"),
    CP(3091, 3, 0, "3000", NULL, MTIME, false,
       "kill str8 interning"),
    CP(3101, 3, 0, "3000", NULL, MTIME, false,
       "merge from 2.6a0, see 62151"),
    CP(3103, 3, 0, "3000", NULL, MTIME, false,
       "__file__ points to source file"),
    CP(3111, 3, 0, "3.0a4", NULL, MTIME, false,
       "WITH_CLEANUP optimization"),
    CP(3131, 3, 0, "3.0b1", NULL, MTIME, true,
       "lexical exception stacking, including POP_EXCEPT #3021"),
    CP(3141, 3, 1, "3.1a1", NULL, MTIME, false,
       "optimize list, set and dict comprehensions: change LIST_APPEND and "
       "SET_ADD, add MAP_ADD #2183"),
    CP(3151, 3, 1, "3.1a1", NULL, MTIME, true,
       "optimize conditional branches: introduce POP_JUMP_IF_FALSE and "
       "POP_JUMP_IF_TRUE #4715"),
    CP(3160, 3, 2, "3.2a1", "cpython-32", MTIME, false,
       "add SETUP_WITH #6101"),
    CP(3170, 3, 2, "3.2a2", "cpython-32", MTIME, false,
       "add DUP_TOP_TWO, remove DUP_TOPX and ROT_FOUR #9225"),
    CP(3180, 3, 2, "3.2a3", "cpython-32", MTIME, true,
       "add DELETE_DEREF #4617"),
    CP(3190, 3, 3, "3.3a1", "cpython-33", MTIME, false,
       "__class__ super closure changed"),
    CP(3200, 3, 3, "3.3a1", "cpython-33", MTIME, false,
       "PEP 3155 __qualname__ added #13448"),
    CP(3210, 3, 3, "3.3a1", "cpython-33", MTIME_SIZE, false,
       "added size modulo 2**32 to the pyc header #13645"),
    CP(3220, 3, 3, "3.3a2", "cpython-33", MTIME_SIZE, false,
       "changed PEP 380 implementation #14230"),
    CP(3230, 3, 3, "3.3a4", "cpython-33", MTIME_SIZE, true,
       "revert changes to implicit __class__ closure #14857"),
    CP(3250, 3, 4, "3.4a1", "cpython-34", MTIME_SIZE, false,
       "evaluate positional default arguments before keyword-only defaults "
       "#16967"),
    CP(3260, 3, 4, "3.4a1", "cpython-34", MTIME_SIZE, false,
       "add LOAD_CLASSDEREF; allow locals of class to override free vars #17853"),
    CP(3270, 3, 4, "3.4a1", "cpython-34", MTIME_SIZE, false,
       "various tweaks to the __class__ closure #12370"),
    CP(3280, 3, 4, "3.4a1", "cpython-34", MTIME_SIZE, false,
       "remove implicit class argument"),
    CP(3290, 3, 4, "3.4a4", "cpython-34", MTIME_SIZE, false,
       "changes to __qualname__ computation #19301"),
    CP(3300, 3, 4, "3.4a4", "cpython-34", MTIME_SIZE, false,
       "more changes to __qualname__ computation #19301"),
    CP(3310, 3, 4, "3.4rc2", "cpython-34", MTIME_SIZE, true,
       "alter __qualname__ computation #20625"),
    CP(3320, 3, 5, "3.5a1", "cpython-35", MTIME_SIZE, false,
       "PEP 465: Matrix multiplication operator #21176"),
    CP(3330, 3, 5, "3.5b1", "cpython-35", MTIME_SIZE, false,
       "PEP 448: Additional Unpacking Generalizations #2292"),
    CP(3340, 3, 5, "3.5b2", "cpython-35", MTIME_SIZE, false,
       "fix dictionary display evaluation order #11205"),
    CP(3350, 3, 5, "3.5b3", "cpython-35", MTIME_SIZE, true,
       "add GET_YIELD_FROM_ITER opcode #24400"),
    CP(3351, 3, 5, "3.5.3", "cpython-35", MTIME_SIZE, true,
       "fix BUILD_MAP_UNPACK_WITH_CALL opcode #27286 (listed as 3.5.2; first "
       "released in 3.5.3)"),
    CP(3360, 3, 6, "3.6a0", "cpython-36", MTIME_SIZE, false,
       "add FORMAT_VALUE opcode #25483"),
    CP(3361, 3, 6, "3.6a1", "cpython-36", MTIME_SIZE, false,
       "lineno delta of code.co_lnotab becomes signed #26107"),
    CP(3370, 3, 6, "3.6a2", "cpython-36", MTIME_SIZE, false,
       "16 bit wordcode #26647"),
    CP(3371, 3, 6, "3.6a2", "cpython-36", MTIME_SIZE, false,
       "add BUILD_CONST_KEY_MAP opcode #27140"),
    CP(3372, 3, 6, "3.6a2", "cpython-36", MTIME_SIZE, false,
       "MAKE_FUNCTION simplification, remove MAKE_CLOSURE #27095"),
    CP(3373, 3, 6, "3.6b1", "cpython-36", MTIME_SIZE, false,
       "add BUILD_STRING opcode #27078"),
    CP(3375, 3, 6, "3.6b1", "cpython-36", MTIME_SIZE, false,
       "add SETUP_ANNOTATIONS and STORE_ANNOTATION opcodes #27985"),
    CP(3376, 3, 6, "3.6b1", "cpython-36", MTIME_SIZE, false,
       "simplify CALL_FUNCTIONs & BUILD_MAP_UNPACK_WITH_CALL #27213"),
    CP(3377, 3, 6, "3.6b1", "cpython-36", MTIME_SIZE, false,
       "set __class__ cell from type.__new__ #23722"),
    CP(3378, 3, 6, "3.6b2", "cpython-36", MTIME_SIZE, false,
       "add BUILD_TUPLE_UNPACK_WITH_CALL #28257"),
    CP(3379, 3, 6, "3.6rc1", "cpython-36", MTIME_SIZE, true,
       "more thorough __class__ validation #23722"),
    CP(3390, 3, 7, "3.7a1", "cpython-37", MTIME_SIZE, false,
       "add LOAD_METHOD and CALL_METHOD opcodes #26110"),
    CP(3391, 3, 7, "3.7a2", "cpython-37", MTIME_SIZE, false,
       "update GET_AITER #31709"),
    CP(3392, 3, 7, "3.7a4", "cpython-37", FLAGS, false,
       "PEP 552: Deterministic pycs #31650"),
    CP(3393, 3, 7, "3.7b1", "cpython-37", FLAGS, false,
       "remove STORE_ANNOTATION opcode #32550"),
    CP(3394, 3, 7, "3.7b5", "cpython-37", FLAGS, true,
       "restored docstring as the first stmt in the body; this might affected "
       "the first line number #32911"),
    CP(3400, 3, 8, "3.8a1", "cpython-38", FLAGS, false,
       "move frame block handling to compiler #17611"),
    CP(3401, 3, 8, "3.8a1", "cpython-38", FLAGS, false,
       "add END_ASYNC_FOR #33041"),
    CP(3410, 3, 8, "3.8a1", "cpython-38", FLAGS, false,
       "PEP570 Python Positional-Only Parameters #36540"),
    CP(3411, 3, 8, "3.8b2", "cpython-38", FLAGS, false,
       "Reverse evaluation order of key: value in dict comprehensions #35224"),
    CP(3412, 3, 8, "3.8b2", "cpython-38", FLAGS, false,
       "Swap the position of positional args and positional only args in "
       "ast.arguments #37593"),
    CP(3413, 3, 8, "3.8b4", "cpython-38", FLAGS, true,
       "Fix \"break\" and \"continue\" in \"finally\" #37830"),
    CP(3420, 3, 9, "3.9a0", "cpython-39", FLAGS, false,
       "add LOAD_ASSERTION_ERROR #34880"),
    CP(3421, 3, 9, "3.9a0", "cpython-39", FLAGS, false,
       "simplified bytecode for with blocks #32949"),
    CP(3422, 3, 9, "3.9a0", "cpython-39", FLAGS, false,
       "remove BEGIN_FINALLY, END_FINALLY, CALL_FINALLY, POP_FINALLY bytecodes "
       "#33387"),
    CP(3423, 3, 9, "3.9a2", "cpython-39", FLAGS, false,
       "add IS_OP, CONTAINS_OP and JUMP_IF_NOT_EXC_MATCH bytecodes #39156"),
    CP(3424, 3, 9, "3.9a2", "cpython-39", FLAGS, false,
       "simplify bytecodes for *value unpacking"),
    CP(3425, 3, 9, "3.9a2", "cpython-39", FLAGS, true,
       "simplify bytecodes for **value unpacking"),
    CP(3430, 3, 10, "3.10a1", "cpython-310", FLAGS, false,
       "Make 'annotations' future by default"),
    CP(3431, 3, 10, "3.10a1", "cpython-310", FLAGS, false,
       "New line number table format -- PEP 626"),
    CP(3432, 3, 10, "3.10a2", "cpython-310", FLAGS, false,
       "Function annotation for MAKE_FUNCTION is changed from dict to tuple "
       "bpo-42202"),
    CP(3433, 3, 10, "3.10a2", "cpython-310", FLAGS, false,
       "RERAISE restores f_lasti if oparg != 0"),
    CP(3434, 3, 10, "3.10a6", "cpython-310", FLAGS, false,
       "PEP 634: Structural Pattern Matching"),
    CP(3435, 3, 10, "3.10a7", "cpython-310", FLAGS, false,
       "Use instruction offsets (as opposed to byte offsets)."),
    CP(3436, 3, 10, "3.10b1", "cpython-310", FLAGS, false,
       "Add GEN_START bytecode #43683"),
    CP(3437, 3, 10, "3.10b1", "cpython-310", FLAGS, false,
       "Undo making 'annotations' future by default - We like to dance among "
       "core devs!"),
    CP(3438, 3, 10, "3.10b1", "cpython-310", FLAGS, false,
       "Safer line number table handling."),
    CP(3439, 3, 10, "3.10b1", "cpython-310", FLAGS, true,
       "Add ROT_N"),
    CP(3450, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "Use exception table for unwinding (\"zero cost\" exception handling)"),
    CP(3451, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "Add CALL_METHOD_KW"),
    CP(3452, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "drop nlocals from marshaled code objects"),
    CP(3453, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "add co_fastlocalnames and co_fastlocalkinds"),
    CP(3454, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "compute cell offsets relative to locals bpo-43693"),
    CP(3455, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "add MAKE_CELL bpo-43693"),
    CP(3456, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "interleave cell args bpo-43693"),
    CP(3457, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "Change localsplus to a bytes object bpo-43693"),
    CP(3458, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "imported objects now don't use LOAD_METHOD/CALL_METHOD"),
    CP(3459, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "PEP 657: add end line numbers and column offsets for instructions"),
    CP(3460, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "Add co_qualname field to PyCodeObject bpo-44530"),
    CP(3461, 3, 11, "3.11a1", "cpython-311", FLAGS, false,
       "JUMP_ABSOLUTE must jump backwards"),
    CP(3462, 3, 11, "3.11a2", "cpython-311", FLAGS, false,
       "bpo-44511: remove COPY_DICT_WITHOUT_KEYS, change MATCH_CLASS and "
       "MATCH_KEYS, and add COPY"),
    CP(3463, 3, 11, "3.11a3", "cpython-311", FLAGS, false,
       "bpo-45711: JUMP_IF_NOT_EXC_MATCH no longer pops the active exception"),
    CP(3464, 3, 11, "3.11a3", "cpython-311", FLAGS, false,
       "bpo-45636: Merge numeric BINARY_*/INPLACE_* into BINARY_OP"),
    CP(3465, 3, 11, "3.11a3", "cpython-311", FLAGS, false,
       "Add COPY_FREE_VARS opcode"),
    CP(3466, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "bpo-45292: PEP-654 except*"),
    CP(3467, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "Change CALL_xxx opcodes"),
    CP(3468, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "Add SEND opcode"),
    CP(3469, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "bpo-45711: remove type, traceback from exc_info"),
    CP(3470, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "bpo-46221: PREP_RERAISE_STAR no longer pushes lasti"),
    CP(3471, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "bpo-46202: remove pop POP_EXCEPT_AND_RERAISE"),
    CP(3472, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "bpo-46009: replace GEN_START with POP_TOP"),
    CP(3473, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "Add POP_JUMP_IF_NOT_NONE/POP_JUMP_IF_NONE opcodes"),
    CP(3474, 3, 11, "3.11a4", "cpython-311", FLAGS, false,
       "Add RESUME opcode"),
    CP(3475, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Add RETURN_GENERATOR opcode"),
    CP(3476, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Add ASYNC_GEN_WRAP opcode"),
    CP(3477, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Replace DUP_TOP/DUP_TOP_TWO with COPY and "
       "ROT_TWO/ROT_THREE/ROT_FOUR/ROT_N with SWAP"),
    CP(3478, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "New CALL opcodes"),
    CP(3479, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Add PUSH_NULL opcode"),
    CP(3480, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "New CALL opcodes, second iteration"),
    CP(3481, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Use inline cache for BINARY_OP"),
    CP(3482, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Use inline caching for UNPACK_SEQUENCE and LOAD_GLOBAL"),
    CP(3483, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Use inline caching for COMPARE_OP and BINARY_SUBSCR"),
    CP(3484, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Use inline caching for LOAD_ATTR, LOAD_METHOD, and STORE_ATTR"),
    CP(3485, 3, 11, "3.11a5", "cpython-311", FLAGS, false,
       "Add an oparg to GET_AWAITABLE"),
    CP(3486, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "Use inline caching for PRECALL and CALL"),
    CP(3487, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "Remove the adaptive \"oparg counter\" mechanism"),
    CP(3488, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "LOAD_GLOBAL can push additional NULL"),
    CP(3489, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "Add JUMP_BACKWARD, remove JUMP_ABSOLUTE"),
    CP(3490, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "remove JUMP_IF_NOT_EXC_MATCH, add CHECK_EXC_MATCH"),
    CP(3491, 3, 11, "3.11a6", "cpython-311", FLAGS, false,
       "remove JUMP_IF_NOT_EG_MATCH, add CHECK_EG_MATCH, add "
       "JUMP_BACKWARD_NO_INTERRUPT, make JUMP_NO_INTERRUPT virtual"),
    CP(3492, 3, 11, "3.11a7", "cpython-311", FLAGS, false,
       "make POP_JUMP_IF_NONE/NOT_NONE/TRUE/FALSE relative"),
    CP(3493, 3, 11, "3.11a7", "cpython-311", FLAGS, false,
       "Make JUMP_IF_TRUE_OR_POP/JUMP_IF_FALSE_OR_POP relative"),
    CP(3494, 3, 11, "3.11a7", "cpython-311", FLAGS, false,
       "New location info table"),
    CP(3495, 3, 11, "3.11b4", "cpython-311", FLAGS, true,
       "Set line number of module's RESUME instr to 0 per PEP 626"),
    CP(3500, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Remove PRECALL opcode"),
    CP(3501, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "YIELD_VALUE oparg == stack_depth"),
    CP(3502, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "LOAD_FAST_CHECK, no NULL-check in LOAD_FAST"),
    CP(3503, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Shrink LOAD_METHOD cache"),
    CP(3504, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Merge LOAD_METHOD back into LOAD_ATTR"),
    CP(3505, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Specialization/Cache for FOR_ITER"),
    CP(3506, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Add BINARY_SLICE and STORE_SLICE instructions"),
    CP(3507, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Set lineno of module's RESUME to 0"),
    CP(3508, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Add CLEANUP_THROW"),
    CP(3509, 3, 12, "3.12a1", "cpython-312", FLAGS, false,
       "Conditional jumps only jump forward"),
    CP(3510, 3, 12, "3.12a2", "cpython-312", FLAGS, false,
       "FOR_ITER leaves iterator on the stack"),
    CP(3511, 3, 12, "3.12a2", "cpython-312", FLAGS, false,
       "Add STOPITERATION_ERROR instruction"),
    CP(3512, 3, 12, "3.12a2", "cpython-312", FLAGS, false,
       "Remove all unused consts from code objects"),
    CP(3513, 3, 12, "3.12a4", "cpython-312", FLAGS, false,
       "Add CALL_INTRINSIC_1 instruction, removed STOPITERATION_ERROR, "
       "PRINT_EXPR, IMPORT_STAR"),
    CP(3514, 3, 12, "3.12a4", "cpython-312", FLAGS, false,
       "Remove ASYNC_GEN_WRAP, LIST_TO_TUPLE, and UNARY_POSITIVE"),
    CP(3515, 3, 12, "3.12a5", "cpython-312", FLAGS, false,
       "Embed jump mask in COMPARE_OP oparg"),
    CP(3516, 3, 12, "3.12a5", "cpython-312", FLAGS, false,
       "Add COMPARE_AND_BRANCH instruction"),
    CP(3517, 3, 12, "3.12a5", "cpython-312", FLAGS, false,
       "Change YIELD_VALUE oparg to exception block depth"),
    CP(3518, 3, 12, "3.12a6", "cpython-312", FLAGS, false,
       "Add RETURN_CONST instruction"),
    CP(3519, 3, 12, "3.12a6", "cpython-312", FLAGS, false,
       "Modify SEND instruction"),
    CP(3520, 3, 12, "3.12a6", "cpython-312", FLAGS, false,
       "Remove PREP_RERAISE_STAR, add CALL_INTRINSIC_2"),
    CP(3521, 3, 12, "3.12a7", "cpython-312", FLAGS, false,
       "Shrink the LOAD_GLOBAL caches"),
    CP(3522, 3, 12, "3.12a7", "cpython-312", FLAGS, false,
       "Removed JUMP_IF_FALSE_OR_POP/JUMP_IF_TRUE_OR_POP"),
    CP(3523, 3, 12, "3.12a7", "cpython-312", FLAGS, false,
       "Convert COMPARE_AND_BRANCH back to COMPARE_OP"),
    CP(3524, 3, 12, "3.12a7", "cpython-312", FLAGS, false,
       "Shrink the BINARY_SUBSCR caches"),
    CP(3525, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Shrink the CALL caches"),
    CP(3526, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Add instrumentation support"),
    CP(3527, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Add LOAD_SUPER_ATTR"),
    CP(3528, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Add LOAD_SUPER_ATTR_METHOD specialization"),
    CP(3529, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Inline list/dict/set comprehensions"),
    CP(3530, 3, 12, "3.12b1", "cpython-312", FLAGS, false,
       "Shrink the LOAD_SUPER_ATTR caches"),
    CP(3531, 3, 12, "3.12b1", "cpython-312", FLAGS, true,
       "Add PEP 695 changes"),
    CP(3550, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Plugin optimizer support"),
    CP(3551, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Compact superinstructions"),
    CP(3552, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Remove LOAD_FAST__LOAD_CONST and LOAD_CONST__LOAD_FAST"),
    CP(3553, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Add SET_FUNCTION_ATTRIBUTE"),
    CP(3554, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "more efficient bytecodes for f-strings"),
    CP(3555, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "generate specialized opcodes metadata from bytecodes.c"),
    CP(3556, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Convert LOAD_CLOSURE to a pseudo-op"),
    CP(3557, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Make the conversion to boolean in jumps explicit"),
    CP(3558, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Reorder the stack items for CALL"),
    CP(3559, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Generate opcode IDs from bytecodes.c"),
    CP(3560, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Add RESUME_CHECK instruction"),
    CP(3561, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Add cache entry to branch instructions"),
    CP(3562, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Assign opcode IDs for internal ops in separate range"),
    CP(3563, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Add CALL_KW and remove KW_NAMES"),
    CP(3564, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Removed oparg from YIELD_VALUE, changed oparg values of RESUME"),
    CP(3565, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Oparg of YIELD_VALUE indicates whether it is in a yield-from"),
    CP(3566, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Emit JUMP_NO_INTERRUPT instead of JUMP for non-loop no-lineno cases"),
    CP(3567, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Reimplement line number propagation by the compiler"),
    CP(3568, 3, 13, "3.13a1", "cpython-313", FLAGS, false,
       "Change semantics of END_FOR"),
    CP(3569, 3, 13, "3.13a5", "cpython-313", FLAGS, false,
       "Specialize CONTAINS_OP"),
    CP(3570, 3, 13, "3.13a6", "cpython-313", FLAGS, false,
       "Add __firstlineno__ class attribute"),
    CP(3571, 3, 13, "3.13b1", "cpython-313", FLAGS, true,
       "Fix miscompilation of private names in generic classes"),
    CP(3600, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Add LOAD_COMMON_CONSTANT"),
    CP(3601, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Fix miscompilation of private names in generic classes"),
    CP(3602, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Add LOAD_SPECIAL. Remove BEFORE_WITH and BEFORE_ASYNC_WITH"),
    CP(3603, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Remove BUILD_CONST_KEY_MAP"),
    CP(3604, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Do not duplicate test at end of while statements"),
    CP(3605, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Move ENTER_EXECUTOR to opcode 255"),
    CP(3606, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Specialize CALL_KW"),
    CP(3607, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Add pseudo instructions JUMP_IF_TRUE/FALSE"),
    CP(3608, 3, 14, "3.14a1", "cpython-314", FLAGS, false,
       "Add support for slices"),
    CP(3609, 3, 14, "3.14a2", "cpython-314", FLAGS, false,
       "Add LOAD_SMALL_INT and LOAD_CONST_IMMORTAL instructions, remove "
       "RETURN_CONST"),
    CP(3610, 3, 14, "3.14a4", "cpython-314", FLAGS, false,
       "Add VALUE_WITH_FAKE_GLOBALS format to annotationlib"),
    CP(3611, 3, 14, "3.14a4", "cpython-314", FLAGS, false,
       "Add NOT_TAKEN instruction"),
    CP(3612, 3, 14, "3.14a4", "cpython-314", FLAGS, false,
       "Add POP_ITER and INSTRUMENTED_POP_ITER"),
    CP(3613, 3, 14, "3.14a4", "cpython-314", FLAGS, false,
       "Add LOAD_CONST_MORTAL instruction"),
    CP(3614, 3, 14, "3.14a5", "cpython-314", FLAGS, false,
       "Add BINARY_OP_EXTEND"),
    CP(3615, 3, 14, "3.14a5", "cpython-314", FLAGS, false,
       "CALL_FUNCTION_EX always take a kwargs argument"),
    CP(3616, 3, 14, "3.14a5", "cpython-314", FLAGS, false,
       "Remove BINARY_SUBSCR and family. Make them BINARY_OPs"),
    CP(3617, 3, 14, "3.14a6", "cpython-314", FLAGS, false,
       "Branch monitoring for async for loops"),
    CP(3618, 3, 14, "3.14a6", "cpython-314", FLAGS, false,
       "Add oparg to END_ASYNC_FOR"),
    CP(3619, 3, 14, "3.14a6", "cpython-314", FLAGS, false,
       "Renumber RESUME opcode from 149 to 128"),
    CP(3620, 3, 14, "3.14a6", "cpython-314", FLAGS, false,
       "Optimize bytecode for all/any/tuple called on a genexp"),
    CP(3621, 3, 14, "3.14a7", "cpython-314", FLAGS, false,
       "Optimize LOAD_FAST opcodes into LOAD_FAST_BORROW"),
    CP(3622, 3, 14, "3.14a7", "cpython-314", FLAGS, false,
       "Store annotations in different class dict keys"),
    CP(3623, 3, 14, "3.14a7", "cpython-314", FLAGS, false,
       "Add BUILD_INTERPOLATION & BUILD_TEMPLATE opcodes"),
    CP(3624, 3, 14, "3.14b1", "cpython-314", FLAGS, false,
       "Don't optimize LOAD_FAST when local is killed by DELETE_FAST"),
    CP(3625, 3, 14, "3.14b3", "cpython-314", FLAGS, false,
       "Fix handling of opcodes that may leave operands on the stack when "
       "optimizing LOAD_FAST"),
    CP(3626, 3, 14, "3.14rc2", "cpython-314", FLAGS, false,
       "Fix missing exception handlers in logical expression"),
    CP(3627, 3, 14, "3.14rc3", "cpython-314", FLAGS, true,
       "Fix miscompilation of some module-level annotations"),
    CP(3650, 3, 15, "3.15a0", "cpython-315", FLAGS, false,
       "Initial version"),
    CP(3651, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Simplify LOAD_CONST"),
    CP(3652, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Virtual iterators"),
    CP(3653, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Fix handling of opcodes that may leave operands on the stack when "
       "optimizing LOAD_FAST"),
    CP(3654, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Fix missing exception handlers in logical expression"),
    CP(3655, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Fix miscompilation of some module-level annotations"),
    CP(3656, 3, 15, "3.15a1", "cpython-315", FLAGS, false,
       "Lazy imports IMPORT_NAME opcode changes"),
    CP(3657, 3, 15, "3.15a1+", "cpython-315", FLAGS, false,
       "PYC_MAGIC_NUMBER in main; no comment entry yet"),

    /* ---- PyPy ------------------------------------------------------------
     * PyPy2 writes legacy NAME.pyc files with CPython 2.7's header:
     * pypy/interpreter/pycode.py (default branch), `default_magic = (0xf303
     * + 7) | 0x0a0d0000` -- CPython 2.7's 62211 + 7; pypy/module/imp/
     * importing.py: "CPython + 7 = default_magic -- used by PyPy".
     *
     * PyPy3 picks numbers below 3000 that CPython never uses
     * (pypy/interpreter/pycode.py on the py3.x branches:
     * `default_magic = pypy_incremental_magic | (ord('\r')<<16) |
     * (ord('\n')<<24)`, "bump it by 16"), and its cache tag is
     * `PYC_TAG = 'pypy%d%d' % CPYTHON_VERSION[:2]` (pypy/module/imp/
     * importing.py; test_import.py asserts sys.implementation.cache_tag ==
     * 'pypy%d%d' % sys.version_info[:2]). Its importlib is CPython's of the
     * same language version, so the header layout is that version's.
     * Values per version:
     *   3.2: 3180 + 7 (PyPy3 2.3.4), 3.3: 64, 3.5: 112, 3.6: 160 then 192,
     *        3.7: 224 then 240 -- rocky/python-xdis xdis/magics.py; 112 also
     *        in a stored pypy/interpreter/pycode.py. Cache tags of PyPy3 2.x
     *        and 5.x (3.2-3.5) are not known here (NULL); 3.6 and 3.7 are
     *        pypy36 / pypy37 (their SOABI, Gentoo's "pypy36-pp73", is
     *        PYC_TAG + "-pp73").
     *   3.9: 336, 3.10: 384 -- pypy/interpreter/pycode.py
     *        (pypy_incremental_magic = 336 / 384) and Gentoo's
     *        dev-lang/pypy ebuilds, whose sub-slot is SOABI + that magic
     *        ("pypy39-pp73-336", "pypy310-pp73-384").
     *   3.11: 400, then 416 -- Gentoo sub-slots "pypy311-pp73-400" and
     *        "pypy311-pp73-416".
     *   3.8: none of its own is known: xdis maps "3.8.12pypy" to CPython's
     *        3413, and pypy/pypy issue #3782 shows PyPy 3.9 (7.3.9) writing
     *        CPython 3.9's 3425 into NAME.pypy39.pyc (the stdlib merge had
     *        overwritten the injected MAGIC_NUMBER). Such files carry a
     *        CPython magic and are named by it.
     */
    PP(62218, 2, 7, "pypy2 (2.7)", NULL, MTIME, true,
       "CPython 2.7's 62211 + 7 (pypy/interpreter/pycode.py default_magic)"),
    PP(3187, 3, 2, "pypy3 2.3-2.4 (3.2)", NULL, MTIME, true,
       "CPython 3.2's 3180 + 7 (xdis)"),
    PP(64, 3, 3, "pypy3.3 5.x", NULL, MTIME_SIZE, true, "xdis"),
    PP(112, 3, 5, "pypy3.5 5.x-7.0", NULL, MTIME_SIZE, true,
       "pypy_incremental_magic = 112"),
    PP(160, 3, 6, "pypy3.6 7.1b0", "pypy36", MTIME_SIZE, false, "xdis: 3.6.1, PyPy 7.1.0-beta0"),
    PP(192, 3, 6, "pypy3.6 7.x", "pypy36", MTIME_SIZE, true, "xdis: 3.6.9"),
    PP(224, 3, 7, "pypy3.7 7.3 beta", "pypy37", FLAGS, false, "xdis: PyPy 3.7.9-beta0"),
    PP(240, 3, 7, "pypy3.7 7.3.x", "pypy37", FLAGS, true, "xdis: PyPy 3.7.9"),
    PP(336, 3, 9, "pypy3.9 7.3.x", "pypy39", FLAGS, true,
       "pypy_incremental_magic = 336; 7.3.9 and older wrote CPython's 3425 "
       "(pypy/pypy#3782)"),
    PP(384, 3, 10, "pypy3.10 7.3.x", "pypy310", FLAGS, true, "pypy_incremental_magic = 384"),
    PP(400, 3, 11, "pypy3.11 7.3.x", "pypy311", FLAGS, false,
       "pypy_incremental_magic = 400 (Gentoo sub-slot)"),
    PP(416, 3, 11, "pypy3.11 7.3.x", "pypy311", FLAGS, true,
       "pypy_incremental_magic = 416 (Gentoo sub-slot)"),

    /* ---- GraalPy -----------------------------------------------------------
     * GraalPy's _imp.get_magic (ImpModuleBuiltins.java, oracle/graalpython):
     * `MAGIC_NUMBER = 21000 + SerializationUtils.VERSION * 10` (later
     * `Compiler.BYTECODE_VERSION * 10`), stored little-endian with bytes 2-3
     * overwritten by b"\r\n"; its importlib is CPython's (16-byte headers,
     * `MAGIC_NUMBER = _imp.get_magic()`). The number follows GraalPy's
     * internal format version, not the Python version, so only values seen
     * are listed: 21150 for GraalPython 21.x / Python 3.8.5 (xdis,
     * "3.8.5Graal"), whose cache tag was "graalpython-38"
     * (oracle/graalpython#207: "__pycache__/sitecustomize.graalpython-38.pyc",
     * GraalVM 21.2.0-dev, Python 3.8.5).
     */
    GP(21150, 3, 8, "graalpython 21.x (3.8)", "graalpython-38", FLAGS, true,
       "21000 + format version 15 * 10 (xdis: 3.8.5Graal)"),
};

#undef MTIME
#undef MTIME_SIZE
#undef FLAGS

#define TABLE_SIZE (sizeof table / sizeof table[0])

/* ---- indexes, built once ------------------------------------------------ */

/* Versions indexed for pyc_magic_final: implementation x major x minor. */
#define IMPL_COUNT 3
#define MAJOR_MAX 3
#define MINOR_MAX 31

static uint16_t by_word[TABLE_SIZE];                      /* table indexes */
static int16_t final_of[IMPL_COUNT][MAJOR_MAX + 1][MINOR_MAX + 1];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static int compare_word(const void *a, const void *b)
{
    uint32_t x = table[*(const uint16_t *)a].word;
    uint32_t y = table[*(const uint16_t *)b].word;
    return (x > y) - (x < y);
}

static void build_indexes(void)
{
    size_t i;

    for (i = 0; i < TABLE_SIZE; i++)
        by_word[i] = (uint16_t)i;
    qsort(by_word, TABLE_SIZE, sizeof by_word[0], compare_word);

    /* The final value of a version is its last entry marked final (3.5:
     * 3351, which replaced 3350 in 3.5.3); a version without a final
     * release (an alpha in CPython's main branch) gets its newest entry. */
    memset(final_of, 0xff, sizeof final_of); /* -1 everywhere */
    for (i = 0; i < TABLE_SIZE; i++) {
        const pyc_magic *m = &table[i];
        int16_t *slot;
        if ((unsigned)m->implementation >= IMPL_COUNT || m->major > MAJOR_MAX ||
            m->minor > MINOR_MAX)
            continue;
        slot = &final_of[m->implementation][m->major][m->minor];
        if (m->final || *slot < 0 || !table[*slot].final)
            *slot = (int16_t)i;
    }
}

static void ensure_indexes(void)
{
    (void)pthread_once(&index_once, build_indexes);
}

/* ---- public API ------------------------------------------------------------ */

const char *pyc_implementation_name(pyc_implementation impl)
{
    switch (impl) {
    case PYC_IMPL_CPYTHON:
        return "cpython";
    case PYC_IMPL_PYPY:
        return "pypy";
    case PYC_IMPL_GRAALPY:
        return "graalpy";
    }
    return "unknown";
}

size_t pyc_magic_count(void)
{
    return TABLE_SIZE;
}

const pyc_magic *pyc_magic_at(size_t index)
{
    return index < TABLE_SIZE ? &table[index] : NULL;
}

const pyc_magic *pyc_magic_lookup(uint32_t word)
{
    size_t lo = 0, hi = TABLE_SIZE;

    ensure_indexes();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t w = table[by_word[mid]].word;
        if (w == word)
            return &table[by_word[mid]];
        if (w < word)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const pyc_magic *pyc_magic_final(pyc_implementation impl, int major, int minor)
{
    int16_t i;

    if ((unsigned)impl >= IMPL_COUNT || major < 0 || major > MAJOR_MAX ||
        minor < 0 || minor > MINOR_MAX)
        return NULL;
    ensure_indexes();
    i = final_of[impl][major][minor];
    return i < 0 ? NULL : &table[i];
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses "MN" / "MNN" (major digit, then minor) from S[0..LEN). */
static bool parse_compact(const char *s, size_t len, int *major, int *minor)
{
    size_t i;

    if (len < 2 || len > 3)
        return false;
    for (i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    *major = s[0] - '0';
    *minor = s[1] - '0';
    if (len == 3)
        *minor = *minor * 10 + (s[2] - '0');
    return true;
}

static bool tag_equals(const pyc_magic *m, const char *tag, size_t len)
{
    return m && m->tag && strlen(m->tag) == len && memcmp(m->tag, tag, len) == 0;
}

const pyc_magic *pyc_magic_for_tag(const char *tag, size_t tag_len)
{
    const pyc_magic *found = NULL;
    int major, minor;
    size_t i;

    if (!tag)
        return NULL;
    /* Fast paths for the tags that name their version: "cpython-3N"
     * (importlib: 'cpython-{}{}'.format(*sys.version_info[:2])) and PyPy's
     * 'pypy%d%d'. The entry found must carry exactly that tag ("cpython-30"
     * names nothing: 3.0 predates cache tags). */
    if (tag_len > 8 && memcmp(tag, "cpython-", 8) == 0) {
        if (!parse_compact(tag + 8, tag_len - 8, &major, &minor))
            return NULL;
        found = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
        return tag_equals(found, tag, tag_len) ? found : NULL;
    }
    if (tag_len > 4 && memcmp(tag, "pypy", 4) == 0 &&
        parse_compact(tag + 4, tag_len - 4, &major, &minor)) {
        found = pyc_magic_final(PYC_IMPL_PYPY, major, minor);
        return tag_equals(found, tag, tag_len) ? found : NULL;
    }
    /* Other tags (GraalPy's): the final entry carrying the tag, else the
     * newest one. */
    for (i = 0; i < TABLE_SIZE; i++) {
        if (tag_equals(&table[i], tag, tag_len) && (!found || !found->final))
            found = &table[i];
    }
    return found;
}

/* Case-insensitive prefix match; advances *S past it. */
static bool skip_prefix(const char **s, const char *prefix)
{
    size_t n = strlen(prefix), i;

    for (i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != prefix[i])
            return false;
    }
    *s += n;
    return true;
}

/* Reads 1-3 decimal digits. */
static bool read_number(const char **s, int *out)
{
    int v = 0, n = 0;

    while (is_digit(**s)) {
        if (++n > 3)
            return false;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    *out = v;
    return n > 0;
}

const pyc_magic *pyc_magic_parse_version(const char *text)
{
    pyc_implementation impl = PYC_IMPL_CPYTHON;
    const char *s = text;
    const pyc_magic *m;
    int major, minor, micro;

    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    /* An optional implementation prefix, then an optional '-'. "graalpython"
     * before "graalpy", "pypy" before "python". */
    if (skip_prefix(&s, "graalpython") || skip_prefix(&s, "graalpy"))
        impl = PYC_IMPL_GRAALPY;
    else if (skip_prefix(&s, "pypy"))
        impl = PYC_IMPL_PYPY;
    else if (!skip_prefix(&s, "cpython"))
        (void)skip_prefix(&s, "python");
    if (*s == '-')
        s++;

    if (!is_digit(*s)) {
        errno = EINVAL;
        return NULL;
    }
    if (strchr(s, '.')) {
        /* MAJOR.MINOR[.MICRO]: the micro version is accepted and ignored
         * (every release of a version writes its final magic, 3.5 aside). */
        if (!read_number(&s, &major) || *s++ != '.' || !read_number(&s, &minor)) {
            errno = EINVAL;
            return NULL;
        }
        if (*s == '.' && (s++, !read_number(&s, &micro))) {
            errno = EINVAL;
            return NULL;
        }
        if (*s != '\0') {
            errno = EINVAL;
            return NULL;
        }
    } else if (!parse_compact(s, strlen(s), &major, &minor)) {
        /* "3" alone names no single bytecode format: malformed. */
        errno = EINVAL;
        return NULL;
    }
    m = pyc_magic_final(impl, major, minor);
    if (!m) {
        errno = ENOENT;
        return NULL;
    }
    return m;
}
