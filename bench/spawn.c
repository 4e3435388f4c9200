/*
 * spawn.c — runs one command and reports what wait4 says about it.
 *
 *   spawn RESULT-FILE COMMAND [ARG]...
 *
 * bench.py measures every command through this small program rather than
 * forking the command from Python itself: a process's peak RSS (ru_maxrss)
 * survives execve, so a command forked straight from the benchmark would
 * start with the Python interpreter's resident set as its "peak".  Forked
 * from this program instead, it starts from a few hundred kilobytes, as under
 * GNU time.  Writes one line to RESULT-FILE:
 *
 *   WALL_SECONDS USER_SECONDS SYS_SECONDS MAXRSS_KB EXIT_STATUS
 *
 * (EXIT_STATUS is 128+N for a command killed by signal N), and exits 0
 * unless it could not do its own job (then 125, 126 or 127, as env does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    struct rusage ru;
    int status, code;
    pid_t pid;
    FILE *out;

    if (argc < 3) {
        fprintf(stderr, "usage: spawn RESULT-FILE COMMAND [ARG]...\n");
        return 125;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "spawn: cannot fork: %s\n", strerror(errno));
        return 125;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "spawn: cannot run '%s': %s\n", argv[2], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "spawn: wait4: %s\n", strerror(errno));
            return 125;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out = fopen(argv[1], "w");
    if (!out) {
        fprintf(stderr, "spawn: cannot open '%s': %s\n", argv[1], strerror(errno));
        return 125;
    }
    fprintf(out, "%.6f %.6f %.6f %ld %d\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss, code);
    return fclose(out) == 0 ? 0 : 125;
}
