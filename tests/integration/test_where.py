"""`pycache where` against each interpreter's own answers.

For every interpreter on this machine, `pycache where --python X.Y` must print
exactly what that interpreter's importlib.util.cache_from_source (at
optimization '' / 1 / 2) and source_from_cache return, run from the same
working directory and, for 3.8+, with the same sys.pycache_prefix (set with
-X pycache_prefix=DIR, as a user would), and must fail exactly where CPython
raises. For 2.7, which has neither function, the oracle is py_compile itself:
the file it writes for a source, under -O and -OO too. Finally the cache file
the import system really writes for a module is compared with `where`.
"""

import json
import os
import subprocess

import pytest

SOURCES = [
    b"m.py", b"pkg/sub/m.py", b"/abs/dir/m.py", b"a.b.py", b"x.tar.gz", b"noext",
    b".py", b"..py", b".hidden.py", b"trailing.", b"a/", b"a//", b"/", b"//m.py",
    b"./m.py", b"./pkg/m.py", b"../m.py", b"../../up/m.py", b"a/./b/../c.py",
    b"a///b.py", b"sp ace/m\tx.py", b"a:/b.py",
    "\u00e9t\u00e9/\u00fcber.py".encode("utf-8"), b"\xff\xfe/z\x80.py",
    b"__pycache__/m.py", b"m.PY",
]

CACHES = [
    b"__pycache__/m.cpython-311.pyc", b"a/__pycache__/m.cpython-39.opt-1.pyc",
    b"/abs/__pycache__/m.cpython-38.opt-2.pyc", b"m.pyc", b"a/m.pyo",
    b"__pycache__/m.pyc", b"__pycache__/a.b.c.d.pyc", b"__pycache__/a.b.c.pyc",
    b"__pycache__/m.c.opt-.pyc", b"__pycache__/m.c.opt-x_y.pyc",
    b"__pycache__/m.c.opt-abc.pyc", b"__pycache__/m.c.op-1.pyc",
    "__pycache__/m.c.opt-\u00e9.pyc".encode("utf-8"),
    "__pycache__/m.c.opt-\u00b2.pyc".encode("utf-8"),
    "__pycache__/m.c.opt-\u0560.pyc".encode("utf-8"),        # alnum from 3.7
    "__pycache__/m.c.opt-\U0001123f.pyc".encode("utf-8"),    # alnum from 3.12
    b"__pycache__/m.c.opt-\xff.pyc", b"__pycache__/m.cpython-34.pyo",
    b"/__pycache__/m.c.pyc", b"a//__pycache__/m.c.pyc", b"a/__pycache__//m.c.pyc",
    b"a/__pycache__/.c.pyc", b"a/__pycache__/m..pyc",
    b"\xff/__pycache__/\xfe.cpython-311.pyc",
]


def prefixes_for(interp, tmp):
    """None, then (3.8+) absolute, trailing-slash, doubled-slash, relative and
    root prefixes."""
    if (interp.major, interp.minor) < (3, 8):
        return [None]
    return [None, os.fsencode(tmp) + b"/prefix", os.fsencode(tmp) + b"/prefix//",
            b"rel/prefix", b"/"]


def caches_for(prefix):
    out = list(CACHES)
    if prefix:
        p = prefix.rstrip(b"/")
        out += [p + b"/abs/m.cpython-311.pyc", p + b"/m.c.pyc", p + b"//x/m.c.pyc",
                p + b"/x/m.c.opt-2.pyc", p + b"/x/m.a.b.pyc", p + b"x/m.c.pyc",
                p + b"/__pycache__/m.c.pyc"]
    return out


ORACLE3 = r"""
import sys, os, json, importlib.util as u
args = json.load(open(sys.argv[1]))
out = {"cfs": [], "sfc": []}
for h in args["sources"]:
    s = os.fsdecode(bytes.fromhex(h))
    row = []
    for opt in (0, 1, 2):
        try:
            r = os.fsencode(u.cache_from_source(s, optimization='' if opt == 0 else opt)).hex()
        except Exception as e:
            r = None
        row.append(r)
    out["cfs"].append(row)
for h in args["caches"]:
    s = os.fsdecode(bytes.fromhex(h))
    try:
        r = os.fsencode(u.source_from_cache(s)).hex()
    except Exception as e:
        r = None
    out["sfc"].append(r)
prefix = getattr(sys, "pycache_prefix", None)
out["prefix"] = None if prefix is None else os.fsencode(prefix).hex()
sys.stdout.write(json.dumps(out))
"""

# 3.2-3.4 (not installed here): debug_override instead of optimization
ORACLE_PRE35 = ORACLE3.replace(
    "optimization='' if opt == 0 else opt", "debug_override=(opt == 0)")

UTF8_ENV = {"LC_ALL": "C.UTF-8"}  # the library judges names as UTF-8


def ask(interp, tmp_path, cwd, prefix, sources, caches):
    argfile = tmp_path / "oracle-args.json"
    argfile.write_text(json.dumps({"sources": [s.hex() for s in sources],
                                   "caches": [c.hex() for c in caches]}))
    flags = ["-B"]  # never write bytecode: a "/" prefix would put it beside the stdlib
    if prefix is not None:
        flags += ["-X", "pycache_prefix=" + os.fsdecode(prefix)]
    code = ORACLE3 if (interp.major, interp.minor) >= (3, 5) else ORACLE_PRE35
    out = interp.eval_json(code, str(argfile), cwd=cwd, flags=flags, env=UTF8_ENV)
    if prefix is not None:  # the oracle really ran with that prefix
        assert bytes.fromhex(out["prefix"]) == prefix
    unhex = lambda v: None if v is None else bytes.fromhex(v)
    return [[unhex(v) for v in row] for row in out["cfs"]], [unhex(v) for v in out["sfc"]]


def where(pycache, interp, paths, cwd, opt=0, prefix=None, env=None):
    """Runs `where --json` on PATHS; returns ({path: result}, Result)."""
    args = ["where", "--python", interp.short, "--opt", str(opt), "--json"]
    if prefix is not None:
        args += ["--prefix", prefix]
    r = pycache(*(args + ["--"] + list(paths)), cwd=cwd, env=env or {})
    got = {}
    for obj in r.json():
        assert obj["python"] == interp.short
        value = obj.get("cache", obj.get("source"))
        got[os.fsencode(obj["path"])] = os.fsencode(value)
    return got, r


def check(got, r, expected):
    """EXPECTED: {path: bytes or None (CPython raised)}."""
    failures = [p for p, v in expected.items() if v is None]
    for path, want in expected.items():
        if want is None:
            assert path not in got, "CPython raises for %r, pycache gave %r" % (path, got.get(path))
        else:
            assert got.get(path) == want, "for %r: CPython %r, pycache %r" % (path, want, got.get(path))
    error_lines = [l for l in r.stderr.splitlines() if l.startswith("pycache where: cannot map")]
    assert len(error_lines) == len(set(failures)), r.stderr
    assert r.returncode == (1 if failures else 0), r.stderr


@pytest.mark.parametrize("cwd_kind", ["tmp", "root"])
def test_where_matches_importlib(interp, pycache, tmp_path, cwd_kind):
    if interp.major < 3:
        pytest.skip("2.7 has no importlib.util: see test_where_matches_py_compile_27")
    cwd = str(tmp_path / "work dir") if cwd_kind == "tmp" else "/"
    os.makedirs(str(tmp_path / "work dir"), exist_ok=True)
    for prefix in prefixes_for(interp, str(tmp_path)):
        caches = caches_for(prefix)
        cfs, sfc = ask(interp, tmp_path, cwd, prefix, SOURCES, caches)
        for opt in (0, 1, 2):
            # sources only: a source path is never taken for a cache file
            # unless it is one by name, which none of SOURCES is... except
            # __pycache__/m.py, mapped as a cache file: leave it to sfc.
            srcs = [s for s in SOURCES if not s.startswith(b"__pycache__/")]
            if prefix:
                srcs = [s for s in srcs if not s.startswith(prefix.rstrip(b"/") + b"/")]
            got, r = where(pycache, interp, srcs, cwd, opt, prefix)
            check(got, r, {s: cfs[SOURCES.index(s)][opt] for s in srcs})
        got, r = where(pycache, interp, caches, cwd, 0, prefix)
        check(got, r, dict(zip(caches, sfc)))


def test_where_prefix_from_environment(interp38, pycache, tmp_path):
    """PYTHONPYCACHEPREFIX is the default prefix; an empty one is no prefix,
    as for CPython."""
    cwd = str(tmp_path)
    prefix = os.fsencode(str(tmp_path / "pp"))
    for env_value in [prefix, b""]:
        env = {"PYTHONPYCACHEPREFIX": os.fsdecode(env_value)}
        out = interp38.eval_json(
            "import sys, os, json, importlib.util as u\n"
            "print(json.dumps([os.fsencode(u.cache_from_source(p)).hex() for p in ('m.py', 'd/m.py')]\n"
            "                 + [sys.pycache_prefix]))",
            cwd=cwd, env=dict(UTF8_ENV, **env))
        want = {b"m.py": bytes.fromhex(out[0]), b"d/m.py": bytes.fromhex(out[1])}
        assert (out[2] is None) == (env_value == b"")
        got, r = where(pycache, interp38, [b"m.py", b"d/m.py"], cwd, env=env)
        check(got, r, want)


def test_where_matches_py_compile_27(interp2, pycache, tmp_path):
    """2.7: the file py_compile.compile writes, at -O levels 0, 1, 2."""
    names = [b"m.py", b"a.b.py", b"x.tar.gz", b"noext", "\u00e9.py".encode(), b"\xff\x80.py"]
    d = tmp_path / "src"
    d.mkdir()
    for n in names:
        with open(os.path.join(os.fsencode(str(d)), n), "wb") as f:
            f.write(b"x = 1\n")
    for opt in (0, 1, 2):
        for rel in (True, False):
            paths = names if rel else [os.path.join(os.fsencode(str(d)), n) for n in names]
            before = set(os.listdir(os.fsencode(str(d))))
            code = ("import py_compile, sys\n"
                    "for p in sys.argv[1:]: py_compile.compile(p, doraise=True)\n")
            subprocess.run([interp2.path] + ["-O"] * opt + ["-c", code] + list(paths),
                           cwd=str(d), check=True)
            written = set(os.listdir(os.fsencode(str(d)))) - before
            got, r = where(pycache, interp2, paths, str(d), opt)
            assert r.returncode == 0, r.stderr
            assert {os.path.basename(v) for v in got.values()} == written
            for p in paths:
                assert got[p] == p + (b"c" if opt == 0 else b"o")
                if p.endswith(b".py"):  # and back: NAME.pyc -> NAME.py
                    back, r2 = where(pycache, interp2, [got[p]], str(d))
                    assert back == {got[p]: p}
            for w in written:
                os.unlink(os.path.join(os.fsencode(str(d)), w))


def test_where_matches_import(interp, pycache, tmp_path):
    """The cache file the import system really writes for a module, at each
    -O level, in __pycache__ and (3.8+) under a prefix, is where `where`
    says."""
    d = tmp_path / "mods"
    d.mkdir()
    (d / "wmod.py").write_text("x = 1\n")
    src = os.path.join(str(d), "wmod.py")
    prefixes = [None]
    if (interp.major, interp.minor) >= (3, 8):
        prefixes.append(str(tmp_path / "pfx"))
    for prefix in prefixes:
        for opt in (0, 1, 2):
            flags = ["-O"] * opt
            if prefix:
                flags += ["-X", "pycache_prefix=" + prefix]
            before = set()
            for root, _, files in os.walk(str(tmp_path)):
                before |= {os.path.join(root, f) for f in files}
            interp.run("import sys; sys.path.insert(0, %r); import wmod" % str(d),
                       flags=flags, cwd=str(tmp_path))
            after = set()
            for root, _, files in os.walk(str(tmp_path)):
                after |= {os.path.join(root, f) for f in files}
            # with a prefix, the stdlib modules imported at startup are
            # cached there too: keep our module's file
            written = [w for w in after - before
                       if os.path.basename(w).startswith("wmod.")]
            assert len(written) == 1, written
            for w in written:  # -O and -OO share one .pyo in 2.7 and 3.2-3.4
                os.unlink(w)
            args = ["where", "--python", interp.short, "--opt", str(opt), "-0"]
            if prefix:
                args += ["--prefix", prefix]
            r = pycache(*(args + [src]))
            assert r.returncode == 0, r.stderr
            assert r.stdout_bytes == os.fsencode(written.pop()) + b"\0"


def test_where_reports_valueerror(interp3, pycache, tmp_path):
    """A path CPython refuses: one line on stderr, the others still mapped,
    exit status 1."""
    r = pycache("where", "--python", interp3.short, "m.py", "x.pyc", "n.py", cwd=str(tmp_path))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("m.%s.pyc" % interp3.tag)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "x.pyc" in err[0] and "__pycache__" in err[0]


def test_where_usage(pycache):
    assert pycache("where").returncode == 2
    assert pycache("where", "--opt", "3", "m.py").returncode == 2
    assert pycache("where", "--python", "3.7", "--prefix", "/p", "m.py").returncode == 2
    assert pycache("where", "--python", "9.99", "m.py").returncode == 2


def test_where_default_python(pycache, tmp_path):
    """Without --python: the python3 on PATH decides for a source (asked
    here for its own answer); a cache file's tag decides for it."""
    import shutil
    python3 = shutil.which("python3")
    if python3 is None:
        pytest.skip("no python3 on PATH")
    out = subprocess.run([python3, "-c", "import importlib.util as u; print(u.cache_from_source('m.py'))"],
                         stdout=subprocess.PIPE, check=True, cwd=str(tmp_path),
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"})
    r = pycache("where", "m.py", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == out.stdout.decode()
    # no interpreter needed for a tagged cache file: 3.4's .pyo maps back
    r = pycache("where", "--json", "a/__pycache__/m.cpython-34.pyo", env={"PATH": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert r.json() == [{"path": "a/__pycache__/m.cpython-34.pyo", "implementation": "cpython",
                         "python": "3.4", "opt": None, "source": "a/m.py"}]
    r = pycache("where", "m.py", env={"PATH": "/nonexistent"})
    assert r.returncode == 2 and "--python" in r.stderr
