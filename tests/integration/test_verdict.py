"""The verdict on one cache file is the one CPython itself acts on.

Each scenario builds a module with a real interpreter, damages it in one way,
asks `pycache inspect --json` for the status and reason, and asks the same
interpreter (oracle.cpython_import) what its import system does with it.
"""

import marshal
import os
import shutil
import struct

import pytest

from conftest import human_report
from oracle import compile_source, cpython_import, make_module

# A fixed source mtime with a nanosecond part, so no test depends on the clock.
T_NS = 1_600_000_000_123_456_789


def inspect(pycache, path, *args):
    r = pycache("inspect", "--json", *(list(args) + [path]))
    assert r.returncode in (0, 1), r.stderr
    (obj,) = r.json()
    if not args:
        same_verdict_from_check(pycache, path, obj)
    return obj


def same_verdict_from_check(pycache, path, obj):
    """`check`'s default output reads headers in io_uring batches and judges
    them with pyc_verdict_judge_head; `inspect` opens the file itself. Every
    scenario here must get the same verdict both ways."""
    d, name = os.path.split(path)
    r = pycache("check", "--fail-on", "none", d)
    assert r.returncode == 0, r.stderr
    listed, summary = human_report(r.stdout)
    got = listed.get(os.path.join(d, name))
    if obj["status"] == "fresh":
        assert got is None and " fresh" in summary, (obj, r.stdout)
    else:
        assert got == (obj["status"], reason_of(obj) or "-"), (obj, r.stdout)


def reason_of(obj):
    return obj["reason"] or ""


def set_mtime(path, ns=T_NS):
    os.utime(path, ns=(ns, ns))


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def truncate(path, n):
    with open(path, "r+b") as f:
        f.truncate(n)


def rewrite_source(src, marker, same_length):
    """Changes what the module prints, keeping the mtime; keeps the size when
    SAME_LENGTH (so only the content differs)."""
    st = os.stat(src)
    with open(src) as f:
        old = f.read()
    new = old.replace("'v1'", repr(marker))
    assert new != old and len(new) == len(old)
    if not same_length:
        new += "# grown\n"
    with open(src, "w") as f:
        f.write(new)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def module(tmp_path):
    """A directory holding mod.py that prints 'v1', mtime fixed."""
    d = tmp_path / "tree"
    d.mkdir()
    src = make_module(str(d), "mod", "v1", padding="x = 1\n")
    set_mtime(src)
    return str(d), src


def header_size(interp):
    return 16 if (interp.major, interp.minor) >= (3, 7) else 12


# ---- __pycache__ files, timestamp mode, every 3.x -------------------------------

def damage_none(interp, d, src, pyc):
    pass


def damage_mtime(interp, d, src, pyc):
    set_mtime(src, T_NS + 1_000_000_000)


def damage_size(interp, d, src, pyc):
    rewrite_source(src, "v2", same_length=False)


def damage_truncated(interp, d, src, pyc):
    truncate(pyc, 10)


def damage_tiny(interp, d, src, pyc):
    truncate(pyc, 2)


def damage_empty(interp, d, src, pyc):
    truncate(pyc, 0)


def damage_header_only(interp, d, src, pyc):
    truncate(pyc, header_size(interp))


def damage_magic_garbage(interp, d, src, pyc):
    patch(pyc, 0, b"XX\r\n")


def damage_other_version(interp, d, src, pyc):
    other = 3413 if interp.magic != 3413 else 3425  # 3.8's or 3.9's final magic
    patch(pyc, 0, struct.pack("<H", other) + b"\r\n")


def damage_orphan(interp, d, src, pyc):
    os.unlink(src)


def damage_symlinked_source(interp, d, src, pyc):
    elsewhere = os.path.join(os.path.dirname(d), "elsewhere.py")
    shutil.move(src, elsewhere)
    os.symlink(elsewhere, src)


TIMESTAMP_SCENARIOS = [
    # name, damage, (status, reason), CPython's outcome
    ("fresh", damage_none, ("fresh", ""), "cache"),
    ("mtime", damage_mtime, ("stale", "mtime"), "source"),
    ("size", damage_size, ("stale", "size"), "source"),
    ("truncated", damage_truncated, ("stale", "truncated"), "source"),
    ("tiny", damage_tiny, ("stale", "truncated"), "source"),
    ("empty-file", damage_empty, ("stale", "truncated"), "source"),
    ("header-only", damage_header_only, ("corrupt", "empty"), "error"),
    ("magic-garbage", damage_magic_garbage, ("stale", "magic"), "source"),
    ("other-version", damage_other_version, ("stale", "tag-mismatch"), "source"),
    ("orphan", damage_orphan, ("orphan", "no-source"), "notfound"),
    ("symlinked-source", damage_symlinked_source, ("fresh", ""), "cache"),
]


@pytest.mark.parametrize("name,damage,expected,outcome", TIMESTAMP_SCENARIOS,
                         ids=[s[0] for s in TIMESTAMP_SCENARIOS])
def test_timestamp_pyc(pycache, interp3, module, name, damage, expected, outcome):
    d, src = module
    pyc = compile_source(interp3, src)
    assert os.path.dirname(pyc).endswith("__pycache__")
    damage(interp3, d, src, pyc)
    obj = inspect(pycache, pyc)
    assert (obj["status"], reason_of(obj)) == expected
    got, _ = cpython_import(interp3, d, "mod")
    assert got == outcome


def test_same_stamp_new_content_is_loaded(pycache, interp3, module):
    """Timestamp pycs cannot see an edit that keeps mtime and size: CPython
    loads the old code, and pycache says fresh, as CPython decides."""
    d, src = module
    pyc = compile_source(interp3, src)
    rewrite_source(src, "v2", same_length=True)
    assert inspect(pycache, pyc)["status"] == "fresh"
    got, printed = cpython_import(interp3, d, "mod")
    assert (got, printed.strip()) == ("cache", "v1")


@pytest.mark.parametrize("opt", [1, 2])
def test_optimized_levels(pycache, interp3, module, opt):
    if (interp3.major, interp3.minor) < (3, 5):
        pytest.skip("opt-N names are 3.5+")
    d, src = module
    pyc = compile_source(interp3, src, optimize=opt)
    assert pyc.endswith(".opt-%d.pyc" % opt)
    obj = inspect(pycache, pyc)
    assert obj["status"] == "fresh" and obj["opt"] == opt
    flags = ["-O"] if opt == 1 else ["-OO"]
    assert cpython_import(interp3, d, "mod", flags=flags)[0] == "cache"
    damage_mtime(interp3, d, src, pyc)
    assert (inspect(pycache, pyc)["status"]) == "stale"
    assert cpython_import(interp3, d, "mod", flags=flags)[0] == "source"


# ---- 3.7+ flags and hash-based pycs ---------------------------------------------

def test_bad_flags(pycache, interp37, module):
    d, src = module
    pyc = compile_source(interp37, src)
    patch(pyc, 4, struct.pack("<I", 4))
    obj = inspect(pycache, pyc)
    assert (obj["status"], obj["reason"]) == ("stale", "flags")
    assert cpython_import(interp37, d, "mod")[0] == "source"


def test_flags_two_is_a_timestamp_pyc(pycache, interp37, module):
    """_classify_pyc only rejects bits beyond 0b11; flags == 0b10 without the
    hash bit is read as a timestamp pyc."""
    d, src = module
    pyc = compile_source(interp37, src)
    patch(pyc, 4, struct.pack("<I", 2))
    obj = inspect(pycache, pyc)
    assert obj["status"] == "fresh" and obj["mode"] == "timestamp"
    assert cpython_import(interp37, d, "mod")[0] == "cache"


HASH_SCENARIOS = [
    # mode, edit the source?, --check-hash-based-pycs, (status, reason), outcome, printed
    ("checked-hash", False, None, ("fresh", ""), "cache", "v1"),
    ("checked-hash", True, None, ("stale", "hash"), "source", "v2"),
    ("unchecked-hash", False, None, ("fresh", "unchecked"), "cache", "v1"),
    ("unchecked-hash", True, None, ("stale-used", "hash"), "cache", "v1"),
    ("unchecked-hash", True, "always", ("stale", "hash"), "source", "v2"),
    ("checked-hash", True, "never", ("stale-used", "hash"), "cache", "v1"),
    ("checked-hash", True, "default", ("stale", "hash"), "source", "v2"),
]


@pytest.mark.parametrize("mode,edit,check,expected,outcome,printed", HASH_SCENARIOS,
                         ids=["%s-%s-%s" % (s[0], "edited" if s[1] else "same", s[2] or "default")
                              for s in HASH_SCENARIOS])
def test_hash_pyc(pycache, interp37, module, mode, edit, check, expected, outcome, printed):
    d, src = module
    pyc = compile_source(interp37, src, mode=mode)
    if edit:
        rewrite_source(src, "v2", same_length=True)
    args = ["--check-hash-based-pycs", check] if check else []
    obj = inspect(pycache, pyc, *args)
    assert obj["mode"] == mode
    assert (obj["status"], reason_of(obj)) == expected
    flags = ["--check-hash-based-pycs", check] if check else []
    got, out = cpython_import(interp37, d, "mod", flags=flags)
    assert (got, out.strip()) == (outcome, printed)


# ---- --deep: bodies that make the import fail -------------------------------------

@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"", "not-code"],
                         ids=["garbage", "empty", "not-code"])
def test_deep_body(pycache, interp3, module, body):
    d, src = module
    pyc = compile_source(interp3, src)
    n = header_size(interp3)
    if body == "not-code":
        body = interp3.run("import marshal, sys; sys.stdout.buffer.write(marshal.dumps(12345))").stdout
    with open(pyc, "rb") as f:
        head = f.read(n)
    with open(pyc, "wb") as f:
        f.write(head + body)
    obj = inspect(pycache, pyc, "--deep")
    assert obj["status"] == "corrupt"
    assert reason_of(obj) in ("body", "empty")
    assert cpython_import(interp3, d, "mod")[0] == "error"


def test_deep_accepts_real_bodies(pycache, interp, module):
    d, src = module
    pyc = compile_source(interp, src)
    obj = inspect(pycache, pyc, "--deep")
    assert obj["status"] == "fresh"


# ---- legacy files beside the sources ------------------------------------------------

def test_legacy_sourceless(pycache, interp, module):
    d, src = module
    pyc = compile_source(interp, src, legacy=True)
    assert os.path.dirname(pyc) == d
    os.unlink(src)
    obj = inspect(pycache, pyc)
    assert (obj["status"], obj["kind"]) == ("sourceless", "legacy")
    assert cpython_import(interp, d, "mod") == ("sourceless", "v1\n")


def test_legacy_sourceless_truncated_breaks_import(pycache, interp, module):
    d, src = module
    pyc = compile_source(interp, src, legacy=True)
    os.unlink(src)
    truncate(pyc, header_size(interp) if interp.major == 3 else 8)
    obj = inspect(pycache, pyc)
    assert obj["status"] == "corrupt"
    assert cpython_import(interp, d, "mod")[0] == "error"


def test_legacy_beside_source(pycache, interp, module):
    """3.2+ ignore a legacy pyc when the source is there; 2.7 uses it as the
    source's cache (fresh, then stale once the source changes)."""
    d, src = module
    pyc = compile_source(interp, src, legacy=True)
    obj = inspect(pycache, pyc)
    if interp.major == 2:
        assert obj["status"] == "fresh"
        assert cpython_import(interp, d, "mod")[0] == "cache"
        damage_mtime(interp, d, src, pyc)
        assert (inspect(pycache, pyc)["status"], inspect(pycache, pyc)["reason"]) == ("stale", "mtime")
        assert cpython_import(interp, d, "mod")[0] == "source"
    else:
        assert (obj["status"], obj["reason"]) == ("shadowed", "source")
        assert cpython_import(interp, d, "mod")[0] == "source"


def test_legacy_shadowed_by_package(pycache, interp, module):
    d, src = module
    pyc = compile_source(interp, src, legacy=True)
    os.unlink(src)
    os.mkdir(os.path.join(d, "mod"))
    make_module(os.path.join(d, "mod"), "__init__", "package")
    obj = inspect(pycache, pyc)
    assert (obj["status"], obj["reason"]) == ("shadowed", "package")
    got, printed = cpython_import(interp, d, "mod")
    assert printed.strip() == "package"


def test_legacy_pyo_is_never_read_from_35(pycache, interp3, module):
    d, src = module
    pyc = compile_source(interp3, src, legacy=True)
    pyo = pyc[:-1] + "o"
    os.rename(pyc, pyo)
    os.unlink(src)
    obj = inspect(pycache, pyo)
    assert (obj["status"], obj["reason"]) == ("shadowed", "pyo")
    assert cpython_import(interp3, d, "mod", flags=["-O"])[0] == "notfound"


# ---- Python 2.7's own rules -----------------------------------------------------------

def test_py27_ignores_size(pycache, interp2, module):
    """2.7's check_compiled_module compares only the magic and the mtime."""
    d, src = module
    pyc = compile_source(interp2, src)
    rewrite_source(src, "v2", same_length=False)
    assert inspect(pycache, pyc)["status"] == "fresh"
    got, printed = cpython_import(interp2, d, "mod")
    assert (got, printed.strip()) == ("cache", "v1")


def test_py27_pyo(pycache, interp2, module):
    d, src = module
    pyo = compile_source(interp2, src, optimize=1)
    assert pyo.endswith(".pyo")
    assert inspect(pycache, pyo)["status"] == "fresh"
    assert cpython_import(interp2, d, "mod", flags=["-O"])[0] == "cache"


# ---- leftovers and prefix trees ---------------------------------------------------------

def test_temp_file(pycache, interp3, module):
    d, src = module
    pyc = compile_source(interp3, src)
    tmp = pyc + ".140234567890"
    shutil.copy(pyc, tmp)
    obj = inspect(pycache, tmp)
    assert obj["status"] == "temp"


def test_prefix_tree(pycache, interp38, module, tmp_path):
    d, src = module
    prefix = str(tmp_path / "prefix")
    interp38.run("import compileall, sys; compileall.compile_file(sys.argv[1], quiet=1)",
                 src, flags=["-X", "pycache_prefix=" + prefix])
    pyc = prefix + os.path.dirname(os.path.abspath(src)) + "/mod.%s.pyc" % interp38.tag
    assert os.path.exists(pyc)
    obj = inspect(pycache, pyc, "--prefix", prefix)
    assert (obj["status"], obj["kind"]) == ("fresh", "prefix")
    assert cpython_import(interp38, d, "mod", prefix=prefix)[0] == "cache"
    os.unlink(src)
    obj = inspect(pycache, pyc, "--prefix", prefix)
    assert obj["status"] == "orphan"


def test_legacy_dotted_name_is_never_imported(pycache, interp3, module):
    """A stray NAME.TAG.pyc beside the sources (what a prefix of '/' leaves
    behind) is no module name: no import ever reads it."""
    d, src = module
    pyc = compile_source(interp3, src, cfile=os.path.join(d, "mod.%s.pyc" % interp3.tag))
    os.unlink(src)
    obj = inspect(pycache, pyc)
    assert (obj["status"], obj["reason"]) == ("shadowed", "name")
    assert cpython_import(interp3, d, "mod")[0] == "notfound"
