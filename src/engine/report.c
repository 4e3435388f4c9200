/*
 * report.c — one verdict as JSON (DESIGN.md's fields), shared by every
 * command that reports cache files, so the field names cannot drift apart.
 */
#include <stdio.h>
#include <string.h>

#include "engine/report.h"

const pyc_magic *report_python_of(const pyc_verdict *v)
{
    if (v->judge)
        return v->judge;
    if (v->header_read)
        return v->header.magic;
    return NULL;
}

/* Writes V in decimal at P; returns the digit count. */
static size_t put_uint(char *p, unsigned v)
{
    char digits[12];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(p, digits + n, sizeof digits - n);
    return sizeof digits - n;
}

void report_python_label(const pyc_magic *m, char *buf, size_t cap)
{
    /* By hand, not snprintf: check labels every file it lists, and the
     * format call cost more instructions than judging the file (callgrind). */
    char label[64];
    size_t k = 0;
    if (!m) {
        label[k++] = '-';
    } else {
        if (m->implementation != PYC_IMPL_CPYTHON) {
            const char *impl = pyc_implementation_name(m->implementation);
            size_t n = strnlen(impl, 32);
            memcpy(label, impl, n);
            k = n;
            label[k++] = ' ';
        }
        k += put_uint(label + k, (unsigned)m->major);
        label[k++] = '.';
        k += put_uint(label + k, (unsigned)m->minor);
    }
    if (cap == 0)
        return;
    if (k >= cap)
        k = cap - 1;
    memcpy(buf, label, k);
    buf[k] = '\0';
}

static void verdict_object(const char *path, const char *source, const pyc_verdict *v,
                           const char *status, const char *extra_key,
                           const char *extra_value, bool racy, const char *archive,
                           const char *member, const char *layer);

void report_json_verdict(const char *path, const char *source,
                         const pyc_verdict *v, const char *status,
                         const char *extra_key, const char *extra_value)
{
    verdict_object(path, source, v, status, extra_key, extra_value, false, NULL, NULL, NULL);
}

void report_json_verdict_member(const char *path, const char *source,
                                const pyc_verdict *v, const char *status,
                                const char *extra_key, const char *extra_value,
                                const char *archive, const char *member)
{
    verdict_object(path, source, v, status, extra_key, extra_value, false, archive, member,
                   NULL);
}

void report_json_verdict_image(const char *path, const char *source, const pyc_verdict *v,
                               const char *status, const char *archive, const char *member,
                               const char *layer)
{
    verdict_object(path, source, v, status, NULL, NULL, false, archive, member, layer);
}

void report_json_verdict_racy(const char *path, const char *source, const pyc_verdict *v,
                              const char *status)
{
    verdict_object(path, source, v, status, NULL, NULL, true, NULL, NULL, NULL);
}

static void verdict_fields(cli_json *jp, const char *path, const char *source,
                           const pyc_verdict *v, const char *status);

static void verdict_object(const char *path, const char *source, const pyc_verdict *v,
                           const char *status, const char *extra_key,
                           const char *extra_value, bool racy, const char *archive,
                           const char *member, const char *layer)
{
    cli_json j;
    verdict_fields(&j, path, source, v, status);
    if (extra_key)
        cli_json_str(&j, extra_key, extra_value);
    if (racy)
        cli_json_bool(&j, "racy", true);
    if (archive) {
        cli_json_str(&j, "archive", archive);
        cli_json_str(&j, "member", member);
    }
    if (layer)
        cli_json_str(&j, "layer", layer);
    cli_json_end(&j);
    cli_listing_end(path, strlen(path));
}

void report_json_verdict_begin(cli_json *j, const char *path, const char *source,
                               const pyc_verdict *v, const char *status)
{
    verdict_fields(j, path, source, v, status);
}

void report_json_verdict_end(cli_json *j, const char *path)
{
    cli_json_end(j);
    cli_listing_end(path, strlen(path));
}

/* Begins the object on the listing and writes the stable fields. */
static void verdict_fields(cli_json *jp, const char *path, const char *source,
                           const pyc_verdict *v, const char *status)
{
    cli_json j;
    char python[32];
    const pyc_magic *m = report_python_of(v);
    const pyc_header *h = &v->header;
    /* Header fields are known once the bytes holding them were read. */
    bool have_magic = v->header_read && h->length >= 4;
    bool header_ok = v->header_read && v->header_status != PYC_HEADER_TRUNCATED &&
                     v->header_status != PYC_HEADER_UNKNOWN_MAGIC;
    bool timestamp = header_ok && h->mode == PYC_MODE_TIMESTAMP;

    cli_json_begin(&j, cli_listing());
    cli_json_str(&j, "path", path);
    cli_json_str(&j, "status", status ? status : pyc_status_name(v->status));
    cli_json_str(&j, "reason",
                 v->reason == PYC_REASON_NONE ? NULL : pyc_reason_name(v->reason));
    cli_json_str(&j, "source", source);
    cli_json_str(&j, "kind", v->name.kind == PYC_KIND_NONE
                                 ? NULL
                                 : pyc_cache_kind_name(v->name.kind));
    if (m) {
        snprintf(python, sizeof python, "%d.%d", m->major, m->minor);
        cli_json_str(&j, "implementation", pyc_implementation_name(m->implementation));
        cli_json_str(&j, "python", python);
    } else {
        cli_json_null(&j, "implementation");
        cli_json_null(&j, "python");
    }
    if (v->name.tag_len && v->cache_name)
        cli_json_strn(&j, "tag", v->cache_name + v->name.tag_off, v->name.tag_len);
    else
        cli_json_str(&j, "tag", m ? m->tag : NULL);
    if (v->name.kind == PYC_KIND_NONE || v->name.opt < 0)
        cli_json_null(&j, "opt");
    else
        cli_json_int(&j, "opt", v->name.opt);
    if (have_magic)
        cli_json_int(&j, "magic", (int64_t)(h->magic_word & 0xFFFF));
    else
        cli_json_null(&j, "magic");
    if (header_ok)
        cli_json_str(&j, "mode", pyc_mode_name(h->mode));
    else
        cli_json_null(&j, "mode");
    if (timestamp)
        cli_json_int(&j, "mtime", (int64_t)h->mtime);
    else
        cli_json_null(&j, "mtime");
    if (timestamp && h->layout >= PYC_LAYOUT_MTIME_SIZE)
        cli_json_int(&j, "source_size", (int64_t)h->source_size);
    else
        cli_json_null(&j, "source_size");
    if (header_ok && h->mode != PYC_MODE_TIMESTAMP)
        cli_json_hex(&j, "hash", h->source_hash, sizeof h->source_hash);
    else
        cli_json_null(&j, "hash");
    if (v->file_size >= 0)
        cli_json_int(&j, "size", v->file_size);
    else
        cli_json_null(&j, "size");
    *jp = j;
}

void report_json_fields_null(cli_json *j, const char *after)
{
    static const char *const fields[] = {
        "path", "status", "reason", "source", "kind", "implementation", "python",
        "tag", "opt", "magic", "mode", "mtime", "source_size", "hash", "size",
    };
    size_t i = 0;
    while (i < sizeof fields / sizeof *fields && strcmp(fields[i], after) != 0)
        i++;
    for (i++; i < sizeof fields / sizeof *fields; i++)
        cli_json_null(j, fields[i]);
}

/* A GitHub Actions workflow command's property value: '%', CR, LF, ':'
 * and ',' are %-escaped (actions/toolkit, command.ts escapeProperty). */
static void github_property(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '%': fputs("%25", f); break;
        case '\r': fputs("%0D", f); break;
        case '\n': fputs("%0A", f); break;
        case ':': fputs("%3A", f); break;
        case ',': fputs("%2C", f); break;
        default: fputc(*s, f);
        }
    }
}

/* ... and its message: '%', CR, LF (escapeData). */
static void github_data(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '%': fputs("%25", f); break;
        case '\r': fputs("%0D", f); break;
        case '\n': fputs("%0A", f); break;
        default: fputc(*s, f);
        }
    }
}

void report_github(const char *path, bool error, const char *title, const char *message)
{
    report_github_line(path, 0, error, title, message);
}

void report_github_line(const char *path, long line, bool error, const char *title,
                        const char *message)
{
    FILE *f = cli_listing();
    fputs(error ? "::error file=" : "::warning file=", f);
    github_property(f, path);
    if (line > 0)
        fprintf(f, ",line=%ld", line);
    fputs(",title=", f);
    github_property(f, title);
    fputs("::", f);
    github_data(f, message);
    fputc('\n', f);
    cli_listing_end(path, strlen(path));
}

void report_github_verdict(const char *path, pyc_status status, const pyc_verdict *v,
                           const pyc_magic *python)
{
    pyc_severity sev = pyc_status_severity(status);
    if (sev == PYC_SEVERITY_FINE)
        return;
    char label[32], title[64], message[256];
    report_python_label(v ? report_python_of(v) : python, label, sizeof label);
    const char *reason = v ? pyc_reason_name(v->reason) : "no-cache";
    snprintf(title, sizeof title, "pycache: %s", pyc_status_name(status));
    snprintf(message, sizeof message, "%s%s%s (%s)", pyc_status_name(status),
             *reason ? ": " : "", reason, label);
    report_github(path, sev != PYC_SEVERITY_CLUTTER, title, message);
}

void report_error(const char *op, const char *path, int err)
{
    cli_error_path(op, path, err);
    report_error_record(op, path, err);
}

void report_error_record(const char *op, const char *path, int err)
{
    report_error_record_detail(op, path, err, NULL);
}

void report_error_detail(const char *op, const char *path, int err, const char *detail)
{
    cli_error_detail(op, path, err, detail);
    report_error_record_detail(op, path, err, detail);
}

void report_error_record_detail(const char *op, const char *path, int err,
                                const char *detail)
{
    const char *why = detail ? detail : err ? strerror(err) : NULL;
    switch (cli_listing_format()) {
    case CLI_FORMAT_JSON: {
        cli_json j;
        cli_json_begin(&j, cli_listing());
        cli_json_str(&j, "path", path);
        cli_json_str(&j, "status", "error");
        cli_json_str(&j, "reason", op);
        report_json_fields_null(&j, "reason");
        cli_json_str(&j, "error", why);
        cli_json_end(&j);
        cli_listing_end(path, strlen(path));
        break;
    }
    case CLI_FORMAT_GITHUB: {
        char message[256];
        snprintf(message, sizeof message, "cannot %s: %s", op, why ? why : "failed");
        report_github(path, true, "pycache: error", message);
        break;
    }
    case CLI_FORMAT_HUMAN:
    case CLI_FORMAT_NUL:
        break;
    }
}
