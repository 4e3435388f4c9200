"""setup.py — the C build step behind pyproject.toml (setuptools backend).

The wheel holds three things, all built here from this source tree:
  - the pycache program, installed as a script (the environment's bin/, as
    ruff's and cmake's wheels do): build_scripts below runs make;
  - libpycache.so.0, inside the package (pycache/_lib/), for ctypes users;
  - the pure-Python package python/pycache (API, pytest plugin, __main__).

It is one wheel for every CPython 3.8+: nothing in it is a Python extension,
so the tag is py3-none-PLATFORM. PLATFORM is computed, not assumed
(PEP 600): the newest GLIBC_2.N symbol version the program and the library
import (objdump -T) gives manylinux_2_N_<arch>, and the build fails if they
need any shared object beyond the C library's own (liburing is linked
statically: -l:liburing.a).

The version is PYC_VERSION_STRING of include/pycache.h, the one place it is
written; the build writes it into pycache/_version.py.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

# setuptools' own distutils (imported through setuptools above).
from distutils.command.build_scripts import build_scripts
from distutils.errors import DistutilsExecError

HERE = os.path.dirname(os.path.abspath(__file__))

# What a manylinux program may link dynamically (PEP 600 defers to the
# manylinux2014 list of the libraries every glibc distribution has).
ALLOWED_NEEDED = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                  "librt.so.1", "libgcc_s.so.1", "ld-linux-x86-64.so.2"}


def read_version():
    with open(os.path.join(HERE, "include", "pycache.h")) as f:
        m = re.search(r'^#define PYC_VERSION_STRING "([^"]+)"', f.read(), re.M)
    if not m:
        sys.exit("setup.py: no PYC_VERSION_STRING in include/pycache.h")
    return m.group(1)


VERSION = read_version()


def c_build_dir(command):
    build = command.get_finalized_command("build")
    return os.path.abspath(os.path.join(build.build_temp, "c"))


def build_c(command):
    """Runs make for the program and the shared library into the build
    directory (idempotent: make rebuilds nothing twice); returns their paths."""
    out = c_build_dir(command)
    binary = os.path.join(out, "pycache")
    library = os.path.join(out, "libpycache.so")
    make = os.environ.get("MAKE", "make")
    if shutil.which(make) is None:
        raise DistutilsExecError("building pycache needs make and a C compiler "
                                 "(Debian: apt-get install build-essential liburing-dev)")
    argv = [make, "-C", HERE, "-j%d" % min(os.cpu_count() or 1, 4), "BUILD=" + out,
            # liburing into the program itself: the wheel must need nothing
            # but glibc at run time.
            "CLI_LIBS=-l:liburing.a",
            # and no libarchive (a shared library with a dozen more behind
            # it): the wheel's program refuses archives with a message.
            "WITHOUT=libarchive",
            "CFLAGS=" + os.environ.get("CFLAGS", "-O2"),
            "LDFLAGS=" + os.environ.get("LDFLAGS", "-s"),
            binary, library]
    command.announce("running " + " ".join(shlex.quote(a) for a in argv), 2)
    try:
        subprocess.run(argv, check=True)
    except subprocess.CalledProcessError as e:
        raise DistutilsExecError("make failed (exit %d); building pycache needs "
                                 "build-essential and liburing-dev (liburing.a)"
                                 % e.returncode)
    return binary, library


def elf_requirements(path):
    """(newest GLIBC_2.N minor number imported, NEEDED shared objects)."""
    objdump = os.environ.get("OBJDUMP", "objdump")
    dyn = subprocess.run([objdump, "-T", path], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    heads = subprocess.run([objdump, "-p", path], stdout=subprocess.PIPE,
                           check=True).stdout.decode()
    minors = [int(m) for m in re.findall(r"\bGLIBC_2\.(\d+)\b", dyn)]
    needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", heads, re.M))
    return (max(minors) if minors else 0), needed


def platform_tag(paths):
    import platform
    machine = platform.machine()
    newest = 0
    for path in paths:
        minor, needed = elf_requirements(path)
        extra = needed - ALLOWED_NEEDED
        if extra:
            raise DistutilsExecError("%s needs %s: not allowed in a manylinux wheel"
                                     % (path, ", ".join(sorted(extra))))
        newest = max(newest, minor)
    # glibc 2.17 is the oldest manylinux_2_X a pip will look at.
    return "manylinux_2_%d_%s" % (max(newest, 17), machine)


class BuildProgram(build_scripts):
    """The one script is the compiled program (distutils' build_scripts
    would try to read it as a Python file with a #! line)."""

    def run(self):
        binary, _ = build_c(self)
        self.mkpath(self.build_dir)
        target = os.path.join(self.build_dir, "pycache")
        self.copy_file(binary, target)
        os.chmod(target, 0o755)

    def get_source_files(self):
        return []


class BuildPackage(build_py):
    """The Python package, plus _version.py and the shared library."""

    def run(self):
        super().run()
        _, library = build_c(self)
        package = os.path.join(self.build_lib, "pycache")
        self.mkpath(os.path.join(package, "_lib"))
        self.copy_file(library, os.path.join(package, "_lib", "libpycache.so.0"))
        with open(os.path.join(package, "_version.py"), "w") as f:
            f.write('"""Written by setup.py from include/pycache.h."""\n\n'
                    '__version__ = "%s"\n' % VERSION)


class BinaryDistribution(Distribution):
    """Has a script (the program) and platform code (so the wheel is not
    marked pure and goes to platlib), though it lists no extension."""

    def has_scripts(self):
        return True

    def has_ext_modules(self):
        return True


cmdclass = {"build_scripts": BuildProgram, "build_py": BuildPackage}

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # an sdist-only build: no wheel package needed
    pass
else:
    class BdistWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            # After the build (bdist_wheel.run builds, then names the wheel).
            binary, library = build_c(self)
            return "py3", "none", platform_tag([binary, library])

    cmdclass["bdist_wheel"] = BdistWheel

# scripts names the program for setuptools' install_scripts, which installs
# nothing when the list is empty; BuildProgram makes the file.
setup(version=VERSION, distclass=BinaryDistribution, cmdclass=cmdclass,
      scripts=["pycache"])
