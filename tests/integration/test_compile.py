"""pycache compile: what it writes is what each interpreter writes and loads.

The oracle is CPython: every cache file pycache has an interpreter write is
imported by that same interpreter (batch_import: loaded from the cache, at
the right -O level), its marshalled body is compared with what that
interpreter's py_compile writes for the same source, and compileall's own
file names (-d/--strip/--prepend) are compared with compileall's. Wrapper
interpreters named pythonX.Y log every start, to prove that a run on a
fresh tree starts none.
"""

import glob
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import build_has, evict, needs, run_unprivileged
from oracle import batch_import, compile_source

def header_len(interp):
    if interp.major == 2:
        return 8
    return 16 if (interp.major, interp.minor) >= (3, 7) else 12


def make_tree(root):
    """A small package tree: a plain module, one with docstrings and asserts
    (so optimization levels differ), one in a subpackage."""
    os.makedirs(os.path.join(root, "sub"))
    files = {
        "plain.py": "print('plain')\nX = [1, 2, 3]\n",
        "doc.py": 'def f():\n    """a docstring"""\n    assert f\n    return 1\nprint("doc")\n',
        "sub/__init__.py": "",
        "sub/leaf.py": "print('leaf')\n",
    }
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    return ["plain", "doc"]


def opt_flags(level):
    return ["-" + "O" * level] if level else []


def cache_of(interp, source, level):
    """The cache file INTERP reads for SOURCE at LEVEL (its own rule)."""
    if interp.major == 2:
        return source + ("o" if level else "c")
    code = ("import importlib.util, sys; sys.stdout.write("
            "importlib.util.cache_from_source(sys.argv[1], optimization=%r))"
            % (level or ""))
    return interp.run(code, source).stdout.decode()


def wrapper(tmp, interp, log):
    """An executable named pythonX.Y that logs each start, then runs INTERP."""
    bindir = os.path.join(str(tmp), "bin")
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, "python%d.%d" % (interp.major, interp.minor))
    with open(path, "w") as f:
        f.write('#!/bin/sh\necho start >> "%s"\nexec "%s" "$@"\n' % (log, interp.path))
    os.chmod(path, 0o755)
    return path


def starts(log):
    if not os.path.exists(log):
        return 0
    with open(log) as f:
        return len(f.read().split())


def temp_files(root):
    """CPython's _write_atomic temp names (NAME.pyc.DIGITS) left anywhere."""
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.join(d, n) for n in names if re.search(r"\.py[co]\.\d+$", n)]
    return out


MODES = [None, "checked-hash", "unchecked-hash"]


@pytest.mark.parametrize("mode", MODES)
def test_caches_load_and_match_py_compile(pycache, interp, mode, tmp_path):
    if mode and (interp.major, interp.minor) < (3, 7):
        pytest.skip("hash-based pycs are 3.7+")
    root = str(tmp_path / "t")
    modules = make_tree(root)
    levels = [0, 1] if interp.major == 2 else [0, 1, 2]
    args = ["compile", "--python", interp.path, "-o", ",".join(map(str, levels)), root]
    if mode:
        args += ["--invalidation-mode", mode]
    r = pycache(*args)
    assert r.returncode == 0, r.stderr
    for level in levels:
        # The interpreter loads every file written, at its -O level.
        seen = batch_import(interp, root, modules, flags=opt_flags(level))
        for m in modules:
            assert seen[m]["outcome"] == "cache", (level, m, seen[m]["log"][-600:])
        # Byte for byte what its py_compile writes (after the header).
        for name in ["plain.py", "doc.py", "sub/leaf.py"]:
            src = os.path.join(root, name)
            ours = cache_of(interp, src, level)
            with open(ours, "rb") as f:
                data = f.read()
            theirs = compile_source(interp, src, cfile=str(tmp_path / "ref.pyc"), mode=mode,
                                    optimize=level)
            with open(theirs, "rb") as f:
                ref = f.read()
            h = header_len(interp)
            assert data[:4] == interp.magic_bytes
            assert data[h:] == ref[h:], (name, level)
            if h == 16:
                flags = int.from_bytes(data[4:8], "little")
                assert flags == {None: 0, "checked-hash": 3, "unchecked-hash": 1}[mode]
                assert data[:16] == ref[:16]
    assert temp_files(root) == []


def test_second_run_starts_no_interpreter(pycache, interp, tmp_path):
    log = str(tmp_path / "starts.log")
    py = wrapper(tmp_path, interp, log)
    root = str(tmp_path / "t")
    make_tree(root)
    r = pycache("compile", "-v", "--python", py, root)
    assert r.returncode == 0, r.stderr
    assert starts(log) >= 1
    assert re.search(r"compiled 4 files for %s \(opt 0\)" % re.escape(interp.short), r.stdout)
    first = starts(log)
    r = pycache("compile", "-v", "--python", py, root)
    assert r.returncode == 0, r.stderr
    assert starts(log) == first
    assert "0 interpreters started" in r.stdout
    assert re.search(r"compiled 0 files for .*, 4 already fresh", r.stdout)


def test_dry_run_starts_nothing_writes_nothing(pycache, interp, tmp_path):
    log = str(tmp_path / "starts.log")
    py = wrapper(tmp_path, interp, log)
    root = str(tmp_path / "t")
    make_tree(root)
    r = pycache("compile", "-n", "--json", "--python", py, root)
    assert r.returncode == 1, r.stderr  # a dry run with work to do
    objs = r.json()
    assert sorted(o["source"] for o in objs) == sorted(
        os.path.join(root, n) for n in ["plain.py", "doc.py", "sub/__init__.py", "sub/leaf.py"])
    assert {o["action"] for o in objs} == {"would-compile"}
    assert starts(log) == 0
    assert not [p for p in glob.glob(root + "/**/*.py[co]", recursive=True)]


def test_size_only_change_is_recompiled(pycache, interp3, tmp_path):
    """3.3+ compare the size too: same mtime, other size -> stale."""
    interp = interp3
    root = str(tmp_path / "t")
    os.makedirs(root)
    src = os.path.join(root, "m.py")
    with open(src, "w") as f:
        f.write("print('one')\n")
    assert pycache("compile", "--python", interp.path, root).returncode == 0
    st = os.stat(src)
    with open(src, "w") as f:
        f.write("print('three')\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = pycache("compile", "--json", "--python", interp.path, root)
    assert r.returncode == 0, r.stderr
    (o,) = r.json()
    assert (o["action"], o["reason"]) == ("compiled", "size")
    seen = batch_import(interp, root, ["m"])
    assert seen["m"]["outcome"] == "cache" and seen["m"]["printed"] == "three"


@pytest.mark.parametrize("mode", ["checked-hash", "unchecked-hash"])
def test_fresh_hash_pycs_left_alone(pycache, interp37, mode, tmp_path):
    """compileall recompiles them on every run (CPython #121577)."""
    interp = interp37
    log = str(tmp_path / "starts.log")
    py = wrapper(tmp_path, interp, log)
    root = str(tmp_path / "t")
    make_tree(root)
    assert pycache("compile", "--python", py, "--invalidation-mode", mode, root).returncode == 0
    first = starts(log)
    pyc = cache_of(interp, os.path.join(root, "plain.py"), 0)
    before = os.stat(pyc)
    r = pycache("compile", "-v", "--python", py, "--invalidation-mode", mode, root)
    assert r.returncode == 0, r.stderr
    assert starts(log) == first and "0 interpreters started" in r.stdout
    after = os.stat(pyc)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    # A changed source is recompiled, even under unchecked-hash.
    with open(os.path.join(root, "plain.py"), "a") as f:
        f.write("print('more')\n")
    r = pycache("compile", "--json", "--python", py, "--invalidation-mode", mode, root)
    acts = {os.path.basename(o["source"]): (o["action"], o["reason"]) for o in r.json()}
    assert "plain.py" in acts, (r.stdout, r.stderr)
    assert acts["plain.py"] == ("compiled", "hash")
    assert batch_import(interp, root, ["plain"])["plain"]["printed"] == "plain\nmore"


@pytest.mark.parametrize("to", ["checked-hash", "unchecked-hash", "timestamp"])
def test_mode_change_rewrites_the_header(pycache, interp37, to, tmp_path):
    """Fresh timestamp pycs are rewritten when checked-hash is asked for
    (compileall keeps them: CPython #117204), without an interpreter."""
    interp = interp37
    log = str(tmp_path / "starts.log")
    py = wrapper(tmp_path, interp, log)
    root = str(tmp_path / "t")
    modules = make_tree(root)
    start_mode = "checked-hash" if to == "timestamp" else "timestamp"
    assert pycache("compile", "--python", py, "--invalidation-mode", start_mode,
                   root).returncode == 0
    first = starts(log)
    r = pycache("compile", "--json", "--python", py, "--invalidation-mode", to, root)
    assert r.returncode == 0, r.stderr
    assert {o["action"] for o in r.json()} == {"rewritten"}
    assert starts(log) == first
    for name in ["plain.py", "doc.py"]:
        src = os.path.join(root, name)
        with open(cache_of(interp, src, 0), "rb") as f:
            data = f.read()
        ref = compile_source(interp, src, cfile=str(tmp_path / "ref.pyc"),
                             mode=None if to == "timestamp" else to)
        with open(ref, "rb") as f:
            assert f.read() == data
    seen = batch_import(interp, root, modules)
    assert all(seen[m]["outcome"] == "cache" for m in modules)


def interpreter_message(interp, src):
    code = ("import py_compile, sys\n"
            "try:\n    py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)\n"
            "except py_compile.PyCompileError as e:\n    sys.stdout.write(e.msg)\n")
    return interp.run(code, src, src + ".ref").stdout.decode().strip()


def test_syntax_error_reported_rest_compiled(pycache, interp, tmp_path):
    root = str(tmp_path / "t")
    modules = make_tree(root)
    bad = os.path.join(root, "bad.py")
    with open(bad, "w") as f:
        f.write("x = 1\ndef (:\n")
    r = pycache("compile", "--python", interp.path, root)
    assert r.returncode == 1
    msg = interpreter_message(interp, bad)
    assert 'File "%s", line 2' % bad in msg
    for line in msg.splitlines():
        assert line.strip() in r.stderr
    assert re.search(r"compiled 4 files .* 1 error", r.stdout)
    seen = batch_import(interp, root, modules)
    assert all(seen[m]["outcome"] == "cache" for m in modules)
    assert not os.path.exists(cache_of(interp, bad, 0))


def test_read_only_directory(open_tmp, interpreters):
    """A directory nobody may write: the worker's OSError, exit 3."""
    interp = [i for i in interpreters if i.path == "/usr/bin/python3"]
    if not interp:
        pytest.skip("no /usr/bin/python3 for an unprivileged user")
    root = os.path.join(open_tmp, "t")
    os.makedirs(os.path.join(root, "ro"))
    os.makedirs(os.path.join(root, "rw"))
    for d in ("ro", "rw"):
        with open(os.path.join(root, d, "m.py"), "w") as f:
            f.write("x = 1\n")
    os.chmod(os.path.join(root, "ro"), 0o555)
    os.chmod(root, 0o777)
    os.chmod(os.path.join(root, "rw"), 0o777)
    r = run_unprivileged("compile", "--python", "/usr/bin/python3", root)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "cannot compile '%s/ro/m.py'" % root in r.stderr
    assert "Permission denied" in r.stderr
    assert os.path.exists(os.path.join(root, "rw", "__pycache__"))
    assert not os.path.exists(os.path.join(root, "ro", "__pycache__"))


KILLER = r'''#!/bin/sh
# Runs %(real)s with a py_compile.compile that kills its own process when
# it gets a source named KILLME (once, or always).
exec %(real)s -c '
import sys, os
real, marker, always, args = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
i = args.index("-c")
hook = """
import py_compile as _pc, os as _os
_orig = _pc.compile
def _compile(file, *a, **k):
    if "KILLME" in str(file) and (%%r or not _os.path.exists(%%r)):
        open(%%r, "a").close()
        _os.kill(_os.getpid(), 9)
    return _orig(file, *a, **k)
_pc.compile = _compile
""" %% (always, marker, marker)
code = args[i + 1].replace("import py_compile\n", "import py_compile\n" + hook, 1)
os.execv(real, [real] + args[:i + 1] + [code] + args[i + 2:])
' %(real)s %(marker)s %(always)s "$@"
'''


@pytest.mark.parametrize("always", [False, True])
def test_killed_worker_retried_once(pycache, interp, always, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    py = str(bindir / ("python%d.%d" % (interp.major, interp.minor)))
    with open(py, "w") as f:
        f.write(KILLER % {"real": interp.path, "marker": str(tmp_path / "killed"),
                          "always": "1" if always else "0"})
    os.chmod(py, 0o755)
    root = str(tmp_path / "t")
    modules = make_tree(root)
    with open(os.path.join(root, "KILLME.py"), "w") as f:
        f.write("print('survived')\n")
    r = pycache("compile", "-j", "2", "--python", py, root)
    assert "killed by signal 9" in r.stderr
    assert "KILLME.py" in r.stderr
    if always:
        assert r.returncode == 1
        assert "died twice" in r.stderr
        assert not os.path.exists(cache_of(interp, os.path.join(root, "KILLME.py"), 0))
    else:
        assert r.returncode == 0, r.stderr
        assert "trying it once more" in r.stderr
        modules.append("KILLME")
    seen = batch_import(interp, root, modules)
    assert all(seen[m]["outcome"] == "cache" for m in modules), seen
    assert temp_files(root) == []


def test_exclude_and_input_lists(pycache, interp, tmp_path):
    root = str(tmp_path / "t")
    make_tree(root)
    r = pycache("compile", "--json", "-x", r"sub/|doc\.py$", "--python", interp.path, root)
    assert r.returncode == 0, r.stderr
    assert [os.path.basename(o["source"]) for o in r.json()] == ["plain.py"]
    # -i: newline-separated; -i -0: NUL-separated, any byte allowed.
    odd = os.path.join(root, "we ird\tname.py")
    with open(odd, "w") as f:
        f.write("x = 1\n")
    lst = tmp_path / "list0"
    lst.write_bytes(os.fsencode(odd) + b"\0" + os.fsencode(os.path.join(root, "doc.py")) + b"\0")
    r = pycache("compile", "--json", "-i", str(lst), "-0", "--python", interp.path)
    assert r.returncode == 0, r.stderr
    assert sorted(o["source"] for o in r.json()) == sorted([odd, os.path.join(root, "doc.py")])
    assert os.path.exists(cache_of(interp, odd, 0))
    r = pycache("compile", "--json", "-i", "-", "--python", interp.path,
                input=(os.path.join(root, "sub") + "\n").encode())
    assert sorted(os.path.basename(o["source"]) for o in r.json()) == ["__init__.py", "leaf.py"]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_maxlevels_count_from_the_root_in_a_parallel_scan(pycache, interp3, threads, tmp_path):
    """-l / -r count directories below the root, whichever thread walks
    them (a parallel scan hands depth-1 directories to other threads)."""
    interp = interp3
    root = str(tmp_path / "t")
    make_tree(root)
    os.makedirs(os.path.join(root, "sub", "deeper"))
    with open(os.path.join(root, "sub", "deeper", "x.py"), "w") as f:
        f.write("x = 1\n")
    expect = {
        ("-l",): ["doc.py", "plain.py"],
        ("-r", "0"): ["doc.py", "plain.py"],
        ("-r", "1"): ["doc.py", "plain.py", "sub/__init__.py", "sub/leaf.py"],
        ("-r", "2"): ["doc.py", "plain.py", "sub/__init__.py", "sub/deeper/x.py", "sub/leaf.py"],
    }
    for opts, names in expect.items():
        r = pycache("compile", "-n", "--json", "--python", interp.path, *opts, root,
                    env={"PYCACHE_THREADS": threads})
        assert r.returncode == 1, r.stderr
        assert sorted(os.path.relpath(o["source"], root) for o in r.json()) == names, opts


def test_pycache_directories_are_skipped_as_compileall_does(pycache, interp3, tmp_path):
    """compileall's _walk_dir skips every entry named __pycache__, a
    directory below one included; so does compile (its walk never enters
    them; one that cannot be opened beside sources is still reported once:
    test_hostile_trees.test_permissions)."""
    interp = interp3
    root = str(tmp_path / "t")
    make_tree(root)
    inner = os.path.join(root, "sub", "__pycache__", "deep", "inner.py")
    os.makedirs(os.path.dirname(inner))
    with open(inner, "w") as f:
        f.write("print('inner')\n")
    ref = str(tmp_path / "ref")
    make_tree(ref)
    os.makedirs(os.path.join(ref, "sub", "__pycache__", "deep"))
    with open(os.path.join(ref, "sub", "__pycache__", "deep", "inner.py"), "w") as f:
        f.write("print('inner')\n")
    subprocess.run([interp.path, "-m", "compileall", "-q", ref], check=True)
    assert not os.path.exists(cache_of(interp, os.path.join(ref, "sub", "__pycache__", "deep",
                                                            "inner.py"), 0))
    r = pycache("compile", "-n", "--json", "--python", interp.path, root)
    assert r.returncode == 1, r.stderr
    assert sorted(os.path.relpath(o["source"], root) for o in r.json()) == sorted(
        ["plain.py", "doc.py", "sub/__init__.py", "sub/leaf.py"])
    # A __pycache__ that is no directory at all is no error (py_compile's
    # own failure to write there is).
    os.rename(os.path.join(root, "sub", "__pycache__"), str(tmp_path / "away"))
    with open(os.path.join(root, "sub", "__pycache__"), "w") as f:
        f.write("not a directory\n")
    r = pycache("compile", "-n", "--json", "--python", interp.path, root)
    assert r.returncode == 1, r.stderr
    assert {o["reason"] for o in r.json()} == {"no-cache"}


def co_filename(interp, pyc):
    code = ("import marshal, sys; f = open(sys.argv[1], 'rb'); f.read(%d); "
            "sys.stdout.write(marshal.load(f).co_filename)" % header_len(interp))
    return interp.run(code, pyc).stdout.decode()


@pytest.mark.parametrize("opts", [["-d", "/ddir"], ["--strip", "STRIP"],
                                  ["--prepend", "/pre"], ["--strip", "STRIP", "--prepend", "/x"]])
def test_recorded_file_names_match_compileall(pycache, interp3, opts, tmp_path):
    interp = interp3
    if interp.minor < 9:
        # -s/-p are 3.9+; and before 3.9 compileall -d recorded DDIR/NAME for
        # files in subdirectories too (bpo-39769): pycache follows 3.9+.
        pytest.skip("compileall's 3.9+ rules")
    results = {}
    for who in ("pycache", "compileall"):
        base = tmp_path / who
        root = str(base / "t")
        make_tree(root)
        o = [a.replace("STRIP", str(base)) for a in opts]
        if who == "pycache":
            r = pycache("compile", "--python", interp.path, *(o + [root]))
            assert r.returncode == 0, r.stderr
        else:
            o = ["-s" if a == "--strip" else "-p" if a == "--prepend" else a for a in o]
            interp.run("import compileall, sys; sys.argv[0] = 'compileall'; "
                       "sys.exit(not compileall.main())", *(["-q"] + o + [root]))
        results[who] = [co_filename(interp, cache_of(interp, os.path.join(root, n), 0))
                        .replace(str(base), "BASE")
                        for n in ("plain.py", "sub/leaf.py")]
    assert results["pycache"] == results["compileall"]


def test_legacy_sourceless(pycache, interp3, tmp_path):
    interp = interp3
    root = str(tmp_path / "t")
    modules = make_tree(root)
    r = pycache("compile", "--legacy", "--python", interp.path, root)
    assert r.returncode == 0, r.stderr
    for m in modules:
        os.unlink(os.path.join(root, m + ".py"))
    seen = batch_import(interp, root, modules)
    assert all(seen[m]["outcome"] == "sourceless" for m in modules), seen
    assert not os.path.exists(os.path.join(root, "__pycache__"))


def test_prefix_tree(pycache, interp38, tmp_path):
    interp = interp38
    root = str(tmp_path / "t")
    prefix = str(tmp_path / "prefix")
    modules = make_tree(root)
    log = str(tmp_path / "starts.log")
    py = wrapper(tmp_path, interp, log)
    r = pycache("compile", "--prefix", prefix, "--python", py, root)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(root, "__pycache__"))
    seen = batch_import(interp, root, modules, prefix=prefix)
    assert all(seen[m]["outcome"] == "cache" for m in modules), seen
    first = starts(log)
    r = pycache("compile", "-v", "--prefix", prefix, "--python", py, root)
    assert starts(log) == first and "0 interpreters started" in r.stdout


def test_hardlink_dupes(pycache, interp3, tmp_path):
    interp = interp3
    if interp.minor < 5:
        pytest.skip("opt-N.pyc names are 3.5+")
    root = str(tmp_path / "t")
    make_tree(root)
    r = pycache("compile", "--hardlink-dupes", "-o", "0,1,2", "--python", interp.path, root)
    assert r.returncode == 0, r.stderr

    def ino(name, level):
        return os.stat(cache_of(interp, os.path.join(root, name), level)).st_ino
    # No docstring, no assert: all three levels are the same bytes.
    assert ino("plain.py", 0) == ino("plain.py", 1) == ino("plain.py", 2)
    # -O drops the assert, -OO the docstring too: all different.
    assert len({ino("doc.py", 0), ino("doc.py", 1), ino("doc.py", 2)}) == 3
    seen = batch_import(interp, root, ["plain", "doc"], flags=["-OO"])
    assert all(v["outcome"] == "cache" for v in seen.values())


def test_usage_errors(pycache, tmp_path):
    assert pycache("compile", "--hardlink-dupes", str(tmp_path)).returncode == 2
    assert pycache("compile", "-d", "x", "--strip", "y", str(tmp_path)).returncode == 2
    assert pycache("compile", "-o", "3", str(tmp_path)).returncode == 2
    assert pycache("compile", "--python", "/nonexistent/python3", str(tmp_path)).returncode == 2
    r = pycache("compile", "--python", "2.7", "-o", "1,2", str(tmp_path))
    if "no Python 2.7" not in r.stderr:
        assert r.returncode == 2 and "same file" in r.stderr


@pytest.mark.parametrize("pattern", ["j" + "+" * 30, "a*{2}", "((a{100}){100}){100}"])
def test_exclude_refuses_patterns_that_explode(pycache, tmp_path, pattern):
    """glibc's regcomp copies a quantified subexpression once per repetition:
    stacked quantifiers and nested bounds would take gigabytes. They are
    refused as usage errors, in one line, before any work."""
    r = pycache("compile", "-n", "-x", pattern, str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.splitlines()[0].startswith("pycache compile: -x: refusing")


# ---- batched header reads (read_batch_heads in cmd_compile.c) --------------------------


@pytest.fixture(scope="module")
def damaged_tree(tmp_path_factory, interpreters, pycache_bin):
    """(tree, argv): one directory of 80 sources (two batches of 64) and
    four small packages, compiled by two 3.7+ interpreters at levels 0 and 1,
    then damaged one module per kind: what a no-op compile judges from the
    headers it reads. ARGV: the dry-run compile of it, for both."""
    pys = [i for i in interpreters if (i.major, i.minor) >= (3, 7)]
    tags = {}
    for i in pys:
        tags.setdefault(i.tag, i)
    pys = sorted(tags.values(), key=lambda i: (i.major, i.minor))
    pys = pys[:1] + pys[-1:] if len(pys) > 1 else pys
    if not pys:
        pytest.skip("no 3.7+ interpreter here")
    tree = str(tmp_path_factory.mktemp("batched") / "tree")
    dirs = [os.path.join(tree, "flat")] + [os.path.join(tree, "p%d" % k) for k in range(4)]
    for n, d in zip([80, 10, 10, 10, 10], dirs):
        os.makedirs(d)
        for k in range(n):
            with open(os.path.join(d, "m%02d.py" % k), "w") as f:
                f.write("X = %d\n" % k)
    os.symlink("m11.py", os.path.join(dirs[0], "link.py"))  # a source, unbatched
    py_args = [a for i in pys for a in ("--python", i.path)]
    env = dict(os.environ, NO_COLOR="1")
    subprocess.run([pycache_bin, "compile", "-q", "-o", "0", "-o", "1"] + py_args + [tree],
                   check=True, env=env)
    flat = dirs[0]

    def caches(name):
        return sorted(glob.glob(os.path.join(flat, "__pycache__", name + ".*.pyc")))

    def rewrite(name, fn):
        for p in caches(name):
            with open(p, "r+b") as f:
                fn(f, p)

    st = os.stat(os.path.join(flat, "m00.py"))
    os.utime(os.path.join(flat, "m00.py"), ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    st = os.stat(os.path.join(flat, "m01.py"))
    with open(os.path.join(flat, "m01.py"), "a") as f:
        f.write("# grown\n")
    os.utime(os.path.join(flat, "m01.py"), ns=(st.st_atime_ns, st.st_mtime_ns))
    rewrite("m02", lambda f, p: f.truncate(7))               # a short header
    rewrite("m03", lambda f, p: f.truncate(16))              # header only: no body
    rewrite("m04", lambda f, p: f.write(b"\x00\x00\r\n"))    # a magic nobody has
    for p in caches("m05"):                                  # missing
        os.unlink(p)
    for p in caches("m06"):                                  # a link (followed by the
        os.unlink(p)                                         # plain read only)
        os.symlink(os.path.basename(p).replace("m06", "m07"), p)
    for p in caches("m08"):                                  # a FIFO: never waited on
        os.unlink(p)
        os.mkfifo(p)
    for p in caches("m09"):                                  # a directory
        os.unlink(p)
        os.mkdir(p)
    for p in caches("m10"):                                  # another file's header
        shutil.copyfile(caches("m12")[0], p)
    # m13: fresh, in another invalidation mode (rewritten header-only).
    subprocess.run([pycache_bin, "compile", "-q", "-f", "--invalidation-mode", "checked-hash",
                    "-o", "0", "-o", "1"] + py_args + [os.path.join(flat, "m13.py")],
                   check=True, env=env)
    argv = ["compile", "-n", "-v", "--json", "--invalidation-mode", "timestamp",
            "-o", "0", "-o", "1"] + py_args + [tree]
    return tree, argv


def test_batched_header_reads_change_no_decision(pycache, pycache_bin, damaged_tree):
    """compile reads the cache headers of a directory's sources in io_uring
    batches; PYCACHE_IO_URING=0 reads each on its own. Every decision and
    reason must be the same, and the batches must have run."""
    tree, argv = damaged_tree
    batched = pycache(*argv)
    plain = pycache(*argv, env={"PYCACHE_IO_URING": "0"})
    assert batched.returncode == plain.returncode == 1, (batched.stderr, plain.stderr)
    assert batched.stderr == plain.stderr
    assert batched.stdout == plain.stdout
    actions = {}
    for o in batched.json():
        if "action" in o and os.path.dirname(o["source"]) == os.path.join(tree, "flat"):
            name = os.path.basename(o["source"])
            actions.setdefault(name, set()).add((o["action"], o.get("reason")))
    # Each kind of damage was seen (so the comparison above covers it).
    assert {a for a, _ in actions["m05.py"]} == {"would-compile"}
    assert {a for a, _ in actions["m13.py"]} == {"would-rewrite"}
    assert {a for a, _ in actions["m14.py"]} == {"fresh"}
    assert len({r for k in ("m00", "m01", "m02", "m03", "m04", "m10")
                for _, r in actions[k + ".py"]}) >= 3
    # -v warns of m13's mode change only (a cache once in another mode
    # left the warning set for the later sources judged in its slot).
    warned = re.findall(r"warning: '([^']*)' is checked-hash", batched.stderr)
    assert warned and {os.path.basename(p).split(".")[0] for p in warned} == {"m13"}
    if os.environ.get("PYCACHE_VALGRIND") or not build_has("io_uring"):
        return  # no strace under valgrind; no batches in a portable build
    log = os.path.join(os.path.dirname(tree), "strace.log")
    env = dict(os.environ, NO_COLOR="1")
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    r = subprocess.run([shutil.which("strace"), "-f", "-qq", "-e", "trace=io_uring_enter",
                        "-o", log, pycache_bin] + argv,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert r.returncode == 1, r.stderr
    assert r.stdout == batched.stdout_bytes
    with open(log) as f:
        assert "io_uring_enter(" in f.read()


@needs("io_uring")
def test_cold_batches_change_no_decision(pycache, pycache_bin, damaged_tree):
    """With the caches out of the page cache, a batch comes back mostly
    -EAGAIN: the next batches are hinted first (prefetch.c) and read the
    same. The decisions must be those of the plain reads."""
    if os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("valgrind runs the binary: no strace under it")
    tree, argv = damaged_tree
    plain = pycache(*argv, env={"PYCACHE_IO_URING": "0"})
    if not evict(tree):
        pytest.skip("the page cache of %s cannot be dropped (tmpfs?)" % tree)
    log = os.path.join(os.path.dirname(tree), "strace-cold.log")
    env = dict(os.environ, NO_COLOR="1", PYCACHE_THREADS="1")
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    r = subprocess.run([shutil.which("strace"), "-f", "-qq", "-e", "trace=fadvise64",
                        "-o", log, pycache_bin] + argv,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert r.returncode == plain.returncode == 1, r.stderr
    assert r.stdout == plain.stdout_bytes
    with open(log) as f:
        assert "POSIX_FADV_WILLNEED" in f.read()
