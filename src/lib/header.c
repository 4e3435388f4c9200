/*
 * header.c — the 8, 12 or 16 bytes in front of a cache file's marshalled
 * code: parsing them as the interpreter that wrote them would, and writing
 * them back.
 *
 * The layout comes from the magic number (pyc_magic_lookup): 8 bytes up to
 * 3.2, 12 bytes for 3.3-3.6, 16 bytes (PEP 552) from 3.7. The order of the
 * checks mirrors CPython, so a file that several checks would reject gets
 * the status its interpreter reports first:
 *
 *   3.7+     importlib._bootstrap_external._classify_pyc: the magic
 *            (ImportError), then len(data) < 16 (EOFError), then
 *            flags & ~0b11 (ImportError). flags == 0b10 passes: get_code
 *            takes hash_based = flags & 0b1, so it is a timestamp pyc.
 *   3.3-3.6  _validate_bytecode_header (3.3: SourceLoader._bytes_from_bytecode):
 *            the magic, then len(data[4:8]) != 4, then len(data[8:12]) != 4
 *            (EOFError). There is no flags word.
 *   2.x-3.2  Python/import.c check_compiled_module: the magic, then the mtime
 *            read with PyMarshal_ReadLongFromFile (a short file gives a
 *            mismatching mtime: the pyc is not used).
 */
#include "pycache.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

static const char *const mode_names[] = {
    [PYC_MODE_TIMESTAMP] = "timestamp",
    [PYC_MODE_CHECKED_HASH] = "checked-hash",
    [PYC_MODE_UNCHECKED_HASH] = "unchecked-hash",
};

const char *pyc_mode_name(pyc_mode mode)
{
    if ((unsigned)mode < sizeof mode_names / sizeof mode_names[0])
        return mode_names[mode];
    return "unknown";
}

/* Accepts the names compileall's --invalidation-mode takes ("checked-hash")
 * and py_compile.PycInvalidationMode's member names ("CHECKED_HASH"):
 * case is ignored and '_' is taken for '-'. */
int pyc_mode_parse(const char *name, pyc_mode *out)
{
    size_t i;

    if (name == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        const char *want = mode_names[i];
        const char *got = name;
        while (*want != '\0' && *got != '\0') {
            int c = tolower((unsigned char)*got);
            if (c == '_')
                c = '-';
            if (c != *want)
                break;
            want++;
            got++;
        }
        if (*want == '\0' && *got == '\0') {
            *out = (pyc_mode)i;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

/* The mode of a 3.7+ flags word: get_code's hash_based = flags & 0b1 and
 * check_source = flags & 0b10 (importlib._bootstrap_external, 3.7+). */
static pyc_mode mode_of_flags(uint32_t flags)
{
    if (!(flags & 1u))
        return PYC_MODE_TIMESTAMP;
    return (flags & 2u) ? PYC_MODE_CHECKED_HASH : PYC_MODE_UNCHECKED_HASH;
}

/* Fills the fields after the magic from the LEN bytes at P (the whole
 * header, magic included) for LAYOUT, as far as LEN allows. */
static void parse_fields(const unsigned char *p, size_t len, pyc_layout layout,
                         pyc_header *out)
{
    size_t stamp_at;

    switch (layout) {
    case PYC_LAYOUT_MTIME:
        if (len >= 8)
            out->mtime = lib_load_le32(p + 4);
        return;
    case PYC_LAYOUT_MTIME_SIZE:
        stamp_at = 4;
        break;
    case PYC_LAYOUT_FLAGS:
    default:
        if (len < 8)
            return;
        out->flags = lib_load_le32(p + 4);
        out->mode = mode_of_flags(out->flags);
        if (out->mode != PYC_MODE_TIMESTAMP) {
            if (len >= 16)
                memcpy(out->source_hash, p + 8, 8);
            return;
        }
        stamp_at = 8;
        break;
    }
    if (len >= stamp_at + 4)
        out->mtime = lib_load_le32(p + stamp_at);
    if (len >= stamp_at + 8)
        out->source_size = lib_load_le32(p + stamp_at + 4);
}

pyc_header_status pyc_header_parse(const void *buf, size_t len, pyc_header *out)
{
    const unsigned char *p = buf;
    pyc_layout layout;

    memset(out, 0, sizeof *out);
    out->layout = PYC_LAYOUT_FLAGS;
    out->mode = PYC_MODE_TIMESTAMP;
    if (len < 4 || buf == NULL)
        return PYC_HEADER_TRUNCATED;

    out->magic_word = lib_load_le32(p);
    out->magic = pyc_magic_lookup(out->magic_word);
    /* An unknown magic is read as the newest layout, so `inspect` can still
     * show the fields; the magic check comes first in every version. */
    layout = out->magic != NULL ? out->magic->layout : PYC_LAYOUT_FLAGS;
    out->layout = layout;
    parse_fields(p, len, layout, out);
    out->length = len < (size_t)layout ? len : (size_t)layout;

    if (out->magic == NULL)
        return PYC_HEADER_UNKNOWN_MAGIC;
    if (len < (size_t)layout)
        return PYC_HEADER_TRUNCATED;
    /* _classify_pyc (3.7+): "Only the first two flags are defined." */
    if (layout == PYC_LAYOUT_FLAGS && (out->flags & ~UINT32_C(0x3)) != 0)
        return PYC_HEADER_BAD_FLAGS;
    return PYC_HEADER_OK;
}

/* _code_to_timestamp_pyc / _code_to_hash_pyc (3.7+): flags 0 for a
 * timestamp pyc, 0b1 | checked << 1 for a hash-based one. */
static uint32_t flags_of_mode(pyc_mode mode)
{
    switch (mode) {
    case PYC_MODE_CHECKED_HASH:
        return 3;
    case PYC_MODE_UNCHECKED_HASH:
        return 1;
    case PYC_MODE_TIMESTAMP:
    default:
        return 0;
    }
}

size_t pyc_header_encode(const pyc_header *h, uint8_t out[PYC_HEADER_MAX])
{
    uint32_t word = h->magic_word;

    if (word == 0 && h->magic != NULL)
        word = h->magic->word;
    switch (h->layout) {
    case PYC_LAYOUT_MTIME:
        lib_store_le32(out, word);
        lib_store_le32(out + 4, h->mtime);
        return 8;
    case PYC_LAYOUT_MTIME_SIZE:
        lib_store_le32(out, word);
        lib_store_le32(out + 4, h->mtime);
        lib_store_le32(out + 8, h->source_size);
        return 12;
    case PYC_LAYOUT_FLAGS:
        lib_store_le32(out, word);
        lib_store_le32(out + 4, flags_of_mode(h->mode));
        if (h->mode == PYC_MODE_CHECKED_HASH ||
            h->mode == PYC_MODE_UNCHECKED_HASH) {
            memcpy(out + 8, h->source_hash, 8);
        } else {
            lib_store_le32(out + 8, h->mtime);
            lib_store_le32(out + 12, h->source_size);
        }
        return 16;
    default:
        return 0;
    }
}

const char *pyc_header_status_message(pyc_header_status status)
{
    switch (status) {
    case PYC_HEADER_OK:
        return "valid header";
    case PYC_HEADER_TRUNCATED:
        return "header too short";
    case PYC_HEADER_UNKNOWN_MAGIC:
        return "unknown magic number";
    case PYC_HEADER_BAD_FLAGS:
        return "invalid flags";
    default:
        return "unknown header status";
    }
}
