"""The marshal object model (pyc_marshal_parse / _write / _normalize /
_compare, src/lib/marshal_tree.c) against the real interpreters.

For every interpreter on the machine:
  - parse -> write gives back every stdlib pyc byte for byte (the
    interpreter's own installed __pycache__, or a compileall of its stdlib
    into a temporary directory when it has none);
  - the normalized form of every stdlib pyc loads (that interpreter's
    marshal.loads) to an object equal to the original's, with the header
    untouched, and normalizing twice changes nothing more;
  - two compiles of one source compare equal, an edited function is found
    at the right path; frozenset constants (in hash order, so in another
    order under another PYTHONHASHSEED) normalize to the same bytes.
"""

import os
import subprocess

import pytest


def stdlib_pycs(interp, tmp_path):
    """Paths of the interpreter's stdlib cache files (its own, or compiled
    now when it ships none)."""
    libdir = interp.run("import os, sys; sys.stdout.write(os.path.dirname(os.__file__))").stdout.decode()
    tag = interp.tag
    found = []
    for root, dirs, files in os.walk(libdir):
        dirs[:] = [d for d in dirs if d not in ("site-packages", "dist-packages")]
        for f in files:
            if f.endswith(".pyc") and (tag is None or ("." + tag + ".") in f):
                found.append(os.path.join(root, f))
    if len(found) > 200:
        return found
    # No installed caches: compile a copy of the stdlib (legacy layout on 2.7).
    dest = tmp_path / "stdlib"
    subprocess.run(["cp", "-r", libdir, str(dest)], check=True)
    interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
               str(dest), check=False)
    return [os.path.join(r, f) for r, _, fs in os.walk(str(dest)) for f in fs
            if f.endswith(".pyc")]


def test_roundtrip_every_stdlib_pyc(interp, tool, tmp_path):
    pycs = stdlib_pycs(interp, tmp_path)
    assert len(pycs) > 200
    r = subprocess.run([tool("marshal_probe"), "roundtrip"], input="\n".join(pycs).encode(),
                       stdout=subprocess.PIPE, check=False)
    out = r.stdout.decode()
    assert r.returncode == 0, out[-3000:]
    assert out.splitlines()[-1] == "%d files, 0 failures" % len(pycs)


CHECK = r'''
import marshal, os, sys
lst, outdir = sys.argv[1], sys.argv[2]
h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8)
paths = open(lst).read().split('\n')
changed = 0
for i, p in enumerate(paths):
    a = open(p, 'rb').read()
    b = open(os.path.join(outdir, str(i)), 'rb').read()
    assert a[:h] == b[:h], p
    x, y = marshal.loads(a[h:]), marshal.loads(b[h:])
    if x != marshal.loads(a[h:]):
        # A NaN constant: the object is unequal to itself. The objects
        # loaded have the same sharing, so marshal writes them alike.
        assert marshal.dumps(x) == marshal.dumps(y), p
    else:
        assert x == y, p
    changed += a != b
sys.stdout.write('%d %d' % (len(paths), changed))
'''


def test_normalize_keeps_what_marshal_loads(interp, tool, tmp_path):
    # Every fourth stdlib pyc (sorted by path): over a thousand modules a
    # version, a few seconds each.
    pycs = sorted(stdlib_pycs(interp, tmp_path))[::4]
    lst = tmp_path / "list"
    lst.write_text("\n".join(pycs))
    out1, out2 = tmp_path / "n1", tmp_path / "n2"
    out1.mkdir()
    out2.mkdir()
    probe = tool("marshal_probe")
    with open(str(lst)) as f:
        r = subprocess.run([probe, "normalize-list", str(out1)], stdin=f,
                           stdout=subprocess.PIPE, check=True)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == len(pycs)
    n, changed = map(int, interp.run(CHECK, str(lst), str(out1)).stdout.split())
    assert n == len(pycs)
    if interp.major == 2:
        # 2.7 writes no FLAG_REF: nothing to normalize.
        assert changed == 0
    else:
        # marshal leaves FLAG_REF on objects nothing refers to in every
        # module it writes.
        assert changed > len(pycs) // 2
    # Idempotent: the normal form of a normal form is itself.
    (tmp_path / "list2").write_text("\n".join(str(out1 / str(i)) for i in range(len(pycs))))
    with open(str(tmp_path / "list2")) as f:
        r = subprocess.run([probe, "normalize-list", str(out2)], stdin=f,
                           stdout=subprocess.PIPE, check=True)
    assert all(l.endswith(" unchanged") for l in r.stdout.decode().splitlines())


SOURCE_A = '''
def first(x):
    return x + 1
def second(x):
    if x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon'} or x in ('alpha', 'beta'):
        return 'found'
    return 'lost'
'''


def compile_to(interp, src, dest, seed):
    interp.run("import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
               str(src), str(dest), env={"PYTHONHASHSEED": str(seed)})


def test_compare_finds_the_changed_function(interp, tool, tmp_path):
    src = tmp_path / "m.py"
    src.write_text(SOURCE_A)
    a, b, c = tmp_path / "a.pyc", tmp_path / "b.pyc", tmp_path / "c.pyc"
    compile_to(interp, src, a, 1)
    compile_to(interp, src, b, 2)   # another hash seed: another set order
    src.write_text(SOURCE_A.replace("'found'", "'FOUND'"))
    compile_to(interp, src, c, 1)
    probe = tool("marshal_probe")
    out = lambda *args: subprocess.run([probe, "compare"] + [str(x) for x in args],
                                       stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    assert out(a, b) == "equal"
    # Function `second` is the third constant of the module in every version;
    # its own constants hold the changed string.
    consts = interp.eval_json(
        "import json, marshal, sys; d = open(sys.argv[1], 'rb').read();"
        "h = 16 if sys.version_info >= (3, 7) else (12 if sys.version_info >= (3, 3) else 8);"
        "co = marshal.loads(d[h:]);"
        "i = [j for j, k in enumerate(co.co_consts) if getattr(k, 'co_name', '') == 'second'][0];"
        "f = co.co_consts[i];"
        "sys.stdout.write(json.dumps([i, [j for j, k in enumerate(f.co_consts) if k == 'FOUND'][0]]))",
        str(c))
    assert out(a, c) == "differ co_consts[%d].co_consts[%d]" % tuple(consts)


def test_normalize_orders_frozensets(interp3, tool, tmp_path):
    # Before 3.11 two hash seeds put the frozenset's strings in two orders
    # (3.11+ marshal sorts them itself, bpo-37596); the normal forms are the
    # same bytes.
    src = tmp_path / "m.py"
    src.write_text(SOURCE_A)
    outs = []
    for seed in range(1, 6):
        p = tmp_path / ("s%d.pyc" % seed)
        compile_to(interp3, src, p, seed)
        n = tmp_path / ("n%d.pyc" % seed)
        subprocess.run([tool("marshal_probe"), "normalize", str(p), str(n)],
                       stdout=subprocess.PIPE, check=True)
        outs.append((p.read_bytes(), n.read_bytes()))
    raw = {o for o, _ in outs}
    if interp3.minor >= 11:
        assert len(raw) == 1
    else:
        assert len(raw) > 1, "the seeds should give different raw bytes"
    assert len({n for _, n in outs}) == 1
