"""The bytecode inside archives, judged without extracting them.

Every archive here is made by a real tool (Info-ZIP's zip, Python's zipfile
and zipapp, GNU tar with each compressor, pip wheel), and the oracle is the
real thing: the archive is extracted by the real extractor (unzip, tar,
zipfile.extractall for the `now` model) and every interpreter is asked to
import each module; for --zipimport the archive goes on sys.path. pycache's
verdict on each cache member must be what that interpreter did.
"""

import json
import re
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import pytest

from oracle import batch_import, compile_source, make_module

T_NS = 1700000000 * 10**9 + 250000000
MODULES = ["fresh_m", "edited_m", "checked_m", "unchecked_m", "gone_m"]


def run_json(pycache, *args, **kw):
    r = pycache(*args, **kw)
    return r, [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def build_tree(root, interpreters):
    """Sources compiled by every interpreter, then changed behind their
    caches' backs: edited_m grows (stale), unchecked_m changes under an
    unchecked-hash pyc (stale-used), gone_m loses its source (orphan).
    2.x keeps its NAME.pyc beside the source, where 3.x would find it as a
    sourceless module: it gets its own copy of the sources, in py2/."""
    os.makedirs(root)
    for sub, interps in (("", [i for i in interpreters if i.major >= 3]),
                         ("py2", [i for i in interpreters if i.major == 2])):
        d = os.path.join(str(root), sub)
        if not os.path.isdir(d):
            os.makedirs(d)
        for name in MODULES:
            path = make_module(d, name, name + " v1")
            # An even second with a fraction: a DOS time (2 s) keeps the
            # second, a pax header the fraction.
            os.utime(path, ns=(T_NS, T_NS))
        for interp in interps:
            for name in MODULES:
                mode = None
                if (interp.major, interp.minor) >= (3, 7):
                    mode = {"checked_m": "checked-hash",
                            "unchecked_m": "unchecked-hash"}.get(name)
                compile_source(interp, os.path.join(d, name + ".py"), mode=mode)
        # Every change lands ten seconds later, so a DOS time tells it too.
        later = T_NS // 10**9 + 10
        for name, text in (("edited_m", "edited_m v2 longer"),
                           ("unchecked_m", "unchecked_m v2!")):
            path = make_module(d, name, text)
            os.utime(path, (later, later))
        os.unlink(os.path.join(d, "gone_m.py"))
    return root


def cache_member(interp, name):
    if interp.major == 2:
        return "py2/" + name + ".pyc"
    return "__pycache__/%s.%s.pyc" % (name, interp.tag)


# What the interpreter does with its own cache file of each status, once
# the files are where it imports them from (oracle.batch_import outcomes).
EXTRACTED = {
    "fresh": {"cache"},
    "stale-used": {"cache"},
    "stale": {"source"},
    "orphan": {"notfound"},
    "sourceless": {"sourceless"},
    "corrupt": {"error"},
}


def assert_matches_imports(interpreters, verdicts, extracted, archive):
    """Every interpreter imports every module from EXTRACTED; the outcome
    must be the one its cache member's verdict predicts."""
    by_member = {v["member"]: v for v in verdicts}
    for interp in interpreters:
        where = os.path.join(str(extracted), "py2" if interp.major == 2 else "")
        result = batch_import(interp, where, MODULES)
        for name in MODULES:
            member = cache_member(interp, name)
            v = by_member[member]
            assert v["archive"] == archive and v["path"] == archive + "/" + member
            got = result[name]["outcome"]
            assert got in EXTRACTED[v["status"]], (interp.version, member, v, got,
                                                   result[name]["log"][-400:])


@pytest.fixture(scope="module")
def tree(tmp_path_factory, interpreters):
    return build_tree(tmp_path_factory.mktemp("arch") / "tree", interpreters)


def all_members(tree):
    out = []
    for dirpath, dirs, files in os.walk(str(tree)):
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(dirpath, f), str(tree)))
    return sorted(out)


ZIPPERS = {
    # Info-ZIP with its extended timestamp field (UTC mtime)
    "infozip-ut": lambda tree, out: subprocess.run(
        ["zip", "-q", "-r", out, "."], cwd=str(tree), check=True,
        env=dict(os.environ, TZ="UTC")),
    # Info-ZIP without extra fields: DOS time only (local time, 2 s)
    "infozip-dos": lambda tree, out: subprocess.run(
        ["zip", "-q", "-X", "-r", out, "."], cwd=str(tree), check=True,
        env=dict(os.environ, TZ="UTC")),
}


@pytest.mark.parametrize("zipper", sorted(ZIPPERS))
@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_zip_extracted_by_unzip(pycache, interpreters, tree, tmp_path, zipper, tz):
    archive = str(tmp_path / "app.zip")
    ZIPPERS[zipper](tree, archive)
    env = {"TZ": tz}
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive, env=env)
    assert r.returncode == 1, r.stderr  # orphan and stale-used
    statuses = {v["member"]: v["status"] for v in verdicts}
    # Zipped in UTC: a DOS time (local time, no zone) read in another zone
    # moves every source by hours, and every timestamp cache is stale; the
    # extended timestamp is UTC and moves nothing.
    shifted = zipper == "infozip-dos" and tz != "UTC"
    assert statuses[cache_member(interpreters[-1], "fresh_m")] == \
        ("stale" if shifted else "fresh")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["unzip", "-q", archive, "-d", str(out)], check=True,
                   env=dict(os.environ, TZ=tz))
    assert_matches_imports(interpreters, verdicts, out, archive)


def test_zip_extracted_by_zipfile_is_the_now_model(pycache, interpreters, tree, tmp_path):
    """zipfile.extractall sets no mtime: every timestamp pyc is stale there,
    and --extract-mtime=now says so; hash pycs keep their verdict."""
    archive = str(tmp_path / "app.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for m in all_members(tree):
            z.write(os.path.join(str(tree), m), m)
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--extract-mtime=now", archive)
    out = tmp_path / "x"
    with zipfile.ZipFile(archive) as z:
        z.extractall(str(out))
    for v in verdicts:
        if v["mode"] == "timestamp" and v["source"] is not None:
            assert v["status"] == "stale", v
    assert_matches_imports(interpreters, verdicts, out, archive)


@pytest.mark.parametrize("compress,fmt", [
    ("", "gnu"), ("--gzip", "posix"), ("--xz", "gnu"), ("--zstd", "posix"),
    ("--bzip2", "gnu")])
def test_tar_extracted_by_tar(pycache, interpreters, tree, tmp_path, compress, fmt):
    """GNU tar in each compression; the posix format keeps fractional
    mtimes (pax), which tar restores and importlib's int(st_mtime) reads."""
    archive = str(tmp_path / "app.tar")
    args = ["tar", "-c", "-f", archive, "--format=" + fmt] + ([compress] if compress else [])
    subprocess.run(args + ["."], cwd=str(tree), check=True)
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert r.returncode == 1, r.stderr
    assert all(v["path"].startswith(archive + "/") for v in verdicts)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-x", "-f", archive, "-C", str(out)], check=True)
    assert_matches_imports(interpreters, verdicts, out, archive)
    # The same verdicts as the extracted tree's (member for member).
    r2, tree_verdicts = run_json(pycache, "check", "--json", "-v", str(out))
    want = {os.path.relpath(v["path"], str(out)): (v["status"], v["reason"])
            for v in tree_verdicts}
    got = {v["member"]: (v["status"], v["reason"]) for v in verdicts}
    assert got == want


def test_epoch_clamp(pycache, interpreters, tree, tmp_path):
    """--extract-mtime=EPOCH: every mtime after EPOCH becomes EPOCH, as tar
    --clamp-mtime --mtime=@EPOCH leaves them."""
    archive = str(tmp_path / "app.tar")
    epoch = 1000000000
    subprocess.run(["tar", "-c", "-f", archive, "--clamp-mtime", "--mtime=@%d" % epoch, "."],
                   cwd=str(tree), check=True)
    plain = tmp_path / "plain.tar"
    subprocess.run(["tar", "-c", "-f", str(plain), "."], cwd=str(tree), check=True)
    _, clamped = run_json(pycache, "check", "--json", "-v", archive)
    _, modelled = run_json(pycache, "check", "--json", "-v", "--extract-mtime=%d" % epoch,
                           str(plain))
    assert [(v["member"], v["status"]) for v in clamped] == \
        [(v["member"], v["status"]) for v in modelled]
    assert any(v["mode"] == "timestamp" and v["status"] == "stale" for v in modelled)


def test_inspect_member(pycache, interpreters, tree, tmp_path):
    archive = str(tmp_path / "app.tar.gz")
    subprocess.run(["tar", "-czf", archive, "."], cwd=str(tree), check=True)
    newest = interpreters[-1]
    member = cache_member(newest, "unchecked_m")
    r = pycache("inspect", "--json", archive, member)
    assert r.returncode == 1, r.stderr  # stale-used
    (v,) = r.json()
    assert v["status"] == "stale-used" and v["member"] == member and v["archive"] == archive
    assert v["source"] == archive + "/unchecked_m.py"
    r = pycache("inspect", archive, "no/such.pyc")
    assert r.returncode == 3 and "no cache member 'no/such.pyc'" in r.stderr


def test_stats_of_an_archive(pycache, interpreters, tree, tmp_path):
    archive = str(tmp_path / "app.zip")
    subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
    r = pycache("stats", "--json", archive)
    assert r.returncode == 0, r.stderr
    total = [row for row in r.json() if row["group"] == "total"][0]
    assert total["files"] == len({cache_member(i, n) for i in interpreters for n in MODULES})


def test_not_an_archive_is_a_file(pycache, tmp_path):
    """A plain file root is not taken for an archive: a gzip of a source
    holds no tar."""
    p = tmp_path / "m.py.gz"
    subprocess.run(["sh", "-c", "echo 'x=1' | gzip > %s" % p], check=True)
    r = pycache("check", str(p))
    assert r.returncode == 0 and "0 cache files" in r.stdout, r.stderr


def test_other_commands_refuse_archives(pycache, tmp_path, tree):
    archive = str(tmp_path / "app.zip")
    subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
    before = open(archive, "rb").read()
    for cmd in ("prune", "clean"):
        r = pycache(cmd, archive)
        assert r.returncode == 3 and "cannot work on archive" in r.stderr, (cmd, r.stderr)
    assert open(archive, "rb").read() == before


# ---- --zipimport: the archive on sys.path ------------------------------------

_ZIP_ORACLE = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
out = {}
for name in sys.argv[2:]:
    try:
        m = __import__(name)
        out[name] = ["loaded", m.__file__]
    except ImportError as e:
        out[name] = ["notfound" if "can't find module" in str(e) or "No module named" in str(e)
                     else "error", str(e)]
    except Exception as e:
        out[name] = ["error", "%s: %s" % (type(e).__name__, e)]
sys.stdout.write("\n@@" + json.dumps(out))
"""

ZIP_CASES = ["fresh_z", "edited_z", "sizeonly_z", "nosrc_z", "trunc_z", "badmagic_z",
             "badmagic_nosrc_z", "checked_z", "unchecked_z", "empty_z"]


def zipimport_tree(root, interp):
    """NAME.pyc beside NAME.py, compiled by INTERP, then damaged per case."""
    os.makedirs(root)
    d = str(root)
    for name in ZIP_CASES:
        path = make_module(d, name, name + " v1")
        os.utime(path, ns=(T_NS, T_NS))
        mode = None
        if (interp.major, interp.minor) >= (3, 7):
            mode = {"checked_z": "checked-hash", "unchecked_z": "unchecked-hash"}.get(name)
        compile_source(interp, path, cfile=os.path.join(d, name + ".pyc"), mode=mode)
    later = T_NS // 10**9 + 10

    def edit(name, text, keep_time=False):
        path = make_module(d, name, text)
        if keep_time:
            os.utime(path, ns=(T_NS, T_NS))
        else:
            os.utime(path, (later, later))
    edit("edited_z", "edited_z v2 longer")
    edit("sizeonly_z", "sizeonly_z v2 longer", keep_time=True)
    edit("unchecked_z", "unchecked_z v2!")
    for name in ("nosrc_z", "badmagic_nosrc_z"):
        os.unlink(os.path.join(d, name + ".py"))
    with open(os.path.join(d, "trunc_z.pyc"), "r+b") as f:
        f.truncate(6)
    for name in ("badmagic_z", "badmagic_nosrc_z"):
        with open(os.path.join(d, name + ".pyc"), "r+b") as f:
            f.write(b"\x00\x00\r\n")
    hlen = 8 if interp.major == 2 else 12 if interp.minor < 7 else 16
    with open(os.path.join(d, "empty_z.pyc"), "r+b") as f:
        f.truncate(hlen)
    # A __pycache__ entry: zipimport never reads one.
    compile_source(interp, os.path.join(d, "fresh_z.py")) if interp.major == 3 else None
    return root


def zipimport_outcome(outcome):
    kind, detail = outcome
    if kind == "loaded":
        return "pyc" if detail.endswith(".pyc") else "py"
    return "fail"


ZIPIMPORT = {
    "fresh": "pyc", "stale-used": "pyc", "sourceless": "pyc",
    "stale": "py", "corrupt": "fail",
}


@pytest.mark.parametrize("maker", ["infozip", "zipfile"])
def test_zipimport_as_each_interpreter(pycache, interp, tmp_path, maker):
    tree = zipimport_tree(tmp_path / "t", interp)
    archive = str(tmp_path / "lib.zip")
    if maker == "infozip":
        subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
    else:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for m in all_members(tree):
                z.write(os.path.join(str(tree), m), m)
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--zipimport", archive)
    assert r.returncode in (0, 1), r.stderr
    by_member = {v["member"]: v for v in verdicts}
    printed = interp.run(_ZIP_ORACLE, archive, *ZIP_CASES).stdout.decode()
    got = json.loads(printed.rsplit("\n@@", 1)[1])
    for name in ZIP_CASES:
        v = by_member[name + ".pyc"]
        assert zipimport_outcome(got[name]) == ZIPIMPORT[v["status"]], (name, v, got[name])
    for m, v in by_member.items():
        if m.startswith("__pycache__/"):
            assert (v["status"], v["reason"]) == ("shadowed", "zipimport")
    # The size is compared from 3.8 (Lib/zipimport.py); 2.7-3.7 load the
    # old code.
    assert by_member["sizeonly_z.pyc"]["status"] == (
        "stale" if (interp.major, interp.minor) >= (3, 8) else "fresh")


def test_zipimport_reads_dos_times_in_the_local_zone(pycache, interp, tmp_path):
    """zipimport turns a member's DOS date and time into an mtime with
    mktime (Lib/zipimport.py _parse_dostime, 3.8+; Modules/zipimport.c
    parse_dostime, 2.7-3.7), so the zone of the importing process moves
    every source: zipped in UTC and imported in New York, each timestamp
    pyc meets a source hours away and the source is used instead. pycache
    reads the DOS time the same way, under the same TZ."""
    tree = zipimport_tree(tmp_path / "t", interp)
    archive = str(tmp_path / "lib.zip")
    subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True,
                   env=dict(os.environ, TZ="UTC"))
    tz = {"TZ": "America/New_York"}
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--zipimport", archive, env=tz)
    assert r.returncode in (0, 1), r.stderr
    by_member = {v["member"]: v for v in verdicts}
    printed = interp.run(_ZIP_ORACLE, archive, *ZIP_CASES, env=tz).stdout.decode()
    got = json.loads(printed.rsplit("\n@@", 1)[1])
    for name in ZIP_CASES:
        v = by_member[name + ".pyc"]
        assert zipimport_outcome(got[name]) == ZIPIMPORT[v["status"]], (name, v, got[name])
    # The shift is real: the module that is fresh in UTC is not here.
    assert by_member["fresh_z.pyc"]["status"] == "stale"
    assert zipimport_outcome(got["fresh_z"]) == "py"


_ZIP_OPENS = r"""
import sys, zipimport
try:
    zipimport.zipimporter(sys.argv[1])
    sys.stdout.write("\n@@opens")
except Exception as e:
    sys.stdout.write("\n@@%s: %s" % (type(e).__name__, e))
"""


def zip_variant(archive, variant, tree):
    if variant == "comment":  # a trailing archive comment
        subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
        subprocess.run(["zip", "-q", "-z", archive], input=b"built by CI\n", check=True)
    elif variant == "zip64":  # Info-ZIP's forced zip64: 0xFFFFFFFF in the 32-bit fields
        subprocess.run(["zip", "-q", "-fz", "-r", archive, "."], cwd=str(tree), check=True)
    elif variant == "zip64-entries":
        # Entries whose 32-bit sizes say "in the zip64 extra" behind a plain
        # end record (what pycache writes for zipimport, and streaming
        # writers): every version opens it, but only 3.13 reads the sizes.
        subprocess.run(["zip", "-q", "-fz", "-r", archive, "."], cwd=str(tree), check=True)
        data = open(archive, "rb").read()
        end = data.rfind(b"PK\5\6")
        rec = data[end - 76:end - 20]
        assert rec[:4] == b"PK\6\6"
        count, size, offset = struct.unpack_from("<QQQ", rec, 32)
        tail = b"PK\5\6" + struct.pack("<HHHHIIH", 0, 0, count, count, size, offset, 0)
        open(archive, "wb").write(data[:end - 76] + tail)
    elif variant == "count":  # an end record counting one entry more than there are
        subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
        data = bytearray(open(archive, "rb").read())
        end = data.rfind(b"PK\5\6")
        for off in (8, 10):
            struct.pack_into("<H", data, end + off, struct.unpack_from("<H", data, end + off)[0] + 1)
        open(archive, "wb").write(bytes(data))
    else:  # "prefix": a zipapp's "#!" line in front, which every version reads
        subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
        data = open(archive, "rb").read()
        open(archive, "wb").write(b"#!/usr/bin/env python3\n" + data)


@pytest.mark.parametrize("variant", ["comment", "zip64", "zip64-entries", "count", "prefix"])
def test_zip_zipimport_cannot_open(pycache, interp, tmp_path, variant):
    """Whether zipimport of a version opens the archive at all: when it does
    not, no module in it is imported and every cache of that version is
    shadowed (zipimport-unreadable); when it does, the usual verdicts."""
    tree = zipimport_tree(tmp_path / "t", interp)
    archive = str(tmp_path / "lib.zip")
    zip_variant(archive, variant, tree)
    printed = interp.run(_ZIP_OPENS, archive).stdout.decode()
    opens = printed.rsplit("\n@@", 1)[1] == "opens"
    v = (interp.major, interp.minor)
    # The rules as documented, each seen in the interpreters themselves.
    assert opens == {"comment": v >= (3, 8), "zip64": v >= (3, 13), "count": v < (3, 13),
                     "prefix": True, "zip64-entries": True}[variant], printed
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--zipimport", archive)
    assert r.returncode in (0, 1), r.stderr
    by_member = {x["member"]: x for x in verdicts}
    # 3.13.0 imports struct while it reads a zip64 entry, which recurses when
    # struct is not imported yet and the archive comes first on sys.path:
    # programs have struct by then, so the oracle does too.
    oracle = "import struct\n" + _ZIP_ORACLE
    got = json.loads(interp.run(oracle, archive, *ZIP_CASES).stdout.decode()
                     .rsplit("\n@@", 1)[1])
    for name in ZIP_CASES:
        x = by_member[name + ".pyc"]
        if not opens:
            assert got[name][0] == "notfound", (name, got[name])
            if x["python"] is not None:  # a magic of no version stays what it is
                assert (x["status"], x["reason"]) == ("shadowed", "zipimport-unreadable"), x
        else:
            assert x["reason"] != "zipimport-unreadable", x
            assert zipimport_outcome(got[name]) == ZIPIMPORT[x["status"]], (name, x, got[name])
    if variant == "zip64-entries":
        # 3.8-3.12 compare the pyc's size with 0xFFFFFFFF: the cache fresh
        # elsewhere is stale there.
        assert by_member["fresh_z.pyc"]["status"] == (
            "stale" if (3, 8) <= v < (3, 13) else "fresh"), by_member["fresh_z.pyc"]


def test_zipapp_defaults_to_zipimport(pycache, interpreters, tmp_path):
    """A zipapp (python -m zipapp: a "#!" line in front of the zip) is
    judged as zipimport sees it, without being told."""
    newest = interpreters[-1]
    src = tmp_path / "app"
    src.mkdir()
    make_module(str(src), "__main__", "main")
    make_module(str(src), "helper", "helper")
    compile_source(newest, str(src / "helper.py"), cfile=str(src / "helper.pyc"))
    compile_source(newest, str(src / "helper.py"))
    out = str(tmp_path / "app.bin")
    newest.run("import zipapp, sys; zipapp.create_archive(sys.argv[1], sys.argv[2], "
               "interpreter='/usr/bin/env python3')", str(src), out)
    r, verdicts = run_json(pycache, "check", "--json", "-v", out)
    assert r.returncode == 0, r.stderr
    by = {v["member"]: (v["status"], v["reason"]) for v in verdicts}
    assert by["helper.pyc"] == ("fresh", None)
    assert all(s == ("shadowed", "zipimport") for m, s in by.items() if "__pycache__" in m)
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--extracted", out)
    by = {v["member"]: (v["status"], v["reason"]) for v in verdicts}
    assert by["helper.pyc"] == ("shadowed", "source")
    r = pycache("check", "--zipimport", str(tmp_path / "app"))
    assert r.returncode == 0


# ---- hostile and broken archives ------------------------------------------------

def small_tree(root, interp):
    os.makedirs(os.path.join(str(root), "pkg"))
    make_module(os.path.join(str(root), "pkg"), "mod", "mod")
    compile_source(interp, os.path.join(str(root), "pkg", "mod.py"))
    return root


@pytest.mark.parametrize("damage", ["truncated-zip", "truncated-tgz", "corrupt-tgz",
                                    "truncated-tar"])
def test_broken_archives_are_one_clear_error(pycache, interpreters, tmp_path, damage):
    tree = small_tree(tmp_path / "t", interpreters[-1])
    kind = damage.split("-")[1]
    archive = str(tmp_path / ("a." + kind))
    if kind == "zip":
        subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
    else:
        subprocess.run(["tar", "-c", "-f", archive] + (["-z"] if kind == "tgz" else []) +
                       ["."], cwd=str(tree), check=True)
    data = bytearray(open(archive, "rb").read())
    if damage == "truncated-tar":
        data = data[:700]  # inside the second header (a tar pads to 10 KiB)
    elif damage.startswith("truncated"):
        data = data[:len(data) // 2]
    else:
        data[40:48] = b"XXXXXXXX"
    open(archive, "wb").write(bytes(data))
    r = pycache("check", "--json", archive)
    assert r.returncode == 3, (r.stdout, r.stderr)
    (line,) = r.stderr.splitlines()
    assert line.startswith("pycache check: cannot read archive '%s': " % archive), line
    # Nothing of it is judged: the one record is the error's.
    (record,) = r.json()
    assert (record["path"], record["status"], record["reason"]) == \
        (archive, "error", "read archive")
    assert record["error"] and record["error"] in line


def test_hostile_members(pycache, interpreters, tmp_path):
    """'../x' and absolute names, duplicates and links are named, one error
    each, and never judged as if an extractor had put them somewhere."""
    import io
    import tarfile
    newest = interpreters[-1]
    tree = small_tree(tmp_path / "t", newest)
    pyc = open(os.path.join(str(tree), "pkg", "__pycache__", "mod.%s.pyc" % newest.tag),
               "rb").read()
    archive = str(tmp_path / "evil.tar")
    with tarfile.open(archive, "w") as t:
        for name in ["../x.pyc", "/etc/y.pyc", "pkg/mod.py",
                     "pkg/__pycache__/mod.%s.pyc" % newest.tag,
                     "pkg/__pycache__/mod.%s.pyc" % newest.tag]:
            ti = tarfile.TarInfo(name)
            data = pyc if name.endswith(".pyc") else b"print('mod')\n"
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("pkg/other.py")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/etc/passwd"
        t.addfile(ti)
        ti = tarfile.TarInfo("pkg/third.py")
        ti.type = tarfile.LNKTYPE
        ti.linkname = "pkg/mod.py"
        t.addfile(ti)
    r = pycache("check", "--json", "-v", archive)
    assert r.returncode == 3
    errors = r.stderr.splitlines()
    assert any("'%s/../x.pyc': unsafe name" % archive in e for e in errors), errors
    assert any("'%s//etc/y.pyc': unsafe name" % archive in e for e in errors), errors
    assert any("duplicate member name" in e for e in errors), errors
    assert any("'%s/pkg/other.py': a link member" % archive in e for e in errors), errors
    assert any("'%s/pkg/third.py': a link member" % archive in e for e in errors), errors
    judged = [v for v in r.json() if v["status"] != "error"]
    assert [v["member"] for v in judged] == ["pkg/__pycache__/mod.%s.pyc" % newest.tag]
    assert len(r.json()) - len(judged) == len(errors)


def test_encrypted_members(pycache, interpreters, tmp_path):
    tree = small_tree(tmp_path / "t", interpreters[-1])
    archive = str(tmp_path / "enc.zip")
    subprocess.run(["zip", "-q", "-r", "-P", "secret", archive, "."], cwd=str(tree),
                   check=True)
    r = pycache("check", archive)
    assert r.returncode == 3
    assert "': encrypted" in r.stderr


def test_decompression_is_capped(pycache, interpreters, tmp_path):
    """A bomb (a small archive that decompresses to far more) stops at the
    cap: PYCACHE_ARCHIVE_MAX_BYTES, 64 GiB unless set."""
    tree = small_tree(tmp_path / "t", interpreters[-1])
    with open(os.path.join(str(tree), "zeros.dat"), "wb") as f:
        f.write(b"\0" * (20 << 20))
    archive = str(tmp_path / "bomb.tar.xz")
    subprocess.run(["tar", "-c", "-J", "-f", archive, "."], cwd=str(tree), check=True)
    assert os.path.getsize(archive) < 100000
    env = {"PYCACHE_ARCHIVE_MAX_BYTES": str(1 << 20)}
    r = pycache("check", archive, env=env)
    assert r.returncode == 3 and "decompressed size limit reached" in r.stderr
    r = pycache("check", archive)
    assert r.returncode == 0, r.stderr
    # --deep reads whole cache members: the same cap.
    with open(os.path.join(str(tree), "pkg", "__pycache__", "big.%s.pyc" %
                           interpreters[-1].tag), "wb") as f:
        f.write(b"\0" * (20 << 20))
    zarchive = str(tmp_path / "bomb.zip")
    subprocess.run(["zip", "-q", "-r", zarchive, "."], cwd=str(tree), check=True)
    r = pycache("check", "--deep", zarchive, env=env)
    assert r.returncode == 3 and "decompressed size limit reached" in r.stderr


def test_zip64(pycache, interpreters, tmp_path):
    tree = small_tree(tmp_path / "t", interpreters[-1])
    archive = str(tmp_path / "z64.zip")
    subprocess.run(["zip", "-q", "-fz", "-r", archive, "."], cwd=str(tree), check=True)
    r = pycache("check", "-v", archive)
    assert r.returncode == 0 and "1 fresh" in r.stdout, (r.stdout, r.stderr)


# ---- fixing: convert into a new archive ------------------------------------------

def newest3(interpreters):
    return [i for i in interpreters if (i.major, i.minor) >= (3, 7)][-1]


def zip_past_4gib(tree, out, hole=(4 << 30) + 4096):
    """A zip whose first member, blob.bin, holds HOLE zero bytes (a hole in
    a sparse file: no disk), so that every member of TREE after it lies past
    4 GiB: zip64 offsets in the directory, a zip64 end record. Stored
    members, DOS times in UTC, written by hand (APPNOTE.TXT 4.3-4.5)."""
    records = []

    def local(name, data_len, crc, mtime, write):
        t = time.gmtime(mtime)
        dostime = t.tm_hour << 11 | t.tm_min << 5 | t.tm_sec // 2
        dosdate = (t.tm_year - 1980) << 9 | t.tm_mon << 5 | t.tm_mday
        at = f.tell()
        big = data_len >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, data_len, data_len) if big else b""
        size32 = 0xFFFFFFFF if big else data_len
        f.write(struct.pack("<4sHHHHHIIIHH", b"PK\3\4", 45, 0, 0, dostime, dosdate, crc,
                            size32, size32, len(name), len(extra)) + name + extra)
        write()
        cx = (struct.pack("<QQ", data_len, data_len) if big else b"") + \
            (struct.pack("<Q", at) if at >= 0xFFFFFFFF else b"")
        cextra = struct.pack("<HH", 1, len(cx)) + cx if cx else b""
        records.append(struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\1\2", 0x031E, 45, 0, 0, dostime, dosdate, crc,
            size32, size32, len(name), len(cextra), 0, 0, 0, 0o100644 << 16,
            0xFFFFFFFF if at >= 0xFFFFFFFF else at) + name + cextra)

    crc, zeros = 0, bytes(64 << 20)
    for _ in range(hole // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(hole % len(zeros)), crc)
    with open(out, "wb") as f:
        local(b"blob.bin", hole, crc, T_NS // 10**9, lambda: f.seek(hole, 1))
        for m in all_members(tree):
            path = os.path.join(str(tree), m)
            data = open(path, "rb").read()
            local(m.encode(), len(data), zlib.crc32(data), int(os.stat(path).st_mtime),
                  lambda: f.write(data))
        cd_at = f.tell()
        for r in records:
            f.write(r)
        cd_len, end64 = f.tell() - cd_at, f.tell()
        n = len(records)
        f.write(struct.pack("<4sQHHIIQQQQ", b"PK\6\6", 44, 45, 45, 0, 0, n, n, cd_len, cd_at))
        f.write(struct.pack("<4sIQI", b"PK\6\7", 0, end64, 1))
        f.write(struct.pack("<4sHHHHIIH", b"PK\5\6", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                            0xFFFFFFFF, 0))


def test_members_past_4gib(pycache, interpreters, tree, tmp_path):
    """Offsets past 4 GiB (zip64 fields in the directory and a zip64 end
    record) are followed without reading the 4 GiB member: the verdicts are
    the imports of the tree unzip extracts, and --zipimport knows that only
    3.13 reads such an archive."""
    archive = str(tmp_path / "big.zip")
    zip_past_4gib(tree, archive)
    assert os.stat(archive).st_blocks * 512 < 64 << 20  # sparse: no disk
    env = {"TZ": "UTC"}
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive, env=env)
    assert r.returncode == 1, r.stderr  # stale, orphan...
    assert {v["member"] for v in verdicts if v["kind"]} == \
        {m for m in all_members(tree) if m.endswith(".pyc")}
    out = tmp_path / "x"
    subprocess.run(["unzip", "-q", archive, "-x", "blob.bin", "-d", str(out)], check=True,
                   env=dict(os.environ, TZ="UTC"))
    assert_matches_imports(interpreters, verdicts, out, archive)
    r, verdicts = run_json(pycache, "check", "--json", "-v", "--zipimport", archive, env=env)
    for v in verdicts:
        if v["python"] and v["kind"] == "legacy":
            assert (v["reason"] == "zipimport-unreadable") == (v["python"] != "3.13"), v


def test_lambda_story(pycache, interpreters, tmp_path):
    """A packager writes 1980-01-01 into every member (AWS SAM does); the
    function extracts them with those dates, so every timestamp cache is
    stale on every cold start. check says so; convert --to unchecked-hash
    --ignore-mtime (the caches are stale by the packager's dates alone: their
    recorded sizes match) writes fixed.zip; extracted, every module loads
    from its cache."""
    py = [i for i in interpreters if i.short == "3.12"] or [newest3(interpreters)]
    py = py[0]
    tree = tmp_path / "fn"
    (tree / "app").mkdir(parents=True)
    names = ["handler", "util", "models"]
    for n in names:
        make_module(str(tree / "app"), n, n + " ran")
        compile_source(py, str(tree / "app" / (n + ".py")))
    make_module(str(tree / "app"), "__init__", "pkg")
    compile_source(py, str(tree / "app" / "__init__.py"))
    archive = str(tmp_path / "function.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for m in all_members(tree):
            info = zipfile.ZipInfo(m, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, open(os.path.join(str(tree), m), "rb").read())
    env = {"TZ": "UTC"}
    r, verdicts = run_json(pycache, "check", "--json", "--expect", py.short, archive, env=env)
    assert r.returncode == 1, r.stderr
    assert sorted(v["status"] for v in verdicts if v["status"] != "missing") == \
        ["stale"] * (len(names) + 1)
    assert {v["member"] for v in verdicts if v["status"] == "missing"} == \
        {"app/__pycache__/%s.%s.pyc" % (n, py.tag) for n in names + ["__init__"]}
    before = open(archive, "rb").read()
    fixed = str(tmp_path / "fixed.zip")
    # Without --ignore-mtime nothing is fresh, so nothing is converted.
    r = pycache("convert", "--to", "unchecked-hash", archive, "-o", fixed, env=env)
    assert r.returncode == 0 and "0 converted" in r.stdout, (r.stdout, r.stderr)
    r = pycache("convert", "--to", "unchecked-hash", "--ignore-mtime", archive, "-o", fixed,
                env=env)
    assert r.returncode == 0 and "4 converted" in r.stdout, (r.stdout, r.stderr)
    assert open(archive, "rb").read() == before
    r = pycache("check", "--expect", py.short, fixed, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = tmp_path / "x"
    subprocess.run(["unzip", "-q", fixed, "-d", str(out)], check=True,
                   env=dict(os.environ, TZ="UTC"))
    assert os.stat(str(out / "app" / "util.py")).st_mtime == 315532800  # 1980-01-01
    mods = ["app." + n for n in names]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
            "for m in sys.argv[2:]: importlib.import_module(m)")
    log = py.run(code, str(out), *mods, flags=["-B", "-v"]).stderr.decode()
    for n in names:
        assert re.search(r"^# code object from '?[^\n]*%s\.%s\.pyc" % (n, py.tag), log, re.M), log
        assert not re.search(r"^# bytecode is stale for 'app\.%s'" % n, log, re.M)


def test_convert_keeps_every_other_member(pycache, interpreters, tree, tmp_path):
    """Names, order, modes, mtimes and contents of every member but the
    converted headers are what they were; tar keeps its dialect and
    compression."""
    import tarfile
    archive = str(tmp_path / "app.tar.gz")
    subprocess.run(["tar", "-czf", archive, "--format=pax", "."], cwd=str(tree), check=True)
    out = str(tmp_path / "out.tar.gz")
    r = pycache("convert", "--to", "checked-hash", archive, "-o", out)
    assert r.returncode == 0, r.stderr
    assert open(out, "rb").read(2) == b"\x1f\x8b"
    with tarfile.open(archive) as a, tarfile.open(out) as b:
        ma, mb = a.getmembers(), b.getmembers()
        assert [m.name for m in ma] == [m.name for m in mb]
        for x, y in zip(ma, mb):
            assert (x.mode, x.mtime, x.type) == (y.mode, y.mtime, y.type), x.name
            if not x.isfile():
                continue
            da, db = a.extractfile(x).read(), b.extractfile(y).read()
            if da != db:
                # Only a 3.7+ header changed: same length, same body.
                assert len(da) == len(db) and da[16:] == db[16:] and da[:4] == db[:4], x.name
                assert x.name.endswith(".pyc")
    r, verdicts = run_json(pycache, "check", "--json", "-v", out)
    for v in verdicts:
        if v["python"] and tuple(map(int, v["python"].split("."))) >= (3, 7) and \
                v["status"] == "fresh":
            assert v["mode"] == "checked-hash", v


def test_convert_a_wheel_pip_installs_it(pycache, interpreters, tmp_path):
    """pip wheel of a tiny package, pycs added as a packager would (RECORD
    listing them), convert -o: RECORD has the new digests and sizes, and pip
    installs the rewritten wheel."""
    import base64
    import hashlib
    src = tmp_path / "tiny"
    (src / "tinypkg").mkdir(parents=True)
    (src / "tinypkg" / "__init__.py").write_text("x = 1\n")
    (src / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='tinypkg', version='1.0', "
        "packages=['tinypkg'])\n")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "--no-index", "-q", "-w",
                        str(tmp_path / "dist"), str(src)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("pip wheel cannot build offline here: %s" % r.stderr[-300:])
    (whl,) = list((tmp_path / "dist").iterdir())
    py = newest3(interpreters)
    unpacked = tmp_path / "u"
    with zipfile.ZipFile(str(whl)) as z:
        z.extractall(str(unpacked))
        names = z.namelist()
    init = str(unpacked / "tinypkg" / "__init__.py")
    os.utime(init, ns=(T_NS, T_NS))  # an even second: the zip's DOS time keeps it
    compile_source(py, init)
    pyc = "tinypkg/__pycache__/__init__.%s.pyc" % py.tag
    record = [n for n in names if n.endswith(".dist-info/RECORD")][0]

    def digest(data):
        return "sha256=" + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
    rec_lines = []
    for n in names[:names.index(record)] + [pyc]:
        data = open(str(unpacked / n), "rb").read()
        rec_lines.append("%s,%s,%d" % (n, digest(data), len(data)))
    rec_lines.append(record + ",,")
    (unpacked / record).write_text("\n".join(rec_lines) + "\n")
    built = str(tmp_path / whl.name)
    with zipfile.ZipFile(built, "w", zipfile.ZIP_DEFLATED) as z:
        for n in names[:names.index(record)] + [pyc, record]:
            z.write(str(unpacked / n), n)
    fixed_dir = tmp_path / "fixed"
    fixed_dir.mkdir()
    fixed = str(fixed_dir / whl.name)
    r = pycache("convert", "--to", "unchecked-hash", built, "-o", fixed)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(fixed) as z:
        assert z.namelist() == names[:names.index(record)] + [pyc, record]
        lines = z.read(record).decode().splitlines()
        for line in lines:
            path, h, size = line.rsplit(",", 2)
            if not h:
                continue
            data = z.read(path)
            assert (h, int(size)) == (digest(data), len(data)), path
        assert z.read(pyc)[4:8] == b"\x01\x00\x00\x00"
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "-q", "--target", str(target), fixed],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    installed = open(str(target / pyc), "rb").read()
    assert installed[4:8] == b"\x01\x00\x00\x00"


def test_convert_refuses_hostile_archives_and_writes_nothing(pycache, interpreters,
                                                             tmp_path):
    import io
    import tarfile
    archive = str(tmp_path / "evil.tar")
    with tarfile.open(archive, "w") as t:
        ti = tarfile.TarInfo("../x.py")
        ti.size = 2
        t.addfile(ti, io.BytesIO(b"x\n"))
    out = tmp_path / "out.tar"
    r = pycache("convert", "--to", "checked-hash", archive, "-o", str(out))
    assert r.returncode == 3 and "nothing written" in r.stderr, r.stderr
    assert not out.exists() and os.listdir(str(tmp_path)) == ["evil.tar"]


def test_convert_in_place_and_dry_run(pycache, interpreters, tmp_path):
    tree = small_tree(tmp_path / "t", newest3(interpreters))
    archive = str(tmp_path / "a.zip")
    subprocess.run(["zip", "-q", "-r", archive, "."], cwd=str(tree), check=True)
    os.chmod(archive, 0o640)
    before = open(archive, "rb").read()
    r = pycache("convert", "--to", "checked-hash", "-n", archive, "--in-place")
    assert r.returncode == 1 and "1 to convert" in r.stdout, (r.stdout, r.stderr)
    assert open(archive, "rb").read() == before
    r = pycache("convert", "--to", "checked-hash", archive, "--in-place")
    assert r.returncode == 0, r.stderr
    assert open(archive, "rb").read() != before
    assert os.stat(archive).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(str(tmp_path))) == ["a.zip", "t"]
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert [v["mode"] for v in verdicts] == ["checked-hash"]
    r = pycache("convert", "--to", "checked-hash", str(tree), "-o", "x.zip")
    assert r.returncode == 2


def test_no_source_member_is_read_for_timestamp_pycs(pycache, interpreters, tmp_path):
    """Sources encrypted, caches not: timestamp pycs are judged from the
    central directory alone (no source data read, so no error); a hash pyc
    needs its source's bytes, which cannot be read."""
    py = newest3(interpreters)
    tree = small_tree(tmp_path / "t", py)
    archive = str(tmp_path / "a.zip")
    subprocess.run(["zip", "-q", "-P", "pw", archive, "pkg/mod.py"], cwd=str(tree), check=True)
    subprocess.run(["zip", "-q", "-r", archive, "pkg/__pycache__"], cwd=str(tree), check=True)
    r = pycache("check", "-v", archive)
    assert r.returncode == 0 and "1 fresh" in r.stdout and r.stderr == "", (r.stdout, r.stderr)
    compile_source(py, str(tree / "pkg" / "mod.py"), mode="checked-hash")
    archive2 = str(tmp_path / "b.zip")
    subprocess.run(["zip", "-q", "-P", "pw", archive2, "pkg/mod.py"], cwd=str(tree), check=True)
    subprocess.run(["zip", "-q", "-r", archive2, "pkg/__pycache__"], cwd=str(tree), check=True)
    r = pycache("check", "-v", archive2)
    assert r.returncode == 3 and "unreadable" in r.stdout, (r.stdout, r.stderr)


# ---- libarchive loaded on demand (src/engine/archive_lib.c) ----------------------

def _config_h():
    with open(os.path.join(os.environ["PYCACHE_BUILD"], "gen", "config.h")) as f:
        return f.read()


ondemand = pytest.mark.skipif(
    "PYC_ONDEMAND_ARCHIVE" not in _config_h(),
    reason="this build links libarchive (the probe found no soname: no objdump?)")


@ondemand
def test_libarchive_is_not_linked(pycache_bin):
    """libarchive (and libxml2, ICU, libstdc++ behind it) is not loaded at
    start: the program does not name it, only loads it when it meets an
    archive."""
    heads = subprocess.run(["objdump", "-p", pycache_bin], stdout=subprocess.PIPE,
                           check=True).stdout.decode()
    needed = re.findall(r"NEEDED\s+(\S+)", heads)
    assert needed and not any(n.startswith(("libarchive", "libxml2", "libicu", "libstdc++"))
                              for n in needed), needed


@ondemand
def test_without_libarchive_trees_work_and_archives_say_why(pycache_bin, tmp_path):
    """In a root holding the program and the libraries it names, but not
    libarchive: a tree is checked as anywhere, and an archive (a zip, a
    gzip'd tar) is one clear error, exit 3."""
    if os.geteuid() != 0 or os.environ.get("PYCACHE_SAN") == "1" or \
            os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("needs root for chroot, and a binary that runs without its tools")
    root = tmp_path / "root"
    pkg = root / "tree" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("A = 1\n")
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", str(pkg)], check=True)
    with zipfile.ZipFile(str(root / "a.zip"), "w") as z:
        z.write(str(pkg / "m.py"), "pkg/m.py")
    subprocess.run(["tar", "czf", str(root / "a.tgz"), "-C", str(root / "tree"), "pkg"],
                   check=True)
    shutil.copy(pycache_bin, str(root / "pycache"))
    ldd = subprocess.run(["ldd", pycache_bin], stdout=subprocess.PIPE, check=True).stdout.decode()
    for lib in re.findall(r"(/\S+\.so[.\d]*)", ldd):
        assert "libarchive" not in lib
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, str(dest))
    chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")

    def run(*args):
        return subprocess.run([chroot, str(root), "/pycache"] + list(args),
                              env={"PATH": "/", "NO_COLOR": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    r = run("check", "/tree")
    assert r.returncode == 0, r.stderr
    assert b"1 cache file: 1 fresh" in r.stdout
    for archive in ("/a.zip", "/a.tgz"):
        r = run("check", archive)
        assert r.returncode == 3, (archive, r.stdout, r.stderr)
        err = r.stderr.decode()
        assert "pycache check: cannot read '%s'" % archive in err, err
        assert "pycache reads archives with libarchive, and cannot load libarchive.so" in err
