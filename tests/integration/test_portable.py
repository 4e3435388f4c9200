"""The Linux build and the portable build (make PORTABLE=1) say the same.

Both binaries run the same commands on the same trees (every interpreter's
caches in every damaged state, the clean test's project, hostile names and
symlinks) and must print the same bytes, on stdout and on stderr, with the
same exit status: the fast paths (getdents64 with d_type, io_uring header
batches, O_NOATIME, src/platform/) change how a tree is read, never what is
said about it. The other build is $PYCACHE_PEER_BIN (the Makefile passes
build/pycache to a portable run and build-portable/pycache to a Linux one);
the test is skipped when that binary has not been built.

Commands that change the tree run on two copies, one per binary, and the
copies must end up the same.
"""

import os
import shutil
import subprocess

import pytest

import hostile
from oracle import compile_source, make_module
from test_check import DAMAGES, HASH_MODES, set_mtime
from test_clean import build_tree


@pytest.fixture(scope="module")
def peer_bin():
    path = os.environ.get("PYCACHE_PEER_BIN", "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("the other build is not built (%s): make && make PORTABLE=1"
                    % (path or "PYCACHE_PEER_BIN unset"))
    return path


def run(binary, args, cwd=None, threads=None):
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env["NO_COLOR"] = "1"
    if threads:
        env["PYCACHE_THREADS"] = threads
    p = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def trees(tmp_path_factory, interpreters):
    """One directory holding every kind of tree the suite makes, compiled by
    the oldest interpreter, the first with hash-based pycs (3.7) and the
    newest: each layout of header once (every interpreter: 40 s more)."""
    first37 = [i for i in interpreters if (i.major, i.minor) >= (3, 7)][:1]
    interpreters = sorted({id(i): i for i in interpreters[:1] + first37 + interpreters[-1:]}
                          .values(), key=lambda i: (i.major, i.minor))
    top = str(tmp_path_factory.mktemp("both") / "trees")
    multi = os.path.join(top, "multi")
    os.makedirs(multi)
    modules = []
    for damage in DAMAGES:
        for mode in [None] + HASH_MODES:
            name = "m_%s_%s" % (damage, (mode or "timestamp").replace("-", ""))
            set_mtime(make_module(multi, name, "v1", padding="x = 1\n"))
            modules.append((name, damage, mode))
    for interp in interpreters:
        for name, damage, mode in modules:
            use_mode = mode if (interp.major, interp.minor) >= (3, 7) else None
            compile_source(interp, os.path.join(multi, name + ".py"), mode=use_mode)
    for name, damage, mode in modules:
        if DAMAGES[damage]:
            DAMAGES[damage](multi, name)
    build_tree(interpreters, os.path.join(top, "project"))
    os.makedirs(os.path.join(top, "names"))
    hostile.build_names(os.path.join(top, "names"))
    outside = os.path.join(os.path.dirname(top), "outside")
    os.makedirs(os.path.join(top, "links"))
    os.makedirs(outside)
    hostile.build_links(os.path.join(top, "links"), outside)
    return top


# Commands that only look: run once per binary on the same tree.
LOOKING = [
    ["check", "--fail-on", "none", "."],
    ["check", "-v", "--json", "--fail-on", "none", "."],
    ["check", "-0", "--fail-on", "none", "."],
    ["check", "--deep", "--fail-on", "none", "."],
    ["check", "--fail-on", "stale", "--no-skip-venvs", "--hidden", "."],
    ["stats", "."],
    ["stats", "--json", "."],
    ["clean", "-n", "--json", "."],
    ["prune", "-n", "."],
    ["convert", "-n", "--to", "checked-hash", "."],
]


@pytest.mark.parametrize("args", LOOKING, ids=lambda a: " ".join(a))
@pytest.mark.parametrize("threads", ["1", None], ids=["1-thread", "threads"])
def test_same_output(pycache_bin, peer_bin, trees, args, threads):
    mine = run(pycache_bin, args, cwd=trees, threads=threads)
    theirs = run(peer_bin, args, cwd=trees, threads=threads)
    assert mine[0] == theirs[0], (mine, theirs)
    if threads is None and mine[1] != theirs[1]:
        # Several walkers may print in another order (the lead's sorted
        # output makes this branch dead); the lines must still be the same.
        sep = b"\0" if "-0" in args else b"\n"
        assert sorted(mine[1].split(sep)) == sorted(theirs[1].split(sep))
    else:
        assert mine[1] == theirs[1]
    assert sorted(mine[2].splitlines()) == sorted(theirs[2].splitlines())
    assert mine[1] or mine[2]


def snapshot(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode, f.read())
    return out


CHANGING = [
    ["clean", "."],
    ["prune", "."],
    ["convert", "--to", "unchecked-hash", "."],
]


@pytest.mark.parametrize("args", CHANGING, ids=lambda a: " ".join(a))
def test_same_changes(pycache_bin, peer_bin, trees, tmp_path, args):
    results = []
    for i, binary in enumerate((pycache_bin, peer_bin)):
        copy = str(tmp_path / ("copy%d" % i))
        shutil.copytree(os.path.join(trees, "multi"), os.path.join(copy, "multi"), symlinks=True)
        shutil.copytree(os.path.join(trees, "project"), os.path.join(copy, "project"),
                        symlinks=True)
        r = run(binary, args, cwd=copy, threads="1")
        results.append((r, snapshot(copy)))
    (mine, tree_mine), (theirs, tree_theirs) = results
    assert mine == theirs
    assert tree_mine == tree_theirs
