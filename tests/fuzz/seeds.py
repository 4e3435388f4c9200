#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/NAME/.

    tests/fuzz/seeds.py NAMES_HELPER
    tests/fuzz/seeds.py --archives      (fuzz_archive's only)
    tests/fuzz/seeds.py --images        (fuzz_archive's container images only)

NAMES_HELPER is a program printing fuzz_header's name table ("INDEX\\tWHERE\\t
NAME" lines; tests/fuzz/README.md shows how to build it). Real cache files
come from the interpreters conftest.py would find (every local pyenv
version and /usr/bin/python3): timestamp pycs of each, at -O and -OO, and
checked/unchecked hash-based ones from 3.7+. The seeds are then minimised
with libFuzzer's -merge=1 (README) before they are committed.
"""
import glob
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MTIME = 1700000000
SOURCE = b"import os\nx = [1, 2.5, 'a', b'b', (None, True)]\ndef f(a, *b, **c):\n    return a\n"


def interpreters():
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python")))
    if os.path.exists("/usr/bin/python3"):
        found.append("/usr/bin/python3")
    return found


def put(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


COMPILE = r"""
import sys, py_compile
src, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == 'timestamp':
    py_compile.compile(src, cfile=out, doraise=True)
else:
    m = {'checked': py_compile.PycInvalidationMode.CHECKED_HASH,
         'unchecked': py_compile.PycInvalidationMode.UNCHECKED_HASH}[mode]
    py_compile.compile(src, cfile=out, doraise=True, invalidation_mode=m)
"""


def header_seeds(names_helper):
    table = {}
    for line in subprocess.run([names_helper], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        i, where, name = line.split("\t")
        table[(int(where), name)] = int(i)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "mod.py")
        with open(src, "wb") as f:
            f.write(SOURCE)
        os.utime(src, (MTIME, MTIME))
        for py in interpreters():
            tag, version = subprocess.run(
                [py, "-c", "import sys; print(getattr(sys, 'implementation', None) and "
                 "sys.implementation.cache_tag or '-'); print(sys.version_info[:2] >= (3, 7))"],
                capture_output=True, text=True, check=True).stdout.split()
            tag = "" if tag == "-" else tag
            hashes = version == "True"
            for mode in ["timestamp"] + (["checked", "unchecked"] if hashes else []):
                for opt in ([], ["-O"], ["-OO"]) if mode == "timestamp" else ([],):
                    out = os.path.join(tmp, "out.pyc")
                    subprocess.run([py] + opt + ["-c", COMPILE, src, out, mode], check=True)
                    with open(out, "rb") as f:
                        pyc = f.read()
                    if tag:
                        suffix = {0: "", 1: ".opt-1", 2: ".opt-2"}[len(opt) and len(opt[0]) - 1]
                        key = (1, "mod.%s%s.pyc" % (tag, suffix))
                    else:
                        key = (0, "mod.pyc")
                    index = table.get(key, table[(0, "mod.pyc")])
                    # byte 1: source (1), consistent (2) for every other seed
                    opts = 1 | (2 if len(pyc) % 2 else 0)
                    head = bytes([index % 256, opts, len(SOURCE)]) + struct.pack("<iI", MTIME, 0)
                    put("fuzz_header", head + pyc + SOURCE)
                    put("fuzz_magic", pyc[:4])
    put("fuzz_header", b"")
    put("fuzz_header", b"\x00" * 16)


def magic_seeds():
    words = ["3.11", "311", "cpython-311", "pypy3.10", "pypy310", "2.7", "27", "3.6.15",
             "PyPy-3.9", "graalpy-3.10", "graalpython-38", "python3.12", "3", "3.99", "1.5",
             "timestamp", "checked-hash", "unchecked-hash", "fresh", "stale-used", "orphan",
             "graalpy240-310", "cpython-3", "cpython-315"]
    for w in words:
        put("fuzz_magic", w.encode())


def cachepath_seeds():
    paths = ["mod.py", "pkg/mod.py", "/usr/lib/python3.11/os.py", "./a/b.py", "a.b.py",
             ".py", "/y.py", "x", "pkg/__init__.py", "a//b.py", "dir/", "mod.pyw"]
    paths += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9.*/lib/python3.9/json/*.py")))[:3]
    names = ["mod.cpython-311.pyc", "mod.cpython-311.opt-2.pyc", "mod.cpython-32.pyo",
             "mod.pyc", "mod.pyo", "mod.cpython-311.pyc.140234", "__pycache__/mod.cpython-311.pyc",
             "a.b.cpython-39.opt-1.pyc", "mod.pypy310.pyc", "mod.graalpy240-310.pyc",
             "mod.cpython-311.opt-0.pyc", "mod.cpython-311.opt-99999999999.pyc"]
    for i, p in enumerate(paths + names):
        for bits in (0, 1, 3, 4, 5):
            put("fuzz_cachepath", bytes([i * 4 % 256, bits]) + p.encode() +
                b"\0/tmp/prefix\0/home/user/project")


def options_seeds():
    argvs = {
        "check": ["--json", "--deep", "--expect", "3.11", "--fail-on", "stale,orphan", "-q", "."],
        "clean": ["-n", "--tag", "3.11", "--keep-tag", "cpython-312", "--debris", "pytest,mypy",
                  "--uninstalled", "--ignore", "build", "."],
        "prune": ["-n", "--sourceless", "--deep", "--prefix", "/tmp/p", "-v"],
        "doctor": ["--json", "."],
        "convert": ["--to", "checked-hash", "-n", "--check-hash-based-pycs", "never"],
        "inspect": ["--json", "--deep", "--check-hash-based-pycs", "always", "--color=never",
                    "x.pyc"],
        "where": ["--python", "3.9", "--opt", "2", "--prefix", "/p", "-0", "a.py"],
        "stats": ["--json", "--color", "auto", "--no-default-ignores", "."],
        "versions": ["--json", "--all"],
    }
    commands = ["check", "clean", "prune", "doctor", "convert", "inspect", "where", "stats",
                "versions"]
    for i, c in enumerate(commands):
        put("fuzz_options", b"\x01" + bytes([i]) + b"\0".join(a.encode() for a in argvs[c]))
    samples = [["-j", "-o", "out", "--prefix=/p", "--pre", "x", "--col", "never"],
               ["-jn0", "-x5", "--python", "pypy3.10", "--opt=3", "--", "-j"],
               ["--check-hash-based-pycs", "sometimes", "--jsn"], ["-x"], ["--output"]]
    for s in samples:
        put("fuzz_options", b"\x00" + b"\0".join(a.encode() for a in s))
    for raw in [b"plain/ascii.py", "caf\u00e9/\u2603.py".encode(), b"bad\xff\xfe\xed\xa0\x80",
                b"ctl\n\t\r\x7f\x1b[31m\xc2\x85", b"\xf0\x9f\x90\x8d\xf4\x90\x80\x80\xe0\x80\xaf",
                b"back\\slash\"quote"]:
        put("fuzz_options", b"\x02" + raw)
        put("fuzz_options", b"\x03" + raw)


def archive_seeds():
    """Small real archives for fuzz_archive: Info-ZIP with and without
    extended timestamps, zipfile, a zipapp, an encrypted zip, zip64, tar in
    the GNU and pax formats and three compressions, and a hostile tar
    ('..', absolute, duplicate, links). Sources with timestamp pycs of
    3.12 in __pycache__ and legacy hash-based ones beside them."""
    import io
    import tarfile
    import zipfile
    py = [p for p in interpreters() if "3.12" in p] or [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "t")
        os.makedirs(os.path.join(tree, "pkg"))
        for name in ("pkg/__init__.py", "pkg/mod.py", "top.py"):
            with open(os.path.join(tree, name), "wb") as f:
                f.write(b"x = 1\n")
            os.utime(os.path.join(tree, name), (MTIME, MTIME))
        for name, mode in (("pkg/mod.py", "timestamp"), ("top.py", "checked")):
            src = os.path.join(tree, name)
            d, base = os.path.split(src)
            out = os.path.join(d, "__pycache__", base[:-3] + ".cpython-312.pyc")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run([py[0], "-c", COMPILE, src, out, mode], check=True)
            subprocess.run([py[0], "-c", COMPILE, src, src + "c", "unchecked"], check=True)

        def made(cmd, name):
            out = os.path.join(tmp, name)
            subprocess.run(cmd + [out, "."] if cmd[0] == "zip" else cmd, cwd=tree, check=True)
            with open(out, "rb") as f:
                put("fuzz_archive", f.read())
        made(["zip", "-q", "-r"], "ut.zip")
        made(["zip", "-q", "-X", "-r"], "dos.zip")
        made(["zip", "-q", "-fz", "-r"], "z64.zip")
        made(["zip", "-q", "-P", "pw", "-r"], "enc.zip")
        for flags, name in (([], "a.tar"), (["--format=posix", "-z"], "a.tgz"),
                            (["-J"], "a.txz"), (["--zstd"], "a.tzst")):
            made(["tar", "-c", "-f", os.path.join(tmp, name)] + flags + ["."], name)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for d, _, files in os.walk(tree):
                for f in files:
                    full = os.path.join(d, f)
                    z.write(full, os.path.relpath(full, tree))
        put("fuzz_archive", b"#!/usr/bin/env python3\n" + buf.getvalue())
        # A trailing comment (zipimport reads it from 3.8), and zip64 sizes
        # behind a plain end record (only 3.13's zipimport reads them).
        with zipfile.ZipFile(buf, "a") as z:
            z.comment = b"release"
        put("fuzz_archive", buf.getvalue())
        with open(os.path.join(tmp, "z64.zip"), "rb") as f:
            z64 = f.read()
        end = z64.rfind(b"PK\5\6")
        count, size, offset = struct.unpack_from("<QQQ", z64, end - 76 + 32)
        put("fuzz_archive", z64[:end - 76] + b"PK\5\6" +
            struct.pack("<HHHHIIH", 0, 0, count, count, size, offset, 0))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for n in ("../x.pyc", "/etc/y.pyc", "a/__pycache__/m.cpython-312.pyc",
                      "a/__pycache__/m.cpython-312.pyc"):
                ti = tarfile.TarInfo(n)
                data = b"\xcb\r\r\n" + b"\0" * 13
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            ti = tarfile.TarInfo("a/m.py")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/etc/passwd"
            t.addfile(ti)
        put("fuzz_archive", buf.getvalue())
        image_seeds(tree)


def image_seeds(tree):
    """Two small container images of TREE for fuzz_archive (image.c): an
    OCI layout tar (a plain and a gzip layer; a whiteout, an opaque
    directory; digests right) and a legacy docker-save tar of the same
    layers (checked against the config's diff_ids)."""
    import gzip
    import io
    import json
    import tarfile

    def tar_bytes(add):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            add(t)
        return buf.getvalue()

    def member(t, name, data=b""):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mtime = MTIME + 10
        t.addfile(ti, io.BytesIO(data))

    l1 = tar_bytes(lambda t: t.add(tree, arcname="."))
    l2 = tar_bytes(lambda t: (member(t, "pkg/.wh.mod.py"), member(t, "pkg/__pycache__/.wh..wh..opq"),
                              member(t, "top.py", b"x = 2\n")))
    sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
    blobs = {}
    descs = []
    for tar, gz in ((l1, False), (l2, True)):
        blob = gzip.compress(tar, mtime=0) if gz else tar
        blobs[sha(blob)] = blob
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""),
                      "digest": sha(blob), "size": len(blob)})
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(l1), sha(l2)]}}).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
        "size": len(config)}, "layers": descs}).encode()
    blobs[sha(manifest)] = manifest
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
        "size": len(manifest)}]}).encode()

    def oci(t):
        member(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        member(t, "index.json", index)
        for d, b in sorted(blobs.items()):
            member(t, "blobs/sha256/" + d[7:], b)
    put("fuzz_archive", tar_bytes(oci))

    # The same image behind a nested index, under two tags, with a BuildKit
    # attestation manifest beside it (image.c's index chain, as image_fix
    # rewrites it).
    att = json.dumps({"schemaVersion": 2, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
        "size": len(config)}, "layers": []}).encode()
    nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest)},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(att),
         "size": len(att), "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                           "vnd.docker.reference.digest": sha(manifest)}}]}).encode()
    outer = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested),
         "size": len(nested), "annotations": {"org.opencontainers.image.ref.name": tag}}
        for tag in ("a", "b")]}).encode()

    def oci_nested(t):
        member(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        member(t, "index.json", outer)
        for d, b in sorted(list(blobs.items()) + [(sha(nested), nested), (sha(att), att)]):
            member(t, "blobs/sha256/" + d[7:], b)
    put("fuzz_archive", tar_bytes(oci_nested))

    def saved(t):
        member(t, "l1/layer.tar", l1)
        member(t, "l2/layer.tar", l2)
        member(t, sha(config)[7:] + ".json", config)
        member(t, "manifest.json", json.dumps([{"Config": sha(config)[7:] + ".json",
                                                "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode())
    put("fuzz_archive", tar_bytes(saved))


# fuzz_marshal_tree: the first byte picks the version (its table: 2.7, then
# 3.4 to 3.14), the rest is a body; the bodies are fuzz_marshal's seeds.
TREE_VERSIONS = ["27", "34", "35", "36", "37", "38", "39", "310", "311", "312", "313", "314"]


def marshal_tree_seeds():
    src = os.path.join(CORPUS, "fuzz_marshal")
    for name in sorted(os.listdir(src)):
        ver = name.split("_")[0]
        if ver in TREE_VERSIONS:
            with open(os.path.join(src, name), "rb") as f:
                put("fuzz_marshal_tree", bytes([TREE_VERSIONS.index(ver)]) + f.read())


if __name__ == "__main__":
    if sys.argv[1:] == ["--archives"]:
        archive_seeds()
        sys.exit(0)
    if sys.argv[1:] == ["--images"]:
        import tempfile as _t
        with _t.TemporaryDirectory() as tmp:
            tree = os.path.join(tmp, "t")
            os.makedirs(os.path.join(tree, "pkg"))
            for name in ("pkg/__init__.py", "pkg/mod.py", "top.py"):
                with open(os.path.join(tree, name), "wb") as f:
                    f.write(b"x = 1\n")
                os.utime(os.path.join(tree, name), (MTIME, MTIME))
            py = [p for p in interpreters() if "3.12" in p] or [sys.executable]
            for name, mode in (("pkg/mod.py", "timestamp"), ("top.py", "checked")):
                src = os.path.join(tree, name)
                d, base = os.path.split(src)
                out = os.path.join(d, "__pycache__", base[:-3] + ".cpython-312.pyc")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                subprocess.run([py[0], "-c", COMPILE, src, out, mode], check=True)
            image_seeds(tree)
        sys.exit(0)
    header_seeds(sys.argv[1])
    magic_seeds()
    cachepath_seeds()
    options_seeds()
    archive_seeds()
    marshal_tree_seeds()
