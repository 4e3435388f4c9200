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


def dos_seconds(date_time):
    return time.mktime(tuple(date_time) + (0, 0, -1))


@pytest.fixture(scope="module")
def tree(tmp_path_factory, interpreters):
    return build_tree(str(tmp_path_factory.mktemp("fix") / "tree"), interpreters)


CASES = [
    ("prune", []),
    ("prune", ["--sourceless"]),
    ("clean", []),
]


@pytest.mark.parametrize("kind", ["zip", "tgz"])
@pytest.mark.parametrize("command,opts", CASES, ids=["prune", "prune-sourceless", "clean"])
def test_fix_equals_the_command_on_the_extracted_tree(pycache, interpreters, tree, tmp_path,
                                                      kind, command, opts):
    archive = str(tmp_path / ("a." + kind))
    make_archive(tree, archive, kind)
    before = open(archive, "rb").read()
    env = {"TZ": "UTC"}
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
    if kind == "zip":
        # The DOS date/time field: Info-ZIP rounds an odd second up,
        # libarchive's writer down (the extended timestamp, which unzip
        # restores, is the same: the snapshots above are equal).
        assert all(abs(dos_seconds(a[1][0]) - dos_seconds(b[1][0])) <= 2
                   for a, b in zip(kept, got)), (kept, got)
        kept = [(n, meta[1:], data) for n, meta, data in kept]
        got = [(n, meta[1:], data) for n, meta, data in got]
    assert kept == got
    assert any(d.rstrip("/").endswith("sub/__pycache__") for d in dropped), dropped
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


def test_wheel_record_and_pip_install(pycache, interpreters, tmp_path):
    """A wheel shipping stale and fresh pycs (RECORD lists them): prune -o
    drops the stale ones and their RECORD lines; pip installs the result."""
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
    r = pycache("prune", whl, "-o", fixed, env={"TZ": "UTC"})
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
        (["prune", archive], 3, "never changed in place"),
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
