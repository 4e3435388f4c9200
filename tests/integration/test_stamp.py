"""Source stamps (pyc_stamp_from_stat) against the real interpreters.

For each interpreter and each edge mtime, the interpreter itself writes the
timestamp pyc (by importing the module, and with py_compile), and we check:

  * the mtime and size it wrote are what pyc_stamp_from_stat computes (for
    the pycs the import system writes; py_compile of 2.7 is allowed to
    differ: it uses long(os.stat().st_mtime), the float, where import.c
    uses the integer seconds);
  * whether that interpreter then *uses* the pyc on import is exactly
    "mtime_matchable and header mtime == stamp mtime". The oracle: after
    compiling, the source is rewritten with other contents of the same size
    and its mtime put back; importing it (with -B, so nothing is rewritten)
    prints which of the two versions ran.
"""

import os
import struct
import subprocess

import pytest

NS = 10 ** 9

# name -> st_mtime_ns
EDGE_MTIMES = [
    ("ordinary", 1700000000 * NS + 123456789),
    ("nsec_999999999", 1700000000 * NS + 999999999),   # 3.x: float rounds up
    ("nsec_999999000", 1700000000 * NS + 999999000),   # ... and here it does not
    ("zero", 0),
    ("negative_1_5", -1500000000),                      # int() truncates to -1
    ("negative_1", -1 * NS),
    ("minus_1e-9", -1),                                 # int(-1e-9) == 0
    ("2_31_plus_5", (2 ** 31 + 5) * NS),
    ("2_32_minus_1", (2 ** 32 - 1) * NS),
    ("2_32_rounds_up", (2 ** 32 - 1) * NS + 999999999),
    ("2_32_plus_7", (2 ** 32 + 7) * NS),
]

SOURCE_A = b"V = 'A'\n"
SOURCE_B = b"V = 'B'\n"   # same size: only the mtime can tell them apart


def _set_source(path, contents, ns):
    with open(path, "wb") as f:
        f.write(contents)
    os.utime(path, ns=(ns, ns))
    st = os.stat(path)
    if st.st_mtime_ns != ns:
        pytest.skip("filesystem cannot store mtime %d ns" % ns)


def _pyc_path(interp, src):
    d, base = os.path.split(src)
    stem = base[:-3]
    if interp.major == 2:
        return os.path.join(d, stem + ".pyc")
    return os.path.join(d, "__pycache__", "%s.%s.pyc" % (stem, interp.tag))


def _read_header(interp, pyc):
    with open(pyc, "rb") as f:
        data = f.read(16)
    assert data[:4] == interp.magic_bytes
    if (interp.major, interp.minor) >= (3, 7):
        flags, mtime, size = struct.unpack("<III", data[4:16])
        assert flags == 0
        return mtime, size
    if (interp.major, interp.minor) >= (3, 3):
        mtime, size = struct.unpack("<II", data[4:12])
        return mtime, size
    (mtime,) = struct.unpack("<I", data[4:8])
    return mtime, None


def _probe(tool, interp, path):
    out = subprocess.run([tool("stamp_probe"), str(interp.magic), path],
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    mtime, matchable, size, size_checked = out.split()
    return int(mtime), matchable == "1", int(size), size_checked == "1"


def _import_code(d, name):
    return ("import sys; sys.path.insert(0, %r); import %s; "
            "sys.stdout.write(%s.V)" % (d, name, name))


def _compile_by_import(interp, d, name, src):
    interp.run(_import_code(d, name))


def _compile_by_py_compile(interp, d, name, src):
    if (interp.major, interp.minor) >= (3, 7):
        # Explicit: py_compile picks CHECKED_HASH when SOURCE_DATE_EPOCH is set.
        code = ("import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True, "
                "invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)")
    else:
        code = "import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True)"
    interp.run(code, src)


def _uses_pyc(interp, d, name):
    out = interp.run(_import_code(d, name), flags=["-B"]).stdout.decode()
    assert out in ("A", "B")
    return out == "A"


@pytest.mark.parametrize("how", ["import", "py_compile"])
@pytest.mark.parametrize("case,ns", EDGE_MTIMES, ids=[c for c, _ in EDGE_MTIMES])
def test_stamp_matches_interpreter(interp, tool, tmp_path, how, case, ns):
    d = str(tmp_path)
    name = "m_" + case.replace("-", "_").replace(".", "_")
    src = os.path.join(d, name + ".py")
    _set_source(src, SOURCE_A, ns)

    compile_ = _compile_by_import if how == "import" else _compile_by_py_compile
    compile_(interp, d, name, src)
    pyc = _pyc_path(interp, src)
    assert os.path.exists(pyc), "the interpreter wrote no pyc"
    header_mtime, header_size = _read_header(interp, pyc)

    mtime, matchable, size, size_checked = _probe(tool, interp, src)
    assert size == len(SOURCE_A)
    assert size_checked == ((interp.major, interp.minor) >= (3, 3))
    if header_size is not None:
        assert header_size == size

    # What the interpreter wrote. 2.7's py_compile writes
    # long(os.stat().st_mtime) (the float), not import.c's whole seconds.
    py_compile_27 = interp.major == 2 and how == "py_compile"
    if py_compile_27:
        expected_27 = int(interp.eval_json(
            "import os, sys, json; sys.stdout.write(json.dumps("
            "int(os.stat(sys.argv[1]).st_mtime) & 0xFFFFFFFF))", src))
        assert header_mtime == expected_27
    else:
        assert header_mtime == mtime, (
            "%s wrote mtime %d, pyc_stamp_from_stat says %d" %
            (interp.version, header_mtime, mtime))

    # Whether the interpreter uses it: same size, other contents, same mtime.
    _set_source(src, SOURCE_B, ns)
    used = _uses_pyc(interp, d, name)
    predicted = matchable and header_mtime == mtime
    assert used == predicted, (
        "%s %s the pyc (header mtime %d); pyc_stamp_from_stat says mtime %d, "
        "matchable %s" % (interp.version, "uses" if used else "does not use",
                          header_mtime, mtime, matchable))


def test_unmatchable_cases_exist(interpreters, tool, tmp_path):
    """The edge set above really exercises mtime_matchable=false where the
    rules say it should: 3.3-3.6 for negative and >= 2**32 mtimes, 2.7 for
    bit 31. (Guards against an edge list that no longer reaches them.)"""
    src = str(tmp_path / "x.py")
    for interp in interpreters:
        unmatchable = []
        for case, ns in EDGE_MTIMES:
            _set_source(src, SOURCE_A, ns)
            if not _probe(tool, interp, src)[1]:
                unmatchable.append(case)
        version = (interp.major, interp.minor)
        if version >= (3, 7):
            assert unmatchable == []
        elif version >= (3, 3):
            assert sorted(unmatchable) == sorted(
                ["negative_1_5", "negative_1", "2_32_rounds_up", "2_32_plus_7"])
        elif version == (2, 7):
            assert sorted(unmatchable) == sorted(
                ["negative_1_5", "negative_1", "minus_1e-9", "2_31_plus_5",
                 "2_32_minus_1", "2_32_rounds_up"])


@pytest.mark.parametrize("flags", [0, 2, 4, 6, 0x80000000])
def test_flags_of_timestamp_pyc(interp37, libpycache, tmp_path, flags):
    """_classify_pyc rejects flags & ~0b11; get_code takes hash_based =
    flags & 0b1, so flags == 0b10 is a timestamp pyc and is used. The
    interpreter's choice must match pyc_header_parse's status."""
    import ctypes
    d = str(tmp_path)
    src = os.path.join(d, "m_flags.py")
    ns = 1700000000 * NS
    _set_source(src, SOURCE_A, ns)
    _compile_by_import(interp37, d, "m_flags", src)
    pyc = _pyc_path(interp37, src)
    with open(pyc, "rb") as f:
        data = bytearray(f.read())
    data[4:8] = struct.pack("<I", flags)
    with open(pyc, "wb") as f:
        f.write(data)

    libpycache.pyc_header_parse.restype = ctypes.c_int
    libpycache.pyc_header_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                            ctypes.c_void_p]
    out = ctypes.create_string_buffer(256)  # > sizeof(pyc_header)
    status = libpycache.pyc_header_parse(bytes(data[:16]), 16, out)
    assert status in (0, 3)  # PYC_HEADER_OK, PYC_HEADER_BAD_FLAGS

    _set_source(src, SOURCE_B, ns)
    used = _uses_pyc(interp37, d, "m_flags")
    assert used == (status == 0), (interp37.version, flags, status)
    assert used == (flags in (0, 2))
