"""The tree engine (pyc_walk) against find(1) and os.walk.

tests/tools/walk_probe walks roots and prints one NUL-terminated record per
entry ("F <type> <path>", "D d <path>", "P d <path>", "E <type> <errno> <op>
<path>"); these tests compare what it reports with GNU find -P/-H and with
Python's os.walk on trees with hostile names, deep paths, symlinks,
unreadable directories, real venvs and real git repositories.
"""

import errno
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import build_has


def probe(tool, *args, **kw):
    """Runs walk_probe; returns the list of records as tuples of bytes."""
    argv = [tool("walk_probe")] + [a if isinstance(a, bytes) else str(a) for a in args]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=300, **kw)
    assert proc.returncode == 0, proc.stderr
    records = []
    for rec in proc.stdout.split(b"\0")[:-1]:
        kind = rec[:1]
        if kind == b"E":
            _, typ, err, op, path = rec.split(b" ", 4)
            records.append((kind, typ, path, int(err), op))
        else:
            _, typ, path = rec.split(b" ", 2)
            records.append((kind, typ, path))
    return records


def find(*args, **kw):
    """find ARGS -printf '%y %p\\0' -> set of (type, path)."""
    env = dict(os.environ, LC_ALL="C")
    proc = subprocess.run(["find"] + list(args) + ["-printf", r"%y %p\0"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out = set()
    for rec in proc.stdout.split(b"\0")[:-1]:
        typ, path = rec.split(b" ", 1)
        out.add((typ, path))
    return out, proc


def listed(records):
    """What find would print: files and directories (pre-order), with types."""
    return {(r[1], r[2]) for r in records if r[0] in (b"F", b"D")}


def os_walk_paths(root):
    """Every path os.walk (no symlink following) reports under ROOT, ROOT included."""
    out = {root}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in dirnames + filenames:
            out.add(os.path.join(dirpath, n))
    return out


def check_order(records):
    """DIR_PRE before everything below, DIR_POST after; a directory's files
    before its subdirectories; every DIR_PRE has exactly one DIR_POST."""
    pre, post = {}, {}
    for i, r in enumerate(records):
        if r[0] == b"D":
            assert r[2] not in pre
            pre[r[2]] = i
        elif r[0] == b"P":
            assert r[2] not in post
            post[r[2]] = i
    assert set(pre) == set(post)
    first_subdir = {}
    for path, i in pre.items():
        parent = os.path.dirname(path)
        if parent in pre:
            first_subdir[parent] = min(first_subdir.get(parent, i), i)
    for i, r in enumerate(records):
        parent = os.path.dirname(r[2])
        if parent in pre and r[2] not in (parent,):
            assert pre[parent] < i < post[parent], r
        if r[0] == b"F" and parent in first_subdir:
            assert i < first_subdir[parent], r
        if r[0] == b"D":
            assert pre[r[2]] < post[r[2]]


# Names the shell and naive tools get wrong: newlines, bytes that are not
# UTF-8, leading dashes, spaces, backslashes, globs, the longest name allowed.
HOSTILE = [b"new\nline", b"\xff\xfe not utf-8", b"-leading", b"--", b"-",
           b" space ", b"back\\slash", b"star*?[x]", b"\xc3\xa9t\xc3\xa9",
           b"n" * 255, b"..dots", b".hidden", b"tab\there", b"quote'\""]


def make_hostile_tree(root):
    os.makedirs(root)
    for name in HOSTILE:
        d = os.path.join(root, name)
        os.mkdir(d)
        for sub in HOSTILE[:5]:
            with open(os.path.join(d, sub), "wb") as f:
                f.write(b"x")
        os.mkdir(os.path.join(d, b"__pycache__"))
        open(os.path.join(d, b"__pycache__", name[:200] + b".cpython-311.pyc"), "wb").close()
        os.mkdir(os.path.join(d, b"empty"))
    # More entries than one 64 KiB getdents64 batch holds.
    big = os.path.join(root, b"big")
    os.mkdir(big)
    for i in range(3000):
        open(os.path.join(big, b"module_%04d_with_a_longish_name.py" % i), "wb").close()
        if i % 100 == 0:
            os.mkdir(os.path.join(big, b"pkg_%04d" % i))
    # Symlinks: to a directory, to a file, dangling, a loop; a fifo.
    os.symlink(b"big", os.path.join(root, b"link-to-dir"))
    os.symlink(b"../" + HOSTILE[0], os.path.join(root, HOSTILE[1], b"link-up"))
    os.symlink(b".", os.path.join(root, b"loop"))
    os.symlink(b"nowhere", os.path.join(root, b"dangling"))
    os.symlink(os.path.join(b"big", b"module_0000_with_a_longish_name.py"),
               os.path.join(root, b"link-to-file"))
    os.mkfifo(os.path.join(root, b"fifo"))


def test_hostile_names_match_find_and_os_walk(tool, tmp_path):
    root = os.path.join(os.fsencode(str(tmp_path)), b"tree")
    make_hostile_tree(root)
    records = probe(tool, root)
    assert not [r for r in records if r[0] == b"E"]
    want, proc = find("-P", root)
    assert proc.returncode == 0
    assert listed(records) == want
    assert {r[2] for r in records if r[0] != b"P"} == os_walk_paths(root)
    check_order(records)
    # Directory symlinks are files of type l, never entered.
    assert (b"F", b"l", os.path.join(root, b"link-to-dir")) in records
    assert not any(r[2].startswith(os.path.join(root, b"link-to-dir") + b"/")
                   for r in records)
    assert (b"F", b"p", os.path.join(root, b"fifo")) in records


def test_max_fds_and_verify(tool, tmp_path):
    """The same tree with the fewest fds; every entry's parent chain checked
    (pyc_walk_dir_fd / _path / _name) by the probe's --verify."""
    root = os.path.join(os.fsencode(str(tmp_path)), b"tree")
    make_hostile_tree(root)
    a = probe(tool, root)
    b = probe(tool, "--max-fds", 3, "--verify", root)
    assert not [r for r in b if r[0] in (b"X", b"E")]
    assert a == b


def test_deeper_than_path_max_matches_find(tool, tmp_path):
    root = os.path.join(os.fsencode(str(tmp_path)), b"deep")
    os.mkdir(root)
    fd = os.open(root, os.O_RDONLY)
    name = b"d" * 200
    try:
        for i in range(300):
            os.mkdir(name, dir_fd=fd)
            if i % 50 == 0:
                os.close(os.open(b"file%d" % i, os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open(b"leaf", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    finally:
        os.close(fd)
    records = probe(tool, "--max-fds", 8, "--verify", root)
    assert not [r for r in records if r[0] in (b"X", b"E")]
    want, proc = find("-P", root)
    assert proc.returncode == 0
    assert listed(records) == want
    assert max(len(r[2]) for r in records) > 4 * 4096
    check_order(records)


def test_roots_like_find_h(tool, tmp_path):
    """Roots: a directory, a symlink to one (followed, as find -H), a file,
    a symlink to a file, a dangling symlink; a missing root is an error."""
    base = os.fsencode(str(tmp_path))
    d = os.path.join(base, b"d")
    os.makedirs(os.path.join(d, b"sub"))
    open(os.path.join(d, b"sub", b"x.py"), "wb").close()
    os.symlink(b"d", os.path.join(base, b"ld"))
    open(os.path.join(base, b"f.py"), "wb").close()
    os.symlink(b"f.py", os.path.join(base, b"lf"))
    os.symlink(b"nowhere", os.path.join(base, b"dangling"))
    roots = [os.path.join(base, n) for n in (b"d", b"ld", b"f.py", b"lf", b"dangling")]
    records = probe(tool, *roots)
    want, proc = find("-H", *roots)
    assert proc.returncode == 0
    assert listed(records) == want
    # The trailing slash of a root is kept and not doubled, as find prints.
    slashed = probe(tool, d + b"/")
    want, _ = find("-H", d + b"/")
    assert listed(slashed) == want

    missing = os.path.join(base, b"missing")
    records = probe(tool, missing, d)
    assert records[0] == (b"E", b"U", missing, errno.ENOENT, b"open")
    want, proc = find("-H", missing, d)
    assert proc.returncode == 1 and b"No such file or directory" in proc.stderr
    assert listed(records) == want


def _as_nobody():
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def test_unreadable_directories_like_find(tool):
    """Run as an unprivileged user (root bypasses modes): each directory find
    cannot read is an error entry with EACCES, and the rest is walked."""
    preexec = _as_nobody if os.geteuid() == 0 else None
    try:
        subprocess.run(["true"], preexec_fn=preexec, check=True)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot drop privileges")
    # pytest's tmp_path lies under a 0700 directory: use one nobody can reach.
    base = os.fsencode(tempfile.mkdtemp(prefix="test_walk."))
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, b"tree")
        for d in (b"ok", b"locked", b"noread", b"ok/inner", b"locked/deep"):
            os.makedirs(os.path.join(root, d))
            open(os.path.join(root, d, b"f.py"), "wb").close()
        os.chmod(os.path.join(root, b"locked"), 0)
        os.chmod(os.path.join(root, b"noread"), 0o311)  # searchable, not listable
        records = probe(tool, root, preexec_fn=preexec)
        want, fproc = find("-P", root, preexec_fn=preexec)
    finally:
        for d in (b"locked", b"noread"):
            try:
                os.chmod(os.path.join(base, b"tree", d), 0o755)
            except OSError:
                pass
        shutil.rmtree(base)
    errors = {(r[2], r[3], r[4]) for r in records if r[0] == b"E"}
    assert errors == {(os.path.join(root, b"locked"), errno.EACCES, b"open"),
                      (os.path.join(root, b"noread"), errno.EACCES, b"open")}
    # find names the same directories in its errors.
    assert fproc.returncode == 1
    for path, _, _ in errors:
        assert b"'" + path + b"': Permission denied" in fproc.stderr
    # find lists an unreadable directory itself; we deliver it as the error.
    got = listed(records) | {(b"d", p) for p, _, _ in errors}
    assert got == want
    check_order(records)


def test_prune_like_find(tool, tmp_path):
    root = os.path.join(os.fsencode(str(tmp_path)), b"tree")
    for d in (b"a/__pycache__", b"b/c/__pycache__", b"b/__pycache__x"):
        os.makedirs(os.path.join(root, d))
        open(os.path.join(root, d, b"m.pyc"), "wb").close()
    records = probe(tool, "--prune", "__pycache__", root)
    want, _ = find("-P", root, "-name", "__pycache__", "-prune", "-o", "-true")
    # find -prune still prints the pruned directory (the -printf applies to
    # the -o branch only for the rest): add it back.
    want |= {(b"d", os.path.join(root, d)) for d in (b"a/__pycache__", b"b/c/__pycache__")}
    assert listed(records) == want
    assert (b"P", b"d", os.path.join(root, b"a/__pycache__")) not in records


def test_skip_vcs_real_git_repository(tool, tmp_path):
    if not shutil.which("git"):
        pytest.skip("git not installed")
    root = os.path.join(os.fsencode(str(tmp_path)), b"repo")
    os.makedirs(os.path.join(root, b"pkg"))
    open(os.path.join(root, b"pkg", b"m.py"), "wb").close()
    subprocess.run(["git", "init", "-q", root], check=True)
    assert os.path.isdir(os.path.join(root, b".git"))
    records = probe(tool, "--skip-vcs", root)
    want, _ = find("-P", root, "-name", ".git", "-type", "d", "-prune", "-o", "-true")
    assert listed(records) == want
    assert not any(b"/.git" in r[2] for r in records)
    assert any(b"/.git/" in r[2] for r in probe(tool, root))


def test_skip_venvs_decided_like_the_probes(tool, tmp_path):
    """--skip-venvs skips a directory holding a regular file pyvenv.cfg
    (followed) or a directory conda-meta (not followed). The walk decides
    from the directory's listing where that is exact (no name that could be
    either, the whole listing read) and asks by name otherwise: every case
    here must come out as the rule says, including listings larger than
    the walk's 64 KiB buffer and names only a case-insensitive lookup
    would match."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "target.cfg").write_text("home = /usr\n")
    (root / "metadir").mkdir()
    cases = {
        "venv": lambda d: (d / "pyvenv.cfg").write_text("home = /usr\n"),
        "venv_link": lambda d: os.symlink("../target.cfg", str(d / "pyvenv.cfg")),
        "cfg_dir": lambda d: (d / "pyvenv.cfg").mkdir(),
        "cfg_dangling": lambda d: os.symlink("../nowhere", str(d / "pyvenv.cfg")),
        "cfg_upper": lambda d: (d / "PYVENV.CFG").write_text(""),
        "conda": lambda d: (d / "conda-meta").mkdir(),
        "conda_file": lambda d: (d / "conda-meta").write_text(""),
        "conda_link": lambda d: os.symlink("../metadir", str(d / "conda-meta")),
        "non_ascii": lambda d: (d / "caf\u00e9.txt").write_text(""),
        "plain": lambda d: None,
    }
    long = "x" * 120
    for name, make in cases.items():
        for big in (False, True):
            d = root / (name + ("_big" if big else ""))
            d.mkdir()
            (d / "sub").mkdir()
            (d / "sub" / "f.py").write_text("")
            if big:  # ~800 entries of ~140 bytes: more than one getdents64 buffer
                for k in range(800):
                    (d / ("%s%04d" % (long, k))).write_text("")
            make(d)

    def is_venv(d):
        return (os.path.isfile(os.path.join(d, b"pyvenv.cfg")) or
                (os.path.isdir(os.path.join(d, b"conda-meta")) and
                 not os.path.islink(os.path.join(d, b"conda-meta"))))

    broot = os.fsencode(str(root))
    venvs = {os.path.join(broot, n) for n in os.listdir(broot)
             if os.path.isdir(os.path.join(broot, n)) and is_venv(os.path.join(broot, n))}
    assert {os.path.basename(v) for v in venvs} == {
        b"venv", b"venv_big", b"venv_link", b"venv_link_big", b"conda", b"conda_big"}
    got = probe(tool, "--skip-venvs", root)
    everything, _ = find("-P", broot)
    want = {(t, p) for t, p in everything
            if not any(p == v or p.startswith(v + b"/") for v in venvs)}
    assert listed(got) == want
    if os.environ.get("PYCACHE_VALGRIND") or not build_has("getdents64"):
        return
    # The listing decided where it could: no name asked of a directory
    # whose whole listing fit and has no candidate name.
    log = str(tmp_path / "strace.log")
    env = dict(os.environ)
    # LeakSanitizer (a SAN=1 build) cannot run under ptrace.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=newfstatat,fstatat64,statx",
                        "-o", log, tool("walk_probe"), "--skip-venvs", str(root)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert r.returncode == 0, r.stderr
    with open(log) as f:
        asked = f.read().count('"pyvenv.cfg"')
    # Asked: the ten _big directories (their listings overflow the buffer)
    # and the nine others but plain (a candidate name: pyvenv.cfg or
    # conda-meta in any case, or a name that is not ASCII); not plain,
    # metadir, nor any sub/.
    assert asked == 19, asked


def test_skip_venvs_real_venv(tool, tmp_path, interp3):
    """A directory made by `python -m venv` (which CPython recognises as a
    venv: sys.prefix != sys.base_prefix, site.venv reads its pyvenv.cfg) is
    not entered with --skip-venvs; nothing else is skipped."""
    base = os.fsencode(str(tmp_path))
    root = os.path.join(base, b"proj")
    os.makedirs(os.path.join(root, b"src"))
    open(os.path.join(root, b"src", b"m.py"), "wb").close()
    venv = os.path.join(root, b".venv")
    r = interp3.run("import sys, venv; venv.main(sys.argv[1:])",
                    "--without-pip", os.fsdecode(venv), check=False)
    if r.returncode != 0:
        pytest.skip("venv creation failed: %r" % r.stderr[-200:])
    py = os.path.join(venv, b"bin", b"python")
    out = subprocess.run([py, "-c", "import sys; print(sys.prefix != getattr(sys, 'base_prefix', sys.prefix))"],
                         stdout=subprocess.PIPE, check=True)
    assert out.stdout.strip() == b"True"
    assert os.path.isfile(os.path.join(venv, b"pyvenv.cfg"))

    everything = probe(tool, root)
    skipped = probe(tool, "--skip-venvs", root)
    want, _ = find("-P", root, "-path", venv, "-prune", "-o", "-true")
    want.discard((b"d", venv))
    assert listed(skipped) == want
    assert not any(r[2] == venv or r[2].startswith(venv + b"/") for r in skipped)
    assert any(r[2].startswith(venv + b"/") for r in everything)
    # The venv itself, named as a root, is walked.
    assert any(r[2] == os.path.join(venv, b"pyvenv.cfg")
               for r in probe(tool, "--skip-venvs", venv))


def test_ignore_and_node_modules(tool, tmp_path):
    root = os.path.join(os.fsencode(str(tmp_path)), b"tree")
    for d in (b"node_modules/x", b"build/lib", b"src/build", b"src/ok"):
        os.makedirs(os.path.join(root, d))
        open(os.path.join(root, d, b"f.py"), "wb").close()
    open(os.path.join(root, b"src", b"node_modules"), "wb").close()  # a file
    records = probe(tool, "--skip-node-modules", "--ignore", "build", root)
    want, _ = find("-P", root, "-type", "d", "(", "-name", "node_modules",
                   "-o", "-name", "build", ")", "-prune", "-o", "-true")
    want -= {(b"d", os.path.join(root, d))
             for d in (b"node_modules", b"build", b"src/build")}
    assert listed(records) == want
    assert (b"F", b"f", os.path.join(root, b"src/node_modules")) in records


def test_filesystem_without_d_type(tool, tmp_path):
    """ext2 made without the filetype feature returns DT_UNKNOWN for every
    entry: each is resolved with fstatat and the result still matches find.
    Needs root, mke2fs and loop devices (in a private mount namespace)."""
    for prog in ("mke2fs", "unshare", "mount"):
        if not shutil.which(prog):
            pytest.skip("%s not installed" % prog)
    base = os.fsencode(str(tmp_path))
    src = os.path.join(base, b"src")
    make_hostile_tree(src)
    os.unlink(os.path.join(src, b"fifo"))
    img = os.path.join(base, b"img")
    mnt = os.path.join(base, b"mnt")
    os.mkdir(mnt)
    r = subprocess.run(["mke2fs", "-q", "-t", "ext2", "-O", "^filetype", "-d", src,
                        img, "16M"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("mke2fs failed: %r" % r.stderr[-200:])
    out_probe = os.path.join(base, b"probe.out")
    out_find = os.path.join(base, b"find.out")
    script = ('mount -o loop,ro "$1" "$2" || exit 77; '
              '"$3" "$2" > "$4" || exit 1; '
              'LC_ALL=C find -P "$2" -printf "%y %p\\0" > "$5" || exit 1')
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", img, mnt,
                        tool("walk_probe"), out_probe, out_find],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode == 77 or (r.returncode != 0 and b"unshare" in r.stderr):
        pytest.skip("cannot mount a loop device here: %r" % r.stderr[-200:])
    assert r.returncode == 0, r.stderr
    with open(out_find, "rb") as f:
        want = {tuple(rec.split(b" ", 1)) for rec in f.read().split(b"\0")[:-1]}
    with open(out_probe, "rb") as f:
        records = [tuple(rec.split(b" ", 2)) for rec in f.read().split(b"\0")[:-1]]
    assert not [rec for rec in records if rec[0] == b"E"]
    assert listed(records) == want
    assert (b"F", b"l", os.path.join(mnt, b"link-to-dir")) in records
    check_order(records)
