"""pycache watch: sources that go take their bytecode with them.

Each tree is compiled by real interpreters (every 3.x one in turn, plus a
second one so every tag is present); `pycache watch` follows it while the
test renames, deletes and creates, and the caches the interpreters wrote for
the sources that went must disappear (all tags, all levels, legacy files),
while the others stay exactly as written. Polls have a generous overall
timeout; nothing here measures time.
"""

import json
import os
import select
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import discover_interpreters

DEADLINE = 30.0  # seconds: an upper bound for a loaded CI machine, not a check


def default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Watch(object):
    """A running `pycache watch ARGS`, started once it says it is watching."""

    def __init__(self, pycache_bin, *args, **kw):
        env = dict(os.environ, NO_COLOR="1")
        env.pop("PYTHONPYCACHEPREFIX", None)
        env.update(kw.get("env", {}))
        # stdout goes to a file, not a pipe: nobody reads it until stop(), and
        # a burst of removals prints more than a pipe holds (64 KiB), which
        # would block watch in write() and stall the test.
        self.out = tempfile.TemporaryFile()
        # SIGINT as a terminal gives it: a test run started in the background
        # (`nohup make check &`) ignores SIGINT, and watch keeps a SIGINT its
        # starter ignores ignored (as a background job should).
        self.proc = subprocess.Popen([pycache_bin, "watch"] + [str(a) for a in args],
                                     stdout=self.out, stderr=subprocess.PIPE,
                                     env=env, cwd=kw.get("cwd"),
                                     preexec_fn=kw.get("preexec", default_sigint))
        self.stderr = b""
        self.ready = False
        if kw.get("wait", True):
            self.wait_ready()

    def wait_ready(self):
        end = time.monotonic() + DEADLINE
        while b"watching" not in self.stderr:
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                pytest.fail("watch did not start: %r" % self.stderr)
            r, _, _ = select.select([self.proc.stderr], [], [], left)
            if r:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    continue
                self.stderr += chunk
        self.ready = True

    def output(self):
        """What watch has written to stdout so far (it flushes per batch)."""
        return os.pread(self.out.fileno(), 1 << 24, 0)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.out.seek(0)
        self.stdout = self.out.read().decode("utf-8", "surrogateescape")
        self.stderr += err
        return self.proc.returncode


@pytest.fixture
def watch(pycache_bin):
    started = []

    def start(*args, **kw):
        w = Watch(pycache_bin, *args, **kw)
        started.append(w)
        return w
    yield start
    for w in started:
        if w.proc.poll() is None:
            w.stop(signal.SIGKILL)


def second_interpreter(interp):
    """Another 3.x interpreter than INTERP (a second tag in __pycache__)."""
    for other in discover_interpreters():
        if other.major == 3 and other.tag != interp.tag:
            return other
    pytest.skip("only one 3.x interpreter on this machine")


def compile_tree(interp, root, optimize=(0,)):
    """Byte-compiles ROOT the way the interpreter does at import."""
    for level in optimize:
        flags = ["-O"] * level
        interp.run("import compileall, sys; sys.exit(not compileall.compile_dir(sys.argv[1], quiet=1))",
                   str(root), flags=flags)


def caches_of(root, stem):
    """Every cache file under ROOT's __pycache__ dirs / legacy for STEM."""
    found = []
    for d, dirs, files in os.walk(str(root)):
        for f in files:
            if os.path.basename(d) == "__pycache__":
                if f.split(".")[0] == stem:
                    found.append(os.path.join(d, f))
            elif f in (stem + ".pyc", stem + ".pyo"):
                found.append(os.path.join(d, f))
    return sorted(found)


def snapshot(root):
    """path -> (size, mtime_ns) of every cache file under ROOT."""
    out = {}
    for d, dirs, files in os.walk(str(root)):
        for f in files:
            if f.endswith((".pyc", ".pyo")):
                p = os.path.join(d, f)
                st = os.stat(p)
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


def wait_until(cond, what):
    end = time.monotonic() + DEADLINE
    while not cond():
        if time.monotonic() > end:
            pytest.fail("timed out waiting for: %s" % what)
        time.sleep(0.02)


def make_tree(root, names):
    for n in names:
        p = root / (n + ".py")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("X = %r\n" % n)


def test_rename_and_delete_remove_every_tag(tmp_path, interp3, watch):
    other = second_interpreter(interp3)
    make_tree(tmp_path, ["keep", "moved", "gone", "pkg/__init__", "pkg/inner", "pkg/stay"])
    compile_tree(interp3, tmp_path, optimize=(0, 1, 2) if interp3.minor >= 5 else (0,))
    compile_tree(other, tmp_path)
    gone_caches = caches_of(tmp_path, "moved") + caches_of(tmp_path, "gone") + \
        caches_of(tmp_path, "inner")
    # Both interpreters wrote caches for each of them (every tag present).
    tags = {os.path.basename(p).split(".")[1] for p in gone_caches}
    assert {interp3.tag, other.tag} <= tags
    before = snapshot(tmp_path)

    w = watch(tmp_path)
    os.rename(str(tmp_path / "moved.py"), str(tmp_path / "renamed.py"))
    os.unlink(str(tmp_path / "gone.py"))
    os.rename(str(tmp_path / "pkg" / "inner.py"), str(tmp_path / "pkg" / "outer.py"))
    wait_until(lambda: not any(os.path.exists(p) for p in gone_caches),
               "caches of the sources that went")
    assert w.stop() == 0
    # The others are untouched (same files, same bytes, same times).
    after = snapshot(tmp_path)
    assert after == {p: v for p, v in before.items() if p not in gone_caches}
    for p in gone_caches:
        assert "removed %s (source gone)" % p in w.stdout


def test_legacy_pyc_beside_a_deleted_source_goes(tmp_path, interp2, watch):
    """Python 2 (and compileall -b) put NAME.pyc beside NAME.py; with the
    source gone it would be imported in its place."""
    make_tree(tmp_path, ["mod", "other"])
    compile_tree(interp2, tmp_path)
    assert (tmp_path / "mod.pyc").exists()
    # The interpreter imports the sourceless pyc once the source is gone:
    # that is what watch prevents.
    w = watch(tmp_path)
    os.unlink(str(tmp_path / "mod.py"))
    wait_until(lambda: not (tmp_path / "mod.pyc").exists(), "mod.pyc removed")
    assert w.stop() == 0
    assert (tmp_path / "other.pyc").exists()
    r = interp2.run("import sys; sys.path.insert(0, sys.argv[1])\ntry:\n import mod\nexcept ImportError:\n print('gone')",
                    str(tmp_path))
    assert r.stdout.strip() == b"gone"


def test_new_subdirectory_is_followed(tmp_path, interp3, watch):
    (tmp_path / "a.py").write_text("A = 1\n")
    w = watch(tmp_path)
    sub = tmp_path / "new" / "deeper"
    sub.mkdir(parents=True)
    (sub / "m.py").write_text("M = 1\n")
    (sub / "n.py").write_text("N = 1\n")
    compile_tree(interp3, tmp_path / "new")
    caches = caches_of(sub, "m")
    assert caches
    # The watch is set up asynchronously: a deletion before it exists is
    # caught by the pruning of the new subtree, after it by the watch.
    os.unlink(str(sub / "m.py"))
    wait_until(lambda: not any(os.path.exists(p) for p in caches), "m's cache removed")
    assert caches_of(sub, "n")
    assert w.stop() == 0


def test_directory_renamed_within_the_tree_keeps_being_followed(tmp_path, interp3, watch):
    make_tree(tmp_path, ["pkg/a", "pkg/b"])
    compile_tree(interp3, tmp_path)
    w = watch(tmp_path)
    os.rename(str(tmp_path / "pkg"), str(tmp_path / "lib"))
    # The caches moved along with their sources: still fresh, kept.
    os.unlink(str(tmp_path / "lib" / "a.py"))
    wait_until(lambda: not caches_of(tmp_path / "lib", "a"), "a's cache removed under lib/")
    assert caches_of(tmp_path / "lib", "b")
    assert w.stop() == 0
    assert "lib/__pycache__/a." in w.stdout


def test_burst_of_500_deletions(tmp_path, interp3, watch):
    names = ["m%03d" % i for i in range(500)] + ["keep"]
    make_tree(tmp_path, ["pkg/" + n for n in names])
    compile_tree(interp3, tmp_path)
    pyc = tmp_path / "pkg" / "__pycache__"
    assert len(os.listdir(str(pyc))) == 501
    w = watch(tmp_path)
    for n in names[:-1]:
        os.unlink(str(tmp_path / "pkg" / (n + ".py")))
    wait_until(lambda: len(os.listdir(str(pyc))) == 1, "499 caches removed")
    assert os.listdir(str(pyc))[0].startswith("keep.")
    assert w.stop() == 0
    assert w.stdout.count("(source gone)") == 500


def test_queue_overflow_rescans_for_orphans(tmp_path, interp3, watch):
    """Events lost (the kernel's queue overflowed while watch was stopped):
    it says so and rescans; the orphan left by an unseen deletion goes."""
    make_tree(tmp_path, ["a", "b"])
    compile_tree(interp3, tmp_path)
    limit = int(open("/proc/sys/fs/inotify/max_queued_events").read())
    if limit > 200000:
        pytest.skip("max_queued_events too large to overflow in a test")
    w = watch(tmp_path)
    w.proc.send_signal(signal.SIGSTOP)
    try:
        os.unlink(str(tmp_path / "a.py"))
        spam = tmp_path / "spam"
        spam.mkdir()
        # Each creation and deletion is an event in the root's queue.
        for i in range(limit // 2 + 100):
            p = str(tmp_path / ("f%d" % i))
            open(p, "w").close()
            os.unlink(p)
    finally:
        w.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: not caches_of(tmp_path, "a"), "a's orphan cache removed")
    assert caches_of(tmp_path, "b")
    assert w.stop() == 0
    assert b"overflowed" in w.stderr


def test_sigterm_and_sigint_exit_0(tmp_path, watch):
    (tmp_path / "a.py").write_text("")
    for sig in (signal.SIGTERM, signal.SIGINT):
        w = watch(tmp_path)
        assert w.stop(sig) == 0, w.stderr


def test_sigint_ignored_by_the_starter_stays_ignored(tmp_path, watch):
    """As a background job of a shell: SIGINT ignored at start is no stop."""
    (tmp_path / "a.py").write_text("")
    w = watch(tmp_path, preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    w.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert w.proc.poll() is None
    assert w.stop(signal.SIGTERM) == 0, w.stderr


def test_dry_run_removes_nothing(tmp_path, interp3, watch):
    make_tree(tmp_path, ["a", "b"])
    compile_tree(interp3, tmp_path)
    before = snapshot(tmp_path)
    gone = caches_of(tmp_path, "a")
    w = watch("-n", "--json", tmp_path)
    os.unlink(str(tmp_path / "a.py"))
    # The report is the signal that the event was handled.
    wait_until(lambda: w.output().count(b"\n") >= len(gone), "the dry-run report")
    assert w.stop() == 0
    objs = [json.loads(l) for l in w.stdout.splitlines() if l.strip()]
    assert sorted(o["path"] for o in objs) == sorted(gone)
    assert {o["action"] for o in objs} == {"would-remove"}
    assert {o["status"] for o in objs} == {"orphan"}
    assert snapshot(tmp_path) == before


def test_skipped_directories_are_not_watched(tmp_path, interp3, watch):
    """Like every tree command: VCS metadata, node_modules and venvs are
    left alone, and so are directories that become a venv."""
    make_tree(tmp_path, ["node_modules/x", "venv/y", "src/z"])
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    compile_tree(interp3, tmp_path)
    w = watch(tmp_path)
    os.unlink(str(tmp_path / "node_modules" / "x.py"))
    os.unlink(str(tmp_path / "venv" / "y.py"))
    os.unlink(str(tmp_path / "src" / "z.py"))
    wait_until(lambda: not caches_of(tmp_path / "src", "z"), "z's cache removed")
    assert w.stop() == 0
    assert caches_of(tmp_path / "node_modules", "x")
    assert caches_of(tmp_path / "venv", "y")


def test_prune_first_and_prefix_tree(tmp_path, interp38, watch):
    src, prefix = tmp_path / "src", tmp_path / "prefix"
    make_tree(src, ["a", "b", "orphan"])
    interp38.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
                 str(src), env={"PYTHONPYCACHEPREFIX": str(prefix)})
    # Where the interpreter itself puts (and looks for) each cache.
    where = interp38.eval_json(
        "import importlib.util as u, json, sys\n"
        "print(json.dumps({n: u.cache_from_source(sys.argv[1] + '/' + n + '.py') for n in ('a', 'b', 'orphan')}))",
        str(src), env={"PYTHONPYCACHEPREFIX": str(prefix)})
    assert all(os.path.exists(p) for p in where.values())
    os.unlink(str(src / "orphan.py"))  # before watch: --prune-first's job
    w = watch("--prune-first", "--prefix", prefix, src)
    assert not os.path.exists(where["orphan"])
    os.unlink(str(src / "a.py"))
    wait_until(lambda: not os.path.exists(where["a"]), "a's prefix entry removed")
    assert os.path.exists(where["b"])
    assert w.stop() == 0


def test_exported_prefix_is_followed(tmp_path, watch):
    """With PYTHONPYCACHEPREFIX exported and no option, watch removes a
    deleted module's entry in the prefix, where 3.8+ put it, and says once
    which prefix is in force; --no-prefix leaves the prefix alone."""
    interps = [i for i in discover_interpreters() if (i.major, i.minor) >= (3, 8)]
    if not interps:
        pytest.skip("no Python 3.8+ here")
    interp = interps[-1]
    src, prefix = tmp_path / "src", tmp_path / "prefix"
    make_tree(src, ["a", "b", "c"])
    env = {"PYTHONPYCACHEPREFIX": str(prefix)}
    # c's cache in __pycache__ (as without the variable): its removal shows
    # the --no-prefix watch below has seen the deletions.
    c_cache = interp.run("import py_compile, sys; print(py_compile.compile(sys.argv[1]))",
                         str(src / "c.py")).stdout.decode().strip()
    assert "__pycache__" in c_cache
    interp.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
               str(src), env=env)
    where = interp.eval_json(
        "import importlib.util as u, json, sys\n"
        "print(json.dumps({n: u.cache_from_source(sys.argv[1] + '/' + n + '.py') for n in ('a', 'b')}))",
        str(src), env=env)
    assert all(p.startswith(str(prefix)) and os.path.exists(p) for p in where.values())
    w = watch("--no-prefix", src, env=env)
    os.unlink(str(src / "b.py"))
    os.unlink(str(src / "c.py"))
    wait_until(lambda: not os.path.exists(c_cache), "c's __pycache__ entry removed")
    assert w.stop() == 0
    assert os.path.exists(where["b"])  # not watched: --no-prefix
    w = watch(src, env=env)
    assert b"cache prefix '%s' ($PYTHONPYCACHEPREFIX)" % os.fsencode(str(prefix)) in w.stderr
    os.unlink(str(src / "a.py"))
    wait_until(lambda: not os.path.exists(where["a"]), "a's prefix entry removed")
    assert w.stop() == 0


def test_limit_on_watches_is_named(tmp_path, pycache_bin):
    """ENOSPC from inotify_add_watch: the message names the sysctl. The
    limit is lowered in a user namespace of our own (Linux 5.11+), never on
    the machine."""
    for d in ("a/b/c", "d/e"):
        (tmp_path / d).mkdir(parents=True)
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 2 > /proc/sys/user/max_inotify_watches"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if probe.returncode != 0:
        pytest.skip("no per-namespace inotify limit here: %r" % probe.stderr)
    r = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                        'echo 2 > /proc/sys/user/max_inotify_watches && exec "$0" watch "$1"',
                        pycache_bin, str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 3
    assert b"max_inotify_watches" in r.stderr
    assert b"sysctl" in r.stderr


def test_usage(pycache, tmp_path):
    f = tmp_path / "f.py"
    f.write_text("")
    r = pycache("watch", str(f))
    assert r.returncode == 3 and "Not a directory" in r.stderr
    r = pycache("watch", "--bogus")
    assert r.returncode == 2
