// PTHREAD_MUTEX_ADAPTIVE_NP (glibc): a mutex that spins briefly before it
// sleeps, for locks held for microseconds (src/platform/mutex.h).
#include <pthread.h>

int main(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    return pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
}
