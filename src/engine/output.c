/*
 * output.c — how the command line writes: JSON Lines, escaped paths for
 * humans, colour, byte counts and dates, and the final check that stdout
 * really received what was written.
 *
 * File names are bytes. In JSON they are written as Python's os.fsdecode
 * would decode them (UTF-8 with the surrogateescape error handler), so
 *   os.fsencode(json.loads(line)["path"])
 * gives the original bytes back; in human output and messages, bytes that
 * would break a line or a terminal are escaped (\n, \xNN).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>

#include "engine/listing.h"
#include "engine/output.h"

/* ---- exit statuses --------------------------------------------------------------- */

int cli_exit_merge(int a, int b)
{
    /* USAGE never reaches here in practice; rank it above IO all the same so
     * a merge cannot lose it. */
    static const int rank[] = {
        [CLI_EXIT_OK] = 0, [CLI_EXIT_FINDINGS] = 1,
        [CLI_EXIT_IO] = 2, [CLI_EXIT_USAGE] = 3,
    };
    int ra = (a >= 0 && a <= CLI_EXIT_IO) ? rank[a] : 3;
    int rb = (b >= 0 && b <= CLI_EXIT_IO) ? rank[b] : 3;
    return ra >= rb ? a : b;
}

/* ---- errors ------------------------------------------------------------------------ */

static const char *current_command;

void cli_set_command(const char *name)
{
    current_command = name;
}

const char *cli_command_name(void)
{
    return current_command;
}

void cli_message_prefix(void)
{
    if (current_command)
        fprintf(stderr, "pycache %s: ", current_command);
    else
        fputs("pycache: ", stderr);
}

/* Formats a message and writes it to stderr as one line: the values in it
 * (option arguments, file names) may hold newlines, escape sequences or
 * invalid UTF-8, which are written escaped (\n, \t, \r, \xNN) so that one
 * error is always one line and a terminal never obeys a control sequence
 * it was handed. Backslashes are kept as typed. */
void cli_vprint_message(FILE *f, const char *fmt, va_list ap)
{
    char small[512];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    char *msg = small;
    if ((size_t)n >= sizeof small) {
        msg = malloc((size_t)n + 1);
        if (!msg) {
            vfprintf(f, fmt, ap); /* unescaped beats silent */
            return;
        }
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    }
    const unsigned char *m = (const unsigned char *)msg;
    for (size_t i = 0; i < (size_t)n;) {
        size_t len = cli_utf8_sequence(m + i, (size_t)n - i);
        unsigned char c = m[i];
        if (len == 1 && c >= 0x20 && c != 0x7F)
            fputc(c, f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (len == 2 && c == 0xC2 && m[i + 1] < 0xA0)
            fprintf(f, "\\x%02x\\x%02x", c, m[i + 1]);
        else if (len > 1)
            fwrite(m + i, 1, len, f);
        else
            fprintf(f, "\\x%02x", c);
        i += len ? len : 1;
    }
    if (msg != small)
        free(msg);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* keep stdout and stderr in order on a shared terminal */
    cli_message_prefix();
    va_start(ap, fmt);
    cli_vprint_message(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_error_path(const char *op, const char *path, int err)
{
    fflush(stdout);
    cli_message_prefix();
    fprintf(stderr, "cannot %s '", op);
    cli_print_path(stderr, path);
    if (err)
        fprintf(stderr, "': %s\n", strerror(err));
    else
        fputs("'\n", stderr);
}

void cli_error_detail(const char *op, const char *path, int err, const char *detail)
{
    if (!detail) {
        cli_error_path(op, path, err);
        return;
    }
    fflush(stdout);
    cli_message_prefix();
    fprintf(stderr, "cannot %s '", op);
    cli_print_path(stderr, path);
    fputs("': ", stderr);
    /* One line, whatever libarchive's message holds. */
    for (const char *p = detail; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
    fputc('\n', stderr);
}

/* ---- UTF-8, as CPython decodes it ---------------------------------------------- */

static bool continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Mirrors Objects/stringlib/codecs.h utf8_decode (3.x; unchanged since 3.3)
 * and the callers' error ranges in unicode_decode_utf8: a sequence is valid
 * when it is RFC 3629 UTF-8 (no overlongs: C0, C1, E0 80-9F, F0 80-8F; no
 * surrogates: ED A0-BF; nothing above U+10FFFF: F4 90-BF, F5-FF). On error
 * CPython escapes the start byte and whichever continuation bytes it had
 * accepted, then resumes; since a continuation byte can never start a
 * sequence, resuming one byte later and escaping each rejected byte on its
 * own gives exactly the same result, including for truncated sequences at
 * the end ("unexpected end of data": every remaining byte escaped). */
size_t cli_utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* a continuation byte, or an overlong C0/C1 lead */
    if (c < 0xE0)
        return n >= 2 && continuation(s[1]) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || !continuation(s[1]) || !continuation(s[2]))
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* a surrogate, U+D800-U+DFFF */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || !continuation(s[1]) || !continuation(s[2]) || !continuation(s[3]))
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* ---- paths for humans ---------------------------------------------------------------- */

void cli_print_path(FILE *f, const char *path)
{
    const unsigned char *s = (const unsigned char *)path;
    size_t n = strlen(path);
    size_t i = 0, run = 0; /* s[run..i) is printable as it is */
    while (i < n) {
        unsigned char c = s[i];
        /* Plain ASCII, the common case, costs no call at all. */
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            i++;
            continue;
        }
        size_t len = c < 0x80 ? 1 : cli_utf8_sequence(s + i, n - i);
        if (len > 1 && !(len == 2 && c == 0xC2 && s[i + 1] < 0xA0)) {
            i += len; /* valid UTF-8, not a C1 control: as it is */
            continue;
        }
        fwrite(s + run, 1, i - run, f);
        if (c == '\\') {
            fputs("\\\\", f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (len == 2) {
            /* C1 controls U+0080-U+009F: some terminals obey them. */
            fprintf(f, "\\x%02x\\x%02x", c, s[i + 1]);
        } else {
            fprintf(f, "\\x%02x", c);
            len = 1;
        }
        i += len ? len : 1;
        run = i;
    }
    fwrite(s + run, 1, i - run, f);
}

/* ---- JSON --------------------------------------------------------------------------- */

void cli_json_write_string(FILE *f, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* s[run..i) is written as it is */
    fputc('"', f);
    while (i < len) {
        unsigned char c = s[i];
        /* Plain printable ASCII, the common case, is written in runs (one
         * fwrite, not a locked fputc per byte: callgrind). */
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t n = c < 0x80 ? 1 : cli_utf8_sequence(s + i, len - i);
        if (n > 1) {
            i += n; /* valid UTF-8: as it is */
            continue;
        }
        fwrite(s + run, 1, i - run, f);
        if (n == 0) {
            /* surrogateescape: the byte 0xXY decodes to U+DCXY. */
            char esc[7] = {'\\', 'u', 'd', 'c', hex[c >> 4], hex[c & 15], 0};
            fputs(esc, f);
        } else {
            switch (c) {
            case '"': fputs("\\\"", f); break;
            case '\\': fputs("\\\\", f); break;
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            default: {
                char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                fputs(esc, f);
            }
            }
        }
        i++;
        run = i;
    }
    fwrite(s + run, 1, i - run, f);
    fputc('"', f);
}

void cli_json_begin(cli_json *j, FILE *f)
{
    j->f = f;
    j->fields = 0;
    fputc('{', f);
}

static void json_key(cli_json *j, const char *key)
{
    if (j->fields++)
        fputs(", ", j->f);
    cli_json_write_string(j->f, key, strlen(key));
    fputs(": ", j->f);
}

void cli_json_str(cli_json *j, const char *key, const char *value)
{
    if (!value) {
        cli_json_null(j, key);
        return;
    }
    cli_json_strn(j, key, value, strlen(value));
}

void cli_json_strn(cli_json *j, const char *key, const char *value, size_t len)
{
    if (!value) {
        cli_json_null(j, key);
        return;
    }
    json_key(j, key);
    cli_json_write_string(j->f, value, len);
}

void cli_json_int(cli_json *j, const char *key, int64_t value)
{
    json_key(j, key);
    /* By hand: printf's machinery costs more than the number (callgrind). */
    char buf[24], *p = buf + sizeof buf;
    uint64_t u = value < 0 ? -(uint64_t)value : (uint64_t)value;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (value < 0)
        *--p = '-';
    fwrite(p, 1, (size_t)(buf + sizeof buf - p), j->f);
}

void cli_json_bool(cli_json *j, const char *key, bool value)
{
    json_key(j, key);
    fputs(value ? "true" : "false", j->f);
}

void cli_json_null(cli_json *j, const char *key)
{
    json_key(j, key);
    fputs("null", j->f);
}

void cli_json_raw(cli_json *j, const char *key, const char *json)
{
    json_key(j, key);
    fputs(json ? json : "null", j->f);
}

void cli_json_hex(cli_json *j, const char *key, const void *bytes, size_t len)
{
    if (!bytes) {
        cli_json_null(j, key);
        return;
    }
    json_key(j, key);
    fputc('"', j->f);
    for (size_t i = 0; i < len; i++)
        fprintf(j->f, "%02x", ((const unsigned char *)bytes)[i]);
    fputc('"', j->f);
}

void cli_json_end(cli_json *j)
{
    fputs("}\n", j->f);
}

/* ---- colour ----------------------------------------------------------------------- */

bool cli_color_enabled(cli_color_mode mode, FILE *f)
{
    if (mode == CLI_COLOR_ALWAYS)
        return true;
    if (mode == CLI_COLOR_NEVER)
        return false;
    /* https://no-color.org: present and not empty disables colour. */
    const char *no_color = getenv("NO_COLOR");
    if (no_color && *no_color)
        return false;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return false;
    return isatty(fileno(f));
}

const char *cli_status_sgr(pyc_status status)
{
    switch (status) {
    case PYC_FRESH: return "\033[32m";
    case PYC_STALE: return "\033[33m";
    case PYC_STALE_USED: return "\033[1;31m";
    case PYC_CORRUPT: return "\033[31m";
    case PYC_ORPHAN:
    case PYC_SOURCELESS: return "\033[35m";
    default: return "\033[2m";
    }
}

/* ---- numbers and dates ------------------------------------------------------------ */

void cli_format_bytes(char *buf, size_t cap, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    /* Round first, so 1048575 bytes is "1.0 MiB", not "1024.0 KiB". */
    while (u + 1 < sizeof units / sizeof units[0] && v >= 1023.95) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[u]);
}

void cli_format_time_utc(char *buf, size_t cap, int64_t seconds)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    if ((int64_t)t != seconds || !gmtime_r(&t, &tm) ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, cap, "%lld", (long long)seconds);
    }
}

/* ---- the end of stdout ------------------------------------------------------------ */

bool cli_stdout_failed(void)
{
    return ferror(stdout) != 0;
}

int cli_finish_stdout(void)
{
    errno = 0;
    int failed = fflush(stdout) != 0;
    int err = errno;
    if (!failed && ferror(stdout)) {
        /* An earlier write failed and its errno is gone. */
        failed = 1;
        err = 0;
    }
    if (!failed && fclose(stdout) != 0) {
        failed = 1;
        err = errno;
    }
    if (!failed)
        return CLI_EXIT_OK;
    if (err == EPIPE)
        return CLI_EXIT_OK; /* the reader went away: not ours to report */
    if (err)
        cli_error("cannot write to standard output: %s", strerror(err));
    else
        cli_error("cannot write to standard output");
    return CLI_EXIT_IO;
}

/* ---- the listing ------------------------------------------------------------------- */

static listing *the_listing;
static cli_format listing_format_;
static bool listing_failed;

int cli_listing_start(cli_format format)
{
    listing_format_ = format;
    the_listing = listing_new(stdout);
    return the_listing ? 0 : -1;
}

FILE *cli_listing(void)
{
    return the_listing ? listing_stream(the_listing) : stdout;
}

cli_format cli_listing_format(void)
{
    return listing_format_;
}

void cli_listing_end(const char *key, size_t key_len)
{
    if (!the_listing)
        return;
    if (listing_commit(the_listing, key, key_len) != 0 && !listing_failed) {
        listing_failed = true;
        cli_error("cannot keep the listing in order: %s", strerror(errno));
    }
}

int cli_listing_finish(void)
{
    if (!the_listing)
        return CLI_EXIT_OK;
    int status = CLI_EXIT_OK;
    if (listing_finish(the_listing) != 0) {
        cli_error("cannot write the listing in order: %s", strerror(errno));
        status = CLI_EXIT_IO;
    } else if (listing_failed) {
        status = CLI_EXIT_IO;
    }
    listing_free(the_listing);
    the_listing = NULL;
    return status;
}

/* ---- display width ------------------------------------------------------------------- */

/* Columns of code point CP on a terminal: the East Asian Wide and
 * Fullwidth blocks and emoji take two, combining marks and zero-width
 * characters none (the ranges wcwidth(3) of glibc's UTF-8 locales gives,
 * without depending on the locale this process runs in). */
static int codepoint_width(uint32_t cp)
{
    static const struct {
        uint32_t lo, hi;
    } zero[] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
        {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x200B, 0x200F},
        {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    }, wide[] = {
        {0x1100, 0x115F}, {0x2E80, 0x303E}, {0x3041, 0x33FF}, {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF}, {0xA000, 0xA4CF}, {0xAC00, 0xD7A3}, {0xF900, 0xFAFF},
        {0xFE30, 0xFE4F}, {0xFF00, 0xFF60}, {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F},
        {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
    };
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        if (cp >= zero[i].lo && cp <= zero[i].hi)
            return 0;
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        if (cp >= wide[i].lo && cp <= wide[i].hi)
            return 2;
    return 1;
}

size_t cli_path_width(const char *path)
{
    const unsigned char *m = (const unsigned char *)path;
    size_t n = strlen(path), w = 0;
    for (size_t i = 0; i < n;) {
        size_t len = cli_utf8_sequence(m + i, n - i);
        unsigned char c = m[i];
        if (len == 1 && c >= 0x20 && c != 0x7F && c != '\\') {
            w += 1;
        } else if (len == 1 && (c == '\n' || c == '\t' || c == '\r' || c == '\\')) {
            w += 2;
        } else if (len == 2 && c == 0xC2 && m[i + 1] < 0xA0) {
            w += 8; /* a C1 control: \xc2\x8N */
        } else if (len > 1) {
            uint32_t cp = c & (0xFF >> (len + 1));
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | (m[i + k] & 0x3F);
            w += (size_t)codepoint_width(cp);
        } else {
            w += 4; /* \xNN */
        }
        i += len ? len : 1;
    }
    return w;
}
