"""`pycache check` on whole trees made by every local interpreter.

One tree, one source per kind of damage, compiled by *every* interpreter on
the machine (2.7 writes its legacy NAME.pyc beside the source, 3.x into
__pycache__, 3.7+ some in hash modes); then the damage; then one
`pycache check --json -v` over the tree. Each cache file's status must be
what the interpreter it belongs to does with it — asked of that
interpreter itself, importing every module in one process (oracle).
"""

import os
import shutil
import struct
import subprocess

import pytest

from conftest import build_has, evict, human_report, needs, run_unprivileged
from oracle import batch_import, compile_source, make_module

T_NS = 1_600_000_000_123_456_789


def set_mtime(path, ns=T_NS):
    os.utime(path, ns=(ns, ns))


def edit_keep_stamp(src, grow):
    st = os.stat(src)
    with open(src) as f:
        old = f.read()
    new = old.replace("'v1'", "'v2'")
    if grow:
        new += "# grown\n"
    with open(src, "w") as f:
        f.write(new)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))


def pycs_of(tree, name):
    """Every cache file of module NAME in TREE (legacy and __pycache__)."""
    found = []
    for d in (tree, os.path.join(tree, "__pycache__")):
        if os.path.isdir(d):
            for f in os.listdir(d):
                if (f.startswith(name + ".") and f.split(".")[-1] in ("pyc", "pyo")):
                    found.append(os.path.join(d, f))
    return found


def header_len(path):
    with open(path, "rb") as f:
        magic = struct.unpack("<H", f.read(2))[0]
    if magic >= 3392 and magic < 20000:
        return 16
    if magic >= 3210 and magic < 20000:
        return 12
    return 8


# Damage applied after every interpreter compiled the tree: to the source
# (seen by every cache of it) or to each cache file of the module.
def d_mtime(tree, name):
    set_mtime(os.path.join(tree, name + ".py"), T_NS + 2_000_000_000)


def d_size(tree, name):
    edit_keep_stamp(os.path.join(tree, name + ".py"), grow=True)


def d_content(tree, name):
    edit_keep_stamp(os.path.join(tree, name + ".py"), grow=False)


def d_orphan(tree, name):
    os.unlink(os.path.join(tree, name + ".py"))


def d_truncate(tree, name):
    for p in pycs_of(tree, name):
        with open(p, "r+b") as f:
            f.truncate(7)


def d_header_only(tree, name):
    for p in pycs_of(tree, name):
        with open(p, "r+b") as f:
            f.truncate(header_len(p))


def d_magic(tree, name):
    for p in pycs_of(tree, name):
        with open(p, "r+b") as f:
            f.write(b"\x00\x00\r\n")


DAMAGES = {
    "fresh": None,
    "mtime": d_mtime,
    "size": d_size,
    "content": d_content,
    "orphan": d_orphan,
    "truncate": d_truncate,
    "headeronly": d_header_only,
    "magic": d_magic,
}
HASH_MODES = ["checked-hash", "unchecked-hash"]


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory, interpreters):
    """The tree and what CPython did with it: (tree, modules)."""
    tree = str(tmp_path_factory.mktemp("multi") / "tree")
    os.makedirs(tree)
    modules = []
    for damage in DAMAGES:
        for mode in [None] + HASH_MODES:
            name = "m_%s_%s" % (damage, (mode or "timestamp").replace("-", ""))
            src = make_module(tree, name, "v1", padding="x = 1\n")
            set_mtime(src)
            modules.append((name, damage, mode))
    for interp in interpreters:
        for name, damage, mode in modules:
            src = os.path.join(tree, name + ".py")
            use_mode = mode if (interp.major, interp.minor) >= (3, 7) else None
            compile_source(interp, src, mode=use_mode)
    for name, damage, mode in modules:
        if DAMAGES[damage]:
            DAMAGES[damage](tree, name)
    return tree, [m[0] for m in modules]


def test_every_cache_file_as_its_interpreter_sees_it(pycache, interpreters, big_tree):
    tree, modules = big_tree
    r = pycache("check", "--json", "-v", "--fail-on", "none", tree)
    assert r.returncode == 0, r.stderr
    report = {o["path"]: o for o in r.json()}
    # Interpreters sharing a tag (Debian's and pyenv's 3.11) share files.
    distinct = len({i.tag or i.short for i in interpreters})
    assert len(report) == len(modules) * distinct
    seen = 0
    for interp in interpreters:
        oracle = batch_import(interp, tree, modules)
        for name in modules:
            got = oracle[name]
            mine = [o for o in report.values()
                    if os.path.basename(o["path"]).split(".")[0] == name and
                    o["magic"] is not None and o["python"] == interp.short and
                    (o["tag"] == interp.tag or o["kind"] == "legacy")]
            for o in mine:
                if interp.major == 3 and o["kind"] == "legacy":
                    continue  # another interpreter's legacy file judged by magic
                seen += 1
                path, status = o["path"], o["status"]
                used = got["used"] and os.path.realpath(got["used"]) == os.path.realpath(path)
                ctx = (interp.id, name, o, got["outcome"], got["used"])
                if status == "fresh":
                    assert got["outcome"] == "cache" and used, ctx
                elif status == "stale-used":
                    assert got["outcome"] == "cache" and used and got["printed"] == "v1", ctx
                elif status == "stale":
                    assert got["outcome"] == "source" and got["printed"] != "", ctx
                elif status == "corrupt":
                    assert got["outcome"] == "error", ctx
                elif status == "sourceless":
                    assert got["outcome"] == "sourceless" and used, ctx
                elif status in ("orphan", "shadowed"):
                    assert not used, ctx
                else:
                    pytest.fail("unexpected status %r" % (ctx,))
    assert seen >= len(modules) * len(interpreters) - len(modules)


def test_batched_header_reads_change_no_verdict(pycache, pycache_bin, big_tree):
    """The default output reads headers in io_uring batches (src/engine/headread.c);
    --json (which needs sizes) and PYCACHE_IO_URING=0 read each file on its
    own. All three must agree on every file, and the batches must have run."""
    tree, _ = big_tree
    batched = pycache("check", "--fail-on", "none", tree)
    plain = pycache("check", "--fail-on", "none", tree, env={"PYCACHE_IO_URING": "0"})
    assert batched.returncode == plain.returncode == 0
    assert batched.stdout == plain.stdout
    listed, summary = human_report(batched.stdout)
    report = pycache("check", "--json", "-v", "--fail-on", "none", tree).json()
    assert listed == {o["path"]: (o["status"], o["reason"] or "-")
                      for o in report if o["status"] != "fresh"}
    fresh = sum(o["status"] == "fresh" for o in report)
    assert summary.startswith("%d cache files: %d fresh," % (len(report), fresh))
    if os.environ.get("PYCACHE_VALGRIND"):
        return  # valgrind runs the binary: no strace under it
    if not build_has("io_uring"):
        return  # make PORTABLE=1: no batches to see, only the agreement above
    strace = shutil.which("strace")
    assert strace, "strace is installed by scripts/install-deps"
    log = os.path.join(os.path.dirname(tree), "strace.log")
    env = dict(os.environ)
    # LeakSanitizer (a SAN=1 build) cannot run under ptrace.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    r = subprocess.run([strace, "-f", "-qq", "-e", "trace=io_uring_enter", "-o", log,
                        pycache_bin, "check", "--fail-on", "none", tree],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert r.returncode == 0, r.stderr
    with open(log) as f:
        assert "io_uring_enter(" in f.read()


@needs("io_uring")
def test_cold_page_cache_changes_no_verdict(pycache, pycache_bin, big_tree, tmp_path):
    """With the headers out of the page cache, a batch comes back mostly
    -EAGAIN: the scan then hints the next batches' first pages
    (src/engine/prefetch.c, posix_fadvise WILLNEED) and starts more walks.
    The verdicts must be those of the plain reads, and the hints must have
    been given."""
    if os.environ.get("PYCACHE_VALGRIND"):
        pytest.skip("valgrind runs the binary: no strace under it")
    src, _ = big_tree
    tree = str(tmp_path / "cold")
    for i in range(6):  # several directories: walks to grow into
        shutil.copytree(src, os.path.join(tree, "d%d" % i), symlinks=True)
    plain = pycache("check", "--fail-on", "none", tree,
                    env={"PYCACHE_IO_URING": "0"})
    assert plain.returncode == 0, plain.stderr
    assert sum(1 for _ in os.scandir(os.path.join(tree, "d0", "__pycache__"))) > 64, \
        "one directory must fill more than one batch"
    if not evict(tree):
        pytest.skip("the page cache of %s cannot be dropped (tmpfs?)" % tree)
    log = str(tmp_path / "strace.log")
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    env.pop("PYCACHE_THREADS", None)
    r = subprocess.run([shutil.which("strace"), "-f", "-qq", "-e",
                        "trace=fadvise64,clone,clone3", "-o", log, pycache_bin, "check",
                        "--fail-on", "none", tree],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout_bytes
    with open(log) as f:
        trace = f.read()
    assert "POSIX_FADV_WILLNEED" in trace
    if (os.cpu_count() or 1) >= 2:
        # Two walks on two cores; the cold batches started more.
        assert trace.count("clone") > 1, trace


@needs("io_uring")
def test_header_batches_on_hostile_entries(tool, tmp_path):
    """headread's own promises: a FIFO with a writer (a read would block) and
    a directory fail at once, a symlink is not followed, a short file is
    short, a missing one ENOENT — each per file, the rest read in full."""
    d = tmp_path
    (d / "reg.pyc").write_bytes(bytes(range(40)))
    (d / "short.pyc").write_bytes(b"abc")
    (d / "empty.pyc").write_bytes(b"")
    os.mkfifo(str(d / "fifo.pyc"))
    os.symlink("reg.pyc", str(d / "link.pyc"))
    os.mkdir(str(d / "dir.pyc"))
    names = ["reg.pyc", "fifo.pyc", "short.pyc", "link.pyc", "dir.pyc", "missing.pyc",
             "empty.pyc", "reg.pyc"]
    holder = os.open(str(d / "fifo.pyc"), os.O_RDWR | os.O_NONBLOCK)  # a writer, no data
    try:
        r = subprocess.run([tool("headread_probe"), str(d)] + names,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    finally:
        os.close(holder)
    assert r.returncode == 0, r.stderr
    got = dict(zip(range(len(names)), r.stdout.decode().splitlines()))
    full = "17 " + bytes(range(17)).hex()
    assert got[0] == full and got[7] == full
    assert not got[1][0].isdigit()           # the FIFO: an error, no wait
    assert got[2] == "3 " + b"abc".hex()
    assert got[3] == "ELOOP"
    assert not got[4][0].isdigit()           # a directory cannot be read
    assert got[5] == "ENOENT"
    assert got[6] == "0 "


def test_summary_and_exit_status(pycache, big_tree):
    tree, _ = big_tree
    r = pycache("check", tree)
    assert r.returncode == 1  # orphans, corrupt and stale-used files are there
    last = r.stdout.strip().splitlines()[-1]
    assert "cache files" in last and "orphan" in last and "fresh" in last
    assert pycache("check", "-q", tree).stdout == ""
    assert pycache("check", "--fail-on", "none", tree).returncode == 0
    assert pycache("check", "--fail-on", "fresh", tree).returncode == 1
    r = pycache("check", "--fail-on", "bogus", tree)
    assert r.returncode == 2 and "bogus" in r.stderr


def test_null_separated_paths(pycache, big_tree):
    tree, _ = big_tree
    r = pycache("check", "-0", "--fail-on", "none", tree)
    paths = [p for p in r.stdout_bytes.split(b"\0") if p]
    assert paths and all(os.path.exists(p) for p in paths)
    statuses = {o["path"]: o["status"] for o in pycache("check", "--json", tree).json()}
    assert {os.fsdecode(p) for p in paths} == {p for p, s in statuses.items() if s != "fresh"}


def test_json_fields_are_stable(pycache, big_tree):
    tree, _ = big_tree
    fields = ["path", "status", "reason", "source", "kind", "implementation", "python",
              "tag", "opt", "magic", "mode", "mtime", "source_size", "hash", "size"]
    for o in pycache("check", "--json", "-v", tree).json():
        assert list(o)[:len(fields)] == fields


# ---- --expect: the deployment gate ----------------------------------------------

def test_expect_reports_missing_caches(pycache, interp3, tmp_path):
    tree = str(tmp_path)
    for n in ("a", "b", "c"):
        set_mtime(make_module(tree, n, "v1"))
    compile_source(interp3, os.path.join(tree, "a.py"))
    compile_source(interp3, os.path.join(tree, "b.py"))
    d_mtime(tree, "b")
    r = pycache("check", "--json", "--expect", interp3.short, tree)
    missing = {os.path.basename(o["source"]): o for o in r.json() if o["status"] == "missing"}
    assert set(missing) == {"b.py", "c.py"}
    assert r.returncode == 1
    interp3.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)", tree)
    r = pycache("check", "--expect", interp3.short, tree)
    assert r.returncode == 0, r.stdout


def test_expect_opt_levels(pycache, interp3, tmp_path):
    if (interp3.major, interp3.minor) < (3, 5):
        pytest.skip("opt-N is 3.5+")
    tree = str(tmp_path)
    set_mtime(make_module(tree, "a", "v1"))
    compile_source(interp3, os.path.join(tree, "a.py"), optimize=0)
    r = pycache("check", "--json", "--expect", interp3.short + ":0,1,2", tree)
    missing = sorted(o["path"] for o in r.json() if o["status"] == "missing")
    assert [m.rsplit(".", 2)[-2] for m in missing] == ["opt-1", "opt-2"]


def test_expect_usage_errors(pycache, tmp_path):
    assert pycache("check", "--expect", "3.11:7", str(tmp_path)).returncode == 2
    assert pycache("check", "--expect", "banana", str(tmp_path)).returncode == 2


# ---- prefix trees ----------------------------------------------------------------------

def test_prefix_tree(pycache, interp38, tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    prefix = str(tmp_path / "prefix")
    for n in ("a", "b"):
        set_mtime(make_module(str(tree), n, "v1"))
    interp38.run("import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)",
                 str(tree), flags=["-X", "pycache_prefix=" + prefix])
    os.unlink(str(tree / "b.py"))
    r = pycache("check", "--json", "-v", "--prefix", prefix, str(tree))
    got = {os.path.basename(o["path"]): (o["status"], o["kind"]) for o in r.json()}
    assert got == {"a.%s.pyc" % interp38.tag: ("fresh", "prefix"),
                   "b.%s.pyc" % interp38.tag: ("orphan", "prefix")}
    # The whole prefix tree when no PATH is given (it also holds the stdlib
    # caches the interpreter wrote while starting with that prefix).
    r2 = pycache("check", "--json", "-v", "--prefix", prefix)
    whole = {o["path"]: o["status"] for o in r2.json()}
    assert {o["path"] for o in r.json()} < set(whole)
    assert sorted(set(whole.values())) == ["fresh", "orphan"]


# ---- what is skipped, and the hostile basics ------------------------------------------

def test_default_skips(pycache, interp3, tmp_path):
    tree = str(tmp_path)
    for d in (".git", "node_modules", "venv", "lib/venv"):
        os.makedirs(os.path.join(tree, d, "__pycache__"))
        open(os.path.join(tree, d, "__pycache__", "x.%s.pyc" % interp3.tag), "wb").close()
    open(os.path.join(tree, "venv", "pyvenv.cfg"), "w").close()
    r = pycache("check", "--json", tree)
    # lib/venv has no pyvenv.cfg: the stdlib's own venv package is not a virtualenv.
    assert [os.path.relpath(o["path"], tree) for o in r.json()] == \
        ["lib/venv/__pycache__/x.%s.pyc" % interp3.tag]
    r = pycache("check", "--json", "--no-default-ignores", "--include-venvs", tree)
    assert len(r.json()) == 4
    r = pycache("check", "--json", "--ignore", "lib", tree)
    assert r.json() == []


def test_foreign_and_temp(pycache, interp3, tmp_path):
    tree = str(tmp_path)
    set_mtime(make_module(tree, "a", "v1"))
    pyc = compile_source(interp3, os.path.join(tree, "a.py"))
    shutil.copy(pyc, pyc + ".1234567")
    with open(os.path.join(tree, "__pycache__", "README"), "w") as f:
        f.write("hello")
    r = pycache("check", "--json", tree)
    got = sorted((os.path.basename(o["path"]), o["status"]) for o in r.json())
    assert got == [("README", "foreign"), (os.path.basename(pyc) + ".1234567", "temp")]


def test_symlink_loop_and_unreadable_dir(pycache, interp3, open_tmp):
    tree = os.path.join(open_tmp, "t")
    os.makedirs(os.path.join(tree, "a", "b"))
    os.symlink("..", os.path.join(tree, "a", "b", "loop"))
    os.symlink(tree, os.path.join(tree, "a", "up"))
    set_mtime(make_module(os.path.join(tree, "a"), "m", "v1"))
    compile_source(interp3, os.path.join(tree, "a", "m.py"))
    r = pycache("check", "--json", "-v", tree)
    assert r.returncode == 0, r.stderr
    assert len(r.json()) == 1
    locked = os.path.join(tree, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o000)
    r = run_unprivileged("check", "--json", "-v", tree)
    assert r.returncode == 3, r.stderr
    rows = r.json()
    assert len([o for o in rows if o["status"] != "error"]) == 1  # the walk went on
    assert [o["path"] for o in rows if o["status"] == "error"] == [locked]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "locked" in err[0] and "Permission denied" in err[0], err


def test_tree_deeper_than_path_max(pycache, interp3, tmp_path):
    """A tree far deeper than PATH_MAX (4096): every level is walked."""
    top = str(tmp_path / "deep")
    os.makedirs(top)
    fd = os.open(top, os.O_RDONLY)
    name = "d" * 200
    depth = 60  # 60 * 201 bytes > 12000 > PATH_MAX
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.mkdir("__pycache__", dir_fd=fd)
        pfd = os.open("__pycache__", os.O_RDONLY, dir_fd=fd)
        with open(os.open("x.%s.pyc" % interp3.tag, os.O_WRONLY | os.O_CREAT, 0o644,
                          dir_fd=pfd), "wb") as f:
            f.write(interp3.magic_bytes + b"\0" * 12)
        os.close(pfd)
    finally:
        os.close(fd)
    r = pycache("check", "--json", "--fail-on", "all", top)
    assert r.returncode == 1, r.stderr
    (o,) = r.json()
    assert o["status"] == "orphan" and len(o["path"]) > 4096
    subprocess_rm(top)


def subprocess_rm(path):
    import subprocess
    subprocess.run(["rm", "-rf", path], check=True)


def test_non_utf8_names_round_trip(pycache, interp3, tmp_path):
    tree = os.fsencode(str(tmp_path))
    name = b"caf\xe9_\xed\xa0\x80"
    pycdir = os.path.join(tree, b"__pycache__")
    os.makedirs(pycdir)
    cache = os.path.join(pycdir, name + b"." + interp3.tag.encode() + b".pyc")
    with open(cache, "wb") as f:
        f.write(interp3.magic_bytes + b"\0" * 12)
    r = pycache("check", "--json", tree)
    (o,) = r.json()
    assert os.fsencode(o["path"]) == cache
    assert os.fsencode(o["source"]) == os.path.join(tree, name + b".py")
    assert "\n" not in r.stdout.strip()


def test_roots_that_are_cache_files_or_pycache_dirs(pycache, interp3, tmp_path):
    """A PATH may be one cache file or a __pycache__ directory itself (even
    as '.', known only by its real path): judged exactly as in a walk."""
    tree = str(tmp_path)
    set_mtime(make_module(tree, "a", "v1"))
    pyc = compile_source(interp3, os.path.join(tree, "a.py"))
    want = [(o["status"], o["kind"], o["source"])
            for o in pycache("check", "--json", "-v", tree).json()]
    assert want == [("fresh", "pycache", os.path.join(tree, "a.py"))]
    for args, cwd in [([pyc], None), ([os.path.dirname(pyc)], None),
                      (["."], os.path.dirname(pyc)),
                      ([os.path.basename(pyc)], os.path.dirname(pyc))]:
        r = pycache("check", "--json", "-v", *args, cwd=cwd)
        (o,) = r.json()
        assert (o["status"], o["kind"]) == ("fresh", "pycache"), (args, o)
        src = os.path.join(cwd, o["source"]) if cwd else o["source"]
        assert os.path.samefile(src, os.path.join(tree, "a.py"))


def test_symlinked_source_is_a_source(pycache, interp3, tmp_path):
    """importlib stats sources through symlinks: a linked NAME.py is a
    module, so --expect wants its cache, and its cache is fresh."""
    tree = str(tmp_path / "t")
    os.makedirs(tree)
    real = make_module(str(tmp_path), "real", "v1")
    set_mtime(real)
    os.symlink(real, os.path.join(tree, "linked.py"))
    r = pycache("check", "--json", "--expect", interp3.short, tree)
    assert [os.path.basename(o["source"]) for o in r.json()] == ["linked.py"]
    compile_source(interp3, os.path.join(tree, "linked.py"))
    r = pycache("check", "--json", "-v", "--expect", interp3.short, tree)
    assert [o["status"] for o in r.json()] == ["fresh"]
    assert r.returncode == 0


def test_same_verdicts_whatever_the_threads(pycache, interp3, tmp_path):
    """A parallel scan hands directories to other threads, at depth 1 and,
    while a thread waits, deeper: what it finds is what a single-threaded
    scan finds."""
    interp = interp3
    root = tmp_path / "t"
    # One subtree much larger than its siblings, nested, so deeper
    # directories are handed over; some damage so not everything is fresh.
    for d in ["small1", "small2"] + ["big/sub%d/inner%d" % (i, k) for i in range(6)
                                     for k in range(3)]:
        (root / d).mkdir(parents=True)
        for m in range(4):
            (root / d / ("m%d.py" % m)).write_text("X = %r\n" % d)
    subprocess.run([interp.path, "-m", "compileall", "-q", str(root)], check=True)
    for p in list(root.glob("big/sub1/inner*/m0.py")):
        p.write_text("X = 'edited, longer than before'\n")
    for p in list(root.glob("big/sub2/inner*/m1.py")):
        p.unlink()
    outputs = set()
    for threads in ["1", "2", "4"]:
        r = pycache("check", "--json", "-v", "--fail-on", "all", str(root),
                    env={"PYCACHE_THREADS": threads})
        assert r.returncode == 1, r.stderr
        outputs.add(r.stdout)  # the same bytes, in the same order
    assert len(outputs) == 1


@needs("o_noatime")
def test_reads_leave_access_times_alone(pycache, interpreters, open_tmp):
    """On a relatime mount (the default) a read updates a file's atime when
    that is not newer than its mtime or ctime, as after any cp -a or chmod:
    every cache a check read would look used, and its inode be written back.
    pycache opens what it reads with O_NOATIME, which the kernel grants to
    the file's owner (src/platform/noatime.c); a file that is not the caller's is
    read all the same, without it."""
    interp = next(i for i in interpreters if (i.major, i.minor) >= (3, 7))
    tree = os.path.join(open_tmp, "t")
    os.makedirs(tree)
    ts = make_module(tree, "ts", "v1")
    hs = make_module(tree, "hs", "v1")
    files = [ts, hs, compile_source(interp, ts),
             compile_source(interp, hs, mode="checked-hash")]
    probe = make_module(open_tmp, "probe", "v1")

    def age(paths):
        for p in paths:  # atime an hour before mtime (ctime: now)
            st = os.stat(p)
            os.utime(p, ns=(st.st_mtime_ns - 3600 * 10**9, st.st_mtime_ns))
        return {p: os.stat(p).st_atime_ns for p in paths}

    probe_before = age([probe])
    with open(probe, "rb") as f:
        f.read(1)
    if os.stat(probe).st_atime_ns == probe_before[probe]:
        pytest.skip("this mount does not update access times on read (noatime)")

    before = age(files)
    runs = [
        (["check", "-v", tree], {}),                                  # batched reads
        (["check", "-v", tree], {"PYCACHE_IO_URING": "0"}),           # one by one
        (["check", "--json", "--check-hash-based-pycs", "always", tree], {}),  # + source
        (["compile", "--python", interp.path, "--invalidation-mode", "timestamp", "-n",
          ts], {}),
        (["compile", "--python", interp.path, "--invalidation-mode", "checked-hash", "-n",
          hs], {}),
        (["inspect", files[3]], {}),
    ]
    for argv, env in runs:
        r = pycache(*argv, env=env)
        assert r.returncode == 0, (argv, r.stderr)
        assert {p: os.stat(p).st_atime_ns for p in files} == before, argv

    # Not the caller's files: O_NOATIME is refused (EPERM), and they are read
    # without it, with the same verdicts.
    mine = pycache("check", "--json", "--check-hash-based-pycs", "always", tree).json()
    for env in ({}, {"PYCACHE_IO_URING": "0"}):
        theirs = run_unprivileged("check", "--json", "--check-hash-based-pycs", "always",
                                  tree, env=env)
        assert theirs.returncode == 0, theirs.stderr
        assert theirs.json() == mine
        assert theirs.stderr == ""
