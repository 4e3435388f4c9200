/*
 * fuzz_archive.c — libFuzzer target for the archive front end
 * (src/engine/archive.c): the input is an archive in memory, read by
 * archive_scan_memory as every zip, tar and compression libarchive bids
 * for (a tar holding a container image: its layers applied, engine/image.c),
 * judged once as extracted files (each --extract-mtime model) and once
 * as zipimport would (the central directory parsed by archive.c itself).
 * Checked besides memory safety: every item the callback gets is well
 * formed — a path that is the archive's name or ARCHIVE/member, a member
 * name with no '..' component and no leading '/', statuses and reasons in
 * range, a cache item with a verdict, an error with an operation — and the
 * scan returns 0 or -1 (an unreadable archive), never anything else.
 *
 *   make fuzz FUZZ_TARGETS=fuzz_archive   (tests/fuzz/README.md)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/archive.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define SHOWN "in.zip"

/* Whether NAME has a ".." component (an extractor would climb out). */
static int has_dotdot(const char *name)
{
    for (const char *p = name; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n;
        if (*p == '/')
            p++;
    }
    return 0;
}

static int on_item(const archive_item *it, void *ctx)
{
    size_t *count = ctx;
    (*count)++;
    CHECK(it->path && strncmp(it->path, SHOWN, strlen(SHOWN)) == 0);
    /* The archive, or one image of an index of several: SHOWN@sha256:HEX. */
    CHECK(it->archive && strncmp(it->archive, SHOWN, strlen(SHOWN)) == 0);
    CHECK(it->archive[strlen(SHOWN)] == '\0' ||
          (strncmp(it->archive + strlen(SHOWN), "@sha256:", 8) == 0 &&
           strlen(it->archive) == strlen(SHOWN) + 8 + 64));
    size_t alen = strlen(it->archive);
    CHECK(strncmp(it->path, it->archive, alen) == 0);
    if (it->member) {
        CHECK(it->path[alen] == '/');
        CHECK(strcmp(it->path + alen + 1, it->member) == 0);
    }
    switch (it->event) {
    case ARCHIVE_CACHE:
        CHECK(it->verdict && it->member);
        CHECK(it->member[0] != '/' && !has_dotdot(it->member));
        CHECK((unsigned)it->verdict->status < PYC_STATUS_COUNT);
        CHECK((unsigned)it->verdict->reason < PYC_REASON_COUNT);
        CHECK(it->verdict->status != PYC_MISSING);
        break;
    case ARCHIVE_FOREIGN:
        CHECK(it->member && !it->verdict);
        break;
    case ARCHIVE_MISSING:
        CHECK(it->expect);
        break;
    case ARCHIVE_ERROR:
        CHECK(it->error_op);
        CHECK(it->error || it->error_detail);
        break;
    case ARCHIVE_DIRECTORY:
        CHECK(0); /* archive_fix only */
        break;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const archive_use uses[] = {ARCHIVE_USE_EXTRACTED, ARCHIVE_USE_ZIPIMPORT};
    static const archive_mtime models[] = {ARCHIVE_MTIME_ARCHIVE, ARCHIVE_MTIME_EPOCH};
    for (size_t u = 0; u < 2; u++) {
        archive_options aopt = {
            .use = uses[u], .mtime = models[u], .epoch = 315532800,
            .max_bytes = 64u << 20,
        };
        pyc_verdict_options vopt = {.deep = size & 1,
                                    .check_hash = (pyc_check_hash)(size % 3)};
        size_t count = 0;
        int rc = archive_scan_memory(data, size, SHOWN, &aopt, &vopt, on_item, &count);
        CHECK(rc == 0 || rc == -1);
        if (rc == -1)
            CHECK(count > 0); /* the reason was delivered */
    }
    return 0;
}
