"""pycache clean: removes all bytecode and nothing else.

Trees are compiled by every real interpreter on this machine (each writes
its own names: __pycache__/NAME.TAG[.opt-N].pyc, 2.7's NAME.pyc/.pyo beside
the source, compileall -b legacy files); every file that is not bytecode is
checksummed before and after."""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile

import pytest

from oracle import compile_source, cpython_import, make_module


def is_bytecode(path):
    """What clean must remove: by name, as CPython writes them."""
    base = os.path.basename(path)
    if os.path.basename(os.path.dirname(path)) == "__pycache__":
        parts = base.split(".")
        if base.endswith((".pyc", ".pyo")):
            return True
        # CPython's temp file: NAME.TAG.pyc.DIGITS (_write_atomic)
        return len(parts) >= 4 and parts[-2] in ("pyc", "pyo") and parts[-1].isdigit()
    return base.endswith((".pyc", ".pyo"))


def snapshot(root):
    """{relative path: sha256 or 'dir' or 'link:target'} of everything."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


SKIPPED = (".git", "node_modules", "venv")


def skipped(rel):
    return rel.split(os.sep)[0] in SKIPPED


def build_tree(interpreters, root):
    """A project compiled by every interpreter, with things clean must keep."""
    pkg = os.path.join(root, "pkg")
    os.makedirs(os.path.join(pkg, "sub"))
    make_module(pkg, "__init__", "init")
    make_module(pkg, "alpha", "alpha")
    make_module(os.path.join(pkg, "sub"), "beta", "beta")
    for interp in interpreters:
        for level in (0, 1, 2) if interp.major == 3 and interp.minor >= 5 else (0,):
            interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], "
                       "quiet=1%s)" % (", optimize=%d" % level if level else ""), pkg)
        if interp.major == 2:
            interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
                       pkg, flags=["-O"])
    # compileall -b: a legacy pyc beside the source, then its source gone
    # (sourceless), and a 2.7 pyc without source
    newest = interpreters[-1]
    src = make_module(pkg, "shipped", "shipped")
    compile_source(newest, src, legacy=True)
    os.unlink(src)
    # a temp file of an interrupted write
    pyc_dir = os.path.join(pkg, "__pycache__")
    some = sorted(n for n in os.listdir(pyc_dir) if n.endswith(".pyc"))[0]
    shutil.copy(os.path.join(pyc_dir, some), os.path.join(pyc_dir, some + ".12345"))
    # things that are not bytecode
    with open(os.path.join(pyc_dir, "README"), "w") as f:
        f.write("keep me\n")
    for name in ("notes.pyc.txt", "data.pyc.bak", "pyc", "x.pyc~"):
        with open(os.path.join(pkg, name), "w") as f:
            f.write(name)
    os.makedirs(os.path.join(pkg, "only_foreign", "__pycache__"))
    with open(os.path.join(pkg, "only_foreign", "__pycache__", "x.txt"), "w") as f:
        f.write("x")
    # skipped by default: VCS metadata, node_modules, a virtual environment
    for d in (".git/objects", "node_modules/lib", "venv/lib"):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, "venv", "pyvenv.cfg"), "w") as f:
        f.write("home = /usr/bin\n")
    for d in (".git/objects", "node_modules/lib", "venv/lib"):
        src = make_module(os.path.join(root, d), "m", d)
        compile_source(newest, src)
    return pkg


def test_clean_removes_all_bytecode_and_nothing_else(interpreters, pycache, tmp_path):
    root = str(tmp_path)
    build_tree(interpreters, root)
    before = snapshot(root)
    bytecode = {p for p in before if is_bytecode(p) and not skipped(p)}
    # every interpreter wrote something, 2.7 included
    assert any(p.endswith(".pyo") for p in bytecode) == any(i.major == 2 for i in interpreters)
    assert len(bytecode) > 3 * len(interpreters)

    dry = pycache("clean", "-n", "-0", root)
    assert dry.returncode == 1, dry.stderr
    assert snapshot(root) == before  # a dry run changes nothing
    listed = {os.path.relpath(p, root) for p in dry.stdout.split("\0") if p}

    r = pycache("clean", "-0", root)
    assert r.returncode == 0, r.stderr
    removed = {os.path.relpath(p, root) for p in r.stdout.split("\0") if p}
    assert removed == listed  # the dry run listed exactly what went
    after = snapshot(root)
    # no bytecode left outside the skipped directories
    assert not [p for p in after if is_bytecode(p) and not skipped(p)]
    # every other file byte-identical, skipped directories untouched
    kept = {p: h for p, h in before.items() if p not in bytecode}
    gone_dirs = {p for p in kept if os.path.basename(p) == "__pycache__" and p not in after}
    assert {p: h for p, h in kept.items() if p not in gone_dirs} == after
    assert removed == bytecode | gone_dirs
    # a __pycache__ is left only where it holds something foreign
    left = {p for p in after if os.path.basename(p) == "__pycache__" and not skipped(p)}
    assert left == {os.path.join("pkg", "__pycache__"),
                    os.path.join("pkg", "only_foreign", "__pycache__")}

    again = pycache("clean", root)
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "nothing to remove; kept 2 listed above"


def test_clean_output_formats(interp3, pycache, tmp_path):
    root = str(tmp_path)
    src = make_module(root, "mod", "x")
    cache = compile_source(interp3, src)
    with open(os.path.join(root, "__pycache__", "README"), "w") as f:
        f.write("not bytecode")
    size = os.path.getsize(cache)
    r = pycache("clean", "--json", "-n", root)
    assert r.returncode == 1
    objs = {o["path"]: o for o in r.json()}
    assert objs[cache]["action"] == "would-remove"
    assert objs[cache]["status"] == "fresh" and objs[cache]["tag"] == interp3.tag
    assert objs[cache]["size"] == size
    readme = os.path.join(root, "__pycache__", "README")
    assert objs[readme]["action"] == "kept" and objs[readme]["status"] == "foreign"
    r = pycache("clean", root)
    assert r.returncode == 0
    assert r.stdout == ("kept %s  (foreign: not bytecode)\n"
                        "removed 1 file (%d B); kept 1 listed above\n" % (readme, size))
    assert not os.path.exists(cache)
    assert pycache("clean", "-q", root).stdout == ""


def tag_tree(interpreters, root):
    for i in interpreters:
        if i.major == 3:
            compile_source(i, make_module(root, "m%d%d" % (i.major, i.minor), "x"))
    # an interpreter that is not installed anywhere: a future tag
    some = [i for i in interpreters if i.major == 3][-1]
    cache = compile_source(some, make_module(root, "future", "f"))
    os.rename(cache, os.path.join(root, "__pycache__", "future.cpython-399.pyc"))
    # legacy files: their magic decides
    compile_source(some, make_module(root, "leg3", "l"), legacy=True)
    two = [i for i in interpreters if i.major == 2]
    if two:
        compile_source(two[0], make_module(root, "leg2", "l"))
    return some


def pycs(root):
    out = set()
    for d, _, files in os.walk(root):
        out |= {f for f in files if f.endswith(".pyc")}
    return out


def test_clean_tag_filters(interpreters, pycache, tmp_path):
    root = str(tmp_path)
    some = tag_tree(interpreters, root)
    all_ = pycs(root)
    # --tag: only that interpreter's caches, legacy ones by their magic
    r = pycache("clean", "-n", "-0", "--tag", some.short, root)
    names = {os.path.basename(p) for p in r.stdout.split("\0") if p}
    expected = {n for n in all_ if ".%s." % some.tag in n} | {"leg3.pyc"}
    assert names == expected
    r = pycache("clean", "-n", "-0", "--tag", "cpython-399", root)
    assert {os.path.basename(p) for p in r.stdout.split("\0") if p} == \
        {"future.cpython-399.pyc"}
    if any(i.major == 2 for i in interpreters):
        r = pycache("clean", "-n", "-0", "--tag", "2.7", root)
        assert {os.path.basename(p) for p in r.stdout.split("\0") if p} == {"leg2.pyc"}
    # --keep-tag: everything else
    r = pycache("clean", "--keep-tag", some.tag, root)
    assert r.returncode == 0, r.stderr
    assert pycs(root) == expected
    # the kept ones are still the interpreter's cache
    assert cpython_import(some, root, "m%d%d" % (some.major, some.minor))[0] == "cache"


def test_clean_uninstalled(interpreters, pycache, tmp_path):
    """Only one interpreter 'installed' (PYCACHE_PYTHONS, nothing on PATH or
    in pyenv): every other interpreter's caches go, the future tag too."""
    root = str(tmp_path)
    some = tag_tree(interpreters, root)
    env = {"PYCACHE_PYTHONS": some.path, "PATH": "/nonexistent",
           "PYENV_ROOT": "/nonexistent"}
    r = pycache("clean", "--uninstalled", "-v", root, env=env)
    assert r.returncode == 0, r.stderr
    assert pycs(root) == {"m%d%d.%s.pyc" % (some.major, some.minor, some.tag), "leg3.pyc"}
    # with every interpreter installed, only the future tag is uninstalled
    root2 = str(tmp_path / "two")
    os.makedirs(root2)
    tag_tree(interpreters, root2)
    env = {"PYCACHE_PYTHONS": ":".join(i.path for i in interpreters),
           "PATH": "/nonexistent", "PYENV_ROOT": "/nonexistent"}
    r = pycache("clean", "--uninstalled", "-0", root2, env=env)
    assert r.returncode == 0, r.stderr
    assert [os.path.basename(p) for p in r.stdout.split("\0") if p] == \
        ["future.cpython-399.pyc"]


def test_clean_uninstalled_parallel_walks(interpreters, pycache, tmp_path):
    """The selection runs in each walking thread (scan_options.act), not
    under the scan's lock: with two walks over several top directories,
    each directory ends as a single-threaded run leaves it."""
    root = str(tmp_path)
    tops = ["t%d" % k for k in range(6)]
    some = None
    for t in tops:
        os.makedirs(os.path.join(root, t))
        some = tag_tree(interpreters, os.path.join(root, t))
    env = {"PYCACHE_PYTHONS": some.path, "PATH": "/nonexistent",
           "PYENV_ROOT": "/nonexistent", "PYCACHE_THREADS": "2"}
    r = pycache("clean", "--uninstalled", "-0", root, env=env)
    assert r.returncode == 0, r.stderr
    removed = [p for p in r.stdout.split("\0") if p]
    assert len(removed) == len(set(removed))
    for t in tops:
        assert pycs(os.path.join(root, t)) == {
            "m%d%d.%s.pyc" % (some.major, some.minor, some.tag), "leg3.pyc"}
        assert any(p.startswith(os.path.join(root, t) + "/") for p in removed)


def test_clean_prefix_tree(interp38, pycache, tmp_path):
    src_dir = tmp_path / "src"
    other = tmp_path / "other"
    prefix = tmp_path / "pfx"
    for d in (src_dir / "sub", other):
        d.mkdir(parents=True)
    make_module(str(src_dir), "a", "a")
    make_module(str(src_dir / "sub"), "b", "b")
    make_module(str(other), "c", "c")
    for d in (src_dir, other):
        interp38.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
                     str(d), env={"PYTHONPYCACHEPREFIX": str(prefix)})
    mirror = str(prefix) + os.path.realpath(str(src_dir))
    mirror_other = str(prefix) + os.path.realpath(str(other))
    assert os.path.exists(os.path.join(mirror, "sub", "b.%s.pyc" % interp38.tag))
    before_other = snapshot(mirror_other)
    dry = pycache("clean", "-n", "-0", "--prefix", str(prefix), str(src_dir))
    assert dry.returncode == 1
    r = pycache("clean", "-0", "--prefix", str(prefix), str(src_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout == dry.stdout
    assert not os.path.exists(mirror)
    assert snapshot(mirror_other) == before_other
    assert all(p.startswith(mirror) for p in r.stdout.split("\0") if p)
    # the whole prefix: everything under it goes, the prefix root stays
    r = pycache("clean", "--prefix", str(prefix))
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(prefix)) == []
    assert cpython_import(interp38, str(other), "c", prefix=str(prefix))[0] == "source"


# ---- debris --------------------------------------------------------------------------

def write(path, data="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag.\n")


def debris_project(root):
    """A project with each tool's debris where the tool puts it, and look-
    alikes where it does not. Returns (debris paths, look-alike paths)."""
    proj = os.path.join(root, "proj")
    write(os.path.join(proj, "pyproject.toml"), "[project]\nname = 'demo'\n")
    write(os.path.join(proj, "test_demo.py"), "def test_ok():\n    assert True\n")
    # pytest's own cache, made by pytest itself
    subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:randomly",
                    "--rootdir", proj, proj], cwd=proj, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert os.path.exists(os.path.join(proj, ".pytest_cache", "CACHEDIR.TAG"))
    # mypy and ruff: as they write them (CACHEDIR.TAG, .gitignore)
    write(os.path.join(proj, ".mypy_cache", "CACHEDIR.TAG"), CACHEDIR_TAG)
    write(os.path.join(proj, ".mypy_cache", ".gitignore"), "# Automatically created by mypy\n*\n")
    write(os.path.join(proj, ".mypy_cache", "3.11", "demo.data.json"), "{}")
    write(os.path.join(proj, ".ruff_cache", ".gitignore"), "# Automatically created by ruff.\n*\n")
    write(os.path.join(proj, ".ruff_cache", "0.1.0", "123"), b"\0\1")
    # coverage: an SQLite data file, a parallel one, htmlcov
    for name in (".coverage", ".coverage.host.123.456"):
        db = sqlite3.connect(os.path.join(proj, name))
        db.execute("create table meta (key text, value text)")
        db.commit()
        db.close()
    write(os.path.join(proj, "htmlcov", ".gitignore"), "# Created by coverage.py\n*\n")
    write(os.path.join(proj, "htmlcov", "index.html"), "<html></html>")
    write(os.path.join(proj, "coverage.xml"),
          '<?xml version="1.0" ?>\n<coverage version="7.2.7">\n'
          "\t<!-- Generated by coverage.py: https://coverage.readthedocs.io -->\n</coverage>\n")
    # jupyter
    write(os.path.join(proj, "nb", ".ipynb_checkpoints", "analysis-checkpoint.ipynb"), "{}")
    # package: setuptools' build/, dist/ archives, egg-info (src layout)
    write(os.path.join(proj, "build", "lib", "demo", "__init__.py"), "")
    write(os.path.join(proj, "build", "bdist.linux-x86_64", "x"), "")
    write(os.path.join(proj, "dist", "demo-1.0-py3-none-any.whl"), b"PK")
    write(os.path.join(proj, "dist", "demo-1.0.tar.gz"), b"\x1f\x8b")
    write(os.path.join(proj, "src", "demo.egg-info", "PKG-INFO"), "Metadata-Version: 2.1\n")
    debris = ["proj/.pytest_cache", "proj/.mypy_cache", "proj/.ruff_cache", "proj/.coverage",
              "proj/.coverage.host.123.456", "proj/htmlcov", "proj/coverage.xml",
              "proj/nb/.ipynb_checkpoints", "proj/build", "proj/dist",
              "proj/src/demo.egg-info"]
    # look-alikes that must stay
    other = os.path.join(root, "docs")
    write(os.path.join(other, "build", "lib", "page.html"), "<p>")       # no project marker
    write(os.path.join(other, "dist", "site.tar.gz"), b"\x1f\x8b")      # no project marker
    write(os.path.join(other, ".pytest_cache", "mine.txt"), "no tag")   # no pytest mark
    write(os.path.join(other, ".coverage"), "my notes on coverage\n")    # not coverage data
    write(os.path.join(other, "coverage.xml"), "<report/>")
    write(os.path.join(other, "thing.egg-info", "PKG-INFO"), "x")        # no project marker
    write(os.path.join(other, ".ipynb_checkpoints", "notes.txt"), "mine")
    write(os.path.join(proj, "src", "build", "lib", "x"), "")            # not beside a marker
    write(os.path.join(root, "outside-target.txt"), "precious")
    os.symlink(os.path.join(root, "outside-target.txt"),
               os.path.join(proj, ".mypy_cache", "link"))
    os.symlink(other, os.path.join(proj, "htmlcov", "dirlink"))
    return debris


def test_clean_debris(pycache, tmp_path):
    root = str(tmp_path)
    debris = debris_project(root)
    before = snapshot(root)
    dry = pycache("clean", "-n", "-0", "--debris", "all", root)
    assert dry.returncode == 1, dry.stderr
    assert snapshot(root) == before
    listed = sorted(os.path.relpath(p, root) for p in dry.stdout.split("\0") if p)
    assert listed == sorted(debris)
    r = pycache("clean", "--json", "--debris=all", root)
    assert r.returncode == 0, r.stderr
    objs = r.json()
    assert sorted(os.path.relpath(o["path"], root) for o in objs) == sorted(debris)
    assert all(o["status"] == "debris" and o["action"] == "removed" for o in objs)
    assert {o["reason"] for o in objs} == {"pytest", "mypy", "ruff", "coverage", "jupyter",
                                           "package"}
    after = snapshot(root)
    for p in before:
        gone = any(p == d or p.startswith(d + os.sep) for d in debris)
        assert (p not in after) == gone, p
        if not gone:
            assert after[p] == before[p], p
    # the links inside went as links; what they pointed to is untouched
    with open(os.path.join(root, "outside-target.txt")) as f:
        assert f.read() == "precious"
    assert os.path.exists(os.path.join(root, "docs", "build", "lib", "page.html"))


def test_clean_debris_topics_and_partial_build(pycache, tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, "setup.py"), "from setuptools import setup\nsetup()\n")
    write(os.path.join(root, "build", "lib", "m.py"), "")
    write(os.path.join(root, "build", "temp.linux-x86_64-cpython-311", "m.o"), "")
    write(os.path.join(root, "build", "notes.txt"), "mine")  # not setuptools'
    write(os.path.join(root, ".mypy_cache", "CACHEDIR.TAG"), CACHEDIR_TAG)
    r = pycache("clean", "-0", "--debris", "package", root)
    assert r.returncode == 0, r.stderr
    assert sorted(os.path.relpath(p, root) for p in r.stdout.split("\0") if p) == \
        ["build/lib", "build/temp.linux-x86_64-cpython-311"]
    assert os.listdir(os.path.join(root, "build")) == ["notes.txt"]
    assert os.path.exists(os.path.join(root, ".mypy_cache"))  # topic not asked for
    bad = pycache("clean", "--debris", "pytets", root)
    assert bad.returncode == 2
    assert "did you mean 'pytest'" in bad.stderr


# ---- safety ----------------------------------------------------------------------------

def test_clean_symlinks_never_followed(interp3, pycache, tmp_path):
    root = tmp_path / "tree"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    target = compile_source(interp3, make_module(str(outside), "precious", "p"))
    target_legacy = compile_source(interp3, make_module(str(outside), "old", "o"), legacy=True)
    make_module(str(root), "precious", "p")
    os.mkdir(str(root / "__pycache__"))
    link = root / "__pycache__" / os.path.basename(target)
    os.symlink(target, str(link))
    os.symlink(target_legacy, str(root / "old.pyc"))
    # a symlink named __pycache__ pointing outside: never entered
    sub = root / "sub"
    sub.mkdir()
    make_module(str(sub), "precious", "p")
    os.symlink(str(outside / "__pycache__"), str(sub / "__pycache__"))
    before = snapshot(str(outside))
    r = pycache("clean", "-v", str(root))
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(str(link))
    assert not os.path.lexists(str(root / "old.pyc"))
    assert os.path.islink(str(sub / "__pycache__"))
    assert snapshot(str(outside)) == before


@pytest.fixture
def open_tmp():
    """A scratch directory anyone may enter (pytest's tmp_path sits under a
    0700 directory an unprivileged user cannot traverse)."""
    d = tempfile.mkdtemp(prefix="pycache-clean-")
    os.chmod(d, 0o755)
    yield d
    for dirpath, dirs, files in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o755)
    shutil.rmtree(d)


@pytest.fixture
def as_nobody(pycache_bin):
    """Runs the pycache binary as nobody (root bypasses permissions)."""
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


def test_clean_unwritable_directory(interp3, as_nobody, open_tmp):
    """One __pycache__ nobody may write to: exit 3, one line naming the file,
    the rest of the tree still cleaned."""
    root = open_tmp
    for name in ("a", "b", "c"):
        d = os.path.join(root, name)
        os.makedirs(d)
        compile_source(interp3, make_module(d, "mod", name))
    for dirpath, dirs, files in os.walk(root):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o777)
    locked = os.path.join(root, "b", "__pycache__")
    os.chmod(locked, 0o755)  # root's, not writable by nobody
    cache = os.path.join(locked, "mod.%s.pyc" % interp3.tag)
    rc, out, err = as_nobody("clean", root)
    assert rc == 3
    assert err == "pycache clean: cannot remove '%s': Permission denied\n" % cache
    assert os.path.exists(cache)
    assert not os.path.exists(os.path.join(root, "a", "__pycache__"))
    assert not os.path.exists(os.path.join(root, "c", "__pycache__"))
    assert out.endswith("; 1 error (see above)\n")


def test_clean_errors_throttled(interp3, as_nobody, open_tmp):
    """Thirty files that cannot be removed for the same reason: ten lines,
    then one line counting the rest."""
    root = open_tmp
    src = make_module(root, "mod", "m")
    cache = compile_source(interp3, src)
    pyc_dir = os.path.dirname(cache)
    for k in range(29):
        shutil.copy(cache, os.path.join(pyc_dir, "m%02d.%s.pyc" % (k, interp3.tag)))
    rc, out, err = as_nobody("clean", root)
    assert rc == 3
    lines = err.splitlines()
    assert len(lines) == 11
    assert all(l.startswith("pycache clean: cannot remove '%s/" % pyc_dir) for l in lines[:10])
    assert lines[10] == "pycache clean: 20 more errors not shown: Permission denied"
    assert len(os.listdir(pyc_dir)) == 30
