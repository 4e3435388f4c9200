"""normalize ARCHIVE -o OUT, diff of two archives and verify ARCHIVE against
the real interpreters.

  - One tree compiled by `pycache compile -j1` and by py_compile in a
    long-lived process (other objects alive: other FLAG_REF bits), packed as
    a zip and as a tar.gz: after `normalize -o` the cache members of the two
    archives have byte-identical bodies, their headers are untouched, the
    interpreter's own marshal.loads of each normalized member equals that of
    the original, and every other member is unchanged (a zip's raw bytes:
    local header, data, descriptor).
  - A wheel whose pycs are not in canonical form: normalize -o rewrites
    them and RECORD's digests; pip installs it.
  - -n writes nothing; a damaged body is left alone ("skipped", exit 1); a
    container image without caches is copied as it is (images with caches:
    test_image_fix.py).
  - diff of two zips of two compiles of one tree: no code difference (exit
    0), the same answer as diff of the two trees; after an edit the first
    difference is the edited function's constant; a tar.gz against a zip of
    one tree, and an archive against a tree, are the same; a cache on one
    side only is only-a/only-b (exit 1); a damaged archive exits 3.
  - verify of a zip and a tar.gz compiled by 2.7 and the newest 3.x: every
    member verified; a member whose body is swapped for another module's
    (header kept) is the one mismatch (exit 1); a cache without its source
    member is unverifiable.
"""

import base64
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from test_archive_fix import raw_spans
from test_code_commands import LONG_LIVED, tree_of

WANTED = {(2, 7), (3, 8), (3, 12), (3, 13)}


def pick(interpreters):
    seen, out = set(), []
    for i in interpreters:
        if (i.major, i.minor) in WANTED and (i.major, i.minor) not in seen:
            seen.add((i.major, i.minor))
            out.append(i)
    return out


def pytest_generate_tests(metafunc):
    if "npy" in metafunc.fixturenames:
        from conftest import discover_interpreters
        vals = pick(discover_interpreters())
        metafunc.parametrize("npy", vals, ids=[i.id for i in vals])


def pack(tree, out, kind):
    if kind == "zip":
        subprocess.run(["zip", "-q", "-X", "-r", out, "."], cwd=tree, check=True,
                       env=dict(os.environ, TZ="UTC"))
    else:
        subprocess.run(["tar", "-czf", out, "--format=pax", "--sort=name", "."], cwd=tree,
                       check=True)


def contents(archive, kind):
    """name -> bytes of every file member."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as z:
            return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}
    with tarfile.open(archive) as t:
        return {m.name.lstrip("./"): t.extractfile(m).read() for m in t.getmembers()
                if m.isfile()}


def tar_meta(archive):
    with tarfile.open(archive) as t:
        return [(m.name, m.mtime, m.mode, m.type, m.uid, m.gid) for m in t.getmembers()]


EQUAL = r'''
import marshal, sys, json
h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8)
pairs = json.loads(open(sys.argv[1]).read())
bad = []
for name, a, b in pairs:
    a = bytes(bytearray.fromhex(a)); b = bytes(bytearray.fromhex(b))
    if a[:h] != b[:h] or marshal.loads(a[h:]) != marshal.loads(b[h:]):
        bad.append(name)
sys.stdout.write(json.dumps(bad))
'''


def is_cache(name):
    return name.endswith((".pyc", ".pyo"))


# Each pyc's body marshalled again by a process that holds a second
# reference to every nested constant: marshal (Python/marshal.c w_ref) then
# sets FLAG_REF on objects the compiler's own dump did not flag. The same
# objects for marshal.loads, other bytes.
REMARSHAL = r'''
import marshal, os, sys
h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8)
held = []
def hold(o):
    held.append(o)
    for c in getattr(o, "co_consts", ()):
        hold(c)
    if isinstance(o, tuple):
        for c in o:
            hold(c)
for d, _, fs in os.walk("."):
    for f in fs:
        if f.endswith(".pyc"):
            p = os.path.join(d, f)
            data = open(p, "rb").read()
            co = marshal.loads(data[h:])
            hold(co)
            open(p, "wb").write(data[:h] + marshal.dumps(co))
'''


EXTRA = '''
def f(x):
    return [x, "a", "a", (1, 2), "utf-8", "strict"]

class C:
    def g(self):
        return f(1), ("a", "b")
'''


def test_two_compiles_normalize_to_the_same_members(npy, pycache, tmp_path):
    a = tree_of(npy, tmp_path, "a")
    b = tree_of(npy, tmp_path, "b")
    # A module whose constants other live objects share in the long-lived
    # process (interned strings, small tuples): FLAG_REF set differently.
    for root in (a, b):
        (root / "json" / "extra.py").write_text(EXTRA)
    # The same mtimes in both trees: the headers then agree, and the
    # archives' cache members may be compared whole.
    for root in (a, b):
        for d, _, fs in os.walk(str(root)):
            for f in fs:
                os.utime(os.path.join(d, f), (1700000000, 1700000000))
    r = pycache("compile", "-q", "--python", npy.path, "-j1", ".", cwd=str(a))
    assert r.returncode == 0, r.stderr
    npy.run(LONG_LIVED, ".", cwd=str(b))
    npy.run(REMARSHAL, ".", cwd=str(b))
    for kind, ext in (("zip", ".zip"), ("tgz", ".tar.gz")):
        arch = {}
        for name, root in (("a", a), ("b", b)):
            src = str(tmp_path / (name + ext))
            out = str(tmp_path / (name + ".norm" + ext))
            pack(str(root), src, kind)
            r = pycache("normalize", "--json", "-v", src, "-o", out)
            assert r.returncode == 0, r.stdout + r.stderr
            rows = r.json()
            assert rows and {o["action"] for o in rows} <= {"normalized", "canonical"}
            assert all(o["archive"] == src and o["path"] == src + "/" + o["member"]
                       for o in rows)
            arch[name] = (src, out)
        before = {n: contents(arch[n][0], kind) for n in arch}
        after = {n: contents(arch[n][1], kind) for n in arch}
        caches = sorted(m for m in before["a"] if is_cache(m))
        assert len(caches) >= 4 and caches == sorted(m for m in before["b"] if is_cache(m))
        # The two compiles wrote different bytes (the test means something)...
        if npy.major == 3:
            assert any(before["a"][m] != before["b"][m] for m in caches)
        # ... and equal code gives equal bytes once normalized (the headers:
        # the same mtimes and sizes).
        for m in caches:
            assert after["a"][m] == after["b"][m], (kind, m)
        # Headers untouched, the interpreter loads the same objects.
        pairs = []
        for n in arch:
            assert set(after[n]) == set(before[n])
            for m in before[n]:
                if not is_cache(m):
                    assert after[n][m] == before[n][m], m
                else:
                    pairs.append((n + ":" + m, before[n][m].hex(), after[n][m].hex()))
        spec = tmp_path / ("pairs-%s.json" % kind)
        spec.write_text(__import__("json").dumps(pairs))
        assert npy.eval_json(EQUAL, str(spec)) == []
        # Every member kept is kept as it was: a zip's raw bytes, a tar's
        # metadata.
        for n in arch:
            if kind == "zip":
                old, new = raw_spans(arch[n][0]), raw_spans(arch[n][1])
                assert list(old) == list(new)
                changed = [m for m in old if old[m] != new[m]]
                assert all(is_cache(m) for m in changed)
            else:
                assert tar_meta(arch[n][0]) == tar_meta(arch[n][1])
        # A second normalize finds nothing to do.
        r = pycache("normalize", "--json", "-v", "-n", arch["b"][1], "--in-place")
        assert r.returncode == 0 and {o["action"] for o in r.json()} == {"canonical"}


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def newest3(interpreters):
    return [i for i in interpreters if (i.major, i.minor) >= (3, 7)][-1]


def test_wheel_normalized_installs(pycache, interpreters, tmp_path):
    py = newest3(interpreters)
    src = tmp_path / "src"
    src.mkdir()
    shutil_src = tree_of(py, tmp_path, "pkgsrc")
    os.rename(str(shutil_src / "json"), str(src / "tinyjson"))
    py.run(LONG_LIVED, ".", cwd=str(src))
    files = sorted(os.path.relpath(os.path.join(d, f), str(src))
                   for d, _, fs in os.walk(str(src)) for f in fs)
    info = "tinyjson-1.0.dist-info/"
    whl = str(tmp_path / "tinyjson-1.0-py3-none-any.whl")
    record = []
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            data = open(str(src / f), "rb").read()
            z.writestr(f, data)
            record.append("%s,%s,%d" % (f, digest(data), len(data)))
        for name, data in [(info + "METADATA",
                            b"Metadata-Version: 2.1\nName: tinyjson\nVersion: 1.0\n"),
                           (info + "WHEEL", b"Wheel-Version: 1.0\nGenerator: test\n"
                                            b"Root-Is-Purelib: true\nTag: py3-none-any\n")]:
            z.writestr(name, data)
            record.append("%s,%s,%d" % (name, digest(data), len(data)))
        record.append(info + "RECORD,,")
        z.writestr(info + "RECORD", "\n".join(record) + "\n")
    out_dir = tmp_path / "fixed"
    out_dir.mkdir()
    fixed = str(out_dir / os.path.basename(whl))
    r = pycache("normalize", whl, "-o", fixed)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("normalized ")
    nnorm = int(r.stdout.splitlines()[-1].split()[1])
    assert nnorm >= 1
    with zipfile.ZipFile(fixed) as z, zipfile.ZipFile(whl) as zo:
        lines = z.read(info + "RECORD").decode().splitlines()
        assert len(lines) == len(record)
        changed = 0
        for line, old in zip(lines, record):
            path, h, size = line.rsplit(",", 2)
            assert path == old.rsplit(",", 2)[0]
            if h:
                data = z.read(path)
                assert (digest(data), len(data)) == (h, int(size)), path
                changed += data != zo.read(path)
        assert changed == nnorm
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "-q", "--target", str(target), fixed],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    # The installed caches are the normalized ones, and they load.
    out = py.run("import sys; sys.path.insert(0, sys.argv[1]); import tinyjson;"
                 "assert tinyjson.__cached__ and tinyjson.__spec__.cached;"
                 "sys.stdout.write(tinyjson.dumps([1, {'a': None}]))", str(target))
    assert out.stdout == b'[1, {"a": null}]'


def test_dry_run_damage_and_refusals(pycache, interpreters, tmp_path):
    py = newest3(interpreters)
    root = tree_of(py, tmp_path, "t")
    py.run(LONG_LIVED, ".", cwd=str(root))
    pc = root / "json" / "__pycache__"
    victim = sorted(p for p in os.listdir(str(pc)) if p.startswith("decoder."))[0]
    data = (pc / victim).read_bytes()
    (pc / victim).write_bytes(data[:len(data) // 2])  # truncated body
    z = str(tmp_path / "t.zip")
    pack(str(root), z, "zip")
    before = open(z, "rb").read()
    r = pycache("normalize", "-n", z, "-o", str(tmp_path / "out.zip"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "would-normalize" in r.stdout and "skipped" in r.stdout
    assert not os.path.exists(str(tmp_path / "out.zip"))
    r = pycache("normalize", z, "--in-place")
    assert r.returncode == 1
    skipped = [l for l in r.stdout.splitlines() if l.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].split()[1] == z + "/json/__pycache__/" + victim
    with zipfile.ZipFile(z) as zz:
        assert zz.read("json/__pycache__/" + victim) == data[:len(data) // 2]
    assert open(z, "rb").read() != before
    # Usage: -o with no archive, both -o and --in-place.
    r = pycache("normalize", str(root), "-o", str(tmp_path / "x.zip"))
    assert r.returncode == 2 and "not an archive" in r.stderr
    r = pycache("normalize", z, "-o", str(tmp_path / "x.zip"), "--in-place")
    assert r.returncode == 2
    # Without -o an archive operand is refused as before (a tree command),
    # with a message that says who reads and who fixes archives.
    after = open(z, "rb").read()
    r = pycache("normalize", z)
    assert r.returncode == 3 and "cannot work on archive" in r.stderr, r.stderr
    assert "diff and verify read an archive" in r.stderr
    assert "normalize (-o OUT or --in-place)" in r.stderr
    assert open(z, "rb").read() == after


def test_image_without_caches(pycache, tmp_path):
    """A docker-save style archive with nothing to normalize: the copy holds
    the same members with the same bytes."""
    layer = tmp_path / "layer.tar"
    with tarfile.open(str(layer), "w") as t:
        d = tmp_path / "x.py"
        d.write_text("x = 1\n")
        t.add(str(d), "x.py")
    digest_hex = hashlib.sha256(layer.read_bytes()).hexdigest()
    manifest = ('[{"Config": "config.json", "RepoTags": ["a:1"], "Layers": ["%s/layer.tar"]}]'
                % digest_hex)
    img = tmp_path / "img.tar"
    with tarfile.open(str(img), "w") as t:
        for name, data in [("manifest.json", manifest.encode()),
                           ("config.json", b'{"rootfs": {"type": "layers", "diff_ids": '
                                           b'["sha256:' + digest_hex.encode() + b'"]}}'),
                           (digest_hex + "/layer.tar", layer.read_bytes())]:
            p = tmp_path / "m"
            p.write_bytes(data)
            t.add(str(p), name)
    r = pycache("normalize", str(img), "-o", str(tmp_path / "out.tar"))
    assert r.returncode == 0, r.stderr

    def members(path):
        with tarfile.open(path) as t:
            return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]
    assert members(str(tmp_path / "out.tar")) == members(str(img))


# ---- diff of two archives ----------------------------------------------------------

from test_code_commands import EDIT_SRC  # noqa: E402

FIRST_DIFF = r'''
import json, marshal, sys, glob
p = [f for f in glob.glob('**/m*.py[co]', recursive=True) if 'm.' in f]
d = open(p[0], 'rb').read()
h = 16 if sys.version_info >= (3, 7) else 12
co = marshal.loads(d[h:])
i = [j for j, k in enumerate(co.co_consts) if getattr(k, 'co_name', '') == 'beta'][0]
f = co.co_consts[i]
sys.stdout.write(json.dumps([i, [j for j, k in enumerate(f.co_consts) if k == 'BETA SAYS '][0]]))
'''


def test_diff_two_archives(pycache, interpreters, tmp_path):
    py = newest3(interpreters)
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "pkg").mkdir(parents=True)
        (d / "pkg" / "m.py").write_text(EDIT_SRC)
        (d / "pkg" / "n.py").write_text("X = 1\n")
        (d / "pkg" / "data.txt").write_text("not code\n")
    r = pycache("compile", "-q", "--python", py.path, "-j1", ".", cwd=str(a))
    assert r.returncode == 0, r.stderr
    # Another compiler, another process: compileall of the absolute path
    # (other co_filename), then re-marshalled (other FLAG_REF bits).
    py.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)", str(b))
    py.run(REMARSHAL, ".", cwd=str(b))
    za, zb, tb = (str(tmp_path / n) for n in ("a.zip", "b.zip", "b.tar.gz"))
    pack(str(a), za, "zip")
    pack(str(b), zb, "zip")
    pack(str(b), tb, "tgz")
    r = pycache("diff", "--ignore-filename", "--json", za, zb)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = r.json()
    assert sorted(o["path"] for o in rows) == ["pkg/__pycache__/m.%s.pyc" % py.tag,
                                               "pkg/__pycache__/n.%s.pyc" % py.tag]
    assert {o["result"] for o in rows} == {"ref-flags"}
    assert all(o["a"] == za + "/" + o["path"] and o["b"] == zb + "/" + o["path"] for o in rows)
    # Without --ignore-filename: the file names differ (code, exit 1), as
    # between the two trees.
    r = pycache("diff", za, zb)
    assert r.returncode == 1 and "co_filename" in r.stdout
    # The same answer as diff of the two trees.
    rj = pycache("diff", "--json", za, zb)
    rt = pycache("diff", "--json", str(a), str(b))
    assert [(o["path"], o["result"], o["code_path"]) for o in rj.json()] == \
        [(o["path"], o["result"], o["code_path"]) for o in rt.json()]
    # tar vs zip of the same tree, and an archive against a tree: the same.
    r = pycache("diff", "--json", tb, zb)
    assert r.returncode == 0 and {o["result"] for o in r.json()} == {"same"}, r.stdout
    r = pycache("diff", "--json", tb, str(b))
    assert r.returncode == 0 and {o["result"] for o in r.json()} == {"same"}, r.stdout
    # Edit beta only: the first difference is its constant.
    (b / "pkg" / "m.py").write_text(EDIT_SRC.replace("beta says", "BETA SAYS"))
    py.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1, force=1)",
           str(b))
    zc = str(tmp_path / "c.zip")
    pack(str(b), zc, "zip")
    where = py.eval_json(FIRST_DIFF, cwd=str(b))
    r = pycache("diff", "--ignore-filename", "--json", za, zc)
    assert r.returncode == 1
    rows = {o["path"]: o for o in r.json()}
    m = rows["pkg/__pycache__/m.%s.pyc" % py.tag]
    assert m["result"] == "code" and m["code_path"] == "co_consts[%d].co_consts[%d]" % tuple(where)
    assert rows["pkg/__pycache__/n.%s.pyc" % py.tag]["result"] in ("same", "header", "ref-flags")
    r = pycache("diff", "--ignore-filename", za, zc)
    assert "at co_consts[%d].co_consts[%d]" % tuple(where) in r.stdout
    # A cache on one side only.
    os.unlink(str(b / "pkg" / "__pycache__" / ("n.%s.pyc" % py.tag)))
    zd = str(tmp_path / "d.zip")
    pack(str(b), zd, "zip")
    r = pycache("diff", "--json", "--ignore-filename", zd, za)
    assert r.returncode == 1
    only = [o for o in r.json() if o["result"].startswith("only")]
    assert [(o["result"], o["path"], o["a"], o["b"]) for o in only] == [
        ("only-b", "pkg/__pycache__/n.%s.pyc" % py.tag, None,
         za + "/pkg/__pycache__/n.%s.pyc" % py.tag)]
    # An archive against a plain file: usage; a damaged archive: exit 3.
    r = pycache("diff", za, str(a / "pkg" / "m.py"))
    assert r.returncode == 2
    bad = tmp_path / "bad.zip"
    bad.write_bytes(open(za, "rb").read()[:200])
    r = pycache("diff", str(bad), za)
    assert r.returncode == 3 and str(bad) in r.stderr


# ---- verify ARCHIVE -------------------------------------------------------------------


def test_verify_archive(pycache, interpreters, tmp_path):
    pys = [i for i in interpreters if i.major == 2][:1] + [newest3(interpreters)]
    root = tmp_path / "t"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "m.py").write_text(EDIT_SRC)
    (root / "pkg" / "n.py").write_text("X = 1\n")
    (root / "pkg" / "gone.py").write_text("Y = 2\n")
    for py in pys:
        r = pycache("compile", "-q", "--python", py.path, ".", cwd=str(root))
        assert r.returncode == 0, r.stderr
    os.unlink(str(root / "pkg" / "gone.py"))
    z, tz = str(tmp_path / "good.zip"), str(tmp_path / "good.tar.gz")
    pack(str(root), z, "zip")
    pack(str(root), tz, "tgz")
    caches = sorted(os.path.relpath(os.path.join(d, f), str(root))
                    for d, _, fs in os.walk(str(root)) for f in fs if f.endswith(".pyc"))
    assert len(caches) == 3 * len(pys)
    for arch in (z, tz):
        r = pycache("verify", "--json", "-v", arch)
        assert r.returncode == 0, r.stdout + r.stderr
        rows = {o["member"]: o for o in r.json()}
        assert sorted(rows) == caches
        for member, o in rows.items():
            want = "unverifiable" if "gone" in member else "verified"
            assert o["verify"] == want and o["archive"] == arch, o
            assert o["path"] == arch + "/" + member
    # Swap m's body for n's under m's header, in the newest 3.x's cache.
    py = pys[-1]
    pc = root / "pkg" / "__pycache__"
    m, n = pc / ("m.%s.pyc" % py.tag), pc / ("n.%s.pyc" % py.tag)
    m.write_bytes(m.read_bytes()[:16] + n.read_bytes()[16:])
    bad = str(tmp_path / "bad.zip")
    pack(str(root), bad, "zip")
    r = pycache("verify", "--json", bad)
    assert r.returncode == 1, r.stdout + r.stderr
    wrong = [o for o in r.json() if o["verify"] == "mismatch"]
    assert [o["member"] for o in wrong] == ["pkg/__pycache__/m.%s.pyc" % py.tag]
    # An archive and a tree in one run.
    r = pycache("verify", "-q", z, str(root))
    assert r.returncode == 1
