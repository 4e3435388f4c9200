/*
 * test_marshal_tree.c — the marshal object model on hand-made bodies: what
 * the parser refuses (and says where), refs kept as refs and resolved, the
 * canonical form (FLAG_REF dropped where no REF needs it, slots renumbered,
 * pre-3.11 sets sorted), compare paths. Real pycs of every interpreter are
 * the integration test's (tests/integration/test_marshal_tree.py).
 */
#include <errno.h>

#include "unit.h"

static const pyc_magic *M(int major, int minor)
{
    const pyc_magic *m = pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    assert_non_null(m);
    return m;
}

static pyc_marshal_tree *P(int major, int minor, const char *b, size_t n,
                           pyc_marshal_status *st, size_t *off)
{
    return pyc_marshal_parse(M(major, minor), b, n, st, off);
}

#define PS(maj, min, lit, st, off) P(maj, min, lit, sizeof(lit) - 1, st, off)

static void expect_refused(int maj, int min, const char *b, size_t n,
                           pyc_marshal_status want, size_t want_off)
{
    pyc_marshal_status st;
    size_t off = 99;
    errno = 0;
    assert_null(P(maj, min, b, n, &st, &off));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(st, want);
    assert_int_equal(off, want_off);
}

#define REFUSED(maj, min, lit, want, off) expect_refused(maj, min, lit, sizeof(lit) - 1, want, off)

static void test_refused(void **state)
{
    (void)state;
    REFUSED(3, 12, "", PYC_MARSHAL_EMPTY, 0);
    REFUSED(3, 12, "i\x01\x02", PYC_MARSHAL_TRUNCATED, 0);
    REFUSED(3, 12, "?", PYC_MARSHAL_BAD_TYPE, 0);
    REFUSED(3, 12, "0", PYC_MARSHAL_BAD_VALUE, 0);
    /* A REF to a slot not filled: none yet, or a code object's reserved one. */
    REFUSED(3, 12, ")\x01r\x00\x00\x00\x00", PYC_MARSHAL_BAD_REF, 2);
    /* 2.7 has no refs, no short strings; 3.x has no string refs. */
    REFUSED(2, 7, "r\x00\x00\x00\x00", PYC_MARSHAL_BAD_TYPE, 0);
    REFUSED(2, 7, "z\x01x", PYC_MARSHAL_BAD_TYPE, 0);
    REFUSED(3, 12, "R\x00\x00\x00\x00", PYC_MARSHAL_BAD_TYPE, 0);
    /* TYPE_SLICE is 3.14's. */
    REFUSED(3, 13, ":NNN", PYC_MARSHAL_BAD_TYPE, 0);
    /* A tuple larger than the data; a negative size. */
    REFUSED(3, 12, "(\xff\x00\x00\x00N", PYC_MARSHAL_TRUNCATED, 0);
    REFUSED(3, 12, "s\xff\xff\xff\xff", PYC_MARSHAL_BAD_VALUE, 0);
    /* NULL inside a tuple. */
    REFUSED(3, 12, ")\x02N0", PYC_MARSHAL_BAD_VALUE, 3);
    /* Nesting past MAX_MARSHAL_STACK_DEPTH (2000). */
    char deep[2 * 2001];
    for (size_t i = 0; i < 2001; i++) {
        deep[2 * i] = ')';
        deep[2 * i + 1] = 1;
    }
    expect_refused(3, 12, deep, sizeof deep, PYC_MARSHAL_TOO_DEEP, 4000);
    /* The value rules of marshal.loads are the model's too (one reader):
     * bad UTF-8, float text, an unnormalized long, an unhashable key. */
    REFUSED(3, 12, "u\x01\x00\x00\x00\xff", PYC_MARSHAL_BAD_VALUE, 0);
    REFUSED(3, 12, "f\x02" "1e", PYC_MARSHAL_BAD_VALUE, 1);
    REFUSED(3, 12, "l\x01\x00\x00\x00\x00\x00", PYC_MARSHAL_BAD_VALUE, 5);
    REFUSED(3, 12, "{[\x00\x00\x00\x00N0", PYC_MARSHAL_BAD_VALUE, 6);
    /* 3.4/3.5: r_object's rules (the same reader as 3.6's) ... */
    REFUSED(3, 4, "u\x01\x00\x00\x00\xff", PYC_MARSHAL_BAD_VALUE, 0);
    REFUSED(3, 5, "{[\x00\x00\x00\x00N0", PYC_MARSHAL_BAD_VALUE, 6);
    /* ... but not PyCode_New's, which no interpreter here could confirm:
     * argcount -1 is refused by 3.6, parsed for 3.4 and 3.5. */
    static const char code_neg[] =
        "c\xff\xff\xff\xff\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
        "s\2\0\0\0d\0" ")\0" ")\0" ")\0" ")\0" ")\0" "z\1f" "z\1n"
        "\1\0\0\0" "s\0\0\0\0";
    expect_refused(3, 6, code_neg, sizeof code_neg - 1, PYC_MARSHAL_BAD_VALUE, 0);
    for (int minor = 4; minor <= 5; minor++) {
        pyc_marshal_status st = PYC_MARSHAL_UNCHECKED;
        pyc_marshal_tree *t = P(3, minor, code_neg, sizeof code_neg - 1, &st, NULL);
        assert_non_null(t);
        assert_int_equal(st, PYC_MARSHAL_OK);
        pyc_code c;
        assert_int_equal(pyc_marshal_code(t, pyc_marshal_root(t), &c), 0);
        assert_int_equal(c.argcount, -1);
        pyc_marshal_tree_free(t);
    }
    /* A non-code top object: marshal.loads accepts it, import would not. */
    pyc_marshal_status st = PYC_MARSHAL_OK;
    pyc_marshal_tree *nc = PS(3, 12, "N", &st, NULL);
    assert_non_null(nc);
    assert_int_equal(st, PYC_MARSHAL_NOT_CODE);
    pyc_marshal_tree_free(nc);
    /* Unknown formats. */
    errno = 0;
    assert_null(pyc_marshal_parse(pyc_magic_final(PYC_IMPL_CPYTHON, 3, 2), "N", 1, NULL, NULL));
    assert_int_equal(errno, ENOTSUP);
}

static void roundtrip(int maj, int min, const char *b, size_t n)
{
    pyc_marshal_tree *t = P(maj, min, b, n, NULL, NULL);
    assert_non_null(t);
    unsigned char *out;
    size_t len;
    assert_int_equal(pyc_marshal_write(t, &out, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(out, b, n);
    free(out);
    pyc_marshal_tree_free(t);
}

#define RT(maj, min, lit) roundtrip(maj, min, lit, sizeof(lit) - 1)

static void test_roundtrip_types(void **state)
{
    (void)state;
    RT(3, 12, "N");
    RT(3, 12, "\xe9\x05\x00\x00\x00");                       /* FLAG_REF int */
    RT(3, 12, "l\xfe\xff\xff\xff\x01\x00\x02\x00");          /* -(1 + 2<<15) */
    RT(3, 12, "g\x00\x00\x00\x00\x00\x00\xf8\x3f");          /* 1.5 */
    RT(3, 12, "f\x03" "1.5");
    RT(3, 12, "x\x01" "1\x01" "2");
    RT(3, 12, "y0123456789abcdef");
    RT(3, 12, "I\x01\x02\x03\x04\x05\x06\x07\x08");
    RT(3, 12, "(\x02\x00\x00\x00\xfa\x01" "ar\x00\x00\x00\x00"); /* ('a', <ref 0>) */
    RT(3, 12, "{z\x01kN0");                                  /* {'k': None} */
    RT(3, 12, "<\x01\x00\x00\x00T");
    RT(3, 12, ">\x00\x00\x00\x00");
    RT(3, 12, "s\x03\x00\x00\x00" "a\x00" "b");
    RT(3, 12, "u\x02\x00\x00\x00\xc3\xa9");
    RT(3, 12, "A\x02\x00\x00\x00ok");
    RT(3, 12, "N trailing bytes are kept");
    RT(3, 14, ":NNi\x01\x00\x00\x00");
    RT(2, 7, "(\x02\x00\x00\x00t\x01\x00\x00\x00" "aR\x00\x00\x00\x00");
    /* 2.7 drops a dict pair whose value is NULL and goes on. */
    RT(2, 7, "{N0T00");
}

/* Normalizes BODY (3.x) and checks the bytes against WANT. */
static void norm(int maj, int min, const char *b, size_t n, const char *want,
                 size_t wn, int changed)
{
    pyc_marshal_tree *t = P(maj, min, b, n, NULL, NULL);
    assert_non_null(t);
    assert_int_equal(pyc_marshal_normalize(t), changed);
    unsigned char *out;
    size_t len;
    assert_int_equal(pyc_marshal_write(t, &out, &len), 0);
    assert_int_equal(len, wn);
    assert_memory_equal(out, want, wn);
    /* A fixed point. */
    assert_int_equal(pyc_marshal_normalize(t), 0);
    /* Equal to the original, structurally. */
    pyc_marshal_tree *o = P(maj, min, b, n, NULL, NULL);
    char path[64];
    assert_int_equal(pyc_marshal_compare(o, t, 0, path, sizeof path), 0);
    pyc_marshal_tree_free(o);
    free(out);
    pyc_marshal_tree_free(t);
}

#define NORM(maj, min, lit, want, changed) \
    norm(maj, min, lit, sizeof(lit) - 1, want, sizeof(want) - 1, changed)

static void test_normalize(void **state)
{
    (void)state;
    /* FLAG_REF on objects nothing refers to: dropped. */
    NORM(3, 12, "\xa9\x02\xe9\x01\x00\x00\x00\xda\x01" "a", ")\x02i\x01\x00\x00\x00Z\x01" "a", 1);
    /* Slot 2 is used, slots 0 and 1 not: renumbered 2 -> 0. */
    NORM(3, 12, "\xa9\x03\xe9\x01\x00\x00\x00\xda\x01" "ar\x02\x00\x00\x00",
         ")\x03i\x01\x00\x00\x00\xda\x01" "ar\x00\x00\x00\x00", 1);
    /* Already canonical. */
    NORM(3, 12, ")\x02\xda\x01" "ar\x00\x00\x00\x00", ")\x02\xda\x01" "ar\x00\x00\x00\x00", 0);
    /* 3.10: frozenset items in canonical order; 3.12 keeps marshal's own. */
    NORM(3, 10, ">\x02\x00\x00\x00z\x01" "bz\x01" "a", ">\x02\x00\x00\x00z\x01" "az\x01" "b", 1);
    NORM(3, 12, ">\x02\x00\x00\x00z\x01" "bz\x01" "a", ">\x02\x00\x00\x00z\x01" "bz\x01" "a", 0);
    /* 2.7: nothing to do. */
    NORM(2, 7, "(\x01\x00\x00\x00N", "(\x01\x00\x00\x00N", 0);
}

static void test_resolve_and_compare(void **state)
{
    (void)state;
    pyc_marshal_status st;
    pyc_marshal_tree *a = PS(3, 12, ")\x02\xda\x01" "ar\x00\x00\x00\x00", &st, NULL);
    pyc_marshal_tree *b = PS(3, 12, ")\x02z\x01" "aa\x01\x00\x00\x00" "a", &st, NULL);
    pyc_marshal_tree *c = PS(3, 12, "(\x02\x00\x00\x00z\x01" "az\x01" "b", &st, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    const pyc_object *root = pyc_marshal_root(a);
    assert_int_equal(root->count, 2);
    assert_int_equal(root->items[1]->type, PYC_OBJ_REF);
    const pyc_object *r = pyc_marshal_resolve(a, root->items[1]);
    assert_ptr_equal(r, root->items[0]);
    assert_int_equal(r->type, PYC_OBJ_SHORT_ASCII_INTERNED);
    char path[64];
    /* Interning, ASCII/short encodings and refs do not count. */
    assert_int_equal(pyc_marshal_compare(a, b, 0, path, sizeof path), 0);
    assert_int_equal(pyc_marshal_compare(a, c, 0, path, sizeof path), 1);
    assert_string_equal(path, "[1]");
    /* A path cut to fit. */
    char tiny[3];
    assert_int_equal(pyc_marshal_compare(a, c, 0, tiny, sizeof tiny), 1);
    assert_string_equal(tiny, "[1");
    pyc_marshal_tree_free(a);
    pyc_marshal_tree_free(b);
    pyc_marshal_tree_free(c);
    pyc_marshal_tree_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_resolve_and_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
