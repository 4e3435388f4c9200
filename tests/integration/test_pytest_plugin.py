"""The pytest plugin (python/pycache/pytest_plugin.py), registered by
installing the wheel: Debian's pytest (python3-pytest) in a venv made with
--system-site-packages, the wheel installed into it, no -p anywhere.

The danger it removes, shown with CPython as the oracle: a module deleted
from the sources lives on as a legacy NAME.pyc beside them (a sourceless pyc,
what pytest-remove-stale-bytecode targets), and `import NAME` still succeeds
from it. Without the plugin (-p no:pycache) the project's test passes; with
it, the stale pyc is gone before anything is imported (the initial
conftest.py included), and the import fails with ModuleNotFoundError as it
will on a clean checkout; fresh caches are kept.
"""

import os
import subprocess

import pytest

from conftest import make_venv, package_env

pytestmark = pytest.mark.skipif(os.environ.get("PYCACHE_SAN") == "1",
                                reason="the wheel is not a sanitized build (make check runs these)")

SYSTEM_PYTHON = "/usr/bin/python3"

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


@pytest.fixture(scope="module")
def venv_python(wheel, tmp_path_factory):
    return make_venv(SYSTEM_PYTHON, tmp_path_factory.mktemp("plugin") / "venv", wheel,
                     system_site_packages=True)


def compile_to(directory, source, cfile=None):
    code = "import py_compile, sys; print(py_compile.compile(sys.argv[1], cfile=sys.argv[2] or None))"
    out = subprocess.run([SYSTEM_PYTHON, "-c", code, source, cfile or ""], cwd=str(directory),
                         stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    return os.path.join(str(directory), out)


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "mod_gone.py").write_text("VALUE = 'stale'\n")
    compile_to(d, "mod_gone.py", "mod_gone.pyc")
    (d / "mod_gone.py").unlink()
    # A live module with its fresh cache, and an orphan cache of a module
    # removed long ago.
    (d / "helper.py").write_text("X = 1\n")
    fresh = compile_to(d, "helper.py")
    (d / "old.py").write_text("Y = 1\n")
    orphan = compile_to(d, "old.py")
    (d / "old.py").unlink()
    (d / "test_it.py").write_text(TEST_MODULE)
    (d / "conftest.py").write_text(CONFTEST)
    (d / "pytest.ini").write_text("[pytest]\n")
    return d, fresh, orphan


def pytest_run(venv_python, project_dir, *args):
    env = package_env(PYTHONDONTWRITEBYTECODE="1")  # the run itself writes no caches
    proc = subprocess.run([venv_python, "-m", "pytest", "-p", "no:cacheprovider", "-rA"]
                          + list(args), cwd=str(project_dir), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def headers(out):
    return [l for l in out.splitlines() if l.startswith("pycache:")]


def test_disabled_the_stale_pyc_is_imported(venv_python, project):
    d, fresh, orphan = project
    code, out = pytest_run(venv_python, d, "-p", "no:pycache")
    # CPython imports the sourceless pyc: the test that should fail passes.
    assert "PASSED test_it.py::test_deleted_module_is_gone" in out, out
    assert "FAILED test_it.py::test_conftest_saw" in out, out
    assert headers(out) == []
    assert (d / "mod_gone.pyc").exists() and os.path.exists(orphan)


def test_installed_plugin_prunes_before_any_import(venv_python, project):
    d, fresh, orphan = project
    st = os.stat(fresh)
    code, out = pytest_run(venv_python, d)
    assert "FAILED test_it.py::test_deleted_module_is_gone" in out, out
    assert "ModuleNotFoundError: No module named 'mod_gone'" in out
    assert "PASSED test_it.py::test_conftest_saw" in out, out
    assert code == 1
    assert headers(out) == ["pycache: pruned 2 stale bytecode files (1 orphan, 1 sourceless) "
                            "under %s" % d], out
    assert not (d / "mod_gone.pyc").exists() and not os.path.exists(orphan)
    # The fresh cache is kept, untouched.
    st2 = os.stat(fresh)
    assert (st2.st_ino, st2.st_mtime_ns, st2.st_size) == (st.st_ino, st.st_mtime_ns, st.st_size)

    code, out = pytest_run(venv_python, d)
    assert headers(out) == ["pycache: no stale bytecode under %s" % d]


@pytest.mark.parametrize("how", ["cli", "ini"])
def test_report_mode_removes_nothing(venv_python, project, how):
    d, fresh, orphan = project
    if how == "ini":
        (d / "pytest.ini").write_text("[pytest]\npycache_mode = report\n")
        args = []
    else:
        args = ["--pycache-mode=report"]
    code, out = pytest_run(venv_python, d, *args)
    assert headers(out) == ["pycache: would prune 2 stale bytecode files (1 orphan, "
                            "1 sourceless) under %s" % d], out
    assert "PASSED test_it.py::test_deleted_module_is_gone" in out, out
    assert (d / "mod_gone.pyc").exists() and os.path.exists(orphan)


@pytest.mark.parametrize("how", ["cli", "ini", "off"])
def test_keep_sourceless_or_off(venv_python, project, how):
    d, fresh, orphan = project
    args = []
    if how == "ini":
        (d / "pytest.ini").write_text("[pytest]\npycache_sourceless = false\n")
    elif how == "cli":
        args = ["--pycache-keep-sourceless"]
    else:
        (d / "pytest.ini").write_text("[pytest]\npycache_mode = off\n")
    code, out = pytest_run(venv_python, d, *args)
    assert "PASSED test_it.py::test_deleted_module_is_gone" in out, out
    assert (d / "mod_gone.pyc").exists()
    if how == "off":
        assert headers(out) == ["pycache: stale bytecode not pruned (pycache_mode off)"]
        assert os.path.exists(orphan)
    else:
        assert headers(out) == ["pycache: pruned 1 stale bytecode file (1 orphan) under %s; "
                                "kept 1 sourceless pyc (pycache_sourceless false)" % d], out
        assert not os.path.exists(orphan)


def test_never_outside_rootdir_and_testpaths(venv_python, project, tmp_path):
    """A test directory named on the command line outside the rootdir is not
    pruned; a testpaths entry is, wherever it lies."""
    d, fresh, orphan = project
    outside = {}
    for name in ("other", "tp"):
        other = tmp_path / name
        other.mkdir()
        (other / "gone2.py").write_text("Z = 1\n")
        compile_to(other, "gone2.py", "gone2.pyc")
        (other / "gone2.py").unlink()
        (other / "test_other.py").write_text("def test_x():\n    pass\n")
        outside[name] = other
    (d / "pytest.ini").write_text("[pytest]\ntestpaths = . ../tp\n")
    code, out = pytest_run(venv_python, d, str(outside["other"] / "test_other.py"), ".")
    assert headers(out) == ["pycache: pruned 3 stale bytecode files (1 orphan, 2 sourceless) "
                            "under %s, %s" % (d, outside["tp"])], out
    assert (outside["other"] / "gone2.pyc").exists()
    assert not (outside["tp"] / "gone2.pyc").exists()
