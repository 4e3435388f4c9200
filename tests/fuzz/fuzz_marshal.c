/*
 * fuzz_marshal.c — libFuzzer target for pyc_marshal_validate: the input is a
 * cache file's body, judged by every final CPython magic (and one beyond the
 * table). It must never crash, read past the input, recurse without bound
 * or report an offset outside the input; a body it accepts must stay
 * accepted when bytes are appended (marshal.loads ignores trailing data).
 *
 * Seed corpus: tests/fuzz/corpus/fuzz_marshal/, real bodies written by each
 * local interpreter (marshal.dumps of compiled modules).
 * Build and run: make fuzz FUZZ_SECONDS=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = pyc_magic_count();
    uint8_t *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 'N';
    for (size_t i = 0; i < n; i++) {
        const pyc_magic *m = pyc_magic_at(i);
        if (!m->final || m->implementation != PYC_IMPL_CPYTHON)
            continue;
        size_t off = (size_t)-1;
        pyc_marshal_status st = pyc_marshal_validate(m, data, size, &off);
        if ((int)st < PYC_MARSHAL_OK || st > PYC_MARSHAL_UNCHECKED)
            abort();
        if (off > size)
            abort();
        if (!pyc_marshal_status_message(st)[0])
            abort();
        if (st == PYC_MARSHAL_OK &&
            pyc_marshal_validate(m, copy, size + 1, NULL) != PYC_MARSHAL_OK)
            abort();
    }
    pyc_marshal_validate(NULL, data, size, NULL);
    free(copy);
    return 0;
}
