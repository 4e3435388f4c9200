#!/usr/bin/python3
"""pycache side by side with the tools people use today (a benchmark, not a test).

  bench/bench.py [--pycache PATH] [--dir DIR] [--quick] [--regen] [-n N]
                 [--only GROUP,...] [--no-callgrind] [--json FILE] [--wheel WHL]

Groups (see bench/README.md for what each row means and the targets):
  check     pycache check vs find (bare walk, stat walk) vs an importlib checker
  clean     pycache clean vs find+rm vs py3clean (and pyclean if present)
  prune     pycache prune
  compile   pycache compile vs python3 -m compileall (no-op, and from empty)
  convert   pycache convert --to checked-hash throughput
  normalize pycache normalize of the compile tree vs one compileall -f, and
            pycache verify of it vs pycache compile -f (the issue-14 group)
  api       list(pycache.check(tree)) (the Python API, from the wheel) vs
            pycache check -v --json
  callgrind instruction counts of pycache check vs find on a ~10k-file sub-tree
  archive   pycache check of a zip of a compiled stdlib vs unzip -qq to a tmpfs
            followed by pycache check of the result
  image     pycache check of an OCI image of that stdlib (two gzip layers, the
            second with whiteouts) vs umoci unpack to a tmpfs + pycache check

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

# The targets of issue 15 (and the compile no-op target of issue 6).
CHECK_TARGET = 0.6        # warm pycache check -q <= 0.6x the find stat walk
DEEP_TARGET = 2.5         # warm check --deep <= 2.5x plain check -q
CLEAN_TARGET = 0.5        # pycache clean <= 0.5x find + rm, warm and cold
COMPILE_NOOP_TARGET = 1.2  # a warm no-op pycache compile <= 1.2x the find stat walk
COLD_CHECK_TARGET = 1.0   # cold check -q <= 1.0x the cold find stat walk, and below bfs
COLD_COMPILE_TARGET = 1.0  # cold no-op compile <= 1.0x the cold find stat walk
SCALE_FILES = 1000000     # cache files in the scale tree
SCALE_TARGET = 9.0        # scale rows <= 9x the same command on a 1/7.87 tree
SCALE_RSS_MIB = 32        # peak RSS of the scale rows

DROP_CACHES = "/proc/sys/vm/drop_caches"
API_TARGET = 1.5   # list(pycache.check(tree)) <= 1.5x pycache check -v --json

# The api row: every object built, as a caller that keeps them would.
API_CODE = "import sys, pycache; print(len(list(pycache.check(sys.argv[1]))))"
VERIFY_TARGET = 1.5  # pycache verify <= 1.5x pycache compile -f of the same tree
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


def build_helper(scratch_dir, name, variants=((),)):
    """Compiles bench/NAME.c into the scratch directory with the first C
    compiler and the first of VARIANTS (extra arguments: flags and
    libraries) that work; the executable's path, or None."""
    exe = os.path.join(scratch_dir, name)
    src = os.path.join(HERE, name + ".c")
    for cc in ("cc", "gcc", "clang"):
        if not shutil.which(cc):
            continue
        for extra in variants:
            r = subprocess.run([cc, "-O2", "-o", exe, src] + list(extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return exe
    return None


def build_spawn(scratch_dir):
    """Compiles bench/spawn.c into the scratch directory; None if no cc."""
    global SPAWN
    SPAWN = build_helper(scratch_dir, "spawn")
    return SPAWN


def build_floor(scratch_dir):
    """Compiles bench/floor.c (with its io_uring mode where liburing is
    there) into the scratch directory; None if it cannot be built."""
    return build_helper(scratch_dir, "floor", (("-DFLOOR_URING", "-luring"), ()))


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
        self.cold = False   # set by run_group(cold=True)
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
            if row.cold:
                drop_caches()
            dev = block_device(target) if row.cold else None
            before = disk_counters(dev)
            r = run_sequence(argvs, self.env)
            r["disk"] = disk_delta(before, disk_counters(dev), r["wall"])
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

    def run_group(self, name, title, rows, min_runs=0, cold=False):
        """MIN_RUNS: at least that many timed runs, whatever -n says (rows of a
        few milliseconds: on a shared machine one hiccup moves a median of 3).
        COLD: the page cache is dropped before every timed run (after the
        fresh copy, if any) and there is no warm-up; without root the rows
        are skipped."""
        log("")
        log("== %s: %s" % (name, title))
        if cold:
            if self.cold_ok:
                log("  cold: `sync; echo 3 > %s` before each timed run, no warm-up"
                    % DROP_CACHES)
            else:
                log("  cold rows skipped: dropping the page cache needs root "
                    "(%s not writable)" % DROP_CACHES)
        live = []
        for row in rows:
            if cold and not row.runs:
                row.cold = True
                if not self.cold_ok:
                    row.skip = "skipped: not root, the page cache cannot be dropped"
            if row.needs and not self.have(row.needs):
                row.skip = "skipped: pycache %s not built yet" % row.needs
            if row.skip:
                log("  %-34s %s" % (row.name, row.skip))
            elif row.runs:
                log("  %-34s (measured above, not run again)" % row.name)
            else:
                log("  %-34s $ %s" % (row.name, row.display()))
                live.append(row)
        for row in live:   # one untimed warm-up each (a cold run needs none)
            if not row.cold:
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
        if cold and any(row.runs for row in rows):
            self.disk_table(rows, group)
        self.results["groups"].append(group)
        return {r.name: r for r in rows}

    def disk_table(self, rows, group):
        """What the device did during each cold row's median run (from
        /proc/diskstats): whether a row waited on the device or on itself.
        busy is the share of the wall time with a request in flight; in
        flight is the mean number of reads outstanding (read time / wall);
        discards, with the mean number outstanding, where the file system
        discards freed blocks (mounted -o discard: each removal waits on one)."""
        log("  device (%s), median run:  %8s %8s %9s %6s %9s %9s"
            % (self.disk_name or "?", "reads", "merged", "MiB read", "busy", "in flight",
               "discards"))
        for row, entry in zip(rows, group["rows"]):
            if not row.runs:
                continue
            med = row.median()
            mid = min(row.runs, key=lambda r: abs(r["wall"] - med))
            d = mid.get("disk")
            entry["disk"] = d
            if not d:
                log("  %-34s device statistics unavailable" % row.name)
                continue
            log("  %-34s %8d %8d %9.1f %5.0f%% %9.1f %9s"
                % (row.name, d["reads"], d["reads_merged"], d["sectors_read"] / 2048.0,
                   100.0 * d["busy"], d["in_flight"],
                   "%d (%.1f)" % (d["discards"], d["discards_in_flight"])
                   if d["discards"] else "-"))

    def target(self, label, row, ref, limit):
        if not (row and ref and row.runs and ref.runs):
            status, ratio = "not measured", None
        else:
            ratio = row.median() / ref.median()
            status = "MET" if ratio <= limit else "MISSED"
        rname, fname = (row.name if row else "?"), (ref.name if ref else "?")
        log("  target %s: %s <= %.2fx %s: %s%s"
            % (label, rname, limit, fname, status,
               " (%.2fx)" % ratio if ratio is not None else ""))
        self.results["targets"].append({"label": label, "row": rname,
                                        "reference": fname, "limit": limit,
                                        "ratio": ratio, "status": status})

    def target_rss(self, label, row, limit_mib):
        if not (row and row.runs):
            status, mib = "not measured", None
        else:
            mib = max(r["maxrss_kb"] for r in row.runs) / 1024.0
            status = "MET" if mib < limit_mib else "MISSED"
        log("  target %s: %s peak RSS < %d MiB: %s%s"
            % (label, row.name if row else "?", limit_mib, status,
               " (%.1f MiB)" % mib if mib is not None else ""))
        self.results["targets"].append({"label": label, "row": row.name if row else "?",
                                        "limit_mib": limit_mib, "peak_rss_mib": mib,
                                        "status": status})

    def summary(self):
        """Every target of the run, once more, at the end."""
        if not self.results["targets"]:
            return
        log("")
        log("== targets")
        for t in self.results["targets"]:
            if "limit_mib" in t:
                got = "%.1f MiB" % t["peak_rss_mib"] if t["peak_rss_mib"] else "-"
                what = "peak RSS < %d MiB" % t["limit_mib"]
            else:
                got = "%.2fx" % t["ratio"] if t["ratio"] is not None else "-"
                what = "<= %.2fx %s" % (t["limit"], t["reference"])
            log("  %-7s %-18s %-9s %s %s" % (t["status"], t["label"], got, t["row"], what))

    # -- the groups
    def walk_rows(self, root, bare=True, copy=False, suffix=""):
        """find and bfs: the bare walk (getdents only) and the stat walk (a
        stat per pyc, the yardstick of the targets), side by side."""
        rows = []
        for tool in ("find", "bfs"):
            if tool == "bfs" and not shutil.which("bfs"):
                rows.append(Row("bfs (not installed)", [], root))
                rows[-1].skip = "skipped: bfs not installed (scripts/install-deps --test)"
                continue
            if bare:
                rows.append(Row("%s -printf '' (bare walk)%s" % (tool, suffix),
                                [[tool, "{root}", "-printf", ""]], root, copy=copy,
                                note="the floor" if tool == "find" else ""))
            rows.append(Row("%s -name *.pyc -printf %%s%s" % (tool, suffix),
                            [[tool, "{root}", "-name", "*.pyc", "-printf", "%s\\n"]],
                            root, copy=copy, reference=tool == "find",
                            note="the yardstick: a stat per pyc" if tool == "find"
                            else ""))
        return rows

    def group_check(self, root):
        pc = self.pycache
        rows = self.walk_rows(root) + [
            Row("pycache check -q", [[pc, "check", "-q", "{root}"]], root, ok=(0, 1),
                needs="check", note="the verdicts, no listing"),
            Row("pycache check", [[pc, "check", "{root}"]], root, ok=(0, 1),
                needs="check", note="the sorted listing of what is not fresh"),
            Row("pycache check --json", [[pc, "check", "--json", "{root}"]], root,
                ok=(0, 1), needs="check", note="listed files sized by fstatat"),
            Row("pycache check -q --deep", [[pc, "check", "-q", "--deep", "{root}"]],
                root, ok=(0, 1), needs="check", note="every fresh body unmarshalled"),
            Row("pycache check -q, PYCACHE_IO_URING=0",
                [["env", "PYCACHE_IO_URING=0", pc, "check", "-q", "{root}"]], root,
                ok=(0, 1), needs="check", note="an open+pread+close per pyc"),
            Row("pycache check -q, PYCACHE_THREADS=1",
                [["env", "PYCACHE_THREADS=1", pc, "check", "-q", "{root}"]], root,
                ok=(0, 1), needs="check", note="one walk"),
            Row("pycache clean -n", [[pc, "clean", "-n", "{root}"]], root, ok=(0, 1),
                needs="clean", note="dry run: the listing of ~all pycs"),
            Row("importlib checker (python3)", [[SYSTEM_PYTHON, CHECKER, "{root}"]],
                root, ok=(0, 1)),
        ]
        r = self.run_group("check", "read-only, on the corpus itself", rows)
        self.check_rows = r
        self.target("check", r["pycache check -q"], r["find -name *.pyc -printf %s"],
                    CHECK_TARGET)
        self.target("check --deep", r["pycache check -q --deep"], r["pycache check -q"],
                    DEEP_TARGET)
        self.compare_counts(root)

    def group_floor(self, root):
        """The kernel's share of a check, with no program around it
        (bench/floor.c): a stat per pyc (find's work) against the open +
        17-byte read + close a check needs, one thread, warm.  From them, the
        floor of a header-reading check on this machine: find's bare walk, a
        header read per pyc and a stat per source, split over the walks with
        no overhead at all, against the find stat walk, the check target's
        yardstick."""
        log("")
        log("== floor: the kernel's cost per file, one thread, warm (bench/floor.c)")
        exe = build_floor(self.scratch.root)
        if not exe:
            log("  skipped: bench/floor.c did not build (no C compiler)")
            return
        listing = os.path.join(self.scratch.root, "floor.list")
        npyc = nsrc = 0
        with open(listing, "wb") as f:
            for dirpath, _, filenames in os.walk(root):
                d = os.fsencode(dirpath)
                for name in filenames:
                    if not os.path.isfile(os.path.join(dirpath, name)) or \
                            os.path.islink(os.path.join(dirpath, name)):
                        continue
                    if name.endswith((".pyc", ".pyo")):
                        f.write(d + b"\0" + os.fsencode(name) + b"\0")
                        npyc += 1
                    elif name.endswith(".py"):
                        nsrc += 1
        if not npyc:
            log("  skipped: no pyc in %s" % root)
            return
        per = {}
        for mode in ("stat", "read", "uring"):
            with open(listing, "rb") as inp:
                p = subprocess.run([exe, mode, str(max(self.args.n, 3) + 1)], stdin=inp,
                                   capture_output=True, text=True)
            if p.returncode != 0:
                log("  %-44s %s" % (mode, (p.stderr.strip() or "failed")[:100]))
                continue
            cpus = [float(line.split()[1]) for line in p.stdout.splitlines()]
            per[mode] = min(cpus) / npyc
        env = self.env
        bare = [run_once(["find", root, "-printf", ""], env) for _ in range(5)]
        walk = [run_once(["find", root, "-name", "*.pyc", "-printf", "%s\n"], env)
                for _ in range(5)]
        bare_cpu = statistics.median(r["user"] + r["sys"] for r in bare)
        find_wall = statistics.median(r["wall"] for r in walk)
        labels = {"stat": "fstatat per pyc (find's work)",
                  "read": "openat + pread 17 B + close per pyc",
                  "uring": "the same in io_uring, 64 a submission"}
        for mode, us in per.items():
            log("  %-44s %6.2f us%s" % (labels[mode], us * 1e6,
                "  (%.2fx fstatat)" % (us / per["stat"]) if mode != "stat" and
                "stat" in per else ""))
        result = {"pycs": npyc, "sources": nsrc, "per_file_s": per,
                  "find_bare_walk_cpu_s": bare_cpu, "find_stat_walk_s": find_wall}
        read_cost = per.get("uring", per.get("read"))
        if read_cost and "stat" in per:
            walks = min(os.cpu_count() or 1, 4)
            floor_cpu = bare_cpu + npyc * read_cost + nsrc * per["stat"]
            floor_wall = floor_cpu / walks
            result.update({"walks": walks, "floor_cpu_s": floor_cpu,
                           "floor_wall_s": floor_wall,
                           "floor_ratio": floor_wall / find_wall})
            log("  floor of a check: find's bare walk %.3f s CPU + %d pycs x %.2f us"
                " + %d sources x %.2f us = %.3f s CPU"
                % (bare_cpu, npyc, read_cost * 1e6, nsrc, per["stat"] * 1e6, floor_cpu))
            log("  over %d walks with no overhead: %.3f s = %.2fx the find stat walk "
                "(%.3f s); the check target is %.2fx"
                % (walks, floor_wall, floor_wall / find_wall, find_wall, CHECK_TARGET))
            if self.pycache and self.have("check"):
                runs = [run_once([self.pycache, "check", "-q", root], env)
                        for _ in range(5)]
                cpu = statistics.median(r["user"] + r["sys"] for r in runs)
                result["pycache_check_cpu_s"] = cpu
                log("  pycache check -q: %.3f s CPU, %.2fx the floor's"
                    % (cpu, cpu / floor_cpu))
        self.results["floor"] = result

    def group_check_cold(self, root):
        pc = self.pycache
        rows = self.walk_rows(root) + [
            Row("pycache check -q", [[pc, "check", "-q", "{root}"]], root, ok=(0, 1),
                needs="check"),
            Row("pycache check -q --deep", [[pc, "check", "-q", "--deep", "{root}"]],
                root, ok=(0, 1), needs="check"),
            Row("pycache check -q, PYCACHE_IO_URING=0",
                [["env", "PYCACHE_IO_URING=0", pc, "check", "-q", "{root}"]], root,
                ok=(0, 1), needs="check", note="an open+pread+close per pyc"),
        ]
        r = self.run_group("cold-check", "read-only, the page cache dropped before "
                           "each run", rows, cold=True)
        self.target("cold check", r["pycache check -q"],
                    r["find -name *.pyc -printf %s"], COLD_CHECK_TARGET)
        self.target("cold check/bfs", r["pycache check -q"],
                    r.get("bfs -name *.pyc -printf %s"), COLD_CHECK_TARGET)

    def group_api(self, root):
        """The Python API against the command line it reads: the package is
        unpacked from the wheel (--wheel) into the scratch directory and
        runs the pycache under test ($PYCACHE)."""
        pc = self.pycache
        rows = [
            Row("pycache check -v --json", [[pc, "check", "-v", "--json", "--fail-on",
                                             "none", "{root}"]], root, ok=(0,),
                needs="check", reference=True, note="JSON to /dev/null"),
            Row("list(pycache.check(tree))", [["env", "PYCACHE=" + pc,
                                               "PYTHONPATH=" + (self.api_path or ""),
                                               SYSTEM_PYTHON, "-c", API_CODE, "{root}"]],
                root, needs="check", note="python3 start-up included"),
        ]
        if not self.api_path:
            rows[1].skip = "skipped: no --wheel given (make bench passes it)"
        r = self.run_group("api", "the Python API (read-only, on the corpus itself)", rows)
        self.target("api", r["list(pycache.check(tree))"], r["pycache check -v --json"],
                    API_TARGET)

    def unpack_api(self):
        """The wheel's pure-Python package, unpacked into scratch; None
        without --wheel."""
        if not self.args.wheel:
            return None
        import zipfile
        where = os.path.join(self.scratch.root, "api")
        with zipfile.ZipFile(self.args.wheel) as z:
            for name in z.namelist():
                if name.startswith("pycache/") and name.endswith(".py"):
                    z.extract(name, where)
        return where

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

    def find_pair(self, root, tool="find"):
        """The shell recipe for cleaning (with find, or bfs); the find pair is
        measured once (in the clean group, or in the prune group when clean
        is not run) and shown in both."""
        def pair():
            return Row(
                "%s -exec rm -rf + %s -delete" % (tool, tool),
                [[tool, "{root}", "-name", "__pycache__", "-prune", "-exec", "rm",
                  "-rf", "{}", "+"],
                 [tool, "{root}", "-name", "*.py[co]", "-delete"]], root, copy=True,
                reference=tool == "find")
        if tool != "find":
            if shutil.which(tool):
                return pair()
            row = Row("%s pair (not installed)" % tool, [], root)
            row.skip = "skipped: %s not installed" % tool
            return row
        if getattr(self, "_find_pair", None) is None:
            self._find_pair = pair()
        return self._find_pair

    def clean_rows(self, root, cold=False):
        pc = self.pycache
        rows = [
            self.find_pair(root) if not cold else Row(
                self.find_pair(root).name, self.find_pair(root).argvs, root, copy=True,
                reference=True),
            self.find_pair(root, "bfs"),
            Row("pycache clean", [[pc, "clean", "{root}"]], root, copy=True,
                needs="clean"),
        ]
        if not cold and os.access("/usr/bin/py3clean", os.X_OK):
            rows.append(Row("py3clean (Debian)", [["/usr/bin/py3clean", "{root}"]], root,
                            copy=True, note="only pycs of existing sources"))
        pyclean = shutil.which("pyclean", path="/usr/local/bin:/usr/bin:/bin")
        if pyclean and not cold:
            rows.append(Row("pyclean", [[pyclean, "{root}"]], root, copy=True))
        return rows

    def group_clean(self, root):
        r = self.run_group("clean", "each run on a fresh cp -a copy", self.clean_rows(root))
        self.target("clean", r["pycache clean"], r["find -exec rm -rf + find -delete"],
                    CLEAN_TARGET)

    def group_clean_cold(self, root):
        r = self.run_group("cold-clean", "each run on a fresh cp -a copy, the page cache "
                           "dropped after the copy", self.clean_rows(root, cold=True),
                           cold=True)
        self.target("cold clean", r["pycache clean"],
                    r["find -exec rm -rf + find -delete"], CLEAN_TARGET)

    def group_prune(self, root):
        rows = [
            self.find_pair(root),
            Row("pycache prune", [[self.pycache, "prune", "{root}"]], root, copy=True,
                ok=(0, 1), needs="prune"),
        ]
        self.run_group("prune", "stale/orphan/temp removal, fresh copy each run", rows)

    def compile_noop_rows(self, ct):
        pc, py = self.pycache, SYSTEM_PYTHON
        compiled = ct["compiled"]
        rows = [
            Row("compileall -q (no-op)", [[py, "-m", "compileall", "-q", "{root}"]],
                compiled, copy=True, reference=True),
            Row("pycache compile (no-op)", [[pc, "compile", "--python", py, "-q",
                                             "{root}"]], compiled, copy=True,
                ok=(0, 1), needs="compile"),
        ]
        walks = self.walk_rows(compiled, bare=False, copy=True, suffix=" (compile tree)")
        for w in walks:
            w.reference = False
            w.note = "a stat per pyc: the yardstick of the target" \
                if w.name.startswith("find") else ""
        return rows + walks

    def group_compile(self, ct):
        pc, py = self.pycache, SYSTEM_PYTHON
        src = ct["src"]
        r = self.run_group("compile-noop", "%d sources, all fresh (%s only)"
                           % (ct["sources"], ct["tag"]), self.compile_noop_rows(ct),
                           min_runs=15)
        self.target("compile no-op", r["pycache compile (no-op)"],
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

    def group_compile_cold(self, ct):
        r = self.run_group("cold-compile-noop", "%d sources, all fresh, the page cache "
                           "dropped after the copy" % ct["sources"],
                           self.compile_noop_rows(ct), cold=True)
        self.target("cold compile no-op", r["pycache compile (no-op)"],
                    r["find -name *.pyc -printf %s (compile tree)"], COLD_COMPILE_TARGET)

    def group_scale(self, m):
        """The corpus hard-linked into one tree of about SCALE_FILES cache
        files (no disk but directory blocks), warm, interleaved with the same
        commands on the corpus itself.  Linear time: the issue's 9x for
        1,000,000 cache files over a 127k-file corpus (7.87x the files)
        allows 9 / 7.87 = 1.14x per copy, so the limit is 1.14 x copies."""
        pc = self.pycache
        root = m["root"]
        tree, reps, pycs = scale_tree(m, self.args.scale_files)
        rows = self.walk_rows(tree, bare=False) + [
            Row("pycache check -q", [[pc, "check", "-q", "{root}"]], tree, ok=(0, 1),
                needs="check"),
            Row("pycache check", [[pc, "check", "{root}"]], tree, ok=(0, 1),
                needs="check", note="the listing of what is not fresh"),
            Row("pycache clean -n", [[pc, "clean", "-n", "{root}"]], tree, ok=(0, 1),
                needs="clean", note="a listing line per removable file"),
            Row("corpus: pycache check -q", [[pc, "check", "-q", "{root}"]], root,
                ok=(0, 1), needs="check", note="the corpus itself"),
            Row("corpus: pycache clean -n", [[pc, "clean", "-n", "{root}"]], root,
                ok=(0, 1), needs="clean", note="the corpus itself"),
        ]
        r = self.run_group("scale", "%d hard-linked copies of the corpus: %d cache "
                           "files (%dx the corpus)" % (reps, reps * pycs, reps), rows)
        limit = round(SCALE_TARGET / 7.87 * reps, 2)
        for name in ("pycache check -q", "pycache clean -n"):
            self.target("scale " + name.split(" ", 1)[1], r[name], r["corpus: " + name],
                        limit)
        for name in ("pycache check -q", "pycache check", "pycache clean -n"):
            self.target_rss("RSS " + name.split(" ", 1)[1], r[name], SCALE_RSS_MIB)

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
        rows += [
            Row("pycache compile -f",
                [[self.pycache, "compile", "-f", "-q", "--python", SYSTEM_PYTHON, "{root}"]],
                ct["compiled"], copy=True, ok=(0, 1), needs="compile",
                note="recompiles and writes every pyc"),
            Row("pycache verify",
                [[self.pycache, "verify", "-q", "--python", SYSTEM_PYTHON, "{root}"]],
                ct["compiled"], ok=(0, 1), needs="verify",
                note="recompiles in memory and compares every pyc"),
        ]
        r = self.run_group("normalize", "canonical marshal form of the compile tree, and "
                           "verify of it, %d sources (targets: normalize faster than one "
                           "compileall -f; verify <= %.1fx compile -f)"
                           % (ct["sources"], VERIFY_TARGET), rows)
        self.target("verify", r["pycache verify"], r["pycache compile -f"], VERIFY_TARGET)

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

    def stdlib_image(self):
        """An OCI image tar of the zip's standard library: a gzip layer of it,
        and a second one that rewrites ten modules and whites out ten
        others (their caches become stale and orphans). Made once."""
        out = os.path.join(self.args.dir, "image-stdlib.tar")
        if os.path.exists(out):
            return out
        z = self.stdlib_zip()
        if not z:
            return None
        import gzip
        import hashlib
        import io
        import tarfile
        import tempfile
        import zipfile
        with tempfile.TemporaryDirectory(dir=self.args.dir) as tmp:
            root = os.path.join(tmp, "root")
            with zipfile.ZipFile(z) as zf:
                zf.extractall(root)
                for info in zf.infolist():  # extractall sets no mtime
                    t = time.mktime(info.date_time + (0, 0, -1))
                    os.utime(os.path.join(root, info.filename), (t, t))
            mods = sorted(f for f in os.listdir(root) if f.endswith(".py"))[:20]

            def tgz(add):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
                    add(t)
                return gzip.compress(buf.getvalue(), mtime=0, compresslevel=6)

            def second(t):
                for m in mods[:10]:
                    data = open(os.path.join(root, m), "rb").read() + b"\n# changed\n"
                    ti = tarfile.TarInfo("usr/lib/python3/" + m)
                    ti.size, ti.mtime = len(data), 2000000000
                    t.addfile(ti, io.BytesIO(data))
                for m in mods[10:]:
                    t.addfile(tarfile.TarInfo("usr/lib/python3/.wh." + m), io.BytesIO(b""))
            layers = [tgz(lambda t: t.add(root, arcname="usr/lib/python3")), tgz(second)]
            sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": [
                                     sha(gzip.decompress(l)) for l in layers]}}).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": sha(l), "size": len(l)} for l in layers]}).encode()
            index = json.dumps({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(manifest), "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}).encode()
            with tarfile.open(out + ".tmp", "w") as t:
                for name, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                                   ("index.json", index)] + \
                        [("blobs/sha256/" + sha(b)[7:], b) for b in layers + [config, manifest]]:
                    ti = tarfile.TarInfo(name)
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
        os.rename(out + ".tmp", out)
        return out

    def group_image(self):
        if not shutil.which("umoci") or not os.path.isdir("/dev/shm"):
            log("\n== image: skipped: umoci or /dev/shm missing")
            return
        img = self.stdlib_image()
        if not img:
            log("\n== image: skipped: no compiled standard library or no zip")
            return
        pc = self.pycache
        unpack_check = ("d=$(mktemp -d -p /dev/shm) && mkdir \"$d/l\" && "
                        "tar -x -f \"$1\" -C \"$d/l\" && "
                        "umoci unpack --rootless --image \"$d/l:bench\" \"$d/b\" >/dev/null 2>&1 && "
                        "\"$2\" check \"$d/b/rootfs\" >/dev/null; rc=$?; rm -rf \"$d\"; exit $rc")
        rows = [
            Row("umoci unpack to tmpfs + pycache check",
                [["sh", "-c", unpack_check, "sh", "{root}", pc]], img, reference=True,
                ok=(0, 1), needs="check", note="unpack the layers, then judge the tree"),
            Row("pycache check IMAGE", [[pc, "check", "{root}"]], img, ok=(0, 1),
                needs="check", note="layers streamed, digests checked, nothing written"),
        ]
        self.run_group("image", "an OCI image of a compiled stdlib (%.1f MB, 2 gzip layers)"
                       % (os.path.getsize(img) / 1e6), rows)

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
            for c in ("check", "clean", "prune", "compile", "convert", "normalize",
                      "verify"))))
        log("%d timed runs per row (15 in compile-noop) after one warm-up; times are "
            "wall-clock medians" % a.n)
        self.cold_ok = can_drop_caches()
        self.disk_name = block_device(root)
        self.scratch = Scratch(a.dir)
        if not build_spawn(self.scratch.root):
            log("note: no C compiler for bench/spawn.c: peak RSS includes the "
                "benchmark's own Python footprint")
        self.results["peak_rss_method"] = "spawn.c wait4" if SPAWN else "os.wait4"
        self.api_path = self.unpack_api()
        groups = set(a.only.split(",")) if a.only else None

        def want(g):
            return groups is None or g in groups
        try:
            ct = m.get("compile_tree")
            if want("check"):
                self.group_check(root)
            if want("floor"):
                self.group_floor(root)
            if want("cold-check"):
                self.group_check_cold(root)
            if want("scale"):
                self.group_scale(m)
            if want("clean"):
                self.group_clean(root)
            if want("cold-clean"):
                self.group_clean_cold(root)
            if want("prune"):
                self.group_prune(root)
            if want("compile") and ct:
                self.group_compile(ct)
            if want("cold-compile") and ct:
                self.group_compile_cold(ct)
            if want("convert") and ct:
                self.group_convert(ct)
            if want("normalize") and ct:
                self.group_normalize(ct)
            if want("api"):
                self.group_api(root)
            if want("archive"):
                self.group_archive()
            if want("image"):
                self.group_image()
            if want("callgrind") and not a.no_callgrind:
                self.group_callgrind(callgrind_subtree(m))
        finally:
            self.scratch.close()
        self.summary()
        if a.json:
            with open(a.json, "w") as f:
                json.dump(self.results, f, indent=1, sort_keys=True)
            log("\nfigures written to %s" % a.json)


def diskstats():
    """The lines of /proc/diskstats, split (empty where there is none)."""
    try:
        with open("/proc/diskstats") as f:
            return [line.split() for line in f]
    except OSError:
        return []


def block_device(path):
    """The /proc/diskstats name of the block device PATH is on, or None (a
    file system with no device of its own: tmpfs, overlay, btrfs subvolumes)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    want = "%d %d" % (os.major(st.st_dev), os.minor(st.st_dev))
    return next((f[2] for f in diskstats() if len(f) > 2 and " ".join(f[:2]) == want),
                None)


def disk_counters(dev):
    """Read counters of DEV (Documentation/admin-guide/iostats.rst): reads
    completed, reads merged, sectors read, ms spent reading, ms with I/O in
    flight (io_ticks), then discards completed and ms spent discarding
    (fields 15 and 18, since Linux 4.18; 0 before). None when DEV is None
    or gone."""
    for f in diskstats() if dev else []:
        if len(f) > 12 and f[2] == dev:
            extra = [int(f[i]) for i in (14, 17)] if len(f) > 17 else [0, 0]
            return [int(f[i]) for i in (3, 4, 5, 6, 12)] + extra
    return None


def disk_delta(before, after, wall):
    if not before or not after or wall <= 0:
        return None
    reads, merged, sectors, read_ms, ticks, discards, discard_ms = \
        [a - b for a, b in zip(after, before)]
    return {"reads": reads, "reads_merged": merged, "sectors_read": sectors,
            "read_ms": read_ms, "io_ticks_ms": ticks, "discards": discards,
            "discard_ms": discard_ms, "discards_in_flight": discard_ms / 1000.0 / wall,
            "busy": min(1.0, ticks / 1000.0 / wall),
            "in_flight": read_ms / 1000.0 / wall}


def can_drop_caches():
    return os.geteuid() == 0 and os.access(DROP_CACHES, os.W_OK)


def drop_caches():
    """Writes back dirty pages, then drops the page cache, dentries and
    inodes, so the next command reads from the device."""
    os.sync()
    with open(DROP_CACHES, "w") as f:
        f.write("3\n")


def scale_tree(m, want=SCALE_FILES):
    """DIR/PROFILE.scale: the corpus hard-linked (cp -al) enough times for
    WANT cache files; rebuilt when the corpus was regenerated.  Costs
    directory blocks only: every file is a link to a corpus file.  Returns
    (path, copies, cache files per copy)."""
    c = m["counts"]
    pycs = c["pycache_pycs"] + c["legacy_pycs"] + c["temp_files"]
    reps = -(-want // pycs)
    path = m["root"] + ".scale"
    stamp = "%s %s %d" % (m["generated"], m["corpus_version"], reps)
    marker = os.path.join(path, corpus.MARKER)
    try:
        with open(marker) as f:
            if f.read().strip() == stamp:
                return path, reps, pycs
    except OSError:
        pass
    for p in (path, path + ".building"):
        if os.path.lexists(p):
            if os.path.islink(p) or not os.path.isfile(os.path.join(p, corpus.MARKER)):
                sys.exit("bench: refusing to remove %r: no %s marker" % (p, corpus.MARKER))
            shutil.rmtree(p)
    log("building the scale tree %s: %d hard-linked copies of the corpus" % (path, reps))
    building = path + ".building"
    os.makedirs(building)
    for i in range(reps):
        subprocess.run(["cp", "-al", "--", m["root"], os.path.join(building, "copy-%02d" % i)],
                       check=True)
    with open(os.path.join(building, corpus.MARKER), "w") as f:
        f.write(stamp + "\n")
    os.rename(building, path)
    return path, reps, pycs


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
    info = {"kernel": platform.release(), "cpus": os.cpu_count(),
            "filesystem": "%s on %s" % (fs, best or "?"),
            "python": platform.python_version()}
    # Every row's per-file syscall does a dentry hash lookup; with far more
    # dentries than hash buckets (the scale tree's hard links add ~1M) the
    # chains grow and a warm walk slows for find and pycache alike, for
    # pycache more (it looks up about twice per cache file: README).
    try:
        with open("/proc/sys/fs/dentry-state") as f:
            fields = f.read().split()
        info["dentries"] = "%s (%s negative)" % (fields[0], fields[4])
    except (OSError, IndexError):
        pass
    return info


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
    ap.add_argument("--only", help="comma-separated groups: check,floor,cold-check,scale,"
                                   "clean,cold-clean,prune,compile,cold-compile,"
                                   "convert,normalize,api,archive,image,callgrind")
    ap.add_argument("--wheel", help="the pycache wheel whose Python API the api group "
                                    "times (make bench passes $(BUILD)/dist's)")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="skip the valgrind instruction counts")
    ap.add_argument("--scale-files", type=int, default=SCALE_FILES, metavar="N",
                    help="cache files in the scale group's tree (default %d)" % SCALE_FILES)
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
    if args.wheel:
        args.wheel = os.path.abspath(args.wheel)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    Bench(args).run()


if __name__ == "__main__":
    main()
