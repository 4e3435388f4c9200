#!/usr/bin/python3
"""The "Python checker" competitor: classifies every pyc of a tree with importlib's own code.

  bench/importlib_checker.py [--summary] [--no-skip] ROOT...

What a careful Python script would do to answer "which caches are fresh, stale
or orphaned?" with the standard library alone: os.walk the tree, map each
__pycache__ file back to its source with importlib.util.source_from_cache,
read the header and let importlib's private validators judge it:
_bootstrap_external._classify_pyc (magic, flags), _validate_timestamp_pyc
(mtime + size) and _validate_hash_pyc (SipHash of the source through
_imp.source_hash, keyed by the pyc's own magic number).

Those functions know only the running interpreter's layout, so the pyc's
header is adapted before they see it: its magic is replaced by ours (the
header layout is chosen from the magic number: 8 bytes before 3.3 and for
Python 2, 12 bytes for 3.3-3.6, 16 bytes from 3.7), and an 8-byte header gets
the source's size so that only the mtime is compared, as Python 2 did.  A
hash-based pyc written by 3.7-3.10 (SipHash-2-4) cannot be checked by 3.11+
(SipHash-1-3) and the reverse: it is reported "unverified".

It prunes what pycache prunes (.git .hg .svn .bzr _darcs, node_modules,
directories holding pyvenv.cfg) unless --no-skip.  Output: one line
"STATUS PATH" per non-fresh file, then a summary line; exit 1 if anything is
not fresh.  It is a benchmark competitor, not an oracle: the tests compare
pycache with the real interpreters, not with this.
"""

import _imp
import importlib.util
import os
import re
import sys
from importlib import _bootstrap_external as bx

SKIP_NAMES = {".git", ".hg", ".svn", ".bzr", "_darcs", "node_modules"}
TEMP_RE = re.compile(r"\.pyc\.\d+$")
OUR_MAGIC = importlib.util.MAGIC_NUMBER
# _imp.source_hash is SipHash-1-3 from 3.11 (magic 3450+), SipHash-2-4 before.
OUR_HASH_13 = sys.version_info >= (3, 11)


def header_size(magic):
    if magic >= 20000 or magic < 3190:  # Python 2.x, 3.0-3.2
        return 8
    if magic < 3390:                     # 3.3-3.6: magic, mtime, size
        return 12
    return 16                            # 3.7+: magic, flags, mtime+size | hash


class Checker:
    def __init__(self, out, summary_only):
        self.out = out
        self.summary_only = summary_only
        self.counts = {}
        self.stat_cache = {}  # source path -> os.stat_result or None (per dir)

    def report(self, status, path):
        self.counts[status] = self.counts.get(status, 0) + 1
        if status != "fresh" and not self.summary_only:
            self.out.write("%s %s\n" % (status, path))

    def source_stat(self, source):
        try:
            return self.stat_cache[source]
        except KeyError:
            pass
        try:
            st = os.stat(source)
        except OSError:
            st = None
        self.stat_cache[source] = st
        return st

    def judge(self, pyc, source, legacy):
        try:
            with open(pyc, "rb") as f:
                data = f.read(16)
        except OSError:
            return self.report("unreadable", pyc)
        if len(data) < 4 or data[2:4] != b"\r\n":
            return self.report("corrupt", pyc)
        magic = int.from_bytes(data[:2], "little")
        size = header_size(magic)
        if len(data) < size:
            return self.report("corrupt", pyc)
        st = self.source_stat(source)
        if st is None:
            return self.report("sourceless" if legacy else "orphan", pyc)
        name = os.path.basename(source)
        details = {"name": name, "path": pyc}
        try:
            if size == 16:
                flags = bx._classify_pyc(OUR_MAGIC + data[4:16], name, details)
                if flags & 0b1:
                    if not flags & 0b10:  # unchecked-hash: importlib trusts it
                        return self.report("fresh", pyc)
                    if (magic >= 3450) != OUR_HASH_13:
                        return self.report("unverified", pyc)
                    with open(source, "rb") as f:
                        source_bytes = f.read()
                    key = int.from_bytes(data[:4], "little")
                    bx._validate_hash_pyc(data, _imp.source_hash(key, source_bytes),
                                          name, details)
                else:
                    bx._validate_timestamp_pyc(data, int(st.st_mtime), st.st_size,
                                               name, details)
            elif size == 12:
                bx._validate_timestamp_pyc(OUR_MAGIC + bytes(4) + data[4:12],
                                           int(st.st_mtime), st.st_size, name, details)
            else:
                fake_size = (int(st.st_size) & 0xFFFFFFFF).to_bytes(4, "little")
                bx._validate_timestamp_pyc(OUR_MAGIC + bytes(4) + data[4:8] + fake_size,
                                           int(st.st_mtime), st.st_size, name, details)
        except ImportError:
            return self.report("stale", pyc)
        except (EOFError, OSError):
            return self.report("corrupt", pyc)
        self.report("fresh", pyc)

    def walk(self, root, skip):
        for dirpath, dirnames, filenames in os.walk(root):
            if skip:
                dirnames[:] = [d for d in dirnames if d not in SKIP_NAMES and
                               not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))]
            self.stat_cache.clear()
            in_pycache = os.path.basename(dirpath) == "__pycache__"
            for f in filenames:
                path = os.path.join(dirpath, f)
                if in_pycache:
                    if f.endswith(".pyc"):
                        try:
                            source = importlib.util.source_from_cache(path)
                        except ValueError:
                            self.report("foreign", path)
                            continue
                        self.judge(path, source, legacy=False)
                    elif TEMP_RE.search(f):
                        self.report("temp", path)
                    else:
                        self.report("foreign", path)
                elif f.endswith((".pyc", ".pyo")):
                    self.judge(path, path[:-1], legacy=True)


def main(argv):
    args = argv[1:]
    summary_only = "--summary" in args
    skip = "--no-skip" not in args
    roots = [a for a in args if a not in ("--summary", "--no-skip")]
    if not roots or any(r.startswith("-") for r in roots):
        sys.stderr.write("usage: importlib_checker.py [--summary] [--no-skip] ROOT...\n")
        return 2
    out = sys.stdout
    checker = Checker(out, summary_only)
    for root in roots:
        checker.walk(root, skip)
    c = checker.counts
    out.write("summary: " + " ".join("%s=%d" % kv for kv in sorted(c.items())) + "\n")
    out.flush()
    return 1 if any(k != "fresh" for k in c) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
