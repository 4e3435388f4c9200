"""pytest_pycache: prune stale bytecode before a pytest session, with pycache.

A module deleted or renamed can live on as bytecode: a legacy ``NAME.pyc``
left beside the sources is imported in place of the missing ``NAME.py`` (a
*sourceless* pyc), so a test that should fail with ModuleNotFoundError passes
on the machine that still has the file. pytest-remove-stale-bytecode exists
for that; this plugin does the same with ``pycache prune --sourceless``, at C
speed, judged by CPython's own rules: it also removes orphan caches, stale
ones, unchecked-hash pycs whose source changed (loaded anyway), corrupt and
temp files, and keeps every fresh cache, so imports stay fast.

Use it with ``-p pytest_pycache`` (this directory on ``sys.path`` or
PYTHONPATH), ``addopts = -p pytest_pycache`` in the pytest configuration, or
installed as a plugin (entry point ``pytest11``: ``pycache =
pytest_pycache``). The ``pycache`` program is ``$PYCACHE`` when set, else the
first on PATH.

It runs once, before the initial conftest.py files are imported (so they too
see a pruned tree), on the rootdir and on each directory given on the command
line outside it. The header of the session says what it removed.

Options:
  --no-pycache-prune          do not prune
  --pycache-keep-sourceless   keep sourceless pycs (a project that ships
                              them on purpose)
"""

import json
import os
import shutil
import subprocess

import pytest

_REPORT = "_pycache_report"


def pytest_addoption(parser):
    group = parser.getgroup("pycache", "stale bytecode (pycache prune)")
    group.addoption("--no-pycache-prune", action="store_true", default=False,
                    dest="pycache_no_prune",
                    help="do not remove stale bytecode before the session")
    group.addoption("--pycache-keep-sourceless", action="store_true", default=False,
                    dest="pycache_keep_sourceless",
                    help="keep sourceless pycs (NAME.pyc without NAME.py)")


def _binary():
    return os.environ.get("PYCACHE") or shutil.which("pycache")


def _paths(rootdir, args, invocation_dir):
    """The rootdir, and each directory named on the command line outside it
    (a file or node id stands for its directory)."""
    root = os.path.abspath(str(rootdir))
    paths = [root]
    for arg in args:
        if arg.startswith("-"):
            continue
        path = os.path.join(str(invocation_dir), arg.split("::", 1)[0])
        path = os.path.abspath(path)
        if os.path.isfile(path):
            path = os.path.dirname(path)
        if not os.path.isdir(path):
            continue
        inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
        if not inside and path not in paths:
            paths.append(path)
    return paths


def _prune(config, namespace, args):
    if getattr(config, _REPORT, None) is not None:
        return
    if hasattr(config, "workerinput"):
        # A pytest-xdist worker: the controller has pruned already.
        setattr(config, _REPORT, "")
        return
    if getattr(namespace, "pycache_no_prune", False):
        setattr(config, _REPORT, "pycache: stale bytecode not pruned (--no-pycache-prune)")
        return
    binary = _binary()
    if not binary:
        setattr(config, _REPORT, "pycache: not found ($PYCACHE, PATH): "
                                 "stale bytecode not pruned")
        return
    paths = _paths(config.rootpath, args, config.invocation_params.dir)
    cmd = [binary, "prune", "--json"]
    if not getattr(namespace, "pycache_keep_sourceless", False):
        cmd.append("--sourceless")
    cmd += ["--"] + paths
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        setattr(config, _REPORT, "pycache: cannot run %s: %s" % (binary, e.strerror))
        return
    removed, kept = {}, 0
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("kind") == "directory":
            continue
        if item.get("action") == "removed":
            status = item.get("status") or "?"
            removed[status] = removed.get(status, 0) + 1
        elif item.get("action") == "kept" and item.get("status") == "sourceless":
            kept += 1
    where = ", ".join(paths)
    total = sum(removed.values())
    if total:
        detail = ", ".join("%d %s" % (n, s) for s, n in sorted(removed.items()))
        text = "pycache: pruned %d stale bytecode file%s (%s) under %s" % (
            total, "" if total == 1 else "s", detail, where)
    else:
        text = "pycache: no stale bytecode under %s" % where
    if kept:
        text += "; kept %d sourceless pyc%s (--pycache-keep-sourceless)" % (
            kept, "" if kept == 1 else "s")
    if proc.returncode not in (0, 1):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        text += "; pycache prune failed (exit %d)%s" % (
            proc.returncode, ": " + err[0] if err else "")
    setattr(config, _REPORT, text)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before the initial conftest.py files are imported (this hook reaches
    plugins given with -p or installed, not conftest files)."""
    ns = early_config.known_args_namespace
    if getattr(ns, "help", False) or getattr(ns, "version", False):
        return
    _prune(early_config, ns, list(getattr(ns, "file_or_dir", None) or []))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """For a plugin registered later (pytest_plugins in a conftest.py)."""
    config = session.config
    _prune(config, config.option, list(config.args))


def pytest_report_header(config):
    text = getattr(config, _REPORT, None)
    return text or None
