"""The pytest plugin: prune stale bytecode before a test session.

Registered through the ``pytest11`` entry point when the wheel is installed:
pytest loads it without ``-p``, ``-p no:pycache`` turns it off.

Why: a module deleted or renamed can live on as bytecode. A legacy
``NAME.pyc`` left beside the sources is imported in place of the missing
``NAME.py`` (a *sourceless* pyc), so a test that should fail with
ModuleNotFoundError passes on the machine that still has the file.
pytest-remove-stale-bytecode exists for that; this plugin runs
``pycache prune --sourceless`` instead: it also removes orphan caches,
stale ones, unchecked-hash pycs whose source changed (loaded anyway),
corrupt and temp files, judged by CPython's own rules, and keeps every
fresh cache, so imports stay fast.

It runs once, before the initial conftest.py files are imported (so they
too see a pruned tree), and only inside the project: the rootdir, and the
``testpaths`` entries that lie outside it. A directory named on the command
line outside those is never touched, and a rootdir that is ``/`` or the home
directory itself (pytest run with no configuration file far from a project)
is not pruned. The header of the session says what was done.

Options (command line, or the ini setting of the same name):
  --pycache-mode=prune|report|off   ini pycache_mode (default prune);
      report lists what prune would remove, removes nothing
  --pycache-sourceless / --pycache-keep-sourceless
      ini pycache_sourceless (default true): remove sourceless pycs too
  --no-pycache-prune                the same as --pycache-mode=off
"""

import json
import os
import subprocess
from typing import Any, Dict, List, Optional

import pytest

from ._binary import PycacheNotFound, find_pycache_bin

_REPORT = "_pycache_report"
MODES = ("prune", "report", "off")


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("pycache", "stale bytecode (pycache prune)")
    group.addoption("--pycache-mode", choices=MODES, default=None, dest="pycache_mode",
                    help="before the session: prune stale bytecode, report what "
                         "would be pruned, or do nothing (default: ini "
                         "pycache_mode, else prune)")
    group.addoption("--no-pycache-prune", action="store_const", const="off",
                    dest="pycache_mode", help="the same as --pycache-mode=off")
    group.addoption("--pycache-sourceless", action="store_true", default=None,
                    dest="pycache_sourceless",
                    help="also remove sourceless pycs (NAME.pyc without NAME.py; "
                         "the default, ini pycache_sourceless)")
    group.addoption("--pycache-keep-sourceless", action="store_false",
                    dest="pycache_sourceless",
                    help="keep sourceless pycs (a project that ships them on purpose)")
    parser.addini("pycache_mode", "prune (default), report or off: what pycache does "
                  "with stale bytecode before the session", default="prune")
    parser.addini("pycache_sourceless", "remove sourceless pycs too (default true)",
                  type="bool", default=True)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _targets(config: Any) -> List[str]:
    """The rootdir, and each testpaths directory outside it; never '/' or
    the home directory itself."""
    root = os.path.realpath(str(config.rootpath))
    refused = {os.sep, os.path.realpath(os.path.expanduser("~"))}
    paths = [] if root in refused else [root]
    try:
        testpaths = config.getini("testpaths") or []
    except ValueError:
        testpaths = []
    for entry in testpaths:
        path = os.path.realpath(os.path.join(root, str(entry)))
        if not os.path.isdir(path) or path in refused:
            continue
        if not any(_inside(path, p) for p in paths):
            paths.append(path)
    return paths


def _summary(stdout: bytes, action_wanted: str) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("kind") == "directory":
            continue
        if item.get("action") == action_wanted:
            status = item.get("status") or "?"
            counts[status] = counts.get(status, 0) + 1
        elif item.get("action") == "kept" and item.get("status") == "sourceless":
            counts["kept sourceless"] = counts.get("kept sourceless", 0) + 1
    return counts


def _option(config: Any, namespace: Any, name: str) -> Any:
    value = getattr(namespace, name, None)
    return config.getini(name) if value is None else value


def _prune(config: Any, namespace: Any) -> None:
    if getattr(config, _REPORT, None) is not None:
        return
    if hasattr(config, "workerinput"):
        # A pytest-xdist worker: the controller has pruned already.
        setattr(config, _REPORT, "")
        return
    mode = str(_option(config, namespace, "pycache_mode")).strip() or "prune"
    if mode not in MODES:
        raise pytest.UsageError("pycache_mode: %r is not one of %s" % (mode, ", ".join(MODES)))
    if mode == "off":
        setattr(config, _REPORT, "pycache: stale bytecode not pruned (pycache_mode off)")
        return
    sourceless = bool(_option(config, namespace, "pycache_sourceless"))
    paths = _targets(config)
    if not paths:
        setattr(config, _REPORT, "pycache: rootdir %s is / or the home directory: not pruned"
                % config.rootpath)
        return
    try:
        binary = find_pycache_bin()
    except PycacheNotFound as e:
        setattr(config, _REPORT, "pycache: %s: stale bytecode not pruned" % e)
        return
    cmd = [binary, "prune", "--json"]
    if mode == "report":
        cmd.append("--dry-run")
    if sourceless:
        cmd.append("--sourceless")
    cmd += ["--"] + paths
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        setattr(config, _REPORT, "pycache: cannot run %s: %s" % (binary, e.strerror))
        return
    counts = _summary(proc.stdout, "would-remove" if mode == "report" else "removed")
    kept = counts.pop("kept sourceless", 0)
    where = ", ".join(paths)
    total = sum(counts.values())
    verb = "would prune" if mode == "report" else "pruned"
    if total:
        detail = ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))
        text = "pycache: %s %d stale bytecode file%s (%s) under %s" % (
            verb, total, "" if total == 1 else "s", detail, where)
    else:
        text = "pycache: no stale bytecode under %s" % where
    if kept:
        text += "; kept %d sourceless pyc%s (pycache_sourceless false)" % (
            kept, "" if kept == 1 else "s")
    if proc.returncode not in (0, 1):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        text += "; pycache prune failed (exit %d)%s" % (
            proc.returncode, ": " + err[0] if err else "")
    setattr(config, _REPORT, text)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: List[str]) -> None:
    """Before the initial conftest.py files are imported: the hook reaches
    plugins installed or given with -p, never conftest files."""
    ns = early_config.known_args_namespace
    if getattr(ns, "help", False) or getattr(ns, "version", False):
        return
    _prune(early_config, ns)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: Any) -> None:
    """For a plugin registered late (pytest_plugins in a conftest.py)."""
    _prune(session.config, session.config.option)


def pytest_report_header(config: Any) -> Optional[str]:
    text = getattr(config, _REPORT, None)
    return text or None
