/*
 * git.h — the git program, run as a child process, for the commands that
 * ask git about a repository (doctor).
 *
 * git is run through posix_spawnp ("git" on $PATH), never through a shell;
 * callers ask for -z outputs (NUL-separated records) and pass file names
 * after `--literal-pathspecs` (a name is never a glob), so any byte a file
 * name may hold passes through unchanged.
 *
 * Why the program and not libgit2: the answers must be git's own. `git
 * check-ignore` applies every exclude source exactly as `git add` will —
 * nested .gitignore files, .git/info/exclude, core.excludesFile and the
 * default global excludes ($XDG_CONFIG_HOME/git/ignore), negations,
 * directory-only patterns, the user's configuration — which a library with
 * its own implementation could only approximate; and git is already
 * installed wherever a repository is, where libgit2 would be one more build
 * and run-time dependency.
 */
#ifndef PYCACHE_CLI_GIT_H
#define PYCACHE_CLI_GIT_H

#include <stddef.h>

/* What a git run printed and how it ended. */
typedef struct git_output {
    int status;     /* the exit status; 128 + N when killed by signal N */
    char *out;      /* stdout, NUL-terminated (it may hold NULs: -z) */
    size_t out_len;
    char *err;      /* stderr, NUL-terminated */
    size_t err_len;
} git_output;

/* Runs `git -C DIR ARGS...` (ARGS NULL-terminated, git's global options
 * first if any; DIR NULL: the current directory), with INPUT (INPUT_LEN bytes, may be NULL
 * for none) on its standard input, and collects both outputs. Returns 0
 * when git ran, whatever its exit status (OUT filled: free it with
 * git_output_free); -1 with errno when it could not be run: ENOENT when
 * there is no git on $PATH, else the failing call's error (OUT empty). */
int git_run(const char *dir, const char *const *args, const void *input,
            size_t input_len, git_output *out);

void git_output_free(git_output *out);

/* The first line of what git wrote on stderr, without git's "fatal: " or
 * "error: " prefix, in BUF (CAP bytes); "" when it wrote nothing. */
void git_error_line(const git_output *out, char *buf, size_t cap);

#endif /* PYCACHE_CLI_GIT_H */
