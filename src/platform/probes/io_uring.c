// liburing with direct descriptors (openat/close into a registered slot):
// batched header reads (src/engine/headread.c).
// libs: -luring
#include <fcntl.h>
#include <liburing.h>

int main(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, IORING_SETUP_SUBMIT_ALL) != 0)
        return 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_openat_direct(sqe, AT_FDCWD, "/", O_RDONLY, 0, 0);
    io_uring_prep_close_direct(io_uring_get_sqe(&ring), 0);
    io_uring_register_files_sparse(&ring, 1);
    io_uring_queue_exit(&ring);
    return 0;
}
