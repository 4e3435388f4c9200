/*
 * test_header.c — pyc header parsing and encoding (include/pycache.h
 * section 3): every layout and mode round-trips, every truncation length
 * gives the status CPython's checks would reach first, bad flags and
 * unknown magics are named.
 */
#include <errno.h>

#include "unit.h"

static const pyc_magic *final_of(int major, int minor)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    assert_non_null(m);
    return m;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A header as the interpreter of M writes it. */
static size_t build(const pyc_magic *m, uint32_t flags, uint32_t a, uint32_t b,
                    uint8_t out[16])
{
    memset(out, 0xEE, 16);
    put32(out, m->word);
    switch (m->layout) {
    case PYC_LAYOUT_MTIME:
        put32(out + 4, a);
        return 8;
    case PYC_LAYOUT_MTIME_SIZE:
        put32(out + 4, a);
        put32(out + 8, b);
        return 12;
    case PYC_LAYOUT_FLAGS:
        put32(out + 4, flags);
        put32(out + 8, a);
        put32(out + 12, b);
        return 16;
    }
    fail();
    return 0;
}

static void test_mode_names(void **state)
{
    pyc_mode m;
    (void)state;
    assert_string_equal(pyc_mode_name(PYC_MODE_TIMESTAMP), "timestamp");
    assert_string_equal(pyc_mode_name(PYC_MODE_CHECKED_HASH), "checked-hash");
    assert_string_equal(pyc_mode_name(PYC_MODE_UNCHECKED_HASH), "unchecked-hash");
    for (int i = 0; i <= PYC_MODE_UNCHECKED_HASH; i++) {
        assert_int_equal(pyc_mode_parse(pyc_mode_name((pyc_mode)i), &m), 0);
        assert_int_equal(m, i);
    }
    assert_int_equal(pyc_mode_parse("CHECKED_HASH", &m), 0);
    assert_int_equal(m, PYC_MODE_CHECKED_HASH);
    assert_int_equal(pyc_mode_parse("Unchecked-Hash", &m), 0);
    assert_int_equal(m, PYC_MODE_UNCHECKED_HASH);
    const char *bad[] = {"", "time", "timestamps", "checked", "hash", "checked-hash ", NULL};
    for (int i = 0; bad[i]; i++) {
        errno = 0;
        assert_int_equal(pyc_mode_parse(bad[i], &m), -1);
        assert_int_equal(errno, EINVAL);
    }
}

static void test_status_messages(void **state)
{
    (void)state;
    const char *seen[4];
    for (int s = 0; s < 4; s++) {
        seen[s] = pyc_header_status_message((pyc_header_status)s);
        assert_non_null(seen[s]);
        assert_true(strlen(seen[s]) > 0);
        for (int t = 0; t < s; t++)
            assert_string_not_equal(seen[s], seen[t]);
    }
    assert_string_equal(pyc_header_status_message(PYC_HEADER_TRUNCATED), "header too short");
    assert_string_equal(pyc_header_status_message(PYC_HEADER_UNKNOWN_MAGIC), "unknown magic number");
}

/* A real header, byte for byte: 3.11.7's py_compile of a 6-byte source
 * with mtime 1700000000 (a7 0d 0d 0a | 0 | 00 f1 53 65 | 06 00 00 00). */
static void test_real_bytes(void **state)
{
    static const uint8_t bytes[16] = {0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0,
                                      0x00, 0xf1, 0x53, 0x65, 6, 0, 0, 0};
    pyc_header h;
    uint8_t out[16];
    (void)state;
    assert_int_equal(pyc_header_parse(bytes, sizeof bytes, &h), PYC_HEADER_OK);
    assert_int_equal(h.magic_word, 0x0a0d0da7);
    assert_non_null(h.magic);
    assert_int_equal(h.magic->number, 3495);
    assert_int_equal(h.layout, PYC_LAYOUT_FLAGS);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.mode, PYC_MODE_TIMESTAMP);
    assert_int_equal(h.mtime, 1700000000u);
    assert_int_equal(h.source_size, 6);
    assert_int_equal(h.length, 16);
    assert_int_equal(pyc_header_encode(&h, out), 16);
    assert_memory_equal(out, bytes, 16);
}

/* Every layout and mode: encode, parse, same fields, same bytes. */
static void test_round_trip(void **state)
{
    static const int versions[][2] = {{1, 5}, {2, 7}, {3, 2}, {3, 3}, {3, 6},
                                      {3, 7}, {3, 11}, {3, 13}};
    static const uint32_t values[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff,
                                      1700000000};
    (void)state;
    for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++) {
        const pyc_magic *m = final_of(versions[v][0], versions[v][1]);
        int modes = m->layout == PYC_LAYOUT_FLAGS ? 3 : 1;
        for (int mode = 0; mode < modes; mode++) {
            for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                pyc_header h, back;
                uint8_t buf[16], again[16];
                memset(&h, 0, sizeof h);
                h.magic_word = m->word;
                h.magic = m;
                h.layout = m->layout;
                h.mode = (pyc_mode)mode;
                h.mtime = values[i];
                h.source_size = values[(i + 1) % 6];
                for (int k = 0; k < 8; k++)
                    h.source_hash[k] = (uint8_t)(values[i] >> (k % 4 * 8) ^ (unsigned)k * 37);
                size_t n = pyc_header_encode(&h, buf);
                assert_int_equal(n, (size_t)m->layout);
                assert_int_equal(pyc_header_parse(buf, n, &back), PYC_HEADER_OK);
                assert_ptr_equal(back.magic, m);
                assert_int_equal(back.magic_word, m->word);
                assert_int_equal(back.layout, m->layout);
                assert_int_equal(back.length, n);
                assert_int_equal(back.mode, mode);
                if (mode == PYC_MODE_TIMESTAMP) {
                    assert_int_equal(back.mtime, h.mtime);
                    assert_int_equal(back.source_size,
                                     m->layout == PYC_LAYOUT_MTIME ? 0 : h.source_size);
                } else {
                    assert_memory_equal(back.source_hash, h.source_hash, 8);
                    assert_int_equal(back.flags, mode == PYC_MODE_CHECKED_HASH ? 3 : 1);
                }
                assert_int_equal(pyc_header_encode(&back, again), n);
                assert_memory_equal(again, buf, n);
            }
        }
    }
}

/* Every length 0..16 of a header of each layout. */
static void test_truncation(void **state)
{
    static const int versions[][2] = {{2, 7}, {3, 6}, {3, 12}};
    (void)state;
    for (size_t v = 0; v < 3; v++) {
        const pyc_magic *m = final_of(versions[v][0], versions[v][1]);
        uint8_t buf[16];
        size_t full = build(m, 0, 0x11223344, 0x55667788, buf);
        uint32_t mtime_at = m->layout == PYC_LAYOUT_FLAGS ? 8 : 4;
        for (size_t len = 0; len <= 16; len++) {
            pyc_header h;
            memset(&h, 0x5A, sizeof h);
            pyc_header_status s = pyc_header_parse(buf, len, &h);
            if (len < 4) {
                assert_int_equal(s, PYC_HEADER_TRUNCATED);
                assert_int_equal(h.magic_word, 0);
                assert_null(h.magic);
                assert_int_equal(h.length, 0);
                continue;
            }
            assert_int_equal(h.magic_word, m->word);
            assert_ptr_equal(h.magic, m);
            assert_int_equal(h.layout, m->layout);
            assert_int_equal(s, len < full ? PYC_HEADER_TRUNCATED : PYC_HEADER_OK);
            assert_int_equal(h.length, len < full ? len : full);
            assert_int_equal(h.mtime, len >= mtime_at + 4 ? 0x11223344u : 0u);
            if (m->layout != PYC_LAYOUT_MTIME)
                assert_int_equal(h.source_size, len >= mtime_at + 8 ? 0x55667788u : 0u);
        }
    }
}

/* _classify_pyc: flags & ~0b11 is ImportError; 0b10 alone is a timestamp
 * pyc; the length check comes before the flags check. */
static void test_flags(void **state)
{
    const pyc_magic *m = final_of(3, 9);
    static const struct { uint32_t flags; pyc_header_status s; pyc_mode mode; } cases[] = {
        {0, PYC_HEADER_OK, PYC_MODE_TIMESTAMP},
        {1, PYC_HEADER_OK, PYC_MODE_UNCHECKED_HASH},
        {2, PYC_HEADER_OK, PYC_MODE_TIMESTAMP},
        {3, PYC_HEADER_OK, PYC_MODE_CHECKED_HASH},
        {4, PYC_HEADER_BAD_FLAGS, PYC_MODE_TIMESTAMP},
        {5, PYC_HEADER_BAD_FLAGS, PYC_MODE_UNCHECKED_HASH},
        {0x80000000u, PYC_HEADER_BAD_FLAGS, PYC_MODE_TIMESTAMP},
        {0xffffffffu, PYC_HEADER_BAD_FLAGS, PYC_MODE_CHECKED_HASH},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[16];
        pyc_header h;
        build(m, cases[i].flags, 1234567, 89, buf);
        assert_int_equal(pyc_header_parse(buf, 16, &h), cases[i].s);
        assert_int_equal(h.flags, cases[i].flags);
        assert_int_equal(h.mode, cases[i].mode);
        if (cases[i].s == PYC_HEADER_OK && cases[i].mode == PYC_MODE_TIMESTAMP) {
            assert_int_equal(h.mtime, 1234567);
            assert_int_equal(h.source_size, 89);
        }
        /* EOFError before the flags are looked at. */
        for (size_t len = 8; len < 16; len++)
            assert_int_equal(pyc_header_parse(buf, len, &h), PYC_HEADER_TRUNCATED);
    }
    /* Encoding derives the flags from the mode: 0b10 is never written. */
    uint8_t buf[16], out[16];
    pyc_header h;
    build(m, 2, 1, 2, buf);
    assert_int_equal(pyc_header_parse(buf, 16, &h), PYC_HEADER_OK);
    assert_int_equal(pyc_header_encode(&h, out), 16);
    assert_int_equal(out[4], 0);
}

/* The magic check comes first in every version: an unknown word is
 * reported as such whatever follows, and read as a 16-byte header. */
static void test_unknown_magic(void **state)
{
    uint8_t buf[16] = {0xef, 0xbe, 0xad, 0xde, 3, 0, 0, 0,
                       1, 2, 3, 4, 5, 6, 7, 8};
    pyc_header h;
    (void)state;
    assert_null(pyc_magic_lookup(0xdeadbeef));
    for (size_t len = 4; len <= 16; len++) {
        assert_int_equal(pyc_header_parse(buf, len, &h), PYC_HEADER_UNKNOWN_MAGIC);
        assert_null(h.magic);
        assert_int_equal(h.magic_word, 0xdeadbeef);
        assert_int_equal(h.layout, PYC_LAYOUT_FLAGS);
        assert_int_equal(h.length, len);
        if (len >= 8) {
            assert_int_equal(h.flags, 3);
            assert_int_equal(h.mode, PYC_MODE_CHECKED_HASH);
        }
    }
    assert_memory_equal(h.source_hash, buf + 8, 8);
    /* bad flags behind an unknown magic: still the magic */
    buf[4] = 0xff;
    assert_int_equal(pyc_header_parse(buf, 16, &h), PYC_HEADER_UNKNOWN_MAGIC);
    /* fewer than 4 bytes: no magic at all */
    assert_int_equal(pyc_header_parse(buf, 3, &h), PYC_HEADER_TRUNCATED);
    assert_int_equal(h.magic_word, 0);
    assert_int_equal(pyc_header_parse(NULL, 0, &h), PYC_HEADER_TRUNCATED);
}

/* The 3.7 alphas before PEP 552 wrote 12-byte headers: the layout follows
 * the magic, not the version. */
static void test_layout_from_magic(void **state)
{
    const pyc_magic *a2 = pyc_magic_lookup(3391u | 0x0a0d0000u);
    const pyc_magic *a4 = pyc_magic_lookup(3392u | 0x0a0d0000u);
    uint8_t buf[16];
    pyc_header h;
    (void)state;
    assert_non_null(a2);
    assert_non_null(a4);
    build(a2, 0, 77, 88, buf);
    assert_int_equal(pyc_header_parse(buf, 12, &h), PYC_HEADER_OK);
    assert_int_equal(h.length, 12);
    assert_int_equal(h.mtime, 77);
    build(a4, 0, 77, 88, buf);
    assert_int_equal(pyc_header_parse(buf, 12, &h), PYC_HEADER_TRUNCATED);
    assert_int_equal(pyc_header_parse(buf, 16, &h), PYC_HEADER_OK);
    assert_int_equal(h.mtime, 77);
    assert_int_equal(h.source_size, 88);
}

/* Parsing never reads past LEN: a buffer exactly LEN bytes long on the heap
 * (ASan catches an overread). */
static void test_no_overread(void **state)
{
    const pyc_magic *m = final_of(3, 12);
    uint8_t src[16];
    (void)state;
    build(m, 1, 5, 6, src);
    for (size_t len = 0; len <= 16; len++) {
        uint8_t *p = malloc(len ? len : 1);
        pyc_header h;
        assert_non_null(p);
        memcpy(p, src, len);
        (void)pyc_header_parse(p, len, &h);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_status_messages),
        cmocka_unit_test(test_real_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_unknown_magic),
        cmocka_unit_test(test_layout_from_magic),
        cmocka_unit_test(test_no_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
