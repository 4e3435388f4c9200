/*
 * git.c — running the git program: posix_spawnp with three pipes, a poll
 * loop that feeds stdin while draining stdout and stderr (so neither side
 * can block the other), and waitpid. See git.h for why the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/git.h"
#include "platform/fd.h"

extern char **environ;

struct buffer {
    char *data;
    size_t len, cap;
};

static int buffer_read(struct buffer *b, int fd, bool *eof)
{
    if (b->cap - b->len < 4096 + 1) {
        size_t cap = b->cap ? b->cap * 2 : 8192;
        char *nd = realloc(b->data, cap);
        if (!nd)
            return -1;
        b->data = nd;
        b->cap = cap;
    }
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0)
        *eof = true;
    b->len += (size_t)n;
    return 0;
}

static char *buffer_finish(struct buffer *b)
{
    if (!b->data) {
        b->data = malloc(1);
        if (!b->data)
            return NULL;
    }
    b->data[b->len] = '\0';
    return b->data;
}

/* posix_spawn takes char *const argv[] for historical reasons; it never
 * writes to the strings. */
static char *arg(const char *s)
{
    return (char *)(uintptr_t)s;
}

static void close_pair(int fds[2])
{
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    fds[0] = fds[1] = -1;
}

int git_run(const char *dir, const char *const *args, const void *input,
            size_t input_len, git_output *out)
{
    memset(out, 0, sizeof *out);
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    /* "git" ["-C" DIR] ARGS... NULL */
    char **argv = calloc(nargs + 4, sizeof *argv);
    if (!argv)
        return -1;
    size_t k = 0;
    argv[k++] = arg("git");
    if (dir) {
        argv[k++] = arg("-C");
        argv[k++] = arg(dir);
    }
    for (size_t i = 0; i < nargs; i++)
        argv[k++] = arg(args[i]);
    argv[k] = NULL;

    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
    int saved = 0;
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    struct buffer bo = {0}, be = {0};

    if (psys_pipe_cloexec(in) != 0 || psys_pipe_cloexec(o) != 0 || psys_pipe_cloexec(e) != 0)
        goto fail;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto fail;
    fa_ok = true;
    if (posix_spawnattr_init(&attr) != 0)
        goto fail;
    attr_ok = true;
    /* The child gets SIGPIPE's default action even though we ignore it
     * while feeding its stdin (an ignored signal stays ignored across
     * exec). */
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    if (posix_spawnattr_setsigdefault(&attr, &def) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, e[1], STDERR_FILENO) != 0)
        goto fail;
    int rc = posix_spawnp(&pid, "git", &fa, &attr, argv, environ);
    if (rc != 0) {
        errno = rc;
        pid = -1;
        goto fail;
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    in[0] = o[1] = e[1] = -1;
    if (!input_len) {
        close(in[1]);
        in[1] = -1;
    } else {
        fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    }

    /* git may stop reading early: a write then fails with EPIPE instead of
     * killing us. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    size_t written = 0;
    bool out_eof = false, err_eof = false;
    int io_error = 0;
    while (!out_eof || !err_eof) {
        struct pollfd p[3];
        nfds_t np = 0;
        int io = -1, oo = -1, eo = -1;
        if (in[1] >= 0) {
            p[np] = (struct pollfd){.fd = in[1], .events = POLLOUT};
            io = (int)np++;
        }
        if (!out_eof) {
            p[np] = (struct pollfd){.fd = o[0], .events = POLLIN};
            oo = (int)np++;
        }
        if (!err_eof) {
            p[np] = (struct pollfd){.fd = e[0], .events = POLLIN};
            eo = (int)np++;
        }
        if (poll(p, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            io_error = errno;
            break;
        }
        if (io >= 0 && p[io].revents) {
            ssize_t n = write(in[1], (const char *)input + written, input_len - written);
            if (n > 0)
                written += (size_t)n;
            if ((n < 0 && errno != EINTR && errno != EAGAIN) || written == input_len) {
                close(in[1]); /* done, or git stopped reading (EPIPE) */
                in[1] = -1;
            }
        }
        if (oo >= 0 && p[oo].revents && buffer_read(&bo, o[0], &out_eof) != 0) {
            io_error = errno;
            break;
        }
        if (eo >= 0 && p[eo].revents && buffer_read(&be, e[0], &err_eof) != 0) {
            io_error = errno;
            break;
        }
    }
    sigaction(SIGPIPE, &old_pipe, NULL);
    close_pair(in);
    close_pair(o);
    close_pair(e);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0;
            if (!io_error)
                io_error = errno;
            break;
        }
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(argv);
    if (io_error || !buffer_finish(&bo) || !buffer_finish(&be)) {
        free(bo.data);
        free(be.data);
        errno = io_error ? io_error : ENOMEM;
        return -1;
    }
    out->status = WIFEXITED(status) ? WEXITSTATUS(status)
                  : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 128;
    out->out = bo.data;
    out->out_len = bo.len;
    out->err = be.data;
    out->err_len = be.len;
    return 0;

fail:
    saved = errno;
    close_pair(in);
    close_pair(o);
    close_pair(e);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    free(argv);
    errno = saved;
    return -1;
}

void git_output_free(git_output *out)
{
    if (!out)
        return;
    free(out->out);
    free(out->err);
    memset(out, 0, sizeof *out);
}

void git_error_line(const git_output *out, char *buf, size_t cap)
{
    if (!cap)
        return;
    buf[0] = '\0';
    if (!out->err)
        return;
    const char *s = out->err;
    static const char *const prefixes[] = {"fatal: ", "error: ", "warning: "};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(s, prefixes[i], n) == 0) {
            s += n;
            break;
        }
    }
    size_t len = strcspn(s, "\n");
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
}
