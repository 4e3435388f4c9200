#!/usr/bin/python3
"""pycache side by side with the tools people use today (a benchmark, not a test).

  bench/bench.py [--pycache PATH] [--dir DIR] [--quick] [--regen] [-n N]
                 [--only GROUP,...] [--no-callgrind] [--json FILE]

Groups (see bench/README.md for what each row means and the targets):
  check     pycache check vs find (bare walk, stat walk) vs an importlib checker
  clean     pycache clean vs find+rm vs py3clean (and pyclean if present)
  prune     pycache prune
  compile   pycache compile vs python3 -m compileall (no-op, and from empty)
  convert   pycache convert --to checked-hash throughput
  normalize pycache normalize of the compile tree vs one compileall -f
  callgrind instruction counts of pycache check vs find on a ~10k-file sub-tree
  archive   pycache check of a zip of a compiled stdlib vs unzip -qq to a tmpfs
            followed by pycache check of the result

Read-only commands run on the cached corpus (bench/corpus.py) itself; every
command that may write runs on a fresh `cp -a` copy in a scratch directory
created beside the corpus (same filesystem) and removed afterwards; only the
command is timed.  Every row gets one untimed warm-up, then N timed
repetitions (rows interleaved), and reports the median.  Peak RSS and CPU
times come from os.wait4 for each command.  A pycache command that is not
built yet (`pycache CMD --help` fails) is reported as skipped; the other rows
still run.
"""

import argparse
import glob
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import corpus  # noqa: E402  (bench/corpus.py)

SYSTEM_PYTHON = "/usr/bin/python3"
CHECKER = os.path.join(HERE, "importlib_checker.py")

CHECK_TARGET = 1.2   # pycache check <= 1.2x the find stat walk
CLEAN_TARGET = 0.8   # pycache clean <= 0.8x find + rm
COMPILE_NOOP_TARGET = 1.2  # a no-op pycache compile <= 1.2x the find stat walk
ARCHIVE_TARGET = 1 / 3.0   # check of a zip <= 1/3 of unzip to tmpfs + check


def log(msg=""):
    print(msg, flush=True)


def shell_join(argvs):
    return " && ".join(shlex.join(a) for a in argvs)


# ---- scratch space ------------------------------------------------------------------

class Scratch:
    """A directory this process created (mkdtemp); the only place anything is
    ever deleted.  remove() refuses any path that is not strictly inside it."""

    def __init__(self, parent):
        os.makedirs(parent, exist_ok=True)
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="scratch-", dir=parent))
        self.n = 0

    def inside(self, path):
        real = os.path.realpath(path)
        return real.startswith(self.root + os.sep) and not os.path.islink(path)

    def fresh_copy(self, src):
        """cp -a SRC to a new directory in scratch; returns its path."""
        self.n += 1
        dst = os.path.join(self.root, "copy-%d" % self.n)
        subprocess.run(["cp", "-a", "--", src, dst], check=True)
        os.sync()  # so the copy's writeback does not land in the timed command
        return dst

    def remove(self, path):
        if not self.inside(path):
            raise RuntimeError("refusing to delete %r: not inside the scratch "
                               "directory %r" % (path, self.root))
        shutil.rmtree(path)

    def close(self):
        if os.path.isdir(self.root) and os.path.basename(self.root).startswith("scratch-"):
            shutil.rmtree(self.root, ignore_errors=True)


# ---- running one command ------------------------------------------------------------

SPAWN = None  # the compiled bench/spawn.c, when a C compiler is at hand


def build_spawn(scratch_dir):
    """Compiles bench/spawn.c into the scratch directory; None if no cc."""
    global SPAWN
    exe = os.path.join(scratch_dir, "spawn")
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            r = subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "spawn.c")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                SPAWN = exe
                return exe
    return None


def run_once(argv, env, stdout_path=None):
    """Runs ARGV (stdout to STDOUT_PATH or /dev/null); returns wall seconds,
    CPU times, peak RSS (kB), exit status and the start of its stderr.
    Through spawn.c when it could be built (see there why), else forked
    from here (peak RSS then includes this Python process's footprint)."""
    with tempfile.TemporaryFile() as err:
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        try:
            if SPAWN:
                result = os.path.join(os.path.dirname(SPAWN), "spawn.result")
                p = subprocess.run([SPAWN, result] + argv, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, env=env)
                if p.returncode != 0:
                    raise RuntimeError("spawn failed (%d) for %s"
                                       % (p.returncode, shlex.join(argv)))
                with open(result) as f:
                    wall, user, sys_, rss, rc = f.read().split()
                r = {"wall": float(wall), "user": float(user), "sys": float(sys_),
                     "maxrss_kb": int(rss), "rc": int(rc)}
            else:
                t0 = time.perf_counter()
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, env=env)
                _, status, ru = os.wait4(p.pid, 0)
                wall = time.perf_counter() - t0
                p.returncode = os.waitstatus_to_exitcode(status)
                r = {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime,
                     "maxrss_kb": ru.ru_maxrss, "rc": p.returncode}
        finally:
            if stdout_path:
                out.close()
        err.seek(0)
        r["stderr"] = err.read(2000).decode("utf-8", "replace")
    return r


def run_sequence(argvs, env, stdout_path=None):
    """Runs each command in turn (stopping at a failure), as one measurement:
    times add up, peak RSS is the largest."""
    total = {"wall": 0.0, "user": 0.0, "sys": 0.0, "maxrss_kb": 0, "rc": 0, "stderr": ""}
    for argv in argvs:
        r = run_once(argv, env, stdout_path)
        for k in ("wall", "user", "sys"):
            total[k] += r[k]
        total["maxrss_kb"] = max(total["maxrss_kb"], r["maxrss_kb"])
        total["rc"], total["stderr"] = r["rc"], total["stderr"] + r["stderr"]
        if r["rc"] not in (0, 1):
            break
    return total


# ---- rows and groups ----------------------------------------------------------------

class Row:
    """One competitor: commands with {root} placeholders, run on SOURCE
    itself (copy=False) or on a fresh copy of it (copy=True)."""

    def __init__(self, name, argvs, source, copy=False, ok=(0,), needs=None,
                 reference=False, note=""):
        self.name, self.argvs, self.source, self.copy = name, argvs, source, copy
        self.ok, self.needs, self.reference, self.note = ok, needs, reference, note
        self.skip = None
        self.runs = []
        self.after = {}

    def argv_for(self, root):
        return [[a.replace("{root}", root) for a in argv] for argv in self.argvs]

    def display(self):
        cmd = shell_join(self.argv_for("COPY" if self.copy else self.source))
        if self.copy:
            return "cp -a %s COPY; %s" % (shlex.quote(self.source), cmd)
        return cmd

    def median(self):
        walls = [r["wall"] for r in self.runs]
        return statistics.median(walls) if walls else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.env = corpus.clean_env()
        self.env["LC_ALL"] = "C"
        self.pycache = args.pycache
        self.available = {}
        self.results = {"groups": [], "targets": []}

    # -- pycache availability
    def have(self, command):
        if command not in self.available:
            ok = False
            if self.pycache and os.access(self.pycache, os.X_OK):
                r = subprocess.run([self.pycache, command, "--help"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=self.env)
                ok = r.returncode == 0
            self.available[command] = ok
        return self.available[command]

    # -- measuring
    def measure(self, row, warm):
        target = self.scratch.fresh_copy(row.source) if row.copy else row.source
        try:
            argvs = row.argv_for(target)
            r = run_sequence(argvs, self.env)
            if not warm:
                row.runs.append(r)
            if row.copy and not warm and row.source == self.manifest["root"]:
                row.after = self.inspect_after(target)
        finally:
            if row.copy:
                self.scratch.remove(target)
        if r["rc"] not in row.ok:
            log("    ! %s exited %d: %s" % (row.name, r["rc"], r["stderr"].strip()[:300]))
        return r

    def inspect_after(self, target):
        """What a destructive command left in a copy of the corpus: pycs and
        temp files outside the skipped directories, and whether the skipped
        directories (.git, node_modules, venv) are exactly as generated."""
        skipped = self.manifest["skipped_dirs"]
        skip_abs = {os.path.join(target, s) for s in skipped}
        left = 0
        for dirpath, dirnames, filenames in os.walk(target):
            dirnames[:] = [d for d in dirnames
                           if os.path.join(dirpath, d) not in skip_abs]
            left += sum(1 for f in filenames
                        if f.endswith((".pyc", ".pyo")) or corpus_temp(f))
        intact = all(corpus.tree_digest(os.path.join(target, s)) == d
                     for s, d in skipped.items())
        return {"pycs_left": left, "skipped_dirs_intact": intact}

    def run_group(self, name, title, rows, min_runs=0):
        """MIN_RUNS: at least that many timed runs, whatever -n says (rows of a
        few milliseconds: on a shared machine one hiccup moves a median of 3)."""
        log("")
        log("== %s: %s" % (name, title))
        live = []
        for row in rows:
            if row.needs and not self.have(row.needs):
                row.skip = "skipped: pycache %s not built yet" % row.needs
            if row.skip:
                log("  %-34s %s" % (row.name, row.skip))
            elif row.runs:
                log("  %-34s (measured above, not run again)" % row.name)
            else:
                log("  %-34s $ %s" % (row.name, row.display()))
                live.append(row)
        for row in live:   # one untimed warm-up each
            self.measure(row, warm=True)
        for i in range(max(self.args.n, min_runs)):
            for row in live:
                self.measure(row, warm=False)
        ref = next((r for r in rows if r.reference and r.runs), None)
        log("  %-34s %9s %9s %7s %7s %7s %9s %5s  %s"
            % ("", "median s", "min s", "ratio", "user s", "sys s", "peak RSS", "exit",
               "notes"))
        group = {"name": name, "title": title, "rows": []}
        for row in rows:
            entry = {"name": row.name, "command": row.display(),
                     "argv": row.argv_for("COPY" if row.copy else row.source),
                     "fresh_copy": row.copy, "reference": row.reference}
            if not row.runs:
                entry["skipped"] = row.skip or "not run"
                group["rows"].append(entry)
                continue
            med = row.median()
            walls = [r["wall"] for r in row.runs]
            ratio = med / ref.median() if ref and ref.median() else None
            mid = min(row.runs, key=lambda r: abs(r["wall"] - med))
            rss = max(r["maxrss_kb"] for r in row.runs)
            rcs = sorted({r["rc"] for r in row.runs})
            notes = [row.note] if row.note else []
            if row.after:
                notes.append("%d pycs left" % row.after["pycs_left"])
                if row.after["skipped_dirs_intact"] is False:
                    notes.append("TOUCHED .git/node_modules/venv")
            if any(rc not in row.ok for rc in rcs):
                notes.append("UNEXPECTED EXIT")
            log("  %-34s %9.3f %9.3f %7s %7.2f %7.2f %6.1f MB %5s  %s"
                % (row.name, med, min(walls), "%.2fx" % ratio if ratio else "-",
                   mid["user"], mid["sys"], rss / 1024.0,
                   ",".join(map(str, rcs)), "; ".join(notes)))
            entry.update({"walls": walls, "median": med, "min": min(walls),
                          "ratio_to_reference": ratio, "user": mid["user"],
                          "sys": mid["sys"], "peak_rss_kb": rss, "exit_statuses": rcs,
                          "after": row.after or None, "note": row.note})
            group["rows"].append(entry)
        self.results["groups"].append(group)
        return {r.name: r for r in rows}

    def target(self, label, row, ref, limit):
        if not (row.runs and ref.runs):
            status, ratio = "not measured", None
        else:
            ratio = row.median() / ref.median()
            status = "MET" if ratio <= limit else "MISSED"
        log("  target: %s <= %.2fx %s: %s%s"
            % (row.name, limit, ref.name, status,
               " (%.2fx)" % ratio if ratio is not None else ""))
        self.results["targets"].append({"label": label, "row": row.name,
                                        "reference": ref.name, "limit": limit,
                                        "ratio": ratio, "status": status})

    # -- the groups
    def group_check(self, root):
        pc = self.pycache
        rows = [
            Row("find -printf '' (bare walk)", [["find", "{root}", "-printf", ""]], root,
                note="the floor"),
            Row("find -name *.pyc -printf %s", [["find", "{root}", "-name", "*.pyc",
                                                 "-printf", "%s\\n"]], root,
                reference=True, note="the yardstick: a stat per pyc"),
            Row("pycache check", [[pc, "check", "{root}"]], root, ok=(0, 1),
                needs="check"),
            Row("pycache check --json", [[pc, "check", "--json", "{root}"]], root,
                ok=(0, 1), needs="check", note="sizes wanted: no io_uring batches"),
            Row("pycache check, PYCACHE_IO_URING=0",
                [["env", "PYCACHE_IO_URING=0", pc, "check", "{root}"]], root, ok=(0, 1),
                needs="check", note="an open+pread+close per pyc"),
            Row("pycache check, PYCACHE_THREADS=1",
                [["env", "PYCACHE_THREADS=1", pc, "check", "{root}"]], root, ok=(0, 1),
                needs="check", note="one walk"),
            Row("importlib checker (python3)", [[SYSTEM_PYTHON, CHECKER, "{root}"]],
                root, ok=(0, 1)),
        ]
        r = self.run_group("check", "read-only, on the corpus itself", rows)
        self.target("check", r["pycache check"], r["find -name *.pyc -printf %s"],
                    CHECK_TARGET)
        self.compare_counts(root)

    def compare_counts(self, root):
        """Untimed: what pycache check --json and the importlib checker found,
        side by side (a sanity line, not a test)."""
        path = os.path.join(self.scratch.root, "out.txt")
        r = run_once([SYSTEM_PYTHON, CHECKER, "--summary", root], self.env, path)
        with open(path) as f:
            summary = f.read().strip().splitlines()[-1:] or [""]
        log("  importlib checker found: %s" % summary[0].replace("summary: ", ""))
        self.results["importlib_checker_summary"] = summary[0]
        if self.have("check"):
            run_once([self.pycache, "check", "--json", root], self.env, path)
            counts = {}
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    try:
                        st = json.loads(line).get("status")
                    except ValueError:
                        continue
                    counts[st] = counts.get(st, 0) + 1
            text = " ".join("%s=%d" % kv for kv in sorted(counts.items()))
            log("  pycache check --json found: %s" % text)
            self.results["pycache_check_summary"] = counts
        os.unlink(path)
        del r

    def find_pair(self, root):
        """The shell recipe for cleaning; measured once (in the clean group,
        or in the prune group when clean is not run) and shown in both."""
        if getattr(self, "_find_pair", None) is None:
            self._find_pair = Row(
                "find -exec rm -rf + find -delete",
                [["find", "{root}", "-name", "__pycache__", "-prune", "-exec", "rm",
                  "-rf", "{}", "+"],
                 ["find", "{root}", "-name", "*.py[co]", "-delete"]], root, copy=True,
                reference=True)
        return self._find_pair

    def group_clean(self, root):
        pc = self.pycache
        rows = [
            self.find_pair(root),
            Row("pycache clean", [[pc, "clean", "{root}"]], root, copy=True,
                needs="clean"),
        ]
        if os.access("/usr/bin/py3clean", os.X_OK):
            rows.append(Row("py3clean (Debian)", [["/usr/bin/py3clean", "{root}"]], root,
                            copy=True, note="only pycs of existing sources"))
        pyclean = shutil.which("pyclean", path="/usr/local/bin:/usr/bin:/bin")
        if pyclean:
            rows.append(Row("pyclean", [[pyclean, "{root}"]], root, copy=True))
        r = self.run_group("clean", "each run on a fresh cp -a copy", rows)
        self.target("clean", r["pycache clean"], r["find -exec rm -rf + find -delete"],
                    CLEAN_TARGET)

    def group_prune(self, root):
        rows = [
            self.find_pair(root),
            Row("pycache prune", [[self.pycache, "prune", "{root}"]], root, copy=True,
                ok=(0, 1), needs="prune"),
        ]
        self.run_group("prune", "stale/orphan/temp removal, fresh copy each run", rows)

    def group_compile(self, ct):
        pc, py = self.pycache, SYSTEM_PYTHON
        compiled, src = ct["compiled"], ct["src"]
        rows = [
            Row("compileall -q (no-op)", [[py, "-m", "compileall", "-q", "{root}"]],
                compiled, copy=True, reference=True),
            Row("pycache compile (no-op)", [[pc, "compile", "--python", py, "-q",
                                             "{root}"]], compiled, copy=True,
                ok=(0, 1), needs="compile"),
            Row("find -name *.pyc -printf %s (compile tree)",
                [["find", "{root}", "-name", "*.pyc", "-printf", "%s\\n"]], compiled,
                copy=True, note="a stat per pyc: the yardstick of the target"),
        ]
        r = self.run_group("compile-noop", "%d sources, all fresh (%s only)"
                           % (ct["sources"], ct["tag"]), rows, min_runs=15)
        self.target("compile-noop", r["pycache compile (no-op)"],
                    r["find -name *.pyc -printf %s (compile tree)"], COMPILE_NOOP_TARGET)
        rows = [
            Row("compileall -q -j 0 (from empty)",
                [[py, "-m", "compileall", "-q", "-j", "0", "{root}"]], src, copy=True,
                reference=True),
            Row("pycache compile (from empty)", [[pc, "compile", "--python", py, "-q",
                                                  "{root}"]], src, copy=True,
                ok=(0, 1), needs="compile"),
        ]
        self.run_group("compile-full", "%d sources, no pyc yet" % ct["sources"], rows)

    def group_convert(self, ct):
        mb = ct["source_bytes"] / 1e6
        rows = [
            Row("compileall -f checked-hash -j 0",
                [[SYSTEM_PYTHON, "-m", "compileall", "-q", "-j", "0", "-f",
                  "--invalidation-mode", "checked-hash", "{root}"]], ct["compiled"],
                copy=True, reference=True, note="recompiles"),
            Row("pycache convert --to checked-hash",
                [[self.pycache, "convert", "--to", "checked-hash", "{root}"]],
                ct["compiled"], copy=True, ok=(0, 1), needs="convert"),
        ]
        r = self.run_group("convert", "timestamp -> checked-hash, %d sources, %.1f MB "
                           "of source" % (ct["sources"], mb), rows)
        for row in r.values():
            if row.runs:
                tput = mb / row.median()
                log("  throughput: %-34s %.1f MB of source hashed per second"
                    % (row.name, tput))
                self.results.setdefault("convert_mb_per_s", {})[row.name] = tput

    def group_normalize(self, ct):
        rows = [
            Row("compileall -f -j 0",
                [[SYSTEM_PYTHON, "-m", "compileall", "-q", "-j", "0", "-f", "{root}"]],
                ct["compiled"], copy=True, reference=True, note="recompiles"),
            Row("pycache normalize",
                [[self.pycache, "normalize", "-q", "{root}"]],
                ct["compiled"], copy=True, ok=(0, 1), needs="normalize",
                note="reads, parses and rewrites every pyc's body"),
        ]
        self.run_group("normalize", "canonical marshal form of the compile tree, %d sources "
                       "(target: faster than one compileall -f)" % ct["sources"], rows)

    def group_callgrind(self, sub):
        if not shutil.which("valgrind"):
            log("\n== callgrind: skipped: valgrind not installed")
            return
        nfiles = sum(len(f) + len(d) for _, d, f in os.walk(sub))
        log("")
        log("== callgrind: instructions executed (user space only), on %s (%d entries)"
            % (sub, nfiles))
        vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        rows = [("find -printf '' (bare walk)", ["find", sub, "-printf", ""], None, (0,)),
                ("find -name *.pyc -printf %s", ["find", sub, "-name", "*.pyc",
                                                 "-printf", "%s\\n"], None, (0,)),
                ("pycache check", [self.pycache, "check", sub], "check", (0, 1))]
        out = {"subtree": sub, "entries": nfiles, "rows": []}
        ref = None
        for name, argv, needs, ok in rows:
            if needs and not self.have(needs):
                log("  %-34s skipped: pycache %s not built yet" % (name, needs))
                out["rows"].append({"name": name, "skipped": True})
                continue
            log("  %-34s $ %s" % (name, shlex.join(vg + argv)))
            p = subprocess.run(vg + argv, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=self.env, text=True)
            m = re.search(r"Collected : (\d+)", p.stderr)
            ir = int(m.group(1)) if m else None
            if ref is None:
                ref = ir
            ratio = ir / ref if ir and ref else None
            log("  %-34s %15s instructions  %s  exit %d"
                % ("", "{:,}".format(ir) if ir else "?",
                   "%.2fx find -printf ''" % ratio if ratio else "", p.returncode))
            out["rows"].append({"name": name, "argv": vg + argv, "instructions": ir,
                                "ratio_to_bare_walk": ratio, "rc": p.returncode})
        self.results["callgrind"] = out

    def stdlib_zip(self):
        """A zip of a compiled standard library (the newest pyenv version's,
        else Debian's), without its tests; made once, kept beside the corpus."""
        out = os.path.join(self.args.dir, "archive-stdlib.zip")
        if os.path.exists(out):
            return out
        root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
        libs = sorted(glob.glob(os.path.join(root, "versions", "3.*", "lib", "python3.*")),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", os.path.basename(p))])
        libs += sorted(glob.glob("/usr/lib/python3.*"))
        lib = next((l for l in reversed(libs) if os.path.isdir(os.path.join(l, "__pycache__"))),
                   None)
        if not lib or not shutil.which("zip"):
            return None
        tmp = out + ".tmp"
        subprocess.run(["zip", "-q", "-r", tmp, ".", "-x", "test/*", "-x", "site-packages/*",
                        "-x", "idlelib/*"], cwd=lib, check=True)
        os.rename(tmp, out)
        return out

    def group_archive(self):
        if not shutil.which("unzip") or not os.path.isdir("/dev/shm"):
            log("\n== archive: skipped: unzip or /dev/shm missing")
            return
        z = self.stdlib_zip()
        if not z:
            log("\n== archive: skipped: no compiled standard library or no zip")
            return
        pc = self.pycache
        unzip_check = ("d=$(mktemp -d -p /dev/shm) && unzip -qq \"$1\" -d \"$d\" && "
                       "\"$2\" check \"$d\" >/dev/null; rc=$?; rm -rf \"$d\"; exit $rc")
        rows = [
            Row("unzip -qq to tmpfs + pycache check",
                [["sh", "-c", unzip_check, "sh", "{root}", pc]], z, reference=True,
                ok=(0, 1), needs="check", note="extract, then judge the tree"),
            Row("pycache check ZIP", [[pc, "check", "{root}"]], z, ok=(0, 1),
                needs="check", note="in place, no source member read"),
        ]
        r = self.run_group("archive", "a zip of a compiled stdlib (%.1f MB)"
                           % (os.path.getsize(z) / 1e6), rows)
        self.target("archive", r["pycache check ZIP"],
                    r["unzip -qq to tmpfs + pycache check"], ARCHIVE_TARGET)

    # -- everything
    def run(self):
        a = self.args
        profile = "quick" if a.quick else "full"
        self.manifest = m = corpus.ensure(a.dir, profile, a.regen)
        log(corpus.describe(m))
        root = m["root"]
        self.results.update({"profile": profile, "repetitions": a.n,
                             "pycache": self.pycache, "corpus": {
                                 k: m[k] for k in ("root", "counts", "damage", "trees",
                                                   "skipped_dirs", "compile_tree",
                                                   "seed", "corpus_version")}})
        self.results["machine"] = machine_info(root)
        log("machine: %s" % ", ".join("%s %s" % kv for kv in
                                        self.results["machine"].items()))
        log("pycache: %s (%s)" % (self.pycache, ", ".join(
            "%s %s" % (c, "yes" if self.have(c) else "no")
            for c in ("check", "clean", "prune", "compile", "convert", "normalize"))))
        log("%d timed runs per row (15 in compile-noop) after one warm-up; times are "
            "wall-clock medians" % a.n)
        self.scratch = Scratch(a.dir)
        if not build_spawn(self.scratch.root):
            log("note: no C compiler for bench/spawn.c: peak RSS includes the "
                "benchmark's own Python footprint")
        self.results["peak_rss_method"] = "spawn.c wait4" if SPAWN else "os.wait4"
        groups = set(a.only.split(",")) if a.only else None

        def want(g):
            return groups is None or g in groups
        try:
            if want("check"):
                self.group_check(root)
            if want("clean"):
                self.group_clean(root)
            if want("prune"):
                self.group_prune(root)
            ct = m.get("compile_tree")
            if want("compile") and ct:
                self.group_compile(ct)
            if want("convert") and ct:
                self.group_convert(ct)
            if want("normalize") and ct:
                self.group_normalize(ct)
            if want("archive"):
                self.group_archive()
            if want("callgrind") and not a.no_callgrind:
                self.group_callgrind(callgrind_subtree(m))
        finally:
            self.scratch.close()
        if a.json:
            with open(a.json, "w") as f:
                json.dump(self.results, f, indent=1, sort_keys=True)
            log("\nfigures written to %s" % a.json)


def corpus_temp(name):
    return re.search(r"\.py[co]\.\d+$", name) is not None


def callgrind_subtree(m, want=10000):
    """The top-level directory of the corpus whose entry count is closest to
    WANT (the whole corpus if it is itself that small)."""
    total = m["counts"]["files"] + m["counts"]["dirs"]
    if total <= want * 1.3:
        return m["root"]
    best = min(m["top_level_files"].items(), key=lambda kv: abs(kv[1] - want))
    return os.path.join(m["root"], best[0])


def machine_info(path):
    fs = "?"
    best = ""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) \
                        and len(mnt) >= len(best):
                    best, fs = mnt, parts[2]
    except OSError:
        pass
    return {"kernel": platform.release(), "cpus": os.cpu_count(),
            "filesystem": "%s on %s" % (fs, best or "?"),
            "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pycache", default=os.path.join(REPO, "build", "pycache"),
                    help="the pycache binary (default: build/pycache)")
    ap.add_argument("--dir", default=corpus.DEFAULT_DIR,
                    help="corpus and scratch directory (default: bench/corpus); "
                         "scratch copies are made here, on the same filesystem")
    ap.add_argument("--quick", action="store_true", help="small corpus (~10k files)")
    ap.add_argument("--regen", action="store_true", help="regenerate the corpus")
    ap.add_argument("-n", type=int, default=3, help="timed repetitions (default 3)")
    ap.add_argument("--only", help="comma-separated groups: check,clean,prune,"
                                   "compile,convert,normalize,archive,callgrind")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="skip the valgrind instruction counts")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("-n must be at least 1")
    # `make bench BUILD=/abs/dir` passes $(CURDIR)//abs/dir/pycache: what
    # follows a doubled slash is the absolute path that was meant.
    if "//" in args.pycache and not os.path.exists(args.pycache):
        args.pycache = "/" + args.pycache.rsplit("//", 1)[1]
    args.pycache = os.path.abspath(args.pycache)
    args.dir = os.path.abspath(args.dir)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    Bench(args).run()


if __name__ == "__main__":
    main()
