// memrchr (glibc, musl, FreeBSD; not macOS, not POSIX): the libc's
// vectorised search for the last dot of every cache name (src/lib/internal.h).
#include <string.h>

int main(void)
{
    static const char s[] = "a.b.pyc";
    return memrchr(s, '.', sizeof s - 1) != s + 3;
}
