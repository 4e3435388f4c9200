// always
// struct stat's st_mtim (POSIX.1-2008, Linux, FreeBSD): nanosecond mtimes.
// Not a fast path but the spelling of one: probed in every build
// (src/platform/stattime.h).
#include <sys/stat.h>

int main(void)
{
    struct stat st = {0};
    return (int)st.st_mtim.tv_nsec;
}
