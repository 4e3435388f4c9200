"""The pre-commit hooks of .pre-commit-hooks.yaml, run by Debian's pre-commit
from a real `git commit` in a temporary repository.

The hooks repository is a git repository holding this checkout's
.pre-commit-hooks.yaml (committed there, so the file under test is the one in
the working tree), referenced by path: pre-commit clones it locally. Nothing
may reach the network: git may use only the file protocol
(GIT_ALLOW_PROTOCOL=file), and where `unshare -n` works the commit runs in a
network namespace with no interfaces but lo.
"""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]

pytestmark = pytest.mark.skipif(shutil.which("pre-commit") is None,
                                reason="pre-commit is not installed (scripts/install-deps)")


def _offline_prefix():
    if shutil.which("unshare") is None:
        return []
    r = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return ["unshare", "-n"] if r.returncode == 0 else []


@pytest.fixture
def env(tmp_path, pycache_bin):
    """HOME, config and caches in tmp_path; `pycache` on PATH is the build
    under test."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(pycache_bin), str(bindir / "pycache"))
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("GIT_") or k.startswith("PRE_COMMIT") or k in (
                "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
            del e[k]
    e.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
        "GIT_ALLOW_PROTOCOL": "file",
        "PATH": str(bindir) + os.pathsep + e.get("PATH", "/usr/bin:/bin"),
        "NO_COLOR": "1",
    })
    return e


def run(cmd, cwd, env, check=True, offline=False):
    prefix = _offline_prefix() if offline else []
    return subprocess.run(prefix + cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=check)


def git(repo, env, *args, **kw):
    return run(["git"] + GIT_ID + list(args), repo, env, **kw)


def readme_local_config():
    """The `repo: local` snippet of contrib/README.md."""
    with open(os.path.join(ROOT, "contrib", "README.md")) as f:
        text = f.read()
    blocks = text.split("```yaml\n")[1:]
    local = [b.split("```")[0] for b in blocks if "repo: local" in b]
    assert len(local) == 1
    return local[0]


def test_readme_snippet_matches_the_hooks():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, ".pre-commit-hooks.yaml")) as f:
        declared = {h["id"]: h for h in yaml.safe_load(f)}
    local = yaml.safe_load(readme_local_config())["repos"][0]["hooks"]
    assert [h["id"] for h in local] == [i for i in declared if i.endswith("-system")]
    for h in local:
        d = dict(declared[h["id"]])
        d.pop("description", None)
        assert h == d


@pytest.fixture(params=["hooks-repo", "readme-local"])
def project(request, tmp_path, env):
    """A project whose .pre-commit-config.yaml uses both `-system` hooks
    (the pycache on PATH: the build under test; from a local hooks repository holding this checkout's .pre-commit-hooks.yaml, or as
    the `repo: local` snippet of contrib/README.md), installed as its git
    pre-commit hook."""
    hooks = tmp_path / "hooks-repo"
    hooks.mkdir()
    shutil.copy(os.path.join(ROOT, ".pre-commit-hooks.yaml"), str(hooks))
    git(hooks, env, "init", "-q", ".")
    git(hooks, env, "add", ".pre-commit-hooks.yaml")
    git(hooks, env, "commit", "-q", "-m", "hooks")
    rev = git(hooks, env, "rev-parse", "HEAD").stdout.decode().strip()

    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, env, "init", "-q", ".")
    if request.param == "hooks-repo":
        config = ("repos:\n"
                  "  - repo: %s\n"
                  "    rev: %s\n"
                  "    hooks:\n"
                  "      - id: pycache-no-bytecode-system\n"
                  "      - id: pycache-dangerous-system\n" % (hooks, rev))
    else:
        config = readme_local_config()
    (repo / ".pre-commit-config.yaml").write_text(config)
    (repo / "m.py").write_text("VALUE = 1\n")
    git(repo, env, "add", ".pre-commit-config.yaml", "m.py")
    run(["pre-commit", "install"], repo, env)
    return repo


def head(repo, env):
    return git(repo, env, "rev-parse", "-q", "--verify", "HEAD", check=False).stdout.strip()


def test_commit_refused_with_bytecode_accepted_without(project, env):
    repo = project
    cache = subprocess.run(
        [sys.executable, "-c", "import py_compile; print(py_compile.compile('m.py'))"],
        cwd=str(repo), env=env, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    cache = os.path.join(str(repo), cache)
    rel = os.path.relpath(cache, str(repo))
    assert rel.startswith("__pycache__" + os.sep)
    git(repo, env, "add", rel)
    r = git(repo, env, "commit", "-m", "with bytecode", check=False, offline=True)
    out = r.stdout.decode()
    assert r.returncode != 0, out
    assert "no Python bytecode in the commit" in out and "Failed" in out
    assert rel in out
    assert head(repo, env) == b""  # nothing committed

    # The same commit without the cache goes through; the cache stays on
    # disk, untracked.
    git(repo, env, "rm", "-q", "--cached", rel)
    r = git(repo, env, "commit", "-m", "sources only", check=False, offline=True)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "no Python bytecode in the commit" in out and "Passed" in out
    assert head(repo, env) != b""
    assert os.path.exists(cache)
    tracked = git(repo, env, "ls-files").stdout.decode().split()
    assert sorted(tracked) == [".pre-commit-config.yaml", "m.py"]


def test_dangerous_bytecode_in_tree(project, env):
    repo = project
    git(repo, env, "commit", "-q", "-m", "init", offline=True)
    # A sourceless legacy pyc: CPython imports it although gone.py is gone.
    (repo / "gone.py").write_text("VALUE = 'gone'\n")
    subprocess.run([sys.executable, "-c", "import py_compile; "
                    "py_compile.compile('gone.py', cfile='gone.pyc')"],
                   cwd=str(repo), env=env, check=True)
    (repo / "gone.py").unlink()
    out = subprocess.run([sys.executable, "-B", "-c", "import gone; print(gone.VALUE)"],
                         cwd=str(repo), stdout=subprocess.PIPE, check=True).stdout
    assert out.strip() == b"gone"
    (repo / ".gitignore").write_text("*.pyc\n")
    (repo / "m.py").write_text("VALUE = 2\n")
    git(repo, env, "add", ".gitignore", "m.py")
    before = head(repo, env)
    r = git(repo, env, "commit", "-m", "change", check=False, offline=True)
    out = r.stdout.decode()
    assert r.returncode != 0, out
    assert "no dangerous Python bytecode" in out and "gone.pyc" in out
    assert head(repo, env) == before

    (repo / "gone.pyc").unlink()
    r = git(repo, env, "commit", "-m", "change", check=False, offline=True)
    assert r.returncode == 0, r.stdout.decode()
    assert head(repo, env) != before


# ---- language: python, from the repository (pre-commit try-repo) -------------

@pytest.fixture(scope="module")
def source_repo(tmp_path_factory):
    """A git repository holding this checkout's files as they are in the
    work tree (tracked and untracked, not ignored): what a user's
    `repo:` URL points at."""
    repo = tmp_path_factory.mktemp("source") / "pycache"
    repo.mkdir()
    names = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.split(b"\0")
    for name in filter(None, names):
        src = os.path.join(ROOT.encode(), name)
        if not os.path.isfile(src):
            continue  # deleted in the work tree, not yet committed
        dst = os.path.join(str(repo).encode(), name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    git(repo, env, "init", "-q", ".")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "snapshot")
    return repo


def try_repo(repo, source, env):
    """pre-commit try-repo SOURCE --all-files --verbose (every hook of
    SOURCE), offline: pip finds only Debian's wheels (setuptools, wheel) for
    the build of the hooks' environment. Returns (exit status, {hook id:
    (Passed|Failed, output)}). try-repo builds the environment afresh each
    time (a temporary store), so the test runs it twice, not per hook."""
    env = dict(env, PIP_NO_INDEX="1", PIP_FIND_LINKS="/usr/share/python-wheels",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    # A decoy `pycache` first on PATH: the -system hooks run it (and say
    # so), the language: python ones must run the one pre-commit built.
    decoy = os.path.join(os.path.dirname(str(repo)), "decoy-bin")
    os.makedirs(decoy, exist_ok=True)
    with open(os.path.join(decoy, "pycache"), "w") as f:
        f.write("#!/bin/sh\necho DECOY-PYCACHE\nexit 1\n")
    os.chmod(os.path.join(decoy, "pycache"), 0o755)
    env["PATH"] = decoy + os.pathsep + env["PATH"]
    r = run(["pre-commit", "try-repo", str(source), "--all-files", "--verbose"], repo, env,
            check=False, offline=True)
    out = r.stdout.decode()
    hooks, current, result = {}, None, None
    for line in out.splitlines():
        if line.startswith("- hook id: "):
            current = line[len("- hook id: "):]
            hooks[current] = [result, []]
        elif line.endswith(("Passed", "Failed")) and "..." in line:
            result, current = line.rsplit(".", 1)[1], None
        elif current:
            hooks[current][1].append(line)
    return r.returncode, {k: (v[0], "\n".join(v[1])) for k, v in hooks.items()}, out


@pytest.mark.skipif(os.environ.get("PYCACHE_SAN") == "1",
                    reason="builds its own plain pycache (make check runs it)")
def test_python_hooks_build_from_the_repository(source_repo, tmp_path, env):
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, env, "init", "-q", ".")
    (repo / "m.py").write_text("VALUE = 1\n")
    cache = subprocess.run(
        [sys.executable, "-c", "import py_compile; print(py_compile.compile('m.py'))"],
        cwd=str(repo), env=env, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    git(repo, env, "add", "m.py", cache)
    # pycache-dangerous: a sourceless legacy pyc in the work tree.
    (repo / "gone.py").write_text("VALUE = 'gone'\n")
    subprocess.run([sys.executable, "-c", "import py_compile; "
                    "py_compile.compile('gone.py', cfile='gone.pyc')"],
                   cwd=str(repo), env=env, check=True)
    (repo / "gone.py").unlink()

    code, hooks, out = try_repo(repo, source_repo, env)
    assert code == 1, out
    assert sorted(hooks) == ["pycache-dangerous", "pycache-dangerous-system",
                             "pycache-no-bytecode", "pycache-no-bytecode-system"], out
    result, text = hooks["pycache-no-bytecode"]
    assert result == "Failed" and "bytecode staged for commit" in text and cache in text, out
    result, text = hooks["pycache-dangerous"]
    assert result == "Failed" and "gone.pyc" in text and "sourceless" in text, out
    for hook in ("pycache-no-bytecode-system", "pycache-dangerous-system"):
        assert "DECOY-PYCACHE" in hooks[hook][1], out
    for hook in ("pycache-no-bytecode", "pycache-dangerous"):
        assert "DECOY-PYCACHE" not in hooks[hook][1], out

    git(repo, env, "rm", "-q", "--cached", cache)
    (repo / "gone.pyc").unlink()
    code, hooks, out = try_repo(repo, source_repo, env)
    assert hooks["pycache-no-bytecode"][0] == "Passed", out
    assert hooks["pycache-dangerous"][0] == "Passed", out
    assert hooks["pycache-no-bytecode-system"][0] == "Failed", out
