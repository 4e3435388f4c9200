/*
 * platform/watch.c — inotify, or polling (platform/watch.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform/dir.h"
#include "platform/fd.h"
#include "platform/watch.h"

#if PYC_HAVE_INOTIFY
#include <sys/signalfd.h>

#define EVENT_BUFFER (256 * 1024)

struct psys_watch {
    int fd;
    bool use_proc; /* add watches through /proc/self/fd/N */
    char *buf;
};

psys_watch *psys_watch_open(void)
{
    psys_watch *pw = calloc(1, sizeof *pw);
    if (!pw || !(pw->buf = malloc(EVENT_BUFFER))) {
        free(pw);
        errno = ENOMEM;
        return NULL;
    }
    pw->use_proc = true;
    pw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (pw->fd < 0) {
        int saved = errno;
        free(pw->buf);
        free(pw);
        errno = saved;
        return NULL;
    }
    return pw;
}

void psys_watch_close(psys_watch *pw)
{
    if (!pw)
        return;
    close(pw->fd);
    free(pw->buf);
    free(pw);
}

int psys_watch_fd(const psys_watch *pw)
{
    return pw->fd;
}

int psys_watch_timeout(psys_watch *pw)
{
    (void)pw;
    return -1;
}

int psys_watch_add(psys_watch *pw, int fd, const char *path, bool follow, uint32_t mask)
{
    int wd = -1;
    if (pw->use_proc) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(pw->fd, proc, mask);
        if (wd < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) != 0)
            pw->use_proc = false; /* no /proc: by path, not following links */
    }
    if (!pw->use_proc)
        wd = inotify_add_watch(pw->fd, path, mask | (follow ? 0 : IN_DONT_FOLLOW));
    return wd;
}

void psys_watch_rm(psys_watch *pw, int wd)
{
    inotify_rm_watch(pw->fd, wd);
}

int psys_watch_dispatch(psys_watch *pw, void (*fn)(const psys_watch_event *ev, void *ctx),
                        void *ctx)
{
    for (;;) {
        ssize_t n = read(pw->fd, pw->buf, EVENT_BUFFER);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        for (char *p = pw->buf; p < pw->buf + n;) {
            const struct inotify_event *ie = (const struct inotify_event *)(void *)p;
            psys_watch_event ev = {ie->wd, ie->mask, ie->cookie, ie->len ? ie->name : ""};
            fn(&ev, ctx);
            p += sizeof *ie + ie->len;
        }
    }
}

int psys_signal_fd(const sigset_t *set)
{
    if (sigprocmask(SIG_BLOCK, set, NULL) != 0)
        return -1;
    return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
}

bool psys_signal_take(int fd)
{
    struct signalfd_siginfo si;
    return read(fd, &si, sizeof si) == (ssize_t)sizeof si;
}

#else /* polling */

/* One entry of a directory as last listed. */
struct entry {
    char *name;
    ino_t ino;
    bool dir;
};

struct dirwatch {
    int wd;
    char *path; /* NULL: removed */
    bool follow;
    uint32_t mask;
    dev_t dev;
    ino_t ino;
    struct entry *ents; /* sorted by name */
    size_t nents;
};

struct psys_watch {
    struct dirwatch *w; /* by increasing wd */
    size_t n, cap;
    int next_wd;
    struct timespec due;
};

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* The type of entry NAME of the directory open on FD, reusing what OLD (the
 * previous listing, sorted) knew of the same inode. */
static bool entry_is_dir(int fd, const char *name, unsigned char type, ino_t ino,
                         const struct entry *old, size_t nold)
{
    if (type != DT_UNKNOWN)
        return type == DT_DIR;
    struct entry key = {(char *)(uintptr_t)name, 0, false};
    const struct entry *e = old ? bsearch(&key, old, nold, sizeof *old, compare_entries) : NULL;
    if (e && e->ino == ino)
        return e->dir;
    struct stat st;
    return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Lists the directory open on FD into *OUT (sorted). Returns 0, or -1 with
 * errno. */
static int list_dir(int fd, const struct entry *old, size_t nold, struct entry **out,
                    size_t *nout)
{
    psys_dir rd;
    static char buf[PSYS_DIR_BUFSIZE];
    struct entry *v = NULL;
    size_t n = 0, cap = 0;
    if (psys_dir_begin(&rd, fd, buf) != 0)
        return -1;
    const char *name;
    unsigned char type;
    ino_t ino;
    int r;
    while ((r = psys_dir_next(&rd, &name, &type, &ino)) == 1) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct entry *nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                goto fail;
            v = nv;
            cap = nc;
        }
        v[n].name = strdup(name);
        if (!v[n].name)
            goto fail;
        v[n].ino = ino;
        v[n].dir = entry_is_dir(fd, name, type, ino, old, nold);
        n++;
    }
    if (r < 0)
        goto fail;
    psys_dir_end(&rd);
    if (n)
        qsort(v, n, sizeof *v, compare_entries);
    *out = v;
    *nout = n;
    return 0;
fail:;
    int saved = r < 0 ? errno : ENOMEM;
    psys_dir_end(&rd);
    free_entries(v, n);
    errno = saved;
    return -1;
}

static void schedule(psys_watch *pw)
{
    clock_gettime(CLOCK_MONOTONIC, &pw->due);
    pw->due.tv_sec += PSYS_WATCH_INTERVAL_MS / 1000;
    pw->due.tv_nsec += (long)(PSYS_WATCH_INTERVAL_MS % 1000) * 1000000L;
    if (pw->due.tv_nsec >= 1000000000L) {
        pw->due.tv_sec++;
        pw->due.tv_nsec -= 1000000000L;
    }
}

psys_watch *psys_watch_open(void)
{
    psys_watch *pw = calloc(1, sizeof *pw);
    if (!pw)
        return NULL;
    pw->next_wd = 1;
    schedule(pw);
    return pw;
}

static void drop(struct dirwatch *d)
{
    free(d->path);
    d->path = NULL;
    free_entries(d->ents, d->nents);
    d->ents = NULL;
    d->nents = 0;
}

void psys_watch_close(psys_watch *pw)
{
    if (!pw)
        return;
    for (size_t i = 0; i < pw->n; i++)
        drop(&pw->w[i]);
    free(pw->w);
    free(pw);
}

int psys_watch_fd(const psys_watch *pw)
{
    (void)pw;
    return -1;
}

int psys_watch_timeout(psys_watch *pw)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(pw->due.tv_sec - now.tv_sec) * 1000 +
                   (pw->due.tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : (int)ms;
}

int psys_watch_add(psys_watch *pw, int fd, const char *path, bool follow, uint32_t mask)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    char *p = strdup(path);
    if (!p)
        return -1;
    /* Watched already: the same wd, with its path brought up to date (the
     * directory was renamed: inotify's wd follows the inode too). */
    for (size_t i = 0; i < pw->n; i++) {
        struct dirwatch *d = &pw->w[i];
        if (d->path && d->dev == st.st_dev && d->ino == st.st_ino) {
            free(d->path);
            d->path = p;
            d->follow = follow;
            d->mask = mask;
            return d->wd;
        }
    }
    if (pw->next_wd == INT_MAX) {
        free(p);
        errno = ENOSPC;
        return -1;
    }
    struct entry *ents;
    size_t nents;
    if (list_dir(fd, NULL, 0, &ents, &nents) != 0) {
        int saved = errno;
        free(p);
        errno = saved;
        return -1;
    }
    if (pw->n == pw->cap) {
        size_t nc = pw->cap ? pw->cap * 2 : 64;
        struct dirwatch *nw = realloc(pw->w, nc * sizeof *nw);
        if (!nw) {
            free(p);
            free_entries(ents, nents);
            errno = ENOMEM;
            return -1;
        }
        pw->w = nw;
        pw->cap = nc;
    }
    struct dirwatch *d = &pw->w[pw->n++];
    d->wd = pw->next_wd++;
    d->path = p;
    d->follow = follow;
    d->mask = mask;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->ents = ents;
    d->nents = nents;
    return d->wd;
}

static struct dirwatch *find(psys_watch *pw, int wd)
{
    size_t lo = 0, hi = pw->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pw->w[mid].wd < wd)
            lo = mid + 1;
        else if (pw->w[mid].wd > wd)
            hi = mid;
        else
            return pw->w[mid].path ? &pw->w[mid] : NULL;
    }
    return NULL;
}

void psys_watch_rm(psys_watch *pw, int wd)
{
    struct dirwatch *d = find(pw, wd);
    if (d)
        drop(d);
}

/* One pass over the watch of wd WD: its events to FN. */
static void check(psys_watch *pw, int wd, void (*fn)(const psys_watch_event *ev, void *ctx),
                  void *ctx)
{
    struct dirwatch *d = find(pw, wd);
    if (!d)
        return;
    int fd;
    do
        fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (d->follow ? 0 : O_NOFOLLOW));
    while (fd < 0 && errno == EINTR);
    struct stat st;
    struct entry *now = NULL;
    size_t nnow = 0;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != d->dev || st.st_ino != d->ino ||
        list_dir(fd, d->ents, d->nents, &now, &nnow) != 0) {
        /* Gone, replaced, or no longer readable: the watch ends, as
         * inotify's does when its directory is deleted. */
        if (fd >= 0)
            close(fd);
        drop(d);
        psys_watch_event ev = {wd, PSYS_IN_IGNORED, 0, ""};
        fn(&ev, ctx);
        return;
    }
    close(fd);
    /* The old listing is ours until the events are out: FN may add watches
     * (the array may move) or remove this one, so D is looked up again
     * afterwards. */
    struct entry *old = d->ents;
    size_t nold = d->nents;
    uint32_t mask = d->mask;
    d->ents = NULL;
    d->nents = 0;
    size_t i = 0, k = 0;
    while (i < nold || k < nnow) {
        int c = i == nold ? 1 : k == nnow ? -1 : strcmp(old[i].name, now[k].name);
        if (c == 0 && old[i].ino == now[k].ino && old[i].dir == now[k].dir) {
            i++, k++;
            continue;
        }
        if (c <= 0) {
            if (mask & PSYS_IN_DELETE) {
                psys_watch_event ev = {wd, PSYS_IN_DELETE | (old[i].dir ? PSYS_IN_ISDIR : 0), 0,
                                       old[i].name};
                fn(&ev, ctx);
            }
            i++;
        }
        if (c >= 0) {
            if (mask & PSYS_IN_CREATE) {
                psys_watch_event ev = {wd, PSYS_IN_CREATE | (now[k].dir ? PSYS_IN_ISDIR : 0), 0,
                                       now[k].name};
                fn(&ev, ctx);
            }
            k++;
        }
    }
    free_entries(old, nold);
    d = find(pw, wd);
    if (d) {
        d->ents = now;
        d->nents = nnow;
    } else {
        free_entries(now, nnow);
    }
}

int psys_watch_dispatch(psys_watch *pw, void (*fn)(const psys_watch_event *ev, void *ctx),
                        void *ctx)
{
    if (psys_watch_timeout(pw) > 0)
        return 0;
    /* By increasing wd, the order the directories were added in (a parent
     * before what lies below it, usually): a directory renamed is found
     * again under its new name by its parent's CREATE before its own watch
     * is checked by its old path. Watches added meanwhile are complete
     * listings already. */
    int last = pw->next_wd;
    for (int wd = 1; wd < last; wd++)
        check(pw, wd, fn, ctx);
    /* Forget the dropped watches. */
    size_t k = 0;
    for (size_t i = 0; i < pw->n; i++)
        if (pw->w[i].path)
            pw->w[k++] = pw->w[i];
    pw->n = k;
    schedule(pw);
    return 0;
}

/* The self-pipe: a handler writes the signal's number, the loop polls the
 * read end. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(signal_pipe[1], &b, 1);
    errno = saved;
}

int psys_signal_fd(const sigset_t *set)
{
    if (signal_pipe[0] < 0) {
        if (psys_pipe_cloexec(signal_pipe) != 0)
            return -1;
        for (int i = 0; i < 2; i++) {
            int fl = fcntl(signal_pipe[i], F_GETFL);
            if (fl < 0 || fcntl(signal_pipe[i], F_SETFL, fl | O_NONBLOCK) != 0)
                return -1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigismember(set, sigs[i]) == 1 && sigaction(sigs[i], &sa, NULL) != 0)
            return -1;
    return signal_pipe[0];
}

bool psys_signal_take(int fd)
{
    unsigned char b;
    return read(fd, &b, 1) == 1;
}

#endif
