"""Fixing the bytecode inside a container image, into a new image.

The image is test_image's (three layers: plain, gzip and zstd; whiteouts,
an opaque directory, sources a later layer changes under their caches).
Each fixing command writes a new image; the test then reads it as a
registry client would, with hashlib: index.json -> manifest -> config and
layers, every digest and size checked, each layer's uncompressed sha256
against the config's rootfs.diff_ids. The layers are applied with the real
`tar` (test_image.apply_layers), and the oracle is each interpreter's
import system on that file system, as in test_image. umoci and skopeo
(both used by test_image) load the new image too.
"""

import errno
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from oracle import batch_import, compile_source, make_module
from test_image import (LAYER_TYPES, MODULES, OUTCOMES, apply_layers, by_member,
                        docker_save, layer_tar, oci_layout, run_json, sha, stage, tar_of,
                        tree_verdicts)

HOW = {v: k for k, v in LAYER_TYPES.items()}


def decompress(blob, how):
    if how == "gzip":
        return gzip.decompress(blob)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-d", "-c"], input=blob, stdout=subprocess.PIPE,
                              check=True).stdout
    return blob


def read_image(archive, dest):
    """The OCI image archive ARCHIVE unpacked into DEST and read as a client
    does, every digest checked: ([(layer tar, compression)], [layer
    digests], the layout directory)."""
    with tarfile.open(str(archive)) as t:
        t.extractall(str(dest))
    index = json.load(open(os.path.join(str(dest), "index.json")))
    (desc,) = index["manifests"]

    def blob(d):
        data = open(os.path.join(str(dest), "blobs", "sha256", d["digest"][7:]), "rb").read()
        assert sha(data) == d["digest"] and len(data) == d["size"], d
        return data

    manifest = json.loads(blob(desc))
    config = json.loads(blob(manifest["config"]))
    layers = []
    for d, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        how = HOW[d["mediaType"]]
        tar = decompress(blob(d), how)
        assert sha(tar) == diff_id
        layers.append((tar, how))
    assert len(layers) == len(config["rootfs"]["diff_ids"])
    # Nothing in blobs/ that the image does not name.
    named = {desc["digest"], manifest["config"]["digest"]} | \
        {d["digest"] for d in manifest["layers"]}
    held = {"sha256:" + n for n in os.listdir(os.path.join(str(dest), "blobs", "sha256"))}
    assert held == named
    return layers, [d["digest"] for d in manifest["layers"]], str(dest)


def judged_as_its_file_system(pycache, interpreters, archive, rootfs):
    """pycache's verdicts on ARCHIVE equal the unpacked ROOTFS's, and each
    interpreter imports from ROOTFS as they say. Returns them."""
    r, verdicts = run_json(pycache, "check", "--json", "-v", str(archive))
    assert r.returncode in (0, 1), r.stderr
    got = by_member(verdicts)
    assert got == tree_verdicts(pycache, rootfs)
    for interp in interpreters:
        where = os.path.join(str(rootfs), "app2" if interp.major == 2 else "app")
        present = [m for m in MODULES if os.path.exists(os.path.join(where, m + ".py"))]
        result = batch_import(interp, where, present)
        for name in present:
            member = ("app2/%s.pyc" % name if interp.major == 2 else
                      "app/__pycache__/%s.%s.pyc" % (name, interp.tag))
            if member not in got:
                assert result[name]["outcome"] == "source", (interp.version, name)
                continue
            status = got[member][0]
            assert result[name]["outcome"] in OUTCOMES[status], \
                (interp.version, member, status, result[name]["log"][-400:])
    return got


@pytest.fixture(scope="module")
def image(tmp_path_factory, interpreters):
    """test_image's three layers, as an OCI archive with the zstd layer
    gzip'd (Debian 12's umoci reads no zstd) and one as they are."""
    tars = stage(interpreters, tmp_path_factory.mktemp("img"))
    d = tmp_path_factory.mktemp("oci")
    layers = list(zip(tars, ["", "gzip", "zstd"]))
    oci_layout(d / "zstd", layers)
    gz = [(t, "gzip" if h == "zstd" else h) for t, h in layers]
    oci_layout(d / "gzip", gz)
    return {"layers": layers, "zstd": tar_of(d / "zstd", d / "zstd.tar"),
            "gzip_layers": gz, "gzip": tar_of(d / "gzip", d / "gzip.tar")}


def test_convert_rewrites_only_the_layers_it_changes(pycache, interpreters, image, tmp_path):
    before = judged_as_its_file_system(pycache, interpreters, image["zstd"],
                                       _rootfs(image["layers"], tmp_path / "before"))
    out = tmp_path / "fixed.tar"
    r = pycache("convert", "--to", "unchecked-hash", image["zstd"], "-o", out)
    assert r.returncode == 0, r.stderr
    layers, digests, _ = read_image(out, tmp_path / "fixed")
    old = [sha(_compress(t, h)) for t, h in image["layers"]]
    # Layer 2 holds no fresh timestamp pyc (only opq/'s orphans): its blob
    # is the same; layers 1 and 3 were rewritten, each in its compression.
    assert digests[1] == old[1] and digests[0] != old[0] and digests[2] != old[2]
    assert [h for _, h in layers] == ["", "gzip", "zstd"]
    # Every other entry of a rewritten layer is kept: names, order, modes,
    # owners, mtimes (pax fractions too), whiteouts.
    for (new, _), (orig, _) in zip(layers, image["layers"]):
        assert _entries(new) == _entries(orig)
    rootfs = _rootfs(layers, tmp_path / "after")
    got = judged_as_its_file_system(pycache, interpreters, out, rootfs)
    # Every fresh timestamp pyc of 3.7+ is an unchecked-hash pyc now, and
    # loads (judged_as_its_file_system asked each interpreter).
    hashed = {i.tag for i in interpreters if (i.major, i.minor) >= (3, 7)}
    converted = 0
    for member, (status, _) in before.items():
        pre = open(os.path.join(str(tmp_path / "before"), member), "rb").read()
        if status != "fresh" or member.split(".")[-2] not in hashed or pre[4:8] != bytes(4):
            continue
        data = open(os.path.join(str(rootfs), member), "rb").read()
        assert data[4:8] == b"\x01\x00\x00\x00" and data[16:] == pre[16:], member
        assert got[member][0] == "fresh"
        converted += 1
    assert converted == len(hashed) * 2  # fresh_m, late_m


def test_an_image_with_1980_dates(pycache, interpreters, tmp_path):
    """The Lambda story in an image: a build pipeline normalised every
    source's mtime to 1980-01-01, so every timestamp pyc is stale in every
    container; convert --to unchecked-hash --ignore-mtime, and each
    interpreter loads every module from its cache."""
    interps = [i for i in interpreters if (i.major, i.minor) >= (3, 7)]
    root = tmp_path / "l1"
    os.makedirs(str(root / "app"))
    mods = ["m1", "m2", "m3"]
    for name in mods:
        path = make_module(str(root / "app"), name, name)
        for interp in interps:
            compile_source(interp, path)
        os.utime(path, (315532800, 315532800))
    d = tmp_path / "layout"
    oci_layout(d, [(layer_tar(root), "gzip")])
    archive = tar_of(d, tmp_path / "img.tar")
    r, verdicts = run_json(pycache, "check", "--json", archive)
    assert {(v["status"], v["reason"]) for v in verdicts} == {("stale", "mtime")}, r.stderr
    assert len(verdicts) == len(mods) * len({i.tag for i in interps})
    out = tmp_path / "fixed.tar"
    r = pycache("convert", "--to", "unchecked-hash", "--ignore-mtime", archive, "-o", out)
    assert r.returncode == 0, r.stderr
    layers, _, _ = read_image(out, tmp_path / "fixed")
    rootfs = _rootfs(layers, tmp_path / "rootfs")
    assert os.stat(str(rootfs / "app" / "m1.py")).st_mtime == 315532800
    for interp in interps:
        result = batch_import(interp, str(rootfs / "app"), mods)
        assert all(result[m]["outcome"] == "cache" for m in mods), (interp.version, result)
    r = pycache("check", "--expect", interps[-1].short, str(out))
    assert r.returncode == 0, r.stdout + r.stderr


def test_umoci_and_skopeo_load_the_fixed_image(pycache, interpreters, image, tmp_path):
    if not shutil.which("umoci") or not shutil.which("skopeo"):
        pytest.skip("umoci and skopeo are not installed (scripts/install-deps --test)")
    out = tmp_path / "fixed.tar"
    r = pycache("convert", "--to", "unchecked-hash", image["gzip"], "-o", out)
    assert r.returncode == 0, r.stderr
    # skopeo checks every digest it copies.
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "oci-archive:%s" % out,
                    "oci:%s:app:1" % layout], check=True)
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "oci:%s:app:1" % layout,
                    "docker-archive:%s:app:1" % (tmp_path / "docker.tar")], check=True)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", "%s:app:1" % layout,
                    str(bundle)], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = judged_as_its_file_system(pycache, interpreters, out, bundle / "rootfs")
    _, again = run_json(pycache, "check", "--json", "-v", str(tmp_path / "docker.tar"))
    assert by_member(again) == got
    # skopeo's docker-archive (HEX.tar layers, HEX.json config) fixed in
    # turn: the names follow the new digests, and skopeo reads it back.
    docker = tmp_path / "docker.tar"
    r = pycache("convert", "--to", "checked-hash", docker, "--in-place")
    assert r.returncode == 0, r.stderr
    with tarfile.open(str(docker)) as t:
        (m,) = json.load(t.extractfile("manifest.json"))
        cfg = t.extractfile(m["Config"]).read()
        assert m["Config"] == hashlib.sha256(cfg).hexdigest() + ".json"
        for path, diff_id in zip(m["Layers"], json.loads(cfg)["rootfs"]["diff_ids"]):
            data = t.extractfile(path).read()
            assert sha(data) == diff_id and path == diff_id[7:] + ".tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "docker-archive:%s" % docker,
                    "oci:%s:app:1" % (tmp_path / "back")], check=True)


def test_clean_shrinks_the_image(pycache, interpreters, image, tmp_path):
    out = tmp_path / "clean.tar"
    r = pycache("clean", image["zstd"], "-o", out)
    assert r.returncode == 0, r.stderr
    layers, _, _ = read_image(out, tmp_path / "clean")
    # Each cache goes from the layer that provides it; layer 1's caches
    # under opq/ and sub/, which layers 2 and 3 hide, stay where they are.
    for (new, _), (orig, _) in zip(layers, image["layers"]):
        assert len(new) < len(orig)
        names = [n for n, _ in _entries(new)]
        assert not [n for n in names if n.endswith(".pyc") and ".wh." not in n and
                    "/opq/" not in n and "/sub/" not in n]
    rootfs = _rootfs(layers, tmp_path / "rootfs")
    got = judged_as_its_file_system(pycache, interpreters, out, rootfs)
    assert got == {}
    found = [os.path.join(d, f) for d, _, fs in os.walk(str(rootfs)) for f in fs
             if f.endswith(".pyc") or d.endswith("__pycache__")]
    assert found == []


def test_compile_puts_caches_beside_their_sources(pycache, interpreters, image, tmp_path):
    newest = interpreters[-1]
    out = tmp_path / "compiled.tar"
    r = pycache("compile", "--python", newest.short, image["zstd"], "--output", out)
    assert r.returncode == 0, r.stderr
    layers, _, _ = read_image(out, tmp_path / "compiled")
    rootfs = _rootfs(layers, tmp_path / "rootfs")
    got = judged_as_its_file_system(pycache, interpreters, out, rootfs)
    where = os.path.join(str(rootfs), "app")
    present = [m for m in MODULES if os.path.exists(os.path.join(where, m + ".py"))]
    result = batch_import(newest, where, present)
    assert all(result[m]["outcome"] == "cache" for m in present), result
    # Layer 2 provides edited_m.py, checked_m.py and unchecked_m.py: app/'s
    # stale caches of them (layer 1's) were recompiled where they are;
    # app2/ has none for this version, so they are added beside the
    # sources, in layer 2, as real_m's is. opq/inner_m.py is gone (opaque):
    # nothing is added for it.
    if newest.major == 3:
        names2 = [n for n, _ in _entries(layers[1][0])]
        added = sorted(n for n in names2 if n.endswith("%s.pyc" % newest.tag) and "opq" not in n)
        assert added == ["app2/__pycache__/%s.%s.pyc" % (m, newest.tag)
                         for m in ("checked_m", "edited_m", "unchecked_m")] + \
            ["shared/real/__pycache__/real_m.%s.pyc" % newest.tag]
        assert got["app/__pycache__/edited_m.%s.pyc" % newest.tag][0] == "fresh"


def test_prune_and_normalize(pycache, interpreters, image, tmp_path):
    _, before = run_json(pycache, "check", "--json", "-v", image["zstd"])
    before = by_member(before)
    pruned = tmp_path / "pruned.tar"
    r = pycache("prune", image["zstd"], "-o", pruned)
    # 1: sourceless pycs (2.x's gone_m.pyc) were kept, as on a tree.
    sourceless = [v for v in before.values() if v[0] == "sourceless"]
    assert r.returncode == (1 if sourceless else 0), r.stderr
    layers, _, _ = read_image(pruned, tmp_path / "p")
    got = judged_as_its_file_system(pycache, interpreters, pruned,
                                    _rootfs(layers, tmp_path / "prootfs"))
    assert got == {m: v for m, v in before.items() if v[0] in ("fresh", "sourceless")}
    # normalize: the bodies in canonical marshal form, the headers and so
    # the verdicts as they were.
    normalized = tmp_path / "normalized.tar"
    r = pycache("normalize", image["zstd"], "-o", normalized)
    assert r.returncode in (0, 1), r.stderr
    layers, _, _ = read_image(normalized, tmp_path / "n")
    got = judged_as_its_file_system(pycache, interpreters, normalized,
                                    _rootfs(layers, tmp_path / "nrootfs"))
    assert got == before


def test_a_cache_added_beside_a_source_of_a_lower_layer(pycache, interpreters, tmp_path):
    """A source without a cache, in layer 1, and a layer 2 that whites out
    its __pycache__: the new cache goes in layer 2 (where nothing above
    hides it); a cache under no whiteout goes beside its source in layer 1.
    The dropped caches of clean become whiteouts where a lower layer holds
    the same path."""
    newest = interpreters[-1]
    root = tmp_path / "src"
    for sub in ("a", "b"):
        os.makedirs(str(root / "l1" / sub))
        make_module(str(root / "l1" / sub), "m", sub)
    os.makedirs(str(root / "l2" / "a"))
    make_module(str(root / "l2" / "a"), "other", "other")
    compile_source(newest, str(root / "l2" / "a" / "other.py"))
    l1 = layer_tar(root / "l1")
    l2 = layer_tar(root / "l2", whiteouts=["a/.wh.__pycache__"])
    d = tmp_path / "layout"
    oci_layout(d, [(l1, "gzip"), (l2, "")])
    archive = tar_of(d, tmp_path / "img.tar")
    out = tmp_path / "out.tar"
    r = pycache("compile", "--python", newest.short, archive, "--output", out)
    assert r.returncode == 0, r.stderr
    layers, digests, _ = read_image(out, tmp_path / "out")
    n1 = [n for n, _ in _entries(layers[0][0])]
    n2 = [n for n, _ in _entries(layers[1][0])]
    cache_b = "b/__pycache__/m.%s.pyc" % newest.tag
    cache_a = "a/__pycache__/m.%s.pyc" % newest.tag
    assert cache_b in n1 and n1.index(cache_b) == n1.index("b/m.py") + 2  # dir, then file
    assert cache_a in n2 and cache_a not in n1
    rootfs = _rootfs(layers, tmp_path / "rootfs")
    for sub in ("a", "b"):
        result = batch_import(newest, os.path.join(str(rootfs), sub), ["m"])
        assert result["m"]["outcome"] == "cache", result
    # clean: a/__pycache__ is written by layer 2 only; the caches go.
    out2 = tmp_path / "clean.tar"
    r = pycache("clean", out, "-o", out2)
    assert r.returncode == 0, r.stderr
    layers2, _, _ = read_image(out2, tmp_path / "clean")
    rootfs2 = _rootfs(layers2, tmp_path / "rootfs2")
    assert [f for _, _, fs in os.walk(str(rootfs2)) for f in fs if f.endswith(".pyc")] == []
    _, verdicts = run_json(pycache, "check", "--json", "-v", str(out2))
    assert verdicts == []


def test_a_nested_index_and_its_attestation(pycache, image, tmp_path):
    """index.json -> a nested index -> the manifest and BuildKit's
    attestation manifest of it: the nested index is rewritten with the new
    manifest's digest, index.json with the nested index's; the attestation
    (of an image no longer there) goes with its blobs."""
    d = tmp_path / "nested"
    with tarfile.open(image["gzip"]) as t:
        t.extractall(str(d))
    blobs = d / "blobs" / "sha256"

    def put(data):
        open(str(blobs / hashlib.sha256(data).hexdigest()), "wb").write(data)
        return {"digest": sha(data), "size": len(data)}
    index = json.load(open(str(d / "index.json")))
    mdesc = index["manifests"][0]
    statement = put(json.dumps({"_type": "https://in-toto.io/Statement/v0.1",
                                "subject": [{"digest": {"sha256": mdesc["digest"][7:]}}]}
                               ).encode())
    aconfig = put(b'{"architecture":"unknown","os":"unknown"}')
    att = put(json.dumps({"schemaVersion": 2,
                          "config": dict(aconfig, mediaType="application/vnd.oci.image.config.v1+json"),
                          "layers": [dict(statement, mediaType="application/vnd.in-toto+json")]}
                         ).encode())
    nested = put(json.dumps({"schemaVersion": 2,
                             "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [
                                 {k: mdesc[k] for k in ("mediaType", "digest", "size")},
                                 dict(att, mediaType="application/vnd.oci.image.manifest.v1+json",
                                      annotations={
                                          "vnd.docker.reference.type": "attestation-manifest",
                                          "vnd.docker.reference.digest": mdesc["digest"]})]}
                            ).encode())
    index["manifests"] = [dict(nested, mediaType="application/vnd.oci.image.index.v1+json",
                               annotations=mdesc["annotations"])]
    json.dump(index, open(str(d / "index.json"), "w"))
    archive = tar_of(d, tmp_path / "nested.tar")
    out = tmp_path / "out.tar"
    r = pycache("convert", "--to", "unchecked-hash", archive, "-o", out)
    assert r.returncode == 0, r.stderr
    o = tmp_path / "out"
    with tarfile.open(str(out)) as t:
        t.extractall(str(o))
    (desc,) = json.load(open(str(o / "index.json")))["manifests"]
    assert desc["digest"] != nested["digest"]
    data = open(str(o / "blobs" / "sha256" / desc["digest"][7:]), "rb").read()
    assert sha(data) == desc["digest"] and len(data) == desc["size"]
    (m,) = json.loads(data)["manifests"]
    assert m["digest"] != mdesc["digest"]
    held = set(os.listdir(str(o / "blobs" / "sha256")))
    for gone in (att, statement, aconfig, nested):
        assert gone["digest"][7:] not in held
    if shutil.which("skopeo"):
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q",
                        "oci-archive:%s:app:1" % out, "oci:%s:x" % (tmp_path / "copy")],
                       check=True)


def test_one_image_under_two_tags(pycache, image, tmp_path):
    d = tmp_path / "tags"
    with tarfile.open(image["gzip"]) as t:
        t.extractall(str(d))
    index = json.load(open(str(d / "index.json")))
    second = dict(index["manifests"][0], annotations={"org.opencontainers.image.ref.name": "b"})
    index["manifests"].append(second)
    json.dump(index, open(str(d / "index.json"), "w"))
    r = pycache("convert", "--to", "unchecked-hash", str(d), "--in-place")
    assert r.returncode == 0, r.stderr
    index = json.load(open(str(d / "index.json")))
    digests = {m["digest"] for m in index["manifests"]}
    assert len(index["manifests"]) == 2 and len(digests) == 1 and second["digest"] not in digests
    if shutil.which("skopeo"):
        for tag in ("app:1", "b"):
            subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "oci:%s:%s" % (d, tag),
                            "oci:%s:x" % (tmp_path / tag.replace(":", "_"))], check=True)


def test_a_drop_over_a_lower_copy_is_a_whiteout(pycache, interpreters, tmp_path):
    """A cache layer 2 writes over layer 1's: clean drops it from layer 2,
    where a whiteout takes its place (else layer 1's would show again);
    layer 1, which provides nothing of it any more, is left as it is."""
    newest = interpreters[-1]
    root = tmp_path / "src"
    os.makedirs(str(root / "l1" / "a"))
    path = make_module(str(root / "l1" / "a"), "m", "m")
    cache = os.path.relpath(compile_source(newest, path), str(root / "l1"))
    assert cache == "a/__pycache__/m.%s.pyc" % newest.tag
    os.makedirs(os.path.dirname(str(root / "l2" / cache)))
    shutil.copy(str(root / "l1" / cache), str(root / "l2" / cache))
    l1, l2 = layer_tar(root / "l1"), layer_tar(root / "l2")
    oci_layout(tmp_path / "layout", [(l1, "gzip"), (l2, "gzip")])
    archive = tar_of(tmp_path / "layout", tmp_path / "img.tar")
    out = tmp_path / "out.tar"
    r = pycache("clean", archive, "-o", out)
    assert r.returncode == 0, r.stderr
    layers, digests, _ = read_image(out, tmp_path / "out")
    assert digests[0] == sha(_compress(l1, "gzip"))
    # The cache and its __pycache__ (left empty) go from layer 2; one
    # whiteout of the directory hides layer 1's (none for the file below it).
    names = [n for n, _ in _entries(layers[1][0])]
    assert "a/.wh.__pycache__" in names and not [n for n in names if "/__pycache__/" in n]
    rootfs = _rootfs(layers, tmp_path / "rootfs")
    assert [f for _, _, fs in os.walk(str(rootfs)) for f in fs if f.endswith(".pyc")] == []
    _, verdicts = run_json(pycache, "check", "--json", "-v", str(out))
    assert verdicts == []


def test_docker_save_in_place(pycache, interpreters, image, tmp_path):
    archive, config = docker_save(tmp_path / "saved.tar", image["layers"])
    _, before = run_json(pycache, "check", "--json", "-v", archive)
    os.chmod(archive, 0o640)
    r = pycache("convert", "--to", "checked-hash", archive, "--in-place")
    assert r.returncode == 0, r.stderr
    assert os.stat(archive).st_mode & 0o777 == 0o640
    assert [f for f in os.listdir(str(tmp_path)) if ".tmp." in f or ".layer." in f] == []
    with tarfile.open(archive) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))
        (m,) = manifest
        assert m["Config"] != config[7:] + ".json" and m["Config"] in names
        cfg = t.extractfile(m["Config"]).read()
        assert m["Config"] == hashlib.sha256(cfg).hexdigest() + ".json"
        assert config[7:] + ".json" not in names
        diff_ids = json.loads(cfg)["rootfs"]["diff_ids"]
        for path, diff_id in zip(m["Layers"], diff_ids):
            assert sha(t.extractfile(path).read()) == diff_id
    r, verdicts = run_json(pycache, "check", "--json", "-v", archive)
    after = by_member(verdicts)
    newest = interpreters[-1]
    member = "app/__pycache__/fresh_m.%s.pyc" % newest.tag
    assert by_member(before)[member][0] == after[member][0] == "fresh"
    if shutil.which("skopeo"):
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q",
                        "docker-archive:%s" % archive, "oci:%s:x" % (tmp_path / "l")],
                       check=True)


def test_refusals_write_nothing(pycache, interpreters, image, tmp_path):
    # A layer whose blob does not match its digest.
    d = tmp_path / "bad"
    with tarfile.open(image["zstd"]) as t:
        t.extractall(str(d))
    index = json.load(open(str(d / "index.json")))
    manifest = json.load(open(str(d / "blobs" / "sha256" / index["manifests"][0]["digest"][7:])))
    p = str(d / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:])
    good = open(p, "rb").read()
    data = bytearray(good)
    data[600] ^= 1
    open(p, "wb").write(bytes(data))
    bad = tar_of(d, tmp_path / "bad.tar")
    out = tmp_path / "out.tar"
    r = pycache("convert", "--to", "unchecked-hash", bad, "-o", out)
    assert r.returncode == 3 and "digest mismatch" in r.stderr, r.stderr
    # An index of two images.
    open(p, "wb").write(good)
    mbytes = json.dumps(dict(manifest, annotations={"x": "y"})).encode()
    open(str(d / "blobs" / "sha256" / hashlib.sha256(mbytes).hexdigest()), "wb").write(mbytes)
    index["manifests"].append(dict(index["manifests"][0], digest=sha(mbytes), size=len(mbytes)))
    json.dump(index, open(str(d / "index.json"), "w"))
    two = tar_of(d, tmp_path / "two.tar")
    r = pycache("clean", two, "-o", out)
    assert r.returncode == 3 and "an index of 2 images" in r.stderr, r.stderr
    r = pycache("diff", two, image["zstd"])
    assert r.returncode == 3 and "an index of 2 images" in r.stderr, r.stderr
    assert not os.path.exists(str(out))
    assert [f for f in os.listdir(str(tmp_path)) if ".tmp." in f or ".layer." in f] == []
    r = pycache("convert", "--to", "unchecked-hash", "--zipimport", image["zstd"], "-o", out)
    assert r.returncode in (2, 3) and not os.path.exists(str(out)), r.stderr


def test_a_layout_directory(pycache, interpreters, image, tmp_path):
    """A directory holding an OCI layout (recognised by its oci-layout file)
    is the image its tar is: judged the same; -o OUT writes an image tar;
    --in-place adds the new blobs and replaces index.json, the old blobs
    staying for the user's gc. skopeo and umoci read the result."""
    layout = tmp_path / "layout"
    with tarfile.open(image["gzip"]) as t:
        t.extractall(str(layout))
    _, want = run_json(pycache, "check", "--json", "-v", image["gzip"])
    r, got = run_json(pycache, "check", "--json", "-v", str(layout))
    assert r.returncode == 1, r.stderr
    assert by_member(got) == by_member(want)
    assert all(v["archive"] == str(layout) for v in got)
    r = pycache("stats", str(layout))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.tar"
    r = pycache("convert", "--to", "unchecked-hash", str(layout), "-o", out)
    assert r.returncode == 0, r.stderr
    layers, _, _ = read_image(out, tmp_path / "out")
    _, from_tar = run_json(pycache, "check", "--json", "-v", str(out))
    old_blobs = set(os.listdir(str(layout / "blobs" / "sha256")))
    r = pycache("convert", "--to", "unchecked-hash", str(layout), "--in-place")
    assert r.returncode == 0, r.stderr
    blobs = set(os.listdir(str(layout / "blobs" / "sha256")))
    assert old_blobs < blobs and len(blobs) == len(old_blobs) + 4  # 2 layers, config, manifest
    assert not [f for f in os.listdir(str(layout)) if ".tmp." in f]
    _, in_place = run_json(pycache, "check", "--json", "-v", str(layout))
    assert by_member(in_place) == by_member(from_tar)
    if shutil.which("skopeo") and shutil.which("umoci"):
        subprocess.run(["umoci", "unpack", "--rootless", "--image", "%s:app:1" % layout,
                        str(tmp_path / "bundle")], check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        assert by_member(in_place) == tree_verdicts(pycache, tmp_path / "bundle" / "rootfs")
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "oci:%s:app:1" % layout,
                        "oci:%s:app:1" % (tmp_path / "copy")], check=True)
    # A file called oci-layout that is not one: a tree like any other.
    plain = tmp_path / "plain"
    os.makedirs(str(plain))
    open(str(plain / "oci-layout"), "w").write("not json")
    open(str(plain / "index.json"), "w").write("{}")
    make_module(str(plain), "m", "m")
    compile_source(interpreters[-1], str(plain / "m.py"))
    r, verdicts = run_json(pycache, "check", "--json", "-v", str(plain))
    assert r.returncode == 0 and [v["status"] for v in verdicts] == ["fresh"], r.stderr
    assert "archive" not in verdicts[0]


def test_diff_and_verify_an_image(pycache, interpreters, image, tmp_path):
    """diff pairs an image's caches with another image's (or a tree's) by
    their path in the final file system; verify recompiles each from its
    source there. Both equal the unpacked file system's answers."""
    rootfs = _rootfs(image["layers"], tmp_path / "rootfs")
    fixed = tmp_path / "fixed.tar"
    r = pycache("convert", "--to", "unchecked-hash", image["zstd"], "-o", fixed)
    assert r.returncode == 0, r.stderr
    r = pycache("diff", "--json", image["zstd"], str(fixed))
    assert r.returncode == 0, r.stderr
    result = {v["path"]: v["result"] for v in r.json()}
    converted = [l.split()[1] for l in pycache("convert", "--to", "unchecked-hash", "-n", "-v",
                                                 image["zstd"], "-o", str(tmp_path / "x.tar")
                                                 ).stdout.splitlines()
                 if l.startswith("would-convert") or l.startswith("converted")]
    assert sorted(p for p, v in result.items() if v != "same") == \
        sorted(c[len(image["zstd"]) + 1:] for c in converted)
    assert set(result.values()) == {"same", "header"}
    # Against the unpacked file system: the same caches, the same bytes.
    r = pycache("diff", "--json", image["zstd"], str(rootfs))
    assert r.returncode == 0, r.stderr
    assert {v["result"] for v in r.json()} == {"same"}
    assert sorted(v["path"] for v in r.json()) == sorted(result)
    # verify: the image's answers are the unpacked tree's.
    r = pycache("verify", "--json", "-v", image["zstd"])
    tree = pycache("verify", "--json", "-v", str(rootfs))
    assert r.returncode == tree.returncode, (r.stderr, tree.stderr)
    mine = {v["member"]: (v["status"], v["verify"], v["code_path"]) for v in r.json()}
    theirs = {os.path.relpath(v["path"], str(rootfs)): (v["status"], v["verify"], v["code_path"])
              for v in tree.json()}
    assert mine == theirs
    newest = interpreters[-1]
    assert mine["app/__pycache__/fresh_m.%s.pyc" % newest.tag][1] == "verified"
    assert mine["app/__pycache__/edited_m.%s.pyc" % newest.tag][1] == "mismatch"


@pytest.mark.parametrize("op,errno_name,match", [
    ("write", "ENOSPC", ".layer."),
    ("write", "ENOSPC", ".tmp."),
    ("rename", "EIO", "o.tar"),
])
def test_faults_leave_nothing(image, tmp_path, op, errno_name, match, pycache_bin):
    """A full disk while a layer or the image is written, a failed rename:
    exit status 3, the error's words, nothing left beside the output, the
    image as it was."""
    shim = os.path.join(os.path.dirname(pycache_bin), "faultshim.so")
    if not os.path.exists(shim) or os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("fault shim not built or not preloadable")
    preload = [shim]
    ldd = subprocess.run(["ldd", pycache_bin], stdout=subprocess.PIPE).stdout.decode()
    for line in ldd.splitlines():
        if "libasan.so" in line and "=>" in line:
            preload.insert(0, line.split("=>")[1].split()[0])
    archive = str(tmp_path / "a.tar")
    shutil.copy(image["zstd"], archive)
    before = open(archive, "rb").read()
    log = str(tmp_path / "faults.log")
    env = dict(os.environ, LD_PRELOAD=":".join(preload), FAULTSHIM_OP=op,
               FAULTSHIM_ERRNO=errno_name, FAULTSHIM_MATCH=match, FAULTSHIM_LOG=log,
               NO_COLOR="1")
    for target in ("o.tar", None):
        if target is None and match == "o.tar":
            env["FAULTSHIM_MATCH"] = "a.tar"
        args = [pycache_bin, "convert", "--to", "unchecked-hash", archive] + \
            (["-o", str(tmp_path / target)] if target else ["--in-place"])
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert os.path.getsize(log) > 0, "the fault never happened"
        os.unlink(log)
        assert r.returncode == 3 and os.strerror(getattr(errno, errno_name)) \
            in r.stderr.decode(), r.stderr
        assert sorted(os.listdir(str(tmp_path))) == ["a.tar"], os.listdir(str(tmp_path))
        assert open(archive, "rb").read() == before


def _compress(tar, how):
    from test_image import compress
    return compress(tar, how)


def _rootfs(layers, target):
    apply_layers(layers, target)
    return target


def _entries(tar):
    """Each entry of a layer tar: (name, (type, mode, uid, gid, mtime, size
    unless a cache, link target))."""
    out = []
    with tarfile.open(fileobj=__import__("io").BytesIO(tar)) as t:
        for m in t.getmembers():
            cache = m.name.endswith(".pyc")
            out.append((m.name, (m.type, m.mode, m.uid, m.gid,
                                 m.mtime,
                                 None if cache else m.size, m.linkname)))
    return out
