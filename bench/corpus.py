#!/usr/bin/python3
"""Generates the benchmark corpus: stdlib trees compiled by real interpreters, with damage.

The corpus is a directory tree that looks like a large, long-lived Python
checkout: the standard library sources of every local interpreter side by side,
each compiled by several interpreters (their own ``-m compileall``), at several
optimisation levels and invalidation modes, then damaged the way real trees get
damaged:

  orphans      sources deleted after compiling (their pycs stay behind)
  stale        sources touched (mtime) or edited (size, hash) after compiling
  legacy       pycs written beside their sources (``compileall -b``, Python 2)
  sourceless   legacy pycs whose source was then deleted
  temp         CPython's leftover temp files (``NAME.TAG.pyc.DIGITS``, see
               importlib._bootstrap_external._write_atomic)
  skipped      a .git with loose objects, a node_modules and a venv (pyvenv.cfg),
               each holding pycs that a cleaner must not touch

Everything is seeded: the same interpreters give the same tree (same names,
same sizes).  Generation takes a few minutes, so the result is cached:

  DIR/PROFILE/            the tree the benchmarks walk (PROFILE: full or quick)
  DIR/PROFILE.json        its manifest (composition, counts, digests of the
                          skipped directories)
  DIR/PROFILE.compile-src one stdlib tree, sources only, that every interpreter
                          /usr/bin/python3 can compile (for the compile rows)
  DIR/PROFILE.compiled    the same tree compiled by /usr/bin/python3 only

It is regenerated only with --regen, when missing, or when this generator's
CORPUS_VERSION changed.  Usage:

  bench/corpus.py [--dir DIR] [--quick] [--regen]

Only the standard library is used (this runs under Debian's /usr/bin/python3).
"""

import argparse
import glob
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import zlib

CORPUS_VERSION = 5
SEED = 20240611
MARKER = "PYCACHE-BENCH-CORPUS"  # a file in every tree this script owns
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "corpus")
SYSTEM_PYTHON = "/usr/bin/python3"

# Directory names never copied from a stdlib tree.
NOT_STDLIB = {"site-packages", "dist-packages", "__pycache__", "lib-dynload"}


# ---- interpreters -------------------------------------------------------------

def discover_interpreters():
    """{'2.7': path, ..., '3.13': path, 'debian3.11': '/usr/bin/python3'}"""
    found = {}
    for exe in sorted(glob.glob("/root/.pyenv/versions/*/bin/python")):
        ver = os.path.basename(os.path.dirname(os.path.dirname(exe)))
        m = re.match(r"(\d+)\.(\d+)\.", ver)
        if m:
            found["%s.%s" % m.groups()] = exe
    if os.access(SYSTEM_PYTHON, os.X_OK):
        found["debian3.11"] = SYSTEM_PYTHON
    return found


def stdlib_dir(key, exe):
    if key.startswith("debian"):
        return "/usr/lib/python3.11"
    prefix = os.path.dirname(os.path.dirname(exe))
    return os.path.join(prefix, "lib", "python" + key)


def version_of(key):
    m = re.search(r"(\d+)\.(\d+)$", key)
    return (int(m.group(1)), int(m.group(2)))


def clean_env():
    """The environment for interpreters: no PYTHON* variable (a
    PYTHONPYCACHEPREFIX would redirect every pyc) and no SOURCE_DATE_EPOCH
    (compileall 3.7+ would then write checked-hash pycs)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k != "SOURCE_DATE_EPOCH"}
    return env


# ---- profiles -----------------------------------------------------------------
#
# A tree: which stdlib it copies (key of discover_interpreters), which top-level
# entries it keeps (None: all; else a predicate), and its compile steps:
#   (interpreter key, opt levels, invalidation mode or None, share, legacy)
# share is the fraction of top-level entries the step compiles (seeded choice);
# legacy=True compiles with -b (pycs beside their sources).

SMALL_EXCLUDE = {"test", "idlelib", "lib2to3", "tkinter", "turtledemo",
                 "ensurepip", "distutils", "pydoc_data", "unittest"}


def _small(name):
    return name not in SMALL_EXCLUDE


FULL = {
    "trees": [
        ("py2.7", "2.7", None, [("2.7", [0], None, 1.0, False),
                                ("2.7", [1], None, 1.0, False)]),
        ("py3.6", "3.6", None, [("3.6", [0, 1, 2], None, 1.0, False),
                                ("3.7", [0], None, 1.0, False),
                                ("3.8", [0], None, 1.0, False),
                                ("3.9", [0], None, 1.0, False),
                                ("3.10", [0], None, 1.0, False)]),
        ("py3.7", "3.7", None, [("3.7", [0, 1, 2], None, 1.0, False),
                                ("3.7", [0], "unchecked-hash", 0.3, False),
                                ("3.8", [0], None, 1.0, False),
                                ("3.9", [0], None, 1.0, False),
                                ("3.10", [0], None, 1.0, False)]),
        ("py3.8", "3.8", None, [("3.8", [0, 1, 2], None, 1.0, False),
                                ("3.9", [0], None, 1.0, False),
                                ("3.10", [0], None, 1.0, False),
                                ("3.11", [0], None, 1.0, False),
                                ("3.12", [0], None, 1.0, False),
                                ("3.13", [0], None, 1.0, False)]),
        ("py3.9", "3.9", None, [("3.9", [0, 1, 2], None, 1.0, False),
                                ("3.9", [0], "unchecked-hash", 0.2, False),
                                ("3.10", [0], None, 1.0, False),
                                ("3.11", [0], None, 1.0, False),
                                ("3.12", [0], None, 1.0, False)]),
        ("py3.10", "3.10", None, [("3.10", [0, 1, 2], None, 1.0, False),
                                  ("3.10", [0], None, 0.15, True),
                                  ("3.11", [0], None, 1.0, False),
                                  ("3.12", [0], None, 1.0, False),
                                  ("3.13", [0], None, 1.0, False)]),
        ("py3.11", "3.11", None, [("3.11", [0, 1, 2], None, 1.0, False),
                                  ("3.11", [0], "checked-hash", 0.3, False),
                                  ("3.12", [0], None, 1.0, False),
                                  ("3.13", [0], None, 1.0, False)]),
        ("py3.12", "3.12", None, [("3.12", [0, 1, 2], None, 1.0, False),
                                  ("3.11", [0], None, 1.0, False),
                                  ("3.13", [0], None, 1.0, False)]),
        ("py3.13", "3.13", None, [("3.13", [0, 1, 2], None, 1.0, False),
                                  ("3.13", [0], "checked-hash", 0.3, False),
                                  ("3.13", [0], None, 0.1, True),
                                  ("3.12", [0], None, 1.0, False)]),
        ("debian3.11", "debian3.11", None,
         [("debian3.11", [0, 1], None, 1.0, False),
          ("3.12", [0], None, 1.0, False),
          ("3.13", [0], None, 1.0, False)]),
    ],
    # (where, copied from tree, top-level entries, interpreters)
    "project": ("py3.11", ["json", "email", "http", "xml", "asyncio"],
                ["3.11", "3.12"]),
    "git_objects_from": ["py3.8", "py3.9", "py3.10", "py3.11", "py3.12"],
    "node_modules": ("py3.10", ["ctypes", "sqlite3", "urllib", "logging"],
                     ["3.10"]),
    "venv": ("debian3.11", ["email", "xml", "asyncio", "unittest", "json",
                            "http", "concurrent", "importlib"],
             ["debian3.11"]),
    "compile_tree": ("3.11", None),
}

QUICK = {
    "trees": [
        ("py2.7", "2.7", _small, [("2.7", [0], None, 1.0, False)]),
        ("py3.8", "3.8", _small, [("3.8", [0, 1, 2], None, 1.0, False),
                                  ("3.12", [0], None, 1.0, False)]),
        ("py3.11", "3.11", _small, [("3.11", [0, 1, 2], None, 1.0, False),
                                    ("3.11", [0], "checked-hash", 0.3, False),
                                    ("3.11", [0], None, 0.15, True)]),
        ("py3.13", "3.13", _small, [("3.13", [0, 1, 2], None, 1.0, False),
                                    ("3.11", [0], None, 1.0, False)]),
    ],
    "project": ("py3.11", ["json", "email"], ["3.11"]),
    "git_objects_from": ["py3.11"],
    "node_modules": ("py3.8", ["sqlite3", "urllib"], ["3.8"]),
    "venv": ("py3.11", ["json", "http", "concurrent"], ["3.11"]),
    "compile_tree": ("3.11", _small),
}

PROFILES = {"full": FULL, "quick": QUICK}

# Damage rates, per tree (fractions of its sources / pycs).
ORPHAN_RATE = 0.02
TOUCH_RATE = 0.03
EDIT_RATE = 0.02
TEMP_RATE = 0.003
SOURCELESS_RATE = 0.2   # of the legacy-compiled sources


# ---- helpers ------------------------------------------------------------------

def log(msg):
    print("corpus: " + msg, file=sys.stderr, flush=True)


def copy_stdlib(src_root, dst_root, keep=None):
    """Copies the .py files of a stdlib tree (not site-packages); keeps the
    original mtimes (copy2) so the tree is the same on every run."""
    n = 0
    for top in sorted(os.listdir(src_root)):
        if top in NOT_STDLIB or (keep is not None and not keep(top)):
            continue
        path = os.path.join(src_root, top)
        if os.path.isfile(path) and top.endswith(".py"):
            os.makedirs(dst_root, exist_ok=True)
            shutil.copy2(path, os.path.join(dst_root, top))
            n += 1
        elif os.path.isdir(path) and not os.path.islink(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in NOT_STDLIB
                                     and not d.startswith("config-"))
                rel = os.path.relpath(dirpath, src_root)
                pys = sorted(f for f in filenames if f.endswith(".py"))
                if not pys:
                    continue
                os.makedirs(os.path.join(dst_root, rel), exist_ok=True)
                for f in pys:
                    s = os.path.join(dirpath, f)
                    if os.path.islink(s) or not os.path.isfile(s):
                        continue
                    shutil.copy2(s, os.path.join(dst_root, rel, f))
                    n += 1
    return n


def top_entries(tree):
    return sorted(e for e in os.listdir(tree)
                  if e.endswith(".py") or os.path.isdir(os.path.join(tree, e)))


def compileall(exe, key, targets, opts, mode=None, legacy=False, quiet=True):
    """Runs EXE -m compileall on TARGETS the way each version allows it:
    2.7 has no -j/-b/-o (opt level through -O, pycs beside sources anyway);
    3.5-3.8 take -j but no -o (opt level through -O/-OO); 3.9+ take -o."""
    if not targets:
        return
    ver = version_of(key)
    env = clean_env()
    runs = []
    if ver < (3, 0):
        for o in opts:
            flags = ["-O"] if o >= 1 else []  # -OO writes the same .pyo
            runs.append([exe] + flags + ["-m", "compileall", "-q"])
    elif ver < (3, 9):
        for o in opts:
            flags = [["-O"], ["-OO"]][o - 1] if o else []
            runs.append([exe] + flags + ["-m", "compileall", "-q", "-j0"])
    else:
        cmd = [exe, "-m", "compileall", "-q", "-j0"]
        for o in opts:
            cmd += ["-o", str(o)]
        runs.append(cmd)
    for cmd in runs:
        if mode:
            cmd += ["-f", "--invalidation-mode", mode]
        if legacy and ver >= (3, 0):
            cmd += ["-b"]
        # Failures (stdlib test files with bad syntax on purpose, newer syntax
        # under an older interpreter) are expected: those files get no pyc.
        subprocess.run(cmd + ["--"] + targets if ver >= (3, 0) else cmd + targets,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, check=False)


def list_files(root, suffix):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(suffix):
                out.append(os.path.join(dirpath, f))
    return out


def sample(rng, items, rate):
    k = int(round(len(items) * rate))
    return sorted(rng.sample(items, k)) if k else []


def git_blob(dst_git, data):
    """Writes DATA as a real loose git object; returns its id."""
    body = b"blob %d\0" % len(data) + data
    oid = hashlib.sha1(body).hexdigest()
    d = os.path.join(dst_git, "objects", oid[:2])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, oid[2:])
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(zlib.compress(body, 1))
    return oid


def tree_digest(root):
    """A digest of every entry under ROOT (names, types, sizes, file mtimes):
    bench.py compares it after pycache clean/prune to prove the skipped
    directories were not touched."""
    h = hashlib.sha256()
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        h.update(b"D " + os.fsencode(rel) + b"\n")
        for f in sorted(filenames):
            st = os.lstat(os.path.join(dirpath, f))
            h.update(b"F %s %d %d\n" % (os.fsencode(f), st.st_size, st.st_mtime_ns))
            n += 1
    return {"sha256": h.hexdigest(), "files": n}


# ---- the generator --------------------------------------------------------------

class Generator:
    def __init__(self, profile_name, out_root):
        self.profile_name = profile_name
        self.profile = PROFILES[profile_name]
        self.root = out_root
        self.interp = discover_interpreters()
        self.rng = random.Random(SEED)
        self.damage = {"orphaned_sources": 0, "touched_sources": 0,
                       "edited_sources": 0, "edited_size_only": 0,
                       "sourceless_sources": 0, "temp_files": 0}
        self.trees = {}
        self.missing = []

    def have(self, key):
        if key in self.interp:
            return True
        if key not in self.missing:
            self.missing.append(key)
        return False

    def build_tree(self, name, src_key, keep, steps):
        if not self.have(src_key):
            return
        t0 = time.time()
        tree = os.path.join(self.root, name)
        nsrc = copy_stdlib(stdlib_dir(src_key, self.interp[src_key]), tree, keep)
        rng = random.Random("%d/%s" % (SEED, name))
        tops = top_entries(tree)
        legacy_targets = []
        for key, opts, mode, share, legacy in steps:
            if not self.have(key):
                continue
            chosen = tops if share >= 1.0 else sample(rng, tops, share)
            targets = [os.path.join(tree, t) for t in chosen]
            compileall(self.interp[key], key, targets, opts, mode, legacy)
            if legacy:
                legacy_targets += targets
        self.trees[name] = {"stdlib": src_key, "sources_copied": nsrc,
                            "steps": [[k, o, m, s, l] for k, o, m, s, l in steps
                                      if k in self.interp]}
        self.apply_damage(tree, rng, legacy_targets)
        log("%-12s %5d sources, compiled and damaged in %.0fs"
            % (name, nsrc, time.time() - t0))

    def apply_damage(self, tree, rng, legacy_targets):
        # Sourceless: legacy pycs (written by -b) whose source is deleted.
        legacy_srcs = []
        for t in legacy_targets:
            if os.path.isdir(t):
                legacy_srcs += [p for p in list_files(t, ".py")
                                if os.path.exists(p + "c")]
            elif os.path.exists(t + "c"):
                legacy_srcs.append(t)
        for p in sample(rng, sorted(set(legacy_srcs)), SOURCELESS_RATE):
            os.unlink(p)
            self.damage["sourceless_sources"] += 1
        sources = list_files(tree, ".py")
        # Orphans: sources deleted after compiling (their __pycache__ pycs are
        # orphans; in a Python 2 tree the legacy .pyc becomes sourceless).
        orphans = set(sample(rng, sources, ORPHAN_RATE))
        for p in orphans:
            os.unlink(p)
        self.damage["orphaned_sources"] += len(orphans)
        rest = [p for p in sources if p not in orphans]
        # Stale: touched (mtime only) ...
        touched = set(sample(rng, rest, TOUCH_RATE))
        for p in touched:
            st = os.stat(p)
            m = st.st_mtime_ns + rng.randrange(10, 100000) * 10**9
            os.utime(p, ns=(m, m))
        self.damage["touched_sources"] += len(touched)
        # ... and edited (size and hash; half keep their mtime: stale by size only).
        rest = [p for p in rest if p not in touched]
        for i, p in enumerate(sample(rng, rest, EDIT_RATE)):
            st = os.stat(p)
            with open(p, "ab") as f:
                f.write(b"\n# edited after compiling (bench/corpus.py)\n")
            if i % 2:
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
                self.damage["edited_size_only"] += 1
            else:
                m = st.st_mtime_ns + rng.randrange(10, 100000) * 10**9
                os.utime(p, ns=(m, m))
            self.damage["edited_sources"] += 1
        # CPython temp-file leftovers: _write_atomic writes '{}.{}'.format(path,
        # id(path)) then renames; a crash leaves the partial file behind.
        pycs = [p for p in list_files(tree, ".pyc")
                if os.path.basename(os.path.dirname(p)) == "__pycache__"]
        for p in sample(rng, pycs, TEMP_RATE):
            with open(p, "rb") as f:
                data = f.read()
            tmp = "%s.%d" % (p, 139000000000000 + rng.randrange(10**12))
            with open(tmp, "wb") as f:
                f.write(data[:max(16, len(data) // 2)])
            self.damage["temp_files"] += 1

    def copy_part(self, from_tree, entries, dst, interps):
        """Copies ENTRIES of an already built tree's sources into DST and
        compiles them with INTERPS; deletes a few sources so that a tool that
        wrongly enters DST would find orphans to delete."""
        src = os.path.join(self.root, from_tree)
        for e in entries:
            s = os.path.join(src, e)
            if not os.path.exists(s):
                continue
            shutil.copytree(s, os.path.join(dst, e),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                          "*.pyo", "*.pyc.*"))
        for key in interps:
            if self.have(key):
                compileall(self.interp[key], key,
                           [os.path.join(dst, e) for e in entries
                            if os.path.exists(os.path.join(dst, e))], [0])
        rng = random.Random("%d/%s" % (SEED, dst))
        for p in sample(rng, list_files(dst, ".py"), 0.05):
            os.unlink(p)

    def build_skipped(self):
        prof = self.profile
        skipped = []
        # A project checkout: sources + pycs, a .git with real loose objects
        # (and pycs under .git that nothing may touch).
        from_tree, entries, interps = prof["project"]
        proj = os.path.join(self.root, "project")
        if from_tree in self.trees:
            self.copy_part(from_tree, entries, os.path.join(proj, "src", "app"),
                           interps)
            git = os.path.join(proj, ".git")
            os.makedirs(os.path.join(git, "refs", "heads"), exist_ok=True)
            with open(os.path.join(git, "HEAD"), "w") as f:
                f.write("ref: refs/heads/main\n")
            with open(os.path.join(git, "config"), "w") as f:
                f.write("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
            for t in prof["git_objects_from"]:
                if t in self.trees:
                    for p in list_files(os.path.join(self.root, t), ".py"):
                        with open(p, "rb") as f:
                            git_blob(git, f.read())
            hooks = os.path.join(git, "hooks")
            self.copy_part(from_tree, entries[:1], hooks, interps[:1])
            skipped.append("project/.git")
            # node_modules: node-gyp really ships Python.
            from_tree, entries, interps = prof["node_modules"]
            if from_tree in self.trees:
                nm = os.path.join(proj, "node_modules", "node-gyp", "gyp",
                                  "pylib", "gyp")
                self.copy_part(from_tree, entries, nm, interps)
                skipped.append("project/node_modules")
        # A virtual environment (pyvenv.cfg at its top).
        from_tree, entries, interps = prof["venv"]
        if from_tree in self.trees:
            venv = os.path.join(self.root, "venv")
            sp = os.path.join(venv, "lib", "python3.11", "site-packages")
            self.copy_part(from_tree, entries, sp, interps)
            os.makedirs(os.path.join(venv, "bin"), exist_ok=True)
            with open(os.path.join(venv, "pyvenv.cfg"), "w") as f:
                f.write("home = /usr/bin\ninclude-system-site-packages = false\n"
                        "version = 3.11.2\n")
            skipped.append("venv")
        return skipped

    def build_compile_tree(self, dst_src, dst_compiled):
        """One stdlib tree for the compile rows: only the sources that
        /usr/bin/python3 compiles (so a second compileall really is a no-op),
        no pycs; and the same tree compiled by /usr/bin/python3 only."""
        key, keep = self.profile["compile_tree"]
        if not self.have(key) or not os.access(SYSTEM_PYTHON, os.X_OK):
            return None
        os.makedirs(dst_compiled)
        with open(os.path.join(dst_compiled, MARKER), "w") as f:
            f.write("compile tree\n")
        copy_stdlib(stdlib_dir(key, self.interp[key]), dst_compiled, keep)
        subprocess.run([SYSTEM_PYTHON, "-m", "compileall", "-q", "-j0", dst_compiled],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=clean_env(), check=False)
        tag = subprocess.run([SYSTEM_PYTHON, "-c",
                              "import sys; print(sys.implementation.cache_tag)"],
                             stdout=subprocess.PIPE, text=True, env=clean_env(),
                             check=True).stdout.strip()
        dropped = 0
        for p in list_files(dst_compiled, ".py"):
            d, f = os.path.split(p)
            if not os.path.exists(os.path.join(d, "__pycache__",
                                               f[:-3] + "." + tag + ".pyc")):
                os.unlink(p)
                dropped += 1
        shutil.copytree(dst_compiled, dst_src, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        srcs = list_files(dst_src, ".py")
        return {"stdlib": key, "sources": len(srcs),
                "source_bytes": sum(os.path.getsize(p) for p in srcs),
                "dropped_uncompilable": dropped, "tag": tag}


def census(root, skipped):
    """Counts what the tree holds, by name and source existence (not by
    reading headers: that is what the tools under test do)."""
    c = {"files": 0, "dirs": 0, "symlinks": 0, "bytes": 0, "sources": 0,
         "pycache_pycs": 0, "legacy_pycs": 0, "orphan_pycache_pycs": 0,
         "sourceless_legacy_pycs": 0, "temp_files": 0, "other_files": 0,
         "files_in_skipped_dirs": 0, "by_tag": {}}
    temp_re = re.compile(r"\.py[co]\.\d+$")
    skip_abs = {os.path.join(root, s) for s in skipped}
    for dirpath, dirnames, filenames in os.walk(root):
        c["dirs"] += len(dirnames)
        inside_skipped = any(dirpath == s or dirpath.startswith(s + os.sep)
                             for s in skip_abs)
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            if os.path.islink(p):
                c["symlinks"] += 1
                continue
            c["files"] += 1
            c["bytes"] += st.st_size
            if inside_skipped:
                c["files_in_skipped_dirs"] += 1
                continue
            if f.endswith(".py"):
                c["sources"] += 1
            elif temp_re.search(f):
                c["temp_files"] += 1
            elif f.endswith((".pyc", ".pyo")):
                if os.path.basename(dirpath) == "__pycache__":
                    c["pycache_pycs"] += 1
                    # NAME.TAG.pyc or NAME.TAG.opt-N.pyc (NAME may hold dots)
                    parts = f.split(".")
                    nopt = 1 if len(parts) >= 4 and parts[-2].startswith("opt-") else 0
                    tag = parts[-2 - nopt] if len(parts) >= 3 + nopt else "?"
                    c["by_tag"][tag] = c["by_tag"].get(tag, 0) + 1
                    name = ".".join(parts[:-2 - nopt])
                    src = os.path.join(os.path.dirname(dirpath), name + ".py")
                    if not os.path.exists(src):
                        c["orphan_pycache_pycs"] += 1
                else:
                    c["legacy_pycs"] += 1
                    c["by_tag"]["legacy"] = c["by_tag"].get("legacy", 0) + 1
                    if not os.path.exists(p[:-1]):
                        c["sourceless_legacy_pycs"] += 1
            else:
                c["other_files"] += 1
    c["by_tag"] = dict(sorted(c["by_tag"].items()))
    return c


def _owned(path):
    return os.path.isfile(os.path.join(path, MARKER))


def _remove_owned(path):
    """Removes a tree this script generated, and nothing else."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not _owned(path):
        sys.exit("corpus: refusing to remove %r: it has no %s marker (not made "
                 "by bench/corpus.py)" % (path, MARKER))
    shutil.rmtree(path)


def paths(directory, profile):
    base = os.path.join(os.path.abspath(directory), profile)
    return {"tree": base, "manifest": base + ".json",
            "compile_src": base + ".compile-src", "compiled": base + ".compiled"}


def load_manifest(directory, profile):
    p = paths(directory, profile)
    try:
        with open(p["manifest"]) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if m.get("corpus_version") != CORPUS_VERSION or not _owned(p["tree"]):
        return None
    return m


def generate(directory, profile):
    p = paths(directory, profile)
    os.makedirs(directory, exist_ok=True)
    for k in ("tree", "compile_src", "compiled"):
        _remove_owned(p[k])
        _remove_owned(p[k] + ".building")
    if os.path.exists(p["manifest"]):
        os.unlink(p["manifest"])
    t0 = time.time()
    building = p["tree"] + ".building"
    os.makedirs(building)
    with open(os.path.join(building, MARKER), "w") as f:
        f.write("generated by bench/corpus.py; removed by it on --regen\n")
    g = Generator(profile, building)
    for name, src_key, keep, steps in g.profile["trees"]:
        g.build_tree(name, src_key, keep, steps)
    skipped = g.build_skipped()
    # One relative symlink to a directory inside the tree (tools must not
    # follow it twice); relative so that cp -a copies stay self-contained.
    first = sorted(g.trees)[0] if g.trees else None
    if first:
        os.makedirs(os.path.join(building, "links"), exist_ok=True)
        os.symlink(os.path.join("..", first), os.path.join(building, "links", first))
    digests = {s: tree_digest(os.path.join(building, s)) for s in skipped}
    counts = census(building, skipped)
    cbuild, sbuild = p["compiled"] + ".building", p["compile_src"] + ".building"
    compile_info = g.build_compile_tree(sbuild, cbuild)
    if compile_info:
        os.rename(cbuild, p["compiled"])
        os.rename(sbuild, p["compile_src"])
    os.rename(building, p["tree"])
    manifest = {
        "corpus_version": CORPUS_VERSION, "seed": SEED, "profile": profile,
        "root": p["tree"], "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "generation_seconds": round(time.time() - t0, 1),
        "interpreters": g.interp, "missing_interpreters": g.missing,
        "trees": g.trees, "damage": g.damage, "skipped_dirs": digests,
        "counts": counts,
        "top_level_files": {t: sum(len(fs) + len(ds) for _, ds, fs in
                                   os.walk(os.path.join(p["tree"], t)))
                            for t in sorted(os.listdir(p["tree"]))
                            if os.path.isdir(os.path.join(p["tree"], t))
                            and not os.path.islink(os.path.join(p["tree"], t))},
        "compile_tree": dict(compile_info, src=p["compile_src"],
                             compiled=p["compiled"]) if compile_info else None,
    }
    with open(p["manifest"], "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    return manifest


def ensure(directory=DEFAULT_DIR, profile="full", regen=False):
    """Returns the manifest of DIRECTORY's PROFILE corpus, generating it if
    missing, outdated or REGEN."""
    m = None if regen else load_manifest(directory, profile)
    if m is None:
        log("generating the %s corpus in %s (a few minutes)" % (profile, directory))
        m = generate(directory, profile)
    return m


def describe(m):
    c = m["counts"]
    lines = [
        "corpus %s: %s" % (m["profile"], m["root"]),
        "  %d files, %d directories, %.1f MB (%d in skipped dirs: %s)"
        % (c["files"], c["dirs"], c["bytes"] / 1e6, c["files_in_skipped_dirs"],
           ", ".join(sorted(m["skipped_dirs"]))),
        "  sources %d; pycs in __pycache__ %d (orphans %d); legacy pycs %d "
        "(sourceless %d); temp leftovers %d"
        % (c["sources"], c["pycache_pycs"], c["orphan_pycache_pycs"],
           c["legacy_pycs"], c["sourceless_legacy_pycs"], c["temp_files"]),
        "  damage: %s" % ", ".join("%s %d" % kv for kv in sorted(m["damage"].items())),
        "  by tag: %s" % ", ".join("%s %d" % kv for kv in c["by_tag"].items()),
    ]
    if m.get("missing_interpreters"):
        lines.append("  missing interpreters (steps skipped): %s"
                     % ", ".join(m["missing_interpreters"]))
    ct = m.get("compile_tree")
    if ct:
        lines.append("  compile tree (%s stdlib, %s only): %d sources, %.1f MB"
                     % (ct["stdlib"], ct["tag"], ct["sources"], ct["source_bytes"] / 1e6))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=DEFAULT_DIR,
                    help="where the corpus lives (default: bench/corpus)")
    ap.add_argument("--quick", action="store_true",
                    help="the small corpus (~10k files) instead of the full one")
    ap.add_argument("--regen", action="store_true", help="regenerate even if cached")
    args = ap.parse_args()
    m = ensure(args.dir, "quick" if args.quick else "full", args.regen)
    print(describe(m))


if __name__ == "__main__":
    main()
