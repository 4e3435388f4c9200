"""pycache prune: removes exactly the bytecode CPython can never use or should
not use (orphan, stale, stale-used, corrupt, shadowed, temp), keeps the fresh
caches, which each interpreter then still imports from cache, and keeps
sourceless pycs unless --sourceless.

Trees are made by the real interpreters (py_compile), then damaged the way
real trees get damaged (a source edited, deleted, a write interrupted)."""

import json
import os
import shutil

import pytest

from oracle import compile_source, cpython_import, make_module

REMOVED = {"orphan", "stale", "stale-used", "corrupt", "shadowed", "temp"}


def listing(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def check_json(pycache, root, *extra):
    r = pycache("check", "--json", "--fail-on", "none", "-v", *extra, root)
    assert r.returncode == 0, r.stderr
    return {os.path.relpath(o["path"], root): o for o in r.json()}


def bump(path, delta=10):
    st = os.stat(path)
    os.utime(path, (st.st_atime, st.st_mtime + delta))


def damaged_tree(interp, root):
    """A tree with one module per status this interpreter can produce.
    Returns {module: expected status of its cache file}."""
    os.makedirs(root)
    expect = {}
    legacy = interp.major == 2
    # fresh: compiled, untouched
    compile_source(interp, make_module(root, "m_fresh", "fresh"))
    expect["m_fresh"] = "fresh"
    # stale: the source edited after compiling (new size and mtime)
    src = make_module(root, "m_stale", "stale")
    compile_source(interp, src)
    make_module(root, "m_stale", "stale, edited", padding="# more\n")
    bump(src)
    expect["m_stale"] = "stale"
    # corrupt/stale: a write cut short (header only)
    src = make_module(root, "m_cut", "cut")
    cache = compile_source(interp, src)
    with open(cache, "r+b") as f:
        f.truncate(6)
    expect["m_cut"] = None  # whatever check says: not fresh
    if not legacy:
        # orphan: the source deleted, its __pycache__ entry left behind
        src = make_module(root, "m_orphan", "orphan")
        compile_source(interp, src)
        os.unlink(src)
        expect["m_orphan"] = "orphan"
        # temp: an interrupted _write_atomic leftover
        src = make_module(root, "m_temp", "temp")
        cache = compile_source(interp, src)
        shutil.copy(cache, cache + ".140234567")
        expect["m_temp"] = "fresh"
        # shadowed: a legacy pyc beside its source, which 3.x ignores
        src = make_module(root, "m_shadow", "shadow")
        compile_source(interp, src, legacy=True)
        expect["m_shadow"] = "shadowed"
    # sourceless: a legacy pyc without its source
    src = make_module(root, "m_sourceless", "sourceless")
    compile_source(interp, src, legacy=not legacy)
    os.unlink(src)
    expect["m_sourceless"] = "sourceless"
    if (interp.major, interp.minor) >= (3, 7):
        # stale-used: an unchecked-hash pyc whose source changed
        src = make_module(root, "m_unchecked", "unchecked")
        compile_source(interp, src, mode="unchecked-hash")
        make_module(root, "m_unchecked", "unchecked, edited")
        expect["m_unchecked"] = "stale-used"
    # a foreign file in __pycache__ (kept)
    if not legacy:
        with open(os.path.join(root, "__pycache__", "README"), "w") as f:
            f.write("not bytecode\n")
    return expect


def test_prune_removes_exactly_what_cpython_cannot_use(interp, pycache, tmp_path):
    root = str(tmp_path / "t")
    expect = damaged_tree(interp, root)
    before = check_json(pycache, root)
    # The statuses the check engine gives are the contract prune acts on.
    for rel, o in before.items():
        mod = os.path.basename(rel).split(".")[0]
        if expect.get(mod) and not rel.endswith(".140234567"):
            assert o["status"] == expect[mod], (rel, o)
    doomed = {rel for rel, o in before.items() if o["status"] in REMOVED}
    assert any(o["status"] == "temp" for o in before.values()) or interp.major == 2
    assert doomed

    dry = pycache("prune", "-n", "-0", root)
    assert dry.returncode == 1, dry.stderr  # found work: a dry run exits 1
    listed = {os.path.relpath(p, root) for p in dry.stdout.split("\0") if p}
    tree = listing(root)
    assert check_json(pycache, root) == before  # -n changed nothing
    assert listing(root) == tree

    r = pycache("prune", "--json", root)
    # sourceless kept on purpose -> 1
    assert r.returncode == 1, r.stderr
    objs = r.json()
    removed = {os.path.relpath(o["path"], root) for o in objs if o["action"] == "removed"}
    kept = {os.path.relpath(o["path"], root): o for o in objs if o["action"] == "kept"}
    assert listed == removed  # the dry run listed exactly what went
    assert {p for p in removed if not p.endswith("__pycache__")} == doomed
    assert listing(root) == tree - removed
    assert any(o["status"] == "sourceless" for o in kept.values())

    after = check_json(pycache, root)
    assert {o["status"] for o in after.values()} <= {"fresh", "sourceless", "foreign"}
    assert {rel for rel, o in after.items() if o["status"] == "fresh"} == \
        {rel for rel, o in before.items() if o["status"] == "fresh"}
    # The interpreter still imports the fresh module from its cache.
    assert cpython_import(interp, root, "m_fresh")[0] == "cache"
    # ... and the pruned ones from source (or not at all for the orphan).
    assert cpython_import(interp, root, "m_stale")[0] == "source"
    if (interp.major, interp.minor) >= (3, 7):
        outcome, printed = cpython_import(interp, root, "m_unchecked")
        assert outcome == "source" and "edited" in printed
    # The sourceless pyc still imports.
    assert cpython_import(interp, root, "m_sourceless")[0] == "sourceless"

    again = pycache("prune", root)
    assert again.returncode == 1  # the sourceless pyc is still there
    assert "nothing to remove" in again.stdout
    assert "m_sourceless" in again.stdout


def test_prune_sourceless(interp3, pycache, tmp_path):
    root = str(tmp_path)
    src = make_module(root, "shipped", "shipped")
    cache = compile_source(interp3, src, legacy=True)
    os.unlink(src)
    assert cpython_import(interp3, root, "shipped")[0] == "sourceless"
    r = pycache("prune", root)
    assert r.returncode == 1
    assert os.path.exists(cache)
    assert "sourceless" in r.stdout and "--sourceless" in r.stdout
    r = pycache("prune", "--sourceless", root)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(cache)
    assert cpython_import(interp3, root, "shipped")[0] == "notfound"


def test_prune_empty_pycache_removed_foreign_kept(interp3, pycache, tmp_path):
    root = str(tmp_path)
    for name in ("a", "b"):
        os.makedirs(os.path.join(root, name))
        src = make_module(os.path.join(root, name), "mod", name)
        compile_source(interp3, src)
        os.unlink(src)
    with open(os.path.join(root, "b", "__pycache__", "notes.txt"), "w") as f:
        f.write("mine\n")
    r = pycache("prune", "-v", root)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(root, "a", "__pycache__"))
    assert os.listdir(os.path.join(root, "b", "__pycache__")) == ["notes.txt"]
    assert "kept %s" % os.path.join(root, "b", "__pycache__", "notes.txt") in r.stdout


def test_prune_prefix_tree(interp38, pycache, tmp_path):
    src_dir = tmp_path / "src"
    prefix = tmp_path / "pfx"
    src_dir.mkdir()
    for name in ("keep", "gone"):
        make_module(str(src_dir), name, name)
    sub = src_dir / "sub"
    sub.mkdir()
    make_module(str(sub), "subgone", "x")
    interp38.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
                 str(src_dir), env={"PYTHONPYCACHEPREFIX": str(prefix)})
    assert not (src_dir / "__pycache__").exists()
    os.unlink(str(src_dir / "gone.py"))
    shutil.rmtree(str(sub))
    mirror = str(prefix) + os.path.realpath(str(src_dir))
    assert os.path.isdir(os.path.join(mirror, "sub"))
    r = pycache("prune", "--json", "--prefix", str(prefix), str(src_dir))
    assert r.returncode == 0, r.stderr
    removed = {o["path"] for o in r.json() if o["action"] == "removed"}
    assert os.path.join(mirror, "sub") in removed
    assert not os.path.exists(os.path.join(mirror, "sub"))
    assert sorted(os.listdir(mirror)) == ["keep.%s.pyc" % interp38.tag]
    assert cpython_import(interp38, str(src_dir), "keep", prefix=str(prefix))[0] == "cache"
    assert os.path.isdir(str(prefix))


@pytest.fixture
def open_tmp():
    """A scratch directory anyone may enter (pytest's tmp_path sits under a
    0700 directory that an unprivileged user cannot traverse)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="pycache-prune-")
    os.chmod(d, 0o755)
    yield d
    for dirpath, dirs, files in os.walk(d):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    shutil.rmtree(d)


@pytest.fixture
def as_nobody(pycache_bin):
    """Runs the pycache binary as nobody (root bypasses permissions)."""
    import subprocess
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop privileges")

    def run(*args):
        env = dict(os.environ, NO_COLOR="1")
        env.pop("PYTHONPYCACHEPREFIX", None)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            pycache_bin] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), \
            p.stderr.decode("utf-8", "surrogateescape")
    return run


def test_prune_unreadable_pyc_not_judged(interp3, as_nobody, open_tmp):
    """A cache file prune cannot read is reported and kept (exit 3); the rest
    of the tree is still pruned."""
    root = os.path.join(open_tmp, "t")
    os.makedirs(root)
    src = make_module(root, "mod", "x")
    cache = compile_source(interp3, src)
    make_module(root, "mod", "edited", padding="#\n")
    bump(src)
    other = make_module(root, "gone", "y")
    orphan = compile_source(interp3, other)
    os.unlink(other)
    os.chmod(cache, 0)
    os.chmod(os.path.join(root, "__pycache__"), 0o777)
    rc, out, err = as_nobody("prune", root)
    assert rc == 3, err
    assert err == "pycache prune: cannot open '%s': Permission denied\n" % cache
    assert os.path.exists(cache)
    assert not os.path.exists(orphan)
