/*
 * fuzz_magic.c — libFuzzer target for the magic-number table's lookups:
 * pyc_magic_lookup (every 4-byte word of the input, and its CPython-shaped
 * variant NNNN 0d 0a), pyc_magic_for_tag (the input as a tag, not
 * NUL-terminated: an exact-size heap copy, so a read past TAG_LEN is an
 * ASan report), pyc_magic_parse_version, pyc_mode_parse and
 * pyc_status_parse (the input up to its first NUL, as a C string).
 *
 * Beyond "no crash, no sanitizer report", each answer is checked against
 * the contract in include/pycache.h:
 *   - lookup(w) is NULL or an entry whose word is w;
 *   - for_tag(t) is NULL or an entry carrying exactly the tag t;
 *   - parse_version(s) is NULL with errno EINVAL/ENOENT, or the final magic
 *     of its (implementation, major, minor), and the entry's own tag parses
 *     back to it;
 *   - a name that parses is the name the library prints for the value.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const pyc_magic *m)
{
    CHECK(m->layout == PYC_LAYOUT_MTIME || m->layout == PYC_LAYOUT_MTIME_SIZE ||
          m->layout == PYC_LAYOUT_FLAGS);
    CHECK(m->release != NULL && m->note != NULL);
    CHECK(strcmp(pyc_implementation_name(m->implementation), "") != 0);
    const pyc_magic *f = pyc_magic_final(m->implementation, m->major, m->minor);
    CHECK(f != NULL);
    CHECK(f->implementation == m->implementation && f->major == m->major &&
          f->minor == m->minor);
}

static void lookup_word(uint32_t word)
{
    const pyc_magic *m = pyc_magic_lookup(word);
    if (!m)
        return;
    CHECK(m->word == word);
    check_entry(m);
}

static void check_tag(const uint8_t *data, size_t size)
{
    /* An exact-size copy: the function must not read past TAG_LEN. */
    char *tag = malloc(size ? size : 1);
    if (!tag)
        return;
    if (size)
        memcpy(tag, data, size);
    const pyc_magic *m = pyc_magic_for_tag(tag, size);
    if (m) {
        CHECK(m->tag != NULL);
        CHECK(strlen(m->tag) == size && memcmp(m->tag, tag, size) == 0);
        check_entry(m);
    }
    free(tag);
}

static void check_version(const char *text)
{
    errno = 0;
    const pyc_magic *m = pyc_magic_parse_version(text);
    if (!m) {
        CHECK(errno == EINVAL || errno == ENOENT);
        return;
    }
    check_entry(m);
    CHECK(m == pyc_magic_final(m->implementation, m->major, m->minor));
    if (m->tag) {
        /* Tags are among the documented spellings ("cpython-311",
         * "pypy310"); GraalPy's ("graalpy240-310") are not versions. */
        if (m->implementation != PYC_IMPL_GRAALPY)
            CHECK(pyc_magic_parse_version(m->tag) == m);
        CHECK(pyc_magic_for_tag(m->tag, strlen(m->tag)) != NULL);
    }
}

static void check_names(const char *text)
{
    pyc_mode mode;
    if (pyc_mode_parse(text, &mode) == 0) {
        /* compileall's and PycInvalidationMode's spellings: case ignored,
         * '_' for '-' (header.c). */
        const char *want = pyc_mode_name(mode);
        CHECK(strlen(want) == strlen(text));
        for (size_t i = 0; want[i]; i++) {
            char c = text[i] >= 'A' && text[i] <= 'Z' ? (char)(text[i] - 'A' + 'a') : text[i];
            CHECK(c == want[i] || (c == '_' && want[i] == '-'));
        }
    } else {
        CHECK(errno == EINVAL);
    }
    pyc_status status;
    if (pyc_status_parse(text, &status) == 0) {
        CHECK((int)status >= 0 && status < PYC_STATUS_COUNT);
        CHECK(strcmp(pyc_status_name(status), text) == 0);
    } else {
        CHECK(errno == EINVAL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 4 <= size && i < 64; i++) {
        uint32_t w = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
                     (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        lookup_word(w);
        lookup_word((w & 0xFFFFu) | 0x0A0D0000u);
    }
    check_tag(data, size);

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_version(text);
    check_names(text);
    free(text);
    return 0;
}
