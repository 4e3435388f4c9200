/*
 * test_stamp.c — source stamps (include/pycache.h section 5) from synthetic
 * struct stat values: the float rounding of 3.x's st_mtime, truncation
 * toward zero, 32-bit masking, and the mtimes each version can never match.
 * tests/integration/test_stamp.py checks the same rules against the real
 * interpreters.
 */
#include <sys/stat.h>

#include "unit.h"

#define CRLF 0x0a0d0000u

static const pyc_magic *final_of(int major, int minor)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    assert_non_null(m);
    return m;
}

static pyc_stamp stamp(const pyc_magic *m, int64_t sec, long nsec, int64_t size)
{
    struct stat st;
    pyc_stamp out;
    memset(&st, 0, sizeof st);
    st.st_mtim.tv_sec = (time_t)sec;
    st.st_mtim.tv_nsec = nsec;
    st.st_size = (off_t)size;
    memset(&out, 0x5A, sizeof out);
    pyc_stamp_from_stat(m, &st, &out);
    return out;
}

struct expect {
    int64_t sec;
    long nsec;
    uint32_t mtime;
    bool matchable;
};

static void check_all(const pyc_magic *m, const struct expect *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pyc_stamp s = stamp(m, e[i].sec, e[i].nsec, 100);
        if (s.mtime != e[i].mtime || s.mtime_matchable != e[i].matchable)
            fail_msg("%s: sec %lld nsec %ld: got %u/%d, want %u/%d", m->release,
                     (long long)e[i].sec, e[i].nsec, s.mtime, s.mtime_matchable,
                     e[i].mtime, e[i].matchable);
    }
}

#define T32 INT64_C(4294967296)
#define T31 INT64_C(2147483648)

/* 3.7+: int(sec + 1e-9*nsec) & 0xFFFFFFFF, compared masked. */
static void test_python37_and_later(void **state)
{
    static const struct expect e[] = {
        {0, 0, 0, true},
        {1700000000, 0, 1700000000u, true},
        {1700000000, 999999999, 1700000001u, true}, /* the double rounds up */
        {1700000000, 999999000, 1700000000u, true}, /* 1 us below: it does not */
        {1000, 999999999, 1000u, true},             /* small values keep 1e-9 */
        {-1, 0, 0xffffffffu, true},
        {-2, 500000000, 0xffffffffu, true},         /* -1.5 s: int() -> -1 */
        {-1, 999999999, 0u, true},                  /* -1e-9 s: int() -> 0 */
        {-3, 0, 0xfffffffdu, true},
        {T31 + 5, 0, 0x80000005u, true},
        {T32 - 1, 0, 0xffffffffu, true},
        {T32 - 1, 999999999, 0u, true},             /* rounds to 2**32 */
        {T32 + 7, 0, 7u, true},
        {INT64_MAX, 0, 0u, true},                   /* float(2**63-1) == 2**63 */
        {INT64_MIN, 0, 0u, true},
    };
    static const int versions[][2] = {{3, 7}, {3, 8}, {3, 11}, {3, 13}};
    (void)state;
    for (size_t v = 0; v < 4; v++) {
        const pyc_magic *m = final_of(versions[v][0], versions[v][1]);
        check_all(m, e, sizeof e / sizeof e[0]);
        pyc_stamp s = stamp(m, 1, 0, T32 + 5);
        assert_true(s.size_checked);
        assert_int_equal(s.size, 5);
    }
    /* no magic: judged as the newest */
    check_all(NULL, e, sizeof e / sizeof e[0]);
}

/* 3.3-3.6 (and the 3.7 alphas before PEP 552): the same value written,
 * compared unmasked with the 0..2**32-1 in the header. */
static void test_python33_to_36(void **state)
{
    static const struct expect e[] = {
        {0, 0, 0, true},
        {1700000000, 999999999, 1700000001u, true},
        {-1, 0, 0xffffffffu, false},
        {-2, 500000000, 0xffffffffu, false},
        {-1, 999999999, 0u, true}, /* int(-1e-9) == 0 */
        {T31 + 5, 0, 0x80000005u, true},
        {T32 - 1, 0, 0xffffffffu, true},
        {T32 - 1, 999999999, 0u, false},
        {T32 + 7, 0, 7u, false},
    };
    static const int versions[][2] = {{3, 3}, {3, 4}, {3, 5}, {3, 6}};
    (void)state;
    for (size_t v = 0; v < 4; v++) {
        const pyc_magic *m = final_of(versions[v][0], versions[v][1]);
        check_all(m, e, sizeof e / sizeof e[0]);
        pyc_stamp s = stamp(m, 1, 0, T32 + 5);
        assert_true(s.size_checked);
        assert_int_equal(s.size, 5);
    }
    const pyc_magic *a2 = pyc_magic_lookup(3391u | CRLF); /* 3.7a2 */
    assert_non_null(a2);
    check_all(a2, e, sizeof e / sizeof e[0]);
}

/* 2.7 and 3.2: whole seconds masked to 32 bits, compared with the header
 * read as a signed long. */
static void test_python27_and_32(void **state)
{
    static const struct expect e[] = {
        {0, 0, 0, true},
        {1700000000, 999999999, 1700000000u, true}, /* no float: no rounding */
        {-1, 0, 0xffffffffu, false},
        {-2, 500000000, 0xfffffffeu, false},         /* the kernel's floor */
        {T31 - 1, 0, 0x7fffffffu, true},
        {T31 + 5, 0, 0x80000005u, false},
        {T32 + 7, 0, 7u, true},
        {T32 + T31, 0, 0x80000000u, false},
    };
    (void)state;
    const pyc_magic *ms[] = {final_of(2, 7), final_of(3, 2),
                             pyc_magic_lookup(62212u | CRLF) /* 2.7 -U */};
    for (size_t v = 0; v < 3; v++) {
        assert_non_null(ms[v]);
        check_all(ms[v], e, sizeof e / sizeof e[0]);
        pyc_stamp s = stamp(ms[v], 1, 0, T32 + 5);
        assert_false(s.size_checked);
        assert_int_equal(s.size, 5);
    }
}

/* Before 2.7 (and 3.0, 3.1): `st_mtime >> 32` is an OverflowError. */
static void test_before_27(void **state)
{
    static const struct expect e[] = {
        {0, 0, 0, true},
        {1700000000, 999999999, 1700000000u, true},
        {-1, 0, 0xffffffffu, false},
        {T31 - 1, 0, 0x7fffffffu, true},
        {T31 + 5, 0, 0x80000005u, false},
        {T32 + 7, 0, 7u, false},
    };
    static const int versions[][2] = {{1, 5}, {2, 5}, {2, 6}, {3, 0}, {3, 1}};
    (void)state;
    for (size_t v = 0; v < 5; v++) {
        const pyc_magic *m = final_of(versions[v][0], versions[v][1]);
        check_all(m, e, sizeof e / sizeof e[0]);
        assert_false(stamp(m, 1, 0, 3).size_checked);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python37_and_later),
        cmocka_unit_test(test_python33_to_36),
        cmocka_unit_test(test_python27_and_32),
        cmocka_unit_test(test_before_27),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
