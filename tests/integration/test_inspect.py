"""`pycache inspect` against cache files written by the real interpreters.

Each interpreter compiles a source itself (py_compile, in every invalidation
mode and optimization level it supports); `pycache inspect --json` must then
report that interpreter's version, magic and mode, and exactly the header
fields it wrote (read back here with struct). Damaged files must give a clean
verdict -- corrupt exactly when the interpreter's own import fails -- and
unreadable files an error line and exit 3.
"""

import datetime
import os
import shutil
import stat
import struct
import subprocess
import tempfile

import pytest

MODES = ["timestamp", "checked-hash", "unchecked-hash"]
STATUSES = {"fresh", "stale", "stale-used", "orphan", "sourceless", "shadowed",
            "corrupt", "temp", "foreign"}
ACTIONABLE = {"stale-used", "sourceless", "orphan", "corrupt"}

# Compiles sys.argv[1] with py_compile; prints the cache file's path.
# 3.x: py_compile.compile(optimize=N[, invalidation_mode=...]) writes
# cache_from_source(path, optimization=N or ''). 2.7: NAME.pyc, or NAME.pyo
# under -O/-OO (the caller passes the flag).
COMPILE = r"""
import sys, py_compile
src, mode, opt = sys.argv[1], sys.argv[2], int(sys.argv[3])
if sys.version_info[0] == 2:
    py_compile.compile(src, doraise=True)
    sys.stdout.write(src + ('c' if __debug__ else 'o'))
else:
    kw = {}
    if sys.version_info >= (3, 7):
        # Explicit, so SOURCE_DATE_EPOCH in the environment changes nothing.
        kw['invalidation_mode'] = getattr(py_compile.PycInvalidationMode,
                                          mode.upper().replace('-', '_'))
    sys.stdout.write(py_compile.compile(src, doraise=True, optimize=opt, **kw))
"""


def compile_with(interp, src, mode="timestamp", opt=0):
    flags = []
    if interp.major == 2 and opt:
        flags = ["-O"] if opt == 1 else ["-OO"]
    r = interp.run(COMPILE, src, mode, str(opt), flags=flags)
    return r.stdout.decode()


def read_header(interp, data):
    """The header fields as the interpreter wrote them (pycache.h section 3)."""
    h = {"magic_bytes": data[:4], "flags": None, "mtime": None, "source_size": None,
         "hash": None}
    if (interp.major, interp.minor) >= (3, 7):
        h["header_size"] = 16
        (h["flags"],) = struct.unpack("<I", data[4:8])
        if h["flags"] & 1:
            h["mode"] = "checked-hash" if h["flags"] & 2 else "unchecked-hash"
            h["hash"] = data[8:16].hex()
        else:
            h["mode"] = "timestamp"
            h["mtime"], h["source_size"] = struct.unpack("<II", data[8:16])
    elif (interp.major, interp.minor) >= (3, 3):
        h["header_size"] = 12
        h["mode"] = "timestamp"
        h["mtime"], h["source_size"] = struct.unpack("<II", data[4:12])
    else:
        h["header_size"] = 8
        h["mode"] = "timestamp"
        (h["mtime"],) = struct.unpack("<I", data[4:8])
    return h


def only_record(r):
    records = r.json()
    assert len(records) == 1, r.stdout
    return records[0]


# ---- what the interpreters wrote --------------------------------------------------

@pytest.mark.parametrize("opt", [0, 1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_header_fields_match_what_the_interpreter_wrote(pycache, interp, tmp_path,
                                                        mode, opt):
    if mode != "timestamp" and (interp.major, interp.minor) < (3, 7):
        pytest.skip("hash-based pycs are 3.7+ (PEP 552)")
    src = str(tmp_path / "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n" + "# padding\n" * opt)
    cfile = compile_with(interp, src, mode, opt)
    with open(cfile, "rb") as f:
        data = f.read()
    h = read_header(interp, data)
    assert h["mode"] == mode

    r = pycache("inspect", "--json", cfile)
    assert r.stderr == ""
    rec = only_record(r)

    assert rec["path"] == cfile
    assert rec["implementation"] == interp.implementation
    assert rec["python"] == interp.short
    assert rec["tag"] == interp.tag            # None for 2.7: no cache tag
    assert rec["magic"] == interp.magic
    assert rec["magic_hex"] == interp.magic_bytes.hex() == h["magic_bytes"].hex()
    assert rec["header_size"] == h["header_size"]
    assert rec["mode"] == mode
    assert rec["flags"] == h["flags"]
    assert rec["mtime"] == h["mtime"]
    assert rec["source_size"] == h["source_size"]
    assert rec["hash"] == h["hash"]
    assert rec["size"] == len(data)
    if h["mtime"] is not None:
        utc = datetime.datetime.fromtimestamp(h["mtime"], datetime.timezone.utc)
        assert rec["mtime_utc"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        assert rec["mtime_utc"] is None

    if interp.major == 2:
        assert rec["kind"] == "legacy"
        # .pyo is written by both -O and -OO: the level is unknown.
        assert rec["opt"] == (0 if opt == 0 else None)
    else:
        assert rec["kind"] == "pycache"
        assert rec["opt"] == opt
    assert rec["source"] == src
    assert rec["source_exists"] is True

    # Just compiled from an unchanged source: what import would load.
    assert rec["status"] == "fresh"
    assert rec["reason"] == ("unchecked" if mode == "unchecked-hash" else None)
    assert r.returncode == 0

    # Every DESIGN.md field is present, unknown or not.
    for key in ("path", "status", "reason", "source", "kind", "implementation",
                "python", "tag", "opt", "magic", "mode", "mtime", "source_size",
                "hash", "size"):
        assert key in rec


def test_human_block(pycache, interp, tmp_path):
    src = str(tmp_path / "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n")
    cfile = compile_with(interp, src)
    r = pycache("inspect", cfile)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == cfile
    # "  LABEL        VALUE": labels padded to 12 columns.
    fields = {line[2:14].strip(): line[15:] for line in lines[1:]}
    assert fields["status"] == "fresh"
    assert fields["magic"].startswith("%d (%s)" % (interp.magic, interp.magic_bytes.hex()))
    assert fields["python"].startswith("cpython %s" % interp.short)
    assert fields["source"] == src


def test_several_files_one_record_each_in_order(pycache, interp3, tmp_path):
    names = []
    for n in ("b", "a", "c"):
        src = str(tmp_path / (n + ".py"))
        with open(src, "w") as f:
            f.write("%s = 1\n" % n)
        names.append(compile_with(interp3, src))
    r = pycache("inspect", "--json", *names)
    assert r.returncode == 0
    assert [rec["path"] for rec in r.json()] == names
    human = pycache("inspect", *names)
    assert human.stdout.count("\n\n") == 2   # blocks separated by one blank line


# ---- --check-hash-based-pycs, judged by the interpreter itself -------------------

@pytest.mark.parametrize("when", ["default", "always", "never"])
@pytest.mark.parametrize("mode", ["checked-hash", "unchecked-hash"])
def test_check_hash_based_pycs_as_the_interpreter_decides(pycache, interp37, tmp_path,
                                                          mode, when):
    src = str(tmp_path / "mod.py")
    with open(src, "w") as f:
        f.write("x = 'old'\n")
    cfile = compile_with(interp37, src, mode)
    with open(src, "w") as f:
        f.write("x = 'new'\n")

    r = pycache("inspect", "--json", "--check-hash-based-pycs", when, cfile)
    rec = only_record(r)
    # The oracle: what this interpreter imports with that option (-B: it
    # must not rewrite the pyc).
    out = interp37.run("import mod, sys; sys.stdout.write(mod.x)",
                       flags=["-B", "--check-hash-based-pycs", when],
                       cwd=str(tmp_path)).stdout.decode()
    if out == "old":
        assert (rec["status"], rec["reason"]) == ("stale-used", "hash")
        assert r.returncode == 1
    else:
        assert (rec["status"], rec["reason"]) == ("stale", "hash")
        assert r.returncode == 0
    assert r.stderr == ""


# ---- damaged files ----------------------------------------------------------------

def damaged_variants(interp, data):
    h = read_header(interp, data)["header_size"]
    out = {
        "empty": b"",
        "two-bytes": data[:2],
        "magic-only": data[:4],
        "short-header": data[:h - 2],
        "header-only": data[:h],
        "one-body-byte": data[:h + 1],
        "garbage": b"\x00garbage\xff" * 8,
        "wrong-magic": b"\x01\x02\r\n" + data[4:],
    }
    if h == 16:
        out["bad-flags"] = data[:4] + struct.pack("<I", 4) + data[8:]
    return out


def test_damaged_files_give_a_clean_verdict(pycache, interp, tmp_path):
    """With --deep, corrupt exactly when the interpreter's import of it
    fails; without, corrupt only when it fails (the body is not read)."""
    src = str(tmp_path / "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n")
    cfile = compile_with(interp, src)
    with open(cfile, "rb") as f:
        good = f.read()
    for what, data in damaged_variants(interp, good).items():
        with open(cfile, "wb") as f:
            f.write(data)
        st = os.stat(src)
        shallow = pycache("inspect", "--json", cfile)
        assert shallow.stderr == "", what
        assert only_record(shallow)["status"] in STATUSES, what
        r = pycache("inspect", "--json", "--deep", cfile)
        assert r.stderr == "", what
        rec = only_record(r)
        assert rec["status"] in STATUSES, what
        assert rec["size"] == len(data), what
        expected_exit = 1 if rec["status"] in ACTIONABLE else 0
        assert r.returncode == expected_exit, what
        if len(data) >= 4:
            assert rec["magic_hex"] == data[:4].hex(), what
            assert rec["magic"] == struct.unpack("<H", data[:2])[0], what
        else:
            assert rec["magic"] is None and rec["magic_hex"] is None, what
        if what in ("garbage", "wrong-magic"):
            assert rec["python"] is None and rec["mode"] is None, what

        imported = interp.run("import mod", flags=["-B"], cwd=str(tmp_path),
                              check=False)
        assert (rec["status"] == "corrupt") == (imported.returncode != 0), \
            (what, rec, imported.stderr)
        if only_record(shallow)["status"] == "corrupt":
            assert imported.returncode != 0, what
        # -B: the interpreter left the file as it was.
        with open(cfile, "rb") as f:
            assert f.read() == data
        assert os.stat(src).st_mtime == st.st_mtime


@pytest.mark.parametrize("content", [b"", b"\x00", b"hello world\n" * 3])
def test_not_a_cache_file_name(pycache, tmp_path, content):
    path = str(tmp_path / "notes.txt")
    with open(path, "wb") as f:
        f.write(content)
    r = pycache("inspect", "--json", path)
    assert r.stderr == ""
    rec = only_record(r)
    assert rec["kind"] is None and rec["opt"] is None and rec["source"] is None
    assert rec["status"] == "foreign"
    assert r.returncode == 0


def test_deep_finds_a_damaged_body(pycache, interp, tmp_path):
    src = str(tmp_path / "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n")
    cfile = compile_with(interp, src)
    with open(cfile, "rb") as f:
        data = f.read()
    h = read_header(interp, data)["header_size"]
    with open(cfile, "wb") as f:
        f.write(data[:h] + data[h:h + 3])   # a code object cut short
    shallow = only_record(pycache("inspect", "--json", cfile))
    r = pycache("inspect", "--json", "--deep", cfile)
    deep = only_record(r)
    imported = interp.run("import mod", flags=["-B"], cwd=str(tmp_path), check=False)
    assert imported.returncode != 0      # the interpreter fails on it
    assert shallow["status"] == "fresh"  # the header alone looks fine
    assert (deep["status"], deep["reason"]) == ("corrupt", "body")
    assert r.returncode == 1


# ---- unreadable files ---------------------------------------------------------------

def run_unprivileged(pycache_bin, args, cwd):
    """Runs pycache so that permission bits apply: as nobody when root."""
    cmd = [pycache_bin] + args
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("root without setpriv: permissions cannot be tested")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


@pytest.fixture
def open_dir():
    """A directory every user may enter (pytest's tmp_path is 0700 root's)."""
    d = tempfile.mkdtemp(prefix="pycache-inspect-")
    os.chmod(d, 0o755)
    yield d
    for root, dirs, files in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
    shutil.rmtree(d)


def test_unreadable_file_is_an_error_and_the_rest_goes_on(pycache_bin, interp3, open_dir):
    if not os.access(pycache_bin, os.X_OK):
        pytest.skip("binary not executable")
    src = os.path.join(open_dir, "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n")
    cfile = compile_with(interp3, src)
    os.chmod(os.path.dirname(cfile), 0o755)
    os.chmod(cfile, 0o644)
    locked = os.path.join(open_dir, "locked.pyc")
    shutil.copy(cfile, locked)
    os.chmod(locked, 0)
    rel = os.path.relpath(cfile, open_dir)

    r = run_unprivileged(pycache_bin, ["inspect", "--json", "locked.pyc", rel], open_dir)
    assert r.returncode == 3
    assert r.stderr.decode() == "pycache inspect: cannot open 'locked.pyc': Permission denied\n"
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 1 and '"path": "%s"' % rel in lines[0]

    # A missing file and a directory: the same, one line each.
    r = run_unprivileged(pycache_bin, ["inspect", "missing.pyc", "."], open_dir)
    assert r.returncode == 3
    assert r.stdout == b""
    assert r.stderr.decode().splitlines() == [
        "pycache inspect: cannot open 'missing.pyc': No such file or directory",
        "pycache inspect: cannot read '.': Is a directory",
    ]


def test_unreadable_wins_over_findings(pycache, tmp_path):
    garbage = str(tmp_path / "g.pyc")          # legacy, no source: corrupt
    with open(garbage, "wb") as f:
        f.write(b"junk")
    r = pycache("inspect", garbage)
    assert r.returncode == 1
    r = pycache("inspect", garbage, str(tmp_path / "missing.pyc"))
    assert r.returncode == 3
    assert len(r.stderr.splitlines()) == 1


# ---- prefix trees (3.8+) --------------------------------------------------------------

def test_prefix_tree_entry(pycache, interp38, tmp_path):
    src_dir = tmp_path / "proj"
    src_dir.mkdir()
    prefix = str(tmp_path / "prefix")
    src = str(src_dir / "mod.py")
    with open(src, "w") as f:
        f.write("x = 1\n")
    out = interp38.run(COMPILE, src, "timestamp", "0",
                       env={"PYTHONPYCACHEPREFIX": prefix}).stdout.decode()
    assert out.startswith(prefix + "/")
    r = pycache("inspect", "--json", "--prefix", prefix, out)
    rec = only_record(r)
    assert rec["kind"] == "prefix"
    assert rec["source"] == src
    assert rec["status"] == "fresh"
    # The same through the environment variable, as the interpreter reads it.
    r = pycache("inspect", "--json", out, env={"PYTHONPYCACHEPREFIX": prefix})
    assert only_record(r)["source"] == src
