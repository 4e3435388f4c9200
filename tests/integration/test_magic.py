"""The magic-number table against the real interpreters.

For every interpreter on this machine: the magic it reports
(importlib.util.MAGIC_NUMBER, imp.get_magic() on 2.7) and the one it actually
writes into a compiled file must both be in the table, as its own version,
marked final; its cache tag must map back to that magic; and the header size
the table gives must be where that interpreter's marshal data starts.
"""

import ctypes
import json
import subprocess

import pytest


class PycMagic(ctypes.Structure):
    """include/pycache.h `pyc_magic`."""
    _fields_ = [
        ("word", ctypes.c_uint32),
        ("number", ctypes.c_uint16),
        ("implementation", ctypes.c_int),
        ("major", ctypes.c_uint8),
        ("minor", ctypes.c_uint8),
        ("release", ctypes.c_char_p),
        ("tag", ctypes.c_char_p),
        ("layout", ctypes.c_int),
        ("final", ctypes.c_bool),
        ("note", ctypes.c_char_p),
    ]


@pytest.fixture(scope="module")
def lib(libpycache):
    libpycache.pyc_magic_lookup.argtypes = [ctypes.c_uint32]
    libpycache.pyc_magic_lookup.restype = ctypes.POINTER(PycMagic)
    libpycache.pyc_magic_for_tag.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    libpycache.pyc_magic_for_tag.restype = ctypes.POINTER(PycMagic)
    libpycache.pyc_implementation_name.argtypes = [ctypes.c_int]
    libpycache.pyc_implementation_name.restype = ctypes.c_char_p
    return libpycache


def lookup(lib, magic_bytes):
    """The table entry for a 4-byte magic, or None."""
    p = lib.pyc_magic_lookup(int.from_bytes(magic_bytes, "little"))
    return p.contents if p else None


@pytest.fixture(scope="module")
def table(pycache_bin):
    """`pycache versions --json --all`, keyed by magic_hex."""
    out = subprocess.run([pycache_bin, "versions", "--json", "--all"],
                         stdout=subprocess.PIPE, check=True).stdout
    rows = [json.loads(line) for line in out.decode("utf-8").splitlines()]
    return {r["magic_hex"]: r for r in rows}


def test_interpreter_magic_is_known(interp, lib, table):
    m = lookup(lib, interp.magic_bytes)
    assert m is not None, "magic %s of %s unknown" % (interp.magic_bytes, interp)
    assert m.number == interp.magic
    assert (m.major, m.minor) == (interp.major, interp.minor)
    assert m.final
    assert lib.pyc_implementation_name(m.implementation).decode() == interp.implementation
    # The command shows the same entry.
    row = table[interp.magic_bytes.hex()]
    assert row["python"] == interp.short
    assert row["final"] is True
    assert row["magic"] == interp.magic
    assert row["implementation"] == interp.implementation
    assert row["tag"] == interp.tag


def test_tag_maps_back(interp, lib):
    if interp.tag is None:
        # 2.7 has no cache tag; none of the table's 2.7 entries claims one.
        assert lookup(lib, interp.magic_bytes).tag is None
        return
    tag = interp.tag.encode()
    p = lib.pyc_magic_for_tag(tag, len(tag))
    assert p, "tag %s unknown" % interp.tag
    assert p.contents.number == interp.magic
    assert p.contents.tag == tag
    # Not NUL-terminated: the tag as it sits inside a cache file name.
    name = b"mod." + tag + b".opt-1.pyc"
    p = lib.pyc_magic_for_tag(name[4:], len(tag))
    assert p and p.contents.number == interp.magic


# Compiles a module and reports the file's bytes (2.7 and 3.x alike).
_COMPILE = r"""
import binascii, py_compile, sys
src, dst = sys.argv[1], sys.argv[2]
py_compile.compile(src, cfile=dst, doraise=True)
data = open(dst, 'rb').read()
sys.stdout.write(binascii.hexlify(data).decode('ascii'))
"""

# Loads the marshalled code after HEADER bytes, as the loader would.
_LOAD = r"""
import binascii, marshal, sys, types
data = binascii.unhexlify(sys.stdin.read().strip())
code = marshal.loads(data[int(sys.argv[1]):])
assert isinstance(code, types.CodeType), type(code)
ns = {}
exec(code, ns)
sys.stdout.write(str(ns['ANSWER']))
"""


def test_written_file_has_table_magic_and_header(interp, lib, tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("ANSWER = 6 * 7\n")
    dst = tmp_path / "mod.pyc"
    r = interp.run(_COMPILE, str(src), str(dst))
    data = bytes.fromhex(r.stdout.decode("ascii"))
    assert data[:4] == interp.magic_bytes
    m = lookup(lib, data[:4])
    assert m is not None and (m.major, m.minor) == (interp.major, interp.minor)
    # The interpreter itself finds its code right after the table's header
    # size.
    out = subprocess.run([interp.path, "-c", _LOAD, str(m.layout)],
                         input=data.hex().encode(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True).stdout
    assert out == b"42"


def test_unicode_flag_magic(interp2, lib, table):
    """Python 2 -U writes MAGIC + 1 (Python/import.c: pyc_magic = MAGIC + 1)."""
    r = interp2.run("import binascii, imp, sys; "
                    "sys.stdout.write(binascii.hexlify(imp.get_magic()).decode())",
                    flags=["-U"])
    magic = bytes.fromhex(r.stdout.decode("ascii"))
    assert magic != interp2.magic_bytes
    assert int.from_bytes(magic[:2], "little") == interp2.magic + 1
    m = lookup(lib, magic)
    assert m is not None, "-U magic %r unknown" % magic
    assert (m.major, m.minor) == (2, 7)
    assert not m.final
    assert table[magic.hex()]["python"] == "2.7"


def test_default_listing_names_each_interpreter(interp, pycache):
    """`pycache versions --json` gives, for the interpreter's version, the
    magic that interpreter writes."""
    r = pycache("versions", "--json")
    assert r.returncode == 0
    rows = [x for x in r.json()
            if x["implementation"] == interp.implementation
            and x["python"] == interp.short]
    assert len(rows) == 1
    assert rows[0]["magic_hex"] == interp.magic_bytes.hex()


def test_unknown_word(lib):
    assert lookup(lib, b"\x00\x00\x00\x00") is None
    assert lookup(lib, b"\xa7\x0d\x0a\x0d") is None  # \n\r swapped
    assert lookup(lib, b"\xa7\x0d\x00\x00") is None  # no \r\n
