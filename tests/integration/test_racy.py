"""Racy caches (pyc_verdict_racy): `check` flags a fresh timestamp cache
written in the second its source's recorded mtime names, `prune --racy`
removes it, and the real interpreters show why it matters: an edit in that
same second that keeps the size is not seen — the old code is imported.

Times are set with os.utime, so nothing depends on the clock: the source's
mtime is S + 0.1 s, the cache file's own mtime S + 0.5 s (racy) or S + 2 s
(not racy)."""

import os

S = 1700000000


def make(interp, root, cache_offset):
    root.mkdir()
    src = root / "m.py"
    src.write_text("VALUE = 'old'\n")
    os.utime(str(src), ns=(S * 10**9, S * 10**9 + 10**8))
    interp.run("import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True)",
               str(src))
    cache = interp.run("import importlib.util, sys; sys.stdout.write(importlib.util.cache_from_source(sys.argv[1]))"
                       if interp.major == 3 else "import sys; sys.stdout.write(sys.argv[1] + 'c')",
                       str(src)).stdout.decode()
    t = S * 10**9 + cache_offset
    os.utime(cache, ns=(t, t))
    return src, cache


def test_racy_cache_is_flagged_and_really_racy(interp, pycache, tmp_path):
    src, cache = make(interp, tmp_path / "racy", 5 * 10**8)
    # Fresh, so listed only with -v (JSON: "racy": true); the note counts it.
    assert pycache("check", "--json", str(tmp_path / "racy")).stdout == ""
    r = pycache("check", "-v", "--json", str(tmp_path / "racy"))
    assert r.returncode == 0
    [o] = r.json()
    assert o["status"] == "fresh" and o["racy"] is True
    r = pycache("check", str(tmp_path / "racy"))
    assert r.stdout.splitlines() == [
        "racy: 1 fresh cache written in the second its source's recorded mtime names: a "
        "same-size edit in that second would go unseen (-v lists them; `prune --racy` "
        "removes it)", "1 cache file: 1 fresh"]
    r = pycache("check", "-v", str(tmp_path / "racy"))
    assert "  " + cache in r.stdout.splitlines()
    # The edit CPython cannot see: same size, same second.
    src.write_text("VALUE = 'new'\n")
    os.utime(str(src), ns=(S * 10**9, S * 10**9 + 9 * 10**8))
    out = interp.run("import sys; sys.path.insert(0, sys.argv[1]); import m; sys.stdout.write(m.VALUE)",
                     str(tmp_path / "racy"), flags=["-B"]).stdout
    assert out == b"old"
    assert pycache("check", "-v", "--json", str(tmp_path / "racy")).json()[0]["racy"] is True
    # prune --racy removes it (a dry run first), prune alone keeps it.
    assert pycache("prune", str(tmp_path / "racy")).returncode == 0
    assert os.path.exists(cache)
    r = pycache("prune", "--racy", "-n", str(tmp_path / "racy"))
    assert r.returncode == 1 and os.path.exists(cache)
    r = pycache("prune", "--racy", "--json", str(tmp_path / "racy"))
    assert r.returncode == 0
    assert [o["action"] for o in r.json() if o["path"] == cache] == ["removed"]
    assert not os.path.exists(cache)
    out = interp.run("import sys; sys.path.insert(0, sys.argv[1]); import m; sys.stdout.write(m.VALUE)",
                     str(tmp_path / "racy"), flags=["-B"]).stdout
    assert out == b"new"


def test_cache_written_a_later_second_is_not_racy(interp, pycache, tmp_path):
    src, cache = make(interp, tmp_path / "calm", 2 * 10**9)
    r = pycache("check", "--json", "-v", str(tmp_path / "calm"))
    [o] = r.json()
    assert o["status"] == "fresh" and "racy" not in o
    assert "racy" not in pycache("check", str(tmp_path / "calm")).stdout
    r = pycache("prune", "--racy", "--json", str(tmp_path / "calm"))
    assert os.path.exists(cache)
