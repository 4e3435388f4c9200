/*
 * test_verdict_view.c — pyc_verdict_judge_view (include/pycache.h section
 * 8): a cache file judged against a caller's view of its source directory,
 * with no I/O of the library's own. A table of fake members stands for an
 * archive; each test checks one rule the archive front end relies on: the
 * source looked up through the view, the hash asked of it only for hash
 * pycs, packages found by "STEM/__init__.py", zipimport's +-1 second and
 * size rules, --deep on the whole file, and the argument checks.
 * tests/integration/test_archive.py checks the same against the real
 * interpreters, through real archives.
 */
#include <errno.h>
#include <sys/stat.h>

#include "unit.h"

struct fake {
    const char *name;
    int64_t mtime;
    int64_t size;
    int hash_calls;
};

static struct fake files[4];
static size_t nfiles;

static int fake_stat(void *ctx, const char *name, struct stat *st)
{
    (void)ctx;
    for (size_t i = 0; i < nfiles; i++) {
        if (strcmp(files[i].name, name) == 0) {
            memset(st, 0, sizeof *st);
            st->st_mode = S_IFREG | 0644;
            st->st_size = (off_t)files[i].size;
            st->st_mtim.tv_sec = (time_t)files[i].mtime;
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

static const unsigned char source_bytes[] = "x = 1\n";

static int fake_hash(void *ctx, const pyc_magic *m, const char *name, uint8_t out[8])
{
    (void)ctx;
    for (size_t i = 0; i < nfiles; i++)
        if (strcmp(files[i].name, name) == 0) {
            files[i].hash_calls++;
            return pyc_source_hash(m, source_bytes, sizeof source_bytes - 1, out);
        }
    errno = ENOENT;
    return -1;
}

static const pyc_magic *m312(void)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 12);
    assert_non_null(m);
    return m;
}

/* A 3.12 pyc: header in MODE for mtime MTIME / size SIZE (or the hash of
 * source_bytes), then BODY_LEN body bytes (a marshalled None is enough for
 * the non-deep verdict). */
static size_t make_pyc(unsigned char *buf, pyc_mode mode, uint32_t mtime, uint32_t size,
                       size_t body_len)
{
    pyc_header h;
    memset(&h, 0, sizeof h);
    h.magic_word = m312()->word;
    h.magic = m312();
    h.layout = PYC_LAYOUT_FLAGS;
    h.mode = mode;
    h.mtime = mtime;
    h.source_size = size;
    if (mode != PYC_MODE_TIMESTAMP)
        assert_int_equal(pyc_source_hash(m312(), source_bytes, sizeof source_bytes - 1,
                                         h.source_hash), 0);
    size_t n = pyc_header_encode(&h, buf);
    memset(buf + n, 'N', body_len);
    return n + body_len;
}

static pyc_verdict judge(const char *name, bool zipimport, const unsigned char *data,
                         size_t len, const pyc_verdict_options *opt)
{
    pyc_cache_name cn;
    pyc_cache_name_parse(name, strstr(name, ".cpython-") != NULL, false, &cn);
    pyc_source_view view = {fake_stat, fake_hash, NULL, zipimport};
    pyc_verdict v;
    assert_int_equal(pyc_verdict_judge_view(name, &cn, &view, opt, data, len, &v), 0);
    return v;
}

static void setup_files(int64_t mtime, int64_t size)
{
    memset(files, 0, sizeof files);
    files[0] = (struct fake){"mod.py", mtime, size, 0};
    nfiles = 1;
}

static void test_timestamp_through_the_view(void **state)
{
    (void)state;
    unsigned char pyc[64];
    setup_files(1000, 6);
    size_t n = make_pyc(pyc, PYC_MODE_TIMESTAMP, 1000, 6, 4);
    pyc_verdict v = judge("mod.cpython-312.pyc", false, pyc, n, NULL);
    assert_int_equal(v.status, PYC_FRESH);
    assert_int_equal(files[0].hash_calls, 0); /* no source bytes for a timestamp pyc */
    setup_files(1001, 6);
    v = judge("mod.cpython-312.pyc", false, pyc, n, NULL);
    assert_int_equal(v.status, PYC_STALE);
    assert_int_equal(v.reason, PYC_REASON_MTIME);
    nfiles = 0;
    v = judge("mod.cpython-312.pyc", false, pyc, n, NULL);
    assert_int_equal(v.status, PYC_ORPHAN);
}

static void test_hash_asks_the_view(void **state)
{
    (void)state;
    unsigned char pyc[64];
    setup_files(1000, 6);
    size_t n = make_pyc(pyc, PYC_MODE_CHECKED_HASH, 0, 0, 4);
    pyc_verdict v = judge("mod.cpython-312.pyc", false, pyc, n, NULL);
    assert_int_equal(v.status, PYC_FRESH);
    assert_int_equal(files[0].hash_calls, 1);
}

static void test_zipimport_rules(void **state)
{
    (void)state;
    unsigned char pyc[64];
    /* +-1 second of the source's DOS time is a match; 2 is not. */
    setup_files(1001, 6);
    size_t n = make_pyc(pyc, PYC_MODE_TIMESTAMP, 1000, 6, 4);
    assert_int_equal(judge("mod.pyc", true, pyc, n, NULL).status, PYC_FRESH);
    setup_files(1002, 6);
    pyc_verdict v = judge("mod.pyc", true, pyc, n, NULL);
    assert_int_equal(v.status, PYC_STALE);
    assert_int_equal(v.reason, PYC_REASON_MTIME);
    /* 3.8+: the size too. */
    setup_files(1000, 7);
    v = judge("mod.pyc", true, pyc, n, NULL);
    assert_int_equal(v.reason, PYC_REASON_SIZE);
    /* No source: the pyc is the module. */
    nfiles = 0;
    assert_int_equal(judge("mod.pyc", true, pyc, n, NULL).status, PYC_SOURCELESS);
    /* A truncated header fails the import, source or not. */
    setup_files(1000, 6);
    v = judge("mod.pyc", true, pyc, 10, NULL);
    assert_int_equal(v.status, PYC_CORRUPT);
    assert_int_equal(v.reason, PYC_REASON_TRUNCATED);
    /* __pycache__ is never read by zipimport. */
    v = judge("mod.cpython-312.pyc", true, pyc, n, NULL);
    assert_int_equal(v.status, PYC_SHADOWED);
    assert_int_equal(v.reason, PYC_REASON_ZIPIMPORT);
    /* A package of the same name comes first. */
    files[1] = (struct fake){"mod/__init__.py", 1000, 1, 0};
    nfiles = 2;
    v = judge("mod.pyc", true, pyc, n, NULL);
    assert_int_equal(v.reason, PYC_REASON_PACKAGE);
}

static void test_deep_reads_the_whole_data(void **state)
{
    (void)state;
    unsigned char pyc[64];
    setup_files(1000, 6);
    /* 'N' x 4 is not a code object: --deep sees it, the header check does not. */
    size_t n = make_pyc(pyc, PYC_MODE_TIMESTAMP, 1000, 6, 4);
    pyc_verdict_options deep = {.deep = true};
    pyc_verdict v = judge("mod.cpython-312.pyc", false, pyc, n, &deep);
    assert_int_equal(v.status, PYC_CORRUPT);
    assert_int_equal(v.reason, PYC_REASON_BODY);
    v = judge("mod.cpython-312.pyc", false, pyc, 16, NULL);
    assert_int_equal(v.reason, PYC_REASON_EMPTY);
}

static void test_arguments(void **state)
{
    (void)state;
    pyc_source_view view = {fake_stat, fake_hash, NULL, false};
    pyc_source_view no_stat = {NULL, fake_hash, NULL, false};
    pyc_verdict v;
    errno = 0;
    assert_int_equal(pyc_verdict_judge_view(NULL, NULL, &view, NULL, NULL, 0, &v), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(pyc_verdict_judge_view("a.pyc", NULL, NULL, NULL, NULL, 0, &v), -1);
    assert_int_equal(pyc_verdict_judge_view("a.pyc", NULL, &no_stat, NULL, NULL, 0, &v), -1);
    assert_int_equal(pyc_verdict_judge_view("a.pyc", NULL, &view, NULL, NULL, 3, &v), -1);
    /* An empty file with no source: a legacy name, a sourceless file whose
     * header is missing: the import fails. */
    nfiles = 0;
    assert_int_equal(pyc_verdict_judge_view("a.pyc", NULL, &view, NULL, NULL, 0, &v), 0);
    assert_int_equal(v.status, PYC_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamp_through_the_view),
        cmocka_unit_test(test_hash_asks_the_view),
        cmocka_unit_test(test_zipimport_rules),
        cmocka_unit_test(test_deep_reads_the_whole_data),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
