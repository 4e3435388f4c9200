"""pycache doctor: the checklist, --fix, --staged.

Each verdict is checked against its oracle: git itself for what is ignored and
tracked (git check-ignore, git status --ignored, git ls-files, with HOME and
XDG_CONFIG_HOME pointing at a temporary directory and GIT_CONFIG_NOSYSTEM=1 so
no configuration of this machine leaks in), and CPython for what bytecode
does (a sourceless pyc is imported, an unchecked-hash pyc is loaded after its
source changed, PYTHONDONTWRITEBYTECODE=0 still turns writing off).
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import Result

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


@pytest.fixture
def gitenv(tmp_path):
    """An environment in which git reads no configuration of this machine:
    an empty HOME and XDG_CONFIG_HOME, no system config; the tests add what
    they need."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
        "LC_ALL": "C.UTF-8",
    }
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PYTHONDONTWRITEBYTECODE",
              "PYTHONPYCACHEPREFIX"):
        env[k] = ""
    return env


def clean_env(extra):
    env = dict(os.environ)
    for k, v in extra.items():
        if v == "":
            env.pop(k, None)
        else:
            env[k] = v
    return env


def git(repo, *args, env=None, check=True):
    return subprocess.run(["git"] + GIT_ID + list(args), cwd=str(repo), env=clean_env(env or {}),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=check)


def doctor(pycache_bin, gitenv, *args, cwd, extra_env=None):
    """Runs pycache doctor in exactly the environment GITENV (+ EXTRA_ENV)
    describes: the variables it sets to "" are removed."""
    env = clean_env(dict(gitenv, NO_COLOR="1", **(extra_env or {})))
    proc = subprocess.run([pycache_bin, "doctor"] + [str(a) for a in args], cwd=str(cwd),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return Result(proc)


def checks(result):
    return {obj["check"]: obj for obj in result.json()}


def compile_pyc(python, source, **kw):
    """Compiles SOURCE with the real interpreter (py_compile, as import would
    write it); returns the cache path."""
    code = ("import py_compile, sys; "
            "print(py_compile.compile(sys.argv[1], doraise=True%s))" % kw.get("extra", ""))
    out = subprocess.run([python, "-c", code, str(source)], check=True,
                         stdout=subprocess.PIPE).stdout.decode().strip()
    return out


def tree_digest(root):
    """sha256 of every file under ROOT (not .git/), by relative path."""
    digest = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, str(root))] = hashlib.sha256(f.read()).hexdigest()
    return digest


def make_repo(tmp_path, gitenv):
    """A repository with sources and their fresh caches, all committed, and no
    ignore rules: what doctor exists to catch."""
    repo = tmp_path / "proj"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "m.py").write_text("VALUE = 1\n")
    (repo / "app.py").write_text("import pkg.m\n")
    git(repo, "init", "-q", ".", env=gitenv)
    caches = [compile_pyc(sys.executable, repo / "pkg" / "m.py"),
              compile_pyc(sys.executable, repo / "pkg" / "__init__.py")]
    git(repo, "add", "-A", env=gitenv)
    git(repo, "commit", "-q", "-m", "init", env=gitenv)
    return repo, [os.path.relpath(c, str(repo)) for c in caches]


# ---- the checklist in a repository --------------------------------------------------------

def test_problems_are_named(pycache, pycache_bin, tmp_path, gitenv):
    repo, caches = make_repo(tmp_path, gitenv)
    r = doctor(pycache_bin, gitenv, "--json", cwd=repo)
    assert r.returncode == 1, r.stderr
    c = checks(r)
    assert c["gitignore"]["ok"] is False and c["gitignore"]["status"] == "problem"
    for line in ("__pycache__/", "*.pyc", "*.pyo"):
        assert line in c["gitignore"]["detail"]
    # Oracle: git itself says a cache file would not be ignored.
    probe = git(repo, "check-ignore", "-q", "--no-index", caches[0], env=gitenv, check=False)
    assert probe.returncode == 1
    assert c["tracked"]["ok"] is False
    tracked = set(git(repo, "ls-files", "-z", env=gitenv).stdout.decode().split("\0")) - {""}
    assert sorted(p[2:] for p in c["tracked"]["paths"]) == sorted(
        p for p in tracked if "__pycache__" in p)
    assert sorted(p[2:] for p in c["tracked"]["paths"]) == sorted(caches)
    assert c["dangerous"]["ok"] is True
    assert set(c) >= {"gitignore", "tracked", "dangerous", "stale", "uninstalled",
                      "dontwritebytecode", "pycacheprefix", "docker", "hooks"}
    for obj in r.json():
        assert set(obj) == {"check", "ok", "status", "detail", "fix", "paths"}
        assert (obj["fix"] is not None) == (obj["status"] == "problem" or obj["fix"] is not None)

    human = doctor(pycache_bin, gitenv, cwd=repo)
    assert human.returncode == 1
    assert "tracked in git" in human.stdout and "does not ignore" in human.stdout
    for cache in caches:
        assert cache in human.stdout
    assert "fix: pycache doctor --fix" in human.stdout
    assert "2 problems" in human.stdout


@pytest.mark.parametrize("existing", [None, b"build/", b"build/\n", b"build/\r\n/dist\r\n"],
                         ids=["none", "no-final-newline", "lf", "crlf"])
def test_fix(pycache, pycache_bin, tmp_path, gitenv, existing):
    repo, caches = make_repo(tmp_path, gitenv)
    if existing is not None:
        (repo / ".gitignore").write_bytes(existing)
    before = tree_digest(repo)

    r = doctor(pycache_bin, gitenv, "--fix", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "appended" in r.stdout and "untracked 2 files" in r.stdout

    again = doctor(pycache_bin, gitenv, "--json", cwd=repo)
    assert again.returncode == 0, again.stdout
    assert all(obj["ok"] for obj in again.json())

    # The working files are unchanged, apart from .gitignore.
    after = tree_digest(repo)
    before.pop(".gitignore", None)
    assert {k: v for k, v in after.items() if k != ".gitignore"} == before
    text = (repo / ".gitignore").read_bytes()
    old = existing or b""
    assert text.startswith(old)
    eol = b"\r\n" if b"\r\n" in old else b"\n"
    added = text[len(old):]
    if old and not old.endswith(b"\n"):
        assert added.startswith(eol)
    assert added.strip(b"\r\n").split(eol) == [b"__pycache__/", b"*.pyc", b"*.pyo"]
    assert text.endswith(eol)

    # Oracle: git now ignores the caches and tracks none of them; their
    # removal from the index is staged.
    for cache in caches:
        assert git(repo, "check-ignore", "-q", "--no-index", cache, env=gitenv,
                   check=False).returncode == 0
    assert not [p for p in git(repo, "ls-files", env=gitenv).stdout.decode().splitlines()
                if p.endswith(".pyc")]
    status = git(repo, "status", "--porcelain", "--ignored", env=gitenv).stdout.decode()
    for cache in caches:
        assert "D  " + cache in status
    assert "!! pkg/__pycache__/" in status


def test_fix_prunes_and_keeps_sourceless(pycache, pycache_bin, tmp_path, gitenv):
    """--fix prunes (stale-used, orphan go); a sourceless pyc is imported by
    CPython, and prune keeps it unless told: the problem stays, exit 1."""
    repo, _ = make_repo(tmp_path, gitenv)
    (repo / "gone.py").write_text("VALUE = 'gone'\n")
    orphan = compile_pyc(sys.executable, repo / "gone.py")
    legacy = repo / "legacy.py"
    legacy.write_text("VALUE = 'legacy'\n")
    compile_pyc(sys.executable, legacy)
    subprocess.run([sys.executable, "-c", "import py_compile; py_compile.compile("
                    "'legacy.py', cfile='legacy.pyc')"], cwd=str(repo), check=True)
    (repo / "gone.py").unlink()
    legacy.unlink()
    # Oracle: CPython imports the sourceless legacy.pyc.
    out = subprocess.run([sys.executable, "-B", "-c", "import legacy; print(legacy.VALUE)"],
                         cwd=str(repo), stdout=subprocess.PIPE, check=True).stdout
    assert out.strip() == b"legacy"

    r = doctor(pycache_bin, gitenv, "--json", cwd=repo)
    c = checks(r)
    assert c["dangerous"]["ok"] is False
    assert c["dangerous"]["paths"] == ["./legacy.pyc"]
    assert "sourceless" in c["dangerous"]["detail"]
    assert c["dangerous"]["fix"] == "pycache prune --sourceless"
    assert c["stale"]["status"] == "note" and "orphan" in c["stale"]["detail"]

    r = doctor(pycache_bin, gitenv, "--fix", "--json", cwd=repo)
    assert r.returncode == 1
    c = checks(r)
    assert c["gitignore"]["status"] == "fixed" and c["tracked"]["status"] == "fixed"
    assert c["stale"]["status"] == "fixed"
    assert c["dangerous"]["ok"] is False
    assert not os.path.exists(orphan)
    assert (repo / "legacy.pyc").exists()

    r = pycache("prune", "--sourceless", "-q", cwd=str(repo))
    assert r.returncode == 0
    assert doctor(pycache_bin, gitenv, cwd=repo).returncode == 0


def test_stale_used(pycache, pycache_bin, tmp_path, gitenv, interp37):
    """An unchecked-hash pyc whose source changed: CPython loads the old code
    (the oracle), doctor calls it dangerous, --fix prunes it."""
    d = tmp_path / "p"
    d.mkdir()
    src = d / "mod.py"
    src.write_text("VALUE = 'old'\n")
    interp37.run("import py_compile, sys; py_compile.compile(sys.argv[1], "
                 "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)",
                 str(src))
    src.write_text("VALUE = 'new'\n")
    out = interp37.run("import sys; sys.path.insert(0, sys.argv[1]); import mod; "
                       "print(mod.VALUE)", str(d), flags=["-B"]).stdout
    assert out.strip() == b"old"

    r = doctor(pycache_bin, gitenv, "--json", cwd=d)
    assert r.returncode == 1
    c = checks(r)
    assert "stale-used" in c["dangerous"]["detail"]
    assert len(c["dangerous"]["paths"]) == 1
    assert c["dangerous"]["fix"] == "pycache prune"

    r = doctor(pycache_bin, gitenv, "--fix", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    out = interp37.run("import sys; sys.path.insert(0, sys.argv[1]); import mod; "
                       "print(mod.VALUE)", str(d), flags=["-B"]).stdout
    assert out.strip() == b"new"


# ---- outside git, ignore sources -------------------------------------------------------------

def test_outside_git(pycache, pycache_bin, tmp_path, gitenv):
    d = tmp_path / "plain"
    d.mkdir()
    (d / "m.py").write_text("x = 1\n")
    compile_pyc(sys.executable, d / "m.py")
    assert git(d, "rev-parse", "--show-toplevel", env=gitenv, check=False).returncode != 0
    r = doctor(pycache_bin, gitenv, "--json", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    c = checks(r)
    for name in ("gitignore", "tracked", "hooks"):
        assert c[name]["status"] == "skipped"
        assert "not in a git work tree" in c[name]["detail"]
    human = doctor(pycache_bin, gitenv, cwd=d)
    assert "not in a git work tree" in human.stdout and human.returncode == 0
    # --fix outside git writes no .gitignore.
    assert doctor(pycache_bin, gitenv, "--fix", cwd=d).returncode == 0
    assert not (d / ".gitignore").exists()


def test_path_argument(pycache, pycache_bin, tmp_path, gitenv):
    repo, caches = make_repo(tmp_path, gitenv)
    r = doctor(pycache_bin, gitenv, "--json", "proj", cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(checks(r)["tracked"]["paths"]) == sorted("proj/" + c for c in caches)
    assert checks(r)["tracked"]["fix"].startswith("git rm --cached -q -- proj/")
    assert doctor(pycache_bin, gitenv, "--fix", "proj", cwd=tmp_path).returncode == 0
    assert doctor(pycache_bin, gitenv, cwd=repo).returncode == 0


def test_global_excludes(pycache, pycache_bin, tmp_path, gitenv):
    """git's default global excludes file ($XDG_CONFIG_HOME/git/ignore) and a
    core.excludesFile count, as they do for git add."""
    repo, caches = make_repo(tmp_path, gitenv)
    git(repo, "rm", "-r", "-q", "--cached", "pkg/__pycache__", env=gitenv)
    git(repo, "commit", "-q", "-m", "untrack", env=gitenv)
    ignore = tmp_path / "home" / ".config" / "git"
    ignore.mkdir(parents=True)
    (ignore / "ignore").write_text("__pycache__/\n*.py[co]\n")
    assert git(repo, "check-ignore", "-q", caches[0], env=gitenv, check=False).returncode == 0
    r = doctor(pycache_bin, gitenv, "--json", cwd=repo)
    assert r.returncode == 0, r.stdout
    c = checks(r)["gitignore"]
    assert c["status"] == "ok" and "global excludes" in c["detail"]
    assert str(ignore / "ignore") in c["detail"]

    # Without it, a problem; with core.excludesFile elsewhere, fine again.
    (ignore / "ignore").unlink()
    assert doctor(pycache_bin, gitenv, cwd=repo).returncode == 1
    other = tmp_path / "excludes"
    other.write_text("*.pyc\n*.pyo\n__pycache__\n")
    git(repo, "config", "--global", "core.excludesFile", str(other), env=gitenv)
    r = doctor(pycache_bin, gitenv, "--json", cwd=repo)
    assert r.returncode == 0, r.stdout
    assert str(other) in checks(r)["gitignore"]["detail"]


def test_info_exclude_and_nested_rules(pycache, pycache_bin, tmp_path, gitenv):
    repo, _ = make_repo(tmp_path, gitenv)
    git(repo, "rm", "-r", "-q", "--cached", "pkg/__pycache__", env=gitenv)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("__pycache__/\n")
    (repo / ".gitignore").write_text("*.pyc\n")
    c = checks(doctor(pycache_bin, gitenv, "--json", cwd=repo))["gitignore"]
    # *.pyo is still missing.
    assert c["ok"] is False and "*.pyo" in c["detail"] and "__pycache__/" not in c["detail"]
    # An anchored pattern covers only the top directory: git ignores
    # /x.pyo but not pkg/x.pyo, and doctor says so.
    (repo / ".gitignore").write_text("*.pyc\n/*.pyo\n")
    assert git(repo, "check-ignore", "-q", "--no-index", "pkg/x.pyo", env=gitenv,
               check=False).returncode == 1
    c = checks(doctor(pycache_bin, gitenv, "--json", cwd=repo))["gitignore"]
    assert c["ok"] is False and "*.pyo" in c["detail"]
    r = doctor(pycache_bin, gitenv, "--fix", cwd=repo)
    assert r.returncode == 0, r.stdout
    assert (repo / ".gitignore").read_text() == "*.pyc\n/*.pyo\n*.pyo\n"


# ---- the environment ------------------------------------------------------------------------------

def test_dockerfiles(pycache, pycache_bin, tmp_path, gitenv):
    d = tmp_path / "img"
    (d / "docker").mkdir(parents=True)
    (d / "Dockerfile").write_text(
        "FROM python:3.12\n"
        "# ENV PYTHONPYCACHEPREFIX=/commented\n"
        "ENV PYTHONDONTWRITEBYTECODE=1 \\\n"
        "    PYTHONUNBUFFERED=1 \\\n"
        "    PYTHONPYCACHEPREFIX=\"/tmp/py cache\"\n"
        "RUN echo ENV PYTHONDONTWRITEBYTECODE=0\n")
    (d / "docker" / "dev.Dockerfile").write_text("FROM python\nenv PYTHONDONTWRITEBYTECODE 1\n")
    (d / "Containerfile").write_text("FROM python\nENV PATH=/x\n")
    (d / "Dockerfile.prod").write_text("# escape=`\nFROM python\nENV A=1 `\n  PYTHONPYCACHEPREFIX=/pc\n")
    (d / "notes.txt").write_text("ENV PYTHONDONTWRITEBYTECODE=1\n")
    r = doctor(pycache_bin, gitenv, "--json", cwd=d)
    assert r.returncode == 0
    detail = checks(r)["docker"]["detail"]
    parts = dict(p.split(" sets ", 1) for p in detail.split("; "))
    assert parts == {
        "./Dockerfile": "PYTHONDONTWRITEBYTECODE=1 (line 3), PYTHONPYCACHEPREFIX=/tmp/py cache (line 3)",
        "./docker/dev.Dockerfile": "PYTHONDONTWRITEBYTECODE=1 (line 2)",
        "./Containerfile": "neither PYTHONDONTWRITEBYTECODE nor PYTHONPYCACHEPREFIX",
        "./Dockerfile.prod": "PYTHONPYCACHEPREFIX=/pc (line 3)",
    }
    empty = tmp_path / "empty"
    empty.mkdir()
    assert checks(doctor(pycache_bin, gitenv, "--json", cwd=empty))["docker"]["detail"] == \
        "no Dockerfile or Containerfile"


def test_environment_variables(pycache, pycache_bin, tmp_path, gitenv, interpreters):
    d = tmp_path / "e"
    d.mkdir()
    c = checks(doctor(pycache_bin, gitenv, "--json", cwd=d))
    assert "not set" in c["dontwritebytecode"]["detail"]
    assert "not set" in c["pycacheprefix"]["detail"]
    for value in ("0", "00", "-0", "1", "-1", "yes", " 0", "0 ", "99999999999"):
        detail = checks(doctor(pycache_bin, gitenv, "--json", cwd=d,
                               extra_env={"PYTHONDONTWRITEBYTECODE": value}))
        detail = detail["dontwritebytecode"]["detail"]
        # Oracle: what each interpreter makes of the value.
        for interp in interpreters:
            out = interp.run("import sys; print(sys.dont_write_bytecode)",
                             env={"PYTHONDONTWRITEBYTECODE": value}).stdout.strip()
            off = out == b"True"
            modern = (interp.major, interp.minor) >= (3, 7)
            if off:
                assert "writes no bytecode" in detail or not modern, (value, interp)
            else:
                assert modern and "3.7+ writes bytecode" in detail, (value, interp)
            if "3.7+ writes bytecode" in detail:
                assert off != modern, (value, interp)
    prefix = tmp_path / "pfx"
    c = checks(doctor(pycache_bin, gitenv, "--json", cwd=d,
                      extra_env={"PYTHONPYCACHEPREFIX": str(prefix)}))
    assert str(prefix) + os.path.realpath(str(d)) in c["pycacheprefix"]["detail"]
    assert c["pycacheprefix"]["ok"] is True


def test_prefix_tree_judged(pycache, pycache_bin, tmp_path, gitenv, interp38):
    """Under PYTHONPYCACHEPREFIX, 3.8+ reads the caches from the prefix tree:
    an unchecked-hash pyc there is loaded after its source changed (the
    oracle), and doctor finds it."""
    d = tmp_path / "src"
    d.mkdir()
    prefix = tmp_path / "pfx"
    src = d / "mod.py"
    src.write_text("VALUE = 'old'\n")
    env = {"PYTHONPYCACHEPREFIX": str(prefix)}
    interp38.run("import py_compile, sys; py_compile.compile(sys.argv[1], "
                 "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)",
                 str(src), env=env)
    src.write_text("VALUE = 'new'\n")
    out = interp38.run("import sys; sys.path.insert(0, sys.argv[1]); import mod; print(mod.VALUE)",
                       str(d), env=env, flags=["-B"]).stdout
    assert out.strip() == b"old"
    r = doctor(pycache_bin, gitenv, "--json", cwd=d, extra_env=env)
    c = checks(r)
    assert r.returncode == 1 and "stale-used" in c["dangerous"]["detail"]
    assert c["dangerous"]["paths"][0].startswith(str(prefix))
    assert doctor(pycache_bin, gitenv, "--fix", cwd=d, extra_env=env).returncode == 0
    out = interp38.run("import sys; sys.path.insert(0, sys.argv[1]); import mod; print(mod.VALUE)",
                       str(d), env=env, flags=["-B"]).stdout
    assert out.strip() == b"new"


def test_uninstalled(pycache, pycache_bin, tmp_path, gitenv, interpreters):
    """A cache whose tag names a version with no interpreter here."""
    have = {i.short for i in interpreters}
    missing = next(v for v in ("3.4", "3.5", "3.3", "3.14", "3.15") if v not in have)
    info = [o for o in pycache("versions", "--json").json()
            if o.get("python") == missing and o.get("implementation") == "cpython"]
    assert info, missing
    tag = info[-1]["tag"]
    d = tmp_path / "u"
    (d / "__pycache__").mkdir(parents=True)
    (d / "m.py").write_text("x = 1\n")
    (d / "__pycache__" / ("m.%s.pyc" % tag)).write_bytes(b"\0" * 100)
    c = checks(doctor(pycache_bin, gitenv, "--json", cwd=d))
    assert c["uninstalled"]["status"] == "note"
    assert "%s: 1 file (100 B)" % missing in c["uninstalled"]["detail"]
    assert c["uninstalled"]["fix"] == "pycache clean --uninstalled"


# ---- --staged ----------------------------------------------------------------------------------

def test_staged_files_given(pycache, pycache_bin, tmp_path, gitenv):
    r = doctor(pycache_bin, gitenv, "--staged", "--", "a.py", "pkg/__pycache__/a.cpython-311.pyc",
               "old.pyc", "x.pyo", "pkg/__pycache__/notes.txt", "-weird.py",
               "pkg/__pycache__/a.cpython-311.pyc.140234", cwd=tmp_path)
    assert r.returncode == 1
    listed = [l.strip() for l in r.stdout.splitlines() if l.startswith("  ")]
    assert listed == ["pkg/__pycache__/a.cpython-311.pyc", "old.pyc", "x.pyo",
                      "pkg/__pycache__/a.cpython-311.pyc.140234"]
    assert doctor(pycache_bin, gitenv, "--staged", "--", "a.py", "b/c.txt", cwd=tmp_path).returncode == 0


def test_staged_from_git(pycache, pycache_bin, tmp_path, gitenv):
    repo, caches = make_repo(tmp_path, gitenv)
    r = doctor(pycache_bin, gitenv, "--staged", "--json", cwd=repo)
    assert r.returncode == 0 and r.json()[0]["ok"] is True
    (repo / "pkg" / "m.py").write_text("VALUE = 2\n")
    cache = compile_pyc(sys.executable, repo / "pkg" / "m.py")
    git(repo, "add", "pkg", env=gitenv)
    r = doctor(pycache_bin, gitenv, "--staged", "--json", cwd=repo / "pkg")
    assert r.returncode == 1
    assert r.json()[0]["paths"] == [os.path.relpath(cache, str(repo))]
    # Deleting bytecode from git is welcome.
    git(repo, "rm", "-q", "--cached", *caches, env=gitenv)
    assert doctor(pycache_bin, gitenv, "--staged", cwd=repo).returncode == 0
    outside = tmp_path / "nogit"
    outside.mkdir()
    assert doctor(pycache_bin, gitenv, "--staged", cwd=outside).returncode == 3


def test_marks_follow_the_locale(pycache, pycache_bin, tmp_path, gitenv):
    repo, _ = make_repo(tmp_path, gitenv)
    utf8 = doctor(pycache_bin, gitenv, cwd=repo, extra_env={"LC_ALL": "C.UTF-8"}).stdout
    assert "\u2717 git does not ignore bytecode" in utf8 and "\u2713 no dangerous" in utf8
    ascii_ = doctor(pycache_bin, gitenv, cwd=repo, extra_env={"LC_ALL": "C"}).stdout
    assert "[FAIL] git does not ignore bytecode" in ascii_ and "[ok]   no dangerous" in ascii_
    assert all(ord(ch) < 128 for ch in ascii_)


def test_usage(pycache, pycache_bin, tmp_path, gitenv):
    assert doctor(pycache_bin, gitenv, "--staged", "--fix", cwd=tmp_path).returncode == 2
    assert doctor(pycache_bin, gitenv, "a", "b", cwd=tmp_path).returncode == 2
    r = doctor(pycache_bin, gitenv, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "--staged" in r.stdout and "--fix" in r.stdout
    r = doctor(pycache_bin, gitenv, str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 3 and "nope" in r.stderr


def test_every_fix_line_really_fixes(pycache_bin, gitenv, interpreters, tmp_path):
    """Each "fix:" doctor prints is a command that, run as printed in the
    project (each on a fresh copy), makes its own check pass."""
    interp = [i for i in interpreters if i.major == 3][-1]

    def project(repo):
        repo.mkdir()
        git(repo, "init", "-q", env=gitenv)
        src = repo / "mod.py"
        src.write_text("X = 1\n")
        subprocess.run([interp.path, "-m", "py_compile", str(src)], check=True)
        src.unlink()  # orphan: clutter
        legacy = repo / "lone.py"
        legacy.write_text("Y = 1\n")
        subprocess.run([interp.path, "-c", "import py_compile, sys; "
                        "py_compile.compile(sys.argv[1], cfile=sys.argv[1] + 'c')",
                        str(legacy)], check=True)
        legacy.unlink()  # sourceless: dangerous
        git(repo, "add", "-f", "lone.pyc", env=gitenv)  # tracked bytecode
        return repo

    first = project(tmp_path / "first")
    before = checks(doctor(pycache_bin, gitenv, "--json", cwd=first))
    problems = {k: v["fix"] for k, v in before.items() if v["status"] != "ok" and v["fix"]}
    assert {"dangerous", "tracked", "stale", "gitignore"} <= set(problems), before
    env = clean_env(dict(gitenv, NO_COLOR="1"))
    env["PATH"] = os.path.dirname(pycache_bin) + os.pathsep + env.get("PATH", "")
    for name, fix in problems.items():
        repo = project(tmp_path / ("fix-" + name))
        r = subprocess.run(fix, shell=True, cwd=str(repo), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode in (0, 1), (name, fix, r.stderr)
        after = checks(doctor(pycache_bin, gitenv, "--json", cwd=repo))
        assert after[name]["status"] in ("ok", "fixed"), (name, fix, after[name])
