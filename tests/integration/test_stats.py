"""`pycache stats`: counts and bytes by interpreter, level, mode and status,
checked against the files the real interpreters wrote."""

import os

import pytest

from oracle import compile_source, make_module


def rows(result):
    out = {}
    for o in result.json():
        out[(o["group"], o["key"])] = o
    return out


@pytest.fixture
def tree(tmp_path, interpreters):
    """Every interpreter compiles a.py (and b.py, then b.py goes: orphans);
    3.7+ compile c.py in checked-hash mode; 3.5+ also at opt 1."""
    d = str(tmp_path)
    for n in "abc":
        make_module(d, n, "v1")
    files = []
    for interp in interpreters:
        files.append(compile_source(interp, os.path.join(d, "a.py")))
        files.append(compile_source(interp, os.path.join(d, "b.py")))
        if (interp.major, interp.minor) >= (3, 7):
            files.append(compile_source(interp, os.path.join(d, "c.py"), mode="checked-hash"))
        if (interp.major, interp.minor) >= (3, 5):
            files.append(compile_source(interp, os.path.join(d, "a.py"), optimize=1))
    os.unlink(os.path.join(d, "b.py"))
    return d, sorted(set(files))


def test_totals_match_the_files(pycache, tree):
    d, files = tree
    r = pycache("stats", "--json", d)
    assert r.returncode == 0, r.stderr
    got = rows(r)
    total = got[("total", None)]
    assert total["files"] == len(files)
    assert total["bytes"] == sum(os.path.getsize(f) for f in files)
    assert total["disk_bytes"] == sum(os.stat(f).st_blocks * 512 for f in files)
    # Each grouping covers every file exactly once.
    for group in ("interpreter", "opt", "mode", "status"):
        assert sum(o["files"] for (g, _), o in got.items() if g == group) == len(files)
        assert sum(o["bytes"] for (g, _), o in got.items() if g == group) == total["bytes"]


def test_groups_say_what_each_file_is(pycache, tree, interpreters):
    d, files = tree
    got = rows(pycache("stats", "--json", d))
    for interp in interpreters:
        key = interp.tag or "cpython-%d%d" % (interp.major, interp.minor)
        mine = [f for f in files
                if (interp.tag and "." + interp.tag + "." in os.path.basename(f)) or
                (not interp.tag and os.path.dirname(f) == d)]
        row = got[("interpreter", key)]
        assert row["files"] == len(mine), (key, mine)
        assert row["python"] == interp.short and row["installed"] is True
    n_hash = sum(1 for i in {x.tag for x in interpreters if (x.major, x.minor) >= (3, 7)})
    assert got[("mode", "checked-hash")]["files"] == n_hash
    n_opt1 = len({x.tag for x in interpreters if (x.major, x.minor) >= (3, 5)})
    assert got[("opt", "1")]["files"] == n_opt1
    # b.py is gone: each interpreter's b cache is an orphan (2.7's legacy
    # b.pyc, with no source, is sourceless: 2.7 would import it).
    n_tags = len({x.tag for x in interpreters if x.tag})
    assert got[("status", "orphan")]["files"] == n_tags
    if any(x.major == 2 for x in interpreters):
        assert got[("status", "sourceless")]["files"] == 1


def test_uninstalled_interpreters_are_marked(pycache, tmp_path, interp3):
    d = str(tmp_path)
    make_module(d, "a", "v1")
    pyc = compile_source(interp3, os.path.join(d, "a.py"))
    # Only this interpreter is "installed" for this run.
    env = {"PYCACHE_PYTHONS": interp3.path, "PATH": "/nonexistent", "PYENV_ROOT": "/nonexistent"}
    fake = os.path.join(os.path.dirname(pyc), "a.cpython-38.pyc")
    if interp3.tag != "cpython-38":
        with open(pyc, "rb") as f, open(fake, "wb") as g:
            g.write(b"\x55\x0d\x0d\x0a" + f.read()[4:])
        r = pycache("stats", "--json", d, env=env)
        got = rows(r)
        assert got[("interpreter", "cpython-38")]["installed"] is False
        assert got[("interpreter", interp3.tag)]["installed"] is True
        human = pycache("stats", d, env=env).stdout
        assert "(not installed)" in human and "pycache clean --uninstalled" in human


def test_human_output_and_errors(pycache, tree, tmp_path):
    d, files = tree
    r = pycache("stats", d)
    assert r.returncode == 0
    for heading in ("by interpreter", "by optimization level", "by invalidation mode",
                    "by status", "total: %d cache files" % len(files)):
        assert heading in r.stdout
    r = pycache("stats", str(tmp_path / "missing"))
    assert r.returncode == 3 and len(r.stderr.splitlines()) == 1
    assert pycache("stats", "--bogus").returncode == 2
