/*
 * report.h — how one verdict is shown, the same in every command: the JSON
 * Lines object with DESIGN.md's stable field names, and the short words of
 * the human output.
 */
#ifndef PYCACHE_REPORT_H
#define PYCACHE_REPORT_H

#include <stdbool.h>
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

/* The same object, left open for a command's own fields (verify: several
 * of them): begin writes the stable fields on the listing; the caller adds
 * its fields with cli_json_*, then end closes the object and its record. */
void report_json_verdict_begin(cli_json *j, const char *path, const char *source,
                               const pyc_verdict *v, const char *status);
void report_json_verdict_end(cli_json *j, const char *path);

/* The same object for a fresh cache that pyc_verdict_racy calls racy, with
 * one more field, "racy": true (check). */
void report_json_verdict_racy(const char *path, const char *source, const pyc_verdict *v,
                              const char *status);

/* Writes null for every field of the stable verdict object that comes
 * after AFTER ("reason": source, kind, ... size), for objects that describe
 * something else than a judged file (an error, a directory). */
void report_json_fields_null(cli_json *j, const char *after);

/* One GitHub Actions annotation line for PATH (error, else warning), as a
 * listing record. */
void report_github(const char *path, bool error, const char *title, const char *message);
/* The same at LINE of PATH (a source that does not compile). */
void report_github_line(const char *path, long line, bool error, const char *title,
                        const char *message);
/* The annotation of a finding: ::error for a dangerous or expected status,
 * ::warning for clutter, nothing for a fine one (pyc_status_severity). V
 * may be NULL (missing: PYTHON names the interpreter expected). */
void report_github_verdict(const char *path, pyc_status status, const pyc_verdict *v,
                           const pyc_magic *python);

/* Something under PATH could not be done (OP: "open", "read"...) and no
 * record of a file will say it (a directory that cannot be read, a PATH
 * that does not exist): one line on stderr, and in --json a record
 * {"path", "status": "error",
 * "reason": OP, ..., "error": strerror(ERR)}; in --format=github an
 * ::error annotation. The caller merges exit status 3. */
void report_error(const char *op, const char *path, int err);
/* The record alone, without the stderr line (an error counted, not shown). */
void report_error_record(const char *op, const char *path, int err);
/* The same two with DETAIL, when not NULL, saying what is wrong in place of
 * strerror(ERR) (an archive's unsafe member: scan_item.error_detail). */
void report_error_detail(const char *op, const char *path, int err, const char *detail);
void report_error_record_detail(const char *op, const char *path, int err,
                                const char *detail);

/* As report_json_verdict, for a member of an archive: two more fields,
 * "archive" (the archive's path) and "member" (the name inside it), after
 * the others; ARCHIVE NULL writes neither (a file of a tree). */
void report_json_verdict_member(const char *path, const char *source,
                                const pyc_verdict *v, const char *status,
                                const char *extra_key, const char *extra_value,
                                const char *archive, const char *member);

/* As report_json_verdict_member, for a path of a container image: one more
 * field, "layer" (the digest of the layer that last wrote the file), after
 * "member". */
void report_json_verdict_image(const char *path, const char *source, const pyc_verdict *v,
                               const char *status, const char *archive, const char *member,
                               const char *layer);

/* The interpreter a verdict's file belongs to (the judge, else the header's
 * magic), or NULL. */
const pyc_magic *report_python_of(const pyc_verdict *v);

/* "3.11" / "pypy 3.10" for M into BUF; "-" for NULL. */
void report_python_label(const pyc_magic *m, char *buf, size_t cap);

#endif /* PYCACHE_REPORT_H */
