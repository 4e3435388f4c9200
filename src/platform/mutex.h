/*
 * platform/mutex.h — a mutex for locks held for microseconds
 * (src/platform/README.md).
 */
#ifndef PYCACHE_PLATFORM_MUTEX_H
#define PYCACHE_PLATFORM_MUTEX_H

#include <pthread.h>

#include "config.h"

/* Initialises M for short critical sections: adaptive where the probe
 * found PTHREAD_MUTEX_ADAPTIVE_NP (glibc: a thread that finds it taken
 * spins briefly instead of sleeping in futex), a default mutex elsewhere
 * (musl, macOS, FreeBSD, PORTABLE=1). Returns pthread_mutex_init's
 * answer. */
static inline int psys_mutex_init_brief(pthread_mutex_t *m)
{
#if PYC_HAVE_ADAPTIVE_MUTEX
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    int r = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return r;
#else
    return pthread_mutex_init(m, NULL);
#endif
}

#endif /* PYCACHE_PLATFORM_MUTEX_H */
