// always
// struct stat's st_mtimensec (macOS under strict _POSIX_C_SOURCE, NetBSD):
// the nanoseconds beside st_mtime (src/platform/stattime.h).
#include <sys/stat.h>

int main(void)
{
    struct stat st = {0};
    return (int)st.st_mtimensec;
}
