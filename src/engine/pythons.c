/*
 * pythons.c — which Python interpreters are installed here (see pythons.h).
 *
 * DESIGN.md: "Which Python a file belongs to comes from its magic number and
 * tag, never from running Python." The same spirit here: an interpreter's
 * version is read from its file name (python3.11), its resolved symlink
 * (/usr/bin/python3 -> python3.11) or the pyenv directory it lives in
 * (versions/3.11.7/bin/python); only a name that says nothing and resolves
 * to nothing that does (a pyenv shim, a conda "python") is run, once, with
 * -E -S -c and a one-line version probe that works on 2.7 as on 3.x.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/pythons.h"
#include "platform/fd.h"

extern char **environ;

/* ---- versions from names ------------------------------------------------------ */

/* Parses "X.Y" at *P (digits, '.', digits); advances *P past it. */
static bool parse_major_minor(const char **p, int *major, int *minor)
{
    const char *s = *p;
    long a = 0, b = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9' && n < 3) {
        a = a * 10 + (*s++ - '0');
        n++;
    }
    if (n == 0 || *s != '.')
        return false;
    s++;
    n = 0;
    while (*s >= '0' && *s <= '9' && n < 4) {
        b = b * 10 + (*s++ - '0');
        n++;
    }
    if (n == 0)
        return false;
    *major = (int)a;
    *minor = (int)b;
    *p = s;
    return true;
}

const pyc_magic *cli_python_from_name(const char *name)
{
    pyc_implementation impl;
    const char *p;
    int major, minor;

    if (strncmp(name, "python", 6) == 0) {
        impl = PYC_IMPL_CPYTHON;
        p = name + 6;
    } else if (strncmp(name, "pypy", 4) == 0) {
        impl = PYC_IMPL_PYPY;
        p = name + 4;
    } else {
        return NULL;
    }
    if (!parse_major_minor(&p, &major, &minor))
        return NULL;
    /* ABI letters of the build: python3.6m, python3.13t, python3.13td */
    while (*p == 'd' || *p == 'm' || *p == 't' || *p == 'u')
        p++;
    if (*p != '\0')
        return NULL;
    return pyc_magic_final(impl, major, minor);
}

const pyc_magic *cli_python_from_path(const char *path)
{
    const pyc_magic *found = NULL;
    const char *s = path;
    while ((s = strstr(s, "/versions/")) != NULL) {
        const char *p = s + 10;
        pyc_implementation impl = PYC_IMPL_CPYTHON;
        int major, minor;
        s = p;
        if (strncmp(p, "pypy", 4) == 0) {
            impl = PYC_IMPL_PYPY;
            p += 4;
        }
        /* "3.11.7", "3.13.0t", "3.11-dev", "pypy3.10-7.3.12" */
        if (!parse_major_minor(&p, &major, &minor))
            continue;
        if (*p != '\0' && *p != '/' && *p != '.' && *p != '-' && *p != 't')
            continue;
        {
            const pyc_magic *m = pyc_magic_final(impl, major, minor);
            if (m != NULL)
                found = m;
        }
    }
    return found;
}

/* ---- running an interpreter, the last resort -------------------------------------- */

static char probe[] =
    "import sys; i = getattr(sys, 'implementation', None); "
    "sys.stdout.write('%s %d.%d\\n' % (i.name if i else 'cpython', "
    "sys.version_info[0], sys.version_info[1]))";

static const pyc_magic *ask_interpreter(const char *path)
{
    int fds[2], status;
    pid_t pid;
    char buf[128], impl_name[32];
    size_t used = 0;
    posix_spawn_file_actions_t fa;
    char *argv[6], *path_copy;
    char flag_e[] = "-E", flag_s[] = "-S", flag_c[] = "-c";
    int major, minor, devnull;

    path_copy = strdup(path);
    if (path_copy == NULL)
        return NULL;
    if (psys_pipe_cloexec(fds) != 0) {
        free(path_copy);
        return NULL;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        free(path_copy);
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (devnull >= 0) {
        posix_spawn_file_actions_adddup2(&fa, devnull, STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, devnull, STDERR_FILENO);
    }
    argv[0] = path_copy;
    argv[1] = flag_e;
    argv[2] = flag_s;
    argv[3] = flag_c;
    argv[4] = probe;
    argv[5] = NULL;
    if (posix_spawn(&pid, path, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    free(path_copy);
    close(fds[1]);
    if (devnull >= 0)
        close(devnull);
    if (pid < 0) {
        close(fds[0]);
        return NULL;
    }
    for (;;) {
        ssize_t n = read(fds[0], buf + used, sizeof buf - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == sizeof buf - 1)
            break;
    }
    buf[used] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return NULL;
    if (sscanf(buf, "%31s %d.%d", impl_name, &major, &minor) != 3)
        return NULL;
    if (strcmp(impl_name, "cpython") == 0)
        return pyc_magic_final(PYC_IMPL_CPYTHON, major, minor);
    if (strcmp(impl_name, "pypy") == 0)
        return pyc_magic_final(PYC_IMPL_PYPY, major, minor);
    if (strcmp(impl_name, "graalpy") == 0)
        return pyc_magic_final(PYC_IMPL_GRAALPY, major, minor);
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The version of the interpreter at PATH: its name, its resolved name, a
 * pyenv versions/ directory in either path; with ALLOW_RUN, asking it. */
static const pyc_magic *identify(const char *path, bool allow_run)
{
    const pyc_magic *m = cli_python_from_name(base_name(path));
    char *real;
    if (m != NULL)
        return m;
    real = realpath(path, NULL);
    if (real != NULL) {
        m = cli_python_from_name(base_name(real));
        if (m == NULL)
            m = cli_python_from_path(real);
        free(real);
    }
    if (m == NULL)
        m = cli_python_from_path(path);
    if (m == NULL && allow_run)
        m = ask_interpreter(path);
    return m;
}

/* ---- discovery ------------------------------------------------------------------ */

typedef struct found {
    cli_python python;
    char *path;     /* python.path, owned */
    char *real;     /* realpath, for dropping duplicates */
    dev_t dev;      /* and the file itself: pyenv's python3.6 and python3.6m */
    ino_t ino;      /* are hard links of one program, not two interpreters */
} found;

static bool discovered;
static found *found_list;
static cli_python *python_list;
static size_t found_count, found_cap;
static const pyc_magic **magic_list;
static size_t magic_count;

static bool is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

/* Where the interpreter being added was found (discover sets it). */
static const char *finding_in;

static void add_python(const char *path, const pyc_magic *m)
{
    char *real, *copy;
    size_t i;
    struct stat st;
    if (m == NULL || !is_executable_file(path) || stat(path, &st) != 0)
        return;
    real = realpath(path, NULL);
    if (real == NULL)
        return;
    if (strstr(real, "/shims/") != NULL) { /* pyenv shims pick a version */
        free(real);
        return;
    }
    for (i = 0; i < found_count; i++) {
        if (strcmp(found_list[i].real, real) == 0 ||
            (found_list[i].dev == st.st_dev && found_list[i].ino == st.st_ino)) {
            /* Of two names of one program, show the plain one (python3.6,
             * not python3.6m), whatever order the directory lists them in. */
            char *shorter;
            if (strlen(base_name(path)) < strlen(base_name(found_list[i].python.path)) &&
                strcmp(found_list[i].python.found_in ? found_list[i].python.found_in : "",
                       finding_in ? finding_in : "") == 0 &&
                (shorter = strdup(path)) != NULL) {
                free(found_list[i].path);
                found_list[i].path = shorter;
                found_list[i].python.path = shorter;
            }
            free(real);
            return;
        }
    }
    if (found_count == found_cap) {
        size_t cap = found_cap ? found_cap * 2 : 32;
        found *grown = realloc(found_list, cap * sizeof *grown);
        if (grown == NULL) {
            free(real);
            return;
        }
        found_list = grown;
        found_cap = cap;
    }
    copy = strdup(path);
    if (copy == NULL) {
        free(real);
        return;
    }
    found_list[found_count].python.path = copy;
    found_list[found_count].python.magic = m;
    found_list[found_count].python.found_in = finding_in;
    found_list[found_count].path = copy;
    found_list[found_count].real = real;
    found_list[found_count].dev = st.st_dev;
    found_list[found_count].ino = st.st_ino;
    found_count++;
}

static char *join2(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *out = malloc(a + b + 2);
    if (out == NULL)
        return NULL;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return out;
}

/* Adds every pythonX.Y / pypy3.N in DIR; returns how many names matched. */
static size_t scan_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t matched = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        const pyc_magic *m = cli_python_from_name(e->d_name);
        char *path;
        if (m == NULL)
            continue;
        path = join2(dir, e->d_name);
        if (path == NULL)
            continue;
        if (is_executable_file(path)) {
            add_python(path, m);
            matched++;
        }
        free(path);
    }
    closedir(d);
    return matched;
}

/* The home directory: $HOME, else the user's entry in the password
 * database (as a shell's ~ falls back to it), so that `env -i`, cron and
 * daemons still find the user's pyenv. */
static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0')
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] != '\0' ? pw->pw_dir : NULL;
}

char *cli_pyenv_root(void)
{
    const char *root = getenv("PYENV_ROOT"), *home;
    if (root != NULL && root[0] != '\0')
        return strdup(root);
    home = home_dir();
    if (home == NULL)
        return NULL;
    return join2(home, ".pyenv");
}

const char *cli_search_path(void)
{
    static char *fallback;
    const char *env = getenv("PATH");
    if (env != NULL)
        return env;
    /* execvp's rule with no PATH: the system's default search path
     * (confstr _CS_PATH, "/bin:/usr/bin" on glibc). */
    if (fallback == NULL) {
        size_t n = confstr(_CS_PATH, NULL, 0);
        if (n > 0 && (fallback = malloc(n)) != NULL)
            confstr(_CS_PATH, fallback, n);
    }
    return fallback != NULL ? fallback : "/bin:/usr/bin";
}

static void scan_pyenv(void)
{
    char *root = cli_pyenv_root(), *versions;
    DIR *d;
    struct dirent *e;
    if (root == NULL)
        return;
    versions = join2(root, "versions");
    free(root);
    if (versions == NULL)
        return;
    d = opendir(versions);
    if (d == NULL) {
        free(versions);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *dir, *bin, *python;
        if (e->d_name[0] == '.')
            continue;
        dir = join2(versions, e->d_name);
        bin = dir ? join2(dir, "bin") : NULL;
        if (bin != NULL && scan_dir(bin) == 0) {
            /* no pythonX.Y inside: the directory's name says the version */
            python = join2(bin, "python");
            if (python != NULL)
                add_python(python, cli_python_from_path(python));
            free(python);
        }
        free(bin);
        free(dir);
    }
    closedir(d);
    free(versions);
}

static int compare_magic(const void *a, const void *b)
{
    const pyc_magic *x = *(const pyc_magic *const *)a;
    const pyc_magic *y = *(const pyc_magic *const *)b;
    if (x->implementation != y->implementation)
        return (int)x->implementation - (int)y->implementation;
    if (x->major != y->major)
        return x->major - y->major;
    return x->minor - y->minor;
}

static void discover(void)
{
    const char *env;
    size_t i, j;
    if (discovered)
        return;
    discovered = true;

    finding_in = "PYCACHE_PYTHONS";
    env = getenv("PYCACHE_PYTHONS");
    if (env != NULL) {
        char *list = strdup(env), *save = NULL, *tok;
        for (tok = list ? strtok_r(list, ":", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, ":", &save))
            add_python(tok, identify(tok, true));
        free(list);
    }
    finding_in = "PATH";
    env = cli_search_path();
    if (env != NULL) {
        char *list = strdup(env), *save = NULL, *tok;
        for (tok = list ? strtok_r(list, ":", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, ":", &save))
            if (tok[0] == '/') /* relative entries depend on the cwd */
                scan_dir(tok);
        free(list);
    }
    finding_in = "pyenv";
    scan_pyenv();

    python_list = malloc((found_count ? found_count : 1) * sizeof *python_list);
    magic_list = malloc((found_count ? found_count : 1) * sizeof *magic_list);
    if (python_list == NULL || magic_list == NULL) {
        free(python_list);
        free(magic_list);
        python_list = NULL;
        magic_list = NULL;
        found_count = 0;
        return;
    }
    for (i = 0; i < found_count; i++) {
        python_list[i] = found_list[i].python;
        for (j = 0; j < magic_count; j++)
            if (magic_list[j] == found_list[i].python.magic)
                break;
        if (j == magic_count)
            magic_list[magic_count++] = found_list[i].python.magic;
    }
    qsort(magic_list, magic_count, sizeof *magic_list, compare_magic);
}

size_t cli_python_list(const cli_python **out)
{
    discover();
    if (out)
        *out = python_list;
    return found_count;
}

size_t cli_installed_pythons(const pyc_magic ***out)
{
    discover();
    if (out)
        *out = magic_list;
    return magic_count;
}

bool cli_python_installed(const pyc_magic *m)
{
    size_t i;
    const pyc_magic *final;
    if (m == NULL)
        return false;
    discover();
    final = pyc_magic_final(m->implementation, m->major, m->minor);
    for (i = 0; i < magic_count; i++)
        if (magic_list[i] == m || magic_list[i] == final)
            return true;
    return false;
}

const pyc_magic *cli_default_python(void)
{
    static bool done;
    static const pyc_magic *result;
    const char *env;
    char *list, *save = NULL, *tok;
    if (done)
        return result;
    done = true;
    env = cli_search_path();
    list = strdup(env);
    for (tok = list ? strtok_r(list, ":", &save) : NULL; tok != NULL;
         tok = strtok_r(NULL, ":", &save)) {
        char *path = join2(tok, "python3");
        if (path != NULL && is_executable_file(path)) {
            result = identify(path, true);
            free(path);
            break;
        }
        free(path);
    }
    free(list);
    return result;
}
