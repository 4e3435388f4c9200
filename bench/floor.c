/*
 * floor.c — what the kernel charges per cache file, with no program around it.
 *
 *   floor MODE ROUNDS < LIST
 *
 * LIST is "DIR\0NAME\0" pairs, grouped by directory (bench.py writes it from
 * the corpus). Every directory is opened once before timing. Then, ROUNDS
 * times, one thread does for every file:
 *
 *   stat    fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW): what `find -printf %s`
 *           asks per pyc (the issue's yardstick);
 *   read    openat + pread of 17 bytes + close: what a check must at least
 *           do per pyc, as plain syscalls (pycache with PYCACHE_IO_URING=0);
 *   uring   the same as linked io_uring requests, 64 files a submission,
 *           opened as direct descriptors: what pycache's headread.c does.
 *
 * and prints one line per round after the first (a warm-up):
 *
 *   MODE CPU_SECONDS FILES
 *
 * (user + system time of the round, from getrusage). bench.py turns the
 * figures into the floor of a header-reading check: no verdict, no output,
 * no locking, only the system calls. Files are opened O_NOATIME (dropped on
 * EPERM: not the owner) and O_NONBLOCK, as pycache opens them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef FLOOR_URING
#include <liburing.h>
#endif

#define BATCH 64
#define HEAD 17

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int open_flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_NOATIME;

static void do_stat(const int *dfd, char **names, size_t n)
{
    struct stat st;
    for (size_t i = 0; i < n; i++)
        (void)fstatat(dfd[i], names[i], &st, AT_SYMLINK_NOFOLLOW);
}

static void do_read(const int *dfd, char **names, size_t n)
{
    unsigned char head[HEAD];
    for (size_t i = 0; i < n; i++) {
        int fd = openat(dfd[i], names[i], open_flags);
        if (fd < 0 && errno == EPERM && (open_flags & O_NOATIME)) {
            open_flags &= ~O_NOATIME;
            fd = openat(dfd[i], names[i], open_flags);
        }
        if (fd < 0)
            continue;
        (void)pread(fd, head, sizeof head, 0);
        close(fd);
    }
}

#ifdef FLOOR_URING
static struct io_uring ring;

static int uring_init(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(BATCH * 3, &ring, &p) < 0) {
        memset(&p, 0, sizeof p);
        if (io_uring_queue_init_params(BATCH * 3, &ring, &p) < 0)
            return -1;
    }
    return io_uring_register_files_sparse(&ring, BATCH) < 0 ? -1 : 0;
}

static void do_uring(const int *dfd, char **names, size_t n)
{
    static unsigned char heads[BATCH][HEAD];
    size_t i = 0;
    while (i < n) {
        unsigned k = 0;
        while (i + k < n && k < BATCH && dfd[i + k] == dfd[i]) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_openat_direct(sqe, dfd[i], names[i + k], open_flags, 0, k);
            sqe->flags |= IOSQE_IO_LINK;
            sqe = io_uring_get_sqe(&ring);
            io_uring_prep_read(sqe, (int)k, heads[k], HEAD, 0);
            sqe->rw_flags = RWF_NOWAIT;
            sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
            sqe = io_uring_get_sqe(&ring);
            io_uring_prep_close_direct(sqe, k);
            k++;
        }
        if (io_uring_submit_and_wait(&ring, k * 3) < 0) {
            perror("floor: io_uring_submit_and_wait");
            exit(1);
        }
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            if (cqe->res == -EPERM)
                open_flags &= ~O_NOATIME;
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        i += k;
    }
}
#endif

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: floor stat|read|uring ROUNDS < LIST\n");
        return 2;
    }
    const char *mode = argv[1];
    int rounds = atoi(argv[2]);
    void (*run)(const int *, char **, size_t) = NULL;
    if (strcmp(mode, "stat") == 0)
        run = do_stat;
    else if (strcmp(mode, "read") == 0)
        run = do_read;
#ifdef FLOOR_URING
    else if (strcmp(mode, "uring") == 0 && uring_init() == 0)
        run = do_uring;
#endif
    if (!run || rounds < 2) {
        fprintf(stderr, "floor: %s: not available here\n", mode);
        return 2;
    }

    /* One fd per directory of the list, all open at once. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            return 1;
        size_t r = fread(buf + len, 1, cap - len, stdin);
        len += r;
        if (len < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    size_t n = 0, ncap = 1024;
    int *dfd = malloc(ncap * sizeof *dfd);
    char **names = malloc(ncap * sizeof *names);
    const char *last_dir = NULL;
    int cur = -1;
    for (size_t at = 0; at < len;) {
        const char *dir = buf + at;
        at += strlen(dir) + 1;
        if (at >= len)
            break;
        char *name = buf + at;
        at += strlen(name) + 1;
        if (!last_dir || strcmp(dir, last_dir) != 0) {
            cur = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            last_dir = dir;
        }
        if (cur < 0) {
            perror("floor: open");
            return 1;
        }
        if (n == ncap) {
            ncap *= 2;
            dfd = realloc(dfd, ncap * sizeof *dfd);
            names = realloc(names, ncap * sizeof *names);
            if (!dfd || !names)
                return 1;
        }
        dfd[n] = cur;
        names[n++] = name;
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_seconds();
        run(dfd, names, n);
        double t = cpu_seconds() - t0;
        if (r > 0)
            printf("%s %.6f %zu\n", mode, t, n);
    }
    return 0;
}
