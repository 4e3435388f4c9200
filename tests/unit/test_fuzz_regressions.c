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
 *
 * Findings in the command line (fuzz_options links src/cli/ and src/engine/) run the built
 * binary: $PYCACHE_BIN, else build/pycache; skipped when it is not built.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs the pycache binary with ARGV (argv[0] is replaced) under a 1 GiB
 * address-space limit; returns its exit status (128 + signal if killed)
 * and its stderr in ERR (at most CAP - 1 bytes). Skips when there is no
 * binary. */
static int run_pycache_limited(char **argv, char *err, size_t cap)
{
    const char *bin = getenv("PYCACHE_BIN");
    if (!bin || !*bin)
        bin = "build/pycache";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "no pycache binary at %s: skipped\n", bin);
        skip();
    }
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 1UL << 30, .rlim_max = 1UL << 30};
        int null = open("/dev/null", O_WRONLY);
        if (setrlimit(RLIMIT_AS, &rl) != 0 || null < 0 || dup2(null, 1) < 0 ||
            dup2(pfd[1], 2) < 0)
            _exit(125);
        close(pfd[0]);
        argv[0] = (char *)(uintptr_t)bin; /* execv's argv is not const */
        execv(bin, argv);
        _exit(126);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(pfd[0], err + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    err[n] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* fuzz_options, out of memory (2.5 GB live in glibc's regcomp duplicate_tree),
 * input (hex) 2d ff 78 2d 78 ff*26 00 00 2d 78 6a 2b*126: the command
 * `compile` with -x 'j+++...+'. glibc's regcomp copies the tree once per
 * stacked quantifier: -x 'j' + 20 '+' takes 700 MB, 25 would take ~20 GB, so
 * `pycache compile -x PATTERN` can exhaust the machine on a 26-byte
 * argument. compileall's -x is a Python re pattern, where stacked
 * quantifiers are an error before 3.11 ("multiple repeat") and possessive
 * from 3.11: either way bounded. Wanted: a usage error or a compiled
 * pattern, in bounded memory (here: under 1 GiB, without "Memory
 * exhausted"). Owner: src/cli/cmd_compile.c. */
static void test_compile_x_stacked_quantifiers(void **state)
{
    (void)state;
    char pattern[64] = "j";
    memset(pattern + 1, '+', 40);
    pattern[41] = '\0';
    char *argv[] = {NULL, (char *)(uintptr_t)"compile", (char *)(uintptr_t)"-x", pattern,
                    (char *)(uintptr_t)"--help", NULL};
    char err[4096];
    int rc = run_pycache_limited(argv, err, sizeof err);
    if (strstr(err, "Memory exhausted") || strstr(err, "memory"))
        fail_msg("compile -x %s ran out of memory: %s", pattern, err);
    assert_true(rc == 0 || rc == 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_under_root),
        cmocka_unit_test(test_mode_names_ignore_case),
        cmocka_unit_test(test_compile_x_stacked_quantifiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
