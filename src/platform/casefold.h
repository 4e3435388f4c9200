/*
 * platform/casefold.h — names on case-insensitive file systems, as
 * CPython's import sees them (src/platform/README.md).
 *
 * On a case-insensitive, case-preserving file system (APFS and HFS+ by
 * default, a casefolded ext4 directory, NTFS) an open of "leg.py" finds
 * "Leg.py". CPython's finders do not all go by the open:
 *
 *   - 3.3+ (importlib's FileFinder.find_spec): a module is found only if
 *     its file name is in the directory's listing, compared exactly,
 *     unless _relax_case() — which is False on every platform but those of
 *     _CASE_INSENSITIVE_PLATFORMS (win, cygwin, darwin; 3.13 adds ios,
 *     tvos, watchos), and there True when PYTHONCASEOK is set
 *     (Lib/importlib/_bootstrap_external.py, _make_relax_case);
 *   - 2.x and 3.0-3.2 (Python/import.c, find_module + case_ok): the file is
 *     found by stat, and case_ok checks the exact name against the listing
 *     on macOS and Cygwin only, unless PYTHONCASEOK is set.
 *
 * A cache file, once its source is found, is opened by its path
 * (cache_from_source), so on such a file system __pycache__/mod.TAG.pyc is
 * read for Mod.py: only the finder's lookups are exact.
 */
#ifndef PYCACHE_PLATFORM_CASEFOLD_H
#define PYCACHE_PLATFORM_CASEFOLD_H

#include <stdbool.h>

/* Whether CPython on this platform is one of _CASE_INSENSITIVE_PLATFORMS
 * (its import.c's case_ok checks case here too). A compiler macro, not a
 * probe: what is asked is which sys.platform this is. */
#if defined(__APPLE__) || defined(__CYGWIN__)
#define PSYS_IMPORT_CASE_PLATFORM 1
#else
#define PSYS_IMPORT_CASE_PLATFORM 0
#endif

/* Whether the finder of an interpreter (IMPORTLIB: 3.3+) looks up names
 * exactly here: importlib unless _relax_case(); import.c only on the
 * case-checking platforms, and there unless PYTHONCASEOK. */
bool psys_finder_exact(bool importlib);

/* Whether the entry NAME of the directory DIRFD, which exists (a stat of
 * NAME succeeded), is listed under exactly that name. Cheap where it can
 * be: a NAME without ASCII letters, or whose case-flipped twin does not
 * resolve to the same file (a case-sensitive file system), is; otherwise
 * the directory is listed. A failure to list says yes (the stat's answer). */
bool psys_name_listed(int dirfd, const char *name);

#endif /* PYCACHE_PLATFORM_CASEFOLD_H */
