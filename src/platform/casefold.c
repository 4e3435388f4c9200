/*
 * platform/casefold.c — exact names on case-insensitive file systems
 * (platform/casefold.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform/casefold.h"
#include "platform/dir.h"

bool psys_finder_exact(bool importlib)
{
    if (!PSYS_IMPORT_CASE_PLATFORM)
        return importlib;
    return getenv("PYTHONCASEOK") == NULL;
}

bool psys_name_listed(int dirfd, const char *name)
{
    size_t n = strlen(name);
    if (n > NAME_MAX)
        return true;
    char flipped[NAME_MAX + 1];
    bool letters = false;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A'), letters = true;
        else if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a'), letters = true;
        flipped[i] = c;
    }
    if (!letters)
        return true;
    struct stat a, b;
    int saved = errno;
    bool folds = fstatat(dirfd, flipped, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
                 fstatat(dirfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
                 a.st_ino == b.st_ino;
    errno = saved;
    if (!folds)
        return true;
    /* Case-insensitive here: the listing decides. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return true;
    }
    char *buf = malloc(PSYS_DIR_BUFSIZE); /* the scan judges from several threads */
    psys_dir rd;
    bool found = false, failed = !buf || psys_dir_begin(&rd, fd, buf) != 0;
    if (!failed) {
        const char *e;
        unsigned char type;
        ino_t ino;
        int r;
        while ((r = psys_dir_next(&rd, &e, &type, &ino)) == 1)
            if (strcmp(e, name) == 0) {
                found = true;
                break;
            }
        failed = r < 0;
        psys_dir_end(&rd);
    }
    free(buf);
    close(fd);
    errno = saved;
    return found || failed;
}
