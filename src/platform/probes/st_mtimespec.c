// always
// struct stat's st_mtimespec (macOS with _DARWIN_C_SOURCE, the BSDs):
// nanosecond mtimes where st_mtim is not spelled so (src/platform/stattime.h).
#include <sys/stat.h>

int main(void)
{
    struct stat st = {0};
    return (int)st.st_mtimespec.tv_nsec;
}
