"""Injected faults: a full disk (ENOSPC), a dying one (EIO), a read-only file
system, too few file descriptors (EMFILE), stdout on /dev/full.

For each: one error line naming the file and the cause, exit status 3
(DESIGN.md), JSON that still parses, the rest of the tree processed, and
nothing lost or half-written: convert's temporary files are gone and the
original pyc is byte-identical and still loaded by CPython itself (the
oracle); doctor's .gitignore is as it was.

Faults in pycache's own calls come from tests/faults/faultshim.c (an
LD_PRELOAD shim, tests/faults/README.md); every shim test asserts from the
shim's log that the fault really happened. The read-only file system is a
read-only bind mount in a private mount namespace (root only), EMFILE a low
RLIMIT_NOFILE.
"""

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess

import pytest

from conftest import Result, build_dir, discover_interpreters
from oracle import compile_source, cpython_import, make_module

ERR_LINE = re.compile(r"^pycache [a-z]+: cannot [a-z][a-z ]* '(?P<path>.*)': (?P<cause>[^\n]+)$")
MORE_LINE = re.compile(r"^pycache [a-z]+: (?P<n>\d+) more errors? not shown: (?P<cause>.+)$")


# ---- helpers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def py():
    """The newest CPython 3.7+ here: builds the trees (hash-based pycs)."""
    found = [i for i in discover_interpreters() if (i.major, i.minor) >= (3, 7)]
    if not found:
        pytest.skip("no Python 3.7+ on this machine")
    return found[-1]


@pytest.fixture(scope="module")
def shim_env(pycache_bin):
    """fault(op, errno, match, ...) -> the environment that injects it."""
    if os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("the shim is not preloaded under valgrind")
    shim = os.path.join(build_dir(), "faultshim.so")
    if not os.path.exists(shim):
        pytest.fail("fault shim not built: %s (run `make %s`)" % (shim, shim))
    preload = [shim]
    # An ASan binary (gcc links the runtime shared) needs the runtime first
    # in the library list: preload it ahead of the shim.
    ldd = subprocess.run(["ldd", pycache_bin], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode()
    for line in ldd.splitlines():
        m = re.match(r"\s*(libasan\.so\S*) => (\S+)", line)
        if m:
            preload.insert(0, m.group(2))

    def make(op, errno="EIO", match=None, after=None, count=None, short=False, log=None):
        env = {"LD_PRELOAD": ":".join(preload), "FAULTSHIM_OP": op,
               "FAULTSHIM_ERRNO": errno, "FAULTSHIM_LOG": log}
        if match:
            env["FAULTSHIM_MATCH"] = match
        if after:
            env["FAULTSHIM_AFTER"] = str(after)
        if count:
            env["FAULTSHIM_COUNT"] = str(count)
        if short:
            env["FAULTSHIM_SHORT"] = "1"
        return env
    return make


@pytest.fixture
def faulty(pycache, shim_env, tmp_path):
    """faulty(op, errno, match, *args, cwd=..., ...) runs pycache with that
    fault; returns (Result, the faults injected as (op, errno, path))."""
    counter = [0]

    def run(op, errno, match, *args, **kw):
        counter[0] += 1
        log = str(tmp_path / ("faults-%d.log" % counter[0]))
        env = shim_env(op, errno, match, log=log,
                       **{k: kw.pop(k) for k in ("after", "count", "short") if k in kw})
        env.update(kw.pop("env", {}))
        r = pycache(*args, env=env, **kw)
        faults = []
        if os.path.exists(log):
            with open(log) as f:
                faults = [tuple(line.rstrip("\n").split(" ", 2)) for line in f]
        return r, faults
    return run


def snapshot(root):
    """Every entry under ROOT: relative path -> (kind, mode, size, mtime_ns,
    sha256 of a file's bytes)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def error_lines(r):
    """stderr as (path, cause) per line; every line must be one of ours."""
    out = []
    for line in r.stderr.splitlines():
        m = ERR_LINE.match(line)
        if m:
            out.append((m.group("path"), m.group("cause")))
            continue
        assert MORE_LINE.match(line), "not a one-line error: %r" % line
        out.append((None, MORE_LINE.match(line).group("cause")))
    return out


def file_rows(rows):
    """The records of files, without the error records (status "error") that
    --json adds for what no file record can say: a directory that could not
    be read."""
    return [row for row in rows if row.get("status") != "error"]


def by_path(rows):
    return {row["path"]: row for row in file_rows(rows)}


def temp_files(root):
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names
            if n.startswith(".") and n.endswith(".tmp")]


def tree(py, root, fresh=("a", "b", "c"), orphans=(), subdir="pkg", mode=None):
    """ROOT/SUBDIR with sources and their fresh caches written by PY, and
    orphan caches (source removed). Returns {module: cache path}."""
    d = os.path.join(root, subdir)
    os.makedirs(d, exist_ok=True)
    caches = {}
    for name in tuple(fresh) + tuple(orphans):
        src = make_module(d, name, "%s:%s" % (subdir, name))
        caches[name] = compile_source(py, src, mode=mode)
    for name in orphans:
        os.unlink(os.path.join(d, name + ".py"))
    return caches


# ---- convert: write, rename and close fail --------------------------------------

CONVERT_FAULTS = [
    # op, errno, strerror, options
    ("rename", "ENOSPC", "No space left on device", {}),
    ("rename", "EIO", "Input/output error", {}),
    ("write", "ENOSPC", "No space left on device", {}),
    ("write", "ENOSPC", "No space left on device", {"short": True}),  # half, then ENOSPC
    ("write", "EIO", "Input/output error", {}),
    ("close", "EIO", "Input/output error", {}),                      # NFS write-back
    ("create", "ENOSPC", "No space left on device", {}),             # the temp file
    ("create", "EDQUOT", "Disk quota exceeded", {}),
]


def _convert_case(py, faulty, tmp_path, op, errno, cause, opts, to="checked-hash"):
    root = str(tmp_path / "t")
    caches = tree(py, root, fresh=("a", "victim", "c"))
    victim = caches["victim"]
    with open(victim, "rb") as f:
        original = f.read()
    before = snapshot(root)
    # The match names the victim's temp file (write, close, create) or either
    # of its names (rename): the other pycs are written normally.
    r, faults = faulty(op, errno, "victim.", "convert", "--to", to, "--json", root, **opts)
    assert faults, "the fault was never injected"
    assert r.returncode == 3, r.stderr
    assert error_lines(r) == [(victim, cause)], r.stderr
    rows = by_path(r.json())
    assert rows[victim]["action"] == "error"
    assert all(rows[p]["action"] == "converted" for n, p in caches.items() if n != "victim")
    # Nothing half-written: the original untouched, no temp file left.
    with open(victim, "rb") as f:
        assert f.read() == original
    assert snapshot(root)[os.path.relpath(victim, root)] == before[os.path.relpath(victim, root)]
    assert temp_files(root) == []
    return root, caches


@pytest.mark.parametrize("op,errno,cause,opts", CONVERT_FAULTS,
                         ids=["%s-%s%s" % (o, e, "-short" if x else "") for o, e, _, x in CONVERT_FAULTS])
def test_convert_fault_leaves_original(py, faulty, tmp_path, op, errno, cause, opts):
    root, caches = _convert_case(py, faulty, tmp_path, op, errno, cause, opts)
    # Oracle: CPython still loads the untouched original (timestamp) and the
    # converted neighbours (checked-hash).
    d = os.path.join(root, "pkg")
    for name in caches:
        assert cpython_import(py, d, name) == ("cache", "pkg:%s\n" % name), name


def test_convert_rename_fault_every_interpreter(interp37, faulty, tmp_path):
    """The same for every 3.7+ interpreter: its original pyc, byte-identical,
    is still the one it loads."""
    root, caches = _convert_case(interp37, faulty, tmp_path, "rename", "ENOSPC",
                                 "No space left on device", {}, to="unchecked-hash")
    d = os.path.join(root, "pkg")
    assert cpython_import(interp37, d, "victim") == ("cache", "pkg:victim\n")


def test_convert_sync_fault(py, faulty, tmp_path):
    """--sync whose syncfs reports a write-back error: the durability asked
    for is not there, so it is an error (it used to be ignored, exit 0)."""
    root = str(tmp_path / "t")
    tree(py, root)
    r, faults = faulty("fsync", "EIO", None, "convert", "--sync", "--to", "checked-hash", root)
    assert faults and faults[0][0] == "fsync"
    assert r.returncode == 3
    assert error_lines(r) == [(root, "Input/output error")]
    # The conversions themselves were made (the renames succeeded).
    assert "converted 3 files" in r.stdout


# ---- clean, prune: unlinkat fails -----------------------------------------------

@pytest.mark.parametrize("command", ["clean", "prune"])
def test_remove_fault_goes_on(py, faulty, tmp_path, command):
    root = str(tmp_path / "t")
    gone = tree(py, root, fresh=(), orphans=("o1", "victim", "o3"), subdir="one")
    gone.update(tree(py, root, fresh=(), orphans=("o4", "o5"), subdir="two"))
    r, faults = faulty("unlink", "EIO", "victim.", command, "--json", root)
    assert [f[0] for f in faults] == ["unlink"]
    assert r.returncode == 3
    victim = gone.pop("victim")
    assert error_lines(r) == [(victim, "Input/output error")]
    rows = by_path(r.json())
    assert rows[victim]["action"] == "failed"
    assert os.path.exists(victim)
    for p in gone.values():
        assert rows[p]["action"] == "removed" and not os.path.exists(p)
    # The other directory's __pycache__, emptied, is gone; the victim's stays.
    assert not os.path.exists(os.path.join(root, "two", "__pycache__"))
    assert os.path.isdir(os.path.join(root, "one", "__pycache__"))


def test_remove_fault_throttled(py, faulty, tmp_path):
    """Ten lines per errno, then one line counting the rest."""
    root = str(tmp_path / "t")
    names = ["o%02d" % i for i in range(14)]
    caches = tree(py, root, fresh=(), orphans=names)
    r, faults = faulty("unlink", "ENOSPC", ".cpython-", "prune", root)
    assert len(faults) == 14
    assert r.returncode == 3
    errs = error_lines(r)
    assert len(errs) == 11
    assert all(c == "No space left on device" for _, c in errs)
    assert {p for p, _ in errs[:10]} <= set(caches.values())
    assert MORE_LINE.match(r.stderr.splitlines()[-1]).group("n") == "4"
    assert all(os.path.exists(p) for p in caches.values())


def test_rmdir_fault(py, faulty, tmp_path):
    root = str(tmp_path / "t")
    caches = tree(py, root, fresh=("a",))
    r, faults = faulty("rmdir", "EIO", "__pycache__", "clean", "--json", root)
    assert faults and faults[0][0] == "rmdir"
    assert r.returncode == 3
    assert error_lines(r) == [(os.path.join(root, "pkg", "__pycache__"), "Input/output error")]
    assert [row["action"] for row in r.json()] == ["removed"]
    assert not os.path.exists(caches["a"])


# ---- reading: pread of a header, getdents of a directory -----------------------------

def _check(pycache, root, *extra, **kw):
    r = pycache("check", "-v", "--json", *extra, root, **kw)
    return r, by_path(r.json())


@pytest.mark.parametrize("deep", [False, True], ids=["header", "deep"])
def test_pread_fault_unreadable(py, pycache, faulty, tmp_path, deep):
    root = str(tmp_path / "t")
    caches = tree(py, root, fresh=("a", "victim", "c"))
    tree(py, root, fresh=("d",), subdir="other")
    extra = ("--deep",) if deep else ()
    clean, expected = _check(pycache, root, *extra)
    assert clean.returncode == 0
    r, faults = faulty("pread", "EIO", "victim.", "check", "-v", "--json", *(extra + (root,)))
    assert faults and all(f[0] == "pread" for f in faults)
    assert r.returncode == 3
    victim = caches["victim"]
    assert error_lines(r) == [(victim, "Input/output error")]
    rows = by_path(r.json())
    assert rows[victim]["reason"] == "unreadable" and rows[victim]["magic"] is None
    # The walk went on: every other file judged as without the fault.
    del rows[victim], expected[victim]
    assert rows == expected


def test_pread_fault_stats(py, pycache, faulty, tmp_path):
    """stats counts an unreadable file but says its totals are short (it
    used to exit 0 silently, its size missing from the totals)."""
    root = str(tmp_path / "t")
    caches = tree(py, root, fresh=("a", "victim"))
    r, faults = faulty("pread", "EIO", "victim.", "stats", "--json", root)
    assert faults
    assert r.returncode == 3
    assert error_lines(r) == [(caches["victim"], "Input/output error")]
    modes = {row["key"]: row["files"] for row in r.json() if row["group"] == "mode"}
    assert modes == {"timestamp": 1, "unreadable": 1}


def test_stats_empty_tree(pycache, tmp_path):
    """No cache file at all: nothing to sort (qsort of a NULL table was
    undefined behaviour, fatal under SAN=1)."""
    r = pycache("stats", "--json", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_pread_fault_prune_keeps(py, faulty, tmp_path):
    """prune never removes a file it could not judge."""
    root = str(tmp_path / "t")
    caches = tree(py, root, fresh=("victim",), orphans=("o",))
    r, _ = faulty("pread", "EIO", "victim.", "prune", "-v", "--json", root)
    assert r.returncode == 3
    assert os.path.exists(caches["victim"]) and not os.path.exists(caches["o"])
    assert by_path(r.json())[caches["victim"]]["action"] == "kept"


def test_getdents_fault_first_read(py, pycache, faulty, tmp_path):
    root = str(tmp_path / "t")
    tree(py, root, fresh=("a", "b"), subdir="bad")
    tree(py, root, fresh=("c", "d"), subdir="good")
    _, expected = _check(pycache, root)
    bad = os.path.join(root, "bad", "__pycache__")
    r, faults = faulty("getdents", "EIO", bad, "check", "-v", "--json", root)
    assert faults and faults[0][0] == "getdents"
    assert r.returncode == 3
    assert error_lines(r) == [(bad, "Input/output error")]
    assert by_path(r.json()) == {p: v for p, v in expected.items() if "/good/" in p}


def test_getdents_fault_mid_directory(py, pycache, faulty, tmp_path):
    """EIO on the second getdents64 of a directory larger than one batch
    (64 KiB): what was read is reported, the error too, and the walk goes on."""
    root = str(tmp_path / "t")
    one = tree(py, root, fresh=("m",), subdir="big")["m"]
    os.unlink(os.path.join(root, "big", "m.py"))
    big = os.path.dirname(one)
    for i in range(2500):  # orphans, each dirent ~72 bytes: three batches
        os.link(one, os.path.join(big, "module_with_a_rather_long_name_%04d.%s" % (
            i, os.path.basename(one).split(".", 1)[1])))
    tree(py, root, fresh=("c",), subdir="good")
    _, expected = _check(pycache, root)
    assert len(expected) == 2502
    r, faults = faulty("getdents", "EIO", big, "check", "-v", "--json", root, after=2)
    assert faults and faults[0][0] == "getdents"
    assert r.returncode == 3
    assert error_lines(r) == [(big, "Input/output error")]
    rows = by_path(r.json())
    seen_big = [p for p in rows if p.startswith(big + "/")]
    assert 0 < len(seen_big) < 2501
    assert all(rows[p] == expected[p] for p in rows)
    good = [p for p in expected if "/good/" in p]
    assert good and all(p in rows for p in good)


# ---- stdout on a full device --------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["check", "-v", "--json"], ["check", "-v"], ["stats", "--json"], ["prune", "-n", "--json"],
    ["clean", "-n", "-v"], ["convert", "-n", "--to", "checked-hash", "--json"],
], ids=lambda a: "-".join(a))
def test_stdout_full(py, pycache_bin, tmp_path, args):
    root = str(tmp_path / "t")
    tree(py, root, orphans=("o",))  # something for every command to print
    with open("/dev/full", "w") as full:
        p = subprocess.run([pycache_bin] + args + [root], stdout=full, stderr=subprocess.PIPE,
                           env=dict(os.environ, NO_COLOR="1"), timeout=300)
    assert p.returncode == 3
    assert p.stderr.decode() == "pycache %s: cannot write to standard output: No space left on device\n" % args[0]


# ---- doctor --fix: .gitignore -----------------------------------------------------

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


def _git_env(tmp_path):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               GIT_CONFIG_NOSYSTEM="1", GIT_CEILING_DIRECTORIES=str(tmp_path), LC_ALL="C.UTF-8",
               NO_COLOR="1")
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PYTHONDONTWRITEBYTECODE",
              "PYTHONPYCACHEPREFIX"):
        env.pop(k, None)
    return env


@pytest.mark.parametrize("existing", [None, b"build/\n", b"dist/\r\nbuild"],
                         ids=["new", "lf", "crlf-no-eol"])
@pytest.mark.parametrize("fault", [
    ("write", "ENOSPC", "No space left on device", {}),
    ("write", "ENOSPC", "No space left on device", {"short": True}),
    ("close", "EIO", "Input/output error", {}),
], ids=["enospc", "enospc-short", "close-eio"])
def test_doctor_gitignore_fault(py, pycache, faulty, tmp_path, existing, fault):
    """The append to .gitignore fails: the file is left as it was (removed
    when doctor created it), never with a half-written line."""
    if shutil.which("git") is None:
        pytest.skip("git is missing")
    op, errno, cause, opts = fault
    env = _git_env(tmp_path)
    repo = tmp_path / "proj"
    repo.mkdir()
    subprocess.run(["git"] + GIT_ID + ["init", "-q", "."], cwd=str(repo), env=env, check=True)
    tree(py, str(repo), fresh=("m",))
    gi = repo / ".gitignore"
    if existing is not None:
        gi.write_bytes(existing)
    r, faults = faulty(op, errno, ".gitignore", "doctor", "--fix", "--json", str(repo),
                       cwd=str(repo), env=env, **opts)
    assert faults and faults[0][0] == op
    assert r.returncode == 3, r.stderr
    assert error_lines(r) == [(str(gi), cause)]
    r.json()  # valid JSON
    if existing is None:
        assert not gi.exists()
    else:
        assert gi.read_bytes() == existing
    # Without the fault the same run appends the lines (the fault was the
    # only obstacle).
    ok = pycache("doctor", "--fix", str(repo), cwd=str(repo), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"__pycache__/" in gi.read_bytes()


# ---- EMFILE: a low RLIMIT_NOFILE ------------------------------------------------

def _limited(n):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return set_limit


def _run_limited(pycache_bin, n, *args):
    p = subprocess.run([pycache_bin] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=dict(os.environ, NO_COLOR="1"),
                       preexec_fn=_limited(n) if n else None, timeout=300)
    return Result(p)


@pytest.fixture(scope="module")
def deep_tree(py, tmp_path_factory):
    """30 levels, each with three leaf packages, fresh caches, orphans and
    stale ones: 30 * 6 cache files."""
    root = str(tmp_path_factory.mktemp("emfile") / "d")
    d = root
    sources = []
    for level in range(30):
        d = os.path.join(d, "l%d" % level)
        for w in range(3):
            leaf = os.path.join(d, "w%d" % w)
            os.makedirs(leaf)
            sources.append(make_module(leaf, "m", "x"))
        sources.append(make_module(d, "m%d" % level, "y"))
        sources.append(make_module(d, "gone%d" % level, "z"))
        sources.append(make_module(d, "edited%d" % level, "e"))
    code = ("import py_compile, sys\n"
            "for s in sys.argv[1:]: py_compile.compile(s, doraise=True)\n")
    py.run(code, *sources)
    for level_dir, _, names in os.walk(root):
        for name in names:
            if name.startswith("gone"):
                os.unlink(os.path.join(level_dir, name))
            elif name.startswith("edited"):
                with open(os.path.join(level_dir, name), "a") as f:
                    f.write("# edited\n")
    return root


EMFILE_COMMANDS = [
    ["check", "-v", "--json"], ["prune", "-n", "--json"], ["clean", "-n", "--json"],
    ["stats", "--json"], ["convert", "-n", "--to", "checked-hash", "--json"],
]


def _rows(result):
    return sorted(json.dumps(row, sort_keys=True) for row in result.json())


@pytest.mark.parametrize("args", EMFILE_COMMANDS, ids=lambda a: a[0])
def test_emfile_bounded_walk(pycache_bin, deep_tree, args):
    """With 16 descriptors the walker (at most half of them, reopening
    ancestors by "..") still visits the 30-level tree: the same output."""
    full = _run_limited(pycache_bin, None, *(args + [deep_tree]))
    assert full.returncode in (0, 1) and not full.stderr
    limited = _run_limited(pycache_bin, 16, *(args + [deep_tree]))
    assert (limited.returncode, limited.stderr) == (full.returncode, "")
    assert _rows(limited) == _rows(full)


@pytest.mark.parametrize("limit", [4, 5, 6, 8])
@pytest.mark.parametrize("args", EMFILE_COMMANDS, ids=lambda a: a[0])
def test_emfile_absurd_limit(pycache_bin, deep_tree, args, limit):
    """Too few descriptors: errors ("Too many open files"), exit 3 — or, where
    the command fits, the right answer; never a crash, never a wrong verdict:
    a row is the one the unlimited run gives, or an unreadable file named in
    an error line."""
    full = _run_limited(pycache_bin, None, *(args + [deep_tree])).json()
    r = _run_limited(pycache_bin, limit, *(args + [deep_tree]))
    assert r.returncode in (0, 1, 3), r.stderr  # never a signal or a sanitizer report
    errs = error_lines(r)
    assert all(cause == "Too many open files" for _, cause in errs), r.stderr
    assert (r.returncode == 3) == bool(errs)
    rows = r.json()
    named = {p for p, _ in errs}
    throttled = any(p is None for p, _ in errs)
    # Each error record is a directory an error line names too.
    assert all(row["path"] in named or throttled for row in rows
               if row.get("status") == "error"), rows
    rows = file_rows(rows)
    if args[0] == "stats":
        # Totals only: right when it could count, else an error said so.
        assert rows == full or errs
        return
    full = by_path(full)
    for row in rows:
        if row == full[row["path"]]:
            continue
        # Never a wrong verdict: a file that could not be read says so
        # (reason unreadable) and, where the command needed its header, an
        # error line names it (or the source convert could not open); clean
        # removes by name and needs no header.
        assert row["reason"] == "unreadable" or row.get("action") == "error", row
        if args[0] != "clean":
            assert row["path"] in named or row["source"] in named or throttled, row


@pytest.mark.parametrize("limit", [5, 6, 8, 10])
def test_emfile_prune_and_convert_lose_nothing(py, pycache_bin, deep_tree, tmp_path, limit):
    """For real, on a copy: prune removes only what it would remove without
    the limit; convert leaves each pyc converted or byte-identical, and no
    temporary file."""
    root = str(tmp_path / "d")
    shutil.copytree(deep_tree, root)
    would = {row["path"] for row in file_rows(_run_limited(pycache_bin, None, "prune", "-n",
                                                           "--json", root).json())
             if row["action"] == "would-remove"}
    before = snapshot(root)
    r = _run_limited(pycache_bin, limit, "prune", "--json", root)
    assert r.returncode in (0, 1, 3)
    after = snapshot(root)
    removed = {os.path.join(root, p) for p in before if p not in after}
    removed_files = {p for p in removed if not p.endswith("__pycache__")}
    assert removed_files <= would
    assert {row["path"] for row in file_rows(r.json())
            if row["action"] == "removed"} == removed_files

    before = {k: v for k, v in snapshot(root).items() if v[3]}  # files
    r = _run_limited(pycache_bin, limit, "convert", "--to", "checked-hash", "--json", root)
    assert r.returncode in (0, 3)
    assert temp_files(root) == []
    after = {k: v for k, v in snapshot(root).items() if v[3]}
    rows = by_path(r.json())
    for rel, state in before.items():
        path = os.path.join(root, rel)
        if rows.get(path, {}).get("action") == "converted":
            assert after[rel][3] != state[3]
        else:
            assert after[rel] == state, rel
    converted = [p for p, row in rows.items() if row["action"] == "converted"]
    if converted:
        # Oracle: CPython loads a converted file (checked-hash, source read).
        p = converted[0]
        src_dir = os.path.dirname(os.path.dirname(p))
        mod = os.path.basename(p).split(".", 1)[0]
        assert cpython_import(py, src_dir, mod)[0] == "cache"


# ---- a read-only file system ---------------------------------------------------

_RO_SCRIPT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'


def _ro_available():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) for a private mount namespace"
    import tempfile
    d = tempfile.mkdtemp()
    try:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            _RO_SCRIPT + ' 2>/dev/null', "sh", d, "sh", "-c",
                            'touch "$0/x" 2>/dev/null && exit 1; exit 0', d],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            return "cannot make a read-only bind mount here: %s" % p.stderr.decode().strip()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return None


_RO_SKIP = None


def run_ro(pycache_bin, root, *args, env=None):
    """Runs pycache with ROOT bind-mounted read-only over itself, in a private
    mount namespace (gone with the process)."""
    global _RO_SKIP
    if _RO_SKIP is None:
        _RO_SKIP = _ro_available() or ""
    if _RO_SKIP:
        pytest.skip(_RO_SKIP)
    e = dict(os.environ, NO_COLOR="1")
    e.update(env or {})
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", _RO_SCRIPT,
                        "sh", root, pycache_bin] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, timeout=300)
    return Result(p)


@pytest.fixture
def ro_tree(py, tmp_path):
    """Fresh, stale, orphan and legacy caches: work for every command."""
    root = str(tmp_path / "r")
    tree(py, root, fresh=("a", "b"), orphans=["o%02d" % i for i in range(13)])
    src = make_module(os.path.join(root, "pkg"), "leg", "legacy")
    compile_source(py, src, legacy=True)
    os.unlink(src)
    with open(os.path.join(root, "pkg", "b.py"), "a") as f:
        f.write("# edited: stale\n")
    return root


@pytest.mark.parametrize("args,removes", [
    (["prune", "--sourceless"], 15), (["clean"], 16),
    (["convert", "--to", "checked-hash"], 0),
], ids=["prune", "clean", "convert"])
def test_read_only(pycache_bin, ro_tree, args, removes):
    before = snapshot(ro_tree)
    r = run_ro(pycache_bin, ro_tree, *(args + ["--json", ro_tree]))
    assert r.returncode == 3, r.stderr
    errs = error_lines(r)
    assert errs and all(c == "Read-only file system" for _, c in errs)
    rows = r.json()
    failed = [row["path"] for row in file_rows(rows) if row["action"] in ("failed", "error")]
    if removes:
        # Every removal fails (13 orphans, the stale b, the legacy file;
        # clean: the fresh a too): ten lines, then one counting the rest.
        assert len(failed) == removes
        assert len(errs) == 11
        assert MORE_LINE.match(r.stderr.splitlines()[-1]).group("n") == str(removes - 10)
        assert {p for p, _ in errs[:10]} <= set(failed)
    else:
        assert sorted(p for p, _ in errs) == sorted(failed) and len(failed) == 1  # a
    assert snapshot(ro_tree) == before
    assert temp_files(ro_tree) == []


def test_read_only_compile(py, pycache_bin, ro_tree):
    """compile's workers are real interpreters: their writes fail on the
    read-only mount, one line per file with the interpreter's own error."""
    before = snapshot(ro_tree)
    r = run_ro(pycache_bin, ro_tree, "compile", "--python", py.path, "--json", ro_tree)
    assert r.returncode == 3, r.stderr
    rows = r.json()
    errs = r.stderr.splitlines()
    failed = [row for row in rows if row["action"] == "error"]
    assert len(failed) == 1 and len(errs) == 1  # the stale b
    assert failed[0]["source"] == os.path.join(ro_tree, "pkg", "b.py")
    assert failed[0]["error_type"] == "OSError"
    assert errs[0].startswith("pycache compile: cannot compile '%s'" % failed[0]["source"])
    assert "Read-only file system" in errs[0]
    assert snapshot(ro_tree) == before


def test_read_only_doctor_fix(py, pycache_bin, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is missing")
    env = _git_env(tmp_path)
    repo = str(tmp_path / "proj")
    os.makedirs(repo)
    subprocess.run(["git"] + GIT_ID + ["init", "-q", "."], cwd=repo, env=env, check=True)
    tree(py, repo, fresh=("m",))
    before = snapshot(repo)
    r = run_ro(pycache_bin, repo, "doctor", "--fix", "--json", repo, env=env)
    assert r.returncode == 3, r.stderr
    r.json()
    assert error_lines(r)[0] == (os.path.join(repo, ".gitignore"), "Read-only file system")
    assert snapshot(repo) == before
