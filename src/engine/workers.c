/*
 * workers.c — the interpreter worker pool of `pycache compile` (workers.h).
 *
 * Each worker is `PYTHON -S -s -B [FLAGS] -c WORKER_PY` (worker_py.h):
 *   -S  no site: no .pth hooks, no user site, a faster start;
 *   -s  no user site directory (for interpreters where -S leaves a gap);
 *   -B  the worker writes no bytecode for its own imports (py_compile still
 *       writes what it is asked to: checked on 2.7 and 3.6-3.13);
 * and an environment without the PYTHON* variables that would change what
 * it imports or writes (PYTHONPATH, PYTHONSTARTUP, PYTHONPYCACHEPREFIX,
 * PYTHONOPTIMIZE, PYTHONDONTWRITEBYTECODE, ...) — but with PYTHONHASHSEED,
 * PYTHONHOME and the locale ones kept, which -E/-I would drop: the hash seed
 * decides the order of frozenset constants in the marshalled code, so
 * reproducible builds set it. The program removes the cwd from sys.path
 * itself (-I does that only from 3.4). SOURCE_DATE_EPOCH is dropped too:
 * pycache passes the invalidation mode explicitly.
 *
 * The channel is a socket pair on the worker's fd 3 (stdin /dev/null, stdout
 * to our stderr): send(MSG_NOSIGNAL) turns a dead worker into EPIPE instead
 * of a SIGPIPE that would kill pycache.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/output.h"
#include "engine/worker_py.h"
#include "engine/workers.h"

extern char **environ;

/* ---- messages ---------------------------------------------------------------------- */

static void msg_reserve(worker_msg *m, size_t more)
{
    if (m->failed)
        return;
    if (m->len + more <= m->cap)
        return;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < m->len + more)
        cap *= 2;
    unsigned char *nb = realloc(m->buf, cap);
    if (!nb) {
        m->failed = true;
        return;
    }
    m->buf = nb;
    m->cap = cap;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void worker_msg_init(worker_msg *m)
{
    memset(m, 0, sizeof *m);
    msg_reserve(m, 4);
    if (!m->failed) {
        put_u32(m->buf, 0);
        m->len = 4;
    }
}

void worker_msg_add(worker_msg *m, const void *data, size_t len)
{
    if (len > UINT32_MAX - 8) {
        m->failed = true;
        return;
    }
    msg_reserve(m, 4 + len);
    if (m->failed)
        return;
    put_u32(m->buf + m->len, (uint32_t)len);
    if (len)
        memcpy(m->buf + m->len + 4, data, len);
    m->len += 4 + len;
    put_u32(m->buf, (uint32_t)(m->len - 4));
}

void worker_msg_add_str(worker_msg *m, const char *s)
{
    worker_msg_add(m, s, strlen(s));
}

void worker_msg_add_int(worker_msg *m, long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", value);
    worker_msg_add_str(m, buf);
}

void worker_msg_free(worker_msg *m)
{
    free(m->buf);
    memset(m, 0, sizeof *m);
}

/* Splits a message body into fields (at most MAX). Returns the count, or
 * -1 when the body is malformed. */
static long parse_fields(const unsigned char *body, size_t len, worker_field *out,
                         size_t max)
{
    size_t i = 0, n = 0;
    while (i < len) {
        if (len - i < 4 || n == max)
            return -1;
        uint32_t k = get_u32(body + i);
        i += 4;
        if (k > len - i)
            return -1;
        out[n].data = (const char *)body + i;
        out[n].len = k;
        n++;
        i += k;
    }
    return (long)n;
}

static bool field_is(const worker_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

/* ---- the pool ----------------------------------------------------------------------- */

enum worker_state { W_FREE = 0, W_STARTING, W_IDLE, W_BUSY };

struct worker {
    enum worker_state state;
    pid_t pid;
    int fd;
    size_t job;          /* index in pool->jobs when busy */
    unsigned char *in;   /* bytes received, not yet a whole message */
    size_t in_len, in_cap;
};

struct job {
    size_t id;
    const char *label;
    unsigned char *msg;
    size_t len;
    int deaths; /* workers that died on it */
};

#define MAX_FIELDS 64

struct worker_pool {
    char *python;
    char **argv;
    char *label;
    uint32_t expect_word;
    unsigned nworkers;
    struct worker *w;

    struct job *jobs;
    size_t njobs, jobs_cap;
    size_t *queue; /* job indexes not yet sent; retries go first */
    size_t qhead, qtail, qcap;

    unsigned started;   /* processes started */
    unsigned deaths;    /* workers that died */
    bool said_hello;    /* some worker got as far as its first message */
    bool failed;        /* no more workers will be started */
    worker_hello hello; /* the last worker's first message */
};

/* The worker's environment: ours without the variables that change what
 * the interpreter imports or writes (see the top of this file). */
static char **worker_environ(void)
{
    static char **env;
    static const char *const keep[] = {
        "PYTHONHASHSEED=", "PYTHONHOME=", "PYTHONUTF8=", "PYTHONCOERCECLOCALE=",
        "PYTHONIOENCODING=", "PYTHONPLATLIBDIR=", "PYTHONLEGACYWINDOWSFSENCODING=", NULL,
    };
    if (env)
        return env;
    size_t n = 0;
    while (environ[n])
        n++;
    env = calloc(n + 1, sizeof *env);
    if (!env)
        return environ;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "SOURCE_DATE_EPOCH=", 18) == 0)
            continue;
        if (strncmp(e, "PYTHON", 6) == 0) {
            bool kept = false;
            for (size_t j = 0; keep[j]; j++)
                if (strncmp(e, keep[j], strlen(keep[j])) == 0)
                    kept = true;
            if (!kept)
                continue;
        }
        env[k++] = environ[i];
    }
    env[k] = NULL;
    return env;
}

worker_pool *worker_pool_new(const char *python, const char *const *flags,
                             unsigned nworkers, const char *label,
                             uint32_t expect_word)
{
    worker_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t nflags = 0;
    while (flags && flags[nflags])
        nflags++;
    p->nworkers = nworkers ? nworkers : 1;
    p->expect_word = expect_word;
    p->python = strdup(python);
    p->label = strdup(label);
    p->w = calloc(p->nworkers, sizeof *p->w);
    p->argv = calloc(nflags + 7, sizeof *p->argv);
    if (!p->python || !p->label || !p->w || !p->argv)
        goto fail;
    size_t a = 0;
    static char opt_S[] = "-S", opt_s[] = "-s", opt_B[] = "-B", opt_c[] = "-c";
    p->argv[a++] = p->python;
    p->argv[a++] = opt_S;
    p->argv[a++] = opt_s;
    p->argv[a++] = opt_B;
    for (size_t i = 0; i < nflags; i++)
        p->argv[a++] = (char *)(uintptr_t)flags[i];
    p->argv[a++] = opt_c;
    p->argv[a++] = (char *)(uintptr_t)worker_py;
    p->argv[a] = NULL;
    for (unsigned i = 0; i < p->nworkers; i++)
        p->w[i].fd = -1;
    return p;
fail:
    free(p->python);
    free(p->label);
    free(p->w);
    free(p->argv);
    free(p);
    return NULL;
}

unsigned worker_pool_started(const worker_pool *p)
{
    return p ? p->started : 0;
}

int worker_pool_submit(worker_pool *p, size_t job, const char *label, worker_msg *msg)
{
    if (msg->failed) {
        worker_msg_free(msg);
        errno = ENOMEM;
        return -1;
    }
    if (p->njobs == p->jobs_cap) {
        size_t cap = p->jobs_cap ? p->jobs_cap * 2 : 256;
        struct job *nj = realloc(p->jobs, cap * sizeof *nj);
        if (!nj)
            return -1;
        p->jobs = nj;
        p->jobs_cap = cap;
    }
    /* The queue holds each job at most once at a time, plus retries: one
     * slot per job and per worker is enough. */
    size_t need = p->njobs + 1 + p->nworkers + 1;
    if (need > p->qcap) {
        size_t cap = p->qcap ? p->qcap * 2 : 256;
        while (cap < need)
            cap *= 2;
        size_t *nq = malloc(cap * sizeof *nq);
        if (!nq)
            return -1;
        size_t n = 0;
        for (size_t i = p->qhead; i != p->qtail; i = (i + 1) % p->qcap)
            nq[n++] = p->queue[i];
        free(p->queue);
        p->queue = nq;
        p->qcap = cap;
        p->qhead = 0;
        p->qtail = n;
    }
    struct job *j = &p->jobs[p->njobs];
    j->id = job;
    j->label = label;
    j->msg = msg->buf;
    j->len = msg->len;
    j->deaths = 0;
    msg->buf = NULL;
    worker_msg_free(msg);
    p->queue[p->qtail] = p->njobs++;
    p->qtail = (p->qtail + 1) % p->qcap;
    return 0;
}

static size_t queued(const worker_pool *p)
{
    return p->qcap ? (p->qtail + p->qcap - p->qhead) % p->qcap : 0;
}

static size_t dequeue(worker_pool *p)
{
    size_t j = p->queue[p->qhead];
    p->qhead = (p->qhead + 1) % p->qcap;
    return j;
}

/* A retried job goes to the front of the queue. */
static void requeue_front(worker_pool *p, size_t j)
{
    p->qhead = (p->qhead + p->qcap - 1) % p->qcap;
    p->queue[p->qhead] = j;
}

static void finish_job(worker_pool *p, size_t j)
{
    free(p->jobs[j].msg);
    p->jobs[j].msg = NULL;
}

/* ---- processes ------------------------------------------------------------------------ */

static int spawn_worker(worker_pool *p, struct worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    /* dup2(fd, 3) with fd already 3 would keep its close-on-exec flag. */
    if (sv[1] == 3) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
        if (moved < 0) {
            close(sv[0]);
            close(sv[1]);
            return -1;
        }
        close(sv[1]);
        sv[1] = moved;
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0 && posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        rc = -1;
    }
    if (rc != 0 || devnull < 0) {
        int e = devnull < 0 ? errno : ENOMEM;
        if (rc == 0) {
            posix_spawn_file_actions_destroy(&fa);
            posix_spawnattr_destroy(&attr);
        }
        if (devnull >= 0)
            close(devnull);
        close(sv[0]);
        close(sv[1]);
        errno = e;
        return -1;
    }
    posix_spawn_file_actions_adddup2(&fa, devnull, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    rc = posix_spawn(&pid, p->python, &fa, &attr, p->argv, worker_environ());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(devnull);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        errno = rc;
        return -1;
    }
    p->started++;
    w->pid = pid;
    w->fd = sv[0];
    w->state = W_STARTING;
    w->in_len = 0;
    return 0;
}

/* Waits for a worker that closed its end: it is exiting; give it a moment
 * to finish before insisting. Describes how it ended into BUF. */
static void reap(pid_t pid, char *buf, size_t cap)
{
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 300 && r == 0; i++) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else if (r < 0 && errno == EINTR) {
            r = 0;
        }
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
    }
    if (r < 0)
        snprintf(buf, cap, "ended");
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d, %s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, cap, "ended");
}

static void lose_all(worker_pool *p, const worker_callbacks *cb, const char *why)
{
    while (queued(p)) {
        size_t j = dequeue(p);
        cb->lost(cb->ctx, p->jobs[j].id, why);
        finish_job(p, j);
    }
}

/* Stops the pool for good: no new workers; queued jobs are given up. */
static void pool_fail(worker_pool *p, const worker_callbacks *cb, const char *why)
{
    p->failed = true;
    if (cb)
        lose_all(p, cb, why);
}

/* The worker's socket closed or failed: reap it, report, retry its job. */
static void worker_died(worker_pool *p, struct worker *w, const worker_callbacks *cb)
{
    char how[128];
    close(w->fd);
    w->fd = -1;
    reap(w->pid, how, sizeof how);
    enum worker_state was = w->state;
    w->state = W_FREE;
    p->deaths++;
    if (was == W_STARTING) {
        if (!p->said_hello) {
            cli_error("cannot start Python %s worker '%s': %s before it was ready",
                      p->label, p->python, how);
            pool_fail(p, cb, "its interpreter could not be started");
        } else {
            cli_error("a Python %s worker (pid %ld) %s before it was ready", p->label,
                      (long)w->pid, how);
        }
        return;
    }
    if (was != W_BUSY)
        return;
    struct job *j = &p->jobs[w->job];
    j->deaths++;
    if (j->deaths >= 2) {
        char why[192];
        snprintf(why, sizeof why, "the Python %s interpreter died twice compiling it (%s)",
                 p->label, how);
        if (cb)
            cb->lost(cb->ctx, j->id, why);
        finish_job(p, w->job);
    } else {
        cli_message_prefix();
        fprintf(stderr, "the Python %s worker (pid %ld) %s while compiling '",
                p->label, (long)w->pid, how);
        cli_print_path(stderr, j->label);
        fputs("': trying it once more on another worker\n", stderr);
        requeue_front(p, w->job);
    }
}

/* Handles one whole message from worker W. */
static void on_message(worker_pool *p, struct worker *w, const unsigned char *body,
                       size_t len, const worker_callbacks *cb)
{
    worker_field f[MAX_FIELDS];
    long n = parse_fields(body, len, f, MAX_FIELDS);
    if (w->state == W_STARTING && n >= 7 && field_is(&f[0], "H")) {
        worker_hello h;
        memset(&h, 0, sizeof h);
        snprintf(h.implementation, sizeof h.implementation, "%.*s", (int)f[1].len,
                 f[1].data);
        char version[16];
        snprintf(version, sizeof version, "%.*s", (int)f[2].len, f[2].data);
        sscanf(version, "%d.%d", &h.major, &h.minor);
        if (f[3].len == 4) {
            const unsigned char *m = (const unsigned char *)f[3].data;
            h.magic_word = (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 |
                           (uint32_t)m[3] << 24;
        }
        snprintf(h.tag, sizeof h.tag, "%.*s", (int)f[4].len, f[4].data);
        for (size_t i = 0; i < f[5].len && f[5].data[i] >= '0' && f[5].data[i] <= '9'; i++)
            h.optimize = h.optimize * 10 + (f[5].data[i] - '0');
        h.pid = (long)w->pid;
        p->hello = h;
        if (p->expect_word && h.magic_word != p->expect_word) {
            w->state = W_IDLE;
            if (p->failed)
                return; /* said already, for its first worker */
            const pyc_magic *m = pyc_magic_lookup(h.magic_word);
            const pyc_magic *want = pyc_magic_lookup(p->expect_word);
            cli_error("'%s' is Python %d.%d (magic %u), not %d.%d (magic %u): "
                      "nothing compiled for it",
                      p->python, h.major, h.minor, m ? m->number : 0,
                      want ? want->major : 0, want ? want->minor : 0,
                      want ? want->number : 0);
            pool_fail(p, cb, "the interpreter is not the version its name says");
            return;
        }
        p->said_hello = true;
        w->state = W_IDLE;
        return;
    }
    if (w->state == W_BUSY && n >= 2 && field_is(&f[0], "R")) {
        struct job *j = &p->jobs[w->job];
        w->state = W_IDLE;
        if (cb)
            cb->done(cb->ctx, j->id, f + 2, (size_t)n - 2);
        finish_job(p, w->job);
        return;
    }
    /* Anything else: the worker is not speaking our protocol. */
    cli_error("a Python %s worker (pid %ld) sent a malformed message: stopping it",
              p->label, (long)w->pid);
    kill(w->pid, SIGKILL);
    worker_died(p, w, cb);
}

/* Reads what worker W sent; dispatches whole messages. */
static void read_worker(worker_pool *p, struct worker *w, const worker_callbacks *cb)
{
    for (;;) {
        if (w->in_cap - w->in_len < 4096) {
            size_t cap = w->in_cap ? w->in_cap * 2 : 8192;
            unsigned char *nb = realloc(w->in, cap);
            if (!nb) {
                cli_error("out of memory reading from a worker");
                kill(w->pid, SIGKILL);
                worker_died(p, w, cb);
                return;
            }
            w->in = nb;
            w->in_cap = cap;
        }
        ssize_t r = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            worker_died(p, w, cb);
            return;
        }
        w->in_len += (size_t)r;
    }
    size_t off = 0;
    while (w->state != W_FREE && w->in_len - off >= 4) {
        uint32_t n = get_u32(w->in + off);
        if (w->in_len - off - 4 < n)
            break;
        on_message(p, w, w->in + off + 4, n, cb);
        off += 4 + (size_t)n;
    }
    if (w->state == W_FREE)
        w->in_len = 0;
    else if (off) {
        memmove(w->in, w->in + off, w->in_len - off);
        w->in_len -= off;
    }
}

static bool send_all(int fd, const unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        len -= (size_t)r;
    }
    return true;
}

static size_t live_workers(const worker_pool *p, size_t *busy)
{
    size_t n = 0, b = 0;
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (p->w[i].state != W_FREE)
            n++;
        if (p->w[i].state == W_BUSY)
            b++;
    }
    if (busy)
        *busy = b;
    return n;
}

/* Starts workers up to what the queue needs, and hands jobs to idle ones. */
static void pool_step(worker_pool *p, const worker_callbacks *cb)
{
    size_t busy;
    size_t live = live_workers(p, &busy);
    /* Deaths beyond this many are not from one bad file: stop restarting. */
    if (!p->failed && p->deaths > p->nworkers + 8) {
        cli_error("Python %s workers keep dying: giving up on its remaining files",
                  p->label);
        pool_fail(p, cb, "its interpreter kept dying");
    }
    if (!p->failed) {
        for (unsigned i = 0; i < p->nworkers && live < queued(p) + busy; i++) {
            if (p->w[i].state != W_FREE)
                continue;
            if (spawn_worker(p, &p->w[i]) != 0) {
                cli_error("cannot run '%s': %s", p->python, strerror(errno));
                if (live == 0)
                    pool_fail(p, cb, "its interpreter could not be started");
                break;
            }
            live++;
        }
    }
    if (p->failed && live == 0)
        lose_all(p, cb, "its interpreter could not be run");
    for (unsigned i = 0; i < p->nworkers && queued(p); i++) {
        struct worker *w = &p->w[i];
        if (w->state != W_IDLE || p->failed)
            continue;
        size_t j = dequeue(p);
        w->job = j;
        w->state = W_BUSY;
        if (!send_all(w->fd, p->jobs[j].msg, p->jobs[j].len))
            worker_died(p, w, cb);
    }
}

int workers_run(worker_pool *const *pools, size_t npools, const worker_callbacks *cb)
{
    size_t cap = 0;
    for (size_t i = 0; i < npools; i++)
        cap += pools[i]->nworkers;
    struct pollfd *fds = calloc(cap ? cap : 1, sizeof *fds);
    struct worker **owner = calloc(cap ? cap : 1, sizeof *owner);
    size_t *pool_of = calloc(cap ? cap : 1, sizeof *pool_of);
    if (!fds || !owner || !pool_of) {
        free(fds);
        free(owner);
        free(pool_of);
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < npools; i++) {
            worker_pool *p = pools[i];
            pool_step(p, cb);
            for (unsigned k = 0; k < p->nworkers; k++) {
                struct worker *w = &p->w[k];
                if (w->state == W_STARTING || w->state == W_BUSY) {
                    fds[n].fd = w->fd;
                    fds[n].events = POLLIN;
                    fds[n].revents = 0;
                    owner[n] = w;
                    pool_of[n] = i;
                    n++;
                }
            }
        }
        if (n == 0) {
            /* Nothing in flight: done, unless a pool still has jobs it
             * could start workers for (pool_step did what it could). */
            bool more = false;
            for (size_t i = 0; i < npools; i++)
                if (queued(pools[i]) && !pools[i]->failed)
                    more = true;
            if (!more)
                break;
            continue;
        }
        int r = poll(fds, (nfds_t)n, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            if (fds[k].revents && owner[k]->state != W_FREE && owner[k]->fd == fds[k].fd)
                read_worker(pools[pool_of[k]], owner[k], cb);
        }
    }
    int e = errno;
    free(fds);
    free(owner);
    free(pool_of);
    errno = e;
    return rc;
}

int worker_pool_probe(worker_pool *p, worker_hello *out)
{
    struct worker *w = &p->w[0];
    if (spawn_worker(p, w) != 0) {
        cli_error("cannot run '%s': %s", p->python, strerror(errno));
        return -1;
    }
    while (w->state == W_STARTING) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        read_worker(p, w, NULL);
    }
    if (w->state != W_IDLE || p->failed)
        return -1; /* worker_died or on_message said why */
    *out = p->hello;
    return 0;
}

void worker_pool_free(worker_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (p->w[i].state != W_FREE && p->w[i].fd >= 0) {
            close(p->w[i].fd);
            p->w[i].fd = -1;
        }
    }
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (p->w[i].state != W_FREE) {
            int status;
            while (waitpid(p->w[i].pid, &status, 0) < 0 && errno == EINTR)
                ;
        }
        free(p->w[i].in);
    }
    for (size_t j = 0; j < p->njobs; j++)
        free(p->jobs[j].msg);
    free(p->jobs);
    free(p->queue);
    free(p->w);
    free(p->argv);
    free(p->python);
    free(p->label);
    free(p);
}
