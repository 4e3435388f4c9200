"""clean and prune on an archive: a fixed copy, -o OUT or --in-place.

The oracle is the same command on the extracted tree: the archive is
extracted by the real extractor (unzip, tar), `pycache clean|prune` runs on
that tree (whose verdicts test_prune.py / test_clean.py hold to every
interpreter's import system), and the extraction of the fixed archive must
be that tree, file for file: same names, contents, modes and mtimes. Then
every member the fix kept must be the original's, in the original order,
with its metadata; a wheel's RECORD loses the dropped files' lines and pip
installs the wheel.
"""

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from oracle import compile_source, make_module

T = 1700000000  # an even second: a zip's DOS time keeps it


def newest3(interpreters):
    return [i for i in interpreters if (i.major, i.minor) >= (3, 7)][-1]


def build_tree(root, interpreters):
    """A package compiled by the newest 3.x (and 2.7, beside its own copy of
    the sources), then changed: edited_m stale, gone_m orphan, lone_m a
    sourceless legacy pyc; a foreign file in __pycache__, an empty
    __pycache__ elsewhere, a data file."""
    py = newest3(interpreters)
    py2 = [i for i in interpreters if i.major == 2]
    pkg = os.path.join(root, "pkg")
    os.makedirs(os.path.join(pkg, "sub", "__pycache__"))
    for d, interp in [(pkg, py)] + [(os.path.join(root, "py2"), i) for i in py2[:1]]:
        if not os.path.isdir(d):
            os.makedirs(d)
        for name in ("__init__", "fresh_m", "edited_m", "gone_m", "lone_m"):
            path = make_module(d, name, name)
            os.utime(path, (T, T))
            compile_source(interp, path, legacy=name == "lone_m" or interp.major == 2)
        make_module(d, "edited_m", "edited_m v2, longer")
        os.utime(os.path.join(d, "edited_m.py"), (T + 10, T + 10))
        os.unlink(os.path.join(d, "gone_m.py"))
        os.unlink(os.path.join(d, "lone_m.py"))
    with open(os.path.join(pkg, "__pycache__", "notes.txt"), "w") as f:
        f.write("not bytecode\n")
    with open(os.path.join(pkg, "data.bin"), "wb") as f:
        f.write(os.urandom(3000))
    os.chmod(os.path.join(pkg, "data.bin"), 0o600)
    os.utime(os.path.join(pkg, "data.bin"), (T, T))
    return root


def make_archive(tree, out, kind):
    if kind == "zip":
        subprocess.run(["zip", "-q", "-r", out, "."], cwd=tree, check=True,
                       env=dict(os.environ, TZ="UTC"))
    else:
        subprocess.run(["tar", "-czf", out, "--format=pax", "."], cwd=tree, check=True)


def extract(archive, kind, dest):
    os.makedirs(dest)
    if kind == "zip":
        subprocess.run(["unzip", "-q", archive, "-d", dest], check=True,
                       env=dict(os.environ, TZ="UTC"))
    else:
        subprocess.run(["tar", "-xzf", archive, "-C", dest], check=True)


def snapshot(root):
    """relative path -> (kind, mode, mtime, bytes); directories without
    their mtime (removing a file changes it)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, int(st.st_mtime),
                            open(p, "rb").read())
    return out


def members(archive, kind):
    """[(name, metadata, bytes)] in archive order."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as z:
            return [(i.filename, (i.date_time, i.external_attr >> 16, i.file_size),
                     z.read(i) if not i.is_dir() else None) for i in z.infolist()]
    with tarfile.open(archive) as t:
        return [(m.name, (m.mtime, m.mode, m.type, m.uid, m.gid, m.size),
                 t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]


@pytest.fixture(scope="module")
def tree(tmp_path_factory, interpreters):
    return build_tree(str(tmp_path_factory.mktemp("fix") / "tree"), interpreters)


CASES = [
    ("prune", []),
    ("prune", ["--sourceless"]),
    ("clean", []),
]


# A zip is rewritten by copying its members' raw bytes; one the raw copy
# cannot lay out (a split archive, a member on another disk, overlapping
# members) goes through libarchive's writer, which PYCACHE_ZIP_WRITER
# chooses for any zip: the same promises hold for both, byte identity aside.
WRITERS = [("zip", "raw"), ("zip", "libarchive"), ("tgz", "libarchive")]


@pytest.mark.parametrize("kind,writer", WRITERS, ids=["zip", "zip-libarchive-writer", "tgz"])
@pytest.mark.parametrize("command,opts", CASES, ids=["prune", "prune-sourceless", "clean"])
def test_fix_equals_the_command_on_the_extracted_tree(pycache, interpreters, tree, tmp_path,
                                                      kind, writer, command, opts):
    archive = str(tmp_path / ("a." + kind))
    make_archive(tree, archive, kind)
    before = open(archive, "rb").read()
    env = {"TZ": "UTC", "PYCACHE_ZIP_WRITER": writer}
    # The oracle: the command on the extracted tree.
    extract(archive, kind, str(tmp_path / "x"))
    r = pycache(command, *opts + [str(tmp_path / "x")], env=env)
    assert r.returncode in (0, 1), r.stderr
    tree_status, tree_summary = r.returncode, r.stdout.splitlines()[-1]
    expected = snapshot(str(tmp_path / "x"))
    # A dry run lists, writes nothing and says by its status there is work.
    out = str(tmp_path / ("out." + kind))
    r = pycache(command, "-n", *opts + [archive, "-o", out], env=env)
    assert r.returncode == 1 and "would remove" in r.stdout, (r.stdout, r.stderr)
    assert not os.path.exists(out)
    r = pycache(command, *opts + [archive, "-o", out], env=env)
    # The same counts, statuses and exit status as on the tree.
    assert r.returncode == tree_status, r.stderr
    assert r.stdout.splitlines()[-1].replace(" -> " + out, "") == tree_summary, r.stdout
    assert "kept" in tree_summary and "removed" in tree_summary
    assert open(archive, "rb").read() == before
    extract(out, kind, str(tmp_path / "y"))
    assert snapshot(str(tmp_path / "y")) == expected
    # The members kept are the original's, in order, with their metadata.
    dropped = set(m[0] for m in members(archive, kind)) - set(m[0] for m in members(out, kind))
    kept = [m for m in members(archive, kind) if m[0] not in dropped]
    got = members(out, kind)
    assert kept == got
    assert any(d.rstrip("/").endswith("sub/__pycache__") for d in dropped), dropped
    if kind == "zip":  # the writer asked for is the one that wrote: raw
        # copies keep every kept member's bytes, libarchive's writer does not
        old, new = raw_spans(archive), raw_spans(out)
        same = all(old[n] == new[n] for n in new)
        assert same == (writer == "raw"), writer
    # Nothing the command removes is left: a second pass finds nothing.
    r = pycache(command, "-n", *opts + [out, "-o", str(tmp_path / "again")], env=env)
    assert r.returncode in (0, 1) and "nothing to remove" in r.stdout, r.stdout


def test_clean_tag_filters_and_json(pycache, interpreters, tree, tmp_path):
    py = newest3(interpreters)
    archive = str(tmp_path / "a.zip")
    make_archive(tree, archive, "zip")
    out = str(tmp_path / "o.zip")
    r = pycache("clean", "--json", "--keep-tag", py.short, archive, "-o", out)
    assert r.returncode == 0, r.stderr
    rows = r.json()
    removed = {x["member"] for x in rows if x["action"] == "removed"}
    assert removed and all(x["archive"] == archive and x["path"] == archive + "/" + x["member"]
                           for x in rows)
    assert not any(py.tag in m for m in removed), removed
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert any(n.endswith(".%s.pyc" % py.tag) for n in names)
    assert not set(names) & removed


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


@pytest.mark.parametrize("writer", ["raw", "libarchive"])
def test_wheel_record_and_pip_install(pycache, interpreters, tmp_path, writer):
    """A wheel shipping stale and fresh pycs (RECORD lists them): prune -o
    drops the stale ones and their RECORD lines; pip installs the result,
    whichever writer wrote it (WRITERS above)."""
    py = newest3(interpreters)
    src = tmp_path / "src" / "tinypkg"
    src.mkdir(parents=True)
    for name in ("__init__", "a", "b"):
        p = make_module(str(src), name, name)
        os.utime(p, (T, T))
        compile_source(py, p)
    make_module(str(src), "b", "b v2 edited")  # b's pyc: stale
    os.utime(str(src / "b.py"), (T + 10, T + 10))
    files = []
    for dirpath, dirs, names in os.walk(str(tmp_path / "src")):
        dirs.sort()
        for n in sorted(names):
            files.append(os.path.relpath(os.path.join(dirpath, n), str(tmp_path / "src")))
    info = "tinypkg-1.0.dist-info/"
    meta = {info + "METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
            info + "WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                            b"Tag: py3-none-any\n"}
    whl = str(tmp_path / "tinypkg-1.0-py3-none-any.whl")
    record = []
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            data = open(str(tmp_path / "src" / f), "rb").read()
            mtime = os.stat(str(tmp_path / "src" / f)).st_mtime
            zi = zipfile.ZipInfo(f, date_time=time.gmtime(mtime)[:6])  # read with TZ=UTC
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data, zipfile.ZIP_DEFLATED)
            record.append("%s,%s,%d" % (f, digest(data), len(data)))
        for name, data in meta.items():
            z.writestr(name, data)
            record.append("%s,%s,%d" % (name, digest(data), len(data)))
        record.append(info + "RECORD,,")
        z.writestr(info + "RECORD", "\n".join(record) + "\n")
    out_dir = tmp_path / "fixed"
    out_dir.mkdir()
    fixed = str(out_dir / os.path.basename(whl))
    r = pycache("prune", whl, "-o", fixed, env={"TZ": "UTC", "PYCACHE_ZIP_WRITER": writer})
    assert r.returncode == 0 and "1 stale" in r.stdout, (r.stdout, r.stderr)
    stale = "tinypkg/__pycache__/b.%s.pyc" % py.tag
    with zipfile.ZipFile(fixed) as z:
        assert stale not in z.namelist()
        lines = z.read(info + "RECORD").decode().splitlines()
        assert [l for l in record if not l.startswith(stale + ",")] == lines
        for line in lines:
            path, h, size = line.rsplit(",", 2)
            if h:
                assert (digest(z.read(path)), len(z.read(path))) == (h, int(size)), path
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "-q", "--target", str(target), fixed],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert (target / "tinypkg" / "__pycache__" / ("a.%s.pyc" % py.tag)).exists()
    assert not (target / stale).exists()


def test_in_place_keeps_mode_and_replaces_atomically(pycache, interpreters, tree, tmp_path):
    archive = str(tmp_path / "a.zip")
    make_archive(tree, archive, "zip")
    os.chmod(archive, 0o640)
    before = open(archive, "rb").read()
    r = pycache("prune", "-n", archive, "--in-place")
    assert r.returncode == 1 and open(archive, "rb").read() == before
    r = pycache("clean", archive, "--in-place")
    assert r.returncode == 0, r.stderr
    assert os.stat(archive).st_mode & 0o777 == 0o640
    assert os.listdir(str(tmp_path)) == ["a.zip"]
    with zipfile.ZipFile(archive) as z:
        assert not [n for n in z.namelist() if n.endswith((".pyc", "sub/__pycache__/"))]


def test_refusals_write_nothing(pycache, interpreters, tree, tmp_path, open_tmp):
    archive = str(tmp_path / "a.zip")
    make_archive(tree, archive, "zip")
    before = open(archive, "rb").read()
    link = str(tmp_path / "link.zip")
    os.symlink(archive, link)
    for args, status, words in [
        (["prune", archive, "-o", archive], 2, "is the ARCHIVE itself"),
        (["clean", archive, "-o", link], 2, "is the ARCHIVE itself"),
        (["prune", archive, "-o", "x.zip", "--in-place"], 2, "cannot be combined"),
        (["prune", archive, archive, "-o", "x.zip"], 2, "exactly one ARCHIVE"),
        (["clean", "--debris", "all", archive, "-o", "x.zip"], 2, "--debris is for trees"),
        (["prune", str(tmp_path / "no" / "dir"), "-o", "x.zip"], 3, "No such file"),
        (["prune", archive, "-o", str(tmp_path / "no" / "x.zip")], 3, "No such file"),
        (["prune", archive], 3, "(-o OUT or --in-place)"),
    ]:
        r = pycache(*args, cwd=str(tmp_path))
        assert r.returncode == status and words in r.stderr, (args, r.stderr)
        assert sorted(os.listdir(str(tmp_path))) == ["a.zip", "link.zip"], args
        assert open(archive, "rb").read() == before
    # Hostile members: nothing written.
    evil = str(tmp_path / "evil.tar")
    with tarfile.open(evil, "w") as t:
        ti = tarfile.TarInfo("../x.pyc")
        ti.size = 2
        t.addfile(ti, io.BytesIO(b"x\n"))
    r = pycache("clean", evil, "-o", str(tmp_path / "o.tar"))
    assert r.returncode == 3 and "nothing written" in r.stderr, r.stderr
    assert not os.path.exists(str(tmp_path / "o.tar"))


def test_unwritable_output_directory(interpreters, tree, open_tmp):
    from conftest import run_unprivileged
    archive = os.path.join(open_tmp, "a.zip")
    make_archive(tree, archive, "zip")
    os.chmod(archive, 0o644)
    ro = os.path.join(open_tmp, "ro")
    os.mkdir(ro, 0o555)
    r = run_unprivileged("clean", archive, "-o", os.path.join(ro, "o.zip"))
    assert r.returncode == 3 and "Permission denied" in r.stderr and ro in r.stderr, r.stderr
    assert os.listdir(ro) == []


@pytest.mark.parametrize("op,errno,match", [
    ("write", "ENOSPC", ".tmp."),
    ("fsync", "EIO", ".tmp."),
    ("rename", "EIO", "o.zip"),
])
def test_faults_leave_nothing(interpreters, tree, tmp_path, op, errno, match, pycache_bin):
    shim = os.path.join(os.path.dirname(pycache_bin), "faultshim.so")
    if not os.path.exists(shim) or os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("fault shim not built or not preloadable")
    preload = [shim]
    ldd = subprocess.run(["ldd", pycache_bin], stdout=subprocess.PIPE).stdout.decode()
    for line in ldd.splitlines():
        if "libasan.so" in line and "=>" in line:
            preload.insert(0, line.split("=>")[1].split()[0])
    archive = str(tmp_path / "a.zip")
    make_archive(tree, archive, "zip")
    before = open(archive, "rb").read()
    log = str(tmp_path / "faults.log")
    env = dict(os.environ, LD_PRELOAD=":".join(preload), FAULTSHIM_OP=op,
               FAULTSHIM_ERRNO=errno, FAULTSHIM_MATCH=match, FAULTSHIM_LOG=log, NO_COLOR="1")
    for target in ("o.zip", None):
        if target is None:
            env["FAULTSHIM_MATCH"] = ".tmp." if match == ".tmp." else "a.zip"
        args = [pycache_bin, "prune", archive] + (["-o", str(tmp_path / target)] if target
                                                  else ["--in-place"])
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert os.path.getsize(log) > 0, "the fault never happened"
        os.unlink(log)
        assert r.returncode == 3 and os.strerror(getattr(__import__("errno"), errno)) \
            in r.stderr.decode(), r.stderr
        assert sorted(os.listdir(str(tmp_path))) == ["a.zip"], os.listdir(str(tmp_path))
        assert open(archive, "rb").read() == before


# ---- compile ARCHIVE --output OUT ---------------------------------------------
#
# The oracle: the fixed archive extracted by the real extractor (or put on
# sys.path for zipimport), every interpreter imports every module with
# -B -v, and must load each from the cache compile added.

MODS = ["mod_a", "mod_b", "pkg"]


def source_tree(root):
    os.makedirs(os.path.join(root, "pkg"))
    for name in ("mod_a", "mod_b"):
        p = make_module(root, name, name, padding="def f():\n    return 1\r\n")
        os.utime(p, (T + 1, T + 1))  # an odd second: the DOS time rounds it
    p = make_module(os.path.join(root, "pkg"), "__init__", "pkg")
    os.utime(p, (T, T))
    return root


def assert_loaded_from_cache(interp, where, expect_file=None):
    result = batch_import_env(interp, where)
    for name in MODS:
        got = result[name]
        assert got["outcome"] == "cache", (interp.version, name, got["log"][-600:])


def batch_import_env(interp, where):
    from oracle import batch_import
    return batch_import(interp, where, MODS)


def distinct(interpreters):
    """One interpreter per version (a version can be installed twice)."""
    seen, out = set(), []
    for i in interpreters:
        if i.short not in seen:
            seen.add(i.short)
            out.append(i)
    return out


def compile_args(interpreters):
    args = []
    for i in interpreters:
        args += ["--python", i.path]
    return args


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_compile_for_extraction(pycache, interpreters, tmp_path, kind):
    interpreters = distinct(interpreters)
    """Every interpreter's cache is added in the layout its importer reads
    (2.7: NAME.pyc beside the source); extracted by unzip / tar with the
    archive's mtimes, each module loads from it."""
    tree = source_tree(str(tmp_path / "src"))
    archive = str(tmp_path / ("a." + kind))
    make_archive(tree, archive, kind)
    before = open(archive, "rb").read()
    out = str(tmp_path / ("c." + kind))
    env = {"TZ": "UTC"}
    r = pycache("compile", "-n", *compile_args(interpreters) + [archive, "--output", out],
                env=env)
    assert r.returncode == 1 and not os.path.exists(out), (r.stdout, r.stderr)
    r = pycache("compile", *compile_args(interpreters) + [archive, "--output", out], env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert open(archive, "rb").read() == before
    names = [m[0] for m in members(out, kind)]
    for i in interpreters:
        if i.major == 2:
            assert any(n.endswith("mod_a.pyc") and "__pycache__" not in n for n in names)
        else:
            assert any(n.endswith("__pycache__/mod_a.%s.pyc" % i.tag) for n in names), names
    # The original members first in their order, each followed by its caches.
    orig = [m[0] for m in members(archive, kind)]
    assert [n for n in names if n in orig] == orig
    extract(out, kind, str(tmp_path / "x"))
    for i in interpreters:
        assert_loaded_from_cache(i, str(tmp_path / "x"))
    # Compiled again: everything is fresh, nothing added.
    again = str(tmp_path / ("d." + kind))
    r = pycache("compile", "-v", *compile_args(interpreters) + [out, "--output", again],
                env=env)
    assert r.returncode == 0 and " 0 files for" in r.stdout, r.stdout
    assert not re.search(r"^compiled  ", r.stdout, re.M) and "fresh  " in r.stdout, r.stdout
    assert [m[0] for m in members(again, kind)] == names


def test_compile_replaces_what_is_not_fresh_hash_mode(pycache, interpreters, tmp_path):
    """A stale cache is replaced in place (its name and position kept);
    unchecked-hash pycs are fresh for the `now` model (zipfile.extractall
    sets no mtimes): extracted that way, modules load from them."""
    py = newest3(interpreters)
    tree = source_tree(str(tmp_path / "src"))
    compile_source(py, os.path.join(tree, "mod_a.py"))
    make_module(tree, "mod_a", "mod_a v2 edited")  # the cache is stale now
    archive = str(tmp_path / "a.zip")
    make_archive(tree, archive, "zip")
    out = str(tmp_path / "c.zip")
    r = pycache("compile", "--python", py.short, "--invalidation-mode", "unchecked-hash",
                "--extract-mtime=now", "--json", archive, "--output", out)
    assert r.returncode == 0, r.stderr
    rows = {x["path"]: x for x in r.json()}
    stale = "__pycache__/mod_a.%s.pyc" % py.tag
    assert rows[archive + "/" + stale]["action"] == "compiled"
    names = [m[0] for m in members(out, "zip")]
    assert names.count(stale) == 1
    assert [m[0] for m in members(archive, "zip")] == [n for n in names
                                                        if n in set(m[0] for m in
                                                                    members(archive, "zip"))]
    with zipfile.ZipFile(out) as z:
        assert z.read(stale)[4:8] == b"\x01\x00\x00\x00"  # unchecked-hash
        z.extractall(str(tmp_path / "x"))
    assert_loaded_from_cache(py, str(tmp_path / "x"))
    r = pycache("check", "--extract-mtime=now", "--expect", py.short, out)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("shape", ["plain", "zip64", "comment"])
def test_compile_for_zipimport(pycache, interp, tmp_path, shape):
    """A zipapp (.pyz: zipimport by default): NAME.pyc beside each source,
    stamped with the source's DOS time as zipimport reads it; on sys.path,
    every module is imported from it, and the code's file name is the one
    zipimport gives a source it compiles (ARCHIVE/member). Info-ZIP's zip64
    (zip -fz) is rewritten so that every version finds the directory and
    compares sizes it can read; a trailing comment, which zipimport reads
    only from 3.8, is refused for older targets (nothing written)."""
    tree = source_tree(str(tmp_path / "src"))
    archive = str(tmp_path / "app.pyz")
    if shape == "zip64":
        subprocess.run(["zip", "-q", "-fz", "-r", archive, "."], cwd=tree, check=True,
                       env=dict(os.environ, TZ="UTC"))
    else:
        make_archive(tree, archive, "zip")
    if shape == "comment":
        subprocess.run(["zip", "-q", "-z", archive], input=b"release 1\n", check=True)
    out = "fixed.pyz"
    r = pycache("compile", "--python", interp.path, archive, "--output", out,
                cwd=str(tmp_path), env={"TZ": "UTC"})
    if shape == "comment" and (interp.major, interp.minor) < (3, 8):
        assert r.returncode == 3 and "trailing comment" in r.stderr, (r.stdout, r.stderr)
        assert not os.path.exists(str(tmp_path / out))
        return
    assert r.returncode == 0, (r.stdout, r.stderr)
    with zipfile.ZipFile(str(tmp_path / out)) as z:
        assert "mod_a.pyc" in z.namelist() and "pkg/__init__.pyc" in z.namelist()
        assert not [n for n in z.namelist() if "__pycache__" in n]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import mod_a, mod_b, pkg\n"
            "for m in (mod_a, mod_b, pkg): sys.stdout.write(m.__file__ + '\\n')\n"
            "sys.stdout.write(mod_a.f.__code__.co_filename + '\\n')")
    p = subprocess.run([interp.path, "-B", "-c", code, out], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=dict(os.environ, TZ="UTC"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()[-4:]  # after what the modules print
    assert lines[:3] == ["fixed.pyz/mod_a.pyc", "fixed.pyz/mod_b.pyc",
                         "fixed.pyz/pkg/__init__.pyc"], lines
    assert lines[3] == "fixed.pyz/mod_a.py", lines
    r = pycache("check", "--expect", interp.short, out, cwd=str(tmp_path), env={"TZ": "UTC"})
    assert r.returncode == 0, r.stdout


def test_compile_a_wheel_and_errors(pycache, interpreters, tmp_path):
    """A source that does not compile is reported (exit 1) and the rest is
    written; a wheel's RECORD lists the added pycs; pip installs it."""
    py = newest3(interpreters)
    src = tmp_path / "w"
    (src / "tinypkg").mkdir(parents=True)
    (src / "tinypkg" / "__init__.py").write_text("x = 1\n")
    (src / "tinypkg" / "bad.py").write_text("def (:\n")
    info = "tinypkg-1.0.dist-info/"
    whl = str(tmp_path / "tinypkg-1.0-py3-none-any.whl")
    record = []
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("tinypkg/__init__.py", b"x = 1\n"), ("tinypkg/bad.py", b"def (:\n"),
                           (info + "METADATA", b"Metadata-Version: 2.1\nName: tinypkg\n"
                                               b"Version: 1.0\n"),
                           (info + "WHEEL", b"Wheel-Version: 1.0\nGenerator: t\n"
                                            b"Root-Is-Purelib: true\nTag: py3-none-any\n")]:
            z.writestr(name, data)
            record.append("%s,%s,%d" % (name, digest(data), len(data)))
        record.append(info + "RECORD,,")
        z.writestr(info + "RECORD", "\n".join(record) + "\n")
    (tmp_path / "out").mkdir()
    fixed = str(tmp_path / "out" / os.path.basename(whl))
    r = pycache("compile", "--python", py.short, whl, "--output", fixed)
    assert r.returncode == 1 and "cannot compile" in r.stderr and "bad.py" in r.stderr, \
        (r.stdout, r.stderr)
    pyc = "tinypkg/__pycache__/__init__.%s.pyc" % py.tag
    with zipfile.ZipFile(fixed) as z:
        lines = z.read(info + "RECORD").decode().splitlines()
        assert lines[:-1] == record[:-1] + ["%s,%s,%d" % (pyc, digest(z.read(pyc)),
                                                          len(z.read(pyc)))]
        assert lines[-1] == info + "RECORD,,"
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "-q", "--target", str(target), fixed],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert (target / pyc).exists()


def test_compile_refusals(pycache, interpreters, tmp_path):
    py = newest3(interpreters)
    tree = source_tree(str(tmp_path / "src"))
    archive = str(tmp_path / "app.pyz")
    make_archive(tree, archive, "zip")
    others = [i for i in interpreters if i.major == 3 and i is not py]
    if others:
        r = pycache("compile", "--python", py.short, "--python", others[0].short, archive,
                    "--output", str(tmp_path / "o.pyz"))
        assert r.returncode == 3 and "zipimport reads one NAME.pyc" in r.stderr, r.stderr
    r = pycache("compile", "--python", py.short, "-b", archive, "--output",
                str(tmp_path / "o.pyz"))
    assert r.returncode == 2, r.stderr
    r = pycache("compile", "--python", py.short, archive, "--output", archive)
    assert r.returncode == 2 and "itself" in r.stderr
    # -o stays --optimize: levels 1 and 2 for extracted use.
    r = pycache("compile", "--python", py.short, "-o", "1,2", "--extracted", archive,
                "--output", str(tmp_path / "o.zip"))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(str(tmp_path / "o.zip")) as z:
        assert "__pycache__/mod_a.%s.opt-2.pyc" % py.tag in z.namelist()
    assert sorted(os.listdir(str(tmp_path))) == ["app.pyz", "o.zip", "src"]


# ---- a zipapp behind a "#!" line ------------------------------------------------


def make_zipapp(tmp_path, py, absolute):
    """Python's zipapp (offsets from the zip's start), or the same prefix
    with Info-ZIP's offsets made absolute (zip -A)."""
    src = tmp_path / "za"
    src.mkdir()
    (src / "__main__.py").write_text(
        "import sys, helper\nsys.stdout.write('main %s %s\\n' % (__file__, helper.__file__))\n")
    (src / "helper.py").write_text("X = 7\n")
    for n in ("__main__.py", "helper.py"):
        os.utime(str(src / n), (T, T))
    app = str(tmp_path / "app.pyz")
    if absolute:
        z = str(tmp_path / "plain.zip")
        subprocess.run(["zip", "-q", "-r", z, "."], cwd=str(src), check=True)
        with open(app, "wb") as f:
            f.write(b"#!/usr/bin/env python3\n" + open(z, "rb").read())
        subprocess.run(["zip", "-q", "-A", app], check=True)
    else:
        r = subprocess.run([py.path, "-m", "zipapp", str(src), "-p", "/usr/bin/env python3",
                            "-o", app], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 0, r.stderr
    return app


@pytest.mark.parametrize("absolute", [False, True], ids=["zipapp", "zip-A"])
def test_zipapp_behind_a_shebang(pycache, interpreters, tmp_path, absolute):
    """compile, convert, clean and prune keep the "#!" line byte for byte and
    write the zip after it; the result runs with `python app.pyz`, its
    modules (and __main__) loaded from the NAME.pyc compile added."""
    py = newest3(interpreters)
    app = make_zipapp(tmp_path, py, absolute)
    prefix = b"#!/usr/bin/env python3\n"
    env = {"TZ": "UTC"}
    run_env = dict(os.environ, TZ="UTC")
    out = str(tmp_path / "c.pyz")
    r = pycache("compile", "--python", py.path, app, "--output", out, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert open(out, "rb").read(len(prefix) + 2) == prefix + b"PK"
    p = subprocess.run([py.path, "-B", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=run_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == ["main", out + "/__main__.pyc", out + "/helper.pyc"]
    with zipfile.ZipFile(out) as z:  # zipfile finds the members behind the prefix
        assert z.testzip() is None
    for cmd in (["convert", "--to", "unchecked-hash"], ["prune"], ["clean"]):
        fixed = str(tmp_path / ("%s.pyz" % cmd[0]))
        r = pycache(*cmd + [out, "-o", fixed], env=env)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        assert open(fixed, "rb").read(len(prefix) + 2) == prefix + b"PK"
        p = subprocess.run([py.path, "-B", fixed], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=run_env)
        assert p.returncode == 0, (cmd, p.stderr)
        suffix = ".py" if cmd[0] == "clean" else ".pyc"
        assert p.stdout.decode().split() == ["main", fixed + "/__main__" + suffix,
                                             fixed + "/helper" + suffix], cmd


# ---- unchanged members are copied, not deflated again ---------------------------


def raw_spans(path):
    """member name -> its bytes in the file: local header, data, descriptor."""
    data = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        infos = sorted(z.infolist(), key=lambda i: i.header_offset)
        ends = [i.header_offset for i in infos[1:]] + [z.start_dir]
        return {i.filename: data[i.header_offset:end] for i, end in zip(infos, ends)}


def make_zip_variant(tree, out, variant):
    names = sorted(os.path.relpath(os.path.join(d, f), tree)
                   for d, _, fs in os.walk(tree) for f in fs)
    if variant in ("infozip-descriptors", "infozip-zip64"):
        flag = "-fd" if variant == "infozip-descriptors" else "-fz"
        subprocess.run(["zip", "-q", flag, "-r", out, "."], cwd=tree, check=True,
                       env=dict(os.environ, TZ="UTC"))
        return
    if variant == "zipfile-stream":
        # zipfile writing to a pipe: data descriptors (flag 0x08), no seeking.
        code = ("import sys, zipfile, os\n"
                "z = zipfile.ZipFile(sys.stdout.buffer, 'w', zipfile.ZIP_DEFLATED)\n"
                "for n in sys.argv[2:]: z.write(os.path.join(sys.argv[1], n), n)\n"
                "z.close()\n")
        with open(out, "wb") as f:
            p = subprocess.Popen([sys.executable, "-c", code, tree] + names,
                                 stdout=subprocess.PIPE)
            f.write(p.stdout.read())
            assert p.wait() == 0
        return
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:  # zipfile-zip64
        for n in names:
            zi = zipfile.ZipInfo.from_file(os.path.join(tree, n), n)
            zi.compress_type = zipfile.ZIP_DEFLATED
            with z.open(zi, "w", force_zip64=True) as w:
                w.write(open(os.path.join(tree, n), "rb").read())


@pytest.mark.parametrize("variant", ["infozip-descriptors", "infozip-zip64", "zipfile-stream",
                                     "zipfile-zip64"])
def test_unchanged_members_are_copied_byte_for_byte(pycache, interpreters, tmp_path, variant):
    py = newest3(interpreters)
    tree = source_tree(str(tmp_path / "src"))
    for n in ("mod_a.py", "mod_b.py", "pkg/__init__.py"):
        os.utime(os.path.join(tree, n), (T, T))  # even: zipfile keeps only the DOS time
        compile_source(py, os.path.join(tree, n))
    make_module(tree, "mod_b", "mod_b edited, longer")  # its pyc: stale
    os.utime(os.path.join(tree, "mod_b.py"), (T + 11, T + 11))
    archive = str(tmp_path / "a.zip")
    make_zip_variant(tree, archive, variant)
    before = raw_spans(archive)
    stale = "__pycache__/mod_b.%s.pyc" % py.tag
    for cmd, changed in ((["prune"], set()),
                         (["convert", "--to", "checked-hash"],
                          {"__pycache__/mod_a.%s.pyc" % py.tag,
                           "pkg/__pycache__/__init__.%s.pyc" % py.tag})):
        out = str(tmp_path / ("%s.zip" % cmd[0]))
        r = pycache(*cmd + [archive, "-o", out], env={"TZ": "UTC"})
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        after = raw_spans(out)
        for name, span in before.items():
            if name in changed or (name == stale and cmd[0] == "prune"):
                continue
            assert after[name] == span, (variant, cmd, name)
        assert (stale in after) == (cmd[0] != "prune")
        assert subprocess.run(["unzip", "-tq", out], stdout=subprocess.PIPE).returncode == 0
        with zipfile.ZipFile(out) as z:
            assert z.testzip() is None
            for name in changed:  # written anew, deflated as the others are
                assert z.getinfo(name).compress_type == zipfile.ZIP_DEFLATED, name
            assert [i.filename for i in z.infolist()] == \
                [n for n in zipfile.ZipFile(archive).namelist() if n in after]
    rows = pycache("check", "--json", "-v", out, env={"TZ": "UTC"}).json()
    modes = {x["member"]: (x["status"], x["mode"]) for x in rows}
    for name in changed:
        assert modes[name] == ("fresh", "checked-hash"), modes


def test_more_than_65535_members(pycache, tmp_path):
    """A zip64 end record for the count (zipfile writes one past 65535)."""
    archive = str(tmp_path / "many.zip")
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(66000):
            z.writestr("d/f%05d.txt" % i, b"")
        z.writestr("d/__pycache__/gone.cpython-312.pyc", b"\xcb\x0d\x0d\x0a" + b"\0" * 12)
    out = str(tmp_path / "out.zip")
    r = pycache("prune", archive, "-o", out)
    assert r.returncode == 0 and "1 orphan" in r.stdout, (r.stdout, r.stderr)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert len(names) == 66000 and names[-1] == "d/f65999.txt"
