/*
 * listing.h — the per-file lines of a tree command, written in path order.
 *
 * A parallel scan meets files in no fixed order, yet the same tree must give
 * the same bytes on every run, whatever the thread count (STYLE.md). So the
 * commands do not write their per-file lines (human, JSON Lines, NUL paths)
 * to stdout as they come: each line is a record with a key (its path's
 * bytes), and the listing writes all records sorted by key (then by the
 * order they came in, for records with the same key) when the command ends.
 *
 * Memory stays bounded whatever the tree's size, as sort(1) does it: records
 * gather in memory up to a budget (LISTING_MEMORY), are then sorted and
 * written to an unlinked temporary file as one sorted run, and the runs are
 * merged at the end. A 1,000,000-line `clean -n` holds at most the budget
 * plus one read buffer per run.
 *
 * Not thread-safe: a scan's callback is serialised, and that is where the
 * records are added.
 */
#ifndef PYCACHE_ENGINE_LISTING_H
#define PYCACHE_ENGINE_LISTING_H

#include <stddef.h>
#include <stdio.h>

/* Records held in memory before a sorted run is spilled to a temporary
 * file (bytes of keys and lines together). */
#define LISTING_MEMORY (8u << 20)

typedef struct listing listing;

/* A new, empty listing that will write to OUT. NULL with errno = ENOMEM. */
listing *listing_new(FILE *out);

/* The stream one record is written to: everything written between
 * listing_stream and listing_commit is one record (one or more lines, with
 * their line ends). Never NULL once listing_new succeeded. */
FILE *listing_stream(listing *l);

/* Ends the record written since the last commit, under KEY (KEY_LEN bytes:
 * the path, compared as bytes). Returns 0, or -1 with errno (the temporary
 * file could not be written: ENOSPC, EIO...; the listing is then broken and
 * listing_finish reports it again). */
int listing_commit(listing *l, const char *key, size_t key_len);

/* Writes every record to OUT, sorted, and empties the listing. Returns 0,
 * or -1 with errno when a spilled run could not be written or read back.
 * The records of a broken listing that are still in memory are written
 * all the same, so as little as possible is lost. */
int listing_finish(listing *l);

/* How many records were committed since listing_new. */
size_t listing_count(const listing *l);

/* Frees L (NULL is fine), and any temporary files. */
void listing_free(listing *l);

#endif /* PYCACHE_ENGINE_LISTING_H */
