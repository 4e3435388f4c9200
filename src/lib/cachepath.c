/*
 * cachepath.c — where each interpreter keeps the cache of a source, and back.
 *
 * This module reproduces, byte for byte, importlib.util.cache_from_source and
 * importlib.util.source_from_cache of every CPython version (and of PyPy and
 * GraalPy, whose importlib is CPython's for the language version they
 * implement), including the cases where CPython raises, plus the naming of
 * 2.x's legacy NAME.pyc/NAME.pyo files and of the temporary files
 * _write_atomic leaves behind. It also classifies a directory entry by its
 * name alone for the tree walker.
 *
 * The rules, by version (POSIX only: path_separators is "/"):
 *
 *   2.x, 3.0, 3.1   py_compile.compile: cfile = file + (__debug__ and 'c' or
 *                   'o') beside the source (2.7 Lib/py_compile.py; import.c
 *                   make_compiled_pathname appends 'c'/'o' the same way).
 *   3.2 - 3.4       importlib._bootstrap.cache_from_source (3.3, 3.4; imp's C
 *                   version in 3.2): NAME is the tail up to its FIRST dot
 *                   (tail.partition('.')), .pyc, or .pyo when optimizing;
 *                   source_from_cache wants exactly 2 dots.
 *   3.5 - 3.7       _bootstrap_external.cache_from_source (PEP 488): NAME is
 *                   the tail up to its LAST dot (tail.rpartition('.')), then
 *                   .TAG, then .opt-N when optimizing, then .pyc;
 *                   source_from_cache wants 2 or 3 dots, the third part
 *                   "opt-" followed by an alphanumeric level.
 *   3.8 - 3.11      plus sys.pycache_prefix: the head is made absolute with
 *                   _path_join(_os.getcwd(), head), head[1] is looked at (an
 *                   IndexError when the absolute head is shorter than 2
 *                   characters: "/" or ""), the leading "/" stripped and the
 *                   result joined under the prefix, no __pycache__.
 *   3.12 -          the same, but _path_abspath strips one leading "./" from a
 *                   relative head before joining it to the cwd.
 *
 * Helpers, all versions from 3.4 on (checked in 3.4's _bootstrap.py and the
 * installed 3.6-3.13 _bootstrap_external.py):
 *   _path_split(p)    p[:i], p[i+1:] around the last "/" ('' and p if none);
 *   _path_join(*ps)   "/".join(p.rstrip("/") for p in ps if p) — the filter
 *                     looks at the part before stripping, so "/" joins as "";
 *   _path_isabs(p)    p.startswith("/") (3.8+, POSIX).
 *
 * Python operates on str: file names are decoded with os.fsdecode (UTF-8 with
 * surrogateescape on a UTF-8 locale). '.' and '/' are ASCII and never occur
 * inside a multi-byte UTF-8 sequence, so splitting, partitioning and counting
 * on bytes gives the same answers. The one place where characters matter is
 * str.isalnum() on an optimization level read from a file name: ASCII bytes
 * are judged as ASCII; a non-ASCII valid UTF-8 character is judged by a table
 * of the code points str.isalnum() accepts, with the first Python version
 * that accepts each (generated from the installed 3.6-3.13 interpreters;
 * 3.2-3.5 are judged as 3.6, 3.14 and later as 3.13); bytes that are not
 * valid UTF-8 decode to lone surrogates, which are never alphanumeric.
 * (A C or POSIX locale under 3.6 decodes non-ASCII bytes as surrogates too;
 * we assume a UTF-8 locale.)
 *
 * Not verifiable here: 3.2's imp.cache_from_source is C code (Python/import.c)
 * and 3.3.x's _bootstrap.py could not be read in its released form; both are
 * given 3.4's rules. 3.5 is given 3.6's (the code only differs by os.fspath).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pycache.h"
#include "internal.h"

/* ---- version families ------------------------------------------------------ */

typedef enum family {
    FAM_LEGACY,    /* 2.x, 3.0, 3.1: NAME.pyc / NAME.pyo beside the source */
    FAM_PYO,       /* 3.2-3.4: __pycache__/NAME.TAG.pyc|.pyo, first dot */
    FAM_PEP488,    /* 3.5-3.7: __pycache__/NAME.TAG[.opt-N].pyc, last dot */
    FAM_PREFIX,    /* 3.8-3.11: PEP 488 + sys.pycache_prefix */
    FAM_PREFIX312, /* 3.12+: _path_abspath strips a leading "./" */
} family;

static family family_of(const pyc_magic *m)
{
    if (m->major < 3 || (m->major == 3 && m->minor < 2))
        return FAM_LEGACY;
    if (m->major == 3 && m->minor < 5)
        return FAM_PYO;
    if (m->major == 3 && m->minor < 8)
        return FAM_PEP488;
    if (m->major == 3 && m->minor < 12)
        return FAM_PREFIX;
    return FAM_PREFIX312;
}

/* The minor version of 3.x whose str.isalnum() table applies. */
static int alnum_minor(const pyc_magic *m)
{
    if (m == NULL || m->major > 3)
        return 99;
    return m->minor;
}

/* Messages: CPython's text, without the path or name it quotes. */
static const char WHY_NO_TAG[] = "sys.implementation.cache_tag is None";
static const char WHY_NOT_BOTTOM[] = "__pycache__ not bottom-level directory";
static const char WHY_DOTS_2[] = "expected only 2 dots";
static const char WHY_DOTS_23[] = "expected only 2 or 3 dots";
static const char WHY_OPT_PREFIX[] =
    "optimization portion of filename does not start with 'opt-'";
static const char WHY_OPT_ALNUM[] =
    "optimization level is not an alphanumeric value";
static const char WHY_INDEX[] = "string index out of range";
static const char WHY_LEGACY[] = "not a .pyc or .pyo file";
static const char WHY_PREFIX_VERSION[] =
    "a pycache prefix needs Python 3.8 or newer";
static const char WHY_OPT_RANGE[] = "optimization level must be 0, 1 or 2";
static const char WHY_ARGS[] = "invalid argument";

/* ---- str.isalnum() --------------------------------------------------------- */

typedef struct alnum_range {
    uint32_t first, last;
    uint8_t since; /* first 3.x minor version whose isalnum() accepts it */
} alnum_range;

/* Non-ASCII code points for which str.isalnum() is True, generated with
 *   for c in range(0x80, 0x110000): chr(c).isalnum()
 * on each installed interpreter 3.6-3.13 (the sets only grow). */
static const alnum_range alnum_table[] = {
    {0xAA, 0xAA, 6}, {0xB2, 0xB3, 6}, {0xB5, 0xB5, 6}, {0xB9, 0xBA, 6},
    {0xBC, 0xBE, 6}, {0xC0, 0xD6, 6}, {0xD8, 0xF6, 6}, {0xF8, 0x2C1, 6},
    {0x2C6, 0x2D1, 6}, {0x2E0, 0x2E4, 6}, {0x2EC, 0x2EC, 6}, {0x2EE, 0x2EE, 6},
    {0x370, 0x374, 6}, {0x376, 0x377, 6}, {0x37A, 0x37D, 6}, {0x37F, 0x37F, 6},
    {0x386, 0x386, 6}, {0x388, 0x38A, 6}, {0x38C, 0x38C, 6}, {0x38E, 0x3A1, 6},
    {0x3A3, 0x3F5, 6}, {0x3F7, 0x481, 6}, {0x48A, 0x52F, 6}, {0x531, 0x556, 6},
    {0x559, 0x559, 6}, {0x560, 0x560, 7}, {0x561, 0x587, 6}, {0x588, 0x588, 7},
    {0x5D0, 0x5EA, 6}, {0x5EF, 0x5EF, 7}, {0x5F0, 0x5F2, 6}, {0x620, 0x64A, 6},
    {0x660, 0x669, 6}, {0x66E, 0x66F, 6}, {0x671, 0x6D3, 6}, {0x6D5, 0x6D5, 6},
    {0x6E5, 0x6E6, 6}, {0x6EE, 0x6FC, 6}, {0x6FF, 0x6FF, 6}, {0x710, 0x710, 6},
    {0x712, 0x72F, 6}, {0x74D, 0x7A5, 6}, {0x7B1, 0x7B1, 6}, {0x7C0, 0x7EA, 6},
    {0x7F4, 0x7F5, 6}, {0x7FA, 0x7FA, 6}, {0x800, 0x815, 6}, {0x81A, 0x81A, 6},
    {0x824, 0x824, 6}, {0x828, 0x828, 6}, {0x840, 0x858, 6}, {0x860, 0x86A, 7},
    {0x870, 0x887, 11}, {0x889, 0x88E, 11}, {0x8A0, 0x8B4, 6},
    {0x8B5, 0x8B5, 11}, {0x8B6, 0x8BD, 6}, {0x8BE, 0x8C7, 9},
    {0x8C8, 0x8C9, 11}, {0x904, 0x939, 6}, {0x93D, 0x93D, 6},
    {0x950, 0x950, 6}, {0x958, 0x961, 6}, {0x966, 0x96F, 6}, {0x971, 0x980, 6},
    {0x985, 0x98C, 6}, {0x98F, 0x990, 6}, {0x993, 0x9A8, 6}, {0x9AA, 0x9B0, 6},
    {0x9B2, 0x9B2, 6}, {0x9B6, 0x9B9, 6}, {0x9BD, 0x9BD, 6}, {0x9CE, 0x9CE, 6},
    {0x9DC, 0x9DD, 6}, {0x9DF, 0x9E1, 6}, {0x9E6, 0x9F1, 6}, {0x9F4, 0x9F9, 6},
    {0x9FC, 0x9FC, 7}, {0xA05, 0xA0A, 6}, {0xA0F, 0xA10, 6}, {0xA13, 0xA28, 6},
    {0xA2A, 0xA30, 6}, {0xA32, 0xA33, 6}, {0xA35, 0xA36, 6}, {0xA38, 0xA39, 6},
    {0xA59, 0xA5C, 6}, {0xA5E, 0xA5E, 6}, {0xA66, 0xA6F, 6}, {0xA72, 0xA74, 6},
    {0xA85, 0xA8D, 6}, {0xA8F, 0xA91, 6}, {0xA93, 0xAA8, 6}, {0xAAA, 0xAB0, 6},
    {0xAB2, 0xAB3, 6}, {0xAB5, 0xAB9, 6}, {0xABD, 0xABD, 6}, {0xAD0, 0xAD0, 6},
    {0xAE0, 0xAE1, 6}, {0xAE6, 0xAEF, 6}, {0xAF9, 0xAF9, 6}, {0xB05, 0xB0C, 6},
    {0xB0F, 0xB10, 6}, {0xB13, 0xB28, 6}, {0xB2A, 0xB30, 6}, {0xB32, 0xB33, 6},
    {0xB35, 0xB39, 6}, {0xB3D, 0xB3D, 6}, {0xB5C, 0xB5D, 6}, {0xB5F, 0xB61, 6},
    {0xB66, 0xB6F, 6}, {0xB71, 0xB77, 6}, {0xB83, 0xB83, 6}, {0xB85, 0xB8A, 6},
    {0xB8E, 0xB90, 6}, {0xB92, 0xB95, 6}, {0xB99, 0xB9A, 6}, {0xB9C, 0xB9C, 6},
    {0xB9E, 0xB9F, 6}, {0xBA3, 0xBA4, 6}, {0xBA8, 0xBAA, 6}, {0xBAE, 0xBB9, 6},
    {0xBD0, 0xBD0, 6}, {0xBE6, 0xBF2, 6}, {0xC05, 0xC0C, 6}, {0xC0E, 0xC10, 6},
    {0xC12, 0xC28, 6}, {0xC2A, 0xC39, 6}, {0xC3D, 0xC3D, 6}, {0xC58, 0xC5A, 6},
    {0xC5D, 0xC5D, 11}, {0xC60, 0xC61, 6}, {0xC66, 0xC6F, 6},
    {0xC78, 0xC7E, 6}, {0xC80, 0xC80, 6}, {0xC85, 0xC8C, 6}, {0xC8E, 0xC90, 6},
    {0xC92, 0xCA8, 6}, {0xCAA, 0xCB3, 6}, {0xCB5, 0xCB9, 6}, {0xCBD, 0xCBD, 6},
    {0xCDD, 0xCDD, 11}, {0xCDE, 0xCDE, 6}, {0xCE0, 0xCE1, 6},
    {0xCE6, 0xCEF, 6}, {0xCF1, 0xCF2, 6}, {0xD04, 0xD04, 9}, {0xD05, 0xD0C, 6},
    {0xD0E, 0xD10, 6}, {0xD12, 0xD3A, 6}, {0xD3D, 0xD3D, 6}, {0xD4E, 0xD4E, 6},
    {0xD54, 0xD56, 6}, {0xD58, 0xD61, 6}, {0xD66, 0xD78, 6}, {0xD7A, 0xD7F, 6},
    {0xD85, 0xD96, 6}, {0xD9A, 0xDB1, 6}, {0xDB3, 0xDBB, 6}, {0xDBD, 0xDBD, 6},
    {0xDC0, 0xDC6, 6}, {0xDE6, 0xDEF, 6}, {0xE01, 0xE30, 6}, {0xE32, 0xE33, 6},
    {0xE40, 0xE46, 6}, {0xE50, 0xE59, 6}, {0xE81, 0xE82, 6}, {0xE84, 0xE84, 6},
    {0xE86, 0xE86, 8}, {0xE87, 0xE88, 6}, {0xE89, 0xE89, 8}, {0xE8A, 0xE8A, 6},
    {0xE8C, 0xE8C, 8}, {0xE8D, 0xE8D, 6}, {0xE8E, 0xE93, 8}, {0xE94, 0xE97, 6},
    {0xE98, 0xE98, 8}, {0xE99, 0xE9F, 6}, {0xEA0, 0xEA0, 8}, {0xEA1, 0xEA3, 6},
    {0xEA5, 0xEA5, 6}, {0xEA7, 0xEA7, 6}, {0xEA8, 0xEA9, 8}, {0xEAA, 0xEAB, 6},
    {0xEAC, 0xEAC, 8}, {0xEAD, 0xEB0, 6}, {0xEB2, 0xEB3, 6}, {0xEBD, 0xEBD, 6},
    {0xEC0, 0xEC4, 6}, {0xEC6, 0xEC6, 6}, {0xED0, 0xED9, 6}, {0xEDC, 0xEDF, 6},
    {0xF00, 0xF00, 6}, {0xF20, 0xF33, 6}, {0xF40, 0xF47, 6}, {0xF49, 0xF6C, 6},
    {0xF88, 0xF8C, 6}, {0x1000, 0x102A, 6}, {0x103F, 0x1049, 6},
    {0x1050, 0x1055, 6}, {0x105A, 0x105D, 6}, {0x1061, 0x1061, 6},
    {0x1065, 0x1066, 6}, {0x106E, 0x1070, 6}, {0x1075, 0x1081, 6},
    {0x108E, 0x108E, 6}, {0x1090, 0x1099, 6}, {0x10A0, 0x10C5, 6},
    {0x10C7, 0x10C7, 6}, {0x10CD, 0x10CD, 6}, {0x10D0, 0x10FA, 6},
    {0x10FC, 0x1248, 6}, {0x124A, 0x124D, 6}, {0x1250, 0x1256, 6},
    {0x1258, 0x1258, 6}, {0x125A, 0x125D, 6}, {0x1260, 0x1288, 6},
    {0x128A, 0x128D, 6}, {0x1290, 0x12B0, 6}, {0x12B2, 0x12B5, 6},
    {0x12B8, 0x12BE, 6}, {0x12C0, 0x12C0, 6}, {0x12C2, 0x12C5, 6},
    {0x12C8, 0x12D6, 6}, {0x12D8, 0x1310, 6}, {0x1312, 0x1315, 6},
    {0x1318, 0x135A, 6}, {0x1369, 0x137C, 6}, {0x1380, 0x138F, 6},
    {0x13A0, 0x13F5, 6}, {0x13F8, 0x13FD, 6}, {0x1401, 0x166C, 6},
    {0x166F, 0x167F, 6}, {0x1681, 0x169A, 6}, {0x16A0, 0x16EA, 6},
    {0x16EE, 0x16F8, 6}, {0x1700, 0x170C, 6}, {0x170D, 0x170D, 11},
    {0x170E, 0x1711, 6}, {0x171F, 0x171F, 11}, {0x1720, 0x1731, 6},
    {0x1740, 0x1751, 6}, {0x1760, 0x176C, 6}, {0x176E, 0x1770, 6},
    {0x1780, 0x17B3, 6}, {0x17D7, 0x17D7, 6}, {0x17DC, 0x17DC, 6},
    {0x17E0, 0x17E9, 6}, {0x17F0, 0x17F9, 6}, {0x1810, 0x1819, 6},
    {0x1820, 0x1877, 6}, {0x1878, 0x1878, 7}, {0x1880, 0x1884, 6},
    {0x1887, 0x18A8, 6}, {0x18AA, 0x18AA, 6}, {0x18B0, 0x18F5, 6},
    {0x1900, 0x191E, 6}, {0x1946, 0x196D, 6}, {0x1970, 0x1974, 6},
    {0x1980, 0x19AB, 6}, {0x19B0, 0x19C9, 6}, {0x19D0, 0x19DA, 6},
    {0x1A00, 0x1A16, 6}, {0x1A20, 0x1A54, 6}, {0x1A80, 0x1A89, 6},
    {0x1A90, 0x1A99, 6}, {0x1AA7, 0x1AA7, 6}, {0x1B05, 0x1B33, 6},
    {0x1B45, 0x1B4B, 6}, {0x1B4C, 0x1B4C, 11}, {0x1B50, 0x1B59, 6},
    {0x1B83, 0x1BA0, 6}, {0x1BAE, 0x1BE5, 6}, {0x1C00, 0x1C23, 6},
    {0x1C40, 0x1C49, 6}, {0x1C4D, 0x1C7D, 6}, {0x1C80, 0x1C88, 6},
    {0x1C90, 0x1CBA, 7}, {0x1CBD, 0x1CBF, 7}, {0x1CE9, 0x1CEC, 6},
    {0x1CEE, 0x1CF1, 6}, {0x1CF2, 0x1CF3, 8}, {0x1CF5, 0x1CF6, 6},
    {0x1CFA, 0x1CFA, 8}, {0x1D00, 0x1DBF, 6}, {0x1E00, 0x1F15, 6},
    {0x1F18, 0x1F1D, 6}, {0x1F20, 0x1F45, 6}, {0x1F48, 0x1F4D, 6},
    {0x1F50, 0x1F57, 6}, {0x1F59, 0x1F59, 6}, {0x1F5B, 0x1F5B, 6},
    {0x1F5D, 0x1F5D, 6}, {0x1F5F, 0x1F7D, 6}, {0x1F80, 0x1FB4, 6},
    {0x1FB6, 0x1FBC, 6}, {0x1FBE, 0x1FBE, 6}, {0x1FC2, 0x1FC4, 6},
    {0x1FC6, 0x1FCC, 6}, {0x1FD0, 0x1FD3, 6}, {0x1FD6, 0x1FDB, 6},
    {0x1FE0, 0x1FEC, 6}, {0x1FF2, 0x1FF4, 6}, {0x1FF6, 0x1FFC, 6},
    {0x2070, 0x2071, 6}, {0x2074, 0x2079, 6}, {0x207F, 0x2089, 6},
    {0x2090, 0x209C, 6}, {0x2102, 0x2102, 6}, {0x2107, 0x2107, 6},
    {0x210A, 0x2113, 6}, {0x2115, 0x2115, 6}, {0x2119, 0x211D, 6},
    {0x2124, 0x2124, 6}, {0x2126, 0x2126, 6}, {0x2128, 0x2128, 6},
    {0x212A, 0x212D, 6}, {0x212F, 0x2139, 6}, {0x213C, 0x213F, 6},
    {0x2145, 0x2149, 6}, {0x214E, 0x214E, 6}, {0x2150, 0x2189, 6},
    {0x2460, 0x249B, 6}, {0x24EA, 0x24FF, 6}, {0x2776, 0x2793, 6},
    {0x2C00, 0x2C2E, 6}, {0x2C2F, 0x2C2F, 11}, {0x2C30, 0x2C5E, 6},
    {0x2C5F, 0x2C5F, 11}, {0x2C60, 0x2CE4, 6}, {0x2CEB, 0x2CEE, 6},
    {0x2CF2, 0x2CF3, 6}, {0x2CFD, 0x2CFD, 6}, {0x2D00, 0x2D25, 6},
    {0x2D27, 0x2D27, 6}, {0x2D2D, 0x2D2D, 6}, {0x2D30, 0x2D67, 6},
    {0x2D6F, 0x2D6F, 6}, {0x2D80, 0x2D96, 6}, {0x2DA0, 0x2DA6, 6},
    {0x2DA8, 0x2DAE, 6}, {0x2DB0, 0x2DB6, 6}, {0x2DB8, 0x2DBE, 6},
    {0x2DC0, 0x2DC6, 6}, {0x2DC8, 0x2DCE, 6}, {0x2DD0, 0x2DD6, 6},
    {0x2DD8, 0x2DDE, 6}, {0x2E2F, 0x2E2F, 6}, {0x3005, 0x3007, 6},
    {0x3021, 0x3029, 6}, {0x3031, 0x3035, 6}, {0x3038, 0x303C, 6},
    {0x3041, 0x3096, 6}, {0x309D, 0x309F, 6}, {0x30A1, 0x30FA, 6},
    {0x30FC, 0x30FF, 6}, {0x3105, 0x312D, 6}, {0x312E, 0x312F, 7},
    {0x3131, 0x318E, 6}, {0x3192, 0x3195, 6}, {0x31A0, 0x31BA, 6},
    {0x31BB, 0x31BF, 9}, {0x31F0, 0x31FF, 6}, {0x3220, 0x3229, 6},
    {0x3248, 0x324F, 6}, {0x3251, 0x325F, 6}, {0x3280, 0x3289, 6},
    {0x32B1, 0x32BF, 6}, {0x3400, 0x4DB5, 6}, {0x4DB6, 0x4DBF, 9},
    {0x4E00, 0x9FD5, 6}, {0x9FD6, 0x9FEF, 7}, {0x9FF0, 0x9FFC, 9},
    {0x9FFD, 0x9FFF, 11}, {0xA000, 0xA48C, 6}, {0xA4D0, 0xA4FD, 6},
    {0xA500, 0xA60C, 6}, {0xA610, 0xA62B, 6}, {0xA640, 0xA66E, 6},
    {0xA67F, 0xA69D, 6}, {0xA6A0, 0xA6EF, 6}, {0xA717, 0xA71F, 6},
    {0xA722, 0xA788, 6}, {0xA78B, 0xA7AE, 6}, {0xA7AF, 0xA7AF, 7},
    {0xA7B0, 0xA7B7, 6}, {0xA7B8, 0xA7B9, 7}, {0xA7BA, 0xA7BF, 8},
    {0xA7C0, 0xA7C1, 11}, {0xA7C2, 0xA7C6, 8}, {0xA7C7, 0xA7CA, 9},
    {0xA7D0, 0xA7D1, 11}, {0xA7D3, 0xA7D3, 11}, {0xA7D5, 0xA7D9, 11},
    {0xA7F2, 0xA7F4, 11}, {0xA7F5, 0xA7F6, 9}, {0xA7F7, 0xA801, 6},
    {0xA803, 0xA805, 6}, {0xA807, 0xA80A, 6}, {0xA80C, 0xA822, 6},
    {0xA830, 0xA835, 6}, {0xA840, 0xA873, 6}, {0xA882, 0xA8B3, 6},
    {0xA8D0, 0xA8D9, 6}, {0xA8F2, 0xA8F7, 6}, {0xA8FB, 0xA8FB, 6},
    {0xA8FD, 0xA8FD, 6}, {0xA8FE, 0xA8FE, 7}, {0xA900, 0xA925, 6},
    {0xA930, 0xA946, 6}, {0xA960, 0xA97C, 6}, {0xA984, 0xA9B2, 6},
    {0xA9CF, 0xA9D9, 6}, {0xA9E0, 0xA9E4, 6}, {0xA9E6, 0xA9FE, 6},
    {0xAA00, 0xAA28, 6}, {0xAA40, 0xAA42, 6}, {0xAA44, 0xAA4B, 6},
    {0xAA50, 0xAA59, 6}, {0xAA60, 0xAA76, 6}, {0xAA7A, 0xAA7A, 6},
    {0xAA7E, 0xAAAF, 6}, {0xAAB1, 0xAAB1, 6}, {0xAAB5, 0xAAB6, 6},
    {0xAAB9, 0xAABD, 6}, {0xAAC0, 0xAAC0, 6}, {0xAAC2, 0xAAC2, 6},
    {0xAADB, 0xAADD, 6}, {0xAAE0, 0xAAEA, 6}, {0xAAF2, 0xAAF4, 6},
    {0xAB01, 0xAB06, 6}, {0xAB09, 0xAB0E, 6}, {0xAB11, 0xAB16, 6},
    {0xAB20, 0xAB26, 6}, {0xAB28, 0xAB2E, 6}, {0xAB30, 0xAB5A, 6},
    {0xAB5C, 0xAB65, 6}, {0xAB66, 0xAB67, 8}, {0xAB68, 0xAB69, 9},
    {0xAB70, 0xABE2, 6}, {0xABF0, 0xABF9, 6}, {0xAC00, 0xD7A3, 6},
    {0xD7B0, 0xD7C6, 6}, {0xD7CB, 0xD7FB, 6}, {0xF900, 0xFA6D, 6},
    {0xFA70, 0xFAD9, 6}, {0xFB00, 0xFB06, 6}, {0xFB13, 0xFB17, 6},
    {0xFB1D, 0xFB1D, 6}, {0xFB1F, 0xFB28, 6}, {0xFB2A, 0xFB36, 6},
    {0xFB38, 0xFB3C, 6}, {0xFB3E, 0xFB3E, 6}, {0xFB40, 0xFB41, 6},
    {0xFB43, 0xFB44, 6}, {0xFB46, 0xFBB1, 6}, {0xFBD3, 0xFD3D, 6},
    {0xFD50, 0xFD8F, 6}, {0xFD92, 0xFDC7, 6}, {0xFDF0, 0xFDFB, 6},
    {0xFE70, 0xFE74, 6}, {0xFE76, 0xFEFC, 6}, {0xFF10, 0xFF19, 6},
    {0xFF21, 0xFF3A, 6}, {0xFF41, 0xFF5A, 6}, {0xFF66, 0xFFBE, 6},
    {0xFFC2, 0xFFC7, 6}, {0xFFCA, 0xFFCF, 6}, {0xFFD2, 0xFFD7, 6},
    {0xFFDA, 0xFFDC, 6}, {0x10000, 0x1000B, 6}, {0x1000D, 0x10026, 6},
    {0x10028, 0x1003A, 6}, {0x1003C, 0x1003D, 6}, {0x1003F, 0x1004D, 6},
    {0x10050, 0x1005D, 6}, {0x10080, 0x100FA, 6}, {0x10107, 0x10133, 6},
    {0x10140, 0x10178, 6}, {0x1018A, 0x1018B, 6}, {0x10280, 0x1029C, 6},
    {0x102A0, 0x102D0, 6}, {0x102E1, 0x102FB, 6}, {0x10300, 0x10323, 6},
    {0x1032D, 0x1032F, 7}, {0x10330, 0x1034A, 6}, {0x10350, 0x10375, 6},
    {0x10380, 0x1039D, 6}, {0x103A0, 0x103C3, 6}, {0x103C8, 0x103CF, 6},
    {0x103D1, 0x103D5, 6}, {0x10400, 0x1049D, 6}, {0x104A0, 0x104A9, 6},
    {0x104B0, 0x104D3, 6}, {0x104D8, 0x104FB, 6}, {0x10500, 0x10527, 6},
    {0x10530, 0x10563, 6}, {0x10570, 0x1057A, 11}, {0x1057C, 0x1058A, 11},
    {0x1058C, 0x10592, 11}, {0x10594, 0x10595, 11}, {0x10597, 0x105A1, 11},
    {0x105A3, 0x105B1, 11}, {0x105B3, 0x105B9, 11}, {0x105BB, 0x105BC, 11},
    {0x10600, 0x10736, 6}, {0x10740, 0x10755, 6}, {0x10760, 0x10767, 6},
    {0x10780, 0x10785, 11}, {0x10787, 0x107B0, 11}, {0x107B2, 0x107BA, 11},
    {0x10800, 0x10805, 6}, {0x10808, 0x10808, 6}, {0x1080A, 0x10835, 6},
    {0x10837, 0x10838, 6}, {0x1083C, 0x1083C, 6}, {0x1083F, 0x10855, 6},
    {0x10858, 0x10876, 6}, {0x10879, 0x1089E, 6}, {0x108A7, 0x108AF, 6},
    {0x108E0, 0x108F2, 6}, {0x108F4, 0x108F5, 6}, {0x108FB, 0x1091B, 6},
    {0x10920, 0x10939, 6}, {0x10980, 0x109B7, 6}, {0x109BC, 0x109CF, 6},
    {0x109D2, 0x10A00, 6}, {0x10A10, 0x10A13, 6}, {0x10A15, 0x10A17, 6},
    {0x10A19, 0x10A33, 6}, {0x10A34, 0x10A35, 7}, {0x10A40, 0x10A47, 6},
    {0x10A48, 0x10A48, 7}, {0x10A60, 0x10A7E, 6}, {0x10A80, 0x10A9F, 6},
    {0x10AC0, 0x10AC7, 6}, {0x10AC9, 0x10AE4, 6}, {0x10AEB, 0x10AEF, 6},
    {0x10B00, 0x10B35, 6}, {0x10B40, 0x10B55, 6}, {0x10B58, 0x10B72, 6},
    {0x10B78, 0x10B91, 6}, {0x10BA9, 0x10BAF, 6}, {0x10C00, 0x10C48, 6},
    {0x10C80, 0x10CB2, 6}, {0x10CC0, 0x10CF2, 6}, {0x10CFA, 0x10CFF, 6},
    {0x10D00, 0x10D23, 7}, {0x10D30, 0x10D39, 7}, {0x10E60, 0x10E7E, 6},
    {0x10E80, 0x10EA9, 9}, {0x10EB0, 0x10EB1, 9}, {0x10F00, 0x10F27, 7},
    {0x10F30, 0x10F45, 7}, {0x10F51, 0x10F54, 7}, {0x10F70, 0x10F81, 11},
    {0x10FB0, 0x10FCB, 9}, {0x10FE0, 0x10FF6, 8}, {0x11003, 0x11037, 6},
    {0x11052, 0x1106F, 6}, {0x11071, 0x11072, 11}, {0x11075, 0x11075, 11},
    {0x11083, 0x110AF, 6}, {0x110D0, 0x110E8, 6}, {0x110F0, 0x110F9, 6},
    {0x11103, 0x11126, 6}, {0x11136, 0x1113F, 6}, {0x11144, 0x11144, 7},
    {0x11147, 0x11147, 9}, {0x11150, 0x11172, 6}, {0x11176, 0x11176, 6},
    {0x11183, 0x111B2, 6}, {0x111C1, 0x111C4, 6}, {0x111D0, 0x111DA, 6},
    {0x111DC, 0x111DC, 6}, {0x111E1, 0x111F4, 6}, {0x11200, 0x11211, 6},
    {0x11213, 0x1122B, 6}, {0x1123F, 0x11240, 12}, {0x11280, 0x11286, 6},
    {0x11288, 0x11288, 6}, {0x1128A, 0x1128D, 6}, {0x1128F, 0x1129D, 6},
    {0x1129F, 0x112A8, 6}, {0x112B0, 0x112DE, 6}, {0x112F0, 0x112F9, 6},
    {0x11305, 0x1130C, 6}, {0x1130F, 0x11310, 6}, {0x11313, 0x11328, 6},
    {0x1132A, 0x11330, 6}, {0x11332, 0x11333, 6}, {0x11335, 0x11339, 6},
    {0x1133D, 0x1133D, 6}, {0x11350, 0x11350, 6}, {0x1135D, 0x11361, 6},
    {0x11400, 0x11434, 6}, {0x11447, 0x1144A, 6}, {0x11450, 0x11459, 6},
    {0x1145F, 0x1145F, 8}, {0x11460, 0x11461, 9}, {0x11480, 0x114AF, 6},
    {0x114C4, 0x114C5, 6}, {0x114C7, 0x114C7, 6}, {0x114D0, 0x114D9, 6},
    {0x11580, 0x115AE, 6}, {0x115D8, 0x115DB, 6}, {0x11600, 0x1162F, 6},
    {0x11644, 0x11644, 6}, {0x11650, 0x11659, 6}, {0x11680, 0x116AA, 6},
    {0x116B8, 0x116B8, 8}, {0x116C0, 0x116C9, 6}, {0x11700, 0x11719, 6},
    {0x1171A, 0x1171A, 7}, {0x11730, 0x1173B, 6}, {0x11740, 0x11746, 11},
    {0x11800, 0x1182B, 7}, {0x118A0, 0x118F2, 6}, {0x118FF, 0x118FF, 6},
    {0x11900, 0x11906, 9}, {0x11909, 0x11909, 9}, {0x1190C, 0x11913, 9},
    {0x11915, 0x11916, 9}, {0x11918, 0x1192F, 9}, {0x1193F, 0x1193F, 9},
    {0x11941, 0x11941, 9}, {0x11950, 0x11959, 9}, {0x119A0, 0x119A7, 8},
    {0x119AA, 0x119D0, 8}, {0x119E1, 0x119E1, 8}, {0x119E3, 0x119E3, 8},
    {0x11A00, 0x11A00, 7}, {0x11A0B, 0x11A32, 7}, {0x11A3A, 0x11A3A, 7},
    {0x11A50, 0x11A50, 7}, {0x11A5C, 0x11A83, 7}, {0x11A84, 0x11A85, 8},
    {0x11A86, 0x11A89, 7}, {0x11A9D, 0x11A9D, 7}, {0x11AB0, 0x11ABF, 11},
    {0x11AC0, 0x11AF8, 6}, {0x11C00, 0x11C08, 6}, {0x11C0A, 0x11C2E, 6},
    {0x11C40, 0x11C40, 6}, {0x11C50, 0x11C6C, 6}, {0x11C72, 0x11C8F, 6},
    {0x11D00, 0x11D06, 7}, {0x11D08, 0x11D09, 7}, {0x11D0B, 0x11D30, 7},
    {0x11D46, 0x11D46, 7}, {0x11D50, 0x11D59, 7}, {0x11D60, 0x11D65, 7},
    {0x11D67, 0x11D68, 7}, {0x11D6A, 0x11D89, 7}, {0x11D98, 0x11D98, 7},
    {0x11DA0, 0x11DA9, 7}, {0x11EE0, 0x11EF2, 7}, {0x11F02, 0x11F02, 12},
    {0x11F04, 0x11F10, 12}, {0x11F12, 0x11F33, 12}, {0x11F50, 0x11F59, 12},
    {0x11FB0, 0x11FB0, 9}, {0x11FC0, 0x11FD4, 8}, {0x12000, 0x12399, 6},
    {0x12400, 0x1246E, 6}, {0x12480, 0x12543, 6}, {0x12F90, 0x12FF0, 11},
    {0x13000, 0x1342E, 6}, {0x1342F, 0x1342F, 12}, {0x13441, 0x13446, 12},
    {0x14400, 0x14646, 6}, {0x16800, 0x16A38, 6}, {0x16A40, 0x16A5E, 6},
    {0x16A60, 0x16A69, 6}, {0x16A70, 0x16ABE, 11}, {0x16AC0, 0x16AC9, 11},
    {0x16AD0, 0x16AED, 6}, {0x16B00, 0x16B2F, 6}, {0x16B40, 0x16B43, 6},
    {0x16B50, 0x16B59, 6}, {0x16B5B, 0x16B61, 6}, {0x16B63, 0x16B77, 6},
    {0x16B7D, 0x16B8F, 6}, {0x16E40, 0x16E96, 7}, {0x16F00, 0x16F44, 6},
    {0x16F45, 0x16F4A, 8}, {0x16F50, 0x16F50, 6}, {0x16F93, 0x16F9F, 6},
    {0x16FE0, 0x16FE0, 6}, {0x16FE1, 0x16FE1, 7}, {0x16FE3, 0x16FE3, 8},
    {0x17000, 0x187EC, 6}, {0x187ED, 0x187F1, 7}, {0x187F2, 0x187F7, 8},
    {0x18800, 0x18AF2, 6}, {0x18AF3, 0x18CD5, 9}, {0x18D00, 0x18D08, 9},
    {0x1AFF0, 0x1AFF3, 11}, {0x1AFF5, 0x1AFFB, 11}, {0x1AFFD, 0x1AFFE, 11},
    {0x1B000, 0x1B001, 6}, {0x1B002, 0x1B11E, 7}, {0x1B11F, 0x1B122, 11},
    {0x1B132, 0x1B132, 12}, {0x1B150, 0x1B152, 8}, {0x1B155, 0x1B155, 12},
    {0x1B164, 0x1B167, 8}, {0x1B170, 0x1B2FB, 7}, {0x1BC00, 0x1BC6A, 6},
    {0x1BC70, 0x1BC7C, 6}, {0x1BC80, 0x1BC88, 6}, {0x1BC90, 0x1BC99, 6},
    {0x1D2C0, 0x1D2D3, 12}, {0x1D2E0, 0x1D2F3, 7}, {0x1D360, 0x1D371, 6},
    {0x1D372, 0x1D378, 7}, {0x1D400, 0x1D454, 6}, {0x1D456, 0x1D49C, 6},
    {0x1D49E, 0x1D49F, 6}, {0x1D4A2, 0x1D4A2, 6}, {0x1D4A5, 0x1D4A6, 6},
    {0x1D4A9, 0x1D4AC, 6}, {0x1D4AE, 0x1D4B9, 6}, {0x1D4BB, 0x1D4BB, 6},
    {0x1D4BD, 0x1D4C3, 6}, {0x1D4C5, 0x1D505, 6}, {0x1D507, 0x1D50A, 6},
    {0x1D50D, 0x1D514, 6}, {0x1D516, 0x1D51C, 6}, {0x1D51E, 0x1D539, 6},
    {0x1D53B, 0x1D53E, 6}, {0x1D540, 0x1D544, 6}, {0x1D546, 0x1D546, 6},
    {0x1D54A, 0x1D550, 6}, {0x1D552, 0x1D6A5, 6}, {0x1D6A8, 0x1D6C0, 6},
    {0x1D6C2, 0x1D6DA, 6}, {0x1D6DC, 0x1D6FA, 6}, {0x1D6FC, 0x1D714, 6},
    {0x1D716, 0x1D734, 6}, {0x1D736, 0x1D74E, 6}, {0x1D750, 0x1D76E, 6},
    {0x1D770, 0x1D788, 6}, {0x1D78A, 0x1D7A8, 6}, {0x1D7AA, 0x1D7C2, 6},
    {0x1D7C4, 0x1D7CB, 6}, {0x1D7CE, 0x1D7FF, 6}, {0x1DF00, 0x1DF1E, 11},
    {0x1DF25, 0x1DF2A, 12}, {0x1E030, 0x1E06D, 12}, {0x1E100, 0x1E12C, 8},
    {0x1E137, 0x1E13D, 8}, {0x1E140, 0x1E149, 8}, {0x1E14E, 0x1E14E, 8},
    {0x1E290, 0x1E2AD, 11}, {0x1E2C0, 0x1E2EB, 8}, {0x1E2F0, 0x1E2F9, 8},
    {0x1E4D0, 0x1E4EB, 12}, {0x1E4F0, 0x1E4F9, 12}, {0x1E7E0, 0x1E7E6, 11},
    {0x1E7E8, 0x1E7EB, 11}, {0x1E7ED, 0x1E7EE, 11}, {0x1E7F0, 0x1E7FE, 11},
    {0x1E800, 0x1E8C4, 6}, {0x1E8C7, 0x1E8CF, 6}, {0x1E900, 0x1E943, 6},
    {0x1E94B, 0x1E94B, 8}, {0x1E950, 0x1E959, 6}, {0x1EC71, 0x1ECAB, 7},
    {0x1ECAD, 0x1ECAF, 7}, {0x1ECB1, 0x1ECB4, 7}, {0x1ED01, 0x1ED2D, 8},
    {0x1ED2F, 0x1ED3D, 8}, {0x1EE00, 0x1EE03, 6}, {0x1EE05, 0x1EE1F, 6},
    {0x1EE21, 0x1EE22, 6}, {0x1EE24, 0x1EE24, 6}, {0x1EE27, 0x1EE27, 6},
    {0x1EE29, 0x1EE32, 6}, {0x1EE34, 0x1EE37, 6}, {0x1EE39, 0x1EE39, 6},
    {0x1EE3B, 0x1EE3B, 6}, {0x1EE42, 0x1EE42, 6}, {0x1EE47, 0x1EE47, 6},
    {0x1EE49, 0x1EE49, 6}, {0x1EE4B, 0x1EE4B, 6}, {0x1EE4D, 0x1EE4F, 6},
    {0x1EE51, 0x1EE52, 6}, {0x1EE54, 0x1EE54, 6}, {0x1EE57, 0x1EE57, 6},
    {0x1EE59, 0x1EE59, 6}, {0x1EE5B, 0x1EE5B, 6}, {0x1EE5D, 0x1EE5D, 6},
    {0x1EE5F, 0x1EE5F, 6}, {0x1EE61, 0x1EE62, 6}, {0x1EE64, 0x1EE64, 6},
    {0x1EE67, 0x1EE6A, 6}, {0x1EE6C, 0x1EE72, 6}, {0x1EE74, 0x1EE77, 6},
    {0x1EE79, 0x1EE7C, 6}, {0x1EE7E, 0x1EE7E, 6}, {0x1EE80, 0x1EE89, 6},
    {0x1EE8B, 0x1EE9B, 6}, {0x1EEA1, 0x1EEA3, 6}, {0x1EEA5, 0x1EEA9, 6},
    {0x1EEAB, 0x1EEBB, 6}, {0x1F100, 0x1F10C, 6}, {0x1FBF0, 0x1FBF9, 9},
    {0x20000, 0x2A6D6, 6}, {0x2A6D7, 0x2A6DD, 9}, {0x2A6DE, 0x2A6DF, 11},
    {0x2A700, 0x2B734, 6}, {0x2B735, 0x2B738, 11}, {0x2B739, 0x2B739, 12},
    {0x2B740, 0x2B81D, 6}, {0x2B820, 0x2CEA1, 6}, {0x2CEB0, 0x2EBE0, 7},
    {0x2EBF0, 0x2EE5D, 13}, {0x2F800, 0x2FA1D, 6}, {0x30000, 0x3134A, 9},
    {0x31350, 0x323AF, 12},
};

static bool code_point_alnum(uint32_t c, int minor)
{
    size_t lo = 0, hi = sizeof alnum_table / sizeof alnum_table[0];
    if (minor < 6)
        minor = 6;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < alnum_table[mid].first)
            hi = mid;
        else if (c > alnum_table[mid].last)
            lo = mid + 1;
        else
            return alnum_table[mid].since <= minor;
    }
    return false;
}

/* Decodes one UTF-8 character at S (N bytes left) as Python's strict UTF-8
 * decoder would; returns its length, or 0 if the byte is undecodable (then
 * surrogateescape makes it a lone surrogate). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *out)
{
    uint32_t c;
    size_t len, i;
    if (s[0] < 0x80) {
        *out = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
        (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *out = c;
    return len;
}

static bool ascii_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* str.isalnum() of the fsdecoded bytes S[0..N): False when empty. */
static bool str_isalnum(const char *s, size_t n, int minor)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    if (n == 0)
        return false;
    while (i < n) {
        uint32_t c;
        size_t len;
        if (p[i] < 0x80) {
            if (!ascii_alnum(p[i]))
                return false;
            i++;
            continue;
        }
        len = utf8_decode(p + i, n - i, &c);
        if (len == 0 || !code_point_alnum(c, minor))
            return false;
        i += len;
    }
    return true;
}

/* ---- path helpers ------------------------------------------------------------ */

typedef struct slice {
    const char *p;
    size_t n;
} slice;

static slice mkslice(const char *p, size_t n)
{
    slice s = {p, n};
    return s;
}

/* _path_split: around the last "/". */
static void path_split(slice path, slice *head, slice *tail)
{
    const char *slash = path.n ? lib_memrchr(path.p, '/', path.n) : NULL;
    if (slash == NULL) {
        *head = mkslice(path.p, 0);
        *tail = path;
        return;
    }
    *head = mkslice(path.p, (size_t)(slash - path.p));
    *tail = mkslice(slash + 1, path.n - (size_t)(slash - path.p) - 1);
}

static size_t rstrip_slashes(slice s)
{
    size_t n = s.n;
    while (n > 0 && s.p[n - 1] == '/')
        n--;
    return n;
}

/* _path_join (3.4+, POSIX): "/".join(p.rstrip("/") for p in parts if p).
 * Returns a malloc'd string or NULL (ENOMEM). */
static char *path_join(const slice *parts, size_t count)
{
    size_t total = 1, i, used = 0;
    bool first = true;
    char *out, *w;
    for (i = 0; i < count; i++)
        if (parts[i].n)
            total += rstrip_slashes(parts[i]) + 1;
    out = malloc(total);
    if (out == NULL)
        return NULL;
    w = out;
    for (i = 0; i < count; i++) {
        size_t n;
        if (!parts[i].n)
            continue;
        if (!first)
            w[used++] = '/';
        first = false;
        n = rstrip_slashes(parts[i]);
        memcpy(w + used, parts[i].p, n);
        used += n;
    }
    out[used] = '\0';
    return out;
}

static size_t count_dots(slice s)
{
    size_t i, n = 0;
    for (i = 0; i < s.n; i++)
        n += s.p[i] == '.';
    return n;
}

static void set_why(const char **why, const char *msg)
{
    if (why)
        *why = msg;
}

static void *fail(int err, const char **why, const char *msg)
{
    set_why(why, msg);
    errno = err;
    return NULL;
}

/* ---- cache_from_source ---------------------------------------------------------- */

/* The cache file name for the tail of SOURCE (without directory):
 *   3.2-3.4  base, sep, _ = tail.partition('.'); base + sep + tag + suffix
 *   3.5+     base, sep, rest = tail.rpartition('.');
 *            (base or rest) + sep + tag [+ '.opt-' + N] + '.pyc'
 * Returns a malloc'd string or NULL. */
static char *cache_file_name(const pyc_magic *m, family fam, slice tail,
                             int opt)
{
    slice stem;
    bool sep;
    size_t tag_len = strlen(m->tag), len;
    char *out, *w;

    if (fam == FAM_PYO) {
        const char *dot = tail.n ? memchr(tail.p, '.', tail.n) : NULL;
        stem = dot ? mkslice(tail.p, (size_t)(dot - tail.p)) : tail;
        sep = dot != NULL;
    } else {
        const char *dot = tail.n ? lib_memrchr(tail.p, '.', tail.n) : NULL;
        if (dot == NULL) {
            stem = tail; /* base is '': rest is the whole tail */
            sep = false;
        } else if (dot == tail.p) {
            /* base is '': rest, the text after the dot */
            stem = mkslice(dot + 1, tail.n - 1);
            sep = true;
        } else {
            stem = mkslice(tail.p, (size_t)(dot - tail.p));
            sep = true;
        }
    }
    len = stem.n + (sep ? 1 : 0) + tag_len + sizeof ".opt-N.pyc";
    out = malloc(len);
    if (out == NULL)
        return NULL;
    w = out;
    memcpy(w, stem.p, stem.n);
    w += stem.n;
    if (sep)
        *w++ = '.';
    memcpy(w, m->tag, tag_len);
    w += tag_len;
    if (fam == FAM_PYO) {
        memcpy(w, opt ? ".pyo" : ".pyc", 5);
    } else if (opt) {
        memcpy(w, ".opt-", 5);
        w[5] = (char)('0' + opt);
        memcpy(w + 6, ".pyc", 5);
    } else {
        memcpy(w, ".pyc", 5);
    }
    return out;
}

char *pyc_cache_from_source_why(const pyc_magic *m, const char *source,
                                int opt, const char *prefix, const char *cwd,
                                const char **why)
{
    family fam;
    slice path, head, tail;
    char *filename, *result;

    set_why(why, NULL);
    if (m == NULL || source == NULL)
        return fail(EINVAL, why, WHY_ARGS);
    if (opt < 0 || opt > 2)
        return fail(EINVAL, why, WHY_OPT_RANGE);
    fam = family_of(m);
    if (prefix != NULL && fam < FAM_PREFIX)
        return fail(EINVAL, why, WHY_PREFIX_VERSION);

    if (fam == FAM_LEGACY) {
        /* py_compile.compile: cfile = file + (__debug__ and 'c' or 'o') */
        size_t n = strlen(source);
        result = malloc(n + 2);
        if (result == NULL)
            return NULL;
        memcpy(result, source, n);
        result[n] = opt ? 'o' : 'c';
        result[n + 1] = '\0';
        return result;
    }
    if (m->tag == NULL)
        return fail(EINVAL, why, WHY_NO_TAG); /* NotImplementedError */

    path = mkslice(source, strlen(source));
    path_split(path, &head, &tail);
    filename = cache_file_name(m, fam, tail, opt);
    if (filename == NULL)
        return NULL;

    if (prefix == NULL) {
        slice parts[3];
        parts[0] = head;
        parts[1] = mkslice("__pycache__", 11);
        parts[2] = mkslice(filename, strlen(filename));
        result = path_join(parts, 3);
    } else {
        /* head = _path_abspath(head) (3.12+), or
         * if not _path_isabs(head): head = _path_join(_os.getcwd(), head) */
        char *cwd_owned = NULL, *abs_owned = NULL;
        slice abs = head, parts[3];
        if (!(head.n > 0 && head.p[0] == '/')) {
            slice jp[2];
            if (cwd == NULL) {
                cwd = cwd_owned = getcwd(NULL, 0);
                if (cwd == NULL) {
                    int e = errno;
                    free(filename);
                    errno = e;
                    return NULL;
                }
            }
            if (fam >= FAM_PREFIX312 && head.n >= 2 && head.p[0] == '.' &&
                head.p[1] == '/')
                head = mkslice(head.p + 2, head.n - 2); /* removeprefix('./') */
            jp[0] = mkslice(cwd, strlen(cwd));
            jp[1] = head;
            abs_owned = path_join(jp, 2);
            free(cwd_owned);
            if (abs_owned == NULL) {
                free(filename);
                return NULL;
            }
            abs = mkslice(abs_owned, strlen(abs_owned));
        }
        /* if head[1] == ':' and head[0] not in path_separators: head = head[2:]
         * — head[1] raises IndexError on a head shorter than 2 characters. */
        if (abs.n < 2) {
            free(abs_owned);
            free(filename);
            return fail(EINVAL, why, WHY_INDEX);
        }
        if (abs.p[1] == ':' && abs.p[0] != '/')
            abs = mkslice(abs.p + 2, abs.n - 2);
        while (abs.n > 0 && abs.p[0] == '/') /* head.lstrip(path_separators) */
            abs = mkslice(abs.p + 1, abs.n - 1);
        parts[0] = mkslice(prefix, strlen(prefix));
        parts[1] = abs;
        parts[2] = mkslice(filename, strlen(filename));
        result = path_join(parts, 3);
        free(abs_owned);
    }
    free(filename);
    return result;
}

char *pyc_cache_from_source(const pyc_magic *m, const char *source, int opt,
                            const char *prefix, const char *cwd)
{
    return pyc_cache_from_source_why(m, source, opt, prefix, cwd, NULL);
}

/* ---- source_from_cache ----------------------------------------------------------- */

char *pyc_source_from_cache(const pyc_magic *m, const char *cache,
                            const char *prefix, const char **why)
{
    family fam;
    slice path, head, name, pycache, base;
    bool found_in_prefix = false;
    size_t dots;
    char *source, *result;
    slice parts[2];

    set_why(why, NULL);
    if (m == NULL || cache == NULL)
        return fail(EINVAL, why, WHY_ARGS);
    fam = family_of(m);
    if (prefix != NULL && fam < FAM_PREFIX)
        return fail(EINVAL, why, WHY_PREFIX_VERSION);
    path = mkslice(cache, strlen(cache));

    if (fam == FAM_LEGACY) {
        /* The inverse of py_compile's file + 'c' / 'o' for NAME.py. */
        if (path.n < 4 || (strcmp(cache + path.n - 4, ".pyc") != 0 &&
                           strcmp(cache + path.n - 4, ".pyo") != 0))
            return fail(EINVAL, why, WHY_LEGACY);
        result = strndup(cache, path.n - 1);
        return result;
    }
    if (m->tag == NULL)
        return fail(EINVAL, why, WHY_NO_TAG);

    path_split(path, &head, &name);
    if (prefix != NULL) {
        /* stripped_path = sys.pycache_prefix.rstrip(path_separators)
         * if head.startswith(stripped_path + path_sep): ... */
        size_t n = rstrip_slashes(mkslice(prefix, strlen(prefix)));
        if (head.n > n && memcmp(head.p, prefix, n) == 0 && head.p[n] == '/') {
            head = mkslice(head.p + n, head.n - n);
            found_in_prefix = true;
        }
    }
    if (!found_in_prefix) {
        path_split(head, &head, &pycache);
        if (pycache.n != 11 || memcmp(pycache.p, "__pycache__", 11) != 0)
            return fail(EINVAL, why, WHY_NOT_BOTTOM);
    }
    dots = count_dots(name);
    if (fam == FAM_PYO) {
        if (dots != 2)
            return fail(EINVAL, why, WHY_DOTS_2);
    } else if (dots != 2 && dots != 3) {
        return fail(EINVAL, why, WHY_DOTS_23);
    } else if (dots == 3) {
        /* optimization = pycache_filename.rsplit('.', 2)[-2] */
        const char *last = lib_memrchr(name.p, '.', name.n);
        const char *prev = lib_memrchr(name.p, '.', (size_t)(last - name.p));
        slice optim = mkslice(prev + 1, (size_t)(last - prev - 1));
        if (optim.n < 4 || memcmp(optim.p, "opt-", 4) != 0)
            return fail(EINVAL, why, WHY_OPT_PREFIX);
        if (!str_isalnum(optim.p + 4, optim.n - 4, alnum_minor(m)))
            return fail(EINVAL, why, WHY_OPT_ALNUM);
    }
    /* base_filename = pycache_filename.partition('.')[0] */
    base = mkslice(name.p, (size_t)((const char *)memchr(name.p, '.', name.n) - name.p));
    source = malloc(base.n + 4);
    if (source == NULL)
        return NULL;
    memcpy(source, base.p, base.n);
    memcpy(source + base.n, ".py", 4);
    parts[0] = head;
    parts[1] = mkslice(source, base.n + 3);
    result = path_join(parts, 2);
    free(source);
    return result;
}

/* ---- naming of directory entries -------------------------------------------------- */

const char *pyc_cache_kind_name(pyc_cache_kind kind)
{
    switch (kind) {
    case PYC_KIND_PYCACHE:
        return "pycache";
    case PYC_KIND_LEGACY:
        return "legacy";
    case PYC_KIND_PREFIX:
        return "prefix";
    case PYC_KIND_TEMP:
        return "temp";
    case PYC_KIND_NONE:
        break;
    }
    return "none";
}

/* The level written after ".opt-": str(sys.flags.optimize) for a level of
 * 1 or more. Anything else (0, a leading zero, letters, beyond INT_MAX) no
 * interpreter writes at import: PYC_OPT_UNREAD. */
static int parse_opt_level(const char *s, size_t n)
{
    long v = 0;
    size_t i;
    if (n == 0 || s[0] == '0')
        return PYC_OPT_UNREAD;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PYC_OPT_UNREAD;
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            return PYC_OPT_UNREAD;
    }
    return (int)v;
}

/* Whether NAME[0..LEN) is a cache file name: tagged (in __pycache__ or a
 * prefix tree) NAME.TAG.pyc, NAME.TAG.opt-N.pyc, NAME.TAG.pyo; untagged
 * (legacy) NAME.pyc, NAME.pyo. Fills OUT's name fields. */
static bool parse_cache_name(const char *name, size_t len, bool tagged,
                             pyc_cache_name *out)
{
    size_t body;
    bool pyo;
    if (len < 5 || name[len - 4] != '.' || name[len - 3] != 'p' ||
        name[len - 2] != 'y' || (name[len - 1] != 'c' && name[len - 1] != 'o'))
        return false;
    pyo = name[len - 1] == 'o';
    body = len - 4;
    out->pyo = pyo;
    out->cache_len = len;
    if (!tagged) {
        out->stem_len = body;
        out->tag_off = body;
        out->tag_len = 0;
        out->opt = pyo ? -1 : 0;
        return true;
    } else {
        const char *dot = lib_memrchr(name, '.', body);
        size_t comp_off, comp_len;
        if (dot == NULL)
            return false;
        comp_off = (size_t)(dot - name) + 1;
        comp_len = body - comp_off;
        if (comp_len >= 4 && memcmp(name + comp_off, "opt-", 4) == 0) {
            /* NAME.TAG.opt-N: source_from_cache's 3-dot form, N alnum */
            const char *dot2 = lib_memrchr(name, '.', comp_off - 1);
            if (pyo)
                return false; /* no version writes .opt-N.pyo */
            if (dot2 != NULL && dot2 != name && dot2 + 1 < dot &&
                str_isalnum(name + comp_off + 4, comp_len - 4, 99)) {
                out->stem_len = (size_t)(dot2 - name);
                out->tag_off = out->stem_len + 1;
                out->tag_len = (size_t)(dot - dot2) - 1;
                out->opt = parse_opt_level(name + comp_off + 4, comp_len - 4);
                return true;
            }
            /* else "opt-..." is the tag itself: NAME.opt-x.pyc */
        }
        if (dot == name || comp_len == 0)
            return false; /* an empty NAME or TAG */
        out->stem_len = (size_t)(dot - name);
        out->tag_off = comp_off;
        out->tag_len = comp_len;
        out->opt = pyo ? -1 : 0;
        return true;
    }
}

pyc_cache_kind pyc_cache_name_parse(const char *name, bool in_pycache,
                                    bool in_prefix, pyc_cache_name *out)
{
    size_t len = strlen(name), i;
    bool tagged = in_pycache || in_prefix;
    pyc_cache_kind kind = in_prefix ? PYC_KIND_PREFIX
                          : in_pycache ? PYC_KIND_PYCACHE
                                       : PYC_KIND_LEGACY;
    const char *dot;

    memset(out, 0, sizeof *out);
    out->kind = PYC_KIND_NONE;
    out->cache_len = len;

    /* _write_atomic (3.3+): path_tmp = '{}.{}'.format(path, id(path)), the
     * cache path, a dot and a decimal id; left behind when the interpreter
     * was killed between open() and os.replace(). 2.x and 3.2 write the
     * cache in place (py_compile: open(cfile, 'wb'); import.c:
     * open_exclusive), so they leave no temp files of their own. */
    dot = lib_memrchr(name, '.', len);
    if (dot != NULL && (size_t)(dot - name) + 1 < len) {
        for (i = (size_t)(dot - name) + 1; i < len; i++)
            if (name[i] < '0' || name[i] > '9')
                break;
        if (i == len &&
            parse_cache_name(name, (size_t)(dot - name), tagged, out)) {
            out->kind = PYC_KIND_TEMP;
            return out->kind;
        }
    }
    memset(out, 0, sizeof *out);
    out->cache_len = len;
    if (parse_cache_name(name, len, tagged, out)) {
        out->kind = kind;
        return kind;
    }
    memset(out, 0, sizeof *out);
    out->kind = PYC_KIND_NONE;
    out->cache_len = len;
    return PYC_KIND_NONE;
}
