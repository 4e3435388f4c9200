"""normalize, compile --deterministic, diff and inspect --code against the
real interpreters.

  - The same tree compiled four ways (`pycache compile -j1`, `compile -j2`,
    compileall, and py_compile in one long-lived process that compiled
    other code first) is byte-identical after `pycache normalize`;
    `compile --deterministic` gives those bytes directly; the normalized
    tree imports and runs.
  - `diff` of two compiles of one tree finds no code difference (exit 0);
    after an edit it names the changed function's constant (exit 1).
  - `inspect --code --json` shows what the interpreter's own marshal.loads
    sees: names, filename, first line, flags, counts, constants, bytecode;
    and no tree for a body marshal.loads refuses (invalid UTF-8 in a str
    constant: the model is the validator's walk).
"""

import json
import os
import shutil
import subprocess

import pytest


def tree_of(interp, tmp_path, name="src"):
    """A copy of the interpreter's own json package (its syntax is the
    interpreter's), without caches."""
    libdir = interp.run("import os, sys; sys.stdout.write(os.path.dirname(os.__file__))").stdout.decode()
    dest = tmp_path / name
    dest.mkdir()
    shutil.copytree(os.path.join(libdir, "json"), str(dest / "json"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    return dest


def files_of(root):
    out = {}
    for r, _, fs in os.walk(str(root)):
        for f in fs:
            if f.endswith((".pyc", ".pyo")):
                p = os.path.join(r, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, str(root))] = fh.read()
    return out


LONG_LIVED = r'''
import os, py_compile, sys, compileall
# A process that has compiled and imported other code first: other objects
# alive, other reference counts.
import email.parser, xml.dom.minidom
junk = [compile(open(m.__file__.replace('.pyc', '.py')).read(), m.__file__, 'exec')
        for m in (email.parser,)]
root = sys.argv[1]
for d, _, fs in sorted(os.walk(root)):
    for f in sorted(fs, reverse=True):
        if f.endswith('.py'):
            py_compile.compile(os.path.join(d, f), doraise=True)
'''


def test_four_compiles_normalize_to_the_same_bytes(interp, pycache, tmp_path):
    trees = {}
    for how in ("j1", "j2", "compileall", "py_compile", "deterministic"):
        trees[how] = tree_of(interp, tmp_path, how)
    r1 = pycache("compile", "-q", "--python", interp.path, "-j1", ".", cwd=str(trees["j1"]))
    r2 = pycache("compile", "-q", "--python", interp.path, "-j2", ".", cwd=str(trees["j2"]))
    rd = pycache("compile", "-q", "--python", interp.path, "-j2", "--deterministic", ".",
                 cwd=str(trees["deterministic"]))
    assert (r1.returncode, r2.returncode, rd.returncode) == (0, 0, 0), r1.stderr + r2.stderr + rd.stderr
    interp.run("import compileall, sys; sys.exit(not compileall.compile_dir(sys.argv[1], quiet=1))",
               ".", cwd=str(trees["compileall"]))
    interp.run(LONG_LIVED, ".", cwd=str(trees["py_compile"]))
    raw = {how: files_of(t) for how, t in trees.items()}
    assert len(raw["j1"]) >= 4
    assert all(set(v) == set(raw["j1"]) for v in raw.values())
    for how in ("j1", "j2", "compileall", "py_compile"):
        r = pycache("normalize", "-q", str(trees[how]))
        assert r.returncode == 0, r.stderr
    norm = {how: files_of(t) for how, t in trees.items()}
    # The headers record each tree's own source mtimes: compare bodies and
    # check the headers were left alone.
    for how in norm:
        for rel in norm[how]:
            assert norm[how][rel][:8] == raw[how][rel][:8]
    hl = 8 if interp.major == 2 else 16 if (interp.major, interp.minor) >= (3, 7) else 12
    bodies = {how: {rel: b[hl:] for rel, b in v.items()} for how, v in norm.items()}
    for how in ("j2", "compileall", "py_compile", "deterministic"):
        assert bodies[how] == bodies["j1"], how
    # compile --deterministic wrote the normal form already.
    assert norm["deterministic"] == raw["deterministic"]
    # A second normalize changes nothing.
    r = pycache("normalize", "--json", str(trees["j1"]))
    assert {o["action"] for o in r.json()} == {"canonical"}
    # The normalized tree imports and runs.
    out = interp.run("import json, sys; assert json.__file__.startswith(sys.argv[1]), json.__file__;"
                     "sys.stdout.write(json.dumps({'a': [1, 2.5, None]}, sort_keys=True))",
                     str(trees["j1"]), env={"PYTHONPATH": str(trees["j1"])}, flags=["-B"])
    assert out.stdout == b'{"a": [1, 2.5, null]}'


EDIT_SRC = '''
def alpha(x):
    return x + 1

def beta(y):
    return "beta says " + str(y)
'''


def test_diff_two_compiles_and_an_edit(interp, pycache, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "m.py").write_text(EDIT_SRC)
        (d / "n.py").write_text("X = 1\n")
    pycache("compile", "-q", "--python", interp.path, "-j1", ".", cwd=str(a))
    # compileall of the absolute path: the code objects record another
    # file name ("/tmp/.../b/m.py", not "./m.py").
    interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)", str(b))
    # --ignore-filename: no code difference.
    r = pycache("diff", "--ignore-filename", "--json", str(a), str(b))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {o["result"] for o in r.json()} <= {"same", "header", "ref-flags"}
    r = pycache("diff", str(a), str(b))
    assert r.returncode == 1 and "co_filename" in r.stdout
    # Edit beta only; same size of file is irrelevant here.
    (b / "m.py").write_text(EDIT_SRC.replace("beta says", "BETA SAYS"))
    interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1, force=1)", str(b))
    r = pycache("diff", "--ignore-filename", "--json", str(a), str(b))
    assert r.returncode == 1
    rows = {o["path"]: o for o in r.json()}
    m = [o for p, o in rows.items() if os.path.basename(p).startswith("m.")]
    n = [o for p, o in rows.items() if os.path.basename(p).startswith("n.")]
    assert len(m) == 1 and m[0]["result"] == "code"
    assert all(o["result"] in ("same", "header", "ref-flags") for o in n)
    where = interp.eval_json(
        "import json, marshal, sys, glob;"
        "p = [f for f in glob.glob('**/m*.py[co]', recursive=True) if 'm.' in f] if sys.version_info[0] > 2 else glob.glob('m.pyc');"
        "d = open(p[0], 'rb').read();"
        "h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8);"
        "co = marshal.loads(d[h:]);"
        "i = [j for j, k in enumerate(co.co_consts) if getattr(k, 'co_name', '') == 'beta'][0];"
        "f = co.co_consts[i];"
        "sys.stdout.write(json.dumps([i, [j for j, k in enumerate(f.co_consts) if k == 'BETA SAYS '][0]]))",
        cwd=str(b))
    assert m[0]["code_path"] == "co_consts[%d].co_consts[%d]" % tuple(where)
    # Human output names it too.
    r = pycache("diff", "--ignore-filename", str(a), str(b))
    assert "at co_consts[%d].co_consts[%d]" % tuple(where) in r.stdout


def test_diff_usage_and_files(pycache, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"x")
    r = pycache("diff", str(tmp_path / "d"))
    assert r.returncode == 2
    r = pycache("diff", str(tmp_path / "d"), str(tmp_path / "f"))
    assert r.returncode == 2
    r = pycache("diff", str(tmp_path / "nope"), str(tmp_path / "f"))
    assert r.returncode == 3 and "cannot stat" in r.stderr


ORACLE = r'''
import json, marshal, sys
d = open(sys.argv[1], 'rb').read()
h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8)
def enc(k):
    if hasattr(k, 'co_code'):
        return code(k)
    if k is None or isinstance(k, bool):
        return k
    if isinstance(k, int) and abs(k) < 2 ** 53:
        return k
    if sys.version_info[0] == 2 and isinstance(k, long):
        return {'type': 'int', 'value': str(k)} if abs(k) >= 2 ** 53 else int(k)
    if isinstance(k, int):
        return {'type': 'int', 'value': str(k)}
    if isinstance(k, float):
        return {'type': 'float', 'repr': repr(k)}
    if isinstance(k, tuple):
        return {'type': 'tuple', 'items': [enc(x) for x in k]}
    if isinstance(k, frozenset):
        return {'type': 'frozenset', 'items': sorted([json.dumps(enc(x), sort_keys=True) for x in k])}
    if isinstance(k, bytes) and sys.version_info[0] > 2:
        return {'type': 'bytes', 'hex': k.hex()}
    if sys.version_info[0] == 2 and isinstance(k, str):
        return k.decode('utf-8', 'replace')
    if k is Ellipsis:
        return {'type': 'ellipsis'}
    return k
def hx(b):
    return ''.join('%02x' % c for c in bytearray(b))
def code(co):
    out = {'name': co.co_name, 'filename': co.co_filename, 'firstlineno': co.co_firstlineno,
           'flags': co.co_flags, 'argcount': co.co_argcount,
           'kwonlyargcount': getattr(co, 'co_kwonlyargcount', 0),
           'stacksize': co.co_stacksize, 'names': list(co.co_names),
           'consts': [enc(k) for k in co.co_consts], 'code': hx(co.co_code)}
    if sys.version_info >= (3, 8):
        out['posonlyargcount'] = co.co_posonlyargcount
    if sys.version_info >= (3, 11):
        out['qualname'] = co.co_qualname
        out['exceptiontable'] = hx(co.co_exceptiontable)
    else:
        out['varnames'] = list(co.co_varnames)
        out['nlocals'] = co.co_nlocals
    return out
sys.stdout.write(json.dumps(code(marshal.loads(d[h:]))))
'''

INSPECT_SRC = '''
import os
A = (None, True, False, Ellipsis, 0, -1, 2**40, 2**70, -(10**30), 1.5, -0.0, 1e300, b"by\\x00tes", u"caf\\xe9", "x" * 300)
def f(a, b=2, *args, **kw):
    def g(y):
        return a + y
    return g(b) if a in {"p", "q", "r"} else None
class K(object):
    def m(self):
        return [i for i in range(3)]
'''


def test_inspect_code_matches_marshal_loads(interp, pycache, tmp_path):
    src = tmp_path / "m.py"
    src.write_text(INSPECT_SRC)
    pyc = tmp_path / "m.pyc"
    interp.run("import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
               str(src), str(pyc))
    r = pycache("inspect", "--code", "--json", str(pyc))
    assert r.returncode in (0, 1), r.stderr
    ours = r.json()[0]["code"]
    assert r.json()[0]["code_error"] is None
    theirs = json.loads(interp.run(ORACLE, str(pyc)).stdout.decode())
    # Compare field by field for a readable failure.
    assert ours["name"] == theirs["name"] == "<module>"
    def walk(a, b, path):
        for k, v in b.items():
            if k == "consts":
                assert len(a[k]) == len(v), path + k
                for i, (x, y) in enumerate(zip(a[k], v)):
                    if isinstance(y, dict) and "code" in y and "consts" in y:
                        walk(x, y, "%s%s[%d]." % (path, k, i))
                    elif isinstance(y, dict) and y.get("type") == "frozenset":
                        assert x["type"] == "frozenset"
                        assert sorted(json.dumps(i, sort_keys=True) for i in x["items"]) == y["items"], path + k
                    else:
                        assert x == y, "%s%s[%d]" % (path, k, i)
            else:
                assert a[k] == v, path + k
    walk(ours, theirs, "")
    # Human output: the tree, with the nested functions.
    r = pycache("inspect", "--code", str(pyc))
    assert "code <module>" in r.stdout and "  code f" in r.stdout and "    code g" in r.stdout
    assert "'caf\u00e9'" in r.stdout


def test_inspect_code_on_a_damaged_body(pycache, tmp_path, interpreters):
    interp = interpreters[-1]
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    pyc = tmp_path / "m.pyc"
    interp.run("import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
               str(src), str(pyc))
    data = pyc.read_bytes()
    pyc.write_bytes(data[:len(data) - 5])
    r = pycache("inspect", "--code", "--json", str(pyc))
    o = r.json()[0]
    assert o["code"] is None and o["code_error"] == "marshal data truncated"
    r = pycache("inspect", "--code", str(pyc))
    assert "not shown: marshal data truncated" in r.stdout


def test_inspect_code_refuses_what_marshal_loads_refuses(interp, pycache, tmp_path):
    """One reader: the model is built by the validator's own walk, so a body
    whose only damage is one the structure does not show (invalid UTF-8 in
    a str constant) gets no tree, as the interpreter's marshal.loads gets no
    object."""
    src = tmp_path / "m.py"
    src.write_text('x = u"caf\\xe9"\n')
    pyc = tmp_path / "m.pyc"
    interp.run("import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
               str(src), str(pyc))
    data = bytearray(pyc.read_bytes())
    at = data.find(b"caf\xc3\xa9")
    assert at > 0
    data[at + 3] = 0xFF                  # not UTF-8 any more, same length
    pyc.write_bytes(bytes(data))
    r = interp.run("import marshal, sys\n"
                   "d = open(sys.argv[1], 'rb').read()\n"
                   "h = 8 if sys.version_info < (3, 3) else 12 if sys.version_info < (3, 7) else 16\n"
                   "marshal.loads(d[h:])", str(pyc), check=False)
    assert r.returncode != 0             # the interpreter refuses it
    o = pycache("inspect", "--code", "--json", str(pyc)).json()[0]
    assert o["code"] is None and o["code_error"] == "bad marshal data"
