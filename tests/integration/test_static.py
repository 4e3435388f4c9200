"""`make static`: one fully static pycache ($PYCACHE_STATIC, musl) that works
alone in an empty root, as a `COPY --from=... /pycache` into a distroless
image uses it: chroot into a directory holding only the binary and a tree.

Skipped when the static binary was not built (`make static` needs Debian's
musl-tools; .ci/run builds it before `make check`).
"""

import json
import os
import shutil
import subprocess

import pytest

STATIC = os.environ.get("PYCACHE_STATIC")

pytestmark = [
    pytest.mark.skipif(not STATIC, reason="no static binary: make static (musl-tools)"),
    pytest.mark.skipif(os.environ.get("PYCACHE_SAN") == "1",
                       reason="the static binary is not a sanitized build"),
]


def test_not_a_dynamic_executable():
    r = subprocess.run(["ldd", STATIC], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert b"not a dynamic executable" in r.stdout
    heads = subprocess.run(["objdump", "-p", STATIC], stdout=subprocess.PIPE,
                           check=True).stdout.decode()
    assert "NEEDED" not in heads and "INTERP" not in heads


@pytest.fixture
def root(tmp_path):
    """An otherwise empty root: /pycache and /tree (pkg/m.py with its fresh
    cache, the orphan cache of a deleted gone.py), nothing else."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    r = tmp_path / "root"
    pkg = r / "tree" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("A = 1\n")
    (pkg / "gone.py").write_text("B = 2\n")
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", str(pkg)], check=True)
    (pkg / "gone.py").unlink()
    shutil.copy(STATIC, str(r / "pycache"))
    return r


def chrooted(root, *args):
    chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    env = {"PATH": "/", "NO_COLOR": "1"}
    return subprocess.run([chroot, str(root), "/pycache"] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_runs_alone_in_an_empty_root(root, pycache):
    assert sorted(os.listdir(str(root))) == ["pycache", "tree"]
    r = chrooted(root, "check", "-v", "--json", "--fail-on", "all", "/tree")
    assert r.returncode == 1, r.stderr
    inside = sorted(json.loads(l)["status"] + " " + json.loads(l)["path"]
                    for l in r.stdout.decode().splitlines())
    assert inside == ["fresh /tree/pkg/__pycache__/m.cpython-311.pyc",
                      "orphan /tree/pkg/__pycache__/gone.cpython-311.pyc"]
    # The same objects as the dynamic build gives for the same files.
    outside = pycache("check", "-v", "--json", str(root / "tree")).json()
    strip = len(str(root))
    for obj in outside:
        obj["path"] = obj["path"][strip:]
        obj["source"] = obj["source"][strip:]
    got = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert sorted(got, key=lambda o: o["path"]) == sorted(outside, key=lambda o: o["path"])

    r = chrooted(root, "prune", "/tree")
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(root / "tree" / "pkg" / "__pycache__")) == ["m.cpython-311.pyc"]
    r = chrooted(root, "where", "--python", "3.12", "/tree/pkg/m.py")
    assert r.stdout == b"/tree/pkg/__pycache__/m.cpython-312.pyc\n"


def test_compile_says_it_needs_the_targets_python(root):
    r = chrooted(root, "compile", "--python", "3.11", "/tree")
    assert r.returncode == 2
    assert b"no Python 3.11 is installed here" in r.stderr
