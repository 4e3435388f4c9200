"""Case-insensitive file systems: pycache's verdicts agree with CPython's
import there, with and without PYTHONCASEOK.

The file system is a real mount: casefold_fs.py, a case-insensitive,
case-preserving FUSE passthrough (this kernel mounts neither ext4 casefold
nor vfat). On it an open of "leg.py" finds "Leg.py", as on macOS's APFS and
HFS+; CPython's finders compare names exactly all the same (importlib's
FileFinder against its listing, unless _relax_case(): True only on
win/cygwin/darwin with PYTHONCASEOK set; Python 2's import.c by stat, with
case_ok checking only on macOS and Cygwin) — src/platform/casefold.h. The
trees are made in the backing directory, the checks run on the mount.
"""

import os
import subprocess
import time

import pytest

from oracle import compile_source, cpython_import, make_module

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"


def fuse_usable():
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no usable /dev/fuse here"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import pyfuse3, trio"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return "python3-pyfuse3 is not installed (scripts/install-deps)"
    return None


@pytest.fixture
def casefold(tmp_path):
    """(backing, mountpoint) of a fresh case-insensitive mount."""
    why = fuse_usable()
    if why:
        pytest.skip(why)
    backing, mnt = str(tmp_path / "backing"), str(tmp_path / "mnt")
    os.makedirs(backing)
    os.makedirs(mnt)
    proc = subprocess.Popen([SYSTEM_PYTHON, os.path.join(HERE, "casefold_fs.py"), backing, mnt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(200):  # the mount comes up in well under a second
            if os.path.ismount(mnt) or proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.ismount(mnt):
            proc.kill()
            out, err = proc.communicate()
            pytest.fail("casefold_fs.py did not mount: %r" % err)
        yield backing, mnt
    finally:
        subprocess.run(["fusermount3", "-u", mnt], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def renamed(path, new):
    os.rename(path, os.path.join(os.path.dirname(path), new))


def build(interp, backing):
    """In BACKING, for INTERP:
    Mod.py whose cache was written for mod.py (the source renamed since);
    Leg.py beside leg.pyc, a legacy cache written for leg.py;
    Old.py beside __pycache__/old.TAG.pyc, the source edited since."""
    legacy = interp.major == 2
    for stem in ("mod", "leg", "old"):
        src = make_module(backing, stem, stem + " v1")
        compile_source(interp, src, legacy=legacy or stem == "leg")
        renamed(src, stem.capitalize() + ".py")
    old = os.path.join(backing, "Old.py")
    with open(old, "a") as f:
        f.write("# edited\n")
    st = os.stat(old)
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))


def verdicts(pycache, mnt, env):
    r = pycache("check", "--json", "-v", "--fail-on", "none", mnt, env=env)
    assert r.returncode == 0, r.stderr
    return {os.path.basename(o["path"]).split(".")[0]: o["status"] for o in r.json()}


@pytest.mark.parametrize("caseok", [False, True], ids=["exact", "PYTHONCASEOK"])
def test_verdicts_match_import(pycache, interpreters, casefold, caseok):
    backing, mnt = casefold
    interps = [i for i in interpreters if i.major == 2][:1] + \
        [i for i in interpreters if i.major == 3][-1:]
    if not interps:
        pytest.skip("no interpreter")
    env = {"PYTHONCASEOK": "1"} if caseok else {}
    for interp in interps:
        back = os.path.join(backing, interp.id)
        os.makedirs(back)
        build(interp, back)
        d = os.path.join(mnt, interp.id)
        got = verdicts(pycache, d, env)
        imp = {m: cpython_import(interp, d, m, env=env)[0]
               for m in ("Mod", "mod", "Leg", "leg", "Old")}
        ctx = (interp.id, got, imp)
        # The cache written for mod.py is the one `import Mod` reads (its
        # path is opened; the file system folds the case).
        assert imp["Mod"] == "cache" and got["mod"] == "fresh", ctx
        # `import mod`: importlib's names are exact, so nothing; Python 2
        # on Linux stats mod.py, which the file system folds to Mod.py.
        assert imp["mod"] == ("notfound" if interp.major == 3 else "cache"), ctx
        if interp.major == 3:
            # leg.pyc is what `import leg` loads, sourceless: Leg.py is not
            # leg.py to FileFinder. It must not be called shadowed (prune
            # would remove a module that imports).
            assert imp["leg"] == "sourceless" and got["leg"] == "sourceless", ctx
            assert imp["Leg"] == "source", ctx
        else:
            # Python 2 on Linux finds leg.py by stat (no case_ok here):
            # Leg.py is its source and leg.pyc its cache.
            assert imp["leg"] == "cache" and got["leg"] == "fresh", ctx
        assert imp["Old"] == "source" and got["old"] == "stale", ctx
        # Nothing importable is pruned.
        r = pycache("prune", "-n", d, env=env)
        assert r.returncode in (0, 1), r.stderr  # 1: the sourceless leg.pyc kept
        for line in r.stdout.splitlines():
            assert not (line.startswith("would remove") and "leg.pyc" in line), r.stdout


def test_venv_markers_in_any_case(tool, casefold):
    """site.venv() asks for pyvenv.cfg by name: on a case-insensitive file
    system PyVenv.cfg answers it, and a CONDA-META directory answers
    conda-meta. The walk reads a directory's listing before it asks
    (walk.c, venv_marked): such names must still be asked, and the
    directories skipped by --skip-venvs, as a lookup would find them."""
    backing, mnt = casefold
    for name, make in (("Env", lambda d: open(os.path.join(d, "PyVenv.cfg"), "w").close()),
                       ("Conda", lambda d: os.mkdir(os.path.join(d, "CONDA-META"))),
                       ("Plain", lambda d: None)):
        d = os.path.join(backing, name)
        os.makedirs(os.path.join(d, "pkg"))
        open(os.path.join(d, "pkg", "m.py"), "w").close()
        make(d)
    r = subprocess.run([tool("walk_probe"), "--skip-venvs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    paths = {rec.split(b" ", 2)[2] for rec in r.stdout.split(b"\0")[:-1]}
    top = os.fsencode(mnt)
    assert os.path.join(top, b"Plain", b"pkg", b"m.py") in paths
    assert not any(p.startswith(os.path.join(top, b"Env")) or
                   p.startswith(os.path.join(top, b"Conda")) for p in paths), paths
