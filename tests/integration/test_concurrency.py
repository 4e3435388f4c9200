"""pycache against a tree that changes while it walks.

1. A mutator process (seeded, bounded in time) deletes sources and pycs,
   replaces pycs by links to a file outside the tree, replaces files by
   directories, rewrites pycs in place, replaces a __pycache__ or a whole
   package by a link out of the tree, and puts things back, while one
   pycache command runs again and again: no crash (no signal, no sanitizer
   report), exit status 0, 1 or 3, every stderr line a "pycache..." line,
   valid JSON, nothing outside the tree changed, no data file changed, no
   temp file left.

2. Real interpreters import the tree's modules, writing pycs as they go,
   while an editor rewrites sources (atomically, always growing, so that no
   stale pyc can ever match by CPython's own rules) and `prune`, `clean` and
   `convert` run: afterwards every pyc `check` calls fresh imports from
   cache (batch_import: CPython's own verdict), and every module prints what
   its current source says: nothing CPython loads is a stale-content pyc.
"""

import os
import re
import subprocess
import sys
import time

import pytest

import hostile
from conftest import discover_interpreters
from hostile import PYTHON, assert_unchanged, check_output, leftovers, snapshot
from oracle import batch_import

MUTATE_SECONDS = 2.5

MUTATOR = r"""
import os, random, shutil, sys, time, py_compile
top, outside, seed, seconds, swaps = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    float(sys.argv[4]), sys.argv[5] == "1"
rng = random.Random(seed)
moved = []          # (package, its new name): put back at the end
end = time.monotonic() + seconds

def files(suffix):
    out = []
    for d, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if not x.endswith(".moved")]
        out += [os.path.join(d, n) for n in names if n.endswith(suffix)]
    return out

def replace_with_link(path, target):
    tmp = path + ".lnk%d" % rng.randrange(10**9)
    os.symlink(target, tmp)
    os.rename(tmp, path)

def op_unlink():
    p = rng.choice(files(rng.choice([".py", ".pyc"])))
    os.unlink(p)

def op_link():
    replace_with_link(rng.choice(files(".pyc")), os.path.join(outside, "passwd"))

def op_dir():
    p = rng.choice(files(rng.choice([".py", ".pyc"])))
    os.unlink(p)
    os.mkdir(p)

def op_rewrite():
    # In place (never through a link: the mutator must not touch OUTSIDE).
    p = rng.choice(files(".pyc"))
    with os.fdopen(os.open(p, os.O_RDWR | os.O_NOFOLLOW), "r+b") as f:
        kind = rng.randrange(3)
        if kind == 0:
            f.truncate(rng.randrange(20))
        elif kind == 1:
            f.seek(rng.randrange(16))
            f.write(os.urandom(rng.randrange(1, 64)))
        else:
            f.seek(0)
            f.write(open(os.path.join(outside, "cache", "m0.%s.pyc" % TAG), "rb").read())

def op_pycache_link():
    ds = [os.path.join(d, "__pycache__") for d, _, _ in os.walk(top)
          if os.path.isdir(os.path.join(d, "__pycache__"))
          and not os.path.islink(os.path.join(d, "__pycache__"))]
    p = rng.choice(ds)
    shutil.rmtree(p)
    os.symlink(os.path.join(outside, "cache"), p)

def op_package_link():
    pkgs = [os.path.join(top, n) for n in os.listdir(top)
            if n.startswith("pkg") and not n.endswith(".moved")
            and not os.path.islink(os.path.join(top, n))]
    p = rng.choice(pkgs)
    os.rename(p, p + ".moved")
    moved.append(p)
    os.symlink(rng.choice([os.path.join(outside, "tree"), top, ".."]), p)

def op_restore():
    # Sources back, caches recompiled, directories and links undone.
    for d, dirs, names in os.walk(top):
        for n in dirs + names:
            p = os.path.join(d, n)
            if n.endswith((".py", ".pyc")) and os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
        pc = os.path.join(d, "__pycache__")
        if os.path.islink(pc):
            os.unlink(pc)
    for i in range(MODULES):
        for pkg in PACKAGES:
            src = os.path.join(top, pkg, "m%d.py" % i)
            if os.path.isdir(os.path.join(top, pkg)) and not os.path.islink(
                    os.path.join(top, pkg)):
                if not os.path.exists(src):
                    with open(src, "w") as f:
                        f.write("print(%r)\n" % src)
                if rng.random() < 0.5:
                    py_compile.compile(src, doraise=True)
    if moved and rng.random() < 0.5:
        unmove()

def unmove():
    while moved:
        p = moved.pop()
        if os.path.islink(p):
            os.unlink(p)
        os.rename(p + ".moved", p)

TAG = sys.implementation.cache_tag
MODULES, PACKAGES = int(sys.argv[6]), sys.argv[7].split(",")
ops = [op_unlink, op_link, op_dir, op_rewrite, op_restore]
if swaps:
    ops += [op_pycache_link, op_package_link]
n = errors = 0
while time.monotonic() < end:
    try:
        rng.choice(ops)()
    except (OSError, IndexError, py_compile.PyCompileError):
        errors += 1
    n += 1
    time.sleep(rng.random() * 0.002)
unmove()
print(n, errors)
"""

MODULES = 12
PACKAGES = ["pkg%d" % i for i in range(4)]


def build_mutable(top, outside):
    """PACKAGES of MODULES modules each (fresh, stale and missing caches,
    orphans) with data files the mutator never touches; OUTSIDE holds what
    its links point to: a passwd-like file, a cache directory with pycs
    named like the tree's, a package."""
    ofd, tfd = hostile.open_dir(outside), hostile.open_dir(top)
    try:
        hostile.add_data(ofd, b"passwd", b"root:x:0:0:root:/root:/bin/bash\n")
        cfd = hostile.mkdir_at(ofd, b"cache")
        for i in range(MODULES):
            hostile.write_at(cfd, hostile.cache_name(b"m%d" % i),
                             hostile.pyc_bytes(hostile.source_bytes("outside %d" % i),
                                               mode="checked-hash"))
        os.close(cfd)
        ot = hostile.mkdir_at(ofd, b"tree")
        for i in range(MODULES):
            hostile.add_module(ot, b"m%d" % i, "outside tree %d" % i)
            hostile.add_data(ot, b"d%d.txt" % i)
        os.close(ot)
        for pkg in PACKAGES:
            pfd = hostile.mkdir_at(tfd, pkg.encode())
            hostile.add_module(pfd, b"__init__", pkg)
            for i in range(MODULES):
                hostile.add_module(pfd, b"m%d" % i, "%s.m%d" % (pkg, i),
                                   cache=["fresh", "stale", None][i % 3])
                hostile.add_orphan(pfd, b"o%d" % i)
                hostile.add_data(pfd, b"d%d.txt" % i, b"data %d\n" % i)
            os.close(pfd)
    finally:
        os.close(ofd)
        os.close(tfd)


def data_files(snap):
    return {p: e for p, e in snap.items() if p.endswith(b".txt")}


MUTATED = [
    ("check", ["check", "--json"], "json", True),
    ("clean-n", ["clean", "-n", "-0"], "null", True),
    ("prune", ["prune", "--json"], "json", True),
    ("convert", ["convert", "--to", "checked-hash", "-0"], "null", True),
    ("convert-ts", ["convert", "--to", "timestamp", "--json"], "json", True),
    ("clean", ["clean", "--json"], "json", True),
    ("stats", ["stats"], "text", True),
    # compile hands each path to py_compile, which follows links: a
    # directory swapped for a link between the scan and the write is not
    # covered (a symlinked __pycache__ present at scan time is refused).
    ("compile", ["compile", "--python", PYTHON, "--json"], "json", False),
]


@pytest.mark.parametrize("cid,argv,fmt,swaps", [pytest.param(*m, id=m[0]) for m in MUTATED])
def test_mutator(pycache, tmp_path, cid, argv, fmt, swaps):
    top, outside = tmp_path / "tree", tmp_path / "outside"
    top.mkdir()
    outside.mkdir()
    build_mutable(top, outside)
    data_before = data_files(snapshot(top))
    out_before = snapshot(outside, full=True)
    seed = sum(map(ord, cid))
    mut = subprocess.Popen([sys.executable, "-c", MUTATOR, str(top), str(outside), str(seed),
                            str(MUTATE_SECONDS), "1" if swaps else "0", str(MODULES),
                            ",".join(PACKAGES)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs, codes = 0, set()
    try:
        while mut.poll() is None:
            r = pycache(*(argv + [str(top)]))
            runs += 1
            codes.add(r.returncode)
            # Paths come and go: only the form of each is checked here.
            check_output(r, fmt, _Anything(), (0, 1, 3))
            # A cache file or a __pycache__ that vanished since it was listed
            # is skipped, as the walk skips any vanished entry: no error.
            assert not VANISHED.search(r.stderr), r.stderr
    finally:
        out, err = mut.communicate(timeout=60)
    assert mut.returncode == 0, err.decode()
    assert runs >= 2, (runs, out)
    # The dust settled: one more run, then the invariants.
    r = pycache(*(argv + [str(top)]))
    check_output(r, fmt, _Anything(), (0, 1, 3))
    after = snapshot(top)
    assert_unchanged(out_before, snapshot(outside, full=True), "outside the tree")
    assert_unchanged(data_before, data_files(after), "data files")
    assert leftovers(after) == []


VANISHED = re.compile(r"^pycache [a-z]+: cannot (open '[^\n]*\.pyc|read '[^\n]*/__pycache__)': "
                      r"No such file or directory$", re.M)


class _Anything(object):
    def __contains__(self, item):
        return True


# ---- real interpreters writing pycs while pycache works ---------------------------------

WRITER = r"""
import sys, time, subprocess
top, seconds, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
end = time.monotonic() + seconds
code = "import sys; sys.path.insert(0, %r)\n" % top
code += "".join("import %s\n" % n for n in names)
while time.monotonic() < end:
    # A fresh interpreter each time, writing the pycs it finds stale
    # (SourceLoader.get_code -> _cache_bytecode), as a test runner would.
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode())
        sys.exit(1)
"""

EDITOR = r"""
import os, random, sys, time
top, seconds, seed, names = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rng = random.Random(seed)
end = time.monotonic() + seconds
gen = 0
while time.monotonic() < end:
    gen += 1
    name = rng.choice(names)
    path = os.path.join(top, name + ".py")
    size = os.path.getsize(path)
    # Atomic, and always longer than before: no older pyc can match by
    # mtime and size (CPython's own rule), whatever the clock.
    text = "print(%r)\n" % ("%s v%d" % (name, gen))
    text += "#" * max(0, size + 1 - len(text)) + "\n"
    with open(path + ".edit", "w") as f:
        f.write(text)
    os.rename(path + ".edit", path)
    time.sleep(rng.random() * 0.02)
"""

NAMES = ["c%d" % i for i in range(24)]


def current_marker(top, name):
    with open(os.path.join(top, name + ".py")) as f:
        first = f.readline()
    return eval(first[len("print("):-2])


def clean_env():
    env = dict(os.environ)
    for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH"):
        env.pop(k, None)
    return env


def runner_interpreter():
    real = os.path.realpath(PYTHON)
    for i in discover_interpreters():
        if os.path.realpath(i.path) == real:
            return i
    pytest.skip("the runner's interpreter is not among those discovered")


@pytest.mark.parametrize("commands", [
    pytest.param([["prune"], ["convert", "--to", "checked-hash"], ["clean"]], id="mixed"),
    pytest.param([["convert", "--to", "checked-hash"], ["convert", "--to", "timestamp"]],
                 id="convert"),
])
def test_interpreters_writing(pycache, tmp_path, commands):
    interp = runner_interpreter()
    top = str(tmp_path / "tree")
    os.mkdir(top)
    fd = hostile.open_dir(top)
    try:
        for n in NAMES:
            hostile.add_module(fd, n.encode(), n + " v0", cache=["fresh", "stale", None][
                int(n[1:]) % 3])
    finally:
        os.close(fd)
    procs = [subprocess.Popen([PYTHON, "-c", WRITER, top, str(MUTATE_SECONDS)] + NAMES,
                              stderr=subprocess.PIPE, env=clean_env()) for _ in range(2)]
    procs.append(subprocess.Popen([PYTHON, "-c", EDITOR, top, str(MUTATE_SECONDS), "7"] +
                                  NAMES, stderr=subprocess.PIPE))
    runs = 0
    try:
        while any(p.poll() is None for p in procs):
            for argv in commands:
                r = pycache(*(argv + ["--json", top]))
                check_output(r, "json", _Anything(), (0, 1))
                runs += 1
    finally:
        errs = [p.communicate(timeout=60)[1] for p in procs]
    for p, e in zip(procs, errs):
        assert p.returncode == 0, e.decode()
    assert runs >= 2
    assert leftovers(snapshot(top)) == []

    # The dust settled. What check calls fresh, CPython loads from cache;
    # whatever CPython loads runs the current source's code.
    r = pycache("check", "-v", "--json", top)
    check_output(r, "json", _Anything(), (0, 1))
    fresh = {os.path.basename(o["source"])[:-3] for o in r.json() if o["status"] == "fresh"}
    assert all(o["status"] in ("fresh", "stale") for o in r.json()), r.stdout
    got = batch_import(interp, top, NAMES)
    for n in NAMES:
        assert got[n]["printed"] == current_marker(top, n), (n, got[n])
        assert got[n]["outcome"] == ("cache" if n in fresh else "source"), (n, got[n])
