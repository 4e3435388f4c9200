// always
// libarchive: the archive front end (src/engine/archive.c). Not a Linux
// fast path but a library macOS and FreeBSD have as well, so it is probed
// in every build; where it is missing (musl-gcc sees only musl's headers:
// the static binary), archives are recognised and refused with a message.
// libs: -larchive
#include <archive.h>

int main(void)
{
    struct archive *a = archive_read_new();
    return a ? archive_read_free(a) : 1;
}
