/*
 * cmd_doctor.c — `pycache doctor`: audit a project against the habits that
 * keep bytecode out of trouble, and fix what can be fixed.
 *
 * The checks, each one line of a checklist (or one JSON object):
 *   gitignore    git ignores __pycache__/, *.pyc and *.pyo paths: asked of
 *                git itself (`git check-ignore --no-index` on probe paths),
 *                so nested .gitignore files, info/exclude and the global
 *                excludes count exactly as `git add` will apply them;
 *   tracked      no bytecode is tracked: `git ls-files -z`, each name
 *                classified by pyc_cache_name_parse as the scan does;
 *   dangerous    no bytecode CPython would load wrongly or fail on:
 *                stale-used (an unchecked-hash pyc whose source changed),
 *                sourceless (a legacy NAME.pyc imported without NAME.py),
 *                corrupt — judged by scan_run, as `pycache check` does;
 *   stale        (a note) caches import rejects or never reads: stale,
 *                orphan, shadowed, temp; harmless, `pycache prune` removes
 *                them;
 *   uninstalled  (a note) caches of interpreters not installed here;
 *   dontwritebytecode, pycacheprefix, docker
 *                (notes) the environment: PYTHONDONTWRITEBYTECODE,
 *                PYTHONPYCACHEPREFIX (and where caches then really go), and
 *                the ENV lines of the project's Dockerfiles/Containerfiles;
 *   hooks        (a note) whether .pre-commit-config.yaml runs pycache.
 * Problems make the exit status 1; notes never do. --fix appends the
 * missing ignore lines to the repository's top .gitignore, untracks tracked
 * bytecode (git rm --cached: the working files stay), runs `pycache prune`
 * (cmd_prune itself), then audits again and reports what is left.
 *
 * --staged is the pre-commit mode: the FILEs named (pre-commit passes the
 * staged files), else what `git diff --cached` lists, must hold no bytecode.
 *
 * git is run as a program (git.c says why); outside a work tree the git
 * checks are skipped, and the checklist says so.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/git.h"
#include "engine/pythons.h"
#include "engine/report.h"
#include "engine/scan.h"
#include "cli/treeopts.h"

enum {
    OPT_JSON = 256,
    OPT_FIX,
    OPT_STAGED,
    OPT_COLOR,
};

static const cli_option options[] = {
    {OPT_FIX, "fix", NULL,
     "append the missing ignore lines to .gitignore, untrack tracked bytecode "
     "(git rm --cached: the files stay), prune; then audit again"},
    {OPT_STAGED, "staged", NULL,
     "pre-commit mode: fail when a FILE (default: each file staged in git) is "
     "bytecode"},
    {OPT_JSON, "json", NULL,
     "JSON Lines: one object per check: check, ok, status, detail, fix, paths"},
    {'q', "quiet", NULL, "print nothing but errors: the exit status tells"},
    {OPT_COLOR, "color", "WHEN", "colour the checklist: auto, always or never"},
    {TREE_OPT_PREFIX, "prefix", "DIR",
     "audit as if 3.8+ kept its caches in DIR (default: $PYTHONPYCACHEPREFIX)"},
    TREE_NO_PREFIX_OPTION,
    {0, NULL, NULL, NULL},
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* A malloc'd string from a format; NULL when out of memory. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    /* vsnprintf twice: vasprintf is not POSIX.1-2008. */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Appends WORD to the malloc'd *S, SEP between words; on allocation failure
 * *S is kept as it was. */
static void append(char **s, const char *sep, const char *word)
{
    char *n = *s ? format("%s%s%s", *s, sep, word) : strdup(word);
    if (n) {
        free(*s);
        *s = n;
    }
}

/* WORD quoted for a POSIX shell when it needs to be. */
static char *shell_quote(const char *word)
{
    bool plain = *word != '\0';
    for (const char *s = word; *s; s++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    "_-./+,:@%=",
                    *s))
            plain = false;
    }
    if (plain)
        return strdup(word);
    size_t n = 2;
    for (const char *s = word; *s; s++)
        n += *s == '\'' ? 4 : 1;
    char *q = malloc(n + 1), *o = q;
    if (!q)
        return NULL;
    *o++ = '\'';
    for (const char *s = word; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

/* " PATH" (shell-quoted) for the fix commands, "" for the current
 * directory. */
static char *path_suffix(const char *path)
{
    if (strcmp(path, ".") == 0 || strcmp(path, "./") == 0)
        return strdup("");
    char *q = shell_quote(path);
    char *s = q ? format(" %s", q) : NULL;
    free(q);
    return s;
}

/* A file of the report: its display path, size (-1 unknown) and what it is
 * (a status word, static). */
struct entry {
    char *path;
    int64_t size;
    const char *what;
};

struct list {
    struct entry *v;
    size_t n, cap;
    uint64_t bytes;
    bool out_of_memory;
};

static void list_add(struct list *l, const char *path, int64_t size, const char *what)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct entry *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            l->out_of_memory = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    char *p = strdup(path);
    if (!p) {
        l->out_of_memory = true;
        return;
    }
    l->v[l->n++] = (struct entry){.path = p, .size = size, .what = what};
    if (size > 0)
        l->bytes += (uint64_t)size;
}

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The directory component that holds the last one is named __pycache__. */
static bool parent_is_pycache(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return false;
    const char *start = slash;
    while (start > path && start[-1] != '/')
        start--;
    return slash - start == 11 && memcmp(start, "__pycache__", 11) == 0;
}

/* Whether PATH names bytecode, by name alone: the classification scan.c
 * gives a directory entry (pyc_cache_name_parse), with "in __pycache__"
 * read from the path. */
static bool is_bytecode_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    pyc_cache_name name;
    return pyc_cache_name_parse(base, parent_is_pycache(path), false, &name) != PYC_KIND_NONE;
}

/* ---- the audit ---------------------------------------------------------------------------- */

/* What the ignore check probes: one hypothetical path per place bytecode
 * appears, at the top of PATH and one directory down (an anchored pattern
 * such as /__pycache__/ covers only the first), each tied to the line
 * --fix appends when git does not ignore it. */
enum { RULE_PYCACHE, RULE_PYC, RULE_PYO, RULE_COUNT };

static const char *const rule_lines[RULE_COUNT] = {"__pycache__/", "*.pyc", "*.pyo"};

static const struct {
    const char *path;
    int rule;
} probes[] = {
    {"__pycache__/pycache-doctor-probe.cpython-312.pyc", RULE_PYCACHE},
    {"pycache-doctor-probe/__pycache__/pycache-doctor-probe.cpython-312.pyc", RULE_PYCACHE},
    {"pycache-doctor-probe.pyc", RULE_PYC},
    {"pycache-doctor-probe/pycache-doctor-probe.pyc", RULE_PYC},
    {"pycache-doctor-probe.pyo", RULE_PYO},
    {"pycache-doctor-probe/pycache-doctor-probe.pyo", RULE_PYO},
};
#define NPROBES (sizeof probes / sizeof *probes)

enum git_state {
    GIT_MISSING = 0, /* no git program */
    GIT_OUTSIDE,     /* PATH is not in a work tree */
    GIT_FAILED,      /* git answered with an error */
    GIT_WORKTREE,
};

struct python_bytes {
    const pyc_magic *python; /* the final release of that version */
    uint64_t files, bytes;
};

#define MAX_PYTHONS 64

struct dockerfile {
    char *path;
    char *settings; /* "PYTHONDONTWRITEBYTECODE=1 (line 3), ..." or NULL */
};

struct audit {
    const char *path; /* PATH as given */
    int status;       /* CLI_EXIT_IO once something could not be read */

    enum git_state git;
    char git_message[256];
    char *toplevel;
    bool rule_ok[RULE_COUNT];
    char *rule_source[RULE_COUNT]; /* "FILE:LINE: PATTERN" of a rule that ignores */
    bool rule_global[RULE_COUNT];  /* ignored through a global excludes file only */
    bool ignore_failed;
    struct list tracked;
    bool tracked_failed;

    struct list dangerous;
    uint64_t dangerous_count[PYC_STATUS_COUNT];
    struct list clutter;
    uint64_t clutter_count[PYC_STATUS_COUNT];
    struct python_bytes uninstalled[MAX_PYTHONS];
    size_t nuninstalled;

    const char *dont_write;   /* $PYTHONDONTWRITEBYTECODE when non-empty */
    const char *prefix;       /* the prefix in force (treeopts.h's rule:
                                 --no-prefix, --prefix, $PYTHONPYCACHEPREFIX) */
    char *prefix_dir;         /* where the prefix keeps PATH's caches */
    bool prefix_dir_exists;

    struct dockerfile *docker;
    size_t ndocker, docker_cap;

    int hooks; /* -1 no config file, 0 no pycache hook in it, 1 one is there */
};

static void audit_free(struct audit *a)
{
    free(a->toplevel);
    for (int r = 0; r < RULE_COUNT; r++)
        free(a->rule_source[r]);
    list_free(&a->tracked);
    list_free(&a->dangerous);
    list_free(&a->clutter);
    free(a->prefix_dir);
    for (size_t i = 0; i < a->ndocker; i++) {
        free(a->docker[i].path);
        free(a->docker[i].settings);
    }
    free(a->docker);
}

/* ---- git -------------------------------------------------------------------------------- */

static void git_locate(struct audit *a)
{
    static const char *const args[] = {"rev-parse", "--show-toplevel", NULL};
    git_output o;
    if (git_run(a->path, args, NULL, 0, &o) != 0) {
        if (errno == ENOENT) {
            a->git = GIT_MISSING;
            snprintf(a->git_message, sizeof a->git_message, "git is not installed");
        } else {
            a->git = GIT_FAILED;
            snprintf(a->git_message, sizeof a->git_message, "cannot run git: %s",
                     strerror(errno));
            a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        }
        return;
    }
    if (o.status == 0) {
        size_t n = strcspn(o.out, "\n");
        a->toplevel = strndup(o.out, n);
        a->git = a->toplevel ? GIT_WORKTREE : GIT_FAILED;
        if (!a->toplevel)
            snprintf(a->git_message, sizeof a->git_message, "out of memory");
    } else {
        char line[200];
        git_error_line(&o, line, sizeof line);
        if (strncmp(line, "not a git repository", 20) == 0) {
            a->git = GIT_OUTSIDE;
            snprintf(a->git_message, sizeof a->git_message, "not in a git work tree");
        } else if (strstr(line, "must be run in a work tree")) {
            a->git = GIT_OUTSIDE;
            snprintf(a->git_message, sizeof a->git_message,
                     "not in a git work tree (a bare repository or a .git directory)");
        } else {
            /* e.g. "detected dubious ownership in repository at ..." */
            a->git = GIT_FAILED;
            snprintf(a->git_message, sizeof a->git_message, "git: %s",
                     *line ? line : "rev-parse failed");
        }
    }
    git_output_free(&o);
}

/* Asks `git check-ignore -v -n -z --stdin --no-index` about every probe:
 * one record per path (SOURCE, LINE, PATTERN, PATH), SOURCE empty when no
 * pattern matched and PATTERN starting with '!' when the last match is a
 * negation (not ignored). --no-index: the answer does not depend on
 * whether such a file happens to be tracked. */
static void git_check_ignores(struct audit *a)
{
    static const char *const args[] = {"check-ignore", "-v", "-n", "-z", "--stdin",
                                       "--no-index", NULL};
    char input[1024];
    size_t len = 0;
    for (size_t i = 0; i < NPROBES; i++) {
        size_t n = strlen(probes[i].path) + 1;
        memcpy(input + len, probes[i].path, n);
        len += n;
    }
    for (int r = 0; r < RULE_COUNT; r++)
        a->rule_ok[r] = true;

    git_output o;
    if (git_run(a->path, args, input, len, &o) != 0) {
        a->ignore_failed = true;
        cli_error("cannot run git check-ignore: %s", strerror(errno));
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        return;
    }
    if (o.status != 0 && o.status != 1) {
        char line[200];
        git_error_line(&o, line, sizeof line);
        cli_error("git check-ignore failed: %s", line);
        a->ignore_failed = true;
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        git_output_free(&o);
        return;
    }
    /* The global excludes file: what core.excludesFile says, else git's
     * default ($XDG_CONFIG_HOME/git/ignore or ~/.config/git/ignore); git
     * names the file it read in SOURCE, so comparing with the repository's
     * own files is enough: anything outside the work tree and .git/ is a
     * global one. */
    const char *p = o.out, *end = o.out + o.out_len;
    size_t records = 0;
    for (size_t i = 0; i < NPROBES && p < end; i++, records++) {
        const char *field[4];
        for (int f = 0; f < 4; f++) {
            field[f] = p;
            p += strnlen(p, (size_t)(end - p)) + 1;
            if (p > end)
                p = end;
        }
        int r = probes[i].rule;
        bool ignored = *field[0] && field[2][0] != '!';
        if (!ignored) {
            a->rule_ok[r] = false;
            continue;
        }
        if (!a->rule_source[r])
            a->rule_source[r] = format("%s:%s: %s", field[0], field[1], field[2]);
        /* Relative sources (".gitignore", "sub/.gitignore", ".git/info/exclude")
         * are the repository's own. */
        if (field[0][0] == '/')
            a->rule_global[r] = true;
    }
    git_output_free(&o);
    if (records != NPROBES) {
        cli_error("git check-ignore answered %zu of %zu paths", records, NPROBES);
        a->ignore_failed = true;
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
    }
}

/* `git ls-files -z` under PATH (paths relative to PATH), kept when the name
 * is bytecode. */
static void git_tracked(struct audit *a)
{
    static const char *const args[] = {"ls-files", "-z", "--cached", NULL};
    git_output o;
    if (git_run(a->path, args, NULL, 0, &o) != 0) {
        a->tracked_failed = true;
        cli_error("cannot run git ls-files: %s", strerror(errno));
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        return;
    }
    if (o.status != 0) {
        char line[200];
        git_error_line(&o, line, sizeof line);
        cli_error("git ls-files failed: %s", line);
        a->tracked_failed = true;
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        git_output_free(&o);
        return;
    }
    size_t plen = strlen(a->path);
    while (plen > 1 && a->path[plen - 1] == '/')
        plen--;
    for (const char *p = o.out; p < o.out + o.out_len; p += strlen(p) + 1) {
        if (!*p || !is_bytecode_name(p))
            continue;
        /* The display path: relative to the current directory, as the
         * scan's. The size is the working file's (git rm --cached keeps
         * it); -1 when it is gone from the work tree. */
        char *display = format("%.*s/%s", (int)plen, a->path, p);
        if (!display) {
            a->tracked.out_of_memory = true;
            continue;
        }
        struct stat st;
        int64_t size = fstatat(AT_FDCWD, display, &st, AT_SYMLINK_NOFOLLOW) == 0
                           ? (int64_t)st.st_size
                           : -1;
        list_add(&a->tracked, display, size, NULL);
        free(display);
    }
    git_output_free(&o);
}

/* ---- bytecode ---------------------------------------------------------------------------- */

/* The severity table is the library's (pyc_status_severity), so doctor,
 * check's default --fail-on and the pre-commit hooks agree. */
static bool is_dangerous(pyc_status st)
{
    return pyc_status_severity(st) == PYC_SEVERITY_DANGEROUS;
}

static bool is_clutter(pyc_status st)
{
    return pyc_status_severity(st) == PYC_SEVERITY_CLUTTER;
}

static void count_python(struct audit *a, const pyc_magic *m, int64_t size)
{
    if (!m || cli_python_installed(m))
        return;
    const pyc_magic *final = pyc_magic_final(m->implementation, m->major, m->minor);
    if (!final)
        final = m;
    size_t i;
    for (i = 0; i < a->nuninstalled; i++)
        if (a->uninstalled[i].python == final)
            break;
    if (i == a->nuninstalled) {
        if (i == MAX_PYTHONS)
            return;
        a->uninstalled[a->nuninstalled++] = (struct python_bytes){.python = final};
    }
    a->uninstalled[i].files++;
    if (size > 0)
        a->uninstalled[i].bytes += (uint64_t)size;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct audit *a = ctx;
    switch (it->event) {
    case SCAN_CACHE: {
        const pyc_verdict *v = it->verdict;
        if (v->error && v->reason == PYC_REASON_UNREADABLE) {
            cli_error_path(v->error_op ? v->error_op : "read", it->path, v->error);
            a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
            break;
        }
        if (is_dangerous(v->status)) {
            a->dangerous_count[v->status]++;
            list_add(&a->dangerous, it->path, v->file_size, pyc_status_name(v->status));
        } else if (is_clutter(v->status)) {
            a->clutter_count[v->status]++;
            list_add(&a->clutter, it->path, v->file_size, pyc_status_name(v->status));
        }
        count_python(a, report_python_of(v), v->file_size);
        break;
    }
    case SCAN_ERROR:
        cli_error_detail(it->error_op, it->path, it->error, it->error_detail);
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        break;
    case SCAN_FOREIGN:
    case SCAN_SOURCE:
    case SCAN_MISSING:
    case SCAN_PYCACHE_POST:
        break;
    }
    return 0;
}

/* PREFIX + the absolute path of PATH: where Python 3.8+ keeps PATH's
 * caches under PYTHONPYCACHEPREFIX (importlib._bootstrap_external.
 * cache_from_source: the prefix joined with the source's absolute
 * directory, its leading separator stripped). */
static char *prefix_dir_for(const char *prefix, const char *path)
{
    char *abs = realpath(path, NULL);
    if (!abs)
        return NULL;
    size_t plen = strlen(prefix);
    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    char *dir = format("%.*s%s", (int)plen, prefix, abs);
    free(abs);
    return dir;
}

/* The prefix in force for this run (cmd_doctor resolves it once). */
static tree_options doctor_tree; /* only its prefix options */
static scan_options doctor_sopt;

static void audit_bytecode(struct audit *a)
{
    /* Under a prefix, 3.8+ reads PATH's caches from the prefix tree:
     * scan_run judges those after the tree itself, as check does. */
    char *paths[] = {(char *)(uintptr_t)a->path};
    if (scan_run(paths, 1, &doctor_sopt, on_item, a) < 0) {
        cli_error("cannot scan '%s': %s", a->path, strerror(errno));
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
    }
}

/* ---- the environment ---------------------------------------------------------------------- */

static const char *env_nonempty(const char *name)
{
    /* CPython reads these through config_get_env (Python/initconfig.c):
     * an empty value counts as unset. */
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Whether Python 3.7+ takes the non-empty flag variable VALUE as on:
 * _Py_get_env_flag (Python/initconfig.c, 3.8+; pymain_get_env_flag in
 * Modules/main.c, 3.7) parses it with _Py_str_to_int (strtol base 10, the
 * whole string, within int) and takes a negative or unparsable value as 1:
 * only a value that reads as 0 is off. 2.7-3.6 (Modules/main.c,
 * Py_GETENV(...) && *p != '\0') take any non-empty value as on. */
static bool env_flag_set(const char *value)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return true;
    return v != 0;
}

/* Dockerfile, Containerfile, NAME.Dockerfile, Dockerfile.NAME (either
 * spelling, any case: BuildKit accepts "dockerfile" too). */
static bool is_dockerfile_name(const char *name)
{
    static const char *const words[] = {"dockerfile", "containerfile"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(words[i]), len = strlen(name);
        if (strcasecmp(name, words[i]) == 0)
            return true;
        if (len > n && strncasecmp(name, words[i], n) == 0 && name[n] == '.')
            return true;
        if (len > n && strcasecmp(name + len - n, words[i]) == 0 && name[len - n - 1] == '.')
            return true;
    }
    return false;
}

/* Splits the arguments of one ENV instruction into words: whitespace
 * separates them except inside quotes; quotes are removed and a backslash
 * keeps the next character (the Dockerfile's shell-like word rules, enough
 * to read KEY=VALUE pairs). Returns the number of words, each a malloc'd
 * string in WORDS (at most CAP). */
static size_t split_words(const char *s, char **words, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        size_t len = strlen(s);
        char *w = malloc(len + 1), *o = w;
        if (!w)
            break;
        char quote = 0;
        for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
            if (quote && *s == quote)
                quote = 0;
            else if (!quote && (*s == '"' || *s == '\''))
                quote = *s;
            else if (*s == '\\' && s[1] && quote != '\'')
                *o++ = *++s;
            else
                *o++ = *s;
        }
        *o = '\0';
        words[n++] = w;
    }
    return n;
}

static void note_setting(char **settings, long line, const char *key, const char *value)
{
    char *s = format("%s=%s (line %ld)", key, value, line);
    if (s) {
        append(settings, ", ", s);
        free(s);
    }
}

/* The ENV instructions of one Dockerfile that set either variable. Lines
 * are joined at the escape character (`\`, or what an `# escape=` parser
 * directive says) ending a line; comment lines inside are dropped, as
 * BuildKit's parser does. */
static char *docker_settings(FILE *f)
{
    char *settings = NULL, *line = NULL, *logical = NULL;
    size_t cap = 0, llen = 0;
    long number = 0, start = 0;
    char escape = '\\';
    bool directives = true;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        number++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (directives) {
            /* Parser directives: "# escape=`" before any instruction. */
            if (*s == '#') {
                const char *d = s + 1;
                while (*d == ' ' || *d == '\t')
                    d++;
                if (strncasecmp(d, "escape", 6) == 0) {
                    d += 6;
                    while (*d == ' ' || *d == '\t')
                        d++;
                    if (*d == '=') {
                        d++;
                        while (*d == ' ' || *d == '\t')
                            d++;
                        if (*d == '`' || *d == '\\')
                            escape = *d;
                    }
                }
                continue;
            }
            directives = false;
        }
        if (*s == '#' && (logical == NULL || llen == 0))
            continue;
        if (*s == '#')
            continue; /* a comment inside a continued instruction */
        size_t sl = strlen(s);
        bool continued = sl > 0 && s[sl - 1] == escape;
        if (continued)
            sl--;
        if (llen == 0)
            start = number;
        char *nl = realloc(logical, llen + sl + 2);
        if (!nl)
            break;
        logical = nl;
        memcpy(logical + llen, s, sl);
        llen += sl;
        logical[llen++] = ' ';
        logical[llen] = '\0';
        if (continued)
            continue;
        if (strncasecmp(logical, "ENV", 3) == 0 && (logical[3] == ' ' || logical[3] == '\t')) {
            char *words[64];
            size_t nw = split_words(logical + 4, words, 64);
            if (nw && !strchr(words[0], '=')) {
                /* The legacy form: ENV KEY VALUE (the value is the rest). */
                if (strcmp(words[0], "PYTHONDONTWRITEBYTECODE") == 0 ||
                    strcmp(words[0], "PYTHONPYCACHEPREFIX") == 0) {
                    char *value = NULL;
                    for (size_t i = 1; i < nw; i++)
                        append(&value, " ", words[i]);
                    note_setting(&settings, start, words[0], value ? value : "");
                    free(value);
                }
            } else {
                for (size_t i = 0; i < nw; i++) {
                    char *eq = strchr(words[i], '=');
                    if (!eq)
                        continue;
                    *eq = '\0';
                    if (strcmp(words[i], "PYTHONDONTWRITEBYTECODE") == 0 ||
                        strcmp(words[i], "PYTHONPYCACHEPREFIX") == 0)
                        note_setting(&settings, start, words[i], eq + 1);
                }
            }
            for (size_t i = 0; i < nw; i++)
                free(words[i]);
        }
        llen = 0;
    }
    free(line);
    free(logical);
    return settings;
}

static pyc_walk_action on_docker_entry(const pyc_walk_entry *e, void *ctx)
{
    struct audit *a = ctx;
    if (e->event == PYC_WALK_DIR_PRE && e->depth > 0 && strcmp(e->name, "__pycache__") == 0)
        return PYC_WALK_PRUNE;
    if (e->event != PYC_WALK_FILE || (e->type != DT_REG && e->type != DT_LNK) || !is_dockerfile_name(e->name))
        return PYC_WALK_CONTINUE;
    int fd = openat(e->dirfd, e->name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        cli_error_path("open", e->path, errno);
        if (fd >= 0)
            close(fd);
        a->status = cli_exit_merge(a->status, CLI_EXIT_IO);
        return PYC_WALK_CONTINUE;
    }
    char *settings = docker_settings(f);
    fclose(f);
    if (a->ndocker == a->docker_cap) {
        size_t cap = a->docker_cap ? a->docker_cap * 2 : 4;
        struct dockerfile *nd = realloc(a->docker, cap * sizeof *nd);
        if (!nd) {
            free(settings);
            return PYC_WALK_CONTINUE;
        }
        a->docker = nd;
        a->docker_cap = cap;
    }
    char *path = strdup(e->path);
    if (!path) {
        free(settings);
        return PYC_WALK_CONTINUE;
    }
    a->docker[a->ndocker++] = (struct dockerfile){.path = path, .settings = settings};
    return PYC_WALK_CONTINUE;
}

static void audit_environment(struct audit *a)
{
    a->dont_write = env_nonempty("PYTHONDONTWRITEBYTECODE");
    a->prefix = doctor_sopt.prefix;
    if (a->prefix) {
        a->prefix_dir = prefix_dir_for(a->prefix, a->path);
        struct stat st;
        a->prefix_dir_exists = a->prefix_dir && stat(a->prefix_dir, &st) == 0 &&
                               S_ISDIR(st.st_mode);
    }
    scan_options sopt;
    scan_default_options(&sopt);
    const char *roots[] = {a->path};
    pyc_walk(roots, 1, &sopt.walk, on_docker_entry, a);
}

/* The pre-commit configuration at the top of the work tree runs one of
 * pycache's hooks (or pycache itself). */
static void audit_hooks(struct audit *a)
{
    a->hooks = -1;
    if (a->git != GIT_WORKTREE)
        return;
    char *path = format("%s/.pre-commit-config.yaml", a->toplevel);
    FILE *f = path ? fopen(path, "re") : NULL;
    free(path);
    if (!f)
        return;
    a->hooks = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '#' && (strstr(s, "pycache-no-bytecode") || strstr(s, "pycache doctor")))
            a->hooks = 1;
    }
    free(line);
    fclose(f);
}

static void audit_run(struct audit *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->path = path;
    git_locate(a);
    if (a->git == GIT_WORKTREE) {
        git_check_ignores(a);
        git_tracked(a);
    }
    audit_environment(a);
    audit_bytecode(a);
    audit_hooks(a);
}

/* ---- fixes -------------------------------------------------------------------------------- */

/* Puts PATH back as it was before an append that failed (a full disk, EIO,
 * or close(2) reporting a write-back error as NFS does), so no half-written
 * line is left behind: removed when this run created it, else cut back to
 * its size BEFORE. FD is the descriptor written through, or -1 when close
 * already released it (then PATH is opened again, never through a symlink,
 * and must still be the same file; BEFORE NULL: nothing known to cut back
 * to). Best effort: the write error is what gets reported. */
static void undo_append(const char *path, int fd, bool created, const struct stat *before)
{
    if (created) {
        if (fd >= 0)
            close(fd);
        unlink(path);
        return;
    }
    if (!before) {
        if (fd >= 0)
            close(fd);
        return;
    }
    int ufd = fd >= 0 ? fd : open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat now;
    if (ufd >= 0 && fstat(ufd, &now) == 0 && now.st_dev == before->st_dev &&
        now.st_ino == before->st_ino && now.st_size > before->st_size)
        (void)!ftruncate(ufd, before->st_size);
    if (ufd >= 0)
        close(ufd);
}

/* Appends the lines git does not apply yet to TOPLEVEL/.gitignore: created
 * when missing; an existing file keeps its content and its line ending
 * (CRLF when its first line ends so), and gets one before ours when its
 * last line has none. A failed write leaves the file as it was
 * (undo_append). Returns 0, or -1 after reporting the error. */
static int fix_gitignore(const struct audit *a, char **done)
{
    char *path = format("%s/.gitignore", a->toplevel);
    if (!path) {
        cli_error("out of memory");
        return -1;
    }
    /* O_NOFOLLOW: git does not read a .gitignore that is a symlink
     * (since 2.32), so writing through one would change nothing. */
    bool created = false;
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0666);
        created = fd >= 0;
        if (fd < 0 && errno == EEXIST) /* created meanwhile: append to it */
            fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        cli_error_path("open", path, errno);
        free(path);
        return -1;
    }
    const char *eol = "\n";
    bool need_eol = false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        cli_error_path("stat", path, errno);
        undo_append(path, fd, created, NULL);
        free(path);
        return -1;
    }
    if (st.st_size > 0) {
        char head[4096], last = '\n';
        ssize_t n = pread(fd, head, sizeof head, 0);
        char *nl = n > 0 ? memchr(head, '\n', (size_t)n) : NULL;
        if (nl && nl > head && nl[-1] == '\r')
            eol = "\r\n";
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
            need_eol = true;
    }
    char *text = strdup(need_eol ? eol : "");
    char *lines = NULL;
    for (int r = 0; r < RULE_COUNT; r++) {
        if (a->rule_ok[r])
            continue;
        char *t = format("%s%s%s", text ? text : "", rule_lines[r], eol);
        free(text);
        text = t;
        append(&lines, ", ", rule_lines[r]);
    }
    int rc = 0;
    if (!text) {
        cli_error("out of memory");
        rc = -1;
    } else {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                cli_error_path("write", path, errno);
                rc = -1;
                break;
            }
            off += (size_t)w;
        }
    }
    if (rc != 0) {
        undo_append(path, fd, created, &st);
    } else if (close(fd) != 0) {
        cli_error_path("write", path, errno);
        undo_append(path, -1, created, &st);
        rc = -1;
    }
    if (rc == 0)
        *done = format("appended %s to %s", lines ? lines : "nothing", path);
    free(lines);
    free(text);
    free(path);
    return rc;
}

/* git rm --cached -q -- FILE...: in batches, so no argument list grows
 * beyond what exec accepts. The paths are given relative to PATH (git runs
 * in PATH): the display paths minus PATH's prefix. */
static int fix_tracked(const struct audit *a, char **done)
{
    enum { BATCH = 512 };
    const char *args[BATCH + 7];
    size_t plen = strlen(a->path);
    while (plen > 1 && a->path[plen - 1] == '/')
        plen--;
    size_t untracked = 0;
    int rc = 0;
    for (size_t i = 0; i < a->tracked.n && rc == 0;) {
        size_t k = 0;
        args[k++] = "--literal-pathspecs";
        args[k++] = "rm";
        args[k++] = "--cached";
        args[k++] = "-q";
        args[k++] = "--";
        size_t first = i;
        for (; i < a->tracked.n && k < BATCH + 5; i++)
            args[k++] = a->tracked.v[i].path + plen + 1;
        args[k] = NULL;
        git_output o;
        if (git_run(a->path, args, NULL, 0, &o) != 0) {
            cli_error("cannot run git rm: %s", strerror(errno));
            return -1;
        }
        if (o.status != 0) {
            char line[200];
            git_error_line(&o, line, sizeof line);
            cli_error("git rm --cached failed: %s", line);
            rc = -1;
        } else {
            untracked += i - first;
        }
        git_output_free(&o);
    }
    if (untracked)
        *done = format("untracked %zu file%s (git rm --cached: the files stay; commit "
                       "the change)",
                       untracked, untracked == 1 ? "" : "s");
    return rc;
}

/* Runs `pycache prune -q [--prefix DIR|--no-prefix] -- PATH`: cmd_prune
 * itself, so doctor --fix removes exactly what prune would, in the tree and
 * in the prefix doctor audited. Its exit status 1 (a sourceless pyc kept)
 * is no error here: the audit that follows reports it. */
static int fix_prune(const struct audit *a)
{
    char *argv[8];
    int argc = 0;
    argv[argc++] = (char *)(uintptr_t) "prune";
    argv[argc++] = (char *)(uintptr_t) "-q";
    if (a->prefix) {
        argv[argc++] = (char *)(uintptr_t) "--prefix";
        argv[argc++] = (char *)(uintptr_t)a->prefix;
    } else {
        argv[argc++] = (char *)(uintptr_t) "--no-prefix";
    }
    argv[argc++] = (char *)(uintptr_t) "--";
    argv[argc++] = (char *)(uintptr_t)a->path;
    argv[argc] = NULL;
    int rc = cmd_prune(argc, argv);
    return rc == CLI_EXIT_FINDINGS ? CLI_EXIT_OK : rc;
}

/* ---- output ------------------------------------------------------------------------------- */

enum state { STATE_OK, STATE_FIXED, STATE_PROBLEM, STATE_NOTE, STATE_SKIPPED };

static const char *const state_names[] = {"ok", "fixed", "problem", "note", "skipped"};

struct line {
    const char *check;
    enum state state;
    char *detail;
    char *fix;
    const struct list *files; /* listed under the line, or NULL */
};

#define MAX_LINES 16

struct report {
    struct line v[MAX_LINES];
    size_t n;
    size_t problems;
};

static struct line *add_line(struct report *r, const char *check, enum state state,
                             char *detail, char *fix)
{
    struct line *l = &r->v[r->n++];
    *l = (struct line){.check = check, .state = state, .detail = detail, .fix = fix};
    if (state == STATE_PROBLEM)
        r->problems++;
    return l;
}

static void report_free(struct report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].detail);
        free(r->v[i].fix);
    }
}

/* What makes each dangerous status dangerous. */
static const char *danger_of(pyc_status st)
{
    switch (st) {
    case PYC_STALE_USED:
        return " (loaded although its source changed)";
    case PYC_SOURCELESS:
        return " (imported although its source is gone)";
    case PYC_CORRUPT:
        return " (makes the import fail)";
    default:
        return "";
    }
}

/* "2 stale-used, 1 sourceless" from per-status counts; WHY: with what
 * makes each dangerous. */
static char *status_counts(const uint64_t *count, bool why)
{
    char *s = NULL;
    for (int st = 0; st < PYC_STATUS_COUNT; st++) {
        if (!count[st])
            continue;
        char *w = format("%llu %s%s", (unsigned long long)count[st],
                         pyc_status_name((pyc_status)st),
                         why ? danger_of((pyc_status)st) : "");
        if (w)
            append(&s, ", ", w);
        free(w);
    }
    return s ? s : strdup("");
}

static char *files_bytes(uint64_t files, uint64_t bytes, const char *what)
{
    char b[32];
    cli_format_bytes(b, sizeof b, bytes);
    return format("%llu %s file%s (%s)", (unsigned long long)files, what,
                  files == 1 ? "" : "s", b);
}

/* FIXES: what --fix did, by check (NULL: nothing). BEFORE: the audit --fix
 * started from (NULL without --fix): a check that was a problem there and
 * is not now is reported fixed. */
struct fixes {
    char *gitignore, *tracked;
    bool pruned;
};

static void build_report(const struct audit *a, const struct audit *before,
                         const struct fixes *fx, struct report *r)
{
    memset(r, 0, sizeof *r);
    char *suffix = path_suffix(a->path);
    const char *ps = suffix ? suffix : "";

    /* gitignore */
    if (a->git != GIT_WORKTREE) {
        add_line(r, "gitignore", STATE_SKIPPED,
                 format("git ignore rules not checked: %s", a->git_message), NULL);
    } else if (a->ignore_failed) {
        add_line(r, "gitignore", STATE_SKIPPED,
                 strdup("git ignore rules not checked: git check-ignore failed"), NULL);
    } else {
        char *missing = NULL, *rules = NULL;
        bool global = false;
        for (int i = 0; i < RULE_COUNT; i++) {
            if (!a->rule_ok[i])
                append(&missing, ", ", rule_lines[i]);
            else if (a->rule_source[i]) {
                append(&rules, "; ", a->rule_source[i]);
                global |= a->rule_global[i];
            }
        }
        if (missing) {
            add_line(r, "gitignore", STATE_PROBLEM,
                     format("git does not ignore bytecode: %s %s not ignored", missing,
                            strchr(missing, ',') ? "are" : "is"),
                     format("pycache doctor --fix%s", ps));
        } else {
            bool was_missing = before && (!before->rule_ok[0] || !before->rule_ok[1] ||
                                          !before->rule_ok[2]);
            bool fixed = was_missing && fx->gitignore;
            add_line(r, "gitignore", fixed ? STATE_FIXED : STATE_OK,
                     fixed ? format("git ignores bytecode: %s", fx->gitignore)
                           : format("git ignores bytecode (%s)%s", rules ? rules : "",
                                    global ? "; a global excludes file is not shared "
                                             "with other clones: add the lines to "
                                             ".gitignore too"
                                           : ""),
                     NULL);
        }
        free(missing);
        free(rules);
    }

    /* tracked */
    if (a->git != GIT_WORKTREE || a->tracked_failed) {
        add_line(r, "tracked", STATE_SKIPPED,
                 format("tracked bytecode not checked: %s",
                        a->tracked_failed ? "git ls-files failed" : a->git_message),
                 NULL);
    } else if (a->tracked.n) {
        char *fix;
        if (a->tracked.n <= 4) {
            fix = strdup("git rm --cached -q --");
            for (size_t i = 0; fix && i < a->tracked.n; i++) {
                char *q = shell_quote(a->tracked.v[i].path);
                if (q)
                    append(&fix, " ", q);
                free(q);
            }
        } else {
            fix = format("pycache doctor --fix%s", ps);
        }
        char *what = files_bytes(a->tracked.n, a->tracked.bytes, "bytecode");
        struct line *l = add_line(r, "tracked", STATE_PROBLEM,
                                  format("%s tracked in git", what ? what : ""), fix);
        l->files = &a->tracked;
        free(what);
    } else {
        bool fixed = before && before->tracked.n && fx->tracked;
        add_line(r, "tracked", fixed ? STATE_FIXED : STATE_OK,
                 fixed ? format("no bytecode tracked in git: %s", fx->tracked)
                       : strdup("no bytecode tracked in git"),
                 NULL);
    }

    /* dangerous */
    if (a->dangerous.n) {
        char *counts = status_counts(a->dangerous_count, true);
        char *what = files_bytes(a->dangerous.n, a->dangerous.bytes, "dangerous bytecode");
        struct line *l =
            add_line(r, "dangerous", STATE_PROBLEM,
                     format("%s: %s", what ? what : "", counts ? counts : ""),
                     format("pycache prune%s%s",
                            a->dangerous_count[PYC_SOURCELESS] ? " --sourceless" : "", ps));
        l->files = &a->dangerous;
        free(counts);
        free(what);
    } else {
        bool fixed = before && before->dangerous.n && fx->pruned;
        add_line(r, "dangerous", fixed ? STATE_FIXED : STATE_OK,
                 strdup(fixed ? "no dangerous bytecode: pruned"
                              : "no dangerous bytecode (stale-used, sourceless, corrupt)"),
                 NULL);
    }

    /* stale: a note */
    if (a->clutter.n) {
        char *counts = status_counts(a->clutter_count, false);
        char *what = files_bytes(a->clutter.n, a->clutter.bytes, "unused cache");
        add_line(r, "stale", STATE_NOTE,
                 format("%s: %s (import rejects or never reads them: harmless)",
                        what ? what : "", counts ? counts : ""),
                 format("pycache prune%s", ps));
        free(counts);
        free(what);
    } else {
        bool fixed = before && before->clutter.n && fx->pruned;
        add_line(r, "stale", fixed ? STATE_FIXED : STATE_OK,
                 strdup(fixed ? "no stale or orphan caches: pruned"
                              : "no stale or orphan caches"),
                 NULL);
    }

    /* uninstalled: a note */
    if (a->nuninstalled) {
        char *list = NULL;
        for (size_t i = 0; i < a->nuninstalled; i++) {
            char label[32], b[32];
            report_python_label(a->uninstalled[i].python, label, sizeof label);
            cli_format_bytes(b, sizeof b, a->uninstalled[i].bytes);
            char *w = format("%s: %llu file%s (%s)", label,
                             (unsigned long long)a->uninstalled[i].files,
                             a->uninstalled[i].files == 1 ? "" : "s", b);
            if (w)
                append(&list, ", ", w);
            free(w);
        }
        add_line(r, "uninstalled", STATE_NOTE,
                 format("caches of interpreters not installed here: %s", list ? list : ""),
                 format("pycache clean --uninstalled%s", ps));
        free(list);
    } else {
        add_line(r, "uninstalled", STATE_OK,
                 strdup("every cache belongs to an interpreter installed here"), NULL);
    }

    /* the environment: notes */
    if (a->dont_write && !env_flag_set(a->dont_write)) {
        add_line(r, "dontwritebytecode", STATE_NOTE,
                 format("PYTHONDONTWRITEBYTECODE=%s: Python 3.7+ writes bytecode (a value "
                        "that reads as 0 is off), 2.7-3.6 write none (any non-empty value "
                        "is on)",
                        a->dont_write),
                 NULL);
    } else if (a->dont_write) {
        add_line(r, "dontwritebytecode", STATE_NOTE,
                 format("PYTHONDONTWRITEBYTECODE=%s: Python writes no bytecode, so every "
                        "import compiles its source again",
                        a->dont_write),
                 NULL);
    } else {
        add_line(r, "dontwritebytecode", STATE_NOTE,
                 strdup("PYTHONDONTWRITEBYTECODE is not set: Python writes the bytecode "
                        "of what it imports"),
                 NULL);
    }
    if (a->prefix) {
        add_line(r, "pycacheprefix", STATE_NOTE,
                 format("%s%s: Python 3.8+ keeps this project's caches "
                        "in %s%s and never reads __pycache__; 2.7-3.7 still write beside "
                        "the sources",
                        tree_prefix_origin() == TREE_PREFIX_GIVEN ? "--prefix "
                                                                     : "PYTHONPYCACHEPREFIX=",
                        a->prefix, a->prefix_dir ? a->prefix_dir : "(unknown)",
                        a->prefix_dir_exists ? "" : " (none yet)"),
                 NULL);
    } else if (tree_env_prefix()) {
        add_line(r, "pycacheprefix", STATE_NOTE,
                 format("PYTHONPYCACHEPREFIX=%s ignored (--no-prefix): audited as if caches "
                        "went to __pycache__ beside each source",
                        tree_env_prefix()),
                 NULL);
    } else {
        add_line(r, "pycacheprefix", STATE_NOTE,
                 strdup("PYTHONPYCACHEPREFIX is not set: caches go to __pycache__ beside "
                        "each source"),
                 NULL);
    }
    if (a->ndocker) {
        char *list = NULL;
        for (size_t i = 0; i < a->ndocker; i++) {
            char *w = a->docker[i].settings
                          ? format("%s sets %s", a->docker[i].path, a->docker[i].settings)
                          : format("%s sets neither PYTHONDONTWRITEBYTECODE nor "
                                   "PYTHONPYCACHEPREFIX",
                                   a->docker[i].path);
            if (w)
                append(&list, "; ", w);
            free(w);
        }
        add_line(r, "docker", STATE_NOTE, list ? list : strdup(""), NULL);
    } else {
        add_line(r, "docker", STATE_NOTE, strdup("no Dockerfile or Containerfile"), NULL);
    }

    /* hooks: a note */
    if (a->git == GIT_WORKTREE) {
        if (a->hooks == 1)
            add_line(r, "hooks", STATE_OK,
                     strdup("pre-commit runs pycache (.pre-commit-config.yaml)"), NULL);
        else
            /* Advice, not a command: a "fix:" line is always one that can be
             * run as printed (editing a config file is the user's call). */
            add_line(r, "hooks", STATE_NOTE,
                     strdup(a->hooks == 0
                                ? "no pycache hook in .pre-commit-config.yaml: add "
                                  "pycache-no-bytecode, or run `pycache doctor --staged` "
                                  "from .git/hooks/pre-commit"
                                : "no .pre-commit-config.yaml: nothing stops a commit "
                                  "that adds bytecode (add the pycache-no-bytecode hook, "
                                  "or run `pycache doctor --staged` from "
                                  ".git/hooks/pre-commit)"),
                     NULL);
    } else {
        add_line(r, "hooks", STATE_SKIPPED,
                 format("pre-commit hooks not checked: %s", a->git_message), NULL);
    }
    free(suffix);
}

/* The marks: ✓ ✗ · when the user's locale (LC_ALL, LC_CTYPE, LANG) has the
 * UTF-8 codeset, else bracketed words ("[ok]", "[FAIL]"...), so a C-locale
 * terminal or a CI log never shows mojibake and grep finds the failures.
 * The process's own locale is left as it was. */
static bool utf8_locale(void)
{
    const char *cur = setlocale(LC_CTYPE, NULL);
    char *saved = cur ? strdup(cur) : NULL;
    bool utf8 = false;
    if (setlocale(LC_CTYPE, "")) {
        const char *cs = nl_langinfo(CODESET);
        utf8 = cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
    }
    setlocale(LC_CTYPE, saved ? saved : "C");
    free(saved);
    return utf8;
}

static void print_json_paths(cli_json *j, const struct list *files)
{
    if (!files) {
        cli_json_null(j, "paths");
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        cli_json_null(j, "paths");
        return;
    }
    fputc('[', m);
    for (size_t i = 0; i < files->n; i++) {
        if (i)
            fputs(", ", m);
        cli_json_write_string(m, files->v[i].path, strlen(files->v[i].path));
    }
    fputc(']', m);
    if (fclose(m) == 0 && buf)
        cli_json_raw(j, "paths", buf);
    else
        cli_json_null(j, "paths");
    free(buf);
}

static void print_json(const struct report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct line *l = &r->v[i];
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "check", l->check);
        cli_json_bool(&j, "ok", l->state != STATE_PROBLEM);
        cli_json_str(&j, "status", state_names[l->state]);
        cli_json_str(&j, "detail", l->detail);
        cli_json_str(&j, "fix", l->fix);
        print_json_paths(&j, l->files);
        cli_json_end(&j);
    }
}

#define LISTED_FILES 10

static void print_human(const struct audit *a, const struct report *r, bool color)
{
    bool utf8 = utf8_locale();
    static const char *const utf8_marks[] = {"\u2713", "\u2713", "\u2717", "\u00b7", "-"};
    static const char *const ascii_marks[] = {"[ok]  ", "[ok]  ", "[FAIL]", "[note]",
                                              "[skip]"};
    static const char *const sgr[] = {"\033[32m", "\033[32m", "\033[31m", CLI_SGR_DIM,
                                      CLI_SGR_DIM};
    const char *indent = utf8 ? "    " : "       ";
    fputs("pycache doctor: ", stdout);
    cli_print_path(stdout, a->path);
    if (a->git == GIT_WORKTREE) {
        fputs(" (git work tree ", stdout);
        cli_print_path(stdout, a->toplevel);
        fputs(")", stdout);
    }
    putchar('\n');
    for (size_t i = 0; i < r->n; i++) {
        const struct line *l = &r->v[i];
        printf("%s%s%s ", color ? sgr[l->state] : "",
               (utf8 ? utf8_marks : ascii_marks)[l->state], color ? CLI_SGR_RESET : "");
        cli_print_path(stdout, l->detail ? l->detail : "(out of memory)");
        putchar('\n');
        if (l->files) {
            size_t shown = l->files->n < LISTED_FILES + 1 ? l->files->n : LISTED_FILES;
            for (size_t k = 0; k < shown; k++) {
                const struct entry *e = &l->files->v[k];
                printf("%s  ", indent);
                cli_print_path(stdout, e->path);
                if (e->what)
                    printf("  %s", e->what);
                if (e->size >= 0) {
                    char b[32];
                    cli_format_bytes(b, sizeof b, (uint64_t)e->size);
                    printf("  %s", b);
                }
                putchar('\n');
            }
            if (l->files->n > shown)
                printf("%s  ... and %zu more\n", indent, l->files->n - shown);
        }
        if (l->fix) {
            printf("%sfix: ", indent);
            cli_print_path(stdout, l->fix);
            putchar('\n');
        }
    }
    if (r->problems)
        printf("%zu problem%s%s\n", r->problems, r->problems == 1 ? "" : "s",
               " (see the fix lines)");
    else
        printf("no problems\n");
}

/* ---- --staged ---------------------------------------------------------------------------- */

static int run_staged(char **files, size_t nfiles, cli_format fmt, bool quiet)
{
    struct list found = {0};
    git_output o = {0};
    bool have_git = false;
    if (nfiles == 0) {
        /* What the commit would add or change (a deletion removes bytecode:
         * welcome). Paths relative to the top of the work tree. */
        static const char *const args[] = {"diff", "--cached", "--name-only", "-z",
                                           "--no-renames", "--diff-filter=d", NULL};
        if (git_run(NULL, args, NULL, 0, &o) != 0) {
            cli_error("cannot run git: %s", strerror(errno));
            return CLI_EXIT_IO;
        }
        if (o.status != 0) {
            char line[200];
            git_error_line(&o, line, sizeof line);
            cli_error("cannot list the staged files: %s", line);
            git_output_free(&o);
            return CLI_EXIT_IO;
        }
        have_git = true;
        for (const char *p = o.out; p < o.out + o.out_len; p += strlen(p) + 1)
            if (*p && is_bytecode_name(p))
                list_add(&found, p, -1, NULL);
    } else {
        for (size_t i = 0; i < nfiles; i++)
            if (is_bytecode_name(files[i]))
                list_add(&found, files[i], -1, NULL);
    }
    if (have_git)
        git_output_free(&o);
    int status = found.n ? CLI_EXIT_FINDINGS : CLI_EXIT_OK;
    if (found.out_of_memory) {
        cli_error("out of memory");
        status = CLI_EXIT_IO;
    }
    char *fix = strdup("git rm --cached -q --");
    for (size_t i = 0; fix && i < found.n; i++) {
        char *q = shell_quote(found.v[i].path);
        if (q)
            append(&fix, " ", q);
        free(q);
    }
    if (fmt == CLI_FORMAT_JSON) {
        char *detail = found.n ? format("%zu bytecode file%s staged for commit", found.n,
                                        found.n == 1 ? "" : "s")
                               : strdup("no bytecode staged for commit");
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "check", "staged");
        cli_json_bool(&j, "ok", found.n == 0);
        cli_json_str(&j, "status", found.n ? "problem" : "ok");
        cli_json_str(&j, "detail", detail);
        cli_json_str(&j, "fix", found.n ? fix : NULL);
        print_json_paths(&j, &found);
        cli_json_end(&j);
        free(detail);
    } else if (fmt == CLI_FORMAT_NUL) {
        for (size_t i = 0; i < found.n; i++) {
            fputs(found.v[i].path, stdout);
            putchar('\0');
        }
    } else if (found.n && !quiet) {
        printf("bytecode staged for commit (Python writes it; it does not belong in "
               "git):\n");
        for (size_t i = 0; i < found.n; i++) {
            fputs("  ", stdout);
            cli_print_path(stdout, found.v[i].path);
            putchar('\n');
        }
        fputs("unstage it (the files stay): ", stdout);
        cli_print_path(stdout, fix ? fix : "git rm --cached");
        printf("\nignore it from now on:       pycache doctor --fix\n");
    }
    free(fix);
    list_free(&found);
    return status;
}

/* ---- the command -------------------------------------------------------------------------- */

int cmd_doctor(int argc, char **argv)
{
    cli_parser p = {
        .command = "doctor",
        .usage = "[--fix] [OPTION]... [PATH]",
        .description =
            "Audit the project at PATH (default: the current directory) against the "
            "habits that keep bytecode out of trouble, and print a checklist with the "
            "command that fixes each problem: git ignores __pycache__/, *.pyc and *.pyo "
            "(asked of git check-ignore, so nested .gitignore files, info/exclude and "
            "global excludes count); no bytecode is tracked in git; no dangerous "
            "bytecode (stale-used, sourceless, corrupt). Notes, never problems: unused "
            "caches `pycache prune` would remove, caches of interpreters not installed "
            "here, PYTHONDONTWRITEBYTECODE and PYTHONPYCACHEPREFIX (and where caches "
            "then go), what the project's Dockerfiles set, whether pre-commit runs a "
            "pycache hook. Outside a git work tree the git checks are skipped. "
            "PYTHONDONTWRITEBYTECODE and PYTHONPYCACHEPREFIX are reported as notes; "
            "with a prefix in force (the variable, or --prefix), the bytecode checks "
            "judge PATH's entries in the prefix too, and --fix prunes them.\n"
            "With --staged, check only that no FILE is bytecode (pre-commit passes the "
            "staged files; without FILEs, git lists them): the pycache-no-bytecode hook.",
        .options = options,
        .epilog = "Examples:\n"
                  "  pycache doctor                 audit the current directory\n"
                  "  pycache doctor --fix           fix .gitignore, untrack, prune\n"
                  "  pycache doctor --json | jq 'select(.ok | not)'\n"
                  "  pycache doctor --staged        in .git/hooks/pre-commit\n"
                  "\n"
                  "Exit status 1 while a problem is left (after --fix: those it could not\n"
                  "fix); with --staged, when bytecode is staged.\n",
    };
    cli_format fmt = CLI_FORMAT_HUMAN;
    cli_color_mode color = CLI_COLOR_AUTO;
    bool fix = false, staged = false, quiet = false;

    tree_options_init(&doctor_tree);
    cli_parser_init(&p, argc, argv);
    int id;
    while ((id = cli_next_option(&p)) != 0) {
        if (id < 0)
            return CLI_EXIT_USAGE;
        if (id == 'h')
            return CLI_EXIT_OK;
        switch (id) {
        case OPT_FIX:
            fix = true;
            break;
        case OPT_STAGED:
            staged = true;
            break;
        case OPT_JSON:
            fmt = CLI_FORMAT_JSON;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_COLOR:
            if (cli_parse_color(&p, p.optarg, &color) != 0)
                return CLI_EXIT_USAGE;
            break;
        case TREE_OPT_PREFIX:
        case TREE_OPT_NO_PREFIX:
            if (tree_parse_option(&p, id, &doctor_tree) < 0)
                return CLI_EXIT_USAGE;
            break;
        }
    }
    /* One PATH: never the whole prefix tree. */
    tree_resolve_prefix(&doctor_tree.scan, 1);
    doctor_sopt = doctor_tree.scan;
    if (staged) {
        if (fix)
            return cli_usage_error(p.command, "--staged and --fix cannot be combined");
        return run_staged(CLI_OPERANDS(&p), (size_t)CLI_NOPERANDS(&p), fmt, quiet);
    }
    if (CLI_NOPERANDS(&p) > 1)
        return cli_usage_error(p.command, "one PATH at most (a project)");
    const char *path = CLI_NOPERANDS(&p) ? CLI_OPERANDS(&p)[0] : ".";
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error_path("access", path, errno);
        return CLI_EXIT_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error("'%s' is not a directory: doctor audits a project", path);
        return CLI_EXIT_USAGE;
    }

    struct audit first, second, *final = &first;
    struct fixes fx = {0};
    int status = CLI_EXIT_OK;
    audit_run(&first, path);
    if (fix) {
        if (first.git == GIT_WORKTREE && !first.ignore_failed &&
            !(first.rule_ok[0] && first.rule_ok[1] && first.rule_ok[2]) &&
            fix_gitignore(&first, &fx.gitignore) != 0)
            status = cli_exit_merge(status, CLI_EXIT_IO);
        if (first.tracked.n && fix_tracked(&first, &fx.tracked) != 0)
            status = cli_exit_merge(status, CLI_EXIT_IO);
        bool prunable = first.clutter.n || first.dangerous_count[PYC_STALE_USED] ||
                        first.dangerous_count[PYC_CORRUPT];
        if (prunable) {
            status = cli_exit_merge(status, fix_prune(&first));
            fx.pruned = true;
        }
        audit_run(&second, path);
        final = &second;
    }
    struct report r;
    build_report(final, fix ? &first : NULL, &fx, &r);
    status = cli_exit_merge(status, final->status);
    if (r.problems)
        status = cli_exit_merge(status, CLI_EXIT_FINDINGS);
    if (!quiet) {
        if (fmt == CLI_FORMAT_JSON)
            print_json(&r);
        else
            print_human(final, &r, cli_color_enabled(color, stdout));
    }
    report_free(&r);
    free(fx.gitignore);
    free(fx.tracked);
    audit_free(&first);
    if (fix)
        audit_free(&second);
    return status;
}
