// always
// struct dirent's d_type: not in POSIX.1-2008 (it is in POSIX.1-2024), but
// glibc, musl, macOS and FreeBSD all have it, under strict feature macros
// too (which hide the DT_ names: src/platform/dir.h gives their common
// values). The portable reader takes an entry's type from it, as getdents64
// does, so both builds see the same types: an entry of a readable but
// unsearchable directory is typed without a stat (src/platform/dir.h).
#include <dirent.h>

int main(void)
{
    struct dirent d = {0};
    return d.d_type;
}
