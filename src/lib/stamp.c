/*
 * stamp.c — the source mtime and size an interpreter records in a timestamp
 * pyc and compares at import, derived from struct stat exactly as that
 * interpreter derives them, and whether any header can match at all.
 *
 * 3.3+ (importlib). SourceFileLoader.path_stats returns os.stat()'s
 * st_mtime, the double Modules/posixmodule.c fill_time builds as
 * `sec + 1e-9*nsec` (3.3-3.11; `(double)sec + 1e-9 * nsec` in 3.12+ and
 * main: the same arithmetic). SourceLoader.get_code takes
 * source_mtime = int(st['mtime']): truncation toward zero of that double,
 * so an nsec close to 1e9 can round the double up to sec + 1, and -1.5 s
 * becomes -1. It is written with _w_long / _pack_uint32 (int(x) & 0xFFFFFFFF)
 * and compared:
 *   3.7+     _validate_timestamp_pyc: header != (source_mtime & 0xFFFFFFFF),
 *            masked: every mtime can match.
 *   3.3-3.6  _validate_bytecode_header (3.3: _bytes_from_bytecode):
 *            _r_long(raw_timestamp) != source_mtime, NOT masked: the header
 *            holds 0..2**32-1, so a negative mtime or one >= 2**32 never
 *            matches and the pyc is rewritten on every import.
 *   size     source_stats['size'] & 0xFFFFFFFF in both.
 * The PEP 552 alphas of 3.7 are told from the earlier ones by their layout
 * (16 bytes), which is when _validate_timestamp_pyc arrived.
 *
 * 2.x and 3.0-3.2 (Python/import.c). load_source_module takes the integer
 * st.st_mtime of fstat() (no nanoseconds, so no rounding; negative times
 * are the floor, as the kernel has them), and check_compiled_module
 * compares it with PyMarshal_ReadLongFromFile, which sign-extends the
 * header's 32 bits on LP64 (marshal.c r_long: x |= -(x & 0x80000000L)):
 *   2.7, 3.2 `st.st_mtime &= 0xFFFFFFFF` before the comparison: a value
 *            with bit 31 set (negative mtimes, 2**31.. 2**32-1, ...) never
 *            matches the sign-extended header.
 *   older    `if (st.st_mtime >> 32)` raises OverflowError ("modification
 *            time overflows a 4 byte field"): no pyc is used; otherwise the
 *            value must be below 2**31 to match.
 * No size is recorded (the 8-byte layout) and none is compared.
 */
#include "pycache.h"
#include "internal.h"
#include "platform/stattime.h"

#include <math.h>
#include <string.h>

#define TWO_32 4294967296.0

/* Python's int(x) & 0xFFFFFFFF for a finite double X (int() truncates
 * toward zero; & of a negative int is two's complement, i.e. modulo 2**32).
 * fmod is exact, so this holds for every magnitude. */
static uint32_t low32_of_trunc(double x)
{
    double r = fmod(trunc(x), TWO_32);
    if (r < 0)
        r += TWO_32;
    return (uint32_t)r;
}

/* os.stat().st_mtime as posixmodule.c fill_time computes it (3.3+). The
 * product is stored before the sum so that no compiler fuses the two into
 * one fma, which CPython (built as ISO C, contraction off) does not do. */
static double python_st_mtime(const struct stat *st)
{
    struct timespec t = psys_mtim(st);
    volatile double frac = 1e-9 * (double)(unsigned long)t.tv_nsec;
    return (double)t.tv_sec + frac;
}

/* Whether M is a 2.7 or 3.2 magic (or a 3.3 alpha from before the 12-byte
 * header, still on import.c): Python/import.c masks the mtime to 32 bits
 * there instead of raising OverflowError. */
static bool import_c_masks(const pyc_magic *m)
{
    return (m->major == 2 && m->minor >= 7) || (m->major == 3 && m->minor >= 2);
}

void pyc_stamp_from_stat(const pyc_magic *m, const struct stat *st,
                         pyc_stamp *out)
{
    memset(out, 0, sizeof *out);
    out->size = (uint32_t)((uint64_t)st->st_size & UINT32_C(0xFFFFFFFF));

    if (m == NULL || m->layout != PYC_LAYOUT_MTIME) {
        /* importlib (3.3+; an unknown interpreter is judged as the newest). */
        double mtime = python_st_mtime(st);
        out->mtime = low32_of_trunc(mtime);
        out->size_checked = true;
        if (m != NULL && m->layout == PYC_LAYOUT_MTIME_SIZE) {
            double whole = trunc(mtime);
            out->mtime_matchable = whole >= 0 && whole < TWO_32;
        } else {
            out->mtime_matchable = true;
        }
        return;
    }

    /* Python/import.c (2.x, 3.0-3.2): whole seconds of fstat(). */
    int64_t sec = (int64_t)psys_mtim(st).tv_sec;
    out->size_checked = false;
    out->mtime = (uint32_t)((uint64_t)sec & UINT32_C(0xFFFFFFFF));
    if (import_c_masks(m)) {
        out->mtime_matchable = out->mtime < UINT32_C(0x80000000);
    } else {
        /* (st_mtime >> 32) != 0 is OverflowError; then r_long's sign
         * extension leaves 0 .. 2**31-1. */
        out->mtime_matchable = sec >= 0 && sec < INT64_C(0x80000000);
    }
}
