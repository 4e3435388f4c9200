/*
 * test_fuzz_regressions.c — inputs the fuzz targets (tests/fuzz/) stopped
 * on, kept as unit tests so they are checked on every `make check-unit`.
 *
 * Every crash or sanitizer report a target finds becomes a test here, with
 * the target, the input (hex) and where it was fixed. So far the targets
 * have found no crash in the library; what is here are the inputs on which
 * a target's own check first disagreed with the library and the library
 * turned out right (checked against the real interpreters): they pin the
 * behaviour the targets now take for granted.
 */
#include "unit.h"

#include <errno.h>

/* fuzz_cachepath, input 79 2e 70 2e 70 79 ("y.p.py": bits 0x2e, all magics,
 * source "p.py"), then 25 0c 2f 79 2e 70 79 (source "/y.py", level 1).
 * A source directly under the root loses the root: CPython's _path_join
 * drops "/" ("/".rstrip('/') is ''), so for every 3.2+ interpreter
 *   cache_from_source('/y.py')  == '__pycache__/y.cpython-3X.pyc'
 *   cache_from_source('//y.py') == '/__pycache__/y.cpython-3X.pyc'
 * (checked with 3.6.15, 3.8.18, 3.11.7, 3.12.1, 3.13.0), and
 * source_from_cache gives back 'y.py', not '/y.py'. */
static void test_source_under_root(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; i < pyc_magic_count(); i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (!m->final || m->implementation != PYC_IMPL_CPYTHON || !m->tag)
            continue;
        bool pep488 = m->major > 3 || (m->major == 3 && m->minor >= 5);
        char want[128];

        snprintf(want, sizeof want, "__pycache__/y.%s.pyc", m->tag);
        char *c = pyc_cache_from_source(m, "/y.py", 0, NULL, NULL);
        assert_non_null(c);
        assert_string_equal(c, want);
        char *s = pyc_source_from_cache(m, c, NULL, NULL);
        assert_non_null(s);
        assert_string_equal(s, "y.py");
        free(s);
        free(c);

        snprintf(want, sizeof want, "/__pycache__/y.%s.pyc", m->tag);
        c = pyc_cache_from_source(m, "//y.py", 0, NULL, NULL);
        assert_non_null(c);
        assert_string_equal(c, want);
        free(c);

        snprintf(want, sizeof want, pep488 ? "__pycache__/y.%s.opt-1.pyc" : "__pycache__/y.%s.pyo",
                 m->tag);
        c = pyc_cache_from_source(m, "/y.py", 1, NULL, NULL);
        assert_non_null(c);
        assert_string_equal(c, want);
        free(c);
        checked++;
    }
    assert_true(checked >= 10); /* 3.2 ... 3.14 */
}

/* fuzz_magic, input 74 69 6d 65 73 74 61 4d 70 ("timestaMp"):
 * pyc_mode_parse takes compileall's --invalidation-mode spellings and
 * py_compile.PycInvalidationMode's member names, so case is ignored and '_'
 * stands for '-' (src/lib/header.c). */
static void test_mode_names_ignore_case(void **state)
{
    (void)state;
    pyc_mode mode;
    assert_int_equal(pyc_mode_parse("timestaMp", &mode), 0);
    assert_int_equal(mode, PYC_MODE_TIMESTAMP);
    assert_int_equal(pyc_mode_parse("CHECKED_HASH", &mode), 0);
    assert_int_equal(mode, PYC_MODE_CHECKED_HASH);
    assert_int_equal(pyc_mode_parse("unchecked_Hash", &mode), 0);
    assert_int_equal(mode, PYC_MODE_UNCHECKED_HASH);
    errno = 0;
    assert_int_equal(pyc_mode_parse("timestamp ", &mode), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(pyc_mode_parse("checked", &mode), -1);
    assert_int_equal(pyc_mode_parse("", &mode), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_under_root),
        cmocka_unit_test(test_mode_names_ignore_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
