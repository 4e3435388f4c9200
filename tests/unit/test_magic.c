/*
 * test_magic.c — the magic-number table (include/pycache.h section 2).
 *
 * The reference rows come from tests/reference/magic.tsv (CPython's own
 * comment block, checked against the real interpreters where one exists);
 * the rest pins the table's invariants and the parsers' contracts.
 */
#include <errno.h>

#include "unit.h"

#define CRLF ((uint32_t)'\r' << 16 | (uint32_t)'\n' << 24)

static uint32_t word_of(unsigned number)
{
    /* 1.0 and 1.1 wrote b"\x99\x00" after the number (magic.tsv notes). */
    if (number == 39170 || number == 39171)
        return number | (uint32_t)0x99 << 16;
    return number | CRLF;
}

/* "3.11b4" -> 3, 11; "3000 (3.0 pre-alpha)" -> 3, 0; "2.7 with -U" -> 2, 7. */
static void version_of_label(const char *label, int *major, int *minor)
{
    if (strncmp(label, "3000", 4) == 0) {
        *major = 3;
        *minor = 0;
        return;
    }
    assert_int_equal(sscanf(label, "%d.%d", major, minor), 2);
}

static void test_reference_rows(void **state)
{
    FILE *f = unit_open_reference("magic.tsv");
    char line[1024];
    int rows = 0;

    (void)state;
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        char *number_text = strtok(line, "\t\n");
        char *label = strtok(NULL, "\t\n");
        char *note = strtok(NULL, "\n");
        unsigned number;
        int major, minor;
        const pyc_magic *m;

        if (!number_text || !label)
            continue;
        number = (unsigned)strtoul(number_text, NULL, 10);
        version_of_label(label, &major, &minor);
        m = pyc_magic_lookup(word_of(number));
        if (!m)
            fail_msg("magic %u (%s) is not in the table", number, label);
        assert_int_equal(m->number, number);
        assert_int_equal(m->implementation, PYC_IMPL_CPYTHON);
        if (m->major != major || m->minor != minor)
            fail_msg("magic %u: table says %d.%d, reference %s", number,
                     m->major, m->minor, label);
        if (note && strncmp(note, "FINAL ", 6) == 0 && !m->final)
            fail_msg("magic %u (%s) is final in the reference", number, label);
        rows++;
    }
    fclose(f);
    assert_true(rows > 200); /* the whole file was read */
}

static void test_word_number_round_trip(void **state)
{
    size_t i, n = pyc_magic_count();

    (void)state;
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        assert_non_null(m);
        assert_int_equal(m->word & 0xffff, m->number);
        if (m->implementation == PYC_IMPL_CPYTHON && m->major == 1 && m->minor <= 1)
            assert_int_equal(m->word >> 16, 0x0099);
        else
            assert_int_equal(m->word >> 16, 0x0a0d);
        assert_ptr_equal(pyc_magic_lookup(m->word), m);
    }
    assert_null(pyc_magic_at(n));
    /* The 2.7.18 interpreter's bytes: 03 f3 0d 0a. */
    assert_int_equal(pyc_magic_lookup(0x0a0df303)->number, 62211);
}

static void test_unknown_words(void **state)
{
    (void)state;
    assert_null(pyc_magic_lookup(0));
    assert_null(pyc_magic_lookup(0xffffffff));
    assert_null(pyc_magic_lookup(3001 | CRLF));
    assert_null(pyc_magic_lookup(3495)); /* no \r\n */
    assert_null(pyc_magic_lookup(3495 | (uint32_t)'\n' << 16 | (uint32_t)'\r' << 24));
    assert_null(pyc_magic_lookup(39170 | CRLF)); /* 1.0 never wrote \r\n */
}

static void test_unicode_flag_variants(void **state)
{
    const pyc_magic *m;

    (void)state;
    /* 2.7 -U writes MAGIC + 1 (verified: 2.7.18 -U imp.get_magic()). */
    m = pyc_magic_lookup(62212 | CRLF);
    assert_non_null(m);
    assert_int_equal(m->major, 2);
    assert_int_equal(m->minor, 7);
    assert_false(m->final);
    /* 62091 + 1 is the real 62092 (2.5a0): the real one wins. */
    m = pyc_magic_lookup(62092 | CRLF);
    assert_non_null(m);
    assert_string_equal(m->note, "changed WITH_CLEANUP opcode");
    /* 62092 + 1 is free. */
    assert_non_null(pyc_magic_lookup(62093 | CRLF));
    /* No -U in 3.x. */
    assert_null(pyc_magic_lookup(3496 | CRLF));
}

static void test_layout_boundaries(void **state)
{
    size_t i, n = pyc_magic_count();

    (void)state;
    assert_int_equal(pyc_magic_lookup(3200 | CRLF)->layout, PYC_LAYOUT_MTIME);
    assert_int_equal(pyc_magic_lookup(3210 | CRLF)->layout, PYC_LAYOUT_MTIME_SIZE);
    assert_int_equal(pyc_magic_lookup(3391 | CRLF)->layout, PYC_LAYOUT_MTIME_SIZE);
    assert_int_equal(pyc_magic_lookup(3392 | CRLF)->layout, PYC_LAYOUT_FLAGS);
    assert_int_equal(pyc_magic_lookup(62211 | CRLF)->layout, PYC_LAYOUT_MTIME);
    assert_int_equal(pyc_magic_lookup(62218 | CRLF)->layout, PYC_LAYOUT_MTIME); /* pypy2 */
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        pyc_layout want;
        if (m->implementation != PYC_IMPL_CPYTHON)
            continue;
        if (m->major < 3 || m->number < 3210)
            want = PYC_LAYOUT_MTIME;
        else if (m->number < 3392)
            want = PYC_LAYOUT_MTIME_SIZE;
        else
            want = PYC_LAYOUT_FLAGS;
        assert_int_equal(m->layout, want);
    }
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void test_table_invariants(void **state)
{
    size_t i, n = pyc_magic_count();
    uint32_t *words = malloc(n * sizeof *words);
    int last_major = 0, last_minor = 0, last_impl = 0;
    unsigned last3 = 0;

    (void)state;
    assert_non_null(words);
    for (i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        const pyc_magic *f;
        words[i] = m->word;
        assert_non_null(m->release);
        assert_non_null(m->note);
        /* Table order: by implementation, then by version. */
        assert_true((int)m->implementation >= last_impl);
        if ((int)m->implementation != last_impl) {
            last_impl = (int)m->implementation;
            last_major = last_minor = 0;
            last3 = 0;
        }
        assert_true(m->major > last_major ||
                    (m->major == last_major && m->minor >= last_minor));
        last_major = m->major;
        last_minor = m->minor;
        /* CPython 3.x numbers only grow. */
        if (m->implementation == PYC_IMPL_CPYTHON && m->major == 3) {
            assert_true(m->number > last3);
            last3 = m->number;
        }
        /* Tags: CPython's from 3160 (3.2a1, PEP 3147) on, named after the
         * version. */
        if (m->implementation == PYC_IMPL_CPYTHON) {
            if (m->major == 3 && m->number >= 3160) {
                char want[32];
                snprintf(want, sizeof want, "cpython-%d%d", m->major, m->minor);
                assert_non_null(m->tag);
                assert_string_equal(m->tag, want);
            } else {
                assert_null(m->tag);
            }
        }
        if (m->implementation == PYC_IMPL_PYPY && m->tag) {
            char want[32];
            snprintf(want, sizeof want, "pypy%d%d", m->major, m->minor);
            assert_string_equal(m->tag, want);
        }
        /* Every version has a final (or newest) value, of that version. */
        f = pyc_magic_final(m->implementation, m->major, m->minor);
        assert_non_null(f);
        assert_int_equal(f->implementation, m->implementation);
        assert_int_equal(f->major, m->major);
        assert_int_equal(f->minor, m->minor);
        if (m->final)
            assert_true(f->final);
    }
    /* One entry per distinct word. */
    qsort(words, n, sizeof *words, compare_u32);
    for (i = 1; i < n; i++)
        assert_true(words[i - 1] < words[i]);
    free(words);
}

static void test_final(void **state)
{
    (void)state;
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 11)->number, 3495);
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 2, 7)->number, 62211);
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 2, 3)->number, 62011);
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 5)->number, 3351);
    assert_true(pyc_magic_lookup(3350 | CRLF)->final); /* 3.5.0-3.5.2 */
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 14)->number, 3627);
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 1, 0)->number, 39170);
    /* 3.15 has no final release: the newest value, not marked final. */
    assert_int_equal(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 15)->number, 3657);
    assert_false(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 15)->final);
    assert_int_equal(pyc_magic_final(PYC_IMPL_PYPY, 3, 10)->number, 384);
    assert_int_equal(pyc_magic_final(PYC_IMPL_PYPY, 2, 7)->number, 62218);
    assert_null(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 16));
    assert_null(pyc_magic_final(PYC_IMPL_CPYTHON, 4, 0));
    assert_null(pyc_magic_final(PYC_IMPL_CPYTHON, -1, 0));
    assert_null(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 1000));
    assert_null(pyc_magic_final((pyc_implementation)7, 3, 11));
    assert_null(pyc_magic_final(PYC_IMPL_PYPY, 3, 8)); /* none of its own */
}

static const pyc_magic *tag(const char *s)
{
    return pyc_magic_for_tag(s, strlen(s));
}

static void test_for_tag(void **state)
{
    const char buf[] = "cpython-311.opt-1.pyc";

    (void)state;
    assert_int_equal(tag("cpython-311")->number, 3495);
    assert_int_equal(tag("cpython-32")->number, 3180);
    assert_int_equal(tag("cpython-27") == NULL, 1); /* 2.7 has no tag */
    assert_null(tag("cpython-30"));
    assert_null(tag("cpython-316"));
    assert_null(tag("cpython-3"));
    assert_null(tag("cpython-3111"));
    assert_null(tag("cpython-"));
    assert_null(tag(""));
    assert_null(pyc_magic_for_tag(NULL, 0));
    assert_int_equal(tag("cpython-315")->number, 3657);
    assert_int_equal(tag("pypy39")->number, 336);
    assert_int_equal(tag("pypy310")->number, 384);
    assert_int_equal(tag("pypy311")->number, 416);
    assert_int_equal(tag("pypy36")->number, 192);
    assert_null(tag("pypy38"));
    assert_null(tag("pypy3"));
    assert_int_equal(tag("graalpython-38")->number, 21150);
    assert_null(tag("CPYTHON-311")); /* tags are compared exactly */
    /* Not NUL-terminated: a tag inside a file name. */
    assert_int_equal(pyc_magic_for_tag(buf, 11)->number, 3495);
    assert_null(pyc_magic_for_tag(buf, 10));
    /* The tag of every final entry maps back to it. */
    for (size_t i = 0; i < pyc_magic_count(); i++) {
        const pyc_magic *m = pyc_magic_at(i);
        const pyc_magic *f = pyc_magic_final(m->implementation, m->major, m->minor);
        if (m->tag)
            assert_ptr_equal(tag(m->tag), f);
    }
}

static void expect_version(const char *text, pyc_implementation impl,
                           unsigned number)
{
    const pyc_magic *m;

    errno = 0;
    m = pyc_magic_parse_version(text);
    if (!m)
        fail_msg("'%s' did not parse: %s", text, strerror(errno));
    assert_int_equal(m->implementation, impl);
    if (m->number != number)
        fail_msg("'%s' gave %u, not %u", text, m->number, number);
}

static void expect_error(const char *text, int err)
{
    errno = 0;
    assert_null(pyc_magic_parse_version(text));
    if (errno != err)
        fail_msg("'%s': errno %d, not %d", text, errno, err);
}

static void test_parse_version(void **state)
{
    (void)state;
    expect_version("3.11", PYC_IMPL_CPYTHON, 3495);
    expect_version("2.7", PYC_IMPL_CPYTHON, 62211);
    expect_version("311", PYC_IMPL_CPYTHON, 3495);
    expect_version("27", PYC_IMPL_CPYTHON, 62211);
    expect_version("3.11.7", PYC_IMPL_CPYTHON, 3495);
    expect_version("3.5", PYC_IMPL_CPYTHON, 3351);
    expect_version("315", PYC_IMPL_CPYTHON, 3657);
    expect_version("cpython-311", PYC_IMPL_CPYTHON, 3495);
    expect_version("CPython-3.11", PYC_IMPL_CPYTHON, 3495);
    expect_version("cpython3.13", PYC_IMPL_CPYTHON, 3571);
    expect_version("python3.12", PYC_IMPL_CPYTHON, 3531);
    expect_version("1.5", PYC_IMPL_CPYTHON, 20121);
    expect_version("pypy3.10", PYC_IMPL_PYPY, 384);
    expect_version("pypy310", PYC_IMPL_PYPY, 384);
    expect_version("PyPy-3.9", PYC_IMPL_PYPY, 336);
    expect_version("pypy2.7", PYC_IMPL_PYPY, 62218);
    expect_version("graalpython-38", PYC_IMPL_GRAALPY, 21150);
    expect_version("graalpy3.8", PYC_IMPL_GRAALPY, 21150);

    expect_error(NULL, EINVAL);
    expect_error("", EINVAL);
    expect_error("3", EINVAL);
    expect_error("pypy3", EINVAL);
    expect_error("3.", EINVAL);
    expect_error(".11", EINVAL);
    expect_error("3.11.", EINVAL);
    expect_error("3.11.7.1", EINVAL);
    expect_error("3.11a1", EINVAL);
    expect_error("3111", EINVAL);
    expect_error("3.1111", EINVAL);
    expect_error("jython2.7", EINVAL);
    expect_error("cpython-", EINVAL);
    expect_error("3.11 ", EINVAL);
    expect_error("99999999999999999999.1", EINVAL);

    expect_error("3.16", ENOENT);
    expect_error("316", ENOENT);
    expect_error("4.0", ENOENT);
    expect_error("3.99", ENOENT);
    expect_error("pypy3.8", ENOENT);
    expect_error("graalpy3.11", ENOENT);
    expect_error("0.9", ENOENT);
}

static void test_implementation_names(void **state)
{
    (void)state;
    assert_string_equal(pyc_implementation_name(PYC_IMPL_CPYTHON), "cpython");
    assert_string_equal(pyc_implementation_name(PYC_IMPL_PYPY), "pypy");
    assert_string_equal(pyc_implementation_name(PYC_IMPL_GRAALPY), "graalpy");
    assert_non_null(pyc_implementation_name((pyc_implementation)42));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_rows),
        cmocka_unit_test(test_word_number_round_trip),
        cmocka_unit_test(test_unknown_words),
        cmocka_unit_test(test_unicode_flag_variants),
        cmocka_unit_test(test_layout_boundaries),
        cmocka_unit_test(test_table_invariants),
        cmocka_unit_test(test_final),
        cmocka_unit_test(test_for_tag),
        cmocka_unit_test(test_parse_version),
        cmocka_unit_test(test_implementation_names),
    };
    return cmocka_run_group_tests_name("magic", tests, NULL, NULL);
}
