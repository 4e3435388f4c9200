/*
 * faultshim.c — an LD_PRELOAD shim that makes chosen libc calls fail, to
 * prove that pycache reports I/O errors the way DESIGN.md promises (one
 * line naming the file and the cause, exit status 3, nothing half-written
 * left behind) — jq's approach, tests/faults/README.md has the recipes.
 *
 * Configured by the environment, read once:
 *   FAULTSHIM_OP     which calls fail, comma-separated:
 *                      write    write(2)           pwrite  pwrite/pwrite64
 *                      writev   writev(2)          read    read(2)
 *                      pread    pread/pread64      open    open/openat (any)
 *                      create   open/openat with O_CREAT
 *                      close    close(2) of a descriptor written through
 *                               (the file is closed all the same, as Linux
 *                               does; NFS reports write-back errors there)
 *                      rename   rename/renameat/renameat2
 *                      unlink   unlink, unlinkat without AT_REMOVEDIR
 *                      rmdir    rmdir, unlinkat with AT_REMOVEDIR
 *                      fsync    fsync/fdatasync/syncfs
 *                      getdents getdents64(), and syscall(SYS_getdents64)
 *                               (src/lib/walk.c calls it that way)
 *   FAULTSHIM_ERRNO  the error: a name (EIO, ENOSPC, EROFS, EDQUOT, EACCES,
 *                    EPERM, EMFILE, ENFILE, EBUSY, ENOMEM, ...) or a number;
 *                    default EIO
 *   FAULTSHIM_MATCH  only calls whose path contains this substring: the name
 *                    argument of an *at call or the path of a path call
 *                    (either name for a rename); for a descriptor call, the
 *                    file it is open on (/proc/self/fd/N). Empty or unset:
 *                    every call of those kinds
 *   FAULTSHIM_AFTER  N: the first N-1 matching calls succeed (default 1)
 *   FAULTSHIM_COUNT  M: that many fail, then calls succeed again
 *                    (default: all from the Nth on)
 *   FAULTSHIM_SHORT  1: the first failing write/pwrite/writev writes half of
 *                    its bytes and returns that count instead (a disk that
 *                    fills mid-write); the next matching one fails
 *   FAULTSHIM_LOG    a file that gets one line per injected fault:
 *                    "OP ERRNO PATH" (tests assert that the fault happened)
 *   FAULTSHIM_IO_URING 1: leave pycache's io_uring header reads on. By
 *                    default the shim sets PYCACHE_IO_URING=0: io_uring
 *                    requests never pass through libc, so open and pread
 *                    faults would not reach the files a check reads that way
 *                    (src/engine/headread.c; any file it cannot read is read
 *                    again through libc, so the plain path is the one whose
 *                    errors users see)
 *   FAULTSHIM_INHERIT 1: keep the shim in LD_PRELOAD for child processes
 *                    (git, interpreters); by default the shim removes
 *                    LD_PRELOAD from the environment at start, so only the
 *                    process it was preloaded into sees faults
 *
 * The counters (AFTER, COUNT) are shared by every op listed and count only
 * the calls that match. Every other call goes straight to the next
 * definition (dlsym(RTLD_NEXT)): libc, or the sanitizer runtime's
 * interceptor when libasan was preloaded before this shim (the tests do so
 * for an ASan build: tests/faults/README.md).
 *
 * Built without sanitizers, -fPIC, by `make $(BUILD)/faultshim.so`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The shim defines both open and open64 (and so on): the build's
 * -D_FILE_OFFSET_BITS=64 would rename the first to the second. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <dirent.h>
#include <stdio.h> /* renameat2 */

enum op {
    OP_WRITE, OP_PWRITE, OP_WRITEV, OP_READ, OP_PREAD, OP_OPEN, OP_CREATE,
    OP_CLOSE, OP_RENAME, OP_UNLINK, OP_RMDIR, OP_FSYNC, OP_GETDENTS, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "write", "pwrite", "writev", "read", "pread", "open", "create",
    "close", "rename", "unlink", "rmdir", "fsync", "getdents",
};

static const struct { const char *name; int value; } errno_names[] = {
    {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EDQUOT", EDQUOT},
    {"EACCES", EACCES}, {"EPERM", EPERM}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
    {"EBUSY", EBUSY}, {"ENOMEM", ENOMEM}, {"EFBIG", EFBIG}, {"EINTR", EINTR},
    {"ENOENT", ENOENT}, {"EXDEV", EXDEV}, {"ESTALE", ESTALE}, {"EAGAIN", EAGAIN},
};

static struct {
    bool ready;
    bool ops[OP_COUNT];
    int err;
    const char *match;
    unsigned long after, count;
    bool short_write;
    const char *log;
} cfg;

static unsigned long matched;      /* matching calls so far */
static bool shorted;               /* the one short write was made */
static __thread int busy;          /* inside the shim: call through */

/* Descriptors written through since they were opened (close faults). */
#define TRACKED_FDS 4096
static unsigned char written[TRACKED_FDS / 8];

static void mark_written(int fd, bool on)
{
    if (fd < 0 || fd >= TRACKED_FDS)
        return;
    if (on)
        __atomic_fetch_or(&written[fd / 8], (unsigned char)(1u << (fd % 8)), __ATOMIC_RELAXED);
    else
        __atomic_fetch_and(&written[fd / 8], (unsigned char)~(1u << (fd % 8)), __ATOMIC_RELAXED);
}

static bool was_written(int fd)
{
    return fd >= 0 && fd < TRACKED_FDS && (written[fd / 8] >> (fd % 8) & 1);
}

static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        static const char msg[] = "faultshim: a symbol is missing\n";
        (void)!syscall(SYS_write, 2, msg, sizeof msg - 1);
        abort();
    }
    return f;
}

/* The real function, looked up once: REAL(write) is `write` as the next
 * object defines it. */
#define REAL(name)                                                    \
    (__extension__({                                                  \
        if (!real_##name)                                             \
            real_##name = (__typeof__(real_##name))next(#name);       \
        real_##name;                                                  \
    }))

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off64_t);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static ssize_t (*real_getdents64)(int, void *, size_t);
static long (*real_syscall)(long, ...);

static int parse_errno(const char *s)
{
    if (!s || !*s)
        return EIO;
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (strcmp(s, errno_names[i].name) == 0)
            return errno_names[i].value;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v < 4096 ? (int)v : EIO;
}

static unsigned long parse_count(const char *s, unsigned long dflt)
{
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return *end == '\0' ? v : dflt;
}

static void configure(void)
{
    if (__atomic_load_n(&cfg.ready, __ATOMIC_ACQUIRE))
        return;
    const char *ops = getenv("FAULTSHIM_OP");
    if (ops) {
        for (const char *p = ops; *p;) {
            size_t n = strcspn(p, ",");
            for (int i = 0; i < OP_COUNT; i++)
                if (strlen(op_names[i]) == n && strncmp(p, op_names[i], n) == 0)
                    cfg.ops[i] = true;
            p += n;
            if (*p == ',')
                p++;
        }
    }
    cfg.err = parse_errno(getenv("FAULTSHIM_ERRNO"));
    cfg.match = getenv("FAULTSHIM_MATCH");
    if (cfg.match && !*cfg.match)
        cfg.match = NULL;
    cfg.after = parse_count(getenv("FAULTSHIM_AFTER"), 1);
    if (cfg.after == 0)
        cfg.after = 1;
    cfg.count = parse_count(getenv("FAULTSHIM_COUNT"), ULONG_MAX);
    const char *sh = getenv("FAULTSHIM_SHORT");
    cfg.short_write = sh && strcmp(sh, "1") == 0;
    cfg.log = getenv("FAULTSHIM_LOG");
    __atomic_store_n(&cfg.ready, true, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void faultshim_init(void)
{
    busy++;
    configure();
    const char *inherit = getenv("FAULTSHIM_INHERIT");
    if (!(inherit && strcmp(inherit, "1") == 0))
        unsetenv("LD_PRELOAD");
    const char *uring = getenv("FAULTSHIM_IO_URING");
    if (!(uring && strcmp(uring, "1") == 0))
        setenv("PYCACHE_IO_URING", "0", 1);
    busy--;
}

static void fd_path(int fd, char *buf, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, cap - 1);
    buf[n > 0 ? (size_t)n : 0] = '\0';
}

static void log_fault(enum op op, const char *path)
{
    if (!cfg.log)
        return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %d %s\n", op_names[op], cfg.err, path ? path : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, cfg.log,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!syscall(SYS_write, fd, line, (size_t)n);
    (void)syscall(SYS_close, fd);
}

/* Whether this call of OP on PATH (or PATH2) is one to fail. Counts it when
 * it matches. */
static bool should_fail(enum op op, const char *path, const char *path2)
{
    if (busy)
        return false;
    configure();
    if (!cfg.ops[op])
        return false;
    if (cfg.match && !(path && strstr(path, cfg.match)) &&
        !(path2 && strstr(path2, cfg.match)))
        return false;
    unsigned long k = __atomic_add_fetch(&matched, 1, __ATOMIC_RELAXED);
    if (k < cfg.after || k - cfg.after >= cfg.count)
        return false;
    busy++;
    log_fault(op, path);
    busy--;
    return true;
}

/* The same for a call on a descriptor: matched on the file it is open on. */
static bool should_fail_fd(enum op op, int fd, char *path, size_t cap)
{
    if (busy)
        return false;
    configure();
    if (!cfg.ops[op])
        return false;
    busy++;
    fd_path(fd, path, cap);
    busy--;
    return should_fail(op, path, NULL);
}

static bool fd_fault(enum op op, int fd)
{
    char path[PATH_MAX];
    return should_fail_fd(op, fd, path, sizeof path);
}

/* A write to fail: -1 with errno, or (FAULTSHIM_SHORT, once) half of it. */
static bool take_short(void)
{
    return cfg.short_write && !__atomic_exchange_n(&shorted, true, __ATOMIC_RELAXED);
}

#define FAIL() \
    do {                      \
        errno = cfg.err;      \
        return -1;            \
    } while (0)

/* ---- writes ---------------------------------------------------------------- */

ssize_t write(int fd, const void *buf, size_t count)
{
    if (fd_fault(OP_WRITE, fd)) {
        if (count > 1 && take_short()) {
            mark_written(fd, true);
            return REAL(write)(fd, buf, count / 2);
        }
        FAIL();
    }
    ssize_t n = REAL(write)(fd, buf, count);
    if (n > 0)
        mark_written(fd, true);
    return n;
}

/* pwrite and pwrite64 (off_t may be 32 bits for the first): the body once. */
#define PWRITE_BODY(real)                                   \
    do {                                                    \
        if (fd_fault(OP_PWRITE, fd)) {                      \
            if (count > 1 && take_short()) {                \
                mark_written(fd, true);                     \
                return real(fd, buf, count / 2, offset);    \
            }                                               \
            FAIL();                                         \
        }                                                   \
        ssize_t n = real(fd, buf, count, offset);           \
        if (n > 0)                                          \
            mark_written(fd, true);                         \
        return n;                                           \
    } while (0)

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    PWRITE_BODY(REAL(pwrite));
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset)
{
    PWRITE_BODY(REAL(pwrite64));
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (fd_fault(OP_WRITEV, fd)) {
        if (iovcnt > 0 && iov[0].iov_len > 1 && take_short()) {
            mark_written(fd, true);
            return REAL(write)(fd, iov[0].iov_base, iov[0].iov_len / 2);
        }
        FAIL();
    }
    ssize_t n = REAL(writev)(fd, iov, iovcnt);
    if (n > 0)
        mark_written(fd, true);
    return n;
}

/* ---- reads ----------------------------------------------------------------- */

ssize_t read(int fd, void *buf, size_t count)
{
    if (fd_fault(OP_READ, fd))
        FAIL();
    return REAL(read)(fd, buf, count);
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    if (fd_fault(OP_PREAD, fd))
        FAIL();
    return REAL(pread)(fd, buf, count, offset);
}

ssize_t pread64(int fd, void *buf, size_t count, off64_t offset)
{
    if (fd_fault(OP_PREAD, fd))
        FAIL();
    return REAL(pread64)(fd, buf, count, offset);
}

/* ---- opening and closing --------------------------------------------------- */

static bool open_fault(const char *path, int flags)
{
    return should_fail(OP_OPEN, path, NULL) ||
           ((flags & O_CREAT) && should_fail(OP_CREATE, path, NULL));
}

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, last)                                       \
    mode_t mode = 0;                                                 \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                         \
        va_list ap;                                                  \
        va_start(ap, last);                                          \
        mode = (mode_t)va_arg(ap, int);                              \
        va_end(ap);                                                  \
    }

static int opened(int fd)
{
    mark_written(fd, false);
    return fd;
}

int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (open_fault(path, flags))
        FAIL();
    return opened(REAL(open)(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (open_fault(path, flags))
        FAIL();
    return opened(REAL(open64)(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (open_fault(path, flags))
        FAIL();
    return opened(REAL(openat)(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (open_fault(path, flags))
        FAIL();
    return opened(REAL(openat64)(dirfd, path, flags, mode));
}

int close(int fd)
{
    bool fail = was_written(fd) && fd_fault(OP_CLOSE, fd);
    mark_written(fd, false);
    int rc = REAL(close)(fd);
    if (fail && rc == 0)
        FAIL(); /* closed all the same, as Linux's close(2) does */
    return rc;
}

/* ---- names ------------------------------------------------------------------- */

int rename(const char *oldpath, const char *newpath)
{
    if (should_fail(OP_RENAME, oldpath, newpath))
        FAIL();
    return REAL(rename)(oldpath, newpath);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    if (should_fail(OP_RENAME, oldpath, newpath))
        FAIL();
    return REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    if (should_fail(OP_RENAME, oldpath, newpath))
        FAIL();
    return REAL(renameat2)(olddirfd, oldpath, newdirfd, newpath, flags);
}

int unlink(const char *path)
{
    if (should_fail(OP_UNLINK, path, NULL))
        FAIL();
    return REAL(unlink)(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (should_fail((flags & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, path, NULL))
        FAIL();
    return REAL(unlinkat)(dirfd, path, flags);
}

int rmdir(const char *path)
{
    if (should_fail(OP_RMDIR, path, NULL))
        FAIL();
    return REAL(rmdir)(path);
}

/* ---- durability ---------------------------------------------------------------- */

int fsync(int fd)
{
    if (fd_fault(OP_FSYNC, fd))
        FAIL();
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (fd_fault(OP_FSYNC, fd))
        FAIL();
    return REAL(fdatasync)(fd);
}

int syncfs(int fd)
{
    if (fd_fault(OP_FSYNC, fd))
        FAIL();
    return REAL(syncfs)(fd);
}

/* ---- directories ----------------------------------------------------------------- */

ssize_t getdents64(int fd, void *buf, size_t count)
{
    if (fd_fault(OP_GETDENTS, fd))
        FAIL();
    return REAL(getdents64)(fd, buf, count);
}

/* syscall(2) is variadic: every Linux syscall takes at most six
 * register-sized arguments, and reading six longs through va_arg is what
 * glibc's own syscall() does (x86-64 and aarch64 pass them in registers).
 * Only SYS_getdents64 is looked at; everything else passes through. */
long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_getdents64 && fd_fault(OP_GETDENTS, (int)a1))
        FAIL();
    return REAL(syscall)(number, a1, a2, a3, a4, a5, a6);
}
