"""PEP 552 source hashes (pyc_source_hash, pyc_source_hash_file) against the
real 3.7+ interpreters: importlib.util.source_hash of edge and random inputs,
and the hash each interpreter stores in the checked- and unchecked-hash pycs
py_compile writes."""

import ctypes
import os
import random

import pytest

AT_FDCWD = -100


def _inputs():
    rng = random.Random(552)
    out = [("empty", b"")]
    for n in range(1, 18):
        out.append(("len_%d" % n, bytes(rng.randrange(256) for _ in range(n))))
    for n in (31, 32, 33, 255, 256, 257, 1000):
        out.append(("random_%d" % n, bytes(rng.randrange(256) for _ in range(n))))
    out.append(("source_text", b"def f(x):\n    return x * 2\n"))
    out.append(("large", os.urandom(1 << 20) + b"xyz"))
    return out


INPUTS = _inputs()


@pytest.fixture(scope="module")
def lib(libpycache):
    libpycache.pyc_magic_lookup.restype = ctypes.c_void_p
    libpycache.pyc_magic_lookup.argtypes = [ctypes.c_uint32]
    libpycache.pyc_source_hash.restype = ctypes.c_int
    libpycache.pyc_source_hash.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_size_t, ctypes.c_char_p]
    libpycache.pyc_source_hash_file.restype = ctypes.c_int
    libpycache.pyc_source_hash_file.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                                ctypes.c_char_p, ctypes.c_char_p]
    return libpycache


def _magic(lib, interp):
    m = lib.pyc_magic_lookup(int.from_bytes(interp.magic_bytes, "little"))
    assert m, "magic of %s not in the table" % interp.version
    return m


def _ours(lib, m, data, offset=0):
    """pyc_source_hash of DATA, placed OFFSET bytes into a buffer."""
    buf = ctypes.create_string_buffer(len(data) + offset + 1)
    ctypes.memmove(ctypes.addressof(buf) + offset, data, len(data))
    out = ctypes.create_string_buffer(8)
    rc = lib.pyc_source_hash(m, ctypes.addressof(buf) + offset, len(data), out)
    assert rc == 0
    return out.raw


def _ours_file(lib, m, path):
    out = ctypes.create_string_buffer(8)
    assert lib.pyc_source_hash_file(m, AT_FDCWD, os.fsencode(path), out) == 0
    return out.raw


def test_source_hash_equals_importlib(interp37, lib, tmp_path):
    for name, data in INPUTS:
        (tmp_path / name).write_bytes(data)
    names = [name for name, _ in INPUTS]
    theirs = interp37.eval_json(
        "import importlib.util, json, os, sys\n"
        "d = sys.argv[1]\n"
        "out = {}\n"
        "for n in sys.argv[2:]:\n"
        "    with open(os.path.join(d, n), 'rb') as f:\n"
        "        out[n] = importlib.util.source_hash(f.read()).hex()\n"
        "sys.stdout.write(json.dumps(out))\n", str(tmp_path), *names)
    m = _magic(lib, interp37)
    for name, data in INPUTS:
        want = bytes.fromhex(theirs[name])
        for offset in ((0, 1, 3, 7) if len(data) < 4096 else (0, 5)):
            assert _ours(lib, m, data, offset) == want, (interp37.version, name, offset)
        assert _ours_file(lib, m, tmp_path / name) == want, (interp37.version, name)


@pytest.mark.parametrize("mode,flags", [("CHECKED_HASH", 3), ("UNCHECKED_HASH", 1)])
def test_hash_in_pyc_equals_source_hash_file(interp37, lib, tmp_path, mode, flags):
    m = _magic(lib, interp37)
    sources = [("small", b"x = 1\n"), ("odd", b"y = 'abc'  # 21 bytes\n"),
               ("big", b"".join(b"v%d = %d\n" % (i, i * i) for i in range(20000)))]
    for name, data in sources:
        src = tmp_path / (name + ".py")
        src.write_bytes(data)
        link = tmp_path / (name + "_link.py")
        link.symlink_to(src.name)
        cfile = tmp_path / (name + ".pyc")
        interp37.run(
            "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], "
            "doraise=True, invalidation_mode=py_compile.PycInvalidationMode.%s)" % mode,
            str(src), str(cfile))
        header = cfile.read_bytes()[:16]
        assert header[:4] == interp37.magic_bytes
        assert int.from_bytes(header[4:8], "little") == flags
        stored = header[8:16]
        assert _ours_file(lib, m, src) == stored, (interp37.version, name)
        assert _ours_file(lib, m, link) == stored, (interp37.version, name)
        assert _ours(lib, m, data) == stored
