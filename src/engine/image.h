/*
 * image.h — container images (an OCI image layout or a `docker save`
 * archive, as one tar file; or an OCI layout directory, read as the tar it
 * would be) seen as the file system they unpack to, and fixed in place of
 * it (image_fix).
 *
 * The archive front end (engine/archive.c) hands an image here when a tar
 * holds `oci-layout` (an OCI image layout: index.json, blobs/sha256/...)
 * or a `manifest.json` in the docker-save form (a JSON array of
 * {"Config", "Layers", "RepoTags"}). This module reads the index and the
 * manifests (every blob it reads is checked against its digest), streams
 * each layer blob through libarchive from inside the outer tar (never to
 * disk), checks the blob's sha256 as it goes, and applies the layers in
 * order with their whiteouts as the OCI image-spec's layer.md says
 * ("Applying Changesets", "Whiteouts", "Opaque Whiteout"):
 *
 *   - `D/.wh.NAME` removes D/NAME (and, for a directory, all below it) as
 *     the lower layers left it; whiteouts never touch the entries of their
 *     own layer;
 *   - `D/.wh..wh..opq` removes every child of D from the lower layers;
 *     D itself and its entries in this layer stay;
 *   - an entry over an existing path replaces it, except a directory over
 *     a directory (attributes only): a file over a directory removes the
 *     directory's contents.
 *
 * The result, one image at a time, is the list of paths of its final file
 * system, each with the metadata of the layer that last wrote it and the
 * first bytes the caller asked for (its cache files). Source bytes for
 * hash-based pycs are read by a second pass (image_read) that streams only
 * the layers holding them. Layers shared by several images of an index are
 * read once per pass.
 *
 * Errors are delivered through image_hooks.error, naming the outer tar's
 * member (a blob) and saying what is wrong; an image with a layer that
 * cannot be read or verified is not judged at all.
 */
#ifndef PYCACHE_ENGINE_IMAGE_H
#define PYCACHE_ENGINE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many images are judged from one index, and an index may
 * nest indexes this deep (a hostile index cannot make the walk unbounded). */
#define IMAGE_MAX_IMAGES 64
#define IMAGE_MAX_DEPTH 4
/* An image of more layers than this is refused (Docker's overlay driver
 * stops at 128), and an image tar of more members: what a hostile index or
 * tar can make the layer application and the member lookups cost. */
#define IMAGE_MAX_LAYERS 1024
#define IMAGE_MAX_MEMBERS 16384
/* Index, manifest and config blobs larger than this are refused. */
#define IMAGE_MAX_JSON_BYTES (UINT64_C(4) << 20)

enum image_type { IMAGE_FILE = 1, IMAGE_DIR, IMAGE_OTHER };

/* One path of an image's final file system. */
typedef struct image_file {
    const char *name;           /* normalised: "usr/lib/x.py" */
    enum image_type type;
    int64_t size;               /* -1 unknown */
    int64_t mtime;              /* seconds, from the layer that last wrote it */
    long mtime_nsec;
    const unsigned char *head;  /* the first bytes image_hooks.head_size asked for */
    size_t head_len;
    bool head_ok;               /* the bytes could be read */
    const char *layer;          /* that layer's digest, "sha256:..." */
} image_file;

typedef struct image_hooks {
    void *ctx;
    /* How many leading bytes of the regular file NAME to keep (0: none);
     * *DEEP: a cache read whole, refused beyond that many. */
    size_t (*head_size)(void *ctx, const char *name, bool *deep);
    /* Whether a link member called NAME matters (it is reported). */
    bool (*relevant)(void *ctx, const char *name);
    /* A problem: MEMBER is the outer tar's member (a blob) or NULL for the
     * whole archive. Non-zero: stop. */
    int (*error)(void *ctx, const char *member, int err, const char *op, const char *detail);
} image_hooks;

struct image_set;

/* Reads the image archive PATH (or, with PATH NULL, MEM/LEN): its index,
 * manifests and every layer of every image. Returns 1 with *OUT set, 0
 * when the tar is not an image after all (a manifest.json of another
 * kind: *OUT NULL, nothing reported), -1 when it is an image that cannot
 * be read (reported through HOOKS; *OUT NULL). BUDGET: decompressed bytes
 * left (archive_options.max_bytes), decremented. */
int image_open(const char *path, const void *mem, size_t len, uint64_t *budget,
               const image_hooks *hooks, struct image_set **out);

/* The number of images (1 for a single image) and how image I is named:
 * its manifest's digest (OCI) or its config's (docker save: the image ID). */
size_t image_count(const struct image_set *set);
const char *image_ref(const struct image_set *set, size_t i);

/* Calls FN for each path of image I's final file system, in the order the
 * paths were first created. Returns 0, or -1 when image I could not be
 * built (a layer failed: reported already), or FN's non-zero value. */
int image_files(struct image_set *set, size_t i, int (*fn)(void *ctx, const image_file *f),
                void *ctx);

/* Reads the whole content of the regular files NAMES[0..N) of image I
 * (as image_files last built it), streaming only the layers that hold them;
 * GOT receives each (K: its index in NAMES) with a malloc'd buffer it owns,
 * or NULL and an errno value (EFBIG beyond MAX_BYTES). Returns 0 or -1
 * (reported). */
int image_read(struct image_set *set, size_t i, const char *const *names, size_t n,
               size_t max_bytes, uint64_t *budget,
               void (*got)(void *ctx, size_t k, unsigned char *data, size_t len, int err),
               void *ctx);

/* ---- fixing: a new image ------------------------------------------------------------
 *
 * archive_fix (engine/archive.c) plans its changes on image I's final file
 * system, as it does on an archive's members, and hands them here. Each
 * change lands in the layer that provides its path in the final file
 * system (an added cache: the layer that provides its source, beside it;
 * or, when a layer above touches the cache's path, the highest such
 * layer); a dropped path that a lower layer also holds becomes a whiteout.
 * Each changed layer is written anew (a tar of the same dialect with every
 * other entry kept, compressed with its original compression), and every
 * blob that names it is rewritten with the new digests: the config's
 * rootfs.diff_ids, the config's and the layers' descriptors in the
 * manifest, the manifest's in each index up to index.json, and a
 * docker-save manifest.json's Config and Layers paths. Every other member
 * of the image archive is copied as it is; the blobs replaced (and the
 * attestation manifests of the image replaced, which attest an image that
 * is no longer there) are not written. */

typedef enum image_change_kind {
    IMAGE_CHANGE_HEAD = 1,  /* the file's first LEN bytes become DATA */
    IMAGE_CHANGE_BYTES,     /* the file's content becomes DATA */
    IMAGE_CHANGE_DROP,      /* the path goes (a directory: with all below) */
    IMAGE_CHANGE_ADD_FILE,  /* a new regular file NAME beside SOURCE */
    IMAGE_CHANGE_ADD_DIR,   /* a new directory NAME beside SOURCE */
} image_change_kind;

typedef struct image_change {
    image_change_kind kind;
    const char *name;             /* a path of the final file system */
    const char *source;           /* ADD_*: the source path it goes with */
    const unsigned char *data;
    size_t len;
} image_change;

/* Writes OUTPUT (a temporary file beside it, renamed over it once
 * complete; OUTPUT may be the archive read) holding the image archive with
 * image I changed as CHANGES[0..N) say. Returns 0, or -1 with *WHY (a
 * static string) and errno (0 when WHY says it all): nothing is left at
 * OUTPUT's temporary name, and OUTPUT is untouched. */
int image_fix(struct image_set *set, size_t i, const image_change *changes, size_t n,
              const char *output, uint64_t *budget, const char **why);

void image_free(struct image_set *set);

#endif /* PYCACHE_ENGINE_IMAGE_H */
