/*
 * platform/watch.h — following directories for `pycache watch`
 * (src/platform/README.md).
 *
 * The interface is inotify's: a watch per directory, a watch descriptor
 * (wd) per inode (adding a directory watched already returns its wd), and
 * events CREATE, DELETE, MOVED_FROM/MOVED_TO (with a cookie), MOVE_SELF,
 * IGNORED (the watch is gone), each with IS_DIR when the entry is a
 * directory.
 *
 * Fast path (probe inotify, Linux): inotify itself, the watch added
 * through /proc/self/fd/N of the caller's O_PATH descriptor so that
 * nothing is resolved by name twice (by path, not following links, where
 * /proc is missing).
 *
 * Portable path (POSIX.1-2008: openat, fstat, fdopendir, readdir): polling.
 * Every PSYS_WATCH_INTERVAL_MS, each watched directory is opened again by
 * the path it was added with and listed; an entry that is no longer there
 * is a DELETE, a new one a CREATE (an entry whose inode changed is both), a
 * directory whose path is gone or now names another inode is IGNORED. A
 * rename is therefore a DELETE and a CREATE, never a MOVED_ pair; a source
 * deleted and recreated within one interval is not seen; the events of one
 * interval come in name order, not in the order things happened. kqueue
 * (macOS, FreeBSD) would need an open fd per directory and still a listing
 * per change (EVFILT_VNODE says that a directory changed, not what), so it
 * is not used: polling is what the portable build documents.
 */
#ifndef PYCACHE_PLATFORM_WATCH_H
#define PYCACHE_PLATFORM_WATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#if PYC_HAVE_INOTIFY
#include <sys/inotify.h>
#define PSYS_WATCH_KERNEL 1
#define PSYS_IN_CREATE IN_CREATE
#define PSYS_IN_DELETE IN_DELETE
#define PSYS_IN_MOVED_FROM IN_MOVED_FROM
#define PSYS_IN_MOVED_TO IN_MOVED_TO
#define PSYS_IN_MOVE_SELF IN_MOVE_SELF
#define PSYS_IN_ONLYDIR IN_ONLYDIR
#define PSYS_IN_ISDIR IN_ISDIR
#define PSYS_IN_IGNORED IN_IGNORED
#define PSYS_IN_Q_OVERFLOW IN_Q_OVERFLOW
/* The flags the caller opens a directory with to hand it to
 * psys_watch_add. */
#define PSYS_WATCH_OPEN_FLAGS O_PATH
#else
#define PSYS_WATCH_KERNEL 0
#define PSYS_IN_CREATE 0x100u
#define PSYS_IN_DELETE 0x200u
#define PSYS_IN_MOVED_FROM 0x40u
#define PSYS_IN_MOVED_TO 0x80u
#define PSYS_IN_MOVE_SELF 0x800u
#define PSYS_IN_ONLYDIR 0x01000000u
#define PSYS_IN_ISDIR 0x40000000u
#define PSYS_IN_IGNORED 0x8000u
#define PSYS_IN_Q_OVERFLOW 0x4000u
#define PSYS_WATCH_OPEN_FLAGS O_RDONLY
#endif

/* The polling interval of the portable path. */
#define PSYS_WATCH_INTERVAL_MS 200

typedef struct psys_watch psys_watch;

typedef struct psys_watch_event {
    int wd;
    uint32_t mask;
    uint32_t cookie;
    const char *name; /* "" for the directory itself */
} psys_watch_event;

/* Starts following. Returns NULL with errno. */
psys_watch *psys_watch_open(void);
void psys_watch_close(psys_watch *pw);

/* The descriptor to poll for events, or -1 (polling: see the timeout). */
int psys_watch_fd(const psys_watch *pw);

/* Milliseconds until psys_watch_dispatch has something to do without
 * psys_watch_fd being readable: -1 (never: inotify), or the time left in
 * the polling interval (0: due). */
int psys_watch_timeout(psys_watch *pw);

/* Watches the directory open on FD (opened with PSYS_WATCH_OPEN_FLAGS |
 * O_DIRECTORY), whose path is PATH (relative to the current directory;
 * FOLLOW: PATH's last component may be a symlink, as a root given on the
 * command line), for the events in MASK. Returns the wd (the same one for
 * a directory watched already), or -1 with errno (ENOSPC: inotify's limit
 * on watches is reached). */
int psys_watch_add(psys_watch *pw, int fd, const char *path, bool follow, uint32_t mask);

/* Stops watching WD; no IGNORED comes for it. */
void psys_watch_rm(psys_watch *pw, int wd);

/* Hands every pending event to FN: inotify, those queued now; polling, one
 * pass over every watched directory when the interval is due (FN may add
 * and remove watches meanwhile). Returns -1 with errno on a read error. */
int psys_watch_dispatch(psys_watch *pw, void (*fn)(const psys_watch_event *ev, void *ctx),
                        void *ctx);

/* A descriptor that turns readable when one of the signals in SET arrives
 * (signalfd where the inotify probe found it; elsewhere a self-pipe written
 * by a handler, POSIX.1-2008). Returns -1 with errno. */
int psys_signal_fd(const sigset_t *set);
/* Consumes one signal from psys_signal_fd's FD: true if there was one. */
bool psys_signal_take(int fd);

#endif /* PYCACHE_PLATFORM_WATCH_H */
