"""`pycache convert`: a header rewrite that is exactly what py_compile writes.

Every 3.7+ interpreter compiles modules in each invalidation mode with its
own py_compile; `pycache convert --to MODE` rewrites them; then the
interpreter itself must load every converted pyc ('# ... matches ...'), the
file must be byte for byte what that interpreter's py_compile writes in the
new mode for the same source, and the marshalled body must be the bytes it
was. The interpreter also decides what a converted hash pyc means after a
source edit: checked is rejected, unchecked is used as it is.
"""

import os
import stat
import subprocess

import pytest

from conftest import run_unprivileged
from oracle import batch_import, compile_source, cpython_import, make_module

MODES = ["timestamp", "checked-hash", "unchecked-hash"]
T_NS = 1_600_000_000_123_456_789          # an mtime with nanoseconds
FAR_NS = 7_258_118_400_987_654_321         # year 2200: beyond 32 bits, masked

BODY = '''
def f(x, *, y=2):
    """doc"""
    return [i * y for i in range(x)] + list("abc")

class C:
    z = {"k": (1, 2.5, None, b"b", 10 ** 30)}
'''


def py_mode(mode):
    """compile_source's name for MODE (None is timestamp)."""
    return None if mode == "timestamp" else mode


def read(path):
    with open(path, "rb") as f:
        return f.read()


def snapshot(tree):
    """{path: (bytes, mtime_ns, inode)} of every file under TREE."""
    out = {}
    for d, _, files in os.walk(tree):
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            out[p] = (read(p) if not stat.S_ISLNK(st.st_mode) else os.readlink(p),
                      st.st_mtime_ns, st.st_ino)
    return out


def by_name(report):
    return {os.path.basename(o["path"]).split(".")[0]: o for o in report}


@pytest.mark.parametrize("to", MODES)
def test_every_mode_to_every_mode_is_what_py_compile_writes(pycache, interp37, tmp_path, to):
    tree = str(tmp_path / "tree")
    refs = str(tmp_path / "refs")
    os.makedirs(tree)
    os.makedirs(refs)
    modules = {}
    for frm in MODES:
        for label, ns in (("now", T_NS), ("far", FAR_NS)):
            name = "m_%s_%s" % (frm.replace("-", ""), label)
            src = make_module(tree, name, name, padding=BODY)
            os.utime(src, ns=(ns, ns))
            pyc = compile_source(interp37, src, mode=py_mode(frm))
            os.chmod(pyc, 0o640)
            modules[name] = (frm, src, pyc, read(pyc), os.stat(pyc).st_ino)
    before = set(os.listdir(os.path.join(tree, "__pycache__")))

    r = pycache("convert", "--to", to, "--json", tree)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr == ""
    actions = by_name(r.json())
    assert set(actions) == set(modules)

    for name, (frm, src, pyc, old, old_ino) in modules.items():
        new = read(pyc)
        expect_action = "already" if frm == to else "converted"
        assert actions[name]["action"] == expect_action, (name, actions[name])
        # What this interpreter's py_compile writes in mode TO for the same,
        # unchanged source: the whole file, header and body.
        ref = compile_source(interp37, src, cfile=os.path.join(refs, name + ".pyc"),
                             mode=py_mode(to))
        assert new == read(ref), (name, new[:16].hex(), read(ref)[:16].hex())
        assert new[16:] == old[16:], name  # the body is untouched
        st = os.stat(pyc)
        assert stat.S_IMODE(st.st_mode) == 0o640, name
        if frm != to:
            assert st.st_ino != old_ino, name  # a new file, renamed into place
        else:
            assert new == old and st.st_ino == old_ino, name
    # No temporary file left behind.
    assert set(os.listdir(os.path.join(tree, "__pycache__"))) == before

    # The interpreter itself loads every converted pyc.
    oracle = batch_import(interp37, tree, sorted(modules))
    for name, (frm, src, pyc, _, _) in modules.items():
        got = oracle[name]
        assert got["outcome"] == "cache", (name, got["log"][-2000:])
        assert os.path.realpath(got["used"]) == os.path.realpath(pyc)
        assert got["printed"] == name

    # Converting again changes nothing.
    again = snapshot(tree)
    r = pycache("convert", "--to", to, tree)
    assert r.returncode == 0
    assert "converted 0 files" in r.stdout and "%d already" % len(modules) in r.stdout
    assert snapshot(tree) == again


def test_checked_hash_is_rejected_after_an_edit(pycache, interp37, tmp_path):
    tree = str(tmp_path)
    src = make_module(tree, "mod", "v1", padding=BODY)
    pyc = compile_source(interp37, src)
    r = pycache("convert", "--to", "checked-hash", tree)
    assert r.returncode == 0, r.stderr
    assert cpython_import(interp37, tree, "mod") == ("cache", "v1\n")
    # An edit that keeps mtime and size: a timestamp pyc would still be used;
    # the checked hash catches it.
    st = os.stat(src)
    with open(src, "w") as f:
        f.write("print('v2')\n" + BODY)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(src).st_size == st.st_size
    assert cpython_import(interp37, tree, "mod") == ("source", "v2\n")
    assert read(pyc)[4:8] == b"\x03\x00\x00\x00"


def test_unchecked_hash_is_used_after_an_edit(pycache, interp37, tmp_path):
    tree = str(tmp_path)
    src = make_module(tree, "mod", "v1", padding=BODY)
    pyc = compile_source(interp37, src, mode="checked-hash")
    r = pycache("convert", "--to", "unchecked-hash", "-v", tree)
    assert r.returncode == 0, r.stderr
    assert "checked-hash -> unchecked-hash" in r.stdout
    with open(src, "a") as f:
        f.write("print('v2')\n")
    assert cpython_import(interp37, tree, "mod") == ("cache", "v1\n")  # stale-used
    statuses = by_name(pycache("check", "--json", "-v", tree).json())
    assert statuses["mod"]["status"] == "stale-used"
    # ... and convert will not touch it now: it is no longer fresh.
    old = read(pyc)
    r = pycache("convert", "--to", "checked-hash", "--json", tree)
    assert r.returncode == 1
    assert by_name(r.json())["mod"]["action"] == "not-fresh"
    assert read(pyc) == old


def test_not_fresh_pycs_are_left_alone(pycache, interp37, tmp_path):
    tree = str(tmp_path)
    pycs = {}
    for name in ("fresh", "mtime", "hashed", "corrupt", "orphan"):
        src = make_module(tree, name, name, padding=BODY)
        os.utime(src, ns=(T_NS, T_NS))
        pycs[name] = compile_source(interp37, src, mode="checked-hash" if name == "hashed"
                                    else None)
    os.utime(os.path.join(tree, "mtime.py"), ns=(T_NS + 10**9, T_NS + 10**9))
    with open(os.path.join(tree, "hashed.py"), "a") as f:
        f.write("# edited\n")
    with open(pycs["corrupt"], "r+b") as f:
        f.truncate(10)
    os.unlink(os.path.join(tree, "orphan.py"))
    before = snapshot(tree)

    r = pycache("convert", "--to", "unchecked-hash", "--json", tree)
    assert r.returncode == 1, r.stderr
    actions = {k: o["action"] for k, o in by_name(r.json()).items()}
    assert actions == {"fresh": "converted", "mtime": "not-fresh", "hashed": "not-fresh",
                       "corrupt": "not-fresh", "orphan": "not-fresh"}
    after = snapshot(tree)
    for name in ("mtime", "hashed", "corrupt", "orphan"):
        assert after[pycs[name]] == before[pycs[name]], name
    assert after[pycs["fresh"]][0] != before[pycs["fresh"]][0]
    # What the interpreter does with the ones left alone is what it did before.
    oracle = batch_import(interp37, tree, ["fresh", "mtime", "hashed", "corrupt"])
    assert oracle["fresh"]["outcome"] == "cache"
    assert oracle["mtime"]["outcome"] == "source"
    assert oracle["hashed"]["outcome"] == "source"
    # Human output: each one named, and the summary.
    r = pycache("convert", "--to", "unchecked-hash", tree)
    assert r.returncode == 1
    for name in ("mtime", "hashed", "corrupt", "orphan"):
        assert any(os.path.basename(pycs[name]) in l and l.startswith("not fresh")
                   for l in r.stdout.splitlines()), (name, r.stdout)
    assert r.stdout.splitlines()[-1] == (
        "converted 0 files to unchecked-hash, 1 already in that mode, "
        "4 not fresh (left alone: run `pycache compile`)")


def test_dry_run_changes_nothing(pycache, interp37, tmp_path):
    tree = str(tmp_path)
    for name in ("a", "b"):
        make_module(tree, name, name, padding=BODY)
        compile_source(interp37, os.path.join(tree, name + ".py"))
    before = snapshot(tree)
    r = pycache("convert", "-n", "--to", "checked-hash", "--json", tree)
    assert r.returncode == 1, r.stderr  # a dry run with work to do
    assert {o["action"] for o in r.json()} == {"would-convert"}
    r = pycache("convert", "--dry-run", "--to", "checked-hash", tree)
    assert r.stdout.splitlines()[-1].startswith(
        "would convert 2 files (timestamp -> checked-hash), 0 already")
    r = pycache("convert", "-n", "-0", "--to", "checked-hash", tree)
    assert r.returncode == 1
    assert sorted(r.stdout_bytes.split(b"\0")[:-1]) == sorted(
        os.fsencode(p) for p in before if p.endswith(".pyc"))
    assert snapshot(tree) == before


def test_read_only_directory(pycache, interp37, open_tmp):
    tree = os.path.join(open_tmp, "tree")
    os.makedirs(tree)
    make_module(tree, "mod", "v1", padding=BODY)
    pyc = compile_source(interp37, os.path.join(tree, "mod.py"))
    pycache_dir = os.path.dirname(pyc)
    os.chmod(tree, 0o755)
    os.chmod(pycache_dir, 0o555)
    os.chmod(pyc, 0o644)
    before = snapshot(tree)
    r = run_unprivileged("convert", "--to", "checked-hash", tree)
    assert r.returncode == 3, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0] == ("pycache convert: cannot create a temporary file beside '%s': "
                        "Permission denied" % os.path.join(tree, "__pycache__",
                                                           os.path.basename(pyc)))
    assert "1 error" in r.stdout.splitlines()[-1]
    assert snapshot(tree) == before  # nothing added, nothing changed
    assert cpython_import(interp37, tree, "mod") == ("cache", "v1\n")


def test_unreadable_source_is_an_error(pycache, interp37, open_tmp):
    tree = os.path.join(open_tmp, "tree")
    os.makedirs(tree)
    src = make_module(tree, "mod", "v1")
    pyc = compile_source(interp37, src)
    os.chmod(os.path.dirname(pyc), 0o777)
    os.chmod(src, 0o200)  # stat works, reading does not
    before = snapshot(tree)
    r = run_unprivileged("convert", "--to", "checked-hash", tree)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [
        "pycache convert: cannot open '%s': Permission denied" % src]
    assert snapshot(tree) == before


def test_symlinked_pyc_is_not_rewritten_through(pycache, interp37, tmp_path):
    tree = str(tmp_path / "tree")
    elsewhere = str(tmp_path / "elsewhere")
    os.makedirs(tree)
    os.makedirs(elsewhere)
    src = make_module(tree, "mod", "v1", padding=BODY)
    pyc = compile_source(interp37, src)
    target = os.path.join(elsewhere, "real.pyc")
    os.rename(pyc, target)
    os.symlink(target, pyc)
    assert cpython_import(interp37, tree, "mod") == ("cache", "v1\n")  # used through it
    before = snapshot(str(tmp_path))
    r = pycache("convert", "--to", "checked-hash", "--json", tree)
    assert r.returncode == 1, r.stderr
    assert [o["action"] for o in r.json()] == ["symlink"]
    assert snapshot(str(tmp_path)) == before
    r = pycache("convert", "--to", "checked-hash", tree)
    assert "1 symlink (left alone)" in r.stdout


def test_before_37_is_not_convertible(pycache, interpreters, tmp_path):
    old = [i for i in interpreters if (i.major, i.minor) < (3, 7)]
    if not old:
        pytest.skip("no interpreter before 3.7")
    tree = str(tmp_path)
    src = make_module(tree, "mod", "v1")
    for interp in old:
        compile_source(interp, src)
    before = snapshot(tree)
    r = pycache("convert", "--to", "timestamp", "--json", tree)
    assert r.returncode == 1
    got = r.json()
    assert len(got) == len({i.tag or i.short for i in old})
    assert {o["action"] for o in got} == {"not-convertible"}
    assert snapshot(tree) == before
    r = pycache("convert", "--to", "timestamp", tree)
    assert "no flags field" in r.stdout


def test_many_files_each_converted_once(pycache, tmp_path):
    """Exact counts on a directory read in several getdents calls while
    files are renamed into it (readdir may list a renamed entry again, on
    filesystems that index entries by insertion, e.g. btrfs: counted once)."""
    tree = str(tmp_path)
    n = 3000
    for i in range(n):
        make_module(tree, "m%04d" % i, i)
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", tree], check=True)
    r = pycache("convert", "--to", "checked-hash", tree)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith(
        "converted %d files (timestamp -> checked-hash), 0 already" % n)
    r = pycache("convert", "--to", "checked-hash", tree)
    assert r.stdout.splitlines()[-1].startswith("converted 0 files to checked-hash, %d already" % n)


def test_usage(pycache, tmp_path):
    r = pycache("convert", str(tmp_path))
    assert r.returncode == 2 and "--to is required" in r.stderr
    r = pycache("convert", "--to", "hash", str(tmp_path))
    assert r.returncode == 2 and "'hash'" in r.stderr
    r = pycache("convert", "--help")
    assert r.returncode == 0 and "--dry-run" in r.stdout
