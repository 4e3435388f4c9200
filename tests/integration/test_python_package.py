"""The wheel (pyproject.toml + setup.py) and the Python API in it.

The wheel is built once per session, offline (conftest.wheel: $PYCACHE_WHEEL
from `make wheel`, or built here), then installed into a fresh venv of every
CPython 3.8+ on the machine, and used from there as a user would: the
program in the venv's bin/, `python -m pycache`, the API. The oracle for
cache_from_source / source_from_cache is each interpreter's own importlib;
for inspect and check it is the command line's JSON (the build under test).
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from conftest import ROOT, build_wheel, make_venv, package_env

# The wheel holds its own build of the program, never the sanitized one:
# under SAN=1 these tests would repeat the plain run.
pytestmark = pytest.mark.skipif(os.environ.get("PYCACHE_SAN") == "1",
                                reason="the wheel is not a sanitized build (make check runs these)")


def header_version():
    with open(os.path.join(ROOT, "include", "pycache.h")) as f:
        return re.search(r'#define PYC_VERSION_STRING "([^"]+)"', f.read()).group(1)


def test_wheel_is_one_py3_none_manylinux_wheel(wheel, tmp_path):
    name = os.path.basename(wheel)
    m = re.match(r"pycache-([^-]+)-py3-none-manylinux_2_(\d+)_x86_64\.whl$", name)
    assert m, name
    assert m.group(1) == header_version()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        data = "pycache-%s.data/scripts/pycache" % m.group(1)
        assert data in names
        for member in ("pycache/__init__.py", "pycache/__main__.py", "pycache/py.typed",
                       "pycache/pytest_plugin.py", "pycache/_lib/libpycache.so.0"):
            assert member in names
        info = z.read("pycache-%s.dist-info/WHEEL" % m.group(1)).decode()
        assert "Root-Is-Purelib: false" in info
        assert "Tag: py3-none-manylinux_2_%s_x86_64" % m.group(2) in info
        eps = z.read("pycache-%s.dist-info/entry_points.txt" % m.group(1)).decode()
        assert "[pytest11]\npycache = pycache.pytest_plugin" in eps
        z.extract(data, str(tmp_path))
        z.extract("pycache/_lib/libpycache.so.0", str(tmp_path))
    # PEP 600: the tag names the newest glibc symbol version either binary
    # imports, and they need nothing but glibc (liburing is linked in).
    newest = 0
    for path in (tmp_path / data, tmp_path / "pycache/_lib/libpycache.so.0"):
        dyn = subprocess.run(["objdump", "-T", str(path)], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        newest = max([newest] + [int(v) for v in re.findall(r"GLIBC_2\.(\d+)", dyn)])
        heads = subprocess.run(["objdump", "-p", str(path)], stdout=subprocess.PIPE,
                               check=True).stdout.decode()
        needed = set(re.findall(r"NEEDED\s+(\S+)", heads))
        assert needed <= {"libc.so.6", "libm.so.6"}, needed
        assert "uring" not in dyn
    assert int(m.group(2)) == max(newest, 17)


API_PROBE = r"""
import importlib.util, json, os, subprocess, sys
import pycache
tree, unreadable = sys.argv[1], sys.argv[2]
me = "%d.%d" % sys.version_info[:2]
src = os.path.join(tree, "pkg", "mod.py")
out = {"version": pycache.__version__, "check": list(pycache.check(tree))}
out["cfs"] = [pycache.cache_from_source(src, python=me, optimization=o) for o in (0, 1, 2)]
out["cfs_importlib"] = [importlib.util.cache_from_source(src, optimization="" if o == 0 else o)
                        for o in (0, 1, 2)]
out["sfc"] = [pycache.source_from_cache(c) for c in out["cfs"]]
out["sfc_importlib"] = [importlib.util.source_from_cache(c) for c in out["cfs_importlib"]]
out["cfs_prefix"] = pycache.cache_from_source("rel/m.py", python=me, prefix="/pfx")
sys.pycache_prefix = "/pfx"
out["cfs_prefix_importlib"] = importlib.util.cache_from_source("rel/m.py")
sys.pycache_prefix = None
out["inspect"] = pycache.inspect(out["cfs"][0])
errors = {}
try:
    pycache.source_from_cache("x.pyc")
except ValueError as e:
    errors["value"] = str(e)
try:
    importlib.util.source_from_cache("x.pyc")
except ValueError as e:
    errors["value_importlib"] = str(e)
try:
    list(pycache.check(os.path.join(tree, "no-such-dir")))
except FileNotFoundError as e:
    errors["missing"] = e.filename
try:
    list(pycache.check(tree, expect=["9.99"]))
except pycache.PycacheError as e:
    errors["usage"] = [e.returncode, e.messages[0]]
out["errors"] = errors
out["main"] = subprocess.run([sys.executable, "-m", "pycache", "--version"],
                             stdout=subprocess.PIPE).stdout.decode()
out["bin"] = pycache.find_pycache_bin()
import ctypes
lib = ctypes.CDLL(pycache.library_path())
lib.pyc_version_string.restype = ctypes.c_char_p
out["lib"] = lib.pyc_version_string().decode()
print(json.dumps(out))
"""


def _tree(interp, where):
    pkg = where / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("A = 1\n")
    (pkg / "gone.py").write_text("B = 2\n")
    (pkg / "edited.py").write_text("C = 3\n")
    interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1, "
               "optimize=[0, 1] if sys.version_info >= (3, 9) else 0)", str(where))
    (pkg / "gone.py").unlink()                     # an orphan
    (pkg / "edited.py").write_text("C = 33333\n")  # stale (size)


def test_api_in_a_venv_of_each_interpreter(interp38, pycache, wheel, tmp_path):
    interp = interp38
    tree = tmp_path / "tree"
    _tree(interp, tree)
    venv_python = make_venv(interp.path, tmp_path / "venv", wheel)
    r = subprocess.run([venv_python, "-c", API_PROBE, str(tree), str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=package_env(),
                       cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout.decode())
    assert out["bin"] == os.path.join(str(tmp_path / "venv"), "bin", "pycache")
    assert out["version"] == header_version()
    assert out["main"] == "pycache %s\n" % header_version()
    assert out["lib"] == header_version()
    # check: the objects check -v --json lists (in the order files are
    # judged: with several walks, not a fixed one).
    cli = pycache("check", "-v", "--json", "--fail-on", "none", str(tree))
    assert cli.returncode == 0
    by_path = lambda objs: sorted(objs, key=lambda o: o["path"])  # noqa: E731
    assert by_path(out["check"]) == by_path(cli.json())
    statuses = sorted({e["status"] for e in out["check"]})
    assert statuses == ["fresh", "orphan", "stale"]
    # where, against this interpreter's importlib.
    assert out["cfs"] == out["cfs_importlib"]
    assert out["sfc"] == out["sfc_importlib"]
    assert out["cfs_prefix"] == out["cfs_prefix_importlib"]
    assert out["inspect"] == pycache("inspect", "--json", out["cfs"][0]).json()[0]
    errors = out["errors"]
    assert errors["value"].endswith(errors["value_importlib"].split(" in ")[0])
    assert errors["missing"] == str(tree / "no-such-dir")
    assert errors["usage"][0] == 2 and "9.99" in errors["usage"][1]


STREAM_PROBE = r"""
import os, sys
import pycache
fifo = sys.argv[1]
it = pycache.check(".")
first = next(it)          # must arrive while the program still runs
with open(fifo, "w") as f:  # lets the fake program go on
    f.write("go\n")
rest = list(it)
print(first["path"], [r["path"] for r in rest])
"""

FAKE = """#!/bin/sh
echo '{"path": "one"}'
read line < %s
echo '{"path": "two"}'
"""


def test_check_streams(wheel, tmp_path):
    """The first object reaches the caller before the program has finished:
    a fake program prints one line, then waits for the caller to write to a
    FIFO (a buffering API would wait forever: the timeout is only a guard)."""
    venv_python = make_venv("/usr/bin/python3", tmp_path / "venv", wheel)
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    fake = tmp_path / "fake-pycache"
    fake.write_text(FAKE % fifo)
    fake.chmod(0o755)
    r = subprocess.run([venv_python, "-c", STREAM_PROBE, str(fifo)], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=package_env(PYCACHE=str(fake)))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == "one ['two']\n"


def test_unreadable_directory_raises_after_the_readable_entries(wheel, tmp_path, open_tmp):
    """Run as nobody (setpriv): a directory it cannot read ends the iteration
    with PycacheError carrying the program's message, after every entry
    (the directory's own error record included) was yielded."""
    import shutil
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing")
    venv = os.path.join(open_tmp, "venv")
    venv_python = make_venv("/usr/bin/python3", venv, wheel)
    tree = os.path.join(open_tmp, "tree")
    os.makedirs(os.path.join(tree, "ok"))
    os.makedirs(os.path.join(tree, "closed"))
    with open(os.path.join(tree, "ok", "m.py"), "w") as f:
        f.write("A = 1\n")
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", tree], check=True)
    os.chmod(os.path.join(tree, "closed"), 0)
    code = ("import pycache, sys\nseen = []\ntry:\n"
            "    for e in pycache.check(sys.argv[1]): seen.append(e['status'])\n"
            "except pycache.PycacheError as e:\n"
            "    print(seen, e.returncode, e.messages)\n")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", venv_python, "-c", code, tree],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=package_env(PYTHONDONTWRITEBYTECODE="1"), cwd=open_tmp)
    assert r.returncode == 0, r.stderr.decode()
    # The error record check --json lists for it (status "error", sorted
    # with the files by path: closed/ before ok/), then the exception.
    expected = r"""\['error', 'fresh'\] 3 \["pycache check: cannot open '%s': Permission denied"\]\n"""
    assert re.fullmatch(expected % re.escape(os.path.join(tree, "closed")), r.stdout.decode())


def test_sdist_round_trip(tmp_path):
    """The sdist of this checkout, unpacked alone, builds a working wheel."""
    env = package_env()
    subprocess.run(["/usr/bin/python3", "-m", "build", "--sdist", "--no-isolation",
                    "--outdir", str(tmp_path / "sdist"), ROOT], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sdists = glob.glob(str(tmp_path / "sdist" / "pycache-*.tar.gz"))
    assert [os.path.basename(s) for s in sdists] == ["pycache-%s.tar.gz" % header_version()]
    with tarfile.open(sdists[0]) as t:
        t.extractall(str(tmp_path / "unpacked"))
    top = tmp_path / "unpacked" / ("pycache-%s" % header_version())
    assert (top / "src" / "cli" / "main.c").exists()
    assert not list(top.rglob("*.pyc"))
    built = build_wheel(top, tmp_path / "dist")
    venv_python = make_venv("/usr/bin/python3", tmp_path / "venv", built)
    r = subprocess.run([venv_python, "-m", "pycache", "versions", "--json"],
                       stdout=subprocess.PIPE, env=package_env(), check=True)
    assert any(json.loads(l)["tag"] == "cpython-312" for l in r.stdout.decode().splitlines())


def test_one_version_everywhere(wheel):
    """include/pycache.h is the one place: the wheel's name and metadata, the
    package's __version__ (checked per interpreter above), `pycache
    --version` and the Debian changelog (which cannot be generated) agree."""
    version = header_version()
    assert os.path.basename(wheel).startswith("pycache-%s-" % version)
    with open(os.path.join(ROOT, "debian", "changelog")) as f:
        first = f.readline()
    assert re.match(r"pycache \(([^)]+)\) ", first).group(1) == version
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        assert 'dynamic = ["version"]' in f.read()


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (scripts/install-deps)")
def test_pipx_installs_the_command(wheel, tmp_path):
    """pipx install WHEEL (offline) puts the program itself on pipx's bin
    directory: the command line alone, in an environment of its own."""
    env = package_env(PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
                      PIP_NO_INDEX="1", PIP_FIND_LINKS="/usr/share/python-wheels")
    subprocess.run(["pipx", "install", wheel], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    program = tmp_path / "bin" / "pycache"
    r = subprocess.run([str(program), "--version"], stdout=subprocess.PIPE, check=True)
    assert r.stdout.decode() == "pycache %s\n" % header_version()
    # The ELF program itself, not a Python launcher script.
    with open(os.path.realpath(str(program)), "rb") as f:
        assert f.read(4) == b"\x7fELF"
