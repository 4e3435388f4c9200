// always
// libarchive: the archive front end (src/engine/archive.c) and container
// images (src/engine/image.c), with the two libraries they need beside it:
// nettle's SHA-256 (layer digests, a wheel's RECORD; Debian's libarchive
// links libnettle already, so it adds nothing at run time) and jansson
// (an image's index and manifests). Not a Linux fast path but libraries
// macOS and FreeBSD have as well, so it is probed in every build; where
// one is missing (musl-gcc sees only musl's headers: the static binary),
// archives are recognised and refused with a message.
// libarchive itself is loaded on first use (src/engine/archive_lib.c): it
// brings libxml2, ICU and libstdc++ along, too much for every start.
// libs: -larchive -lnettle -ljansson
// on-demand: -larchive
#include <archive.h>
#include <jansson.h>
#include <nettle/sha2.h>

int main(void)
{
    struct sha256_ctx c;
    unsigned char d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, 1, (const unsigned char *)"x");
    sha256_digest(&c, sizeof d, d);
    json_t *j = json_loads("{}", 0, NULL);
    json_decref(j);
    struct archive *a = archive_read_new();
    return a && j ? archive_read_free(a) : 1;
}
