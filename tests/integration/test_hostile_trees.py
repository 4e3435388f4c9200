"""Hostile trees: every tree command loses nothing, whatever the tree.

Each case builds a tree meant to break a walker (symlink loops and links out
of the tree, a tree five times deeper than PATH_MAX, names with newlines,
dashes, escapes and invalid UTF-8, directories nobody may read or write,
directories of 100 000 entries) and runs `check`, `clean -n`, `prune`,
`compile`, `convert` and `clean` on it, in every output format, with a
checksum of every file that is not bytecode taken before and after
(hostile.precious: it must not change), and of every link target outside
the tree (it must not change either). Each run must keep the output contract
(hostile.check_output: the documented exit status, one "pycache: ..." line
per error naming the file and its cause, valid JSON Lines, -0 paths that
existed) and leave no half-written file behind.

The pycs are written by this interpreter's importlib (hostile.pyc_bytes), and
`compile` runs it too (hostile.PYTHON), so the tag is the runner's.
"""

import os
import subprocess
import sys

import pytest

import hostile
from conftest import run_unprivileged
from hostile import (PYTHON, assert_unchanged, check_output, leftovers, precious,
                     snapshot)

# (id, argv, formats): every command of the issue, each in the formats it has.
COMMANDS = [
    ("check", ["check"], ("text", "json", "null")),
    ("clean-n", ["clean", "-n"], ("text", "json", "null")),
    ("prune", ["prune"], ("text", "json", "null")),
    ("compile", ["compile", "--python", PYTHON, "-j", "2"], ("text", "json")),
    ("convert", ["convert", "--to", "checked-hash"], ("text", "json", "null")),
    ("clean", ["clean"], ("text", "json", "null")),
]
FORMAT_ARGS = {"text": [], "json": ["--json"], "null": ["-0"]}
READ_ONLY = ("check", "clean-n")

RUNS = [pytest.param(cid, argv, fmt, id="%s-%s" % (cid, fmt))
        for cid, argv, fmts in COMMANDS for fmt in fmts]


def argv_for(argv, fmt, top):
    return argv + FORMAT_ARGS[fmt] + [os.fsdecode(top)]


def run_case(pycache, cid, argv, fmt, top, outside, codes, run=None, before=None):
    """Runs one command on TOP; checks the output contract, that nothing
    precious changed under TOP, nothing at all under OUTSIDE, and that no
    temp file is left. Returns (result, parsed output, before, after)."""
    if before is None:
        before = snapshot(top)
    out_before = snapshot(outside, full=True) if outside else None
    if run is None:
        r = pycache(*argv_for(argv, fmt, top))
    else:
        r = run(*argv_for(argv, fmt, top))
    after = snapshot(top)
    parsed = check_output(r, fmt, set(before) | set(after) | {os.fsencode(top)},
                          codes[cid])
    assert_unchanged(precious(before), precious(after))
    if outside:
        assert_unchanged(out_before, snapshot(outside, full=True), "outside the tree")
    assert leftovers(after) == leftovers(before) == [], leftovers(after)
    if cid in READ_ONLY or "-n" in argv:
        assert_unchanged(before, after)
    return r, parsed, before, after


def pyc_files(snap):
    """The bytecode files and links in a snapshot (not directories)."""
    return sorted(p for p, e in snap.items()
                  if e[0] != "dir" and p.endswith((b".pyc", b".pyo")))


# ---- symlink loops, links out of the tree -----------------------------------------

LINK_CODES = {
    "check": (3,),    # the pyc link looping on itself cannot be opened
    "clean-n": (1,),
    "prune": (3,),    # ... nor judged, so it is kept, with an error
    "compile": (3,),  # py_compile refuses symlinked pycs; a symlinked
                      # __pycache__ is not followed
    "convert": (3,),
    "clean": (0,),    # a link is removed as a link: no need to read it
}


@pytest.mark.parametrize("cid,argv,fmt", RUNS)
def test_links(pycache, tmp_path, cid, argv, fmt):
    top, outside = tmp_path / "tree", tmp_path / "outside"
    top.mkdir()
    outside.mkdir()
    links = hostile.build_links(top, outside)
    r, parsed, before, after = run_case(pycache, cid, argv, fmt, top, outside, LINK_CODES)
    if r.returncode == 3:
        # Each error names its file and cause.
        assert "pycache %s: cannot open '%s': Too many levels of symbolic links" % \
            (argv[0], os.fsdecode(links["self"])) in r.stderr or cid == "compile", r.stderr
    if cid == "clean":
        # Every pyc link went, as a link; the __pycache__ link is no cache.
        assert pyc_files(after) == []
        assert after[links["pycache"]] == before[links["pycache"]]
    elif cid == "prune":
        gone = {links[k] for k in ("stale", "orphan", "dangling", "dir", "legacy")}
        assert gone.isdisjoint(after), sorted(gone & set(after))
        assert after[links["fresh"]] == before[links["fresh"]]
        assert after[links["self"]] == before[links["self"]]
    elif cid == "compile":
        assert "pycache compile: cannot compile '%s/sub/s.py' for Python %s: OSError: " \
            "__pycache__ is a symbolic link (not followed)" % (
                top, "%d.%d" % sys.version_info[:2]) in r.stderr, r.stderr
        for k in ("fresh", "stale", "self"):  # links py_compile refuses
            assert after[links[k]] == before[links[k]]
    elif cid == "convert":
        # The fresh pyc reached through a link is never rewritten through it.
        assert after[links["fresh"]] == before[links["fresh"]]
        if fmt == "json":
            (o,) = [o for o in parsed if os.fsencode(o["path"]) == links["fresh"]]
            assert o["action"] == "symlink"


# ---- names: newlines, tabs, dashes, invalid UTF-8 ------------------------------------

# check: the names tree holds clutter only (orphans, stale), no finding by
# default (the severity table); clean -n found work (a dry run's 1).
NAME_CODES = {"check": (0,), "clean-n": (1,), "prune": (0,), "compile": (0,),
              "convert": (1,), "clean": (0,)}


@pytest.mark.parametrize("cid,argv,fmt", RUNS)
def test_names(pycache, tmp_path, cid, argv, fmt):
    top = tmp_path / "tree"
    top.mkdir()
    hostile.build_names(top)
    r, parsed, before, after = run_case(pycache, cid, argv, fmt, top, None, NAME_CODES)
    topb = os.fsencode(top)
    if cid == "check" and fmt != "text":
        # Every orphan and stale pyc is named, byte for byte.
        named = {os.fsencode(o["path"]) for o in parsed} if fmt == "json" else set(parsed)
        for i, n in enumerate(hostile.HOSTILE_NAMES):
            assert topb + b"/__pycache__/" + hostile.cache_name(n + b"_orphan") in named
            if i % 3 == 1:
                assert topb + b"/__pycache__/" + hostile.cache_name(n) in named
    elif cid == "check":
        # One line per file: a name with a newline does not split its line.
        assert len([ln for ln in parsed if "_orphan." in ln]) == len(hostile.HOSTILE_NAMES)
    elif cid == "clean":
        assert pyc_files(after) == []
    elif cid == "compile":
        # Every source now has its cache file (a fresh one: see check below).
        for i, n in enumerate(hostile.HOSTILE_NAMES):
            assert topb + b"/__pycache__/" + hostile.cache_name(n) in after
        r2 = pycache("check", "--json", "--fail-on", "stale,corrupt,stale-used", top)
        assert r2.returncode == 0, r2.stdout
    elif cid == "convert" and fmt == "json":
        # Every fresh one: one per subdirectory, every third at the top.
        done = [o for o in parsed if o["action"] == "converted"]
        n = len(hostile.HOSTILE_NAMES)
        assert len(done) == n + len(range(0, n, 3))


def test_names_as_operands(pycache, tmp_path):
    """Operands that look like options, after `--`, relative to the cwd."""
    top = tmp_path / "tree"
    top.mkdir()
    hostile.build_names(top)
    before = snapshot(top)
    r = pycache("check", "--json", "--", "-rf", "--help", "-", cwd=top)
    objs = check_output(r, "json", set(os.fsencode(p[len(os.fsencode(top)) + 1:])
                                       for p in before), (0,))
    assert {o["path"] for o in objs} == {"-rf/__pycache__/-rf.foreign",
                                        "--help/__pycache__/--help.foreign",
                                        "-/__pycache__/-.foreign"}
    assert_unchanged(before, snapshot(top))


# ---- deeper than PATH_MAX -------------------------------------------------------------

DEEP_CODES = {"check": (0,), "clean-n": (1,), "prune": (0,),
              "compile": (3,),  # py_compile cannot open a path past PATH_MAX
              "convert": (1,), "clean": (0,)}


@pytest.mark.parametrize("cid,argv,fmt", RUNS)
def test_deep(pycache, tmp_path, cid, argv, fmt):
    top = tmp_path / "deep"
    top.mkdir()
    longest = hostile.build_deep(top)
    assert longest > 4 * 4096
    r, parsed, before, after = run_case(pycache, cid, argv, fmt, top, None, DEEP_CODES)
    levels = hostile.DEEP_LEVELS // 20 + 1
    if cid == "check" and fmt == "json":
        got = sorted((o["status"], len(o["path"]) > 4096) for o in parsed)
        assert [s for s, _ in got].count("orphan") == levels
        assert [s for s, _ in got].count("stale") == levels
        assert (("orphan", True) in got) and (("stale", True) in got)
    elif cid == "prune":
        left = pyc_files(after)
        assert len(left) == levels and all(b"/__pycache__/f" in p for p in left)
    elif cid == "clean":
        assert pyc_files(after) == []
    elif cid == "compile":
        # Past PATH_MAX, each file is an error naming it and the cause.
        errs = [ln for ln in r.stderr.splitlines() if "File name too long" in ln]
        assert errs and all(ln.startswith("pycache compile: cannot compile '") for ln in errs)
    elif cid == "convert":
        # convert works with directory fds: every fresh pyc, at every depth.
        heads = [after[p] for p in pyc_files(after) if b"/__pycache__/f" in p]
        assert len(heads) == levels
        if fmt == "json":
            assert sum(o["action"] == "converted" for o in parsed) == levels


# ---- unreadable and unwritable directories, for real (as nobody) ----------------------

PERM_DIRS = {
    b"ok": None,
    b"noread": 0o311,       # can enter, cannot list
    b"nosearch": 0o644,     # can list, cannot stat or open what is in it
    b"nowrite": 0o555,
    b"pycache-ro": None,    # its __pycache__ is 0555
    b"pycache-noread": None,  # its __pycache__ is 0300
}


def build_perms(top):
    fd = hostile.open_dir(top)
    try:
        for d in PERM_DIRS:
            dfd = hostile.mkdir_at(fd, d)
            hostile.add_module(dfd, b"m", "m", cache="stale")
            hostile.add_module(dfd, b"f", "f", cache="fresh")
            hostile.add_orphan(dfd, b"o")
            hostile.add_data(dfd, b"data.txt")
            os.close(dfd)
    finally:
        os.close(fd)
    subprocess.run(["chown", "-R", "65534:65534", os.fsdecode(top)], check=True)
    topb = os.fsencode(top)
    os.chmod(topb + b"/ok/__pycache__/" + hostile.cache_name(b"f"), 0)
    os.chmod(topb + b"/pycache-ro/__pycache__", 0o555)
    os.chmod(topb + b"/pycache-noread/__pycache__", 0o300)
    for d, mode in PERM_DIRS.items():
        if mode is not None:
            os.chmod(topb + b"/" + d, mode)


PERM_CODES = {k: (3,) for k in ("check", "clean-n", "prune", "compile", "convert", "clean")}


@pytest.mark.parametrize("cid,argv,fmt", RUNS)
def test_permissions(open_tmp, cid, argv, fmt):
    if not os.access(PYTHON, os.X_OK) or PYTHON.startswith("/root/"):
        pytest.skip("the runner's interpreter is not reachable by nobody")
    top = os.path.join(open_tmp, "tree")
    os.mkdir(top)
    build_perms(top)
    r, parsed, before, after = run_case(None, cid, argv, fmt, top, None, PERM_CODES,
                                        run=run_unprivileged)
    # The unreadable directories, each named once with its cause.
    for d in ("noread", "nosearch/__pycache__", "pycache-noread/__pycache__"):
        line = "pycache %s: cannot open '%s/%s': Permission denied" % (argv[0], top, d)
        assert r.stderr.count(line + "\n") == 1, (line, r.stderr)
    if cid in ("prune", "clean"):
        for p in pyc_files(before):
            if b"/pycache-ro/" in p or b"/noread/" in p or b"/nosearch/" in p \
                    or b"/pycache-noread/" in p:
                assert after[p] == before[p]   # could not go: reported
        for name in ("m", "o"):
            path = "%s/pycache-ro/__pycache__/%s" % (top, hostile.cache_name(
                name.encode()).decode())
            assert "pycache %s: cannot remove '%s': Permission denied\n" % (argv[0], path) in r.stderr
    if cid == "clean":
        # What could go went: the writable directories hold no pyc.
        assert not [p for p in pyc_files(after) if b"/ok/" in p or b"/nowrite/" in p]
    if cid == "convert":
        path = "%s/pycache-ro/__pycache__/%s" % (top, hostile.cache_name(b"f").decode())
        assert "pycache convert: cannot create a temporary file beside '%s': Permission denied\n" \
            % path in r.stderr


# ---- 100 000 entries in one directory ---------------------------------------------------

WIDE_SOURCES = 20000    # wide/sNNNNN.py, each with a pyc (the first 10 stale)
WIDE_STALE = 10
WIDE_LEGACY = 10000     # wide/lNNNNN.pyc: sourceless
WIDE_DATA = 100000 - WIDE_SOURCES - WIDE_LEGACY - 1   # + __pycache__ = 100 000
WIDE_ORPHANS = 40000    # wide/__pycache__/oNNNNN.TAG.pyc
WIDE_FOREIGN = 100000 - WIDE_SOURCES - WIDE_ORPHANS   # __pycache__/xNNNNN.txt


def build_wide(top):
    """wide/ and wide/__pycache__, 100 000 entries each."""
    fd = hostile.open_dir(top)
    try:
        wfd = hostile.mkdir_at(fd, b"wide")
        pfd = hostile.mkdir_at(wfd, b"__pycache__")
        src = hostile.source_bytes("s")
        legacy = hostile.pyc_bytes(hostile.source_bytes("sourceless"), mode="checked-hash")
        try:
            for i in range(WIDE_SOURCES):
                name = b"s%05d" % i
                hostile.write_at(wfd, name + b".py", src)
                st = os.stat(name + b".py", dir_fd=wfd)
                if i < WIDE_STALE:
                    st = os.stat_result((0, 0, 0, 0, 0, 0, 1, 0, 1000000000, 0))
                hostile.write_at(pfd, hostile.cache_name(name), hostile.pyc_bytes(src, st))
            for i in range(WIDE_LEGACY):
                hostile.write_at(wfd, b"l%05d.pyc" % i, legacy)
            for i in range(WIDE_DATA):
                os.close(os.open(b"d%05d.dat" % i, os.O_WRONLY | os.O_CREAT, 0o644,
                                 dir_fd=wfd))
            for i in range(WIDE_ORPHANS):
                hostile.write_at(pfd, hostile.cache_name(b"o%05d" % i), legacy)
            for i in range(WIDE_FOREIGN):
                hostile.write_at(pfd, b"x%05d.txt" % i, b"%d\n" % i)
        finally:
            os.close(pfd)
            os.close(wfd)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def wide_tree(tmp_path_factory):
    import shutil
    import tempfile
    root = tempfile.mkdtemp(prefix="pycache-wide-", dir=hostile.scratch_root())
    build_wide(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_wide_directories(pycache, wide_tree):
    """The commands in sequence on one tree of two 100 000-entry
    directories: every entry is seen once (counts are exact), and only what
    each command must change changes."""
    top = wide_tree
    w = os.fsencode(top) + b"/wide/"
    codes = {"check": (1,), "clean-n": (1,), "compile": (0,), "convert": (1,),
             "prune": (1,), "clean": (0,)}
    # check: every cache file, by status.
    _, objs, before, _ = run_case(pycache, "check", ["check", "-v"], "json", top, None, codes)
    count = {}
    for o in objs:
        count[o["status"]] = count.get(o["status"], 0) + 1
    assert count == {"fresh": WIDE_SOURCES - WIDE_STALE, "stale": WIDE_STALE,
                     "orphan": WIDE_ORPHANS, "sourceless": WIDE_LEGACY,
                     "foreign": WIDE_FOREIGN}
    assert len({o["path"] for o in objs}) == len(objs)
    # clean -n: every pyc, once; __pycache__ stays (it holds foreign files).
    _, paths, _, snap = run_case(pycache, "clean-n", ["clean", "-n"], "null", top, None,
                                 codes, before=before)
    assert sorted(paths) == pyc_files(before)
    # compile: the stale ones only.
    _, objs, _, snap = run_case(pycache, "compile", ["compile", "--python", PYTHON],
                                "json", top, None, codes, before=snap)
    acts = [o["action"] for o in objs]
    assert acts.count("compiled") == WIDE_STALE
    assert acts.count("fresh") == WIDE_SOURCES - WIDE_STALE
    # convert: every fresh one.
    _, objs, _, snap = run_case(pycache, "convert", ["convert", "--to", "checked-hash"],
                                "json", top, None, codes, before=snap)
    assert sum(o["action"] == "converted" for o in objs) == WIDE_SOURCES
    # prune: the orphans go, the sourceless stay (exit 1), the fresh stay.
    _, paths, _, snap = run_case(pycache, "prune", ["prune"], "null", top, None, codes,
                                 before=snap)
    assert len(paths) == WIDE_ORPHANS and all(b"/__pycache__/o" in p for p in paths)
    assert len(pyc_files(snap)) == WIDE_SOURCES + WIDE_LEGACY
    # clean: all of it; the foreign files keep __pycache__.
    _, objs, _, after = run_case(pycache, "clean", ["clean"], "json", top, None, codes,
                                 before=snap)
    assert pyc_files(after) == []
    assert after[w + b"__pycache__"][0] == "dir"
