"""`pycache verify`: each cache's source recompiled by the cache's own
interpreter (a real one: 2.7, 3.6-3.13) and the code objects compared.

The trees are compiled by the interpreters' own compileall / py_compile; the
expected first-difference paths are computed by the interpreter itself from
the code objects marshal.loads gives (never written by hand), so the tests
say what CPython says."""

import json
import os
import shutil
import struct

import pytest

S = 1700000000

MODULE = '''"""A module with something of every kind the compiler folds or drops."""
import sys

VALUE = %r
NAMES = {"alpha", "bravo", "charlie", "delta"}


def f(x, *args, **kw):
    """docstring, dropped by -OO"""
    assert x, "dropped by -O"
    if x in ("a", "b", "c") or x in NAMES:
        return [y * 2 for y in args if y not in {1, 2, 3}]
    return lambda z: (z, x, kw, 1.5, 2j, -7, 2 ** 70, b"bytes", None, ...)


class C(object):
    """class docstring"""
    def m(self, a=1, b=(1, 2)):
        try:
            return a / 0
        except ZeroDivisionError as e:
            return sys.exc_info(), e
'''

MODULE27 = MODULE.replace("...)", "Ellipsis)").replace("b\"bytes\"", "'bytes'")


def write_tree(interp, root, names=("a", "b", "c")):
    pkg = os.path.join(str(root), "pkg")
    os.makedirs(pkg)
    text = MODULE27 if interp.major == 2 else MODULE
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for n in names:
        with open(os.path.join(pkg, n + ".py"), "w") as f:
            f.write(text % ("value of " + n))
    return pkg


def compileall(interp, path, flags=(), args=(), cwd=None):
    """INTERP's own `python -m compileall -q [ARGS] PATH`."""
    interp.run("import compileall, sys; sys.exit(int(not compileall.main()))",
               "-q", *(list(args) + [path]), flags=list(flags), cwd=cwd)


def verify(pycache, interp, *args, **kw):
    """pycache verify with only INTERP installed (its version's caches)."""
    env = {"PYCACHE_PYTHONS": interp.path}
    env.update(kw.pop("env", {}))
    return pycache("verify", *args, env=env, **kw)


def results(r):
    return {o["path"]: o for o in r.json()}


def code_path_of_constant(interp, pyc, header, text):
    """Where TEXT sits among the constants of PYC's code objects, as
    pyc_marshal_compare names it ("co_consts[2].co_consts[1]"), asked of
    the interpreter itself."""
    code = (
        "import marshal, sys, json\n"
        "data = open(sys.argv[1], 'rb').read()[int(sys.argv[2]):]\n"
        "want = sys.argv[3]\n"
        "def find(co, path):\n"
        "    for i, c in enumerate(co.co_consts):\n"
        "        if c == want or (not isinstance(c, str) and getattr(c, 'decode', None) and c == want.encode()):\n"
        "            return path + ['co_consts[%d]' % i]\n"
        "        if hasattr(c, 'co_consts'):\n"
        "            p = find(c, path + ['co_consts[%d]' % i])\n"
        "            if p:\n"
        "                return p\n"
        "sys.stdout.write(json.dumps('.'.join(find(marshal.loads(data), []))))\n")
    return interp.eval_json(code, pyc, str(header), text)


def header_size(interp):
    if interp.major == 2:
        return 8
    return 16 if (interp.major, interp.minor) >= (3, 7) else 12


def caches_of(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith((".pyc", ".pyo"))]
    return sorted(out)


def test_compileall_tree_is_verified_at_every_level(interp, pycache, tmp_path):
    """compileall at -O0, -O and -OO (2.7: the last .pyo is -OO's; verify
    tries -O then -OO), hash-based caches too on 3.7+: all verified."""
    pkg = write_tree(interp, tmp_path)
    for flags in ([], ["-O"], ["-OO"]):
        # -f: 2.7's -OO writes the same NAME.pyo as -O, fresh already
        compileall(interp, pkg, flags, args=["-f"])
        if interp.major == 2 and flags == ["-O"]:
            # NAME.pyo of -O, before -OO replaces it
            r = verify(pycache, interp, "-v", "--json", pkg)
            pyo = [o for o in r.json() if o["path"].endswith(".pyo")]
            assert r.returncode == 0 and len(pyo) == 4
            assert {(o["verify"], o["detail"]) for o in pyo} == {("verified", "compiled with -O")}
    if (interp.major, interp.minor) >= (3, 7):
        hashed = os.path.join(str(tmp_path), "hashed")
        shutil.copytree(pkg, hashed, ignore=shutil.ignore_patterns("__pycache__"))
        compileall(interp, hashed, args=["--invalidation-mode", "checked-hash"])
    expected = caches_of(str(tmp_path))
    assert len(expected) >= 8
    r = verify(pycache, interp, "-v", "--json", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    got = results(r)
    assert sorted(got) == expected
    assert {o["verify"] for o in got.values()} == {"verified"}, r.stdout
    assert all(o["status"] == "fresh" for o in got.values())
    # Human output lists nothing but the summary without -v.
    r = verify(pycache, interp, str(tmp_path))
    assert r.returncode == 0
    assert r.stdout == "%d verified, 0 mismatch, 0 corrupt, 0 unverifiable\n" % len(expected)
    if interp.major == 2:
        # (__init__.pyo, empty, is the same at -O and -OO: "-O")
        pyo = [o for p, o in got.items() if p.endswith((".pyo")) and "__init__" not in p]
        assert pyo and all(o["detail"] == "compiled with -OO" for o in pyo)


def test_swapped_body_is_a_mismatch_on_that_file_only(interp, pycache, tmp_path):
    """A poisoned cache: a.py's pyc keeps its header (fresh) but carries
    b.py's body. Only it is a mismatch, at the constant that differs."""
    pkg = write_tree(interp, tmp_path)
    compileall(interp, pkg)
    a, b = [c for c in caches_of(pkg) if os.path.basename(c).startswith(("a.", "b."))]
    h = header_size(interp)
    with open(a, "rb") as f:
        head = f.read()[:h]
    with open(b, "rb") as f:
        body = f.read()[h:]
    with open(a, "wb") as f:
        f.write(head + body)
    want = code_path_of_constant(interp, b, h, "value of b")
    assert want.startswith("co_consts[")
    r = verify(pycache, interp, "--json", pkg)
    assert r.returncode == 1, r.stderr
    [o] = r.json()
    assert (o["path"], o["status"], o["verify"], o["code_path"]) == (a, "fresh", "mismatch", want)
    r = verify(pycache, interp, "-v", "--json", pkg)
    assert sorted(p for p, o in results(r).items() if o["verify"] == "verified") == \
        sorted(c for c in caches_of(pkg) if c != a)
    r = verify(pycache, interp, pkg)
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    # (then, where two interpreters of that magic are installed, that the
    # other one differs too)
    assert lines[0] == "mismatch     %s  at %s" % (a, want) or \
        lines[0].startswith("mismatch     %s  at %s; as " % (a, want))
    assert lines[1] == "3 verified, 1 mismatch, 0 corrupt, 0 unverifiable"
    # check sees nothing wrong: the header is all it reads.
    assert pycache("check", pkg).returncode == 0


def test_racy_edit_is_flagged_by_check_and_found_by_verify(interp, pycache, tmp_path):
    """A same-second, same-size edit after the cache was written: check
    calls the cache racy, the interpreter would load the old code, and
    verify says the cache no longer matches its source."""
    root = tmp_path / "racy"
    root.mkdir()
    src = root / "m.py"
    src.write_text("VALUE = 'old'\n")
    os.utime(str(src), ns=(S * 10**9, S * 10**9 + 10**8))
    compileall(interp, str(root))
    [cache] = caches_of(str(root))
    os.utime(cache, ns=(S * 10**9 + 5 * 10**8,) * 2)
    assert verify(pycache, interp, str(root)).returncode == 0
    src.write_text("VALUE = 'new'\n")
    os.utime(str(src), ns=(S * 10**9, S * 10**9 + 9 * 10**8))
    [o] = pycache("check", "-v", "--json", str(root)).json()
    assert o["status"] == "fresh" and o["racy"] is True
    r = verify(pycache, interp, "--json", str(root))
    assert r.returncode == 1
    [o] = r.json()
    assert o["status"] == "fresh" and o["verify"] == "mismatch"
    assert o["code_path"] == code_path_of_constant(interp, cache, header_size(interp), "old")


def test_filename_ignored_unless_asked(interp, pycache, tmp_path):
    """compileall -d records another path in co_filename; import replaces
    it (_fix_co_filename), so verify ignores it unless --check-filename,
    which compares it with the source's path as given."""
    pkg = write_tree(interp, tmp_path, names=("a",))
    compileall(interp, "pkg", cwd=str(tmp_path))
    r = verify(pycache, interp, "--check-filename", "pkg", cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout
    compileall(interp, "pkg", args=["-f", "-d", "/elsewhere"], cwd=str(tmp_path))
    r = verify(pycache, interp, "-v", "--json", "pkg", cwd=str(tmp_path))
    assert r.returncode == 0
    assert {o["verify"] for o in r.json()} == {"verified"}
    r = verify(pycache, interp, "--check-filename", "--json", "pkg", cwd=str(tmp_path))
    assert r.returncode == 1
    found = r.json()
    assert len(found) == 2 and all(o["verify"] == "mismatch" for o in found)
    assert all(o["code_path"].endswith("co_filename") for o in found), found
    # The same tree from another directory: the path differs, the code not.
    r = verify(pycache, interp, str(pkg))
    assert r.returncode == 0


def test_unverifiable_cases(interp, pycache, pycache_bin, tmp_path):
    pkg = write_tree(interp, tmp_path, names=("gone", "broken", "ok", "early"))
    compileall(interp, pkg)
    os.unlink(os.path.join(pkg, "gone.py"))
    with open(os.path.join(pkg, "broken.py"), "w") as f:
        f.write("def (:\n")
    # A cache written by a pre-release of the same version (another magic).
    versions = [json.loads(l) for l in pycache("versions", "--json").stdout.splitlines()]
    prerelease = [v for v in versions if v["python"] == interp.short and not v["final"]
                  and v["implementation"] == "cpython"]
    [early] = [c for c in caches_of(pkg) if os.path.basename(c).startswith("early.")]
    if prerelease:
        with open(early, "r+b") as f:
            f.write(bytes.fromhex(prerelease[-1]["magic_hex"]))
    r = verify(pycache, interp, "--json", pkg)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {os.path.basename(p).split(".")[0]: o for p, o in results(r).items()}
    assert got["gone"]["verify"] == "unverifiable" and got["gone"]["detail"] == "no source"
    assert got["broken"]["verify"] == "unverifiable"
    assert got["broken"]["detail"].startswith("the source does not compile now: SyntaxError")
    assert "ok" not in got
    if prerelease:
        assert got["early"]["verify"] == "unverifiable"
        assert "is not what the Python %s here writes" % interp.short in got["early"]["detail"]
    # No interpreter of that version at all.
    empty = tmp_path / "nopython"
    empty.mkdir()
    env = {"PYCACHE_PYTHONS": "", "PATH": str(empty), "PYENV_ROOT": str(empty),
           "HOME": str(empty)}
    r = pycache("verify", "--json", pkg, env=env)
    assert r.returncode == 0
    ok = [o for p, o in results(r).items() if os.path.basename(p).startswith("ok.")]
    assert ok[0]["verify"] == "unverifiable"
    assert ok[0]["detail"] == "no Python %s here (pycache versions --installed)" % interp.short


def test_undecodable_and_sourceless(interp3, pycache, tmp_path):
    interp = interp3
    root = tmp_path / "t"
    root.mkdir()
    (root / "latin.py").write_bytes(b"X = '\xe9'\n")
    (root / "kept.py").write_text("X = 1\n")
    compileall(interp, str(root / "kept.py"), args=["-b"])
    os.unlink(str(root / "kept.py"))
    (root / "latin.pyc").write_bytes(open(str(root / "kept.pyc"), "rb").read())
    r = verify(pycache, interp, "--json", str(root))
    got = {os.path.basename(o["path"]): o for o in r.json()}
    assert got["kept.pyc"]["verify"] == "unverifiable"
    assert got["kept.pyc"]["status"] == "sourceless"
    # latin.pyc is a legacy file beside its source: 3.x ignores it, but
    # verify still compares it with what the source compiles to (nothing:
    # the source is not UTF-8).
    assert got["latin.pyc"]["verify"] == "unverifiable"
    assert "SyntaxError" in got["latin.pyc"]["detail"]


def test_hostile_caches_are_corrupt_not_a_crash(interp, pycache, tmp_path):
    pkg = write_tree(interp, tmp_path, names=("trunc", "short", "badtype", "notcode", "ok"))
    compileall(interp, pkg)
    h = header_size(interp)
    files = {os.path.basename(c).split(".")[0]: c for c in caches_of(pkg)}
    data = open(files["ok"], "rb").read()
    with open(files["trunc"], "wb") as f:
        f.write(data[:h - 2])
    with open(files["short"], "wb") as f:
        f.write(data[:h + (len(data) - h) // 2])
    with open(files["badtype"], "wb") as f:
        f.write(data[:h] + b"\x01" + data[h + 1:])
    with open(files["notcode"], "wb") as f:
        f.write(data[:h] + b"N")
    r = verify(pycache, interp, "--json", pkg)
    assert r.returncode == 1, r.stderr
    assert r.stderr == ""
    got = {os.path.basename(p).split(".")[0]: o for p, o in results(r).items()}
    assert sorted(got) == ["badtype", "notcode", "short", "trunc"]
    assert {o["verify"] for o in got.values()} == {"corrupt"}
    assert got["trunc"]["detail"] == "header too short"
    assert "body offset" in got["short"]["detail"]
    assert "body offset 0" in got["badtype"]["detail"]
    r = verify(pycache, interp, pkg)
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "2 verified, 0 mismatch, 4 corrupt, 0 unverifiable"


def test_output_formats_and_errors(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    pkg = write_tree(interp, tmp_path)
    compileall(interp, pkg)
    a, b = [c for c in caches_of(pkg) if os.path.basename(c).startswith(("a.", "b."))]
    shutil.copyfile(b, a)  # a's cache now holds b's header and body
    assert verify(pycache, interp, "-q", pkg).stdout == ""
    assert verify(pycache, interp, "-q", pkg).returncode == 1
    r = verify(pycache, interp, "-0", pkg)
    assert r.stdout_bytes == a.encode() + b"\0"
    r = verify(pycache, interp, "--format=github", pkg)
    assert r.stdout.startswith("::error file=%s,title=pycache%%3A bytecode does not match its source::first difference at co_" % a)
    # The same bytes every run, whatever the number of walks and workers.
    runs = [verify(pycache, interp, "-v", "--json", "-j2", str(tmp_path),
                   env={"PYCACHE_THREADS": "4"}).stdout_bytes for _ in range(2)]
    assert runs[0] == runs[1]
    # A missing path: an error record, exit 3.
    r = verify(pycache, interp, "--json", str(tmp_path / "nope"))
    assert r.returncode == 3
    [o] = r.json()
    assert o["status"] == "error"
    assert "pycache verify: " in r.stderr
    # --python names the interpreter; a bad one is a usage error.
    r = pycache("verify", "--python", interp.path, pkg, env={"PYCACHE_PYTHONS": ""})
    assert r.returncode == 1 and "mismatch" in r.stdout
    r = pycache("verify", "--python", interp.short, pkg)
    assert r.returncode == 1 and "mismatch" in r.stdout
    r = pycache("verify", "--python", str(tmp_path / "nope"), pkg)
    assert r.returncode == 2
    r = pycache("verify", "--python", "3.99", pkg)
    assert r.returncode == 2 and "no Python 3.99 installed here" in r.stderr


WRAPPER = '''#!%s
# A "patch release" of the same version that compiles differently: every
# source gets one more statement. Runs the worker program it is given.
import builtins, sys
real_compile = builtins.compile
def compile(source, filename, mode, *args, **kw):
    if isinstance(source, bytes):
        source += b"\\nPATCH_RELEASE = 1\\n"
    return real_compile(source, filename, mode, *args, **kw)
builtins.compile = compile
program = sys.argv[sys.argv.index("-c") + 1]
sys.argv = ["-c"]
exec(real_compile(program, "<worker>", "exec"), {"__name__": "__main__"})
'''


def test_mismatch_tried_with_the_other_interpreters_of_its_magic(pycache, interpreters,
                                                                 tmp_path):
    """Two installed interpreters write one magic (two patch releases, which
    can compile differently): a mismatch with the first is tried with the
    next, and verified when it reproduces the cache."""
    interp = [i for i in interpreters if i.major == 3][-1]
    pkg = write_tree(interp, tmp_path, names=("a",))
    compileall(interp, pkg)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / ("python" + interp.short)
    wrapper.write_text(WRAPPER % interp.path)
    wrapper.chmod(0o755)
    both = "%s:%s" % (wrapper, interp.path)
    r = pycache("verify", "-v", "--json", pkg, env={"PYCACHE_PYTHONS": both})
    assert r.returncode == 0, r.stdout + r.stderr
    for o in r.json():
        assert o["verify"] == "verified"
        assert o["detail"].startswith("as %s compiles it (%s differs at co_" % (interp.path, wrapper))
    r = pycache("verify", "--json", pkg, env={"PYCACHE_PYTHONS": str(wrapper), "PATH": str(bindir),
                                             "PYENV_ROOT": str(bindir), "HOME": str(bindir)})
    assert r.returncode == 1
    assert {o["verify"] for o in r.json()} == {"mismatch"}
    # --python names the one to use: no other is tried.
    r = pycache("verify", "--json", "--python", str(wrapper), pkg,
                env={"PYCACHE_PYTHONS": both})
    assert r.returncode == 1 and {o["verify"] for o in r.json()} == {"mismatch"}


def test_source_that_is_a_fifo_does_not_hang(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    root = tmp_path / "t"
    root.mkdir()
    (root / "m.py").write_text("X = 1\n")
    compileall(interp, str(root))
    os.unlink(str(root / "m.py"))
    os.mkfifo(str(root / "m.py"))
    r = verify(pycache, interp, "--json", str(root), timeout=60)
    [o] = r.json()
    # (the verdict already counts a FIFO as no source; verify checks again
    # right before the interpreter would open it)
    assert o["verify"] == "unverifiable"
    assert o["detail"] in ("no source", "the source is not a regular file")
    assert r.returncode == 0
