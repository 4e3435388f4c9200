"""Shared fixtures for the integration tests.

The oracle for every CPython rule is CPython itself: these tests drive the
built `pycache` binary against trees made by real interpreters and compare its
answers with what each interpreter says.

Interpreters are discovered, in this order (duplicates by real path dropped):
  1. $PYCACHE_PYTHONS: a colon-separated list of interpreter paths;
  2. every `$(pyenv root)/versions/*/bin/python` (pyenv root from $PYENV_ROOT,
     else ~/.pyenv);
  3. python2.7, python3 and python3.N found on $PATH, and /usr/bin/python3.
Each is asked for its version, cache tag and magic number once per session.

Set PYCACHE_REQUIRE_PYTHONS=3.6,3.7,... to make a missing version an error
instead of a skip (CI sets nothing: on this machine none is missing).
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Asked of every interpreter; works from 2.7 to the newest 3.x.
_PROBE = r"""
import sys, json
try:
    import importlib.util as u
    magic = u.MAGIC_NUMBER
except Exception:
    import imp
    magic = imp.get_magic()
tag = getattr(getattr(sys, 'implementation', None), 'cache_tag', None)
impl = getattr(getattr(sys, 'implementation', None), 'name', 'cpython')
out = {
    'version': '%d.%d.%d' % sys.version_info[:3],
    'major': sys.version_info[0], 'minor': sys.version_info[1],
    'tag': tag, 'implementation': impl,
    'magic_hex': ''.join('%02x' % c for c in bytearray(magic)),
}
sys.stdout.write(json.dumps(out))
"""


class Interpreter(object):
    """One real Python interpreter found on this machine."""

    def __init__(self, path, info):
        self.path = path
        self.version = info["version"]          # "3.11.7"
        self.major = info["major"]
        self.minor = info["minor"]
        self.short = "%d.%d" % (self.major, self.minor)  # "3.11"
        self.tag = info["tag"]                  # "cpython-311" (None on 2.7)
        self.implementation = info["implementation"]
        self.magic_bytes = bytes.fromhex(info["magic_hex"])
        self.magic = int.from_bytes(self.magic_bytes[:2], "little")

    @property
    def id(self):
        where = "debian" if self.path.startswith("/usr/") else "pyenv"
        return "%s-%s" % (self.version, where)

    def run(self, code, *args, **kw):
        """Runs CODE with this interpreter (isolated from the user's env)."""
        env = dict(os.environ)
        for k in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE",
                  "PYTHONOPTIMIZE", "PYTHONPATH", "PYTHONHOME"):
            env.pop(k, None)
        env.update(kw.pop("env", {}))
        flags = kw.pop("flags", [])
        return subprocess.run([self.path] + flags + ["-c", code] + list(args),
                              env=env, check=kw.pop("check", True),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              **kw)

    def eval_json(self, code, *args, **kw):
        """Runs CODE, which must print one JSON document; returns it."""
        r = self.run(code, *args, **kw)
        return json.loads(r.stdout.decode("utf-8"))

    def __repr__(self):
        return "<Interpreter %s %s>" % (self.version, self.path)


def _candidates():
    env = os.environ.get("PYCACHE_PYTHONS")
    if env:
        for p in env.split(":"):
            if p:
                yield p
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for p in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python"))):
        yield p
    for name in ["python2.7"] + ["python3.%d" % n for n in range(0, 20)] + ["python3"]:
        p = shutil.which(name)
        if p:
            yield p
    yield "/usr/bin/python3"


def _version_key(interp):
    return (interp.major, interp.minor, interp.version, interp.path)


_cache = None


def discover_interpreters():
    """All interpreters on this machine, oldest first (cached)."""
    global _cache
    if _cache is not None:
        return _cache
    seen, found = set(), []
    for path in _candidates():
        if not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        # pyenv shims are scripts that pick a version: skip them, the versions
        # themselves are listed.
        if "/shims/" in real or real in seen:
            continue
        try:
            out = subprocess.run([path, "-c", _PROBE], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=60, check=True)
            info = json.loads(out.stdout.decode("utf-8"))
        except Exception:
            continue
        seen.add(real)
        found.append(Interpreter(path, info))
    found.sort(key=_version_key)
    _cache = found
    required = os.environ.get("PYCACHE_REQUIRE_PYTHONS")
    if required:
        have = {i.short for i in found}
        missing = [v for v in required.split(",") if v and v not in have]
        if missing:
            raise RuntimeError("required interpreters missing: %s" % ", ".join(missing))
    return found


def pytest_generate_tests(metafunc):
    """`interp` parametrises a test over every interpreter; `interp3` over the
    3.x ones; `interp37` over those with hash-based pycs (3.7+); `interp38`
    over those with PYTHONPYCACHEPREFIX (3.8+); `interp2` over 2.x."""
    all_ = discover_interpreters()
    groups = {
        "interp": all_,
        "interp3": [i for i in all_ if i.major == 3],
        "interp37": [i for i in all_ if (i.major, i.minor) >= (3, 7)],
        "interp38": [i for i in all_ if (i.major, i.minor) >= (3, 8)],
        "interp2": [i for i in all_ if i.major == 2],
    }
    for name, values in groups.items():
        if name in metafunc.fixturenames:
            if values:
                metafunc.parametrize(name, values, ids=[i.id for i in values])
            else:
                metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
                    reason="no such interpreter on this machine"))])


@pytest.fixture(scope="session")
def interpreters():
    return discover_interpreters()


@pytest.fixture(scope="session")
def pycache_bin():
    """Path of the built pycache binary ($PYCACHE_BIN, else build/pycache)."""
    path = os.environ.get("PYCACHE_BIN") or os.path.join(ROOT, "build", "pycache")
    if not os.access(path, os.X_OK):
        pytest.fail("pycache binary not built: %s (run `make`)" % path)
    return path


class Result(object):
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout_bytes = proc.stdout
        self.stderr_bytes = proc.stderr
        self.stdout = proc.stdout.decode("utf-8", "surrogateescape")
        self.stderr = proc.stderr.decode("utf-8", "surrogateescape")

    def json(self):
        """The JSON Lines output as a list of objects."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@pytest.fixture
def pycache(pycache_bin):
    """pycache(*args, cwd=..., env=..., input=...) -> Result (never raises on
    a non-zero exit; tests assert the status they expect)."""
    def run(*args, **kw):
        env = dict(os.environ)
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["NO_COLOR"] = "1"
        env.update(kw.pop("env", {}))
        proc = subprocess.run([pycache_bin] + [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=kw.pop("timeout", 300), **kw)
        return Result(proc)
    return run


def human_report(stdout):
    """`check`'s default output as {path: (status, reason)} and its summary
    line (paths without spaces: the listing pads with them)."""
    out, status = {}, None
    lines = stdout.splitlines()
    for line in lines[:-1]:
        if line.startswith("  "):
            path, reason = line[2:].split()[:2]
            out[path] = (status, reason)
        else:
            status = line.split(":")[0]
    return out, lines[-1]


def build_dir():
    """The build directory ($PYCACHE_BUILD, else build/)."""
    return os.environ.get("PYCACHE_BUILD") or os.path.join(ROOT, "build")


def build_has(feature):
    """Whether the binary under test was built with the fast path FEATURE
    (a probe of src/platform/probes/: "io_uring", "inotify", "o_noatime",
    "syncfs", "getdents64", ...), read from BUILD/gen/config.h, which
    scripts/probe writes. make PORTABLE=1 builds have none."""
    path = os.path.join(build_dir(), "gen", "config.h")
    with open(path) as f:
        text = f.read()
    name = "#define PYC_HAVE_%s " % feature.upper()
    for line in text.splitlines():
        if line.startswith(name):
            return line[len(name):].strip() == "1"
    raise AssertionError("no probe %r in %s" % (feature, path))


def needs(feature):
    """Marks a test of the fast path FEATURE: skipped by builds without it
    (make PORTABLE=1), which test the portable path instead."""
    return pytest.mark.skipif(not build_has(feature),
                              reason="this build has no %s (src/platform/README.md)" % feature)


@pytest.fixture(scope="session")
def tool():
    """tool(name) -> path of tests/tools/NAME.c built into BUILD/tools/."""
    def find(name):
        path = os.path.join(build_dir(), "tools", name)
        if not os.access(path, os.X_OK):
            pytest.fail("test tool not built: %s (run `make tools`)" % path)
        return path
    return find


@pytest.fixture(scope="session")
def libpycache():
    """The shared library, loaded with ctypes, for tests that call library
    functions directly (declare argtypes/restype in the test)."""
    import ctypes
    # Under SAN=1 the Makefile points this at a copy built without
    # sanitizers: an ASan library cannot be loaded into Python.
    path = os.environ.get("PYCACHE_CTYPES_LIB") or os.path.join(build_dir(), "libpycache.so")
    if not os.path.exists(path):
        pytest.fail("libpycache.so not built: %s" % path)
    return ctypes.CDLL(path)


@pytest.fixture
def open_tmp():
    """A temporary directory every user can reach (tmp_path lives under a
    0700 directory), for tests that run pycache without root's
    permission-bypassing capabilities (see run_unprivileged)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="pycache-test-")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["chmod", "-R", "u+rwx", d], check=False)
    shutil.rmtree(d, ignore_errors=True)


def run_unprivileged(*args, **kw):
    """Runs pycache as nobody (setpriv drops root's capabilities that bypass
    file permissions), so permission errors are real even under CI's root.
    env=: variables to add. Returns a Result; skips the test when setpriv is
    missing."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing")
    bin_ = os.environ.get("PYCACHE_BIN") or os.path.join(ROOT, "build", "pycache")
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(kw.pop("env", {}))
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "--inh-caps=-all", bin_] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=kw.pop("timeout", 300), **kw)
    return Result(proc)


# ---- the wheel (tests/integration/test_python_package.py, test_pytest_plugin.py)

# pip may reach only Debian's wheels: the build is offline, as on CI.
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/usr/share/python-wheels",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}


def build_wheel(source, outdir):
    """`pip wheel --no-deps` of SOURCE into OUTDIR, offline; returns the path."""
    env = dict(os.environ, **OFFLINE_PIP)
    subprocess.run(["/usr/bin/python3", "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(outdir), str(source)], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    found = glob.glob(os.path.join(str(outdir), "pycache-*.whl"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The wheel under test: $PYCACHE_WHEEL (make check builds it once,
    `make wheel`), else built here from this checkout."""
    given = os.environ.get("PYCACHE_WHEEL")
    if given:
        return given
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


def make_venv(python, where, wheel_path, system_site_packages=False):
    """A fresh venv of PYTHON at WHERE with WHEEL_PATH installed by pip
    --python (the venv needs no pip of its own: seeding one costs seconds):
    PYTHON's own pip where it has one (Debian's pip 23.0 cannot run on
    3.12+), else Debian's; returns the venv's python."""
    args = [python, "-m", "venv", "--without-pip"]
    if system_site_packages:
        args.append("--system-site-packages")
    subprocess.run(args + [str(where)], check=True)
    venv_python = os.path.join(str(where), "bin", "python")
    env = dict(os.environ, **OFFLINE_PIP)
    pip_python = python
    if subprocess.run([python, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        pip_python = "/usr/bin/python3"
    subprocess.run([pip_python, "-m", "pip", "--python", venv_python, "install",
                    "-q", "--no-deps", str(wheel_path)], env=env, check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return venv_python


def package_env(**extra):
    """An environment for a venv's python: nothing of the caller's Python
    settings, and no $PYCACHE (the package must find its own program)."""
    env = dict(os.environ)
    for k in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE", "PYTHONOPTIMIZE",
              "PYTHONPATH", "PYTHONHOME", "PYCACHE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(k, None)
    env.update(extra)
    return env


def evict(tree):
    """Drops TREE's files from the page cache (POSIX_FADV_DONTNEED, which
    needs no privilege once the pages are written back); False when one
    stays cached (tmpfs keeps its pages: nothing to read them from)."""
    os.sync()
    # Regular files only: opening a FIFO would wait for a writer.
    files = [p for p in (os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs)
             if os.path.isfile(p) and not os.path.islink(p)]
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    probe = next(f for f in files if f.endswith(".pyc"))
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(16)], 0, os.RWF_NOWAIT)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
