/*
 * fuzz_header.c — libFuzzer target for cache-file headers and verdicts.
 *
 * 1. pyc_header_parse on the input and on the cache file of 2. (an exact-size heap copy, so a read past
 *    LEN is an ASan report), checked against its contract, then
 *    pyc_header_encode of what was parsed, which must give back the bytes
 *    it came from (the flags word aside: encode derives it from the mode).
 * 2. pyc_verdict_judge on the input written as a cache file in a private
 *    directory (mkdtemp, made once per process, removed at exit), under a
 *    name the input picks among every shape the library classifies (each
 *    tag and optimisation level in __pycache__, legacy, dotted, temp,
 *    prefix, foreign), with or without a source whose bytes and mtime the
 *    input gives, optionally a package directory or an extension module of
 *    the same name, with --deep and each --check-hash-based-pycs mode.
 *    The input may ask for the header to be made consistent with the
 *    source (mtime, size or source hash), so "fresh" paths are reachable.
 *    pyc_verdict_judge_path on the same file must agree.
 *
 * Input layout: byte 0 name, byte 1 option bits, byte 2 source length,
 * bytes 3-10 source mtime (seconds, nanoseconds), then the cache file
 * (all but the last "source length" bytes) and the source.
 *
 *   make fuzz    (tests/fuzz/README.md)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- 1. header parse and encode ------------------------------------------ */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void check_header(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    if (size)
        memcpy(buf, data, size);
    pyc_header h;
    memset(&h, 0xA5, sizeof h); /* the parser must not rely on OUT's contents */
    pyc_header_status st = pyc_header_parse(buf, size, &h);
    CHECK(pyc_header_status_message(st) != NULL);

    if (size >= 4) {
        CHECK(h.magic_word == le32(buf));
        CHECK(h.magic == pyc_magic_lookup(h.magic_word));
    }
    switch (st) {
    case PYC_HEADER_OK: {
        CHECK(h.magic != NULL);
        CHECK(h.layout == h.magic->layout);
        CHECK(h.length == (size_t)h.layout && h.length <= size);
        if (h.layout == PYC_LAYOUT_FLAGS) {
            CHECK(h.flags == le32(buf + 4) && (h.flags & ~3u) == 0);
            CHECK(h.mode == ((h.flags & 1) ? ((h.flags & 2) ? PYC_MODE_CHECKED_HASH
                                                             : PYC_MODE_UNCHECKED_HASH)
                                            : PYC_MODE_TIMESTAMP));
        } else {
            CHECK(h.flags == 0 && h.mode == PYC_MODE_TIMESTAMP);
        }
        CHECK(pyc_mode_name(h.mode) != NULL);
        uint8_t out[PYC_HEADER_MAX];
        size_t n = pyc_header_encode(&h, out);
        CHECK(n == h.length);
        CHECK(memcmp(out, buf, 4) == 0);
        if (h.layout == PYC_LAYOUT_FLAGS) {
            /* Flags 0b10 is a timestamp pyc: encoded back as 0. */
            CHECK(le32(out + 4) == (h.flags == 2 ? 0u : h.flags));
            CHECK(memcmp(out + 8, buf + 8, 8) == 0);
        } else {
            CHECK(memcmp(out, buf, n) == 0);
        }
        /* And what encode wrote parses to the same fields. */
        pyc_header h2;
        CHECK(pyc_header_parse(out, n, &h2) == PYC_HEADER_OK);
        CHECK(h2.magic == h.magic && h2.mode == h.mode && h2.length == n);
        if (h.mode == PYC_MODE_TIMESTAMP) {
            CHECK(h2.mtime == h.mtime);
            if (h.layout != PYC_LAYOUT_MTIME)
                CHECK(h2.source_size == h.source_size);
        } else {
            CHECK(memcmp(h2.source_hash, h.source_hash, 8) == 0);
        }
        break;
    }
    case PYC_HEADER_TRUNCATED:
        if (size >= 4 && h.magic)
            CHECK(size < (size_t)h.magic->layout);
        break;
    case PYC_HEADER_UNKNOWN_MAGIC:
        CHECK(size >= 4 && h.magic == NULL);
        break;
    case PYC_HEADER_BAD_FLAGS:
        CHECK(size >= 8 && h.magic && h.magic->layout == PYC_LAYOUT_FLAGS);
        CHECK((le32(buf + 4) & ~3u) != 0);
        break;
    default:
        CHECK(!"unknown header status");
    }
    free(buf);
}

/* ---- 2. verdicts on real files ------------------------------------------- */

static char tmpdir[64];
static int dirfd_root = -1, dirfd_pycache = -1, dirfd_prefix = -1;

/* The cache file names the input chooses from. */
enum where { IN_DIR, IN_PYCACHE, IN_PREFIX };
struct cname {
    char name[96];
    enum where where;
};
static struct cname *names;
static size_t nnames;

static void add_name(enum where w, const char *pre, const char *tag, const char *post)
{
    struct cname *n = realloc(names, (nnames + 1) * sizeof *names);
    if (!n)
        abort();
    names = n;
    snprintf(names[nnames].name, sizeof names[nnames].name, "%s%s%s", pre, tag ? tag : "",
             post);
    names[nnames].where = w;
    nnames++;
}

static void build_names(void)
{
    /* NAME.TAG.REST: the text before and after the tag. */
    static const char *const tagged[][2] = {
        {"mod.", ".pyc"},       {"mod.", ".opt-1.pyc"},   {"mod.", ".opt-2.pyc"},
        {"mod.", ".pyo"},       {"mod.", ".pyc.1234567"}, {"mod.", ".opt-0.pyc"},
        {"a.b.", ".pyc"},       {"mod.", ".opt-3.pyc"},
    };
    for (size_t i = 0; i < pyc_magic_count(); i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (!m->final || !m->tag)
            continue;
        for (size_t k = 0; k < sizeof tagged / sizeof *tagged; k++)
            add_name(IN_PYCACHE, tagged[k][0], m->tag, tagged[k][1]);
        add_name(IN_PREFIX, "mod.", m->tag, ".pyc");
        add_name(IN_PREFIX, "mod.", m->tag, ".opt-2.pyc");
    }
    static const char *const plain[] = {
        "mod.pyc", "mod.pyo", "a.b.pyc", "mod.pyc.99", "__init__.pyc", "mod.txt",
    };
    for (size_t k = 0; k < sizeof plain / sizeof *plain; k++) {
        add_name(IN_DIR, plain[k], NULL, "");
        add_name(IN_PYCACHE, plain[k], NULL, "");
    }
    add_name(IN_PYCACHE, "mod.cpython-399.pyc", NULL, "");
    add_name(IN_PYCACHE, "mod.pypy399.pyc", NULL, "");
    add_name(IN_PYCACHE, "mod.unknown-tag.pyc", NULL, "");
}

static void remove_tree(void)
{
    if (dirfd_root < 0)
        return;
    char cmd[sizeof tmpdir + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_header: could not remove %s\n", tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* tmpfs when there is one: the target writes and removes a few files
     * per input. */
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                               access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/pycache-fuzz-header-XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("fuzz_header: mkdtemp");
        abort();
    }
    dirfd_root = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd_root < 0 || mkdirat(dirfd_root, "__pycache__", 0700) != 0 ||
        mkdirat(dirfd_root, "prefix", 0700) != 0)
        abort();
    dirfd_pycache = openat(dirfd_root, "__pycache__", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dirfd_prefix = openat(dirfd_root, "prefix", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd_pycache < 0 || dirfd_prefix < 0)
        abort();
    atexit(remove_tree);
    build_names();
    return 0;
}

static int write_file(int dirfd, const char *name, const uint8_t *data, size_t len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = len ? write(fd, data, len) : 0;
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

/* Option bits (byte 1). */
enum {
    OPT_SOURCE = 1 << 0,     /* write the source NAME.py */
    OPT_CONSISTENT = 1 << 1, /* make the header match the source */
    OPT_DEEP = 1 << 2,
    OPT_HASH_SHIFT = 3,      /* 2 bits: check_hash mode (3 -> default) */
    OPT_PACKAGE = 1 << 5,    /* a package directory NAME/__init__.py */
    OPT_EXTENSION = 1 << 6,  /* an extension module NAME.so */
    OPT_SRC_STRUCT = 1 << 7, /* pass a pyc_source (state -1) */
};

static void judge(const uint8_t *data, size_t size)
{
    if (size < 11 || nnames == 0)
        return;
    const struct cname *cn = &names[data[0] % nnames];
    unsigned opts = data[1];
    size_t srclen = data[2];
    int64_t sec = (int32_t)le32(data + 3);
    /* Spread seconds beyond 32 bits now and then (the mask matters). */
    if (data[3] & 0x80)
        sec = sec * 8;
    long nsec = (long)(le32(data + 7) % 1000000000u);
    data += 11;
    size -= 11;
    if (srclen > size)
        srclen = size;
    const uint8_t *src = data + size - srclen;
    size_t pyclen = size - srclen;
    check_header(data, pyclen); /* the cache file's own header */

    int cache_dirfd = cn->where == IN_PYCACHE ? dirfd_pycache
                      : cn->where == IN_PREFIX ? dirfd_prefix
                                               : dirfd_root;
    pyc_cache_name pn;
    pyc_cache_kind kind = pyc_cache_name_parse(cn->name, cn->where == IN_PYCACHE,
                                               cn->where == IN_PREFIX, &pn);
    CHECK(kind == pn.kind);

    /* The source's name: NAME.py from the parsed stem, else "mod.py". */
    char srcname[128] = "mod.py";
    size_t stem_len = 3;
    if (kind != PYC_KIND_NONE && pn.stem_len < 64) {
        stem_len = pn.stem_len;
        snprintf(srcname, sizeof srcname, "%.*s.py", (int)pn.stem_len, cn->name);
    }

    uint8_t *pyc = malloc(pyclen ? pyclen : 1);
    if (!pyc)
        return;
    if (pyclen)
        memcpy(pyc, data, pyclen);

    if (opts & OPT_CONSISTENT) {
        pyc_header h;
        if (pyc_header_parse(pyc, pyclen, &h) == PYC_HEADER_OK) {
            struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = nsec};
            struct stat st;
            memset(&st, 0, sizeof st);
            st.st_mtim = ts;
            st.st_size = (off_t)srclen;
            pyc_stamp stamp;
            pyc_stamp_from_stat(h.magic, &st, &stamp);
            h.mtime = stamp.mtime;
            h.source_size = stamp.size;
            if (h.mode != PYC_MODE_TIMESTAMP &&
                pyc_source_hash(h.magic, src, srclen, h.source_hash) != 0)
                CHECK(errno == EINVAL);
            uint8_t out[PYC_HEADER_MAX];
            size_t n = pyc_header_encode(&h, out);
            CHECK(n <= pyclen);
            memcpy(pyc, out, n);
        }
    }

    if (write_file(cache_dirfd, cn->name, pyc, pyclen) != 0)
        abort();
    if (opts & OPT_SOURCE) {
        if (write_file(dirfd_root, srcname, src, srclen) != 0)
            abort();
        struct timespec times[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT},
                                    {.tv_sec = (time_t)sec, .tv_nsec = nsec}};
        (void)utimensat(dirfd_root, srcname, times, 0);
    }
    char pkg[80];
    snprintf(pkg, sizeof pkg, "%.*s", (int)stem_len, kind != PYC_KIND_NONE ? cn->name : "mod");
    if (opts & OPT_PACKAGE) {
        char init[128];
        snprintf(init, sizeof init, "%s/__init__.py", pkg);
        if (mkdirat(dirfd_root, pkg, 0700) != 0 || write_file(dirfd_root, init, NULL, 0) != 0)
            abort();
    }
    char ext[128];
    snprintf(ext, sizeof ext, "%s.so", pkg);
    if ((opts & OPT_EXTENSION) && write_file(dirfd_root, ext, NULL, 0) != 0)
        abort();

    pyc_verdict_options vo = {.deep = (opts & OPT_DEEP) != 0};
    unsigned ch = (opts >> OPT_HASH_SHIFT) & 3;
    vo.check_hash = ch == 1   ? PYC_CHECK_HASH_ALWAYS
                    : ch == 2 ? PYC_CHECK_HASH_NEVER
                              : PYC_CHECK_HASH_DEFAULT;

    pyc_source source = {.dirfd = dirfd_root, .name = srcname, .state = -1};
    pyc_verdict v;
    memset(&v, 0x5A, sizeof v);
    /* Outside __pycache__ and prefix trees the verdict may classify the
     * name itself (NULL). */
    bool own_name = cn->where == IN_DIR && (srclen & 1);
    int rc = pyc_verdict_judge(cache_dirfd, cn->name, own_name ? NULL : &pn,
                               dirfd_root, (opts & OPT_SRC_STRUCT) ? &source : NULL, &vo, &v);
    CHECK(rc == 0);
    CHECK((int)v.status >= 0 && v.status < PYC_STATUS_COUNT);
    CHECK((int)v.reason >= 0 && v.reason < PYC_REASON_COUNT);
    CHECK(pyc_status_name(v.status) != NULL && pyc_reason_name(v.reason) != NULL);
    CHECK(v.status != PYC_MISSING);
    CHECK(v.error == 0 && v.error_op == NULL);
    CHECK(v.header_read);
    CHECK(v.file_size == (int64_t)pyclen);
    if (v.header_status == PYC_HEADER_OK)
        CHECK(v.header.length <= pyclen);
    if (v.status == PYC_FRESH || v.status == PYC_STALE || v.status == PYC_STALE_USED)
        CHECK(v.source_exists);
    if (opts & OPT_SRC_STRUCT) {
        CHECK(source.state == 0 || source.state == 1 || source.state == -1);
        if (source.state == 1)
            CHECK(source.st.st_size == (off_t)srclen && (opts & OPT_SOURCE));
    }

    /* The same file by path: pyc_verdict_judge_path classifies it itself. */
    if (cn->where != IN_PREFIX) {
        char path[sizeof tmpdir + 160];
        snprintf(path, sizeof path, "%s/%s%s", tmpdir,
                 cn->where == IN_PYCACHE ? "__pycache__/" : "", cn->name);
        pyc_verdict pv;
        CHECK(pyc_verdict_judge_path(path, NULL, &vo, &pv) == 0);
        CHECK(pv.status == v.status && pv.reason == v.reason);
    }

    unlinkat(cache_dirfd, cn->name, 0);
    if (opts & OPT_SOURCE)
        unlinkat(dirfd_root, srcname, 0);
    if (opts & OPT_PACKAGE) {
        char init[128];
        snprintf(init, sizeof init, "%s/__init__.py", pkg);
        unlinkat(dirfd_root, init, 0);
        unlinkat(dirfd_root, pkg, AT_REMOVEDIR);
    }
    if (opts & OPT_EXTENSION)
        unlinkat(dirfd_root, ext, 0);
    free(pyc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_header(data, size);
    judge(data, size);
    return 0;
}
