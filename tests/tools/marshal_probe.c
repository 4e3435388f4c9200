/*
 * marshal_probe — drives the marshal object model (pyc_marshal_parse,
 * _write, _normalize, _compare) on whole cache files, for
 * tests/integration/test_marshal_tree.py.
 *
 *   marshal_probe roundtrip < LIST
 *       LIST: one cache-file path a line. Parses each body and writes it
 *       back; prints "FAIL PATH: WHY" for each file whose bytes differ or
 *       that does not parse, then "N files, F failures".
 *   marshal_probe normalize IN OUT
 *       OUT: IN's header and its body in canonical form; prints "changed"
 *       or "unchanged".
 *   marshal_probe normalize-list OUTDIR < LIST
 *       the same for each path of LIST, into OUTDIR/N (N: the line number
 *       from 0); prints "N changed|unchanged" per file.
 *   marshal_probe compare A B [ignore-filename]
 *       prints "equal" or "differ PATH".
 * Exit status: 0, 1 on a failure, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pycache.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap)
            break;
        cap *= 2;
        unsigned char *b = realloc(buf, cap);
        if (!b) {
            free(buf);
            buf = NULL;
        }
        buf = b;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Parses PATH's body into *TREE; returns the header length or 0 with WHY. */
static size_t load(const char *path, unsigned char **data, size_t *len,
                   pyc_marshal_tree **tree, const char **why)
{
    static char msg[128];
    pyc_header h;
    *tree = NULL;
    *data = slurp(path, len);
    if (!*data) {
        *why = strerror(errno);
        return 0;
    }
    if (pyc_header_parse(*data, *len, &h) != PYC_HEADER_OK || !h.magic) {
        *why = "bad header";
        return 0;
    }
    pyc_marshal_status st;
    size_t off;
    *tree = pyc_marshal_parse(h.magic, *data + h.length, *len - h.length, &st,
                              &off);
    if (!*tree) {
        snprintf(msg, sizeof msg, "parse: %s at %zu (%s)",
                 pyc_marshal_status_message(st), off, strerror(errno));
        *why = msg;
        return 0;
    }
    return h.length;
}

static int roundtrip(void)
{
    char line[8192];
    unsigned long files = 0, failures = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line)
            continue;
        files++;
        unsigned char *data, *out = NULL;
        size_t len, outlen;
        pyc_marshal_tree *t;
        const char *why = NULL;
        size_t hl = load(line, &data, &len, &t, &why);
        if (hl) {
            if (pyc_marshal_write(t, &out, &outlen) < 0)
                why = "write failed";
            else if (outlen != len - hl || memcmp(out, data + hl, outlen))
                why = "written bytes differ";
        }
        if (why) {
            printf("FAIL %s: %s\n", line, why);
            failures++;
        }
        free(out);
        free(data);
        pyc_marshal_tree_free(t);
    }
    printf("%lu files, %lu failures\n", files, failures);
    return failures ? 1 : 0;
}

static int normalize(const char *in, const char *outpath)
{
    unsigned char *data, *out = NULL;
    size_t len, outlen;
    pyc_marshal_tree *t;
    const char *why = NULL;
    size_t hl = load(in, &data, &len, &t, &why);
    if (!hl) {
        fprintf(stderr, "marshal_probe: %s: %s\n", in, why);
        free(data);
        return 1;
    }
    int changed = pyc_marshal_normalize(t);
    if (changed < 0 || pyc_marshal_write(t, &out, &outlen) < 0) {
        fprintf(stderr, "marshal_probe: %s: %s\n", in, strerror(errno));
        return 1;
    }
    FILE *f = fopen(outpath, "wb");
    if (!f || fwrite(data, 1, hl, f) != hl ||
        fwrite(out, 1, outlen, f) != outlen || fclose(f) != 0) {
        fprintf(stderr, "marshal_probe: %s: %s\n", outpath, strerror(errno));
        return 1;
    }
    printf("%s\n", changed ? "changed" : "unchanged");
    free(out);
    free(data);
    pyc_marshal_tree_free(t);
    return 0;
}

static int compare(const char *a, const char *b, unsigned flags)
{
    unsigned char *da, *db;
    size_t la, lb;
    pyc_marshal_tree *ta, *tb;
    const char *why = NULL;
    if (!load(a, &da, &la, &ta, &why) || !load(b, &db, &lb, &tb, &why)) {
        fprintf(stderr, "marshal_probe: %s\n", why);
        return 1;
    }
    char path[512];
    int r = pyc_marshal_compare(ta, tb, flags, path, sizeof path);
    if (r < 0) {
        fprintf(stderr, "marshal_probe: compare: %s\n", strerror(errno));
        return 1;
    }
    if (r)
        printf("differ %s\n", path);
    else
        printf("equal\n");
    free(da);
    free(db);
    pyc_marshal_tree_free(ta);
    pyc_marshal_tree_free(tb);
    return 0;
}

static int normalize_list(const char *dir)
{
    char line[8192], out[8192 + 32];
    int rc = 0;
    for (unsigned long n = 0; fgets(line, sizeof line, stdin); n++) {
        line[strcspn(line, "\n")] = 0;
        snprintf(out, sizeof out, "%s/%lu", dir, n);
        printf("%lu ", n);
        fflush(stdout);
        if (normalize(line, out))
            rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "normalize-list") == 0)
        return normalize_list(argv[2]);
    if (argc == 2 && strcmp(argv[1], "roundtrip") == 0)
        return roundtrip();
    if (argc == 4 && strcmp(argv[1], "normalize") == 0)
        return normalize(argv[2], argv[3]);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "compare") == 0)
        return compare(argv[2], argv[3],
                       argc == 5 ? PYC_COMPARE_IGNORE_FILENAME : 0);
    fprintf(stderr, "usage: marshal_probe roundtrip < LIST | normalize IN OUT"
                    " | compare A B [ignore-filename]\n");
    return 2;
}
