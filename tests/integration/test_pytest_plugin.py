"""contrib/pytest_pycache.py, run by Debian's pytest in a temporary project.

The danger it removes, shown with CPython as the oracle: a module deleted
from the sources lives on as a legacy NAME.pyc beside them (a sourceless pyc,
what pytest-remove-stale-bytecode targets), and `import NAME` still succeeds
from it. With the plugin, the stale pyc is gone before anything is imported
(the initial conftest.py included), so the import fails with
ModuleNotFoundError as it will on a clean checkout; fresh caches are kept.
"""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

CONTRIB = os.path.join(ROOT, "contrib")

TEST_MODULE = """\
import os

def test_deleted_module_is_gone():
    import mod_gone  # deleted from the sources: must not import

def test_conftest_saw():
    with open(os.path.join(os.path.dirname(__file__), "conftest_saw.txt")) as f:
        assert f.read() == "absent"
"""

CONFTEST = """\
import importlib.util, os
here = os.path.dirname(__file__)
with open(os.path.join(here, "conftest_saw.txt"), "w") as f:
    f.write("absent" if importlib.util.find_spec("mod_gone") is None else "present")
"""


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    python = sys.executable  # the interpreter pytest itself runs on
    (d / "mod_gone.py").write_text("VALUE = 'stale'\n")
    subprocess.run([python, "-c", "import py_compile; "
                    "py_compile.compile('mod_gone.py', cfile='mod_gone.pyc')"],
                   cwd=str(d), check=True)
    (d / "mod_gone.py").unlink()
    # A live module with its fresh cache, and an orphan cache of a module
    # removed long ago.
    (d / "helper.py").write_text("X = 1\n")
    fresh = subprocess.run([python, "-c", "import py_compile; print(py_compile.compile('helper.py'))"],
                           cwd=str(d), stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    (d / "old.py").write_text("Y = 1\n")
    orphan = subprocess.run([python, "-c", "import py_compile; print(py_compile.compile('old.py'))"],
                            cwd=str(d), stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    (d / "old.py").unlink()
    (d / "test_it.py").write_text(TEST_MODULE)
    (d / "conftest.py").write_text(CONFTEST)
    return d, os.path.join(str(d), fresh), os.path.join(str(d), orphan)


def pytest_run(project_dir, *args, pycache_bin=None, path=None):
    env = dict(os.environ)
    for k in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS",
              "PYTEST_PLUGINS", "PYCACHE"):
        env.pop(k, None)
    env["PYTHONPATH"] = CONTRIB
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the run itself writes no caches
    if pycache_bin:
        env["PYCACHE"] = os.path.abspath(pycache_bin)
    if path is not None:
        env["PATH"] = path
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "pytest_pycache", "-rA"] + list(args),
                          cwd=str(project_dir), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def test_without_the_plugin_the_stale_pyc_is_imported(project):
    d, fresh, orphan = project
    code, out = pytest_run(d, "--no-pycache-prune")
    assert "pycache: stale bytecode not pruned (--no-pycache-prune)" in out
    # CPython imports the sourceless pyc: the test that should fail passes.
    assert "PASSED test_it.py::test_deleted_module_is_gone" in out, out
    assert "FAILED test_it.py::test_conftest_saw" in out, out
    assert (d / "mod_gone.pyc").exists() and os.path.exists(orphan)


def test_the_plugin_prunes_before_any_import(project, pycache_bin):
    d, fresh, orphan = project
    st = os.stat(fresh)
    code, out = pytest_run(d, pycache_bin=pycache_bin)
    assert "FAILED test_it.py::test_deleted_module_is_gone" in out, out
    assert "ModuleNotFoundError: No module named 'mod_gone'" in out
    assert "PASSED test_it.py::test_conftest_saw" in out, out
    assert code == 1
    header = [l for l in out.splitlines() if l.startswith("pycache:")]
    assert header == ["pycache: pruned 2 stale bytecode files (1 orphan, 1 sourceless) "
                      "under %s" % d], out
    assert not (d / "mod_gone.pyc").exists() and not os.path.exists(orphan)
    # The fresh cache is kept, untouched.
    st2 = os.stat(fresh)
    assert (st2.st_ino, st2.st_mtime_ns, st2.st_size) == (st.st_ino, st.st_mtime_ns, st.st_size)

    code, out = pytest_run(d, pycache_bin=pycache_bin)
    assert "pycache: no stale bytecode under %s" % d in out


def test_keep_sourceless(project, pycache_bin):
    d, fresh, orphan = project
    code, out = pytest_run(d, "--pycache-keep-sourceless", pycache_bin=pycache_bin)
    assert "PASSED test_it.py::test_deleted_module_is_gone" in out, out
    assert "kept 1 sourceless pyc" in out
    assert (d / "mod_gone.pyc").exists() and not os.path.exists(orphan)


def test_found_on_path_or_reported_missing(project, pycache_bin, tmp_path):
    d, fresh, orphan = project
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(pycache_bin), str(bindir / "pycache"))
    code, out = pytest_run(d, path=str(bindir) + os.pathsep + "/usr/bin:/bin")
    assert "pycache: pruned 2 stale bytecode files" in out, out
    assert not (d / "mod_gone.pyc").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = pytest_run(d, path=str(empty) + os.pathsep + "/nonexistent")
    assert "pycache: not found ($PYCACHE, PATH): stale bytecode not pruned" in out


def test_directories_outside_rootdir(project, pycache_bin, tmp_path):
    """A test directory named on the command line outside the rootdir is
    pruned too (rootdir: where pytest.ini is)."""
    d, fresh, orphan = project
    (d / "pytest.ini").write_text("[pytest]\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "gone2.py").write_text("Z = 1\n")
    subprocess.run([sys.executable, "-c", "import py_compile; "
                    "py_compile.compile('gone2.py', cfile='gone2.pyc')"],
                   cwd=str(other), check=True)
    (other / "gone2.py").unlink()
    (other / "test_other.py").write_text("def test_x():\n    pass\n")
    code, out = pytest_run(d, "--rootdir", str(d), str(other / "test_other.py") + "::test_x",
                           ".", pycache_bin=pycache_bin)
    assert "under %s, %s" % (d, other) in out, out
    assert not (other / "gone2.pyc").exists()
