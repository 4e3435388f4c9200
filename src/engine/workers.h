/*
 * workers.h — a pool of long-lived interpreter processes that byte-compile
 * files for `pycache compile` (and in memory, for `pycache verify`).
 *
 * Only the real interpreter can produce its bytecode, so pycache drives it:
 * each pool is N processes of one interpreter (posix_spawn'd with the program
 * of worker_py.h), fed one job at a time over a socket pair, answering with
 * one message per job (the protocol is described in worker_py.h). A worker
 * that dies is reaped and reported, a new one is started, and the job it was
 * on is given to another worker once; a job that kills two workers is given
 * up. Several pools (several interpreters) run at once in one poll loop.
 */
#ifndef PYCACHE_CLI_WORKERS_H
#define PYCACHE_CLI_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- messages ------------------------------------------------------------------
 * A message is a big-endian u32 byte count, then fields, each a big-endian
 * u32 length and that many bytes. */
typedef struct worker_msg {
    unsigned char *buf; /* the whole message, count included */
    size_t len, cap;
    bool failed;        /* out of memory on the way: do not send */
} worker_msg;

void worker_msg_init(worker_msg *m);
void worker_msg_add(worker_msg *m, const void *data, size_t len);
void worker_msg_add_str(worker_msg *m, const char *s);
void worker_msg_add_int(worker_msg *m, long value); /* as decimal text */
void worker_msg_free(worker_msg *m);

typedef struct worker_field {
    const char *data; /* not NUL-terminated */
    size_t len;
} worker_field;

/* ---- what a worker says first ------------------------------------------------------- */
typedef struct worker_hello {
    char implementation[32]; /* sys.implementation.name, "cpython" on 2.7 */
    int major, minor;
    uint32_t magic_word;     /* its MAGIC_NUMBER, little-endian */
    char tag[64];            /* sys.implementation.cache_tag, "" on 2.7 */
    int optimize;            /* sys.flags.optimize */
    long pid;
} worker_hello;

/* ---- pools ----------------------------------------------------------------------------- */
typedef struct worker_pool worker_pool;

typedef struct worker_callbacks {
    /* A job's answer: the fields after "R" and the id. */
    void (*done)(void *ctx, size_t job, const worker_field *fields, size_t nfields);
    /* A job given up: the interpreter died on it twice, or no worker of its
     * interpreter could be started. WHY is one line, lowercase. */
    void (*lost)(void *ctx, size_t job, const char *why);
    void *ctx;
} worker_callbacks;

/* A pool of up to NWORKERS processes of PYTHON (a path) run with FLAGS
 * (NULL-terminated extra interpreter options such as "-O"). LABEL names the
 * interpreter in messages ("3.11"). EXPECT_WORD, when not 0, is the magic
 * the interpreter must report: a worker of another version stops the pool
 * (its jobs were chosen for that version). Starts nothing yet. NULL on
 * out of memory. */
worker_pool *worker_pool_new(const char *python, const char *const *flags,
                             unsigned nworkers, const char *label,
                             uint32_t expect_word);

/* Starts one worker now and waits for its first message (the interpreter's
 * version, magic and tag, for an interpreter whose name does not say). The
 * worker is kept for the run. 0, or -1 after printing why. */
int worker_pool_probe(worker_pool *p, worker_hello *out);

/* Queues a job: MSG (built with worker_msg_*, fields "C", id, ...) is taken
 * over by the pool. JOB is the caller's number for it, LABEL (kept by the
 * caller for the run) names it in messages. 0, or -1 on out of memory. */
int worker_pool_submit(worker_pool *p, size_t job, const char *label, worker_msg *msg);

/* Runs every queued job of the pools to the end (answered or given up),
 * starting workers as needed, at most NWORKERS per pool and never more
 * than it has jobs. Returns 0, or -1 with errno when poll fails. */
int workers_run(worker_pool *const *pools, size_t npools, const worker_callbacks *cb);

/* How many interpreter processes the pool has started so far. */
unsigned worker_pool_started(const worker_pool *p);

/* Ends the workers (EOF on their socket: each finishes its file and
 * exits), waits for them, frees the pool. Accepts NULL. */
void worker_pool_free(worker_pool *p);

#endif /* PYCACHE_CLI_WORKERS_H */
