"""The environment CPython follows, followed by every command.

PYTHONPYCACHEPREFIX exported in the shell: CPython 3.8+ reads and writes its
caches only in the prefix, 2.7-3.7 ignore it (config_init_pycache_prefix,
importlib's cache_from_source). check, prune, compile, stats, convert and
where must judge, remove and write where the interpreter would, with
--prefix / --no-prefix to override, and say once which prefix is in force.
Installed interpreters (clean --uninstalled) are found by one documented
rule, printed before anything is removed. The oracle is the interpreter:
each tree is made by a real interpreter importing with the variable set,
and what compile writes is then imported by it.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import discover_interpreters


def newest(pred):
    found = [i for i in discover_interpreters() if pred(i)]
    return found[-1] if found else None


PY38 = newest(lambda i: (i.major, i.minor) >= (3, 8) and i.implementation == "cpython")
# An interpreter without a prefix that writes __pycache__: 3.2-3.7.
PY37 = newest(lambda i: (3, 2) <= (i.major, i.minor) < (3, 8))
PY2 = newest(lambda i: i.major == 2)

needs38 = pytest.mark.skipif(PY38 is None, reason="no CPython 3.8+ here")
needs37 = pytest.mark.skipif(PY37 is None, reason="no Python 3.2-3.7 here")


def import_in(interp, root, modules, prefix):
    """Imports MODULES with ROOT first on sys.path, PYTHONPYCACHEPREFIX=PREFIX
    in the environment (None: unset); returns {module: __cached__}."""
    code = ("import importlib, json, sys; sys.path.insert(0, sys.argv[1]); "
            "out = {}\n"
            "for name in sys.argv[2:]:\n"
            "    m = importlib.import_module(name)\n"
            "    out[name] = getattr(m, '__cached__', None)\n"
            "print(json.dumps(out))")
    env = {"PYTHONPYCACHEPREFIX": prefix} if prefix else {}
    return json.loads(interp.run(code, root, *modules, env=env).stdout.decode())


def make_project(tmp_path):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "m.py").write_text("X = 1\n")
    (root / "pkg" / "gone.py").write_text("Y = 2\n")
    return str(root)


def mirror(prefix, path):
    return prefix + os.path.realpath(path)


@needs38
def test_check_and_prune_follow_the_exported_prefix(pycache, tmp_path):
    """The issue's report: with the prefix exported, check and prune saw no
    cache at all. Now the orphan in the prefix is found and removed, and the
    2.7-3.7 caches in __pycache__ are judged beside it."""
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    cached = import_in(PY38, root, ["pkg.m", "pkg.gone"], prefix)
    assert cached["pkg.m"].startswith(prefix + "/")  # the oracle: 3.8+ uses it
    interps = [PY38]
    if PY37 is not None:
        import_in(PY37, root, ["pkg.m", "pkg.gone"], prefix)
        interps.append(PY37)
    os.unlink(os.path.join(root, "pkg", "gone.py"))
    env = {"PYTHONPYCACHEPREFIX": prefix}
    gone38 = os.path.join(mirror(prefix, root), "pkg", "gone.%s.pyc" % PY38.tag)

    r = pycache("check", "--json", "--fail-on", "all", root, env=env)
    assert r.returncode == 1, r.stderr  # orphans are clutter: --fail-on all
    assert r.stderr == ""  # the note is for human output only
    got = {o["path"]: (o["status"], o["kind"]) for o in r.json()}
    expect = {gone38: ("orphan", "prefix")}
    if PY37 is not None:
        expect[os.path.join(root, "pkg", "__pycache__", "gone.%s.pyc" % PY37.tag)] = (
            "orphan", "pycache")
    assert got == expect

    # Human output says once which prefix is in force, and where it came from.
    r = pycache("check", root, env=env)
    assert r.stderr.count("cache prefix '%s' ($PYTHONPYCACHEPREFIX)" % prefix) == 1, r.stderr
    assert "orphan" in r.stdout

    # --no-prefix: as without the variable (the prefix entries unseen).
    r = pycache("check", "--json", "-v", "--no-prefix", root, env=env)
    assert not [o for o in r.json() if o["kind"] == "prefix"]
    assert "ignored (--no-prefix)" not in r.stderr  # --json: no note
    r = pycache("check", "--no-prefix", root, env=env)
    assert "PYTHONPYCACHEPREFIX '%s' ignored (--no-prefix)" % prefix in r.stderr
    # --prefix DIR overrides the variable.
    other = str(tmp_path / "elsewhere")
    r = pycache("check", "--json", "-v", "--prefix", other, root, env=env)
    assert not [o for o in r.json() if o["kind"] == "prefix"]

    r = pycache("prune", "-n", root, env=env)
    assert r.returncode == 1 and gone38 in r.stdout
    r = pycache("prune", "--json", root, env=env)
    assert r.returncode == 0, r.stderr
    assert {o["path"] for o in r.json() if o["action"] == "removed"} == set(expect)
    assert not os.path.exists(gone38)
    # The fresh caches stay, and each interpreter still loads its own.
    for interp in interps:
        cached = import_in(interp, root, ["pkg.m"], prefix)["pkg.m"]
        assert os.path.exists(cached)
        if interp is PY38:
            assert cached.startswith(prefix + "/")
        else:
            assert "__pycache__" in cached
    assert pycache("check", root, env=env).returncode == 0


@needs38
def test_compile_writes_where_the_interpreter_reads(pycache, tmp_path):
    """compile --python 3.8+ with the prefix exported writes into the prefix
    (compileall would), and the interpreter then loads that file without
    compiling again: its __cached__ is the file compile wrote, which is not
    replaced (same inode, same bytes) by the import."""
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    env = {"PYTHONPYCACHEPREFIX": prefix}
    r = pycache("compile", "-n", "--python", PY38.path, root, env=env)
    assert r.returncode == 1, r.stderr  # a dry run with work to do
    want = os.path.join(mirror(prefix, root), "pkg", "m.%s.pyc" % PY38.tag)
    assert want in r.stdout  # listed without -v
    r = pycache("compile", "--python", PY38.path, root, env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(want)
    assert not os.path.exists(os.path.join(root, "pkg", "__pycache__"))
    before = os.stat(want)
    with open(want, "rb") as f:
        data = f.read()
    cached = import_in(PY38, root, ["pkg.m"], prefix)["pkg.m"]
    assert cached == want
    after = os.stat(want)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    with open(want, "rb") as f:
        assert f.read() == data
    # Nothing left to do, by the same rule.
    r = pycache("compile", "-n", "--python", PY38.path, root, env=env)
    assert r.returncode == 0 and "would-compile" not in r.stdout
    r = pycache("check", "--expect", PY38.short, root, env=env)
    assert r.returncode == 0, r.stdout
    # --no-prefix: as without the variable, __pycache__.
    r = pycache("check", "--expect", PY38.short, "--no-prefix", "--json", root, env=env)
    assert r.returncode == 1
    assert {o["status"] for o in r.json()} == {"missing"}
    assert all("/__pycache__/" in o["path"] for o in r.json())


@needs37
def test_compile_for_an_interpreter_without_prefix(pycache, tmp_path):
    """2.7-3.7 ignore PYTHONPYCACHEPREFIX: compile writes their caches
    beside the sources, where they load from with the variable set."""
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    env = {"PYTHONPYCACHEPREFIX": prefix}
    r = pycache("compile", "--python", PY37.path, root, env=env)
    assert r.returncode == 0, r.stderr
    want = os.path.join(root, "pkg", "__pycache__", "m.%s.pyc" % PY37.tag)
    assert os.path.exists(want) and not os.path.exists(prefix)
    ino = os.stat(want).st_ino
    assert import_in(PY37, root, ["pkg.m"], prefix)["pkg.m"] == want
    assert os.stat(want).st_ino == ino
    assert pycache("check", "--expect", PY37.short, root, env=env).returncode == 0
    # An explicit --prefix for it is a mistake.
    r = pycache("compile", "--prefix", prefix, "--python", PY37.path, root)
    assert r.returncode == 2 and "has no pycache prefix" in r.stderr


@needs38
def test_prefix_inside_the_tree_is_not_judged_twice(pycache, tmp_path):
    """PYTHONPYCACHEPREFIX=./.pycache (a common setting): the tree walk
    skips the prefix directory, whose NAME.TAG.pyc files it would otherwise
    take for legacy pycs (shadowed: a dotted name)."""
    root = make_project(tmp_path)
    prefix = os.path.join(root, ".pycache")
    import_in(PY38, root, ["pkg.m"], prefix)
    r = pycache("check", "--json", "-v", root, env={"PYTHONPYCACHEPREFIX": prefix})
    assert r.returncode == 0, r.stdout
    rows = r.json()
    assert {(o["status"], o["kind"]) for o in rows} == {("fresh", "prefix")}
    assert len(rows) == len(set(o["path"] for o in rows)) == 2  # __init__, m
    # --no-prefix: the prefix is then an ordinary directory of the tree.
    r = pycache("check", "--json", "--no-prefix", "--fail-on", "none", root,
                env={"PYTHONPYCACHEPREFIX": prefix})
    assert {(o["status"], o["kind"]) for o in r.json()} == {("shadowed", "legacy")}


@needs38
def test_pycache_caches_of_38_under_a_prefix(pycache, tmp_path):
    """The documented decision: a 3.8+ cache in __pycache__ while a prefix
    is in force is never read in that shell, but is read by one without the
    variable; it is judged as that interpreter would judge it, so check
    lists it fresh, prune keeps it, clean removes it as any bytecode."""
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    env = {"PYTHONPYCACHEPREFIX": prefix}
    cached = import_in(PY38, root, ["pkg.m"], None)["pkg.m"]  # no prefix: __pycache__
    assert "/__pycache__/" in cached
    r = pycache("check", "--json", "-v", root, env=env)
    assert r.returncode == 0
    assert {(o["path"], o["status"], o["kind"]) for o in r.json()
            if o["path"] == cached} == {(cached, "fresh", "pycache")}
    assert pycache("prune", root, env=env).returncode == 0 and os.path.exists(cached)
    import_in(PY38, root, ["pkg.m"], prefix)
    r = pycache("clean", "-n", "-0", root, env=env)
    assert r.returncode == 1
    listed = set(r.stdout_bytes.split(b"\0")[:-1])
    assert os.fsencode(cached) in listed
    assert os.fsencode(os.path.join(mirror(prefix, root), "pkg", "m.%s.pyc" % PY38.tag)) in listed


@needs38
def test_stats_convert_where_follow_the_prefix(pycache, tmp_path):
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    env = {"PYTHONPYCACHEPREFIX": prefix}
    import_in(PY38, root, ["pkg.m"], prefix)
    r = pycache("stats", "--json", root, env=env)
    total = [o for o in r.json() if o.get("group") == "total"]
    assert total and total[0]["files"] == 2, r.stdout
    r = pycache("convert", "-n", "--to", "checked-hash", "--json", root, env=env)
    assert r.returncode == 1
    assert all(o["path"].startswith(prefix) for o in r.json())
    r = pycache("convert", "--to", "checked-hash", root, env=env)
    assert r.returncode == 0, r.stderr
    r = pycache("convert", "-n", "--to", "checked-hash", root, env=env)
    assert r.returncode == 0  # nothing left to do
    src = os.path.join(root, "pkg", "m.py")
    r = pycache("where", "--python", PY38.short, src, env=env)
    assert r.stdout.strip() == os.path.join(mirror(prefix, root), "pkg", "m.%s.pyc" % PY38.tag)
    r = pycache("where", "--python", PY38.short, "--no-prefix", src, env=env)
    assert "/__pycache__/" in r.stdout


@needs38
def test_doctor_prefix_options(pycache, tmp_path):
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    env = {"PYTHONPYCACHEPREFIX": prefix, "PYTHONDONTWRITEBYTECODE": "1"}
    r = pycache("doctor", "--json", root, env=env)
    c = {o["check"]: o for o in r.json()}
    assert c["pycacheprefix"]["detail"].startswith("PYTHONPYCACHEPREFIX=%s:" % prefix)
    assert "writes no bytecode" in c["dontwritebytecode"]["detail"]
    r = pycache("doctor", "--json", "--no-prefix", root, env=env)
    c = {o["check"]: o for o in r.json()}
    assert "ignored (--no-prefix)" in c["pycacheprefix"]["detail"]
    other = str(tmp_path / "other")
    r = pycache("doctor", "--json", "--prefix", other, root, env=env)
    c = {o["check"]: o for o in r.json()}
    assert c["pycacheprefix"]["detail"].startswith("--prefix %s:" % other)


# ---- installed interpreters ----------------------------------------------------------

def bare_env(**extra):
    """An environment as env -i gives (no PATH, no HOME), plus EXTRA."""
    return {k: v for k, v in extra.items()}


def run_bare(pycache_bin, args, **extra):
    proc = subprocess.run([pycache_bin] + args, env=bare_env(NO_COLOR="1", **extra),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    return proc


@needs38
def test_uninstalled_says_which_interpreters_count(pycache_bin, tmp_path):
    """Under env -i (no PATH, no HOME: cron, sudo) clean --uninstalled
    prints which interpreters count as installed, and where each was found,
    before removing anything; PYCACHE_PYTHONS makes the answer stable."""
    root = tmp_path / "t"
    (root / "__pycache__").mkdir(parents=True)
    (root / "m.py").write_text("")
    kept = root / "__pycache__" / ("m.%s.pyc" % PY38.tag)
    kept.write_bytes(b"")
    (root / "__pycache__" / "m.cpython-34.pyc").write_bytes(b"")  # no 3.4 anywhere
    empty = tmp_path / "nothing"
    empty.mkdir()
    r = run_bare(pycache_bin, ["clean", "-n", "--uninstalled", str(root)],
                 PYCACHE_PYTHONS=PY38.path, HOME=str(empty), PYENV_ROOT=str(empty))
    assert r.returncode == 1, r.stderr
    assert "installed here, their caches kept" in r.stderr
    line = [ln for ln in r.stderr.splitlines() if ln.split()[:1] == [PY38.short]]
    assert line and line[0].endswith("%s (PYCACHE_PYTHONS)" % PY38.path), r.stderr
    assert "m.cpython-34.pyc" in r.stdout and str(kept) not in r.stdout
    # Not in the data of --json.
    r = run_bare(pycache_bin, ["clean", "-n", "--json", "--uninstalled", str(root)],
                 PYCACHE_PYTHONS=PY38.path, HOME=str(empty), PYENV_ROOT=str(empty))
    assert r.stderr == ""
    assert [json.loads(ln)["path"] for ln in r.stdout.splitlines()] == [
        str(root / "__pycache__" / "m.cpython-34.pyc")]
    # versions --installed: the same list, each with where it was found.
    r = run_bare(pycache_bin, ["versions", "--installed", "--json"],
                 PYCACHE_PYTHONS=PY38.path, HOME=str(empty), PYENV_ROOT=str(empty))
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert rows[0] == {"python": PY38.short, "implementation": "cpython", "tag": PY38.tag,
                       "magic": PY38.magic, "path": PY38.path, "found_in": "PYCACHE_PYTHONS"}
    assert {o["found_in"] for o in rows} <= {"PYCACHE_PYTHONS", "PATH"}
    r = run_bare(pycache_bin, ["versions", "--installed"],
                 PYCACHE_PYTHONS=PY38.path, HOME=str(empty), PYENV_ROOT=str(empty))
    assert "(default: $PATH unset)" in r.stdout.splitlines()[-1]
    # Nothing found at all (an empty PATH, no pyenv): refused, nothing removed.
    r = run_bare(pycache_bin, ["clean", "--uninstalled", str(root)],
                 PATH=str(empty), HOME=str(empty), PYENV_ROOT=str(empty))
    assert r.returncode == 2 and "no Python interpreter found" in r.stderr
    assert kept.exists()


def test_help_documents_the_discovery_rule(pycache):
    for cmd in ("clean", "stats", "versions", "compile"):
        out = pycache(cmd, "--help").stdout
        assert "PYCACHE_PYTHONS" in out and "versions --installed" in out, cmd
    assert "PYTHONDONTWRITEBYTECODE does not stop compile" in pycache("compile", "--help").stdout


# ---- compile: invalidation modes and damaged bodies ---------------------------------------

@needs38
def test_compile_warns_when_it_changes_the_mode(pycache, tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    for name in ("a", "b"):
        (root / (name + ".py")).write_text("V = %r\n" % name)
    PY38.run("import py_compile, sys\n"
             "for f in sys.argv[1:]: py_compile.compile(f, invalidation_mode="
             "py_compile.PycInvalidationMode.UNCHECKED_HASH)",
             str(root / "a.py"), str(root / "b.py"))
    r = pycache("compile", "-n", "--python", PY38.path, str(root))
    assert r.returncode == 1
    assert ("warning: 2 caches would change from unchecked-hash to timestamp"
            in r.stderr), r.stderr
    r = pycache("compile", "-v", "--python", PY38.path, str(root))
    assert r.returncode == 0
    assert r.stderr.count("was unchecked-hash, written as timestamp") == 2, r.stderr
    assert "warning: 2 caches changed from unchecked-hash to timestamp" in r.stderr
    # Same mode: no warning.
    r = pycache("compile", "--python", PY38.path, "--invalidation-mode", "timestamp",
                str(root))
    assert r.returncode == 0 and "warning" not in r.stderr


@needs38
def test_compile_deep_recompiles_a_damaged_body(pycache, tmp_path):
    """A cache whose header matches its source but whose body is damaged:
    the import fails (no fallback to the source). compile says it is fresh;
    compile --deep compiles it again, and the import then works."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "m.py").write_text("VALUE = [1, 2, 3]\ndef f():\n    return VALUE\n")
    assert pycache("compile", "--python", PY38.path, str(root)).returncode == 0
    pyc = root / "__pycache__" / ("m.%s.pyc" % PY38.tag)
    data = bytearray(pyc.read_bytes())
    data[16] = 0x00  # the code object's type byte: marshal.loads refuses it
    pyc.write_bytes(bytes(data))
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import m; print(m.f())"
    r = PY38.run(probe, str(root), check=False)
    assert r.returncode != 0  # the oracle: the import fails
    r = pycache("compile", "-n", "--python", PY38.path, str(root))
    assert r.returncode == 0  # by the header, fresh
    r = pycache("compile", "-n", "--deep", "--python", PY38.path, str(root))
    assert r.returncode == 1 and "would-compile" in r.stdout
    r = pycache("compile", "--deep", "--python", PY38.path, str(root))
    assert r.returncode == 0, r.stderr
    r = PY38.run(probe, str(root))
    assert r.stdout.decode().strip() == "[1, 2, 3]"


@needs38
def test_prune_without_path_stays_in_the_prefix_subtree_of_dot(pycache, tmp_path):
    """No PATH means "." in the prefix too: prune removes the orphan of the
    current directory's sources and the prefix directories it leaves empty,
    and nothing elsewhere in the prefix (an empty directory there stays)."""
    root = make_project(tmp_path)
    prefix = str(tmp_path / "pfx")
    import_in(PY38, root, ["pkg.gone"], prefix)
    os.unlink(os.path.join(root, "pkg", "gone.py"))
    elsewhere = os.path.join(prefix, "elsewhere", "empty")
    os.makedirs(elsewhere)
    r = pycache("prune", cwd=root, env={"PYTHONPYCACHEPREFIX": prefix})
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(mirror(prefix, root), "pkg", "gone.%s.pyc" % PY38.tag))
    assert os.path.isdir(elsewhere)
