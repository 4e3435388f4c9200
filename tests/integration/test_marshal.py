"""pyc_marshal_validate against each real interpreter's marshal.loads.

`check --deep` calls a pyc corrupt when pyc_marshal_validate says its body is
not OK. The oracle is what importlib does with the body: marshal.loads(body)
must succeed and return a code object (_compile_bytecode; read_compiled_module
in 2.7). So for every interpreter:
  - the bodies of pycs it writes for varied sources are OK;
  - for damaged bodies (truncated at many offsets, random byte changes, the
    bodies of other objects), OK <=> that interpreter's marshal.loads returns
    a code object. marshal.loads runs in a helper process (with a 1 GiB
    address-space limit, so huge sizes fail fast); a crash of that process
    counts as a failed load, which is what the import would see.
"""

import ctypes
import os
import random
import struct
import subprocess

import pytest

OK, NOT_CODE = 0, 7

# Sources every interpreter compiles (2.7 syntax included).
COMMON_SOURCES = {
    "literals": r'''# -*- coding: utf-8 -*-
import sys
A = None, True, False, Ellipsis
B = 0, 1, -1, 255, 2**31 - 1, -2**31, 2**31, 2**63, -2**64, 2**200 + 12345, -(10**50)
C = 1.5, -0.0, 1e300, float('inf'), 3.141592653589793
D = 1j, 2.5 + 3j, -1e-300j
E = b'bytes', b'', b'\x00\xff' * 40
F = u'unicode', u'caf\xe9', u'\u20ac\U0001f600', u'', u'x' * 300, 'ascii' * 100
G = frozenset([1, 2, 3]), frozenset(), (1, (2, (3, (4,)))), [1, 2], {'a': 1, 'b': [2]}
M = ('dup', 'dup', 'dup', 'name', 'name', 1.5, 1.5)
''',
    "functions": r'''
def f(a, b=2, *args, **kw):
    x = a + b
    def g(y):
        return x + y
    return g
class K(object):
    attr = 'same string'
    def method(self, q):
        return [i * q for i in range(10) if i % 2]
    @property
    def prop(self):
        return dict((k, v) for k, v in zip('abc', range(3)))
L = lambda s: s.upper()
try:
    import nonexistent_module_xyz
except ImportError as e:
    err = e
finally:
    z = 0
for i in range(3):
    while z < 10:
        z += i + 1
        if z > 5:
            break
    else:
        pass
def outer():
    cell = [0]
    def inner():
        cell[0] += 1
        return cell[0]
    return inner
def gen(n):
    for i in range(n):
        yield i * 2
''',
    "many_consts": "def big():\n" + "".join(
        "    v%d = %r\n" % (i, ("str%d" % (i % 37), i * 1000003, i / 7.0, (i, "x%d" % i))[i % 4])
        for i in range(200)) + "    return [%s]\n" % ", ".join("v%d" % i for i in range(200))
        + "NAMES = %r\n" % (tuple("n%d" % i for i in range(300)),),
    "empty": "",
}

# 3.6+ only.
PY3_SOURCES = {
    "py3": r'''
async def co(x, *, y=1):
    async with x as z:
        await z
    return [i async for i in x]
def kwonly(a, *, b, c=3):
    v = 1
    def inner():
        nonlocal v
        v += 1
    return inner
S = {1.5, 'two', b'three', (4, 5), frozenset({6})}
FS = f"{kwonly!r:>10} {S}"
T = ('\xe9', '\xfc' * 50, '\u20ac' * 3)
class Meta(type):
    def __new__(mcls, name, bases, ns, **kw):
        return super().__new__(mcls, name, bases, ns)
class UsesMeta(metaclass=Meta):
    x: int = 5
''',
}

# Runs in the interpreter under test: one marshal.loads per request.
ORACLE = r'''
import sys, marshal, struct
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
except Exception:
    pass
inp = getattr(sys.stdin, 'buffer', sys.stdin)
out = getattr(sys.stdout, 'buffer', sys.stdout)
CodeType = type(compile('1', '', 'eval'))
while True:
    h = inp.read(4)
    if len(h) < 4:
        break
    b = inp.read(struct.unpack('<I', h)[0])
    try:
        r = marshal.loads(b)
        res = b'code' if type(r) is CodeType else b'other'
    except Exception as e:
        res = b'error'
    out.write(res + b'\n')
    out.flush()
'''

# Writes pycs the interpreter's own way (py_compile), prints their paths.
COMPILE = r'''
import sys, py_compile
for src in sys.argv[1:]:
    py_compile.compile(src, cfile=src + 'c', doraise=True)
    sys.stdout.write(src + 'c\n')
'''


class Loader(object):
    """marshal.loads of one interpreter, in a helper process."""

    def __init__(self, interp):
        self.interp = interp
        self.proc = None

    def loads(self, body):
        """'code', 'other', 'error' or 'crash'."""
        if self.proc is None:
            env = dict(os.environ)
            env.pop("PYTHONHOME", None)
            env.pop("PYTHONPATH", None)
            self.proc = subprocess.Popen([self.interp.path, "-c", ORACLE], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
        try:
            self.proc.stdin.write(struct.pack("<I", len(body)) + body)
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if not line:
            self.proc.wait()
            self.proc = None
            return "crash"
        return line.strip().decode()

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def validate(libpycache):
    libpycache.pyc_magic_lookup.restype = ctypes.c_void_p
    libpycache.pyc_magic_lookup.argtypes = [ctypes.c_uint32]
    libpycache.pyc_marshal_validate.restype = ctypes.c_int
    libpycache.pyc_marshal_validate.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]

    def run(interp, body):
        word = int.from_bytes(interp.magic_bytes, "little")
        m = libpycache.pyc_magic_lookup(word)
        assert m, "magic of %s unknown to the library" % interp.version
        off = ctypes.c_size_t(0)
        st = libpycache.pyc_marshal_validate(m, body, len(body), ctypes.byref(off))
        assert off.value <= len(body)
        return st
    return run


def header_length(interp):
    if interp.major == 2:
        return 8
    return 16 if interp.minor >= 7 else 12


def pyc_bodies(interp, tmp_path):
    """{name: body} of the pycs INTERP writes for the test sources."""
    sources = dict(COMMON_SOURCES)
    if interp.major == 3:
        sources.update(PY3_SOURCES)
    paths = []
    for name, text in sorted(sources.items()):
        p = tmp_path / (name + ".py")
        p.write_bytes(text.encode("utf-8"))
        paths.append(str(p))
    out = interp.run(COMPILE, *paths).stdout.decode().split()
    bodies = {}
    for name, pyc in zip(sorted(sources), out):
        with open(pyc, "rb") as f:
            data = f.read()
        assert data[:4] == interp.magic_bytes
        bodies[name] = data[header_length(interp):]
    return bodies


def mutations(body, rng, flips):
    """Damaged copies of BODY: (label, bytes)."""
    n = len(body)
    step = max(1, n // 40)
    for i in list(range(0, min(n, 48))) + list(range(48, n, step)):
        yield "truncated at %d" % i, body[:i]
    codes = bytearray(b"0NFTS.iIfgxylstRuaAzZ()[{<>cr?:")
    for k in range(flips):
        b = bytearray(body)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            i = rng.randrange(n)
            r = rng.random()
            if r < 0.4:
                b[i] ^= 1 << rng.randrange(8)
            elif r < 0.7:
                b[i] = rng.randrange(256)
            elif r < 0.85:
                b[i] = rng.choice(codes) | rng.choice((0, 0x80))
            else:
                b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, 1))
        yield "changed #%d" % k, bytes(b)
    # The code object's leading longs (argument counts, flags...).
    for i in range(1, min(n, 30)):
        for v in (0, 1, 0x7F, 0x80, 0xFF):
            b = bytearray(body)
            b[i] = v
            yield "byte %d = %#x" % (i, v), bytes(b)


def test_real_bodies_ok(interp, validate, tmp_path):
    for name, body in pyc_bodies(interp, tmp_path).items():
        assert validate(interp, body) == OK, name
        # marshal.loads ignores trailing bytes
        assert validate(interp, body + b"trailing") == OK, name


def test_damaged_bodies_agree_with_marshal_loads(interp, validate, tmp_path):
    rng = random.Random("marshal-" + interp.version)
    loader = Loader(interp)
    disagreements = []
    count = 0
    try:
        for name, body in sorted(pyc_bodies(interp, tmp_path).items()):
            flips = 250 if len(body) > 500 else 60
            for label, damaged in mutations(body, rng, flips):
                ours = validate(interp, damaged)
                theirs = loader.loads(damaged)
                count += 1
                if (ours == OK) != (theirs == "code"):
                    disagreements.append("%s %s: ours %d, marshal.loads %s, body %s" % (
                        name, label, ours, theirs, damaged[:64].hex()))
    finally:
        loader.close()
    assert count > 1000
    assert not disagreements, "\n".join(disagreements[:20])


# Bodies of other objects, as the interpreter's marshal.dumps writes them.
OTHER_OBJECTS = r'''
import sys, marshal, binascii
c = compile('x = 1', 'm.py', 'exec')
objs = [1, -5, 2**100, 1.5, 2j, 'text', u'\xe9t\xe9', b'bytes' if sys.version_info[0] > 2 else 'str',
        (1, 2), (c,), [c], {'a': c}, {1: 2}, None, True, Ellipsis, frozenset([1]), set([2]),
        (1, (2, [3])), StopIteration]
for o in objs:
    sys.stdout.write(binascii.hexlify(marshal.dumps(o)).decode() + '\n')
'''


def test_other_objects_are_not_code(interp, validate):
    loader = Loader(interp)
    try:
        for line in interp.run(OTHER_OBJECTS).stdout.decode().split():
            body = bytes.fromhex(line)
            assert loader.loads(body) == "other"
            assert validate(interp, body) == NOT_CODE, line
    finally:
        loader.close()


def test_empty_body(interp, validate):
    # marshal.loads(b'') raises EOFError: PYC_MARSHAL_EMPTY
    loader = Loader(interp)
    try:
        assert loader.loads(b"") == "error"
    finally:
        loader.close()
    assert validate(interp, b"") == 1
