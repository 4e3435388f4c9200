/*
 * listing.c — per-file output lines in path order, with bounded memory
 * (listing.h): records gather in an open_memstream buffer, are sorted by
 * key when the budget is reached and spilled as one sorted run to an
 * unlinked temporary file (tmpfile), and the runs are merged at the end,
 * the way sort(1) handles input larger than its buffer.
 *
 * A record's order is (key bytes, then arrival), so records with the same
 * key (a file and the error met on it) keep the order they were written in.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/listing.h"

struct record {
    size_t key_off;  /* in keys */
    size_t data_off; /* in the memstream buffer */
    uint32_t key_len;
    uint32_t data_len;
    uint64_t seq;    /* arrival order */
};

/* One sorted run on disk, read back record by record while merging. */
struct run {
    FILE *f;
    bool live;       /* a record is loaded */
    char *key, *data;
    uint32_t key_len, data_len;
    size_t key_cap, data_cap;
    uint64_t seq;
};

struct listing {
    FILE *out;
    FILE *mem;          /* the record stream (open_memstream) */
    char *mem_buf;
    size_t mem_size;
    size_t record_start; /* where the record being written starts */
    char *keys;
    size_t keys_len, keys_cap;
    struct record *v;
    size_t n, cap;
    uint64_t seq;
    size_t count;
    struct run *runs;
    size_t nruns;
    int error;          /* the first errno a spill met (0: none) */
};

static int open_mem(listing *l)
{
    l->mem_buf = NULL;
    l->mem_size = 0;
    l->mem = open_memstream(&l->mem_buf, &l->mem_size);
    l->record_start = 0;
    return l->mem ? 0 : -1;
}

listing *listing_new(FILE *out)
{
    listing *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->out = out;
    if (open_mem(l) != 0) {
        free(l);
        errno = ENOMEM;
        return NULL;
    }
    return l;
}

FILE *listing_stream(listing *l)
{
    return l->mem;
}

size_t listing_count(const listing *l)
{
    return l->count;
}

/* The order of records: key bytes (a prefix first), then arrival. */
static int compare(const char *ka, uint32_t la, uint64_t sa, const char *kb, uint32_t lb,
                   uint64_t sb)
{
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(ka, kb, n) : 0;
    if (c)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return sa < sb ? -1 : sa > sb;
}

static int by_key(const void *pa, const void *pb, const char *keys)
{
    const struct record *a = pa, *b = pb;
    return compare(keys + a->key_off, a->key_len, a->seq, keys + b->key_off, b->key_len,
                   b->seq);
}

/* qsort has no context argument in C11/POSIX; the keys of the listing
 * being sorted are handed over here (one sort at a time: the callback that
 * adds records is serialised). */
static const char *sort_keys;

static int by_key_qsort(const void *a, const void *b)
{
    return by_key(a, b, sort_keys);
}

static void sort_records(listing *l)
{
    if (l->n < 2)
        return; /* qsort's base must not be NULL, even for no element */
    sort_keys = l->keys;
    qsort(l->v, l->n, sizeof *l->v, by_key_qsort);
    sort_keys = NULL;
}

/* Empties the in-memory records (after they were written somewhere). */
static int reset_memory(listing *l)
{
    fclose(l->mem);
    free(l->mem_buf);
    l->n = 0;
    l->keys_len = 0;
    return open_mem(l);
}

static bool write_all(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n;
}

/* Writes the sorted in-memory records as one run to a temporary file. */
static int spill(listing *l)
{
    if (fflush(l->mem) != 0)
        return -1;
    struct run *runs = realloc(l->runs, (l->nruns + 1) * sizeof *runs);
    if (!runs)
        return -1;
    l->runs = runs;
    FILE *f = tmpfile();
    if (!f)
        return -1;
    sort_records(l);
    for (size_t i = 0; i < l->n; i++) {
        const struct record *r = &l->v[i];
        uint32_t head[2] = {r->key_len, r->data_len};
        if (!write_all(f, head, sizeof head) || !write_all(f, &r->seq, sizeof r->seq) ||
            !write_all(f, l->keys + r->key_off, r->key_len) ||
            !write_all(f, l->mem_buf + r->data_off, r->data_len)) {
            int err = errno ? errno : EIO;
            fclose(f);
            errno = err;
            return -1;
        }
    }
    if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0) {
        int err = errno;
        fclose(f);
        errno = err;
        return -1;
    }
    memset(&l->runs[l->nruns], 0, sizeof l->runs[l->nruns]);
    l->runs[l->nruns++].f = f;
    return reset_memory(l);
}

int listing_commit(listing *l, const char *key, size_t key_len)
{
    if (fflush(l->mem) != 0)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct record *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (l->keys_len + key_len > l->keys_cap) {
        size_t cap = l->keys_cap ? l->keys_cap : 1 << 16;
        while (cap < l->keys_len + key_len)
            cap *= 2;
        char *keys = realloc(l->keys, cap);
        if (!keys)
            return -1;
        l->keys = keys;
        l->keys_cap = cap;
    }
    memcpy(l->keys + l->keys_len, key, key_len);
    struct record *r = &l->v[l->n++];
    r->key_off = l->keys_len;
    r->key_len = (uint32_t)key_len;
    r->data_off = l->record_start;
    r->data_len = (uint32_t)(l->mem_size - l->record_start);
    r->seq = l->seq++;
    l->keys_len += key_len;
    l->record_start = l->mem_size;
    l->count++;
    if (!l->error && l->mem_size + l->keys_len > LISTING_MEMORY && spill(l) != 0) {
        /* Keep the records in memory: better a large process than lost
         * lines. listing_finish reports the error. */
        l->error = errno ? errno : EIO;
        if (!l->mem && open_mem(l) != 0)
            return -1;
    }
    return 0;
}

/* Makes *BUF hold at least NEED bytes. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    char *nb = realloc(*buf, need);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = need;
    return 0;
}

/* Loads the next record of RUN; live = false at its end. -1 on a read
 * error. */
static int run_next(struct run *run)
{
    uint32_t head[2];
    size_t got = fread(head, 1, sizeof head, run->f);
    if (got == 0 && feof(run->f)) {
        run->live = false;
        return 0;
    }
    if (got != sizeof head || fread(&run->seq, sizeof run->seq, 1, run->f) != 1)
        goto short_read;
    run->key_len = head[0];
    run->data_len = head[1];
    if (reserve(&run->key, &run->key_cap, run->key_len) != 0 ||
        reserve(&run->data, &run->data_cap, run->data_len) != 0)
        return -1;
    if ((run->key_len && fread(run->key, run->key_len, 1, run->f) != 1) ||
        (run->data_len && fread(run->data, run->data_len, 1, run->f) != 1))
        goto short_read;
    run->live = true;
    return 0;
short_read:
    if (!ferror(run->f))
        errno = EIO; /* the file was shorter than what was written */
    return -1;
}

static int run_cmp(const struct run *a, const struct run *b)
{
    return compare(a->key, a->key_len, a->seq, b->key, b->key_len, b->seq);
}

static void free_runs(listing *l)
{
    for (size_t i = 0; i < l->nruns; i++) {
        fclose(l->runs[i].f);
        free(l->runs[i].key);
        free(l->runs[i].data);
    }
    free(l->runs);
    l->runs = NULL;
    l->nruns = 0;
}

/* Merges the runs (the records still in memory are spilled as the last
 * run first, so there is one merge path). */
static int merge_runs(listing *l)
{
    for (size_t i = 0; i < l->nruns; i++)
        if (run_next(&l->runs[i]) != 0)
            return -1;
    /* A linear pick among the runs: there are few (a run per
     * LISTING_MEMORY bytes of output). */
    for (;;) {
        struct run *best = NULL;
        for (size_t i = 0; i < l->nruns; i++) {
            struct run *r = &l->runs[i];
            if (r->live && (!best || run_cmp(r, best) < 0))
                best = r;
        }
        if (!best)
            return 0;
        if (!write_all(l->out, best->data, best->data_len))
            return 0; /* stdout's own error is reported at the end */
        if (run_next(best) != 0)
            return -1;
    }
}

int listing_finish(listing *l)
{
    int rc = 0, err = l->error;
    if (fflush(l->mem) != 0)
        return -1;
    if (l->nruns && !err && l->n && spill(l) != 0)
        err = errno ? errno : EIO;
    if (l->nruns && !err) {
        if (merge_runs(l) != 0)
            err = errno ? errno : EIO;
    } else {
        /* Everything is in memory (or a spill failed: write what is
         * here, sorted, after what the runs hold). */
        if (l->nruns && merge_runs(l) != 0 && !err)
            err = errno ? errno : EIO;
        sort_records(l);
        for (size_t i = 0; i < l->n; i++)
            if (!write_all(l->out, l->mem_buf + l->v[i].data_off, l->v[i].data_len))
                break;
    }
    free_runs(l);
    if (reset_memory(l) != 0 && !err)
        err = ENOMEM;
    l->error = 0;
    if (err) {
        errno = err;
        rc = -1;
    }
    return rc;
}

void listing_free(listing *l)
{
    if (!l)
        return;
    free_runs(l);
    if (l->mem)
        fclose(l->mem);
    free(l->mem_buf);
    free(l->keys);
    free(l->v);
    free(l);
}
