"""make install / make uninstall into a staging DESTDIR.

The build under test ($PYCACHE_BUILD) is installed with PREFIX=/usr; then the
installed pieces are used the way a user would: man(1) renders the page,
pkg-config finds the library, a C program including <pycache.h> links
against the installed libpycache.a and libpycache.so and runs, the
completions are where bash, zsh and fish look. `make uninstall` must remove
exactly what was installed.
"""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, build_dir

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <pycache.h>

int main(void)
{
    /* 3.11's final magic, as importlib.util.MAGIC_NUMBER of 3.11 says. */
    const pyc_magic *m = pyc_magic_lookup(0x0a0d0da7u);
    if (!m || m->major != 3 || m->minor != 11)
        return 1;
    if (strcmp(pyc_version_string(), PYC_VERSION_STRING) != 0)
        return 2;
    printf("%s %s %u\n", pyc_version_string(), m->tag, (unsigned)m->number);
    return 0;
}
"""

EXPECTED = {
    "usr/bin/pycache",
    "usr/lib/libpycache.a",
    "usr/lib/libpycache.so",
    "usr/lib/libpycache.so.0",
    "usr/include/pycache.h",
    "usr/lib/pkgconfig/libpycache.pc",
    "usr/share/man/man1/pycache.1",
    "usr/share/bash-completion/completions/pycache",
    "usr/share/zsh/site-functions/_pycache",
    "usr/share/fish/vendor_completions.d/pycache.fish",
}


def files_under(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def make(*args):
    build = os.path.abspath(build_dir())
    r = subprocess.run(["make", "-s", "BUILD=" + build] + list(args), cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    if shutil.which("scdoc") is None:
        pytest.fail("scdoc is missing (scripts/install-deps installs it)")
    d = str(tmp_path_factory.mktemp("destdir"))
    make("install", "DESTDIR=" + d, "PREFIX=/usr")
    return d


def test_installs_exactly_the_expected_files(destdir):
    assert files_under(destdir) == EXPECTED
    lib = os.path.join(destdir, "usr/lib")
    assert os.readlink(os.path.join(lib, "libpycache.so")) == "libpycache.so.0"
    assert os.access(os.path.join(destdir, "usr/bin/pycache"), os.X_OK)
    r = subprocess.run(["readelf", "-d", os.path.join(lib, "libpycache.so.0")],
                       stdout=subprocess.PIPE, universal_newlines=True)
    if r.returncode == 0:
        assert "Library soname: [libpycache.so.0]" in r.stdout


def test_installed_binary_runs(destdir):
    r = subprocess.run([os.path.join(destdir, "usr/bin/pycache"), "--version"],
                       stdout=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 0 and r.stdout.strip()


def test_installed_man_page_renders(destdir):
    if shutil.which("man") is None:
        pytest.skip("man (man-db) is missing")
    page = os.path.join(destdir, "usr/share/man/man1/pycache.1")
    r = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == ""
    assert "pycache watch" in r.stdout


def pkg_config(destdir, *args):
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is missing")
    env = dict(os.environ,
               PKG_CONFIG_PATH=os.path.join(destdir, "usr/lib/pkgconfig"),
               PKG_CONFIG_LIBDIR=os.path.join(destdir, "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=destdir)
    r = subprocess.run(["pkg-config"] + list(args) + ["libpycache"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_pkg_config(destdir):
    flags = pkg_config(destdir, "--cflags", "--libs")
    assert "-I%s/usr/include" % destdir in flags
    assert "-L%s/usr/lib" % destdir in flags
    assert "-lpycache" in flags
    version = pkg_config(destdir, "--modversion")
    header = open(os.path.join(ROOT, "include/pycache.h")).read()
    assert '#define PYC_VERSION_STRING "%s"' % version[0] in header


@pytest.mark.parametrize("link", ["static", "shared"])
def test_program_links_against_installed_library(destdir, tmp_path, link):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = str(tmp_path / "prog")
    cflags = pkg_config(destdir, "--cflags")
    lib = os.path.join(destdir, "usr/lib")
    if link == "static":
        libs = [os.path.join(lib, "libpycache.a")] + pkg_config(destdir, "--libs", "--static")
        libs = [a for a in libs if a != "-lpycache"]
    else:
        libs = pkg_config(destdir, "--libs")
    # Under `make SAN=1 check` the installed library is the sanitized one:
    # a program linking it needs the sanitizer runtimes too.
    san = ["-fsanitize=address,undefined"] if os.environ.get("PYCACHE_SAN") == "1" else []
    r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-o", exe, str(src)] + san + cflags + libs,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ)
    if link == "shared":
        env["LD_LIBRARY_PATH"] = lib
        # The shared program really uses the installed library.
        ldd = subprocess.run(["ldd", exe], env=env, stdout=subprocess.PIPE,
                             universal_newlines=True)
        assert os.path.join(lib, "libpycache.so.0") in ldd.stdout
    else:
        needed = subprocess.run(["readelf", "-d", exe], stdout=subprocess.PIPE,
                                universal_newlines=True).stdout
        assert "libpycache" not in needed
    r = subprocess.run([exe], env=env, stdout=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 0
    version, tag, number = r.stdout.split()
    assert tag == "cpython-311" and number == "3495"


def test_uninstall_removes_exactly_what_was_installed(tmp_path):
    d = str(tmp_path / "stage")
    os.mkdir(d)
    # Something of the user's in a shared directory stays.
    os.makedirs(os.path.join(d, "usr/bin"))
    other = os.path.join(d, "usr/bin/other-tool")
    open(other, "w").close()
    make("install", "DESTDIR=" + d, "PREFIX=/usr")
    assert files_under(d) == EXPECTED | {"usr/bin/other-tool"}
    make("uninstall", "DESTDIR=" + d, "PREFIX=/usr")
    assert files_under(d) == {"usr/bin/other-tool"}
    # No link left dangling either (os.walk lists links among files).
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            assert not os.path.islink(p), p
