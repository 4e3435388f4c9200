"""Hostile trees for pycache, and the proof that it loses nothing.

Shared by test_hostile_trees.py and test_concurrency.py:

  - snapshot(top): every entry under TOP (never following a link), walked
    with directory fds so that trees deeper than PATH_MAX work: type, mode,
    owner, inode and mtime, a link's target, a regular file's SHA-256;
  - precious(snap): the part of a snapshot that must survive any pycache
    command unchanged: everything but bytecode (NAME.pyc/.pyo files and
    links, CPython's NAME.pyc.DIGITS temp files, __pycache__ directories,
    which go when emptied);
  - leftovers(snap): half-written files (CPython's NAME.pyc.DIGITS temps,
    convert's .NAME.XXXXXXXXXXXX.tmp);
  - check_output(result, fmt, known): the contract every command keeps on
    a hostile tree: no crash and no sanitizer report, every stderr line
    one "pycache..." line, every --json line valid JSON, every -0 path one
    that existed before or exists after;
  - the fixture builders (fd-based, so names and depths are never limited
    by PATH_MAX): sources, and pycs written by this very interpreter's
    importlib (the test runner is a real CPython: its
    _code_to_timestamp_pyc / _code_to_hash_pyc are what py_compile uses).

All paths here are bytes: names that are not UTF-8 round-trip exactly.
"""

import hashlib
import importlib.util
import json
import os
import re
import stat
import sys
from importlib import _bootstrap_external as _bx

TAG = sys.implementation.cache_tag.encode()   # b"cpython-311"
PYTHON = sys.executable                        # the interpreter of TAG

# CPython's temp file (_write_atomic: '{}.{}'.format(path, id(path))) and
# convert's temp file (".NAME.XXXXXXXXXXXX.tmp", src/engine/convert.c).
CPYTHON_TEMP = re.compile(rb"\.py[co]\.[0-9]+\Z")
CONVERT_TEMP = re.compile(rb"\A\..*\.[a-z0-9]{12}\.tmp\Z", re.S)

# A crash: a signal, or a sanitizer report (ASan/UBSan exit with 1 by
# default, which is also a normal pycache status: read stderr).
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                       r"runtime error:|==[0-9]+==ERROR")


def scratch_root():
    """Where to build the big fixtures: /dev/shm (tmpfs) when present, since
    100 000 files take seconds on the root ext4 and one on tmpfs."""
    for d in ("/dev/shm", None):
        if d and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return None


# ---- snapshots ---------------------------------------------------------------------

def _sha(dirfd, name):
    h = hashlib.sha256()
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)
    return h.hexdigest()


def _entry(dirfd, name, st, full):
    m = st.st_mode
    base = (stat.S_IMODE(m), st.st_uid, st.st_gid)
    if stat.S_ISDIR(m):
        return ("dir",) + base + (st.st_ino,)
    if stat.S_ISLNK(m):
        return ("link", os.readlink(name, dir_fd=dirfd))
    if stat.S_ISREG(m):
        digest = ""
        if st.st_size and (full or not name.endswith((b".pyc", b".pyo"))):
            digest = _sha(dirfd, name)
        return ("file",) + base + (st.st_ino, st.st_size, st.st_mtime_ns, digest)
    return ("other", stat.S_IFMT(m)) + base + (st.st_ino,)


def snapshot(top, full=False):
    """{path (bytes, TOP + b'/' + ...): entry} for every entry under TOP,
    TOP excluded; links are recorded, never followed. Runs as root here, so
    unreadable directories are read anyway. The content of NAME.pyc files is
    hashed only when FULL (a rewrite shows anyway: it changes the inode)."""
    top = os.fsencode(top)
    out = {}

    def walk(fd, path):
        with os.scandir(fd) as it:
            names = [os.fsencode(e.name) for e in it]
        for name in names:
            p = path + b"/" + name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # a mutator's doing: gone between listing and stat
            out[p] = _entry(fd, name, st, full)
            if stat.S_ISDIR(st.st_mode):
                try:
                    cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                  dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                try:
                    walk(cfd, p)
                finally:
                    os.close(cfd)

    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walk(fd, top)
    finally:
        os.close(fd)
    return out


def is_bytecode(path, entry):
    """What a pycache command may remove or rewrite: NAME.pyc/.pyo files and
    links (a link goes as a link: its target is checked separately),
    CPython's temp files, and __pycache__ directories (removed once empty;
    what they hold that is not bytecode is checked entry by entry)."""
    name = path.rsplit(b"/", 1)[-1]
    if entry[0] == "dir":
        return name == b"__pycache__"
    return name.endswith((b".pyc", b".pyo")) or bool(CPYTHON_TEMP.search(name))


def precious(snap):
    """The entries no pycache command may change."""
    return {p: e for p, e in snap.items() if not is_bytecode(p, e)}


def leftovers(snap):
    """Half-written files: CPython's temp files and convert's."""
    return sorted(p for p, e in snap.items() if e[0] != "dir" and (
        CPYTHON_TEMP.search(p.rsplit(b"/", 1)[-1]) or
        CONVERT_TEMP.match(p.rsplit(b"/", 1)[-1])))


def diff(before, after):
    """A readable account of what changed between two snapshots."""
    lines = []
    for p in sorted(set(before) | set(after)):
        a, b = before.get(p), after.get(p)
        if a != b:
            lines.append("%r: %r -> %r" % (p, a, b))
    return "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")


def assert_unchanged(before, after, what="tree"):
    assert before == after, "%s changed:\n%s" % (what, diff(before, after))


# ---- the output contract -----------------------------------------------------------

def crashed(result):
    """Why RESULT is a crash, or None: a signal (negative status, or the
    shell's 128+N), or a sanitizer's report."""
    if result.returncode < 0 or result.returncode >= 128:
        return "exit status %d" % result.returncode
    if SANITIZER.search(result.stderr):
        return "sanitizer report"
    return None


def check_output(result, fmt, known, codes):
    """The contract of every command on a hostile tree. FMT: 'text', 'json'
    or 'null'; KNOWN: the paths (bytes) that existed before or exist after
    the run; CODES: the exit statuses allowed. Returns the parsed output:
    a list of JSON objects (json), of paths (null), of lines (text)."""
    why = crashed(result)
    assert why is None, "%s\n%s" % (why, result.stderr[-4000:])
    assert result.returncode in codes, (result.returncode, result.stderr[-4000:])
    errs = result.stderr_bytes.split(b"\n")
    assert errs[-1] == b"", "stderr does not end with a newline: %r" % errs[-1:]
    for line in errs[:-1]:
        # One error, one line: "pycache: ..." or "pycache CMD: ...", with
        # control bytes escaped.
        assert line.startswith(b"pycache"), "stray stderr line: %r" % line
        assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", line), line
    out = result.stdout_bytes
    if fmt == "json":
        objs = []
        for line in out.split(b"\n")[:-1] if out else []:
            o = json.loads(line.decode("utf-8"))
            assert isinstance(o, dict), line
            # compile names the cache file it would write, or failed to.
            if o.get("path") is not None and o.get("action") not in (
                    "error", "would-compile") and o.get("status") != "missing":
                p = os.fsencode(o["path"])
                assert p in known, "JSON names a path that never existed: %r" % p
            objs.append(o)
        assert not out or out.endswith(b"\n")
        return objs
    if fmt == "null":
        assert not out or out.endswith(b"\0"), out[-200:]
        paths = out.split(b"\0")[:-1] if out else []
        for p in paths:
            assert p in known, "-0 names a path that never existed: %r" % p
        return paths
    # Human output: one line per file, names escaped (no raw control byte).
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", out), out[-400:]
    return out.decode("utf-8", "surrogateescape").splitlines()


# ---- builders ------------------------------------------------------------------------

def source_bytes(marker):
    return ("print(%r)\n" % marker).encode()


def pyc_bytes(source, st=None, mode="timestamp", name="<hostile>"):
    """What py_compile writes for SOURCE (bytes) with this interpreter, in
    MODE: timestamp (recording ST's mtime and size), checked-hash or
    unchecked-hash."""
    code = compile(source, name, "exec", dont_inherit=True)
    if mode == "timestamp":
        return bytes(_bx._code_to_timestamp_pyc(code, int(st.st_mtime), st.st_size))
    return bytes(_bx._code_to_hash_pyc(code, importlib.util.source_hash(source),
                                       mode == "checked-hash"))


def write_at(dirfd, name, data, mode=0o644):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode,
                 dir_fd=dirfd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def mkdir_at(dirfd, name, mode=0o755):
    """Creates NAME (if missing) and returns an fd on it."""
    try:
        os.mkdir(name, mode, dir_fd=dirfd)
    except FileExistsError:
        pass
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)


def open_dir(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def cache_name(stem):
    return stem + b"." + TAG + b".pyc"


def add_module(dirfd, stem, marker, cache="fresh", mode="timestamp"):
    """STEM.py printing MARKER, and its __pycache__/STEM.TAG.pyc: CACHE is
    'fresh', 'stale' (compiled from another source: mtime and size differ)
    or None. Returns the source's stat."""
    src = source_bytes(marker)
    write_at(dirfd, stem + b".py", src)
    st = os.stat(stem + b".py", dir_fd=dirfd)
    if cache:
        pfd = mkdir_at(dirfd, b"__pycache__")
        try:
            if cache == "fresh":
                data = pyc_bytes(src, st, mode)
            else:
                old = source_bytes(marker + " (old version)")
                fake = os.stat_result((st.st_mode, 0, 0, 0, 0, 0, len(old),
                                       st.st_atime, st.st_mtime - 3600, st.st_ctime))
                data = pyc_bytes(old, fake, mode)
            write_at(pfd, cache_name(stem), data)
        finally:
            os.close(pfd)
    return st


def add_orphan(dirfd, stem, legacy=False):
    """A pyc with no source: __pycache__/STEM.TAG.pyc (or STEM.pyc beside
    the would-be source, LEGACY: a sourceless module)."""
    data = pyc_bytes(source_bytes("orphan " + os.fsdecode(stem)), mode="checked-hash")
    if legacy:
        write_at(dirfd, stem + b".pyc", data)
        return
    pfd = mkdir_at(dirfd, b"__pycache__")
    try:
        write_at(pfd, cache_name(stem), data)
    finally:
        os.close(pfd)


def add_data(dirfd, name, content=b"precious data\n", mode=0o644):
    write_at(dirfd, name, content, mode)


# ---- the hostile cases -------------------------------------------------------------------

def build_links(top, outside):
    """Symlink loops, a __pycache__ that is a link out of the tree, pycs that
    are links out of the tree (fresh, stale, dangling, to a directory, to a
    non-pyc), a pyc link that loops on itself. OUTSIDE holds the targets:
    none of it may ever change. Returns {label: path} of the links."""
    top, outside = os.fsencode(top), os.fsencode(outside)
    ofd = open_dir(outside)
    tfd = open_dir(top)
    links = {}
    try:
        add_data(ofd, b"passwd", b"root:x:0:0:root:/root:/bin/bash\n")
        cfd = mkdir_at(ofd, b"cache")        # the target of sub/__pycache__
        pkg = mkdir_at(tfd, b"pkg")
        sub = mkdir_at(tfd, b"sub")
        loops = mkdir_at(tfd, b"loops")
        try:
            add_module(pkg, b"__init__", "pkg")
            # pkg/__pycache__/m.TAG.pyc -> OUTSIDE/m.pyc, fresh for pkg/m.py:
            # CPython loads it through the link.
            st = add_module(pkg, b"m", "m", cache=None)
            write_at(ofd, b"m.pyc", pyc_bytes(source_bytes("m"), st))
            # ... and a stale one, a dangling one, one to a non-pyc, one to a
            # directory, one looping on itself (its source exists).
            add_module(pkg, b"st", "st", cache=None)
            write_at(ofd, b"stale.pyc", pyc_bytes(source_bytes("old st"), os.stat_result(
                (0o644, 0, 0, 0, 0, 0, 99, 0, 1000000000, 0))))
            add_module(pkg, b"loop", "loop", cache=None)
            pc = mkdir_at(pkg, b"__pycache__")
            try:
                for label, name, target in [
                        ("fresh", cache_name(b"m"), outside + b"/m.pyc"),
                        ("stale", cache_name(b"st"), outside + b"/stale.pyc"),
                        ("orphan", cache_name(b"gone"), outside + b"/passwd"),
                        ("dangling", cache_name(b"dangling"), outside + b"/nonexistent.pyc"),
                        ("dir", cache_name(b"dirlink"), outside + b"/cache"),
                        ("self", cache_name(b"loop"), cache_name(b"loop"))]:
                    os.symlink(target, name, dir_fd=pc)
                    links[label] = top + b"/pkg/__pycache__/" + name
            finally:
                os.close(pc)
            os.symlink(outside + b"/passwd", b"legacy.pyc", dir_fd=pkg)
            links["legacy"] = top + b"/pkg/legacy.pyc"
            # sub/__pycache__ -> OUTSIDE/cache, which holds a pyc of sub/s.py's
            # name (from another source: stale for it) and a data file.
            add_module(sub, b"s", "s", cache=None)
            write_at(cfd, cache_name(b"s"), pyc_bytes(source_bytes("other s"), os.stat_result(
                (0o644, 0, 0, 0, 0, 0, 99, 0, 1000000000, 0))))
            add_data(cfd, b"notes.txt")
            os.symlink(outside + b"/cache", b"__pycache__", dir_fd=sub)
            links["pycache"] = top + b"/sub/__pycache__"
            # Loops: directories linking back up, sources linking to each other.
            add_module(loops, b"real", "real")
            os.symlink(b".", b"self", dir_fd=loops)
            os.symlink(b"..", b"up", dir_fd=loops)
            os.symlink(top, b"top", dir_fd=loops)
            os.symlink(b"b.py", b"a.py", dir_fd=loops)
            os.symlink(b"a.py", b"b.py", dir_fd=loops)
            add_orphan(loops, b"a")
            deeper = mkdir_at(loops, b"deeper")
            os.symlink(b"../..", b"back", dir_fd=deeper)
            os.symlink(b"../../loops", b"__pycache__", dir_fd=deeper)
            os.close(deeper)
        finally:
            for fd in (cfd, pkg, sub, loops):
                os.close(fd)
    finally:
        os.close(ofd)
        os.close(tfd)
    return links


HOSTILE_NAMES = [b"new\nline", b"tab\there", b"-rf", b"--help", b"-", b"caf\xe9",
                 b"\xff\xfe", b"\xed\xa0\x80", b"esc\x1b[31m", b"cr\rx", b"sp ace",
                 b"quote'\"", b"back\\slash", b"\xe2\x80\xae", b"\x7f"]


def build_names(top):
    """Names with newlines, tabs, leading dashes, invalid UTF-8 (Latin-1, a
    lone surrogate, stray bytes), terminal escapes, DEL: as modules (fresh,
    stale, uncompiled), orphans, data files, directories holding a module
    and a foreign file in their __pycache__."""
    fd = open_dir(top)
    try:
        for i, n in enumerate(HOSTILE_NAMES):
            add_module(fd, n, "m%d" % i, cache=["fresh", "stale", None][i % 3])
            add_orphan(fd, n + b"_orphan")
            add_data(fd, n + b".txt")
            d = mkdir_at(fd, n)
            try:
                add_module(d, n, "sub%d" % i)
                pc = mkdir_at(d, b"__pycache__")
                add_data(pc, n + b".foreign")
                os.close(pc)
            finally:
                os.close(d)
    finally:
        os.close(fd)


DEEP_NAME = b"d" * 200
DEEP_LEVELS = 100        # 100 * 201 bytes: about five times PATH_MAX (4096)


def build_deep(top):
    """A chain of DEEP_LEVELS directories, each name 200 bytes: at every 20th
    level a fresh module, a stale one, an orphan and a data file; at the
    bottom the same. Returns the length of the deepest path."""
    fd = open_dir(top)
    n = len(os.fsencode(top))
    try:
        for i in range(DEEP_LEVELS + 1):
            if i % 20 == 0 or i == DEEP_LEVELS:
                add_module(fd, b"f%d" % i, "fresh %d" % i)
                add_module(fd, b"s%d" % i, "stale %d" % i, cache="stale")
                add_orphan(fd, b"o%d" % i)
                add_data(fd, b"data%d.txt" % i)
            if i < DEEP_LEVELS:
                nfd = mkdir_at(fd, DEEP_NAME)
                os.close(fd)
                fd = nfd
                n += 1 + len(DEEP_NAME)
    finally:
        os.close(fd)
    return n
