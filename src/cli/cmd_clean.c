/*
 * cmd_clean.c — `pycache clean`: remove all bytecode under a tree.
 *
 * Rides on scan_run with name-only judgement (SCAN_JUDGE_NAME: what is
 * bytecode is decided by the name, no header is read) unless --json asks
 * for each file's verdict. Every cache file the scan delivers (in
 * __pycache__, legacy NAME.pyc/.pyo beside sources, prefix-tree entries,
 * CPython's temp files) is removed through remove.c, then each __pycache__
 * left empty; anything else in __pycache__ is foreign: kept and reported.
 *
 * Filters by interpreter: --tag, --keep-tag and --uninstalled decide from
 * the tag in the file's name; a legacy file has none, so its first four
 * bytes (the magic number) decide.
 *
 * --debris also removes what Python tools leave behind, each matched only
 * where and as that tool writes it (see the debris table below): a second
 * walk with the same walk options, removing matched directories
 * recursively with remove_tree_at (no link is ever followed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/pythons.h"
#include "engine/remove.h"
#include "cli/treeopts.h"
#include "engine/scan.h"

/* Whether the N bytes at BUF contain NEEDLE (memmem, which POSIX lacks). */
static bool contains(const char *buf, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (buf[i] == needle[0] && memcmp(buf + i, needle, k) == 0)
            return true;
    return false;
}

enum {
    OPT_TAG = 256,
    OPT_KEEP_TAG,
    OPT_UNINSTALLED,
    OPT_DEBRIS,
};

static const cli_option options[] = {
    {'n', "dry-run", NULL, "list what would be removed, remove nothing"},
    {OPT_TAG, "tag", "TAG",
     "only the caches of this interpreter: 3.11, cpython-311, pypy310 "
     "(repeatable)"},
    {OPT_KEEP_TAG, "keep-tag", "TAG", "keep the caches of this interpreter (repeatable)"},
    {OPT_UNINSTALLED, "uninstalled", NULL,
     "only the caches of interpreters not installed here (which count: pycache "
     "versions --installed; the rule: below)"},
    {OPT_DEBRIS, "debris", "TOPICS",
     "also remove tool caches: pytest, mypy, ruff, coverage, jupyter, package, "
     "comma-separated, or all"},
    TREE_ARCHIVE_OUTPUT_OPTIONS,
    TREE_ARCHIVE_OPTIONS,
    TREE_OUTPUT_OPTIONS,
    TREE_FROM_FILE_OPTION,
    TREE_CHECK_HASH_OPTION,
    TREE_PREFIX_OPTION,
    TREE_WALK_OPTIONS,
    {0, NULL, NULL, NULL},
};

/* ---- interpreter filters ------------------------------------------------------------- */

/* A TAG given on the command line: a version we know (compared by
 * implementation and language version, so "3.11" matches cpython-311 files
 * and 3.11 legacy pycs), or a tag we do not know ("cpython-399"), compared
 * as written with the tag in file names. */
struct tag_spec {
    const pyc_magic *magic;
    const char *literal;
};

#define MAX_TAGS 32

struct clean {
    remove_run *run;
    struct tag_spec only[MAX_TAGS];
    size_t nonly;
    struct tag_spec keep[MAX_TAGS];
    size_t nkeep;
    bool uninstalled;
    bool prefix;
};

static int parse_tag(const cli_parser *p, const char *text, struct tag_spec *out)
{
    errno = 0;
    const pyc_magic *m = pyc_magic_parse_version(text);
    out->magic = m;
    out->literal = NULL;
    if (m)
        return 0;
    if (errno == ENOENT) {
        /* Well formed but unknown: an interpreter newer than our table,
         * named by its tag. */
        out->literal = text;
        return 0;
    }
    cli_usage_error(p->command, "'%s' is not a Python version or cache tag", text);
    return -1;
}

static bool same_python(const pyc_magic *a, const pyc_magic *b)
{
    return a && b && a->implementation == b->implementation && a->major == b->major &&
           a->minor == b->minor;
}

/* What interpreter a cache item belongs to: from the tag in its name, else
 * (legacy files) from its magic number. *TAG and *TAG_LEN: the name's tag. */
static const pyc_magic *item_python(const scan_item *it, const char **tag, size_t *tag_len)
{
    const pyc_verdict *v = it->verdict;
    *tag = NULL;
    *tag_len = 0;
    if (v->name.tag_len) {
        /* The name was classified from the path's last component (for a
         * root given as a file, it->name is the whole path). */
        const char *slash = strrchr(it->path, '/');
        const char *base = slash ? slash + 1 : it->path;
        if (v->name.tag_off + v->name.tag_len > strlen(base))
            return NULL;
        *tag = base + v->name.tag_off;
        *tag_len = v->name.tag_len;
        return pyc_magic_for_tag(*tag, *tag_len);
    }
    if (v->header_read && v->header.length >= 4)
        return v->header.magic; /* judged in full (--json) */
    /* importlib reads the file through links; so do we. O_NONBLOCK: a FIFO
     * cannot hang us. */
    int fd = openat(it->dirfd, it->name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    unsigned char b[4];
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n != 4)
        return NULL;
    uint32_t word = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                    (uint32_t)b[3] << 24;
    return pyc_magic_lookup(word);
}

static bool spec_matches(const struct tag_spec *s, const pyc_magic *m, const char *tag,
                         size_t tag_len)
{
    if (s->magic)
        return same_python(s->magic, m);
    return tag && strlen(s->literal) == tag_len && memcmp(s->literal, tag, tag_len) == 0;
}

static bool any_matches(const struct tag_spec *v, size_t n, const pyc_magic *m,
                        const char *tag, size_t tag_len)
{
    for (size_t i = 0; i < n; i++)
        if (spec_matches(&v[i], m, tag, tag_len))
            return true;
    return false;
}

/* --uninstalled depends on what is found installed, which depends on
 * PATH, HOME and PYCACHE_PYTHONS (engine/pythons.h): say it before
 * removing anything, one line per version with the first interpreter found
 * for it and where (human output, on stderr). Finding none at all means a
 * bare environment (env -i, cron), not a machine without Python: refused,
 * as every cache would go. Returns 0, or -1 after that refusal. */
static int report_installed(const remove_run_options *ropt)
{
    const pyc_magic **versions;
    size_t n = cli_installed_pythons(&versions);
    if (n == 0) {
        cli_error("--uninstalled: no Python interpreter found (PYCACHE_PYTHONS, PATH, "
                  "pyenv root): every cache would be removed; list the installed ones "
                  "in PYCACHE_PYTHONS");
        return -1;
    }
    if (ropt->format != CLI_FORMAT_HUMAN || ropt->quiet)
        return 0;
    const cli_python *list;
    size_t nfiles = cli_python_list(&list);
    fprintf(stderr, "pycache clean: installed here, their caches kept "
                    "(pycache versions --installed):\n");
    for (size_t v = 0; v < n; v++) {
        for (size_t i = 0; i < nfiles; i++) {
            if (list[i].magic != versions[v])
                continue;
            const pyc_magic *m = versions[v];
            char label[32];
            if (m->implementation == PYC_IMPL_CPYTHON)
                snprintf(label, sizeof label, "%d.%d", m->major, m->minor);
            else
                snprintf(label, sizeof label, "%s %d.%d",
                         pyc_implementation_name(m->implementation), m->major, m->minor);
            fprintf(stderr, "  %-10s ", label);
            cli_print_path(stderr, list[i].path);
            fprintf(stderr, " (%s)\n", list[i].found_in);
            break;
        }
    }
    return 0;
}

/* Whether the filters let the cache file of IT go. */
static bool selected(const struct clean *c, const scan_item *it)
{
    if (!c->nonly && !c->nkeep && !c->uninstalled)
        return true;
    const char *tag;
    size_t tag_len;
    const pyc_magic *m = item_python(it, &tag, &tag_len);
    if (c->nonly && !any_matches(c->only, c->nonly, m, tag, tag_len))
        return false;
    if (any_matches(c->keep, c->nkeep, m, tag, tag_len))
        return false;
    /* A file no interpreter we know writes (unknown tag or magic) belongs
     * to none installed here. */
    if (c->uninstalled && m && cli_python_installed(m))
        return false;
    return true;
}

/* The scan's prepare hook, in the walking thread and outside the scan's
 * lock: the selection and the removal itself (see remove.c, "Where the time
 * goes"). selected() only reads the filters, the file and the table of
 * installed Pythons, filled in before the scan (cmd_clean). */
static void act(scan_item *it, void **state, void *ctx)
{
    struct clean *c = ctx;
    if (it->event == SCAN_CACHE && selected(c, it))
        remove_run_unlink(c->run, it);
}

/* clean ARCHIVE -o OUT: every cache member the filters select goes. */
static remove_choice choose(const scan_item *it, const char **why, void *ctx)
{
    if (selected(ctx, it))
        return REMOVE_DROP;
    *why = "not selected";
    return REMOVE_KEEP;
}

static int on_item(const scan_item *it, void *ctx)
{
    struct clean *c = ctx;
    switch (it->event) {
    case SCAN_CACHE:
        /* act removed what the filters selected: report it. */
        if (it->removal.attempted)
            remove_run_cache(c->run, it);
        else
            remove_run_keep(c->run, it, false, false, "not selected");
        break;
    case SCAN_FOREIGN:
        remove_run_keep(c->run, it, true, false, "foreign: not bytecode");
        break;
    case SCAN_PYCACHE_POST:
        remove_run_pycache_post(c->run, it);
        break;
    case SCAN_ERROR:
        /* A prefix subtree that does not exist holds no caches. */
        if (c->prefix && it->depth == 0 && it->error == ENOENT)
            break;
        remove_run_scan_error(c->run, it);
        break;
    case SCAN_SOURCE:
    case SCAN_MISSING:
        break;
    }
    return cli_stdout_failed() ? 1 : 0;
}

/* ---- debris -------------------------------------------------------------------------------
 *
 * Each topic is matched only where its tool writes it, and only when the
 * thing found carries that tool's own mark (pyclean matches the names at
 * any depth: a `build` or `dist` directory anywhere, `.cache` itself):
 *
 *   pytest    .pytest_cache/ holding pytest's CACHEDIR.TAG (the Cache
 *             Directory Tagging signature) or its README.md
 *             ("# pytest cache directory #")
 *   mypy      .mypy_cache/ holding CACHEDIR.TAG or mypy's .gitignore
 *             ("# Automatically created by mypy")
 *   ruff      .ruff_cache/ holding CACHEDIR.TAG or ruff's .gitignore
 *   coverage  .coverage and .coverage.* data files (content: SQLite, or the
 *             coverage.py 4 JSON header), coverage.xml written by coverage.py,
 *             htmlcov/ holding coverage.py's .gitignore or coverage_html*.js
 *   jupyter   .ipynb_checkpoints/ holding only NAME-checkpoint.EXT files
 *   package   beside a pyproject.toml, setup.py or setup.cfg: setuptools'
 *             build/ children (lib, lib.*, bdist.*, temp.*, scripts-*; the
 *             build/ itself when nothing else is in it) and dist/'s
 *             distribution files (*.whl, *.tar.gz, *.zip, *.egg, ...; the
 *             dist/ itself when nothing else is in it); NAME.egg-info/
 *             holding PKG-INFO, beside such a file or one level below it
 *             (src layout). Installed .egg-info in site-packages is never
 *             beside one.
 */

enum {
    DEBRIS_PYTEST = 1u << 0,
    DEBRIS_MYPY = 1u << 1,
    DEBRIS_RUFF = 1u << 2,
    DEBRIS_COVERAGE = 1u << 3,
    DEBRIS_JUPYTER = 1u << 4,
    DEBRIS_PACKAGE = 1u << 5,
};

static const struct {
    const char *name;
    unsigned bit;
} debris_topics[] = {
    {"pytest", DEBRIS_PYTEST},     {"mypy", DEBRIS_MYPY},
    {"ruff", DEBRIS_RUFF},         {"coverage", DEBRIS_COVERAGE},
    {"jupyter", DEBRIS_JUPYTER},   {"package", DEBRIS_PACKAGE},
};
#define NTOPICS (sizeof debris_topics / sizeof *debris_topics)

static int parse_debris(const cli_parser *p, const char *text, unsigned *out)
{
    char *copy = strdup(text);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "all") == 0) {
            for (size_t i = 0; i < NTOPICS; i++)
                *out |= debris_topics[i].bit;
            continue;
        }
        size_t i;
        for (i = 0; i < NTOPICS; i++)
            if (strcmp(w, debris_topics[i].name) == 0)
                break;
        if (i == NTOPICS) {
            const char *names[NTOPICS + 2];
            for (size_t k = 0; k < NTOPICS; k++)
                names[k] = debris_topics[k].name;
            names[NTOPICS] = "all";
            names[NTOPICS + 1] = NULL;
            const char *s = cli_suggest(w, names);
            if (s)
                cli_usage_error(p->command, "unknown debris topic '%s' (did you mean '%s'?)",
                                w, s);
            else
                cli_usage_error(p->command,
                                "unknown debris topic '%s' (pytest, mypy, ruff, coverage, "
                                "jupyter, package or all)",
                                w);
            free(copy);
            return -1;
        }
        *out |= debris_topics[i].bit;
    }
    free(copy);
    if (!*out)
        return cli_usage_error(p->command, "--debris needs a topic"), -1;
    return 0;
}

/* Reads up to CAP bytes from the start of the regular file NAME in DIRFD
 * (a link is not followed: a tool writes its marks as plain files).
 * Returns the count read, or -1. */
static ssize_t read_head(int dirfd, const char *name, char *buf, size_t cap)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = pread(fd, buf, cap, 0);
    close(fd);
    return n;
}

static bool head_starts(int dirfd, const char *name, const char *mark)
{
    char buf[128];
    size_t k = strlen(mark);
    ssize_t n = read_head(dirfd, name, buf, sizeof buf);
    return n >= (ssize_t)k && memcmp(buf, mark, k) == 0;
}

/* https://bford.info/cachedir/: "Signature: 8a477f597d28d172789f06886806bc55". */
static bool cachedir_tagged(int fd)
{
    return head_starts(fd, "CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55");
}

static bool is_regular(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, 0) == 0 && S_ISREG(st.st_mode);
}

static bool project_dir(int fd)
{
    return fd >= 0 && (is_regular(fd, "pyproject.toml") || is_regular(fd, "setup.py") ||
                       is_regular(fd, "setup.cfg"));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* setuptools' build/ children: build_py/build_ext write lib and lib.PLAT,
 * bdist_* bdist.PLAT, build_ext temp.PLAT, build_scripts scripts-X.Y. */
static bool setuptools_build_child(const char *name, bool dir)
{
    return dir && (strcmp(name, "lib") == 0 || starts_with(name, "lib.") ||
                   starts_with(name, "bdist.") || starts_with(name, "temp.") ||
                   starts_with(name, "scripts-"));
}

static bool distribution_file(const char *name, bool dir)
{
    static const char *const ext[] = {".whl", ".tar.gz", ".zip", ".egg", ".tar.bz2",
                                      ".tar.xz", ".tgz", ".tar"};
    if (dir)
        return false;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (ends_with(name, ext[i]))
            return true;
    return false;
}

static bool jupyter_checkpoint(const char *name, bool dir)
{
    return !dir && strstr(name, "-checkpoint") != NULL;
}

typedef bool child_rule(const char *name, bool dir);

/* Whether every entry of the open directory FD passes RULE. */
static bool all_children(int fd, child_rule *rule)
{
    int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup_fd < 0)
        return false;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        ok = rule(n, S_ISDIR(st.st_mode));
    }
    closedir(d);
    return ok;
}

struct debris {
    remove_run *run;
    unsigned topics;
    char *path; /* scratch for child display paths */
    size_t cap;
};

static const char *child_path(struct debris *db, const char *dir, const char *name)
{
    size_t need = strlen(dir) + strlen(name) + 2;
    if (need > db->cap) {
        char *p = realloc(db->path, need * 2);
        if (!p)
            return NULL;
        db->path = p;
        db->cap = need * 2;
    }
    snprintf(db->path, db->cap, "%s/%s", dir, name);
    return db->path;
}

/* Removes the entries of the open directory FD (display path DIR) that RULE
 * selects, one debris item each. */
static void remove_children(struct debris *db, int fd, const char *dir, child_rule *rule,
                            const char *topic)
{
    int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup_fd < 0)
        return;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!rule(n, S_ISDIR(st.st_mode)))
            continue;
        const char *p = child_path(db, dir, n);
        if (p)
            remove_run_debris(db->run, dirfd(d), n, p, &st, topic);
    }
    closedir(d);
}

/* A directory: PRUNE when it was handled (removed, or would be). */
static pyc_walk_action debris_dir(struct debris *db, const pyc_walk_entry *e)
{
    const char *name = e->name;
    const char *topic = NULL;
    bool whole = false;
    if (strcmp(name, "__pycache__") == 0)
        return PYC_WALK_PRUNE; /* the scan's business, not debris */
    bool candidate =
        ((db->topics & DEBRIS_PYTEST) && strcmp(name, ".pytest_cache") == 0) ||
        ((db->topics & DEBRIS_MYPY) && strcmp(name, ".mypy_cache") == 0) ||
        ((db->topics & DEBRIS_RUFF) && strcmp(name, ".ruff_cache") == 0) ||
        ((db->topics & DEBRIS_JUPYTER) && strcmp(name, ".ipynb_checkpoints") == 0) ||
        ((db->topics & DEBRIS_COVERAGE) && strcmp(name, "htmlcov") == 0) ||
        ((db->topics & DEBRIS_PACKAGE) &&
         (strcmp(name, "build") == 0 || strcmp(name, "dist") == 0 ||
          ends_with(name, ".egg-info")));
    if (!candidate)
        return PYC_WALK_CONTINUE;
    int fd = openat(e->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return PYC_WALK_CONTINUE;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return PYC_WALK_CONTINUE;
    }
    pyc_walk_action action = PYC_WALK_CONTINUE;
    if (strcmp(name, ".pytest_cache") == 0) {
        topic = "pytest";
        whole = cachedir_tagged(fd) || head_starts(fd, "README.md", "# pytest cache directory #");
    } else if (strcmp(name, ".mypy_cache") == 0) {
        topic = "mypy";
        whole = cachedir_tagged(fd) ||
                head_starts(fd, ".gitignore", "# Automatically created by mypy");
    } else if (strcmp(name, ".ruff_cache") == 0) {
        topic = "ruff";
        whole = cachedir_tagged(fd) ||
                head_starts(fd, ".gitignore", "# Automatically created by ruff");
    } else if (strcmp(name, ".ipynb_checkpoints") == 0) {
        topic = "jupyter";
        whole = all_children(fd, jupyter_checkpoint);
    } else if (strcmp(name, "htmlcov") == 0) {
        topic = "coverage";
        whole = head_starts(fd, ".gitignore", "# Created by coverage.py") ||
                is_regular(fd, "coverage_html.js");
    } else if (ends_with(name, ".egg-info")) {
        topic = "package";
        const pyc_walk_dir *grand = e->parent ? pyc_walk_dir_parent(e->parent) : NULL;
        whole = is_regular(fd, "PKG-INFO") &&
                (project_dir(e->dirfd) || (grand && project_dir(pyc_walk_dir_fd(grand))));
    } else if (project_dir(e->dirfd)) {
        topic = "package";
        child_rule *rule = strcmp(name, "build") == 0 ? setuptools_build_child
                                                       : distribution_file;
        if (all_children(fd, rule)) {
            whole = true;
        } else {
            remove_children(db, fd, e->path, rule, topic);
            action = PYC_WALK_PRUNE; /* what is left is not ours */
        }
    }
    close(fd);
    if (whole) {
        remove_run_debris(db->run, e->dirfd, name, e->path, &st, topic);
        action = PYC_WALK_PRUNE;
    }
    return action;
}

static void debris_file(struct debris *db, const pyc_walk_entry *e)
{
    if (!(db->topics & DEBRIS_COVERAGE) || e->type != DT_REG)
        return;
    const char *name = e->name;
    bool data = strcmp(name, ".coverage") == 0 || starts_with(name, ".coverage.");
    bool xml = strcmp(name, "coverage.xml") == 0;
    if (!data && !xml)
        return;
    char buf[1024];
    ssize_t n = read_head(e->dirfd, name, buf, sizeof buf - 1);
    if (n <= 0)
        return;
    buf[n] = '\0';
    bool ours;
    if (data)
        /* coverage.py 5+: an SQLite database; 4.x: its own JSON format. */
        ours = (n >= 16 && memcmp(buf, "SQLite format 3", 16) == 0) ||
               starts_with(buf, "!coverage.py: This is a private format");
    else
        ours = contains(buf, (size_t)n, "Generated by coverage.py");
    if (!ours)
        return;
    struct stat st;
    if (fstatat(e->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return;
    remove_run_debris(db->run, e->dirfd, name, e->path, &st, "coverage");
}

static pyc_walk_action on_debris(const pyc_walk_entry *e, void *ctx)
{
    struct debris *db = ctx;
    pyc_walk_action a = PYC_WALK_CONTINUE;
    switch (e->event) {
    case PYC_WALK_DIR_PRE:
        if (e->depth > 0)
            a = debris_dir(db, e);
        break;
    case PYC_WALK_FILE:
        if (e->depth > 0)
            debris_file(db, e);
        break;
    case PYC_WALK_ERROR:
    case PYC_WALK_DIR_POST:
    case PYC_WALK_FILES_END: /* not asked for */
        break; /* the scan reported the errors already */
    }
    return cli_stdout_failed() ? PYC_WALK_STOP : a;
}

/* ---- the command ------------------------------------------------------------------------- */

int cmd_clean(int argc, char **argv)
{
    cli_parser p = {
        .command = "clean",
        .usage = "[OPTION]... [PATH]...\n"
                 "   or: pycache clean [OPTION]... ARCHIVE (-o OUT | --in-place)",
        .description =
            "Remove all bytecode under each PATH (default: the current directory): "
            "the .pyc/.pyo files in __pycache__ and beside the sources (legacy), "
            "CPython's leftover temp files, then each __pycache__ left empty. Nothing "
            "else is touched: a file in __pycache__ that is not bytecode is kept and "
            "reported (foreign). Links are removed as links, never followed. "
            "Version-control metadata, node_modules and virtual environments are "
            "skipped unless asked for. Prints a summary (-v: every file; -n lists "
            "what would go). An ARCHIVE (zip, wheel, tar in any compression, container "
            "image) is never "
            "changed in place: a copy without the cache members selected and the "
            "__pycache__ directory members left empty is written to -o OUT (or over "
            "it: --in-place), a wheel's RECORD rewritten.",
        .options = options,
        .epilog =
            CLI_PYTHONS_RULE_HELP
            "With --uninstalled, the interpreters that count are printed first (on\n"
            "stderr; not with --json, -0 or -q), and clean refuses to run when it\n"
            "finds none: every cache would go.\n"
            "\n"
            "Debris topics (--debris), each matched only where the tool writes it\n"
            "and by the tool's own mark:\n"
            "  pytest    .pytest_cache/ (with pytest's CACHEDIR.TAG or README.md)\n"
            "  mypy      .mypy_cache/   (with CACHEDIR.TAG or mypy's .gitignore)\n"
            "  ruff      .ruff_cache/   (with CACHEDIR.TAG or ruff's .gitignore)\n"
            "  coverage  .coverage, .coverage.* data files, coverage.xml, htmlcov/\n"
            "  jupyter   .ipynb_checkpoints/ holding only *-checkpoint files\n"
            "  package   beside pyproject.toml/setup.py/setup.cfg: setuptools' build/\n"
            "            (lib, bdist.*, temp.*, scripts-*), dist/'s archives,\n"
            "            NAME.egg-info/ (with PKG-INFO)\n"
            "\n"
            "Examples:\n"
            "  pycache clean -n                  what would go, under the current directory\n"
            "  pycache clean --uninstalled /srv  caches of Pythons no longer installed\n"
            "  pycache clean --keep-tag 3.12 .   everything but Python 3.12's caches\n"
            "  pycache clean --debris all .      bytecode and pytest/mypy/... caches\n"
            "  pycache clean --keep-tag 3.12 layer.zip -o slim.zip\n"
            "\n"
            "A dry run (-n) that finds something to remove exits with 1; a removal that\n"
            "failed exits with 3 (one line per file on stderr; after 10 failures with the\n"
            "same error, the rest are counted in one line).\n",
    };
    tree_options t;
    tree_options_init(&t);
    remove_run_options ropt = {.command = "clean"};
    struct clean c;
    memset(&c, 0, sizeof c);
    unsigned topics = 0;

    cli_parser_init(&p, argc, argv);
    int id, exit_status;
    while ((id = tree_next_option(&p, &t, &exit_status)) > 0) {
        switch (id) {
        case 'n':
            ropt.dry_run = true;
            break;
        case OPT_TAG:
            if (c.nonly == MAX_TAGS)
                return cli_usage_error(p.command, "too many --tag options");
            if (parse_tag(&p, p.optarg, &c.only[c.nonly]) != 0)
                return CLI_EXIT_USAGE;
            c.nonly++;
            break;
        case OPT_KEEP_TAG:
            if (c.nkeep == MAX_TAGS)
                return cli_usage_error(p.command, "too many --keep-tag options");
            if (parse_tag(&p, p.optarg, &c.keep[c.nkeep]) != 0)
                return CLI_EXIT_USAGE;
            c.nkeep++;
            break;
        case OPT_UNINSTALLED:
            c.uninstalled = true;
            break;
        case OPT_DEBRIS:
            if (parse_debris(&p, p.optarg, &topics) != 0)
                return CLI_EXIT_USAGE;
            break;
        }
    }
    if (id < 0)
        return exit_status;
    if ((exit_status = tree_operands(&p, &t)) != 0)
        return exit_status;
    const char *archive, *output;
    int fixing = tree_archive_output(&p, &t, &archive, &output, &exit_status);
    if (fixing < 0) {
        tree_options_free(&t);
        return exit_status;
    }
    if (fixing && topics) {
        tree_options_free(&t);
        return cli_usage_error(p.command, "--debris is for trees: an ARCHIVE holds no tool "
                                          "caches clean knows");
    }
    if (topics && t.scan.prefix_only) {
        tree_options_free(&t);
        cli_listing_finish();
        return cli_usage_error(p.command,
                               "--debris with --prefix needs the PATH whose debris to remove");
    }
    char *const *paths = t.paths;
    size_t npaths = t.npaths;
    scan_options sopt = t.scan;
    sopt.judge = SCAN_JUDGE_NAME;
    ropt.format = t.out.format;
    ropt.verbose = t.out.verbose;
    ropt.quiet = t.out.quiet;
    ropt.color = tree_color(&t);
    /* --json reports each file's verdict: judge it in full. */
    if (ropt.format == CLI_FORMAT_JSON)
        sopt.judge = SCAN_JUDGE_FULL;
    /* The whole prefix tree (--prefix DIR alone): one that does not exist
     * holds nothing to remove. (A mapped prefix subtree that does not
     * exist is skipped by the scan.) */
    c.prefix = sopt.prefix_only;
    sopt.progress = !ropt.quiet && ropt.format == CLI_FORMAT_HUMAN && isatty(STDERR_FILENO);

    c.run = remove_run_new(&ropt);
    if (!c.run) {
        cli_error("out of memory");
        tree_options_free(&t);
        return CLI_EXIT_IO;
    }
    /* act runs in several threads: discover the installed Pythons now, not
     * lazily from inside it. */
    if (c.uninstalled && report_installed(&ropt) != 0) {
        remove_run_free(c.run);
        tree_options_free(&t);
        cli_listing_finish();
        return CLI_EXIT_USAGE;
    }
    if (fixing) {
        int status = remove_run_archive(c.run, archive, output, &t.archive, &t.scan.verdict,
                                        choose, &c);
        status = cli_exit_merge(status, remove_run_finish(c.run));
        remove_run_free(c.run);
        tree_options_free(&t);
        return status;
    }
    sopt.prepare = act;
    sopt.waits_on_device = true;
    int rc;
    int status = remove_run_scan(c.run, paths, npaths, &sopt, on_item, &c, &rc);
    if (rc == 0 && topics) {
        struct debris db = {.run = c.run, .topics = topics};
        static char dot[] = ".";
        static char *const dot_root[] = {dot};
        char *const *droots = npaths ? paths : dot_root;
        size_t nd = npaths ? npaths : sopt.no_roots ? 0 : 1;
        if (pyc_walk((const char *const *)droots, nd, &sopt.walk, on_debris, &db) < 0) {
            cli_error("cannot walk: %s", strerror(errno));
            status = CLI_EXIT_IO;
        }
        free(db.path);
    }
    status = cli_exit_merge(status, remove_run_finish(c.run));
    remove_run_free(c.run);
    tree_options_free(&t);
    return status;
}
