"""The build a user meets first: what `make deps` installs, that `make -j2
deps all` cannot race, and that the Makefile honours the flags Debian's
packaging passes (dpkg-buildflags: CPPFLAGS, CFLAGS, LDFLAGS)."""

import os
import re
import subprocess

from conftest import ROOT


def make_n(*args, **kw):
    r = subprocess.run(["make", "-n", "-B"] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def script_sets():
    with open(os.path.join(ROOT, "scripts", "install-deps")) as f:
        text = f.read()
    sets = dict(re.findall(r'^(BUILD|TEST)="([^"]*)"', text, flags=re.M))
    return {k: v.split() for k, v in sets.items()}


def test_building_needs_six_packages_testing_the_rest():
    sets = script_sets()
    assert sets["BUILD"] == ["build-essential", "pkgconf", "liburing-dev", "libarchive-dev",
                             "nettle-dev", "libjansson-dev"]
    assert "libcmocka-dev" in sets["TEST"] and "clang" in sets["TEST"]
    # An LLVM release going away must not break the install: no pinned
    # version of the sanitizer/fuzzer runtime.
    assert "libclang-rt-dev" in sets["TEST"]
    assert not [p for p in sets["BUILD"] + sets["TEST"] if re.search(r"-\d+-dev$", p)]
    r = subprocess.run([os.path.join(ROOT, "scripts", "install-deps"), "--bogus"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 2 and "usage" in r.stderr
    # Every package is in the README's table.
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for p in sets["BUILD"] + sets["TEST"]:
        assert "`%s`" % p in readme, p


def test_deps_come_before_any_compile(tmp_path):
    lines = make_n("-j2", "BUILD=" + str(tmp_path), "deps", "all")
    first_cc = next(i for i, l in enumerate(lines) if " -c -o " in l)
    assert any("scripts/install-deps" in l for l in lines[:first_cc])
    # The order-only edge itself (make -n would print in order anyway).
    with open(os.path.join(ROOT, "Makefile")) as f:
        assert "$(LIB_OBJ) $(PIC_OBJ) $(CLI_OBJ): | $(DEPS_GOALS)" in f.read()


def test_makefile_honours_debian_build_flags(tmp_path):
    lines = make_n("BUILD=" + str(tmp_path), "CPPFLAGS=-D_FORTIFY_SOURCE=2",
                   "CFLAGS=-O2 -fstack-protector-strong", "LDFLAGS=-Wl,-z,relro,-z,now", "all")
    compiles = [l for l in lines if " -c -o " in l]
    links = [l for l in lines if re.search(r" -o \S*(pycache|libpycache\.so)( |$)", l)
             and " -c " not in l]
    assert compiles and links
    assert all("-D_FORTIFY_SOURCE=2" in l and "-fstack-protector-strong" in l
               for l in compiles)
    assert all("-Wl,-z,relro,-z,now" in l for l in links), links
