/*
 * siphash.c — PEP 552's source hash: importlib.util.source_hash(data), which
 * is _imp.source_hash(_RAW_MAGIC_NUMBER, data) (Python/import.c
 * _imp_source_hash_impl, 3.7+), i.e. _Py_KeyedHash(key, data) with the
 * magic word as the key, returned as 8 little-endian bytes on every
 * platform (the impl byte-swaps on big-endian hosts).
 *
 * _Py_KeyedHash (Python/pyhash.c) is siphash24(key, 0, data) in 3.7-3.10
 * and siphash13(key, 0, data) from 3.11 (bpo-29410, GH-28752, committed
 * 2021-10-10, after 3.11a1 was tagged with magic 3461; the magic was not
 * bumped for it, so 3.11 magics up to 3461 are taken as SipHash-2-4 and
 * later ones as SipHash-1-3). Both are the reference SipHash-c-d with the
 * key bytes le64(k0) || le64(k1): CPython's tail switch (7..5 bytes copied
 * one by one, then a 4-byte memcpy; 3..1 one by one) loads the same bytes
 * as the reference, and the output is v0 ^ v1 ^ v2 ^ v3 after d rounds.
 * Since bpo-32260 (3.7a4) the keys are not byte-swapped, so k0 is the
 * magic word as a number on every platform.
 */
#include "pycache.h"
#include "internal.h"
#include "platform/noatime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* One SipRound (pyhash.c HALF_ROUND twice). */
#define SIPROUND(v0, v1, v2, v3)                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL64(v1, 13);                                                   \
        v1 ^= v0;                                                              \
        v0 = ROTL64(v0, 32);                                                   \
        v2 += v3;                                                              \
        v3 = ROTL64(v3, 16);                                                   \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL64(v3, 21);                                                   \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL64(v1, 17);                                                   \
        v1 ^= v2;                                                              \
        v2 = ROTL64(v2, 32);                                                   \
    } while (0)

/* SipHash-C-D of LEN bytes at DATA, keyed by K0, K1 (Python/pyhash.c
 * siphash13 / siphash24: C compression rounds per 8-byte word, D
 * finalization rounds). */
static uint64_t siphash(int c_rounds, int d_rounds, uint64_t k0, uint64_t k1,
                        const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
    /* pyhash.c: b = (uint64_t)src_sz << 56 — the length modulo 256. */
    uint64_t b = (uint64_t)len << 56;
    size_t left = len;
    int i;

    for (; left >= 8; left -= 8, in += 8) {
        uint64_t m = lib_load_le64(in);
        v3 ^= m;
        for (i = 0; i < c_rounds; i++)
            SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    /* The 0..7 trailing bytes, little-endian, below the length byte. */
    switch (left) {
    case 7:
        b |= (uint64_t)in[6] << 48;
        /* fall through */
    case 6:
        b |= (uint64_t)in[5] << 40;
        /* fall through */
    case 5:
        b |= (uint64_t)in[4] << 32;
        /* fall through */
    case 4:
        b |= (uint64_t)in[3] << 24;
        /* fall through */
    case 3:
        b |= (uint64_t)in[2] << 16;
        /* fall through */
    case 2:
        b |= (uint64_t)in[1] << 8;
        /* fall through */
    case 1:
        b |= (uint64_t)in[0];
        break;
    default:
        break;
    }
    v3 ^= b;
    for (i = 0; i < c_rounds; i++)
        SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (i = 0; i < d_rounds; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t pyc_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    return siphash(1, 3, k0, k1, data, len);
}

uint64_t pyc_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    return siphash(2, 4, k0, k1, data, len);
}

/* Whether interpreter M's _Py_KeyedHash is SipHash-1-3 (else 2-4). */
static bool keyed_hash_is_siphash13(const pyc_magic *m)
{
    if (m->implementation != PYC_IMPL_CPYTHON) {
        /* PyPy and GraalPy implement _imp.source_hash themselves; both
         * follow CPython 3.7's SipHash-2-4 (not checked against a real
         * interpreter: none is installed here). */
        return false;
    }
    if (m->major != 3)
        return m->major > 3;
    if (m->minor != 11)
        return m->minor > 11;
    /* 3.11a1 (magic 3461 and before) still used SipHash-2-4: GH-28752
     * landed after it, without a magic bump. */
    return m->number > 3461;
}

int pyc_source_hash(const pyc_magic *m, const void *src, size_t len,
                    uint8_t out[8])
{
    uint64_t h;

    /* Only 3.7+ (the 16-byte PEP 552 layout) writes hash-based pycs; the
     * 3.7 alphas before PEP 552 (12-byte magics) do not. */
    if (m == NULL || m->layout != PYC_LAYOUT_FLAGS || (src == NULL && len)) {
        errno = EINVAL;
        return -1;
    }
    if (keyed_hash_is_siphash13(m))
        h = pyc_siphash13(m->word, 0, src, len);
    else
        h = pyc_siphash24(m->word, 0, src, len);
    lib_store_le64(out, h);
    return 0;
}

/* Reads the whole of FD into a malloc'd buffer (*BUF, *LEN); an empty file
 * gives a NULL buffer and length 0. Retries on EINTR. */
static int read_all(int fd, unsigned char **buf, size_t *len)
{
    struct stat st;
    size_t cap, used = 0;
    unsigned char *data = NULL;

    /* The size is a hint only: the file may grow or shrink while read. */
    cap = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size < (uint64_t)SIZE_MAX - 1)
        cap = (size_t)st.st_size + 1;
    if (cap < 4096)
        cap = 4096;
    for (;;) {
        ssize_t n;
        if (data == NULL || used == cap) {
            unsigned char *bigger;
            if (data != NULL) {
                if (cap > SIZE_MAX / 2) {
                    free(data);
                    errno = ENOMEM;
                    return -1;
                }
                cap *= 2;
            }
            bigger = realloc(data, cap);
            if (bigger == NULL) {
                free(data);
                errno = ENOMEM;
                return -1;
            }
            data = bigger;
        }
        n = read(fd, data + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(data);
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *buf = data;
    *len = used;
    return 0;
}

/* FileLoader.get_data (3.7+) reads the source with io.open_code / FileIO:
 * open(2) follows symlinks, and the whole file is hashed (its access time
 * left alone: psys_openat_read). */
int pyc_source_hash_file(const pyc_magic *m, int dirfd, const char *name,
                         uint8_t out[8])
{
    unsigned char *data = NULL;
    size_t len = 0;
    int fd, rc, saved;

    if (m == NULL || name == NULL || m->layout != PYC_LAYOUT_FLAGS) {
        errno = EINVAL;
        return -1;
    }
    do {
        fd = psys_openat_read(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    rc = read_all(fd, &data, &len);
    saved = errno;
    close(fd);
    if (rc != 0) {
        errno = saved;
        return -1;
    }
    rc = pyc_source_hash(m, data, len, out);
    free(data);
    return rc;
}
