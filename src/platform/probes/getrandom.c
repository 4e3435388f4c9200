// getrandom (Linux, FreeBSD 12+): random bytes without opening /dev/urandom
// (src/platform/random.c).
#include <sys/random.h>

int main(void)
{
    unsigned char b[8];
    return (int)getrandom(b, sizeof b, GRND_NONBLOCK);
}
