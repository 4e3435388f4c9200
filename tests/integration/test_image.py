"""Container images (an OCI image layout, a `docker save` archive) judged on
the file system their layers make.

The image is assembled here with tarfile and hashlib (three layers: plain,
gzip and zstd; whiteouts of a file and of a directory, an opaque directory,
sources updated under their caches, hash-based pycs whose sources live in
another layer). The oracle is the real thing: the layers are applied to a
directory with the real `tar` (whiteouts applied as the OCI image-spec's
layer.md says, before each layer's own entries), then every interpreter
imports each module from it and `pycache check` judges the directory; a
second oracle, when installed, is umoci's own unpacking of the layout, and
skopeo rewrites the layout as a docker-save archive. pycache's verdict on
the image must equal the extracted directory's on every member.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from oracle import batch_import, compile_source, make_module

T_NS = 1700000000 * 10**9 + 250000000
LATER = 1700000000 + 10
# Top-level modules of app/ (3.x) and app2/ (2.x), imported by the oracle.
MODULES = ["fresh_m", "edited_m", "checked_m", "hashok_m", "unchecked_m", "gone_m",
           "late_m"]
OUTCOMES = {
    "fresh": {"cache"},
    "stale-used": {"cache"},
    "stale": {"source"},
    "orphan": {"notfound"},
    "sourceless": {"sourceless"},
}
LAYER_TYPES = {
    "": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def run_json(pycache, *args, **kw):
    r = pycache(*args, **kw)
    return r, [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    return data


def layer_tar(root, whiteouts=(), extra=()):
    """A layer tar of everything under ROOT (pax: fractional mtimes), then
    the whiteout files WHITEOUTS (paths) and EXTRA (name, bytes) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirs, files in sorted(os.walk(str(root))):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(dirpath, name)
                t.add(path, arcname=os.path.relpath(path, str(root)), recursive=False)
        for w in whiteouts:
            ti = tarfile.TarInfo(w)
            ti.mtime = LATER
            t.addfile(ti, io.BytesIO(b""))
        for name, data in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = LATER
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def stage(interpreters, root):
    """The three layers' contents (tar bytes, uncompressed). 3.x modules in
    app/, 2.x ones (legacy NAME.pyc beside the source) in app2/."""
    py3 = [i for i in interpreters if i.major >= 3]
    py2 = [i for i in interpreters if i.major == 2]
    l1, l2, l3 = (os.path.join(str(root), n) for n in ("l1", "l2", "l3"))
    for d, interps in (("app", py3), ("app2", py2)):
        if not interps:
            continue
        base = os.path.join(l1, d)
        for sub in ("", "opq", "sub"):
            os.makedirs(os.path.join(base, sub))
        for name in MODULES[:-1]:
            path = make_module(base, name, name + " v1")
            os.utime(path, ns=(T_NS, T_NS))
        for sub, name in (("opq", "inner_m"), ("sub", "s_m")):
            path = make_module(os.path.join(base, sub), name, name)
            os.utime(path, ns=(T_NS, T_NS))
        if d == "app":
            # linked_m.py is a link, through a directory link, to a source
            # layer 2 changes: its caches go stale only if the link is
            # followed to the file (os.stat follows it).
            os.makedirs(os.path.join(l1, "shared", "real"))
            path = make_module(os.path.join(l1, "shared", "real"), "real_m", "real_m v1")
            os.utime(path, ns=(T_NS, T_NS))
            os.symlink("shared", os.path.join(l1, "lnk"))
            os.symlink("../lnk/real/real_m.py", os.path.join(base, "linked_m.py"))
        for interp in interps:
            if d == "app":
                compile_source(interp, os.path.join(base, "linked_m.py"))
            for name in MODULES[:-1]:
                mode = None
                if (interp.major, interp.minor) >= (3, 7):
                    mode = {"checked_m": "checked-hash", "hashok_m": "checked-hash",
                            "unchecked_m": "unchecked-hash"}.get(name)
                compile_source(interp, os.path.join(base, name + ".py"), mode=mode)
            for sub, name in (("opq", "inner_m"), ("sub", "s_m")):
                compile_source(interp, os.path.join(base, sub, name + ".py"))
        # Layer 2: three sources change under their caches; gone_m.py is
        # whited out (its caches become orphans, or 2.x's sourceless); opq/
        # turns opaque and gets back only its caches (orphans now).
        b2 = os.path.join(l2, d)
        os.makedirs(os.path.join(b2, "opq"))
        if d == "app":
            os.makedirs(os.path.join(l2, "shared", "real"))
            path = make_module(os.path.join(l2, "shared", "real"), "real_m", "real_m v2 longer")
            os.utime(path, (LATER, LATER))
        for name, text in (("edited_m", "edited_m v2 longer"),
                           ("unchecked_m", "unchecked_m v2!"),
                           ("checked_m", "checked_m v2")):
            path = make_module(b2, name, text)
            os.utime(path, (LATER, LATER))
        for dirpath, dirs, files in os.walk(os.path.join(base, "opq")):
            for f in files:
                if f.endswith(".pyc"):
                    src = os.path.join(dirpath, f)
                    dst = os.path.join(b2, "opq", os.path.relpath(src, os.path.join(base, "opq")))
                    if not os.path.isdir(os.path.dirname(dst)):
                        os.makedirs(os.path.dirname(dst))
                    shutil.copy2(src, dst)
        # Layer 3 (another layer): sub/ is whited out whole; late_m arrives
        # with its caches.
        b3 = os.path.join(l3, d)
        os.makedirs(b3)
        path = make_module(b3, "late_m", "late_m")
        os.utime(path, ns=(T_NS, T_NS))
        for interp in interps:
            compile_source(interp, path)
    dirs = [d for d, i in (("app", py3), ("app2", py2)) if i]
    return [
        layer_tar(l1),
        layer_tar(l2, whiteouts=[d + "/.wh.gone_m.py" for d in dirs] +
                  [d + "/opq/.wh..wh..opq" for d in dirs]),
        layer_tar(l3, whiteouts=["./" + d + "/.wh.sub" for d in dirs]),
    ]


def oci_layout(out, layers, ref="app:1", extra_manifests=()):
    """An OCI image layout in directory OUT: LAYERS are (tar bytes,
    compression). Returns the manifest's digest."""
    blobs = os.path.join(str(out), "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        with open(os.path.join(blobs, hashlib.sha256(data).hexdigest()), "wb") as f:
            f.write(data)
        return sha(data)

    descs, diff_ids = [], []
    for tar, how in layers:
        blob = compress(tar, how)
        descs.append({"mediaType": LAYER_TYPES[how], "digest": put(blob), "size": len(blob)})
        diff_ids.append(sha(tar))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": descs}).encode()
    mdigest = put(manifest)
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    index["manifests"] += list(extra_manifests)
    with open(os.path.join(str(out), "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(str(out), "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return mdigest


def tar_of(directory, out):
    subprocess.run(["tar", "-c", "-f", str(out), "-C", str(directory), "."], check=True)
    return str(out)


def docker_save(out, layers):
    """A `docker save` archive in the legacy form (moby image/tarexport):
    ID/layer.tar (uncompressed), CONFIG.json, manifest.json, repositories."""
    diff_ids = [sha(tar) for tar, _ in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    chex = hashlib.sha256(config).hexdigest()
    buf = io.BytesIO()
    with tarfile.open(str(out), "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        paths = []
        for k, (tar, _) in enumerate(layers):
            lid = hashlib.sha256(b"%d" % k + tar).hexdigest()
            add(lid + "/layer.tar", tar)
            add(lid + "/VERSION", b"1.0")
            paths.append(lid + "/layer.tar")
        add(chex + ".json", config)
        add("manifest.json", json.dumps([{"Config": chex + ".json", "RepoTags": ["app:1"],
                                          "Layers": paths}]).encode())
        add("repositories", b"{}")
    del buf
    return str(out), "sha256:" + chex


def apply_layers(layers, target):
    """The oracle's unpacking: for each layer, its whiteouts remove what the
    lower layers left (layer.md: '.wh.NAME' removes NAME, '.wh..wh..opq'
    every child of its directory), then the real tar extracts the layer's
    other entries over the result."""
    os.makedirs(str(target))
    for k, (tar, how) in enumerate(layers):
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            for m in t.getmembers():
                d, base = os.path.split(os.path.normpath(m.name))
                if not base.startswith(".wh."):
                    continue
                where = os.path.join(str(target), d)
                if base == ".wh..wh..opq":
                    for child in os.listdir(where) if os.path.isdir(where) else []:
                        p = os.path.join(where, child)
                        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) \
                            else os.unlink(p)
                else:
                    p = os.path.join(where, base[4:])
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p)
                    elif os.path.lexists(p):
                        os.unlink(p)
        blob = os.path.join(str(target) + ".layer%d" % k)
        with open(blob, "wb") as f:
            f.write(compress(tar, how))
        subprocess.run(["tar", "-x", "-f", blob, "-C", str(target), "--exclude=.wh.*"],
                       check=True)
        os.unlink(blob)


def by_member(verdicts):
    return {v["member"]: (v["status"], v["reason"]) for v in verdicts}


def tree_verdicts(pycache, directory):
    r, verdicts = run_json(pycache, "check", "--json", "-v", str(directory))
    assert r.returncode in (0, 1), r.stderr
    return {os.path.relpath(v["path"], str(directory)): (v["status"], v["reason"])
            for v in verdicts}


@pytest.fixture(scope="module")
def layers(tmp_path_factory, interpreters):
    tars = stage(interpreters, tmp_path_factory.mktemp("img"))
    return list(zip(tars, ["", "gzip", "zstd"]))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, layers):
    target = tmp_path_factory.mktemp("rootfs") / "rootfs"
    apply_layers(layers, target)
    return target


@pytest.fixture(scope="module")
def oci_tar(tmp_path_factory, layers):
    d = tmp_path_factory.mktemp("oci")
    oci_layout(d / "layout", layers)
    return tar_of(d / "layout", d / "image.tar")


def test_oci_image_is_judged_as_its_final_file_system(pycache, interpreters, layers,
                                                      extracted, oci_tar):
    r, verdicts = run_json(pycache, "check", "--json", "-v", oci_tar)
    assert r.returncode == 1, r.stderr  # orphans, stale-used
    assert all(v["archive"] == oci_tar and v["path"] == oci_tar + "/" + v["member"]
               for v in verdicts)
    got = by_member(verdicts)
    # The whiteouts and the opaque directory took effect: nothing of sub/
    # is judged, opq/'s caches are orphans (3.x) or sourceless (2.x).
    assert not [m for m in got if "/sub/" in m]
    newest = interpreters[-1]
    assert got["app/__pycache__/gone_m.%s.pyc" % newest.tag][0] == "orphan"
    assert got["app/opq/__pycache__/inner_m.%s.pyc" % newest.tag][0] == "orphan"
    assert got["app/__pycache__/checked_m.%s.pyc" % newest.tag][0] == "stale"
    assert got["app/__pycache__/hashok_m.%s.pyc" % newest.tag][0] == "fresh"
    assert got["app/__pycache__/late_m.%s.pyc" % newest.tag][0] == "fresh"
    # The extracted file system's verdicts, member for member.
    assert got == tree_verdicts(pycache, extracted)
    # And each interpreter's import system on that file system.
    assert got["app/__pycache__/linked_m.%s.pyc" % newest.tag][0] == "stale"
    # "layer": the digest of the layer that last wrote the cache file.
    layer_of = {v["member"]: v["layer"] for v in verdicts}
    digests = [sha(compress(tar, how)) for tar, how in layers]
    assert layer_of["app/__pycache__/fresh_m.%s.pyc" % newest.tag] == digests[0]
    assert layer_of["app/opq/__pycache__/inner_m.%s.pyc" % newest.tag] == digests[1]
    assert layer_of["app/__pycache__/late_m.%s.pyc" % newest.tag] == digests[2]
    for interp in interpreters:
        where = os.path.join(str(extracted), "app2" if interp.major == 2 else "app")
        modules = MODULES + ([] if interp.major == 2 else ["linked_m"])
        result = batch_import(interp, where, modules)
        for name in modules:
            member = ("app2/%s.pyc" % name if interp.major == 2 else
                      "app/__pycache__/%s.%s.pyc" % (name, interp.tag))
            status = got[member][0]
            assert result[name]["outcome"] in OUTCOMES[status], \
                (interp.version, member, status, result[name]["log"][-400:])


@pytest.fixture(scope="module")
def gzip_layout(tmp_path_factory, layers):
    """The same image with its zstd layer gzip'd: Debian 12's umoci (0.4.7)
    reads no zstd layer, and docker-archive (skopeo) takes none."""
    d = tmp_path_factory.mktemp("gz")
    oci_layout(d / "layout", [(tar, "gzip" if how == "zstd" else how) for tar, how in layers])
    return d / "layout", tar_of(d / "layout", d / "image.tar")


def test_umoci_unpacks_the_same_file_system(pycache, tmp_path, oci_tar, gzip_layout):
    """A second oracle: umoci applies the layers itself (rootless)."""
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed (scripts/install-deps --test)")
    layout, archive = gzip_layout
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", str(layout) + ":app:1",
                    str(bundle)], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    _, first = run_json(pycache, "check", "--json", "-v", oci_tar)
    assert by_member(verdicts) == by_member(first)
    assert by_member(verdicts) == tree_verdicts(pycache, bundle / "rootfs")


def test_docker_save_archives(pycache, tmp_path, layers, oci_tar, gzip_layout):
    """The legacy docker-save form built here, and the one skopeo writes
    from the layout (docker-archive:), give the OCI image's verdicts."""
    _, want = run_json(pycache, "check", "--json", "-v", oci_tar)
    want = by_member(want)
    archive, _ = docker_save(tmp_path / "saved.tar", layers)
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert r.returncode == 1, r.stderr
    assert by_member(verdicts) == want
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed (scripts/install-deps --test)")
    out = str(tmp_path / "skopeo.tar")
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q",
                    "oci:%s:app:1" % gzip_layout[0], "docker-archive:%s:app:1" % out],
                   check=True)
    r, verdicts = run_json(pycache, "check", "--json", "-v", out)
    assert r.returncode == 1, r.stderr
    assert by_member(verdicts) == want


def test_inspect_stats_and_expect(pycache, interpreters, oci_tar):
    newest = interpreters[-1]
    member = "app/__pycache__/unchecked_m.%s.pyc" % newest.tag
    r = pycache("inspect", "--json", oci_tar, member)
    assert r.returncode == 1, r.stderr
    (v,) = r.json()
    assert (v["status"], v["archive"], v["member"]) == ("stale-used", oci_tar, member)
    assert v["source"] == oci_tar + "/app/unchecked_m.py"
    r = pycache("stats", "--json", oci_tar)
    assert r.returncode == 0, r.stderr
    # --expect: opq/'s new... sources without a fresh cache are missing.
    r, verdicts = run_json(pycache, "check", "--json", "--expect",
                           "%d.%d" % (newest.major, newest.minor), oci_tar)
    missing = {v["member"] for v in verdicts if v["status"] == "missing"}
    assert "app/__pycache__/edited_m.%s.pyc" % newest.tag in missing
    assert "app/__pycache__/late_m.%s.pyc" % newest.tag not in missing
    assert not [m for m in missing if "/sub/" in m or "gone_m" in m]


def test_an_index_of_several_images(pycache, interpreters, tmp_path, layers):
    """Each image of an index is judged on its own, shown as IMAGE@DIGEST."""
    d = tmp_path / "two"
    first = oci_layout(d, layers[:1])
    # The second image: the same base layer plus the second one.
    index = json.load(open(str(d / "index.json")))
    manifest = json.load(open(str(d / "blobs" / "sha256" / first[7:])))
    l2 = compress(layers[1][0], "gzip")
    open(str(d / "blobs" / "sha256" / hashlib.sha256(l2).hexdigest()), "wb").write(l2)
    manifest["layers"].append({"mediaType": LAYER_TYPES["gzip"], "digest": sha(l2),
                               "size": len(l2)})
    mbytes = json.dumps(manifest).encode()
    open(str(d / "blobs" / "sha256" / hashlib.sha256(mbytes).hexdigest()), "wb").write(mbytes)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": sha(mbytes), "size": len(mbytes)})
    json.dump(index, open(str(d / "index.json"), "w"))
    archive = tar_of(d, tmp_path / "two.tar")
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert r.returncode == 1, r.stderr
    newest = interpreters[-1]
    gone = "app/__pycache__/gone_m.%s.pyc" % newest.tag
    status = {(v["archive"], v["member"]): v["status"] for v in verdicts}
    assert status[(archive + "@" + first, gone)] == "fresh"
    assert status[(archive + "@" + sha(mbytes), gone)] == "orphan"
    assert all(v["path"] == v["archive"] + "/" + v["member"] for v in verdicts)


def test_zipimport_refuses_images(pycache, tmp_path, oci_tar):
    # (Fixing an image: test_image_fix.py.)
    r = pycache("check", "--zipimport", oci_tar)
    assert r.returncode == 3 and "--zipimport needs a zip archive" in r.stderr, r.stderr


def hostile_layout(tmp_path, interp, layer_tars, mutate=None):
    """A one-image layout of LAYER_TARS (uncompressed), MUTATE(dir, manifest
    digest) applied to the directory before it is tarred."""
    d = tmp_path / "h"
    mdigest = oci_layout(d, [(t, "") for t in layer_tars])
    if mutate:
        mutate(d, mdigest)
    return tar_of(d, tmp_path / "h.tar")


def small_layer(tmp_path, interp, extra=(), whiteouts=()):
    root = tmp_path / "small"
    os.makedirs(str(root / "pkg"))
    make_module(str(root / "pkg"), "mod", "mod")
    compile_source(interp, str(root / "pkg" / "mod.py"))
    return layer_tar(root, whiteouts=whiteouts, extra=extra)


def blob_path(d, digest):
    return str(d / "blobs" / "sha256" / digest[7:])


def layer_digest(d, mdigest, k=0):
    return json.load(open(blob_path(d, mdigest)))["layers"][k]["digest"]


def test_a_layer_digest_mismatch_judges_nothing(pycache, interpreters, tmp_path):
    tar = small_layer(tmp_path, interpreters[-1])

    def flip(d, mdigest):
        p = blob_path(d, layer_digest(d, mdigest))
        data = bytearray(open(p, "rb").read())
        data[600] ^= 1  # inside the first member's data: still a valid tar
        open(p, "wb").write(bytes(data))
    archive = hostile_layout(tmp_path, interpreters[-1], [tar], flip)
    r = pycache("check", "--json", archive)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "layer digest mismatch" in r.stderr, r.stderr
    assert not [v for v in r.json() if v["status"] != "error"]
    # inspect of one of its members says why too.
    r = pycache("inspect", archive, "pkg/__pycache__/mod.%s.pyc" % interpreters[-1].tag)
    assert r.returncode == 3 and "layer digest mismatch" in r.stderr, r.stderr


@pytest.mark.parametrize("case", ["missing-blob", "not-a-tar", "size-lie", "deep-index",
                                  "many-images", "bad-json"])
def test_hostile_images_are_clear_errors(pycache, interpreters, tmp_path, case):
    tar = small_layer(tmp_path, interpreters[-1])

    def mutate(d, mdigest):
        lp = blob_path(d, layer_digest(d, mdigest))
        if case == "missing-blob":
            os.unlink(lp)
        elif case == "not-a-tar":
            # A blob that is no tar, under its own (valid) digest.
            data = b"this is not a tar archive\n" * 40
            os.unlink(lp)
            m = json.load(open(blob_path(d, mdigest)))
            m["layers"][0].update(digest=sha(data), size=len(data))
            open(blob_path(d, sha(data)), "wb").write(data)
            rewrite_manifest(d, m)
        elif case == "size-lie":
            m = json.load(open(blob_path(d, mdigest)))
            m["layers"][0]["size"] = 1 << 50
            rewrite_manifest(d, m)
        elif case == "deep-index":
            # Indexes nested past the limit (a cycle cannot be made of
            # digests; depth is what a hostile index can pile up).
            index = json.load(open(str(d / "index.json")))
            for _ in range(6):
                data = json.dumps(index).encode()
                open(blob_path(d, sha(data)), "wb").write(data)
                index = {"schemaVersion": 2, "manifests": [
                    {"mediaType": "application/vnd.oci.image.index.v1+json",
                     "digest": sha(data), "size": len(data)}]}
            json.dump(index, open(str(d / "index.json"), "w"))
        elif case == "many-images":
            index = json.load(open(str(d / "index.json")))
            index["manifests"] *= 65
            json.dump(index, open(str(d / "index.json"), "w"))
        elif case == "bad-json":
            open(str(d / "index.json"), "w").write('{"manifests": [')

    archive = hostile_layout(tmp_path, interpreters[-1], [tar], mutate)
    r = pycache("check", "--json", archive)
    assert r.returncode == 3, (case, r.stdout, r.stderr)
    want = {"missing-blob": "the archive holds no such blob", "not-a-tar": "is not a readable tar",
            "size-lie": "the descriptor says 1125899906842624 bytes",
            "deep-index": "nested more than 4 deep", "many-images": "more than 64 images",
            "bad-json": "not valid JSON"}[case]
    assert want in r.stderr, r.stderr
    assert not [v for v in r.json() if v["status"] != "error"]


def rewrite_manifest(d, m):
    data = json.dumps(m).encode()
    open(blob_path(d, sha(data)), "wb").write(data)
    index = json.load(open(str(d / "index.json")))
    index["manifests"][0].update(digest=sha(data), size=len(data))
    json.dump(index, open(str(d / "index.json"), "w"))


def test_hostile_layer_members(pycache, interpreters, tmp_path):
    """'../' members, a whiteout of '..', a link called NAME.py that leads
    out of the image: named, not applied; the rest of the layer is judged."""
    newest = interpreters[-1]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in ["../evil.py", "pkg/.wh...", "/abs.py"]:
            ti = tarfile.TarInfo(name)
            t.addfile(ti, io.BytesIO(b""))
        ti = tarfile.TarInfo("pkg/link.py")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/etc/passwd"
        t.addfile(ti)
    tar = small_layer(tmp_path, newest)
    archive = hostile_layout(tmp_path, newest, [tar, buf.getvalue()])
    r = pycache("check", "--json", "-v", archive)
    assert r.returncode == 3, (r.stdout, r.stderr)
    err = r.stderr
    assert "layer member '../evil.py': unsafe name" in err, err
    assert "layer member '/abs.py': unsafe name" in err, err
    assert "a whiteout of '..'" in err, err
    assert "h.tar/pkg/link.py': a link member that resolves to no file of the image" in err, err
    judged = [v for v in r.json() if v["status"] != "error"]
    assert [(v["member"], v["status"]) for v in judged] == \
        [("pkg/__pycache__/mod.%s.pyc" % newest.tag, "fresh")]


def test_a_manifest_json_of_another_kind_is_a_plain_tar(pycache, interpreters, tmp_path):
    """A project tarball holding a manifest.json is no image."""
    newest = interpreters[-1]
    tar = small_layer(tmp_path, newest, extra=[("manifest.json", b'{"name": "web"}')])
    archive = str(tmp_path / "plain.tar")
    open(archive, "wb").write(tar)
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert r.returncode == 0, r.stderr
    assert [v["member"] for v in verdicts] == ["pkg/__pycache__/mod.%s.pyc" % newest.tag]


def test_a_platform_the_archive_lacks_is_not_judged(pycache, interpreters, tmp_path):
    """docker save of one platform keeps the image index but only that
    platform's manifest (image-layout.md: the blobs directory "MAY be
    missing referenced blobs"): the other platform is skipped; a manifest
    index.json itself names must be there."""
    newest = interpreters[-1]
    d = tmp_path / "plat"
    mdigest = oci_layout(d, [(small_layer(tmp_path, newest), "")])
    index = json.load(open(str(d / "index.json")))
    present = index["manifests"][0]
    absent = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "sha256:" + "ab" * 32, "size": 1234,
              "platform": {"architecture": "arm64", "os": "linux"}}
    nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [present, absent]}).encode()
    open(blob_path(d, sha(nested)), "wb").write(nested)
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested),
         "size": len(nested)}]}, open(str(d / "index.json"), "w"))
    archive = tar_of(d, tmp_path / "plat.tar")
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    assert r.returncode == 0, r.stderr
    assert [(v["archive"], v["member"], v["status"]) for v in verdicts] == \
        [(archive, "pkg/__pycache__/mod.%s.pyc" % newest.tag, "fresh")]
    # The same manifest named by index.json itself: an error.
    json.dump({"schemaVersion": 2, "manifests": [present, absent]},
              open(str(d / "index.json"), "w"))
    archive = tar_of(d, tmp_path / "plat2.tar")
    r = pycache("check", archive)
    assert r.returncode == 3 and "the image names a blob the archive does not hold" in r.stderr
    assert mdigest == present["digest"]
