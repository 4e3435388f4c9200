"""The command-line contract every tree command shares (issue 11).

One shared layer (src/cli/treeopts.c, src/engine/listing.c, report.c) gives
every tree command the same options, the same output order and the same
error records; these tests pin that contract on small trees made by real
interpreters, command by command, so a command that drifts from it fails
here.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import human_report, run_unprivileged
from oracle import batch_import, compile_source, make_module

TREE_COMMANDS = ["check", "prune", "clean", "stats", "compile", "convert", "verify", "watch"]


def compiled_tree(root, interp, names=("a", "b", "c")):
    """ROOT/pkg with NAMES compiled by INTERP, plus an orphan, a sub-package
    and a sourceless legacy pyc: something of every common kind."""
    pkg = os.path.join(root, "pkg")
    sub = os.path.join(pkg, "sub")
    os.makedirs(sub)
    for d in (pkg, sub):
        open(os.path.join(d, "__init__.py"), "w").close()
        for n in names:
            compile_source(interp, make_module(d, n, n))
        compile_source(interp, os.path.join(d, "__init__.py"))
    gone = make_module(pkg, "gone", "gone")
    compile_source(interp, gone)
    os.unlink(gone)
    legacy = make_module(sub, "old", "old")
    compile_source(interp, legacy, legacy=True)
    os.unlink(legacy)
    return pkg


def big_tree(root, interp, dirs=24):
    """Many directories, so a scan runs several walks (PYCACHE_THREADS=4)
    and meets them in an order that changes from run to run."""
    for i in range(dirs):
        d = os.path.join(root, "d%02d" % i, "inner")
        os.makedirs(d)
        for n in ("x", "y"):
            make_module(d, n, n)
        with open(os.path.join(d, "z.py"), "w") as f:
            f.write("z = 1\n")
    subprocess.run([interp.path, "-m", "compileall", "-q", root], check=True,
                   stdout=subprocess.DEVNULL)
    for i in range(0, dirs, 3):
        os.unlink(os.path.join(root, "d%02d" % i, "inner", "y.py"))


# ---- output order -------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("check", "-v", "--json"),
    ("check", "-v"),
    ("check", "-0", "--fail-on", "none"),
    ("clean", "-n"),
    ("clean", "-n", "--json"),
    ("prune", "-n", "--json"),
    ("prune", "-n", "-v"),
    ("convert", "--to", "checked-hash", "-n", "-v"),
    ("check", "--format=github", "--fail-on", "none"),
])
def test_same_bytes_every_run_sorted_by_path(pycache, interpreters, tmp_path, args):
    interp = [i for i in interpreters if i.major == 3][-1]
    big_tree(str(tmp_path), interp)
    env = {"PYCACHE_THREADS": "4"}
    runs = [pycache(*args, str(tmp_path), env=env) for _ in range(3)]
    assert runs[0].stdout_bytes, runs[0].stderr
    assert runs[0].stdout_bytes == runs[1].stdout_bytes == runs[2].stdout_bytes
    if "--json" in args:
        paths = [os.fsencode(o["path"]) for o in runs[0].json()]
        assert paths == sorted(paths)
        # A single walk gives the very same bytes.
        one = pycache(*args, str(tmp_path), env={"PYCACHE_THREADS": "1"})
        assert one.stdout_bytes == runs[0].stdout_bytes


def test_listing_larger_than_memory_is_merged_in_order(pycache, interpreters, tmp_path):
    """Past its memory budget (8 MiB) the listing spills sorted runs to a
    temporary file and merges them: 24k long-named files make ~10 MiB of
    JSON, and the output is still one sorted sequence."""
    root = tmp_path / "t"
    pyc = root / "__pycache__"
    pyc.mkdir(parents=True)
    name = "m" * 120
    for i in range(24000):
        (pyc / ("%s%05d.cpython-311.pyc" % (name, (i * 7919) % 24000))).write_bytes(b"")
    r = pycache("check", "-v", "--json", "--fail-on", "none", str(root),
                env={"PYCACHE_THREADS": "2", "TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert len(r.stdout_bytes) > 8 << 20
    paths = [o["path"] for o in r.json()]
    assert len(paths) == 24000 and paths == sorted(paths)


# ---- JSON: what is listed, errors as records ------------------------------------------


def test_json_lists_what_the_human_output_lists(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    compiled_tree(str(tmp_path), interp)
    human, _ = human_report(pycache("check", str(tmp_path)).stdout)
    quiet = pycache("check", "--json", str(tmp_path)).json()
    assert sorted(o["path"] for o in quiet) == sorted(human)
    assert all(o["status"] != "fresh" for o in quiet)
    every = pycache("check", "-v", "--json", str(tmp_path)).json()
    assert {o["status"] for o in every} >= {"fresh", "orphan", "sourceless"}
    # A clean tree prints nothing but lists every file with -v.
    clean = tmp_path / "clean"
    clean.mkdir()
    compile_source(interp, make_module(str(clean), "m", "m"))
    assert pycache("check", "--json", str(clean)).stdout == ""
    assert len(pycache("check", "-v", "--json", str(clean)).json()) == 1


def test_errors_are_json_records_too(pycache, open_tmp):
    locked = os.path.join(open_tmp, "locked")
    os.makedirs(os.path.join(locked, "__pycache__"))
    os.chmod(locked, 0)
    r = run_unprivileged("check", "--json", open_tmp)
    assert r.returncode == 3
    assert "pycache check: cannot open" in r.stderr
    errors = [o for o in r.json() if o["status"] == "error"]
    assert len(errors) == 1
    e = errors[0]
    assert e["path"].endswith("/locked") and e["reason"] == "open"
    assert e["error"] == os.strerror(13)
    assert list(e)[:15] == ["path", "status", "reason", "source", "kind", "implementation",
                            "python", "tag", "opt", "magic", "mode", "mtime", "source_size",
                            "hash", "size"]
    for cmd in (("prune", "-n"), ("clean", "-n"), ("stats",), ("convert", "--to", "checked-hash")):
        r = run_unprivileged(*cmd, "--json", open_tmp)
        assert r.returncode == 3, cmd
        assert [o["status"] for o in r.json() if o.get("status") == "error"] == ["error"], cmd


def test_missing_path_is_an_error_record(pycache, tmp_path):
    r = pycache("check", "--json", str(tmp_path / "nope"))
    assert r.returncode == 3
    (o,) = r.json()
    assert o["status"] == "error" and o["error"] == os.strerror(2)


# ---- the human summary ----------------------------------------------------------------


def test_summary_counts_add_up(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path)
    compile_source(interp, make_module(tree, "a", "a"))
    make_module(tree, "b", "b")  # no cache: missing with --expect
    gone = make_module(tree, "c", "c")
    compile_source(interp, gone)
    os.unlink(gone)
    open(os.path.join(tree, "__pycache__", "notes.txt"), "w").close()
    r = pycache("check", "--expect", interp.short, tree)
    summary = r.stdout.splitlines()[-1]
    assert summary == "2 cache files: 1 fresh, 1 orphan; 1 missing; 1 foreign file", summary
    one = tmp_path / "one"
    one.mkdir()
    compile_source(interp, make_module(str(one), "m", "m"))
    assert pycache("check", str(one)).stdout.splitlines()[-1] == "1 cache file: 1 fresh"


def test_columns_aligned_by_display_width(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path)
    names = ["plain", "caf\u00e9", "\u65e5\u672c", "tab\tname"]
    for n in names:
        src = os.path.join(tree, n + ".py")
        with open(src, "w") as f:
            f.write("x = 1\n")
        compile_source(interp, src)
        os.unlink(src)
    r = pycache("check", ".", cwd=tree)
    import unicodedata

    def width(s):
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

    lines = [l for l in r.stdout.splitlines() if l.startswith("  ")]
    assert len(lines) == 4
    assert any("tab\\tname" in l for l in lines)  # escaped: two columns
    starts = {width(line.split("no-source")[0]) for line in lines}
    assert len(starts) == 1, lines


# ---- one set of options ---------------------------------------------------------------

SHARED = {
    "--json": ["check", "prune", "clean", "stats", "compile", "convert", "verify", "watch"],
    "-0": ["check", "prune", "clean", "compile", "convert", "verify", "watch"],
    "--format": ["check", "prune", "clean", "compile", "convert", "verify"],
    "-q": TREE_COMMANDS,
    "-v": ["check", "prune", "clean", "compile", "convert", "verify", "watch"],
    "--color": TREE_COMMANDS,
    "--ignore": TREE_COMMANDS,
    "--include-venvs": TREE_COMMANDS,
    "--no-default-ignores": TREE_COMMANDS,
    "--one-file-system": TREE_COMMANDS,
    "--prefix": TREE_COMMANDS,
    "-i": ["check", "prune", "clean", "stats", "compile", "convert", "verify"],
}


def help_options(pycache, cmd):
    """The option names `pycache CMD --help` lists, short and long."""
    import re
    names = set()
    for line in pycache(cmd, "--help").stdout.splitlines():
        m = re.match(r"^  (-\w)?(?:, )?\s*(--[\w-]+)?", line)
        if m:
            names.update(n for n in m.groups() if n)
    return names


@pytest.mark.parametrize("option", sorted(SHARED))
def test_shared_options_everywhere_help_says_so(pycache, option):
    for cmd in TREE_COMMANDS:
        listed = option in help_options(pycache, cmd)
        assert listed == (cmd in SHARED[option]), (cmd, option)


def test_stats_says_why_it_lists_no_files(pycache, tmp_path):
    for opt in ("-0", "-v", "--format=github"):
        r = pycache("stats", opt, str(tmp_path))
        assert r.returncode == 2, opt
        assert "pycache stats: unknown option" in r.stderr
    assert pycache("stats", "-q", str(tmp_path)).stdout == ""


@pytest.mark.parametrize("cmd", ["check", "prune", "clean", "stats", "convert", "verify"])
def test_walk_options_parse_for_every_command(pycache, cmd, tmp_path):
    extra = ["--to", "checked-hash"] if cmd == "convert" else []
    for opt in (["--ignore", "build*"], ["--include-venvs"], ["--no-default-ignores"],
                ["--one-file-system"], ["--color=never"], ["-q"], ["--json"]):
        args = [cmd] + extra + opt + (["-n"] if cmd in ("clean", "prune", "convert") else [])
        r = pycache(*args, str(tmp_path))
        assert r.returncode == 0, (args, r.stderr)


def test_dry_runs_exit_1_with_work_found(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path)
    gone = make_module(tree, "g", "g")
    compile_source(interp, gone)
    os.unlink(gone)
    assert pycache("clean", "-n", tree).returncode == 1
    assert pycache("prune", "-n", tree).returncode == 1
    assert os.listdir(os.path.join(tree, "__pycache__"))
    pycache("clean", tree)
    assert pycache("clean", "-n", tree).returncode == 0
    assert pycache("prune", "-n", tree).returncode == 0


def test_messages_name_the_command_and_help_command(pycache, tmp_path):
    r = pycache("prune", str(tmp_path / "nope"))
    assert r.stderr.startswith("pycache prune: cannot "), r.stderr
    for cmd in ("check", "where", "versions", "doctor"):
        assert pycache("help", cmd).stdout == pycache(cmd, "--help").stdout
    assert pycache("help").stdout == pycache("--help").stdout
    r = pycache("help", "chek")
    assert r.returncode == 2 and "did you mean 'check'" in r.stderr


def test_format_github_annotations(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path / "a,b:c")
    os.makedirs(tree)
    gone = make_module(tree, "orph", "o")
    compile_source(interp, gone)
    os.unlink(gone)
    legacy = make_module(tree, "lone", "l")
    compile_source(interp, legacy, legacy=True)
    os.unlink(legacy)
    compile_source(interp, make_module(tree, "ok", "ok"))
    r = pycache("check", "--format=github", tree)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2, lines  # the fresh file is no annotation
    esc = tree.replace(",", "%2C").replace(":", "%3A")
    # In path order: __pycache__/ sorts before lone.pyc.
    assert lines[0].startswith("::warning file=%s/__pycache__/orph." % esc)
    assert "title=pycache%3A orphan::orphan: no-source (" + interp.short + ")" in lines[0]
    assert lines[1].startswith("::error file=%s/lone.pyc,title=pycache%%3A sourceless::" % esc)


# ---- what users reach for -------------------------------------------------------------


def test_source_file_arguments_mean_their_caches(pycache, interpreters, tmp_path):
    tree = str(tmp_path)
    src = make_module(tree, "mod", "m")
    make_module(tree, "other", "o")
    threes = [i for i in interpreters if i.major == 3][-2:]
    for i in threes:
        compile_source(i, src)
        compile_source(i, os.path.join(tree, "other.py"))
    twos = [i for i in interpreters if i.major == 2]
    for i in twos:
        compile_source(i, src)
    r = pycache("check", "-v", "--json", src)
    got = sorted(os.path.basename(o["path"]) for o in r.json())
    want = sorted(["mod.%s.pyc" % i.tag for i in threes] + (["mod.pyc"] if twos else []))
    assert got == want
    assert all(o["status"] == "fresh" for o in r.json())
    # One cache file named: that file alone.
    one = os.path.join(tree, "__pycache__", "other.%s.pyc" % threes[0].tag)
    assert [o["path"] for o in pycache("check", "-v", "--json", one).json()] == [one]
    # clean a.py removes a's caches only; the emptied __pycache__ survives
    # while other's caches are in it.
    r = pycache("clean", src)
    assert r.returncode == 0, r.stderr
    left = sorted(os.listdir(os.path.join(tree, "__pycache__")))
    assert left == sorted("other.%s.pyc" % i.tag for i in threes)
    assert not os.path.exists(os.path.join(tree, "mod.pyc"))
    pycache("clean", os.path.join(tree, "other.py"))
    assert not os.path.exists(os.path.join(tree, "__pycache__"))


def test_prune_a_source_file(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path)
    src = make_module(tree, "mod", "m")
    cache = compile_source(interp, src)
    with open(src, "a") as f:
        f.write("# edited, larger\n")
    r = pycache("prune", src)
    assert r.returncode == 0 and not os.path.exists(cache), r.stdout


def test_from_file_lists(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    pkg = compiled_tree(str(tmp_path), interp)
    a = os.path.join(pkg, "a.py")
    b = os.path.join(pkg, "sub", "b.py")
    # A package file list (dpkg -L, RECORD) names directories too: they are
    # not walked, so only the named sources' caches are visited.
    listing = "\n".join([str(tmp_path), pkg, a, b, ""])
    r = pycache("check", "-v", "--json", "-i", "-", input=listing.encode())
    got = sorted(os.path.basename(o["path"]) for o in r.json())
    assert got == ["a.%s.pyc" % interp.tag, "b.%s.pyc" % interp.tag], got
    nul = pycache("check", "-v", "-0", "-i", "-", input=("%s\0%s\0" % (a, b)).encode())
    assert sorted(nul.stdout_bytes.split(b"\0")[:-1]) == sorted(
        os.fsencode(os.path.join(os.path.dirname(p), "__pycache__",
                                 os.path.basename(p)[:-3] + ".%s.pyc" % interp.tag))
        for p in (a, b))
    lst = tmp_path / "list"
    lst.write_text(listing)
    r = pycache("clean", "-i", str(lst))
    assert r.returncode == 0
    assert not os.path.exists(os.path.join(pkg, "__pycache__", "a.%s.pyc" % interp.tag))
    assert os.path.exists(os.path.join(pkg, "__pycache__", "c.%s.pyc" % interp.tag))
    # An empty list visits nothing (not ".").
    empty = pycache("clean", "-n", "-i", "-", input=b"", cwd=str(tmp_path))
    assert empty.returncode == 0 and "nothing to remove" in empty.stdout
    assert pycache("check", "-i", str(tmp_path / "absent")).returncode == 3


def test_fail_on_all_and_sourceless_deployment(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    tree = str(tmp_path)
    gone = make_module(tree, "orph", "o")
    compile_source(interp, gone)
    os.unlink(gone)
    # Orphans are clutter: not a finding by default, one with --fail-on all.
    assert pycache("check", tree).returncode == 0
    assert pycache("check", "--fail-on", "all", tree).returncode == 1
    shutil.rmtree(os.path.join(tree, "__pycache__"))
    # A sourceless deployment: compile -b, then the sources left out.
    for n in ("app", "util"):
        src = make_module(tree, n, n)
        compile_source(interp, src, legacy=True)
        os.unlink(src)
    assert pycache("check", tree).returncode == 1
    r = pycache("check", "--sourceless-ok", tree)
    assert r.returncode == 0, r.stdout
    assert "sourceless:" not in r.stdout  # not listed as a problem
    assert batch_import(interp, tree, ["app", "util"])["app"]["outcome"] == "sourceless"
    # ... but a damaged one is still a finding.
    with open(os.path.join(tree, "util.pyc"), "r+b") as f:
        f.truncate(6)
    assert pycache("check", "--sourceless-ok", tree).returncode == 1


def test_expect_27_legacy_layout(pycache, interp2, tmp_path):
    tree = str(tmp_path)
    for n in ("a", "b"):
        make_module(tree, n, n)
    compile_source(interp2, os.path.join(tree, "a.py"))
    r = pycache("check", "--json", "--expect", "2.7:0,1", tree)
    assert r.returncode == 1
    missing = sorted((os.path.basename(o["path"]), o["kind"], o["opt"]) for o in r.json())
    assert missing == [("a.pyo", "legacy", 1), ("b.pyc", "legacy", 0), ("b.pyo", "legacy", 1)]
    compile_source(interp2, os.path.join(tree, "b.py"))
    compile_source(interp2, os.path.join(tree, "a.py"), optimize=1)
    compile_source(interp2, os.path.join(tree, "b.py"), optimize=1)
    assert pycache("check", "--expect", "2.7:0,1", tree).returncode == 0


def test_ignore_globs_and_conda_environments(pycache, interpreters, tmp_path):
    interp = [i for i in interpreters if i.major == 3][-1]
    for d in ("build-x", "buildings", "src", "env/conda-meta"):
        os.makedirs(str(tmp_path / d))
    for d in ("build-x", "buildings", "src", "env"):
        gone = make_module(str(tmp_path / d), "m", "m")
        compile_source(interp, gone)
        os.unlink(gone)
    def seen(*opts):
        r = pycache("check", "--json", *opts, str(tmp_path))
        return sorted(o["path"].split("/")[-3] for o in r.json())
    assert seen() == ["build-x", "buildings", "src"]  # env: conda, skipped
    assert seen("--ignore", "build*") == ["src"]
    assert seen("--ignore", "build-?") == ["buildings", "src"]
    assert seen("--include-venvs") == ["build-x", "buildings", "env", "src"]
    assert pycache("check", "--ignore", "a/b", str(tmp_path)).returncode == 2


def test_severity_table_is_shared(pycache):
    """check's default --fail-on, doctor's dangerous check and the
    pre-commit hook agree: the dangerous statuses (and missing, asked for)."""
    help_ = pycache("check", "--help").stdout
    assert "stale-used,sourceless,corrupt, and missing" in " ".join(help_.split())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, ".pre-commit-hooks.yaml")) as f:
        hooks = f.read()
    assert "stale-used,sourceless,corrupt" in hooks
    with open(os.path.join(root, "docs", "DESIGN.md")) as f:
        design = f.read()
    assert "| dangerous | `stale-used`, `sourceless`, `corrupt` |" in design


def run_on_terminal(pycache_bin, args, cwd=None):
    """Runs pycache with its stderr on a pseudo-terminal; returns (status,
    what the terminal got, seconds)."""
    import pty
    import time
    master, slave = pty.openpty()
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    start = time.monotonic()
    p = subprocess.Popen([pycache_bin] + args, stdout=subprocess.DEVNULL, stderr=slave,
                         cwd=cwd, env=env)
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        got += chunk
    status = p.wait()
    os.close(master)
    return status, got, time.monotonic() - start


def test_progress_on_a_terminal_only(pycache_bin, interpreters, tmp_path):
    """Long work shows a progress line on stderr when it is a terminal
    (after a quarter of a second: short runs stay silent), never with -q,
    never into a pipe."""
    interp = [i for i in interpreters if i.major == 3][-1]
    root = str(tmp_path / "t")
    for d in range(30):
        sub = os.path.join(root, "p%02d" % d)
        os.makedirs(sub)
        for m in range(20):
            with open(os.path.join(sub, "m%02d.py" % m), "w") as f:
                f.write("X = [%s]\n" % ", ".join(str(i) for i in range(400)))
    args = ["compile", "-j1", "--python", interp.path, root]
    status, got, seconds = run_on_terminal(pycache_bin, args)
    assert status == 0, got
    if seconds < 0.5:
        pytest.skip("compiled in %.2f s: too fast for a progress line" % seconds)
    assert b"\r\x1b[Kpycache: compiled " in got, got[:400]
    assert got.rstrip(b"\r\n").endswith(b"\r\x1b[K") or b"\x1b[K" in got.splitlines()[-1]
    shutil.rmtree(root)
    for d in range(30):
        sub = os.path.join(root, "p%02d" % d)
        os.makedirs(sub)
        for m in range(20):
            with open(os.path.join(sub, "m%02d.py" % m), "w") as f:
                f.write("X = 1\n")
    status, got, _ = run_on_terminal(pycache_bin, ["compile", "-q", "-j1", "--python",
                                                   interp.path, root])
    assert status == 0 and b"compiled" not in got, got[:400]
    r = subprocess.run([pycache_bin, "compile", "-f", "-j1", "--python", interp.path, root],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b"\x1b[K" not in r.stderr
