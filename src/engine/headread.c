/*
 * headread.c — batched header reads with io_uring (see headread.h).
 *
 * Each file is one linked chain of three requests:
 *
 *     OPENAT (direct, into slot i) --link--> READ (slot i) --hardlink--> CLOSE (slot i)
 *
 * A failed open cancels the read and the close (nothing was opened); a
 * failed read still closes (a hard link survives the failure before it).
 * The slots are a sparse table of HEADREAD_BATCH registered files, reused by
 * every batch: each chain empties its slot again.
 *
 * Why the flags:
 *   - O_NOFOLLOW: the walk saw a regular file (d_type); a name swapped for a
 *     symlink since fails with ELOOP, and the caller's ordinary read (which
 *     follows links, as CPython's open does) decides.
 *   - O_NONBLOCK + RWF_NOWAIT: a FIFO swapped in must not hang the walk.
 *     O_NONBLOCK alone is not enough under io_uring: a read that would block
 *     on a file that supports polling is armed and waited for, unless the
 *     request itself says NOWAIT. RWF_NOWAIT also makes a read of a page not
 *     in the page cache fail with EAGAIN instead of waiting for the disk;
 *     the caller reads those files itself (cold caches cost what they cost
 *     without io_uring).
 *   - O_NOATIME: a check only looks, and leaves access times alone (see
 *     src/platform/noatime.c). The kernel grants it to the file's owner only; a
 *     file opened EPERM is read again the ordinary way by the caller, and
 *     this reader stops asking for the flag.
 *   - no O_CLOEXEC: direct descriptors are not in the fd table (the kernel
 *     refuses the flag for them).
 * Ring setup asks for SUBMIT_ALL (an SQE that fails to prepare does not stop
 * the rest), and, where the kernel has them, SINGLE_ISSUER + DEFER_TASKRUN
 * (completions run in this thread when it waits: no extra wakeups).
 *
 * This is a fast path of the platform room (src/platform/README.md): built
 * where the io_uring probe finds liburing (src/platform/probes/io_uring.c).
 * Elsewhere (macOS, FreeBSD, PORTABLE=1) headread_new answers ENOTSUP, as
 * on a kernel without io_uring, and the scan reads each header itself with
 * openat + read (scan.c), the portable path.
 */
#include "config.h"

#if PYC_HAVE_IO_URING
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/headread.h"

struct headread {
    struct io_uring ring;
    bool broken;
    bool noatime_refused; /* a file was not ours: O_NOATIME is no more asked */
};

/* Three requests per file; user_data = file index * 4 + the step. */
enum { STEP_OPEN = 0, STEP_READ = 1, STEP_CLOSE = 2 };
#define OPEN_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)

static int ring_init(struct io_uring *ring)
{
    /* Newest kernels first; each flag set is retried without its newest
     * flag on EINVAL (a kernel that does not know it). */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_SUBMIT_ALL,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof *flag_sets; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = flag_sets[i];
        r = io_uring_queue_init_params(HEADREAD_BATCH * 3, ring, &p);
        if (r != -EINVAL)
            break;
    }
    return r;
}

/* Opens and closes "/" as a direct descriptor: kernels before 5.15 have
 * io_uring but not direct opens (they fail with EINVAL / EBADF). */
static int self_test(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_openat_direct(sqe, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY, 0, 0);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = io_uring_get_sqe(ring);
    io_uring_prep_close_direct(sqe, 0);
    int r = io_uring_submit_and_wait(ring, 2);
    if (r < 0)
        return r;
    int bad = 0;
    for (int got = 0; got < 2; got++) {
        struct io_uring_cqe *cqe;
        int w;
        while ((w = io_uring_wait_cqe(ring, &cqe)) == -EINTR)
            ;
        if (w < 0)
            return w;
        if (cqe->res < 0 && !bad)
            bad = cqe->res;
        io_uring_cqe_seen(ring, cqe);
    }
    return bad;
}

headread *headread_new(void)
{
    const char *env = getenv("PYCACHE_IO_URING");
    if (env && strcmp(env, "0") == 0) {
        errno = ENOTSUP;
        return NULL;
    }
    headread *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    int r = ring_init(&h->ring);
    if (r < 0) {
        free(h);
        errno = -r;
        return NULL;
    }
    r = io_uring_register_files_sparse(&h->ring, HEADREAD_BATCH);
    if (r == 0)
        r = self_test(&h->ring);
    if (r < 0) {
        io_uring_queue_exit(&h->ring);
        free(h);
        errno = -r;
        return NULL;
    }
    return h;
}

void headread_free(headread *h)
{
    if (!h)
        return;
    /* Closes whatever a broken batch left in the slots. */
    io_uring_queue_exit(&h->ring);
    free(h);
}

int headread_run(headread *h, int dirfd, const char *const *names, size_t n,
                 unsigned char (*heads)[HEADREAD_LEN], int *res)
{
    if (h->broken || n > HEADREAD_BATCH) {
        errno = EIO;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);
        io_uring_prep_openat_direct(sqe, dirfd, names[i],
                                    OPEN_FLAGS | (h->noatime_refused ? 0 : O_NOATIME), 0,
                                    (unsigned)i);
        sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = i * 4 + STEP_OPEN;

        sqe = io_uring_get_sqe(&h->ring);
        io_uring_prep_read(sqe, (int)i, heads[i], HEADREAD_LEN, 0);
        sqe->rw_flags = RWF_NOWAIT;
        sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
        sqe->user_data = i * 4 + STEP_READ;

        sqe = io_uring_get_sqe(&h->ring);
        io_uring_prep_close_direct(sqe, (unsigned)i);
        sqe->user_data = i * 4 + STEP_CLOSE;
        res[i] = -ECANCELED;
    }
    /* Submitted requests each post one completion, and the buffers must
     * outlive them: wait for every one, whatever happens. */
    /* One syscall submits the batch and waits for all of it; the loop
     * below then finds the completions in the ring without another. */
    int submitted = io_uring_submit_and_wait(&h->ring, (unsigned)(n * 3));
    if (submitted < 0) {
        /* Nothing went in; what is queued must never go later. */
        h->broken = true;
        errno = -submitted;
        return -1;
    }
    for (int got = 0; got < submitted; got++) {
        struct io_uring_cqe *cqe;
        int w;
        while ((w = io_uring_wait_cqe(&h->ring, &cqe)) == -EINTR)
            ;
        if (w < 0) {
            /* Cannot wait for the rest (no known cause: the completion
             * queue holds every request of a batch). The kernel may still
             * write into HEADS: the caller keeps them until headread_free,
             * and never reuses them (the reader is broken). */
            h->broken = true;
            errno = -w;
            return -1;
        }
        size_t i = (size_t)(cqe->user_data / 4);
        unsigned step = (unsigned)(cqe->user_data % 4);
        if (i < n) {
            if (step == STEP_OPEN && cqe->res == -EPERM)
                h->noatime_refused = true;
            if (step == STEP_OPEN && cqe->res < 0)
                res[i] = cqe->res;
            else if (step == STEP_READ && res[i] == -ECANCELED)
                res[i] = cqe->res;
        }
        io_uring_cqe_seen(&h->ring, cqe);
    }
    if ((size_t)submitted != n * 3) {
        h->broken = true;
        errno = EIO;
        return -1;
    }
    return 0;
}

#else /* no io_uring: the scan's own reads (see above) */
#include <errno.h>

#include "engine/headread.h"

headread *headread_new(void)
{
    errno = ENOTSUP;
    return NULL;
}

void headread_free(headread *h)
{
    (void)h;
}

int headread_run(headread *h, int dirfd, const char *const *names, size_t n,
                 unsigned char (*heads)[HEADREAD_LEN], int *res)
{
    (void)h, (void)dirfd, (void)names, (void)n, (void)heads, (void)res;
    errno = ENOTSUP;
    return -1;
}
#endif /* PYC_HAVE_IO_URING */
