/*
 * test_siphash.c — SipHash-1-3/2-4 and PEP 552's source hash (include/
 * pycache.h section 4) against the vectors the real interpreters produced
 * (tests/reference/source_hash_vectors.tsv) and against libsodium's
 * crypto_shorthash_siphash24 on random inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#define CRLF 0x0a0d0000u

static void le64(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

/* Every row the interpreters wrote: the importlib.util.source_hash rows go
 * through pyc_source_hash with the magic (the version decides the
 * variant); the _imp.source_hash(key, data) rows through the variant the
 * row names, with the row's key. */
static void test_reference_vectors(void **state)
{
    FILE *f = unit_open_reference("source_hash_vectors.tsv");
    char line[70000];
    int rows = 0, via_magic = 0;
    static uint8_t data[32768];

    (void)state;
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f)) {
        char *cols[10] = {0};
        char *p = line;
        int n = 0;
        while (n < 10) {
            cols[n++] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
        if (n < 9)
            continue;
        cols[8][strcspn(cols[8], "\r\n")] = '\0';
        unsigned magic_int = (unsigned)strtoul(cols[1], NULL, 10);
        uint64_t key = strtoull(cols[2], NULL, 16);
        long len = unit_unhex(cols[7], data, sizeof data);
        uint8_t want[8], got[8];
        assert_true(len >= 0);
        assert_int_equal(len, strtol(cols[6], NULL, 10));
        assert_int_equal(unit_unhex(cols[8], want, 8), 8);

        if (strcmp(cols[4], "importlib.util.source_hash") == 0) {
            const pyc_magic *m = pyc_magic_lookup(magic_int | CRLF);
            assert_non_null(m);
            assert_int_equal(key, m->word);
            assert_int_equal(pyc_source_hash(m, data, (size_t)len, got), 0);
            if (memcmp(got, want, 8) != 0)
                fail_msg("%s magic %u %s: source hash differs", cols[0],
                         magic_int, cols[5]);
            via_magic++;
        }
        uint64_t h = 0;
        if (strcmp(cols[3], "siphash13") == 0)
            h = pyc_siphash13(key, 0, data, (size_t)len);
        else if (strcmp(cols[3], "siphash24") == 0)
            h = pyc_siphash24(key, 0, data, (size_t)len);
        else
            fail_msg("unknown algorithm %s", cols[3]);
        le64(h, got);
        if (memcmp(got, want, 8) != 0)
            fail_msg("%s %s key %s %s: differs", cols[0], cols[3], cols[2], cols[5]);
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 160);
    assert_int_equal(via_magic, 80);
}

/* SipHash-2-4 is the reference function: libsodium's, keyed with
 * le64(k0) || le64(k1), output little-endian. */
static void test_siphash24_vs_libsodium(void **state)
{
    static uint8_t buf[4096 + 8];
    (void)state;
    assert_true(sodium_init() >= 0);
    for (int round = 0; round < 3000; round++) {
        uint64_t k0, k1;
        uint8_t key[16], want[8], got[8];
        size_t len = round < 300 ? (size_t)round % 70
                                 : randombytes_uniform(4096);
        size_t off = randombytes_uniform(8); /* unaligned starts */
        randombytes_buf(&k0, sizeof k0);
        randombytes_buf(&k1, sizeof k1);
        if (round % 3 == 0)
            k1 = 0; /* the _Py_KeyedHash shape */
        randombytes_buf(buf, sizeof buf);
        le64(k0, key);
        le64(k1, key + 8);
        crypto_shorthash_siphash24(want, buf + off, len, key);
        le64(pyc_siphash24(k0, k1, buf + off, len), got);
        if (memcmp(want, got, 8) != 0)
            fail_msg("len %zu off %zu differs from libsodium", len, off);
    }
}

/* The variant follows the magic: 2-4 through 3.10 and the 3.11a1 magics,
 * 1-3 from 3461 + 1 on; no hash before the PEP 552 layout. */
static void test_variant_per_magic(void **state)
{
    static const uint8_t src[] = "x = 1\n";
    static const struct { unsigned number; int siphash13; } cases[] = {
        {3392, 0}, {3394, 0}, {3413, 0}, {3425, 0}, {3439, 0},
        {3450, 0}, {3461, 0}, {3462, 1}, {3495, 1}, {3531, 1}, {3571, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pyc_magic *m = pyc_magic_lookup(cases[i].number | CRLF);
        uint8_t got[8], want[8];
        assert_non_null(m);
        assert_int_equal(pyc_source_hash(m, src, sizeof src - 1, got), 0);
        le64(cases[i].siphash13 ? pyc_siphash13(m->word, 0, src, sizeof src - 1)
                                : pyc_siphash24(m->word, 0, src, sizeof src - 1),
             want);
        if (memcmp(got, want, 8) != 0)
            fail_msg("magic %u: wrong variant", cases[i].number);
    }
    /* the newest magics (main) are 1-3 as well */
    const pyc_magic *newest = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 15);
    if (newest) {
        uint8_t got[8], want[8];
        assert_int_equal(pyc_source_hash(newest, src, 6, got), 0);
        le64(pyc_siphash13(newest->word, 0, src, 6), want);
        assert_memory_equal(got, want, 8);
    }
    /* no hash-based pycs before 3.7a4 */
    static const unsigned none[] = {62211, 3379, 3390, 3391};
    for (size_t i = 0; i < 4; i++) {
        uint8_t out[8];
        const pyc_magic *m = pyc_magic_lookup(none[i] | CRLF);
        assert_non_null(m);
        errno = 0;
        assert_int_equal(pyc_source_hash(m, src, 6, out), -1);
        assert_int_equal(errno, EINVAL);
    }
    uint8_t out[8];
    errno = 0;
    assert_int_equal(pyc_source_hash(NULL, src, 6, out), -1);
    assert_int_equal(errno, EINVAL);
}

/* Known SipHash-1-3 values from the interpreters (3.11.7, from the
 * reference file): also hashed from unaligned copies. */
static void test_unaligned(void **state)
{
    static uint8_t buf[300];
    (void)state;
    for (size_t i = 0; i < 256; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len < 40; len++) {
        uint64_t h13 = pyc_siphash13(0x0a0d0da7, 0, buf, len);
        uint64_t h24 = pyc_siphash24(0x0a0d0da7, 0, buf, len);
        for (size_t off = 1; off < 8; off++) {
            memmove(buf + off, buf, len);
            assert_true(pyc_siphash13(0x0a0d0da7, 0, buf + off, len) == h13);
            assert_true(pyc_siphash24(0x0a0d0da7, 0, buf + off, len) == h24);
            memmove(buf, buf + off, len);
        }
    }
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_siphash.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(int dirfd, const char *name, const uint8_t *data, size_t len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
    close(fd);
}

/* pyc_source_hash_file: the whole file, through symlinks, any size. */
static void test_hash_file(void **state)
{
    const pyc_magic *m13 = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 12);
    const pyc_magic *m24 = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 8);
    static const size_t sizes[] = {0, 1, 7, 8, 9, 4095, 4096, 4097, 1 << 20, (3 << 20) + 5};
    int dirfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    (void)state;
    assert_true(dirfd >= 0);
    assert_non_null(m13);
    assert_non_null(m24);
    assert_true(sodium_init() >= 0);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *data = malloc(sizes[i] + 1);
        uint8_t want[8], got[8];
        const pyc_magic *m = i % 2 ? m13 : m24;
        assert_non_null(data);
        randombytes_buf(data, sizes[i]);
        write_file(dirfd, "src.py", data, sizes[i]);
        assert_int_equal(pyc_source_hash(m, data, sizes[i], want), 0);
        assert_int_equal(pyc_source_hash_file(m, dirfd, "src.py", got), 0);
        assert_memory_equal(got, want, 8);
        free(data);
    }
    /* through a symlink, and by path with AT_FDCWD */
    unlinkat(dirfd, "link.py", 0);
    assert_int_equal(symlinkat("src.py", dirfd, "link.py"), 0);
    uint8_t a[8], b[8], c[8];
    assert_int_equal(pyc_source_hash_file(m13, dirfd, "src.py", a), 0);
    assert_int_equal(pyc_source_hash_file(m13, dirfd, "link.py", b), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/link.py", tmpdir);
    assert_int_equal(pyc_source_hash_file(m13, AT_FDCWD, path, c), 0);
    assert_memory_equal(a, b, 8);
    assert_memory_equal(a, c, 8);
    /* errors keep errno */
    errno = 0;
    assert_int_equal(pyc_source_hash_file(m13, dirfd, "absent.py", a), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(mkdirat(dirfd, "pkg.py", 0755), 0);
    errno = 0;
    assert_int_equal(pyc_source_hash_file(m13, dirfd, "pkg.py", a), -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(symlinkat("nowhere.py", dirfd, "dangling.py"), 0);
    errno = 0;
    assert_int_equal(pyc_source_hash_file(m13, dirfd, "dangling.py", a), -1);
    assert_int_equal(errno, ENOENT);
    const pyc_magic *old = pyc_magic_final(PYC_IMPL_CPYTHON, 3, 6);
    errno = 0;
    assert_int_equal(pyc_source_hash_file(old, dirfd, "src.py", a), -1);
    assert_int_equal(errno, EINVAL);
    close(dirfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_siphash24_vs_libsodium),
        cmocka_unit_test(test_variant_per_magic),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test_setup_teardown(test_hash_file, make_tmpdir, remove_tmpdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
