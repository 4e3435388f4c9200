/*
 * fuzz_marshal_tree.c — libFuzzer target for the marshal object model
 * (pyc_marshal_parse, _write, _normalize, _compare, _code; src/lib/
 * marshal_tree.c). The first input byte picks the interpreter (2.7, 3.4 ..
 * 3.14), the rest is a cache file's body. Besides memory safety and bounded
 * recursion, it checks the contract:
 *   - a failed parse says why (errno EINVAL with a status, or ENOMEM) and
 *     where (an offset inside the input);
 *   - one reader, two ways (differential): parsing is the validator's walk
 *     with a tree sink, so for every version pyc_marshal_validate judges,
 *     the parse gives exactly its status (a tree for OK and NOT_CODE,
 *     none otherwise) and, on a refusal, its offset;
 *   - parse -> write gives the input back byte for byte;
 *   - the normal form parses, compares equal to the original, is a fixed
 *     point (normalizing it again changes nothing), and is accepted by the
 *     validator when the original was;
 *   - a tree compares equal to itself.
 *
 * Seed corpus: tests/fuzz/corpus/fuzz_marshal_tree/ (seeds.py: the bodies of
 * fuzz_marshal's corpus behind their version byte).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t versions[][2] = {
    {2, 7}, {3, 4}, {3, 5}, {3, 6}, {3, 7}, {3, 8}, {3, 9},
    {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nv = sizeof versions / sizeof versions[0];
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON,
                                         versions[data[0] % nv][0],
                                         versions[data[0] % nv][1]);
    if (!m)
        return 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    pyc_marshal_status st;
    size_t off = (size_t)-1, valid_off = (size_t)-1;
    pyc_marshal_status valid = pyc_marshal_validate(m, body, len, &valid_off);
    int judged = valid != PYC_MARSHAL_UNCHECKED;
    pyc_marshal_tree *t = pyc_marshal_parse(m, body, len, &st, &off);
    if (!t) {
        if (errno == ENOMEM)
            return 0;
        if (errno != EINVAL || st == PYC_MARSHAL_OK || st == PYC_MARSHAL_NOT_CODE ||
            off > len)
            abort();
        if (judged && (st != valid || off != valid_off))
            abort();
        return 0;
    }
    if ((st != PYC_MARSHAL_OK && st != PYC_MARSHAL_NOT_CODE) || off != 0)
        abort();
    if (judged && st != valid)
        abort();

    unsigned char *out = NULL, *norm = NULL;
    size_t outlen, normlen;
    if (pyc_marshal_write(t, &out, &outlen) < 0)
        goto done;
    if (outlen != len || memcmp(out, body, len) != 0)
        abort();

    pyc_code code;
    const pyc_object *root = pyc_marshal_root(t);
    if (pyc_marshal_code(t, root, &code) == 0 && (!code.code || !code.consts))
        abort();

    char path[64];
    int self = pyc_marshal_compare(t, t, 0, path, sizeof path);
    if (self == 1)
        abort();

    pyc_marshal_tree *t2 = pyc_marshal_parse(m, body, len, NULL, NULL);
    if (!t2)
        goto done;
    if (pyc_marshal_normalize(t2) < 0 ||
        pyc_marshal_write(t2, &norm, &normlen) < 0) {
        pyc_marshal_tree_free(t2);
        goto done;
    }
    pyc_marshal_tree_free(t2);
    pyc_marshal_tree *t3 = pyc_marshal_parse(m, norm, normlen, &st, NULL);
    if (!t3) {
        if (errno != ENOMEM)
            abort();
        goto done;
    }
    int c = pyc_marshal_compare(t, t3, 0, path, sizeof path);
    if (c == 1 && self == 0)
        abort();
    int again = pyc_marshal_normalize(t3);
    if (again > 0)
        abort();
    if (valid == PYC_MARSHAL_OK &&
        pyc_marshal_validate(m, norm, normlen, NULL) != PYC_MARSHAL_OK)
        abort();
    pyc_marshal_tree_free(t3);
done:
    free(out);
    free(norm);
    pyc_marshal_tree_free(t);
    return 0;
}
