/*
 * archive_lib.c — libarchive loaded on first use (see archive_lib.h).
 *
 * Each function below has libarchive's own prototype (the compiler checks
 * it against <archive.h> and <archive_entry.h>), so archive.c and image.c
 * call libarchive exactly as when it is linked. The first call loads
 * the library by the soname the build found (PYC_ONDEMAND_ARCHIVE, e.g.
 * "libarchive.so.13") and looks up every function at once; a library that
 * lacks one is not used at all. The entry points of the front end
 * (archive_scan, archive_fix, archive_sniff) call archive_lib_load first and
 * report a failure as an error on the archive, so the stubs' answers when
 * the library is missing (NULL, ARCHIVE_FATAL, -1) are never what a user
 * reads.
 */
#include "config.h"

#include "engine/archive_lib.h"

#if PYC_HAVE_LIBARCHIVE && defined(PYC_ONDEMAND_ARCHIVE)
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Every libarchive function the front end calls: F(return type, name,
 * parameters, arguments, value when the library is missing). V(...) for
 * functions that return nothing. */
#define ARCHIVE_FUNCTIONS(F, V)                                                              \
    V(archive_entry_acl_clear, (struct archive_entry *e), (e))                               \
    F(struct archive_entry *, archive_entry_clone, (struct archive_entry *e), (e), NULL)     \
    F(mode_t, archive_entry_filetype, (struct archive_entry *e), (e), 0)                     \
    V(archive_entry_free, (struct archive_entry *e), (e))                                    \
    F(const char *, archive_entry_hardlink, (struct archive_entry *e), (e), NULL)            \
    F(int, archive_entry_is_data_encrypted, (struct archive_entry *e), (e), 0)               \
    F(time_t, archive_entry_mtime, (struct archive_entry *e), (e), 0)                        \
    F(long, archive_entry_mtime_nsec, (struct archive_entry *e), (e), 0)                     \
    F(struct archive_entry *, archive_entry_new, (void), (), NULL)                           \
    F(const char *, archive_entry_pathname, (struct archive_entry *e), (e), NULL)            \
    V(archive_entry_set_filetype, (struct archive_entry *e, unsigned int t), (e, t))         \
    V(archive_entry_set_hardlink, (struct archive_entry *e, const char *p), (e, p))          \
    V(archive_entry_set_mtime, (struct archive_entry *e, time_t t, long ns), (e, t, ns))     \
    V(archive_entry_set_pathname, (struct archive_entry *e, const char *p), (e, p))          \
    V(archive_entry_set_perm, (struct archive_entry *e, mode_t m), (e, m))                   \
    V(archive_entry_set_size, (struct archive_entry *e, la_int64_t s), (e, s))               \
    V(archive_entry_set_symlink, (struct archive_entry *e, const char *p), (e, p))           \
    F(la_int64_t, archive_entry_size, (struct archive_entry *e), (e), 0)                     \
    F(int, archive_entry_size_is_set, (struct archive_entry *e), (e), 0)                     \
    F(const char *, archive_entry_symlink, (struct archive_entry *e), (e), NULL)             \
    V(archive_entry_xattr_clear, (struct archive_entry *e), (e))                             \
    F(int, archive_errno, (struct archive *a), (a), 0)                                       \
    F(const char *, archive_error_string, (struct archive *a), (a), NULL)                    \
    F(la_int64_t, archive_filter_bytes, (struct archive *a, int n), (a, n), -1)              \
    F(int, archive_filter_code, (struct archive *a, int n), (a, n), -1)                      \
    F(int, archive_filter_count, (struct archive *a), (a), 0)                                \
    F(int, archive_format, (struct archive *a), (a), 0)                                      \
    F(la_ssize_t, archive_read_data, (struct archive *a, void *b, size_t n), (a, b, n), -1)  \
    F(int, archive_read_free, (struct archive *a), (a), ARCHIVE_FATAL)                       \
    F(struct archive *, archive_read_new, (void), (), NULL)                                  \
    F(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e),  \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_read_open,                                                                \
      (struct archive *a, void *data, archive_open_callback *o, archive_read_callback *r,    \
       archive_close_callback *c),                                                           \
      (a, data, o, r, c), ARCHIVE_FATAL)                                                     \
    F(int, archive_read_open2,                                                               \
      (struct archive *a, void *data, archive_open_callback *o, archive_read_callback *r,    \
       archive_skip_callback *sk, archive_close_callback *c),                                \
      (a, data, o, r, sk, c), ARCHIVE_FATAL)                                                 \
    F(int, archive_read_open_fd, (struct archive *a, int fd, size_t block), (a, fd, block),  \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_read_open_memory, (struct archive *a, const void *b, size_t n),           \
      (a, b, n), ARCHIVE_FATAL)                                                              \
    F(int, archive_read_support_filter_all, (struct archive *a), (a), ARCHIVE_FATAL)         \
    F(int, archive_read_support_format_tar, (struct archive *a), (a), ARCHIVE_FATAL)         \
    F(int, archive_read_support_format_zip_seekable, (struct archive *a), (a),               \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_write_add_filter, (struct archive *a, int code), (a, code), ARCHIVE_FATAL) \
    F(int, archive_write_close, (struct archive *a), (a), ARCHIVE_FATAL)                     \
    F(la_ssize_t, archive_write_data, (struct archive *a, const void *b, size_t n),          \
      (a, b, n), -1)                                                                         \
    F(int, archive_write_free, (struct archive *a), (a), ARCHIVE_FATAL)                      \
    F(int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e),       \
      ARCHIVE_FATAL)                                                                         \
    F(struct archive *, archive_write_new, (void), (), NULL)                                 \
    F(int, archive_write_open,                                                               \
      (struct archive *a, void *data, archive_open_callback *o, archive_write_callback *w,   \
       archive_close_callback *c),                                                           \
      (a, data, o, w, c), ARCHIVE_FATAL)                                                     \
    F(int, archive_write_open_fd, (struct archive *a, int fd), (a, fd), ARCHIVE_FATAL)       \
    F(int, archive_write_open_memory, (struct archive *a, void *b, size_t n, size_t *used),  \
      (a, b, n, used), ARCHIVE_FATAL)                                                        \
    F(int, archive_write_set_bytes_in_last_block, (struct archive *a, int n), (a, n),        \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_write_set_filter_option,                                                  \
      (struct archive *a, const char *m, const char *o, const char *v), (a, m, o, v),        \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_write_set_format, (struct archive *a, int code), (a, code),               \
      ARCHIVE_FATAL)                                                                         \
    F(int, archive_write_set_format_raw, (struct archive *a), (a), ARCHIVE_FATAL)            \
    F(int, archive_write_set_format_zip, (struct archive *a), (a), ARCHIVE_FATAL)

#define POINTER(ret, name, params, args, missing) static ret(*real_##name) params;
#define POINTER_V(name, params, args) static void(*real_##name) params;
ARCHIVE_FUNCTIONS(POINTER, POINTER_V)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_error[256];

/* dlsym returns a void *; POSIX requires that it convert to a function
 * pointer (XSH dlsym), which ISO C leaves undefined: copied bytewise. */
#define LOOKUP(ret, name, params, args, missing)                                          \
    do {                                                                                   \
        void *sym = dlsym(lib, #name);                                                     \
        if (!sym) {                                                                        \
            snprintf(load_error, sizeof load_error, "%s has no %s", PYC_ONDEMAND_ARCHIVE,   \
                     #name);                                                               \
            return;                                                                        \
        }                                                                                  \
        memcpy(&real_##name, &sym, sizeof sym);                                            \
    } while (0);
#define LOOKUP_V(name, params, args) LOOKUP(void, name, params, args, 0)

static void load(void)
{
    void *lib = dlopen(PYC_ONDEMAND_ARCHIVE, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", PYC_ONDEMAND_ARCHIVE,
                 why ? why : "unknown error");
        return;
    }
    ARCHIVE_FUNCTIONS(LOOKUP, LOOKUP_V)
    load_status = 0;
}

int archive_lib_load(char *msg, size_t cap)
{
    pthread_once(&once, load);
    if (load_status != 0 && msg && cap)
        snprintf(msg, cap, "%s", load_error);
    return load_status;
}

#define STUB(ret, name, params, args, missing)                                             \
    ret name params                                                                        \
    {                                                                                      \
        if (archive_lib_load(NULL, 0) != 0)                                                \
            return missing;                                                                \
        return real_##name args;                                                           \
    }
#define STUB_V(name, params, args)                                                         \
    void name params                                                                       \
    {                                                                                      \
        if (archive_lib_load(NULL, 0) == 0)                                                \
            real_##name args;                                                              \
    }
ARCHIVE_FUNCTIONS(STUB, STUB_V)

#else /* linked as usual, or no libarchive at all */

int archive_lib_load(char *msg, size_t cap)
{
    (void)msg, (void)cap;
    return 0;
}

#endif
