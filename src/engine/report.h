/*
 * report.h — how one verdict is shown, the same in every command: the JSON
 * Lines object with DESIGN.md's stable field names, and the short words of
 * the human output.
 */
#ifndef PYCACHE_REPORT_H
#define PYCACHE_REPORT_H

#include <stdio.h>

#include "engine/output.h"

/* Writes one JSON Lines object for the cache file PATH judged as V:
 * path, status, reason, source, kind, implementation, python, tag, opt,
 * magic, mode, mtime, source_size, hash, size (unknown values null). STATUS
 * overrides V's status when not NULL (e.g. "missing"); EXTRA_KEY/EXTRA_VALUE
 * add one more string field when EXTRA_KEY is not NULL (e.g. "action"). */
void report_json_verdict(const char *path, const char *source,
                         const pyc_verdict *v, const char *status,
                         const char *extra_key, const char *extra_value);

/* As report_json_verdict, for a member of an archive: two more fields,
 * "archive" (the archive's path) and "member" (the name inside it), after
 * the others; ARCHIVE NULL writes neither (a file of a tree). */
void report_json_verdict_member(const char *path, const char *source,
                                const pyc_verdict *v, const char *status,
                                const char *extra_key, const char *extra_value,
                                const char *archive, const char *member);

/* The interpreter a verdict's file belongs to (the judge, else the header's
 * magic), or NULL. */
const pyc_magic *report_python_of(const pyc_verdict *v);

/* "3.11" / "pypy 3.10" for M into BUF; "-" for NULL. */
void report_python_label(const pyc_magic *m, char *buf, size_t cap);

#endif /* PYCACHE_REPORT_H */
