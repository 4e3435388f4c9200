/*
 * test_cachepath.c — cache_from_source / source_from_cache per version, and
 * the classification of directory entries by name (src/lib/cachepath.c).
 *
 * Expected values are what the real interpreters answer (checked with
 * importlib.util on the installed 3.6-3.13, py_compile on 2.7; see
 * tests/integration/test_where.py, which asks them live) and, for versions
 * not installed, what their Lib/importlib sources compute.
 */
#include <errno.h>

#include "unit.h"

static const pyc_magic *py(int major, int minor)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    assert_non_null(m);
    return m;
}

/* cache_from_source(SRC) under M at OPT, PREFIX, CWD == WANT (NULL: fails
 * with EINVAL and WHY). */
static void check_cfs(const pyc_magic *m, const char *src, int opt,
                      const char *prefix, const char *cwd, const char *want,
                      const char *want_why)
{
    const char *why = "unset";
    char *got;
    errno = 0;
    got = pyc_cache_from_source_why(m, src, opt, prefix, cwd, &why);
    if (want == NULL) {
        if (got != NULL)
            fail_msg("cache_from_source(%s) = '%s', expected failure", src, got);
        assert_int_equal(errno, EINVAL);
        if (want_why != NULL)
            assert_string_equal(why, want_why);
        return;
    }
    if (got == NULL)
        fail_msg("cache_from_source(%s, %d.%d, opt %d) failed: %s", src,
                 m->major, m->minor, opt, why ? why : "(errno)");
    assert_string_equal(got, want);
    assert_null(why);
    free(got);
    /* the why-less entry point agrees */
    got = pyc_cache_from_source(m, src, opt, prefix, cwd);
    assert_string_equal(got, want);
    free(got);
}

static void check_sfc(const pyc_magic *m, const char *cache, const char *prefix,
                      const char *want, const char *want_why)
{
    const char *why = "unset";
    char *got;
    errno = 0;
    got = pyc_source_from_cache(m, cache, prefix, &why);
    if (want == NULL) {
        if (got != NULL)
            fail_msg("source_from_cache(%s) = '%s', expected failure", cache, got);
        assert_int_equal(errno, EINVAL);
        if (want_why != NULL)
            assert_string_equal(why, want_why);
        return;
    }
    if (got == NULL)
        fail_msg("source_from_cache(%s, %d.%d) failed: %s", cache, m->major,
                 m->minor, why ? why : "(errno)");
    assert_string_equal(got, want);
    free(got);
}

/* 2.x (and 3.0, 3.1): py_compile's file + 'c' / 'o'. */
static void test_legacy(void **state)
{
    (void)state;
    check_cfs(py(2, 7), "a/b.py", 0, NULL, NULL, "a/b.pyc", NULL);
    check_cfs(py(2, 7), "a/b.py", 1, NULL, NULL, "a/b.pyo", NULL);
    check_cfs(py(2, 7), "a/b.py", 2, NULL, NULL, "a/b.pyo", NULL);
    check_cfs(py(2, 7), "x.tar.gz", 0, NULL, NULL, "x.tar.gzc", NULL);
    check_cfs(py(3, 1), "m.py", 0, NULL, NULL, "m.pyc", NULL);
    check_sfc(py(2, 7), "a/b.pyc", NULL, "a/b.py", NULL);
    check_sfc(py(2, 7), "a/b.pyo", NULL, "a/b.py", NULL);
    check_sfc(py(2, 7), "a/b.py", NULL, NULL, "not a .pyc or .pyo file");
    check_sfc(py(2, 7), ".pyc", NULL, ".py", NULL);
    check_sfc(py(2, 7), "pyc", NULL, NULL, "not a .pyc or .pyo file");
    /* no prefix before 3.8 */
    check_cfs(py(2, 7), "a.py", 0, "/p", NULL, NULL,
              "a pycache prefix needs Python 3.8 or newer");
    check_sfc(py(2, 7), "a.pyc", "/p", NULL,
              "a pycache prefix needs Python 3.8 or newer");
}

/* 3.2-3.4: first dot, .pyo under -O, exactly 2 dots back. */
static void test_pyo_family(void **state)
{
    (void)state;
    check_cfs(py(3, 4), "a/b.py", 0, NULL, NULL, "a/__pycache__/b.cpython-34.pyc", NULL);
    check_cfs(py(3, 4), "a/b.py", 1, NULL, NULL, "a/__pycache__/b.cpython-34.pyo", NULL);
    check_cfs(py(3, 3), "a/b.py", 2, NULL, NULL, "a/__pycache__/b.cpython-33.pyo", NULL);
    check_cfs(py(3, 2), "b.py", 0, NULL, NULL, "__pycache__/b.cpython-32.pyc", NULL);
    /* tail.partition('.'): NAME ends at the first dot */
    check_cfs(py(3, 4), "x.tar.gz", 0, NULL, NULL, "__pycache__/x.cpython-34.pyc", NULL);
    check_cfs(py(3, 4), "noext", 0, NULL, NULL, "__pycache__/noextcpython-34.pyc", NULL);
    check_cfs(py(3, 4), ".py", 0, NULL, NULL, "__pycache__/.cpython-34.pyc", NULL);
    check_sfc(py(3, 4), "a/__pycache__/b.cpython-34.pyo", NULL, "a/b.py", NULL);
    check_sfc(py(3, 4), "a/__pycache__/b.whatever.x", NULL, "a/b.py", NULL);
    check_sfc(py(3, 4), "a/__pycache__/b.cpython-34.opt-1.pyc", NULL, NULL,
              "expected only 2 dots");
    check_sfc(py(3, 4), "a/b.cpython-34.pyc", NULL, NULL,
              "__pycache__ not bottom-level directory");
    check_cfs(py(3, 4), "a.py", 0, "/p", NULL, NULL, NULL);
}

/* 3.5+ (PEP 488): last dot, .opt-N. */
static void test_pep488(void **state)
{
    (void)state;
    const pyc_magic *m = py(3, 11);
    check_cfs(m, "a/b.py", 0, NULL, NULL, "a/__pycache__/b.cpython-311.pyc", NULL);
    check_cfs(m, "a/b.py", 1, NULL, NULL, "a/__pycache__/b.cpython-311.opt-1.pyc", NULL);
    check_cfs(m, "a/b.py", 2, NULL, NULL, "a/__pycache__/b.cpython-311.opt-2.pyc", NULL);
    check_cfs(py(3, 5), "b.py", 1, NULL, NULL, "__pycache__/b.cpython-35.opt-1.pyc", NULL);
    /* dots in names: tail.rpartition('.') */
    check_cfs(m, "x.tar.gz", 0, NULL, NULL, "__pycache__/x.tar.cpython-311.pyc", NULL);
    check_cfs(m, "a.b.py", 0, NULL, NULL, "__pycache__/a.b.cpython-311.pyc", NULL);
    check_cfs(m, "noext", 0, NULL, NULL, "__pycache__/noextcpython-311.pyc", NULL);
    check_cfs(m, ".py", 0, NULL, NULL, "__pycache__/py.cpython-311.pyc", NULL);
    check_cfs(m, "..py", 0, NULL, NULL, "__pycache__/..cpython-311.pyc", NULL);
    check_cfs(m, "trailing.", 0, NULL, NULL, "__pycache__/trailing.cpython-311.pyc", NULL);
    check_cfs(m, "", 0, NULL, NULL, "__pycache__/cpython-311.pyc", NULL);
    /* _path_join drops empty parts and strips trailing slashes */
    check_cfs(m, "/x.py", 0, NULL, NULL, "__pycache__/x.cpython-311.pyc", NULL);
    check_cfs(m, "//x.py", 0, NULL, NULL, "/__pycache__/x.cpython-311.pyc", NULL);
    check_cfs(m, "a///b.py", 0, NULL, NULL, "a/__pycache__/b.cpython-311.pyc", NULL);
    check_cfs(m, "a/", 0, NULL, NULL, "a/__pycache__/cpython-311.pyc", NULL);
    check_cfs(m, "../x.py", 0, NULL, NULL, "../__pycache__/x.cpython-311.pyc", NULL);
    check_cfs(m, "\xc3\xa9/\xff.py", 0, NULL, NULL,
              "\xc3\xa9/__pycache__/\xff.cpython-311.pyc", NULL);
    /* our API takes levels 0-2 (CPython takes any alphanumeric string) */
    check_cfs(m, "a.py", 3, NULL, NULL, NULL, "optimization level must be 0, 1 or 2");
    check_cfs(m, "a.py", -1, NULL, NULL, NULL, "optimization level must be 0, 1 or 2");
    check_cfs(py(3, 7), "a.py", 0, "/p", NULL, NULL,
              "a pycache prefix needs Python 3.8 or newer");
    check_cfs(NULL, "a.py", 0, NULL, NULL, NULL, NULL);
    check_cfs(m, NULL, 0, NULL, NULL, NULL, NULL);
}

static void test_prefix(void **state)
{
    (void)state;
    const pyc_magic *m38 = py(3, 8), *m312 = py(3, 12);
    check_cfs(m38, "/src/a.py", 0, "/p", "/cwd", "/p/src/a.cpython-38.pyc", NULL);
    check_cfs(m38, "a.py", 1, "/p", "/cwd", "/p/cwd/a.cpython-38.opt-1.pyc", NULL);
    check_cfs(m38, "d/a.py", 0, "/p/", "/cwd/", "/p/cwd/d/a.cpython-38.pyc", NULL);
    check_cfs(m38, "d/a.py", 0, "rel", "/cwd", "rel/cwd/d/a.cpython-38.pyc", NULL);
    check_cfs(m38, "/x.py", 0, "/p", "/cwd", "/p/cwd/x.cpython-38.pyc", NULL);
    /* "./" before a relative head is stripped from 3.12 (_path_abspath) */
    check_cfs(m38, "./d/a.py", 0, "/p", "/cwd", "/p/cwd/./d/a.cpython-38.pyc", NULL);
    check_cfs(m312, "./d/a.py", 0, "/p", "/cwd", "/p/cwd/d/a.cpython-312.pyc", NULL);
    check_cfs(m312, "./a.py", 0, "/p", "/cwd", "/p/cwd/./a.cpython-312.pyc", NULL);
    check_cfs(m312, "a:/b.py", 0, "/p", "/", "/p/a:/b.cpython-312.pyc", NULL);
    /* head[1] on an absolute head shorter than 2: IndexError */
    check_cfs(m38, "//x.py", 0, "/p", "/cwd", NULL, "string index out of range");
    check_cfs(m312, "x.py", 0, "/p", "/", NULL, "string index out of range");
    check_cfs(m312, "/x.py", 0, "/p", "/", NULL, "string index out of range");
    check_cfs(m312, "/d/x.py", 0, "/p", "/", "/p/d/x.cpython-312.pyc", NULL);

    check_sfc(m38, "/p/src/a.cpython-38.pyc", "/p", "/src/a.py", NULL);
    check_sfc(m38, "/p/src/a.cpython-38.pyc", "/p//", "/src/a.py", NULL);
    check_sfc(m38, "/p//src/a.cpython-38.opt-2.pyc", "/p", "//src/a.py", NULL);
    check_sfc(m38, "/p/a.cpython-38.pyc", "/p", NULL,
              "__pycache__ not bottom-level directory");
    check_sfc(m38, "/p/__pycache__/a.cpython-38.pyc", "/p", "/__pycache__/a.py", NULL);
    check_sfc(m38, "/q/__pycache__/a.cpython-38.pyc", "/p", "/q/a.py", NULL);
    check_sfc(m38, "/pp/a/b.cpython-38.pyc", "/p", NULL,
              "__pycache__ not bottom-level directory");
    check_sfc(m38, "/a/b.c.pyc", "/", "/a/b.py", NULL);
}

static void test_source_from_cache(void **state)
{
    (void)state;
    const pyc_magic *m = py(3, 11);
    check_sfc(m, "a/__pycache__/b.cpython-311.pyc", NULL, "a/b.py", NULL);
    check_sfc(m, "a/__pycache__/b.cpython-311.opt-2.pyc", NULL, "a/b.py", NULL);
    check_sfc(m, "__pycache__/b.x.y", NULL, "b.py", NULL);
    /* the head of "/__pycache__" is "", which _path_join drops */
    check_sfc(m, "/__pycache__/b.c.pyc", NULL, "b.py", NULL);
    check_sfc(m, "a//__pycache__/b.c.pyc", NULL, "a/b.py", NULL);
    check_sfc(m, "a/__pycache__/.c.pyc", NULL, "a/.py", NULL);
    check_sfc(m, "__pycache__/x.cpython-34.pyo", NULL, "x.py", NULL);
    check_sfc(m, "x.pyc", NULL, NULL, "__pycache__ not bottom-level directory");
    check_sfc(m, "a/__pycache__//x.c.pyc", NULL, NULL,
              "__pycache__ not bottom-level directory");
    check_sfc(m, "__pycache__/x.pyc", NULL, NULL, "expected only 2 or 3 dots");
    check_sfc(m, "__pycache__/a.b.c.d.pyc", NULL, NULL, "expected only 2 or 3 dots");
    check_sfc(m, "__pycache__/a.b.c.pyc", NULL, NULL,
              "optimization portion of filename does not start with 'opt-'");
    check_sfc(m, "__pycache__/a.b.op-1.pyc", NULL, NULL,
              "optimization portion of filename does not start with 'opt-'");
    check_sfc(m, "__pycache__/a.b.opt-.pyc", NULL, NULL,
              "optimization level is not an alphanumeric value");
    check_sfc(m, "__pycache__/a.b.opt-a_b.pyc", NULL, NULL,
              "optimization level is not an alphanumeric value");
    check_sfc(m, "__pycache__/a.b.opt-abc9.pyc", NULL, "a.py", NULL);
    /* str.isalnum() beyond ASCII: U+00E9, U+00B2 (a digit); an undecodable
     * byte is a lone surrogate; U+0560 is alphabetic from 3.7 (Unicode 11),
     * U+1123F from 3.12 (Unicode 15) */
    check_sfc(m, "__pycache__/a.b.opt-\xc3\xa9.pyc", NULL, "a.py", NULL);
    check_sfc(m, "__pycache__/a.b.opt-\xc2\xb2x.pyc", NULL, "a.py", NULL);
    check_sfc(m, "__pycache__/a.b.opt-\xff.pyc", NULL, NULL,
              "optimization level is not an alphanumeric value");
    check_sfc(m, "__pycache__/a.b.opt-\xc3.pyc", NULL, NULL, NULL);
    check_sfc(m, "__pycache__/a.b.opt-\xed\xa0\x80.pyc", NULL, NULL, NULL);
    check_sfc(m, "__pycache__/a.b.opt-\xc2\xa0.pyc", NULL, NULL, NULL);
    check_sfc(py(3, 6), "__pycache__/a.b.opt-\xd5\xa0.pyc", NULL, NULL, NULL);
    check_sfc(py(3, 7), "__pycache__/a.b.opt-\xd5\xa0.pyc", NULL, "a.py", NULL);
    check_sfc(py(3, 11), "__pycache__/a.b.opt-\xf0\x91\x88\xbf.pyc", NULL, NULL, NULL);
    check_sfc(py(3, 12), "__pycache__/a.b.opt-\xf0\x91\x88\xbf.pyc", NULL, "a.py", NULL);
    check_sfc(NULL, "x", NULL, NULL, NULL);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(pyc_cache_kind_name(PYC_KIND_PYCACHE), "pycache");
    assert_string_equal(pyc_cache_kind_name(PYC_KIND_LEGACY), "legacy");
    assert_string_equal(pyc_cache_kind_name(PYC_KIND_PREFIX), "prefix");
    assert_string_equal(pyc_cache_kind_name(PYC_KIND_TEMP), "temp");
    assert_string_equal(pyc_cache_kind_name(PYC_KIND_NONE), "none");
}

typedef struct name_case {
    const char *name;
    bool in_pycache, in_prefix;
    pyc_cache_kind kind;
    const char *stem, *tag; /* expected NAME and TAG */
    int opt;
    bool pyo;
    size_t cache_len; /* 0: strlen(name) */
} name_case;

static const name_case name_cases[] = {
    {"m.cpython-311.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", 0, false, 0},
    {"m.cpython-311.opt-1.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", 1, false, 0},
    {"m.cpython-311.opt-2.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", 2, false, 0},
    {"m.cpython-313.opt-3.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-313", 3, false, 0},
    {"m.cpython-311.opt-0.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", PYC_OPT_UNREAD, false, 0},
    {"m.cpython-311.opt-01.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", PYC_OPT_UNREAD, false, 0},
    {"m.cpython-311.opt-x.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", PYC_OPT_UNREAD, false, 0},
    {"m.cpython-311.opt-99999999999.pyc", true, false, PYC_KIND_PYCACHE, "m", "cpython-311", PYC_OPT_UNREAD, false, 0},
    {"m.cpython-34.pyo", true, false, PYC_KIND_PYCACHE, "m", "cpython-34", -1, true, 0},
    {"m.pypy39.pyc", true, false, PYC_KIND_PYCACHE, "m", "pypy39", 0, false, 0},
    /* dots in names: the tag is the last component (rpartition) */
    {"a.b.cpython-311.pyc", true, false, PYC_KIND_PYCACHE, "a.b", "cpython-311", 0, false, 0},
    {"a.b.cpython-311.opt-2.pyc", true, false, PYC_KIND_PYCACHE, "a.b", "cpython-311", 2, false, 0},
    {"..cpython-311.pyc", true, false, PYC_KIND_PYCACHE, ".", "cpython-311", 0, false, 0},
    /* "opt-" edge cases */
    {"m.opt-1.pyc", true, false, PYC_KIND_PYCACHE, "m", "opt-1", 0, false, 0},
    {"m.cpython-311.opt-.pyc", true, false, PYC_KIND_PYCACHE, "m.cpython-311", "opt-", 0, false, 0},
    {"m.cpython-311.opt-a_b.pyc", true, false, PYC_KIND_PYCACHE, "m.cpython-311", "opt-a_b", 0, false, 0},
    {"m.cpython-35.opt-1.pyo", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    /* not cache names inside __pycache__: foreign */
    {"m.pyc", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {".cpython-311.pyc", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m..pyc", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.cpython-311.py", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"README", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {".pyc", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.cpython-311.PYC", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    /* legacy, beside the sources */
    {"m.pyc", false, false, PYC_KIND_LEGACY, "m", "", 0, false, 0},
    {"m.pyo", false, false, PYC_KIND_LEGACY, "m", "", -1, true, 0},
    {"a.b.pyc", false, false, PYC_KIND_LEGACY, "a.b", "", 0, false, 0},
    {"m.cpython-311.pyc", false, false, PYC_KIND_LEGACY, "m.cpython-311", "", 0, false, 0},
    {".pyc", false, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.py", false, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"pyc", false, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    /* prefix trees: __pycache__ naming, kind prefix */
    {"m.cpython-312.pyc", false, true, PYC_KIND_PREFIX, "m", "cpython-312", 0, false, 0},
    {"m.cpython-312.opt-1.pyc", true, true, PYC_KIND_PREFIX, "m", "cpython-312", 1, false, 0},
    {"m.pyc", false, true, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    /* _write_atomic's '{}.{}'.format(path, id(path)) */
    {"m.cpython-311.pyc.140234567890", true, false, PYC_KIND_TEMP, "m", "cpython-311", 0, false, 17},
    {"m.cpython-311.opt-2.pyc.1", true, false, PYC_KIND_TEMP, "m", "cpython-311", 2, false, 23},
    {"m.cpython-34.pyo.77", true, false, PYC_KIND_TEMP, "m", "cpython-34", -1, true, 16},
    {"m.cpython-312.pyc.42", false, true, PYC_KIND_TEMP, "m", "cpython-312", 0, false, 17},
    {"m.pyc.123", false, false, PYC_KIND_TEMP, "m", "", 0, false, 5},
    {"m.cpython-311.pyc.", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.cpython-311.pyc.12a", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.pyc.123", true, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
    {"m.txt.123", false, false, PYC_KIND_NONE, NULL, NULL, 0, false, 0},
};

static void test_name_parse(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const name_case *c = &name_cases[i];
        pyc_cache_name out;
        pyc_cache_kind kind = pyc_cache_name_parse(c->name, c->in_pycache,
                                                   c->in_prefix, &out);
        if (kind != c->kind || out.kind != c->kind)
            fail_msg("%s (pycache %d, prefix %d): kind %d, expected %d", c->name,
                     c->in_pycache, c->in_prefix, (int)kind, (int)c->kind);
        if (c->kind == PYC_KIND_NONE) {
            assert_int_equal(out.cache_len, strlen(c->name));
            continue;
        }
        if (out.stem_len != strlen(c->stem) ||
            memcmp(c->name, c->stem, out.stem_len) != 0)
            fail_msg("%s: stem length %zu, expected '%s'", c->name, out.stem_len,
                     c->stem);
        if (out.tag_len != strlen(c->tag) ||
            memcmp(c->name + out.tag_off, c->tag, out.tag_len) != 0)
            fail_msg("%s: tag at %zu+%zu, expected '%s'", c->name, out.tag_off,
                     out.tag_len, c->tag);
        if (out.opt != c->opt)
            fail_msg("%s: opt %d, expected %d", c->name, out.opt, c->opt);
        assert_int_equal(out.pyo, c->pyo);
        assert_int_equal(out.cache_len, c->cache_len ? c->cache_len : strlen(c->name));
    }
}

/* Every name cache_from_source produces parses back to its parts, and its
 * source_from_cache is the source (for sources whose name has one dot). */
static void test_round_trip(void **state)
{
    static const int versions[][2] = {{3, 4}, {3, 6}, {3, 9}, {3, 13}};
    static const char *const sources[] = {"m.py", "pkg/sub/m.py", "/abs/m.py",
                                          "\xc3\xa9t\xc3\xa9.py"};
    size_t v, s;
    int opt;
    (void)state;
    for (v = 0; v < 4; v++) {
        const pyc_magic *m = py(versions[v][0], versions[v][1]);
        for (s = 0; s < 4; s++) {
            for (opt = 0; opt <= 2; opt++) {
                char *cache = pyc_cache_from_source(m, sources[s], opt, NULL, NULL);
                char *back;
                const char *base;
                pyc_cache_name name;
                assert_non_null(cache);
                back = pyc_source_from_cache(m, cache, NULL, NULL);
                assert_non_null(back);
                assert_string_equal(back, sources[s]);
                base = strrchr(cache, '/') + 1;
                assert_int_equal(pyc_cache_name_parse(base, true, false, &name),
                                 PYC_KIND_PYCACHE);
                assert_int_equal(name.tag_len, strlen(m->tag));
                assert_memory_equal(base + name.tag_off, m->tag, name.tag_len);
                if (m->minor >= 5)
                    assert_int_equal(name.opt, opt);
                else
                    assert_int_equal(name.opt, opt ? -1 : 0);
                free(back);
                free(cache);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_pyo_family),
        cmocka_unit_test(test_pep488),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_source_from_cache),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_name_parse),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
