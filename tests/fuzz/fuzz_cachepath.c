/*
 * fuzz_cachepath.c — libFuzzer target for cache paths and names:
 * pyc_cache_from_source_why and pyc_source_from_cache for every final magic
 * (and optimisation level), with and without a PYTHONPYCACHEPREFIX and a
 * working directory, and pyc_cache_name_parse with each combination of
 * in_pycache / in_prefix.
 *
 * Input layout: byte 0 picks the magic and the optimisation level, byte 1
 * option bits; the rest is up to three NUL-separated strings: the source
 * (also parsed as a directory-entry name), the prefix and the cwd.
 *
 * Checked besides "no crash, no sanitizer report":
 *   - failures are NULL with errno EINVAL (and a *why message) or ENOMEM;
 *   - pyc_source_from_cache gives back the source for plain sources
 *     (names of [A-Za-z0-9_] with single slashes, ending in ".py", not
 *     directly under "/": the shape for which CPython's own functions are
 *     inverses; with a prefix, absolute ones), and the cache file's basename is classified with the
 *     interpreter's tag and level;
 *   - a parsed name's offsets lie inside it; a temp name's cache name is
 *     followed by ".DIGITS".
 *
 *   make fuzz    (tests/fuzz/README.md)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pyc_magic *finals[256];
static size_t nfinals;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (size_t i = 0; i < pyc_magic_count() && nfinals < 256; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (m->final)
            finals[nfinals++] = m;
    }
    return 0;
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Components of [A-Za-z0-9_]+ joined by single slashes, optionally absolute,
 * none of them "__pycache__"; when SUFFIX_PY the last one ends with ".py". */
static bool plain_path(const char *s, bool suffix_py)
{
    size_t n = strlen(s);
    if (suffix_py) {
        if (n < 4 || strcmp(s + n - 3, ".py") != 0)
            return false;
        n -= 3;
    }
    size_t i = s[0] == '/' ? 1 : 0, start = i;
    if (i == n)
        return false;
    /* "/NAME.py": CPython's _path_join drops the root ("/".rstrip('/') is
     * empty), so cache_from_source('/y.py') is '__pycache__/y...pyc'. */
    if (i == 1 && !memchr(s + 1, '/', n - 1))
        return false;
    for (; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (i == start)
                return false; /* empty component */
            if (i - start == 11 && memcmp(s + start, "__pycache__", 11) == 0)
                return false;
            start = i + 1;
        } else if (!word_char(s[i])) {
            return false;
        }
    }
    return true;
}

static void check_name(const char *name, bool in_pycache, bool in_prefix)
{
    pyc_cache_name out;
    memset(&out, 0xA5, sizeof out);
    pyc_cache_kind kind = pyc_cache_name_parse(name, in_pycache, in_prefix, &out);
    CHECK(kind == out.kind);
    CHECK(kind >= PYC_KIND_NONE && kind <= PYC_KIND_TEMP);
    if (kind == PYC_KIND_NONE)
        return;
    CHECK(strcmp(pyc_cache_kind_name(kind), "") != 0);
    size_t n = strlen(name);
    CHECK(out.cache_len <= n);
    CHECK(out.stem_len <= out.cache_len);
    CHECK(out.tag_off + out.tag_len <= out.cache_len);
    if (out.tag_len)
        CHECK(out.tag_off > out.stem_len);
    if (kind == PYC_KIND_TEMP) {
        CHECK(out.cache_len + 2 <= n && name[out.cache_len] == '.');
        for (size_t i = out.cache_len + 1; i < n; i++)
            CHECK(name[i] >= '0' && name[i] <= '9');
    } else {
        CHECK(out.cache_len == n);
    }
    if (kind == PYC_KIND_PYCACHE)
        CHECK(in_pycache && out.tag_len > 0);
    if (kind == PYC_KIND_LEGACY)
        CHECK(out.tag_len == 0);
    if (out.pyo)
        CHECK(memcmp(name + out.cache_len - 4, ".pyo", 4) == 0);
    else
        CHECK(memcmp(name + out.cache_len - 4, ".pyc", 4) == 0);
}

static void check_failure(const char *why)
{
    CHECK(errno == EINVAL || errno == ENOMEM || errno == ENAMETOOLONG ||
          errno == ENOENT || errno == EACCES);
    if (errno == EINVAL)
        CHECK(why != NULL && *why != '\0');
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void round_trip(const pyc_magic *m, const char *source, int opt, const char *prefix,
                       const char *cwd)
{
    const char *why = "unset";
    errno = 0;
    char *cache = pyc_cache_from_source_why(m, source, opt, prefix, cwd, &why);
    if (!cache) {
        check_failure(why);
        return;
    }
    CHECK(why == NULL);
    /* No tag: 1.x-3.1 (and PyPy2) write NAME.pyc beside the source. */
    bool legacy = m->tag == NULL;
    bool pep488 = m->major > 3 || (m->major == 3 && m->minor >= 5);

    errno = 0;
    why = "unset";
    char *back = pyc_source_from_cache(m, cache, prefix, &why);
    if (back)
        CHECK(why == NULL);
    else
        check_failure(why);

    if (plain_path(source, true) && !legacy && (!prefix || source[0] == '/') &&
        (!prefix || plain_path(prefix, false))) {
        /* CPython's source_from_cache(cache_from_source(s)) == s. */
        if (!back)
            fprintf(stderr, "source %s cache %s: %s\n", source, cache, why);
        CHECK(back != NULL);
        CHECK(strcmp(back, source) == 0);
        pyc_cache_name cn;
        const char *base = basename_of(cache);
        pyc_cache_kind kind = pyc_cache_name_parse(base, prefix == NULL, prefix != NULL, &cn);
        CHECK(kind == (prefix ? PYC_KIND_PREFIX : PYC_KIND_PYCACHE));
        CHECK(cn.tag_len == strlen(m->tag) && memcmp(base + cn.tag_off, m->tag, cn.tag_len) == 0);
        CHECK(cn.stem_len == strlen(basename_of(source)) - 3);
        if (pep488)
            CHECK(cn.opt == opt && !cn.pyo);
        else
            CHECK(cn.pyo == (opt != 0));
    }
    if (legacy && plain_path(source, true) && !prefix) {
        CHECK(back != NULL && strcmp(back, source) == 0);
        pyc_cache_name cn;
        CHECK(pyc_cache_name_parse(basename_of(cache), false, false, &cn) == PYC_KIND_LEGACY);
        CHECK(cn.pyo == (opt != 0));
    }
    free(back);
    free(cache);

    /* The source string as a cache path in its own right. */
    errno = 0;
    why = "unset";
    back = pyc_source_from_cache(m, source, prefix, &why);
    if (back)
        CHECK(why == NULL);
    else
        check_failure(why);
    free(back);
}

enum { BIT_PREFIX = 1, BIT_CWD = 2, BIT_ALL_MAGICS = 4, BIT_NULL_CWD = 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || nfinals == 0)
        return 0;
    unsigned pick = data[0], bits = data[1];
    char *buf = malloc(size - 2 + 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    /* Up to three NUL-separated strings within the input. */
    const char *strs[3] = {buf, NULL, NULL};
    size_t used = strlen(buf) + 1;
    for (int k = 1; k < 3 && used <= size - 2; k++) {
        strs[k] = buf + used;
        used += strlen(buf + used) + 1;
    }
    const char *source = strs[0];
    const char *prefix = (bits & BIT_PREFIX) ? (strs[1] ? strs[1] : "") : NULL;
    const char *cwd = (bits & BIT_CWD) ? (strs[2] ? strs[2] : "/") : NULL;
    /* With a prefix and no cwd, the process's cwd would be asked: keep the
     * run independent of where it is started unless the input insists. */
    if (prefix && !cwd && !(bits & BIT_NULL_CWD))
        cwd = "/fuzz/cwd";

    int opt = (int)(pick % 4) - (pick % 4 == 3 ? 4 : 0); /* 0, 1, 2, -1 */
    if (bits & BIT_ALL_MAGICS) {
        for (size_t i = 0; i < nfinals; i++)
            round_trip(finals[i], source, opt, prefix, cwd);
    } else {
        round_trip(finals[(pick / 4) % nfinals], source, opt, prefix, cwd);
    }

    for (int f = 0; f < 4; f++)
        check_name(source, f & 1, f & 2);
    free(buf);
    return 0;
}
