/*
 * headread_probe — runs one batch of src/engine/headread.c (io_uring header
 * reads) over NAMES in DIR, so tests/integration/test_check.py can check the
 * promises it makes on hostile entries: no hang on a FIFO with a writer,
 * symlinks not followed, errors per file, short files reported short.
 *
 *   headread_probe DIR NAME...
 *   -> one line per NAME: the byte count read, or the errno name of the
 *      failure (ENOENT, ELOOP, EAGAIN...), then the bytes read in hex.
 * Exit status: 0; 1 when the ring failed as a whole; 77 when io_uring is not
 * available here (headread_new failed: the line on stderr says why); 2 on a
 * usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/headread.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc - 2 > HEADREAD_BATCH) {
        fprintf(stderr, "usage: headread_probe DIR NAME... (at most %d)\n", HEADREAD_BATCH);
        return 2;
    }
    int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        perror(argv[1]);
        return 2;
    }
    headread *h = headread_new();
    if (!h) {
        fprintf(stderr, "headread_probe: no io_uring: %s\n", strerror(errno));
        return 77;
    }
    size_t n = (size_t)argc - 2;
    static unsigned char heads[HEADREAD_BATCH][HEADREAD_LEN];
    int res[HEADREAD_BATCH];
    if (headread_run(h, dirfd, (const char *const *)argv + 2, n, heads, res) != 0) {
        fprintf(stderr, "headread_probe: ring failed: %s\n", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i] < 0) {
            printf("%s\n", strerrorname_np(-res[i]) ? strerrorname_np(-res[i]) : "?");
            continue;
        }
        printf("%d ", res[i]);
        for (int k = 0; k < res[i]; k++)
            printf("%02x", heads[i][k]);
        putchar('\n');
    }
    headread_free(h);
    close(dirfd);
    return 0;
}
