"""pycache: judge, clean and map Python bytecode caches as CPython would.

The Python face of the ``pycache`` program this wheel installs:

- :func:`inspect` — one cache file's header and verdict (``pycache inspect --json``);
- :func:`check` — every cache file under a tree, streamed (``pycache check -v --json``);
- :func:`cache_from_source`, :func:`source_from_cache` — where a given
  CPython version puts a source's cache, and back (``pycache where``).

Each call runs the bundled program and reads its JSON Lines output (see
docs/DESIGN.md, "The Python package", for why a subprocess and not ctypes
or an extension module): one wheel serves every CPython 3.8+, and the
answers are the command line's own, byte for byte. The program is found
next to this package (:func:`pycache._binary.find_pycache_bin`), or named by
``$PYCACHE``. The environment's ``PYTHONPYCACHEPREFIX`` is not consulted:
pass ``prefix=`` instead.
"""

import json
import os
import subprocess
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

from ._binary import PycacheNotFound, api_environ, find_pycache_bin
from ._version import __version__

__all__ = [
    "__version__",
    "PycacheError",
    "PycacheNotFound",
    "inspect",
    "check",
    "cache_from_source",
    "source_from_cache",
    "find_pycache_bin",
    "library_path",
]

PathLike = Union[str, "os.PathLike[str]"]


class PycacheError(Exception):
    """The pycache program failed: a path could not be read (its exit status
    3), or it refused the call (2, a usage error). ``returncode`` is its exit
    status, ``messages`` its error lines (``pycache check: cannot open
    'x': Permission denied``), ``argv`` the command run."""

    def __init__(self, argv: List[str], returncode: int, messages: List[str]) -> None:
        self.argv = argv
        self.returncode = returncode
        self.messages = messages
        text = "; ".join(messages) if messages else "no message"
        super().__init__("pycache exited with status %d: %s" % (returncode, text))


def library_path() -> str:
    """The path of the libpycache.so.0 this wheel ships (include/pycache.h
    is its API), for ``ctypes.CDLL``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libpycache.so.0")


def _fspath(path: PathLike) -> str:
    return os.fsdecode(os.fspath(path))


def _messages(stderr: bytes) -> List[str]:
    return [line for line in stderr.decode("utf-8", "surrogateescape").splitlines()
            if line.strip()]


def _run(args: List[str]) -> "subprocess.CompletedProcess[bytes]":
    argv = [find_pycache_bin()] + args
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=api_environ())


def _loads(line: bytes) -> Dict[str, Any]:
    # The program writes UTF-8 JSON with undecodable file-name bytes as
    # \\udcXX escapes (os.fsdecode's surrogateescape), so json.loads gives
    # the str os.fsdecode would: os.fsencode(result["path"]) is the name.
    return json.loads(line)


def inspect(path: PathLike, *, deep: bool = False, prefix: Optional[PathLike] = None,
            check_hash_based_pycs: str = "default") -> Dict[str, Any]:
    """What the cache file PATH says and how CPython would judge it: the
    object ``pycache inspect --json PATH`` prints, with the same keys and
    values. DEEP also validates the marshalled body. A damaged file is a
    verdict (``status`` corrupt or stale), not an error; a file that cannot
    be read raises PycacheError (FileNotFoundError when it does not exist)."""
    name = _fspath(path)
    if not os.path.lexists(name):
        raise FileNotFoundError(2, "No such file or directory", name)
    args = ["inspect", "--json", "--check-hash-based-pycs=" + check_hash_based_pycs]
    if deep:
        args.append("--deep")
    if prefix is not None:
        args.append("--prefix=" + _fspath(prefix))
    args += ["--", name]
    proc = _run(args)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode not in (0, 1) or len(lines) != 1:
        raise PycacheError(args, proc.returncode, _messages(proc.stderr))
    return _loads(lines[0])


def check(*paths: PathLike, deep: bool = False, prefix: Optional[PathLike] = None,
          expect: Iterable[str] = (), check_hash_based_pycs: str = "default",
          include_venvs: bool = False) -> Iterator[Dict[str, Any]]:
    """Every cache file under PATHS (default: the current directory), fresh
    ones included: the objects ``pycache check -v --json`` lists, one dict
    per file, yielded as the program writes them (a tree of any size is
    never held in memory here; the program sorts its listing by path with
    bounded memory, spilling to a temporary file). EXPECT: versions every source must have a fresh
    cache for (``"3.12"``, ``"3.12:0,1"``), adding ``missing`` entries.

    A path that does not exist raises FileNotFoundError before anything is
    read. A directory the walk could not read is listed as the program lists
    it (``status`` "error", ``reason`` the step that failed, ``error`` the
    message), and once every entry has been yielded, PycacheError is raised
    with the program's messages. Closing the iterator early stops the
    program."""
    names = [_fspath(p) for p in paths] or ["."]
    for name in names:
        if not os.path.lexists(name):
            raise FileNotFoundError(2, "No such file or directory", name)
    args = ["check", "-v", "--json", "--fail-on=none",
            "--check-hash-based-pycs=" + check_hash_based_pycs]
    if deep:
        args.append("--deep")
    if include_venvs:
        args.append("--include-venvs")
    if prefix is not None:
        args.append("--prefix=" + _fspath(prefix))
    if isinstance(expect, str):
        expect = (expect,)
    args += ["--expect=" + e for e in expect]
    args += ["--"] + names
    return _stream(args)


# The most one read takes from the pipe; a read returns what is there.
_CHUNK = 1 << 16


def _stream(args: List[str]) -> Iterator[Dict[str, Any]]:
    argv = [find_pycache_bin()] + args
    # Errors go to a file, not a pipe: a walk with many unreadable
    # directories could fill a pipe nobody reads while stdout is consumed.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors,
                                env=api_environ(), bufsize=0)
        assert proc.stdout is not None
        finished = False
        try:
            for obj in _objects(proc.stdout):
                yield obj
            finished = True
        finally:
            if not finished:
                proc.kill()
            proc.stdout.close()
            returncode = proc.wait()
        if returncode not in (0, 1):
            errors.seek(0)
            raise PycacheError(args, returncode, _messages(errors.read()))


def _objects(pipe: Any) -> Iterator[Dict[str, Any]]:
    """The JSON Lines objects of PIPE, as soon as each read brings them.

    Every complete line a read brought is decoded with one json.loads, as
    the items of a JSON array: the program's JSON never holds a raw newline
    (they are escaped in strings), so joining the lines with commas is
    exact, and one call per read instead of one per line makes decoding
    about 2.5 times faster (bench/README.md, the api group)."""
    rest = b""
    while True:
        chunk = pipe.read(_CHUNK)
        if not chunk:
            break
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        rest = chunk[cut:]
        if cut:
            yield from json.loads(b"[" + chunk[:cut - 1].replace(b"\n", b",") + b"]")
    if rest.strip():
        yield _loads(rest)


def _where(args: List[str], key: str, name: str) -> str:
    proc = _run(args)
    if proc.returncode == 1:
        # The path CPython refuses: importlib raises ValueError for it too
        # (cache_from_source / source_from_cache), with the same reason.
        text = "; ".join(_messages(proc.stderr))
        raise ValueError(text.split(": ", 1)[-1] if text else "cannot map %r" % name)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(lines) != 1:
        raise PycacheError(args, proc.returncode, _messages(proc.stderr))
    return str(_loads(lines[0])[key])


def cache_from_source(path: PathLike, python: str = "3.12", optimization: int = 0,
                      prefix: Optional[PathLike] = None) -> str:
    """The cache file CPython PYTHON (``"3.12"``, ``"2.7"``) writes for the
    source PATH at optimization level OPTIMIZATION (0, 1 for -O, 2 for -OO),
    under the PYTHONPYCACHEPREFIX tree PREFIX when given (3.8+): what that
    version's ``importlib.util.cache_from_source`` returns (Python 2:
    ``NAME.pyc``/``NAME.pyo`` beside the source). The file need not exist.
    Raises ValueError where importlib does."""
    name = _fspath(path)
    args = ["where", "--json", "--python=" + python, "--opt=%d" % optimization]
    if prefix is not None:
        args.append("--prefix=" + _fspath(prefix))
    args += ["--", name]
    return _where(args, "cache", name)


def source_from_cache(path: PathLike, python: Optional[str] = None,
                      prefix: Optional[PathLike] = None) -> str:
    """The source of the cache file PATH, as ``importlib.util.source_from_cache``
    of the interpreter named by the file's tag computes it (PYTHON chooses
    whose rules apply to a name without a tag). Raises ValueError for a path
    that is not a cache file name CPython accepts."""
    name = _fspath(path)
    args = ["where", "--json"]
    if python is not None:
        args.append("--python=" + python)
    if prefix is not None:
        args.append("--prefix=" + _fspath(prefix))
    args += ["--", name]
    return _where(args, "source", name)
