/*
 * stamp_probe — prints what pyc_stamp_from_stat says for each PATH, judged
 * by the interpreter whose 16-bit magic number is NUMBER, so the
 * integration tests (tests/integration/test_stamp.py) can compare it with
 * what the real interpreter writes and accepts.
 *
 *   stamp_probe NUMBER PATH...
 *   -> one line per PATH: "MTIME MATCHABLE SIZE SIZE_CHECKED" (decimal,
 *      booleans as 0/1), after stat() through symlinks as importlib does.
 * Exit status: 0, 1 if a PATH could not be stat()ed, 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pycache.h"

int main(int argc, char **argv)
{
    char *end;
    unsigned long number;
    const pyc_magic *m;
    int status = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: stamp_probe NUMBER PATH...\n");
        return 2;
    }
    errno = 0;
    number = strtoul(argv[1], &end, 10);
    if (errno || *end != '\0' || number > 0xFFFF) {
        fprintf(stderr, "stamp_probe: bad magic number '%s'\n", argv[1]);
        return 2;
    }
    m = pyc_magic_lookup((uint32_t)number | (uint32_t)'\r' << 16 |
                         (uint32_t)'\n' << 24);
    if (m == NULL) {
        fprintf(stderr, "stamp_probe: unknown magic number %lu\n", number);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        struct stat st;
        pyc_stamp s;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "stamp_probe: cannot stat '%s': %s\n", argv[i],
                    strerror(errno));
            status = 1;
            continue;
        }
        pyc_stamp_from_stat(m, &st, &s);
        printf("%u %d %u %d\n", s.mtime, s.mtime_matchable ? 1 : 0, s.size,
               s.size_checked ? 1 : 0);
    }
    return status;
}
