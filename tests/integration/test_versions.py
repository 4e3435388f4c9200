"""`pycache versions`: output shape, JSON Lines, options."""

import json

FIELDS = {"magic", "magic_hex", "implementation", "python", "release", "tag",
          "header_size", "final", "note"}


def rows(result):
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_fields(pycache):
    for r in rows(pycache("versions", "--json", "--all")):
        assert set(r) == FIELDS
        assert isinstance(r["magic"], int) and 0 <= r["magic"] < 65536
        raw = bytes.fromhex(r["magic_hex"])
        assert len(raw) == 4
        # The first two bytes are the magic number, little-endian; then
        # b"\r\n" (b"\x99\x00" for CPython 1.0 and 1.1).
        assert int.from_bytes(raw[:2], "little") == r["magic"]
        if r["implementation"] == "cpython" and r["python"] in ("1.0", "1.1"):
            assert raw[2:] == b"\x99\x00"
        else:
            assert raw[2:] == b"\r\n"
        assert r["implementation"] in ("cpython", "pypy", "graalpy")
        major, minor = r["python"].split(".")
        assert major.isdigit() and minor.isdigit()
        assert isinstance(r["release"], str) and r["release"]
        assert r["tag"] is None or isinstance(r["tag"], str)
        assert r["header_size"] in (8, 12, 16)
        assert isinstance(r["final"], bool)
        assert isinstance(r["note"], str)


def test_all_lists_every_magic_once(pycache):
    everything = rows(pycache("versions", "--json", "--all"))
    hexes = [r["magic_hex"] for r in everything]
    assert len(hexes) == len(set(hexes))
    assert len(everything) > 250


def test_default_is_one_row_per_version(pycache):
    everything = rows(pycache("versions", "--json", "--all"))
    default = rows(pycache("versions", "--json"))
    versions = {(r["implementation"], r["python"]) for r in everything}
    assert len(default) == len(versions)
    assert {(r["implementation"], r["python"]) for r in default} == versions
    for r in default:
        same = [x for x in everything
                if (x["implementation"], x["python"]) == (r["implementation"], r["python"])]
        finals = [x for x in same if x["final"]]
        if finals:
            # The final value (the last one, for 3.5: 3351 after 3350).
            assert r == finals[-1]
        else:
            # No final release yet (CPython's main branch): the newest.
            assert r == same[-1]
    assert {"cpython-311": 3495}.items() <= {r["tag"]: r["magic"] for r in default}.items()


def test_cpython_tags_and_layouts(pycache):
    for r in rows(pycache("versions", "--json", "--all")):
        if r["implementation"] != "cpython":
            continue
        major, minor = map(int, r["python"].split("."))
        if (major, minor) >= (3, 2):
            assert r["tag"] == "cpython-%d%d" % (major, minor)
        else:
            assert r["tag"] is None
        if major < 3 or r["magic"] < 3210:
            assert r["header_size"] == 8
        elif r["magic"] < 3392:
            assert r["header_size"] == 12
        else:
            assert r["header_size"] == 16


def test_human_output_is_aligned(pycache):
    r = pycache("versions")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    head = lines[0].split()
    assert head == ["MAGIC", "PYTHON", "RELEASE", "TAG", "HEADER", "FINAL"]
    default = rows(pycache("versions", "--json"))
    assert len(lines) == 1 + len(default)
    # Columns start where their heading does (MAGIC and HEADER are
    # right-aligned numbers: they end where their heading ends).
    starts = [lines[0].index(h) for h in ("PYTHON", "RELEASE", "TAG", "FINAL")]
    header_end = lines[0].index("HEADER") + len("HEADER")
    magic_end = len("MAGIC")
    for line, row in zip(lines[1:], default):
        for s in starts:
            assert line[s - 2:s] == "  " and line[s] != " ", line
        assert line[:magic_end].strip() == str(row["magic"])
        assert line[:header_end].split()[-1] == str(row["header_size"])
        assert line.split()[-1] == ("yes" if row["final"] else "no")
    # 3.11's row, as the table says.
    row311 = [l for l in lines if l.split()[:2] == ["3495", "3.11"]]
    assert len(row311) == 1 and "cpython-311" in row311[0]


def test_all_human_has_every_row(pycache):
    r = pycache("versions", "--all")
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 1 + len(rows(pycache("versions", "--json", "--all")))


def test_help(pycache):
    r = pycache("versions", "--help")
    assert r.returncode == 0
    assert "--json" in r.stdout and "--all" in r.stdout
    assert r.stderr == ""


def test_usage_errors(pycache):
    r = pycache("versions", "--bogus")
    assert r.returncode == 2
    assert r.stdout == "" and r.stderr
    r = pycache("versions", "3.11")
    assert r.returncode == 2
    assert r.stdout == "" and "3.11" in r.stderr


def test_installed_lists_each_program_once(pycache):
    """Two names of one program (pyenv's hard-linked python3.6 and
    python3.6m, python3.7 and python3.7m) are one interpreter: listed once,
    under the plain name."""
    import os
    seen = {}
    for r in rows(pycache("versions", "--installed", "--json")):
        st = os.stat(r["path"])
        key = (st.st_dev, st.st_ino)
        assert key not in seen, (r["path"], seen.get(key))
        seen[key] = r["path"]
        assert not os.path.basename(r["path"]).endswith("m"), r["path"]
