"""The command line's shared behaviour: --help/--version, usage errors, option
parsing, JSON escaping of file names, and how output ends (closed pipes, full
disks).

The oracle for names is Python itself: a file name in JSON output must be
what os.fsdecode makes of its bytes, so os.fsencode(json.loads(...)) gives
the bytes back.
"""

import json
import os
import random
import re
import signal
import subprocess

import pytest

from conftest import ROOT


def header_version():
    with open(os.path.join(ROOT, "include", "pycache.h")) as f:
        return re.search(r'#define PYC_VERSION_STRING "([^"]+)"', f.read()).group(1)


# ---- --help, --version, commands ---------------------------------------------------

def test_version(pycache):
    r = pycache("--version")
    assert r.returncode == 0
    assert r.stdout == "pycache %s\n" % header_version()
    assert r.stderr == ""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_commands_and_exit_statuses(pycache, flag):
    r = pycache(flag)
    assert r.returncode == 0
    assert r.stderr == ""
    assert r.stdout.startswith("usage: pycache ")
    # Every command of the table, each with a summary on its line.
    assert re.search(r"^  inspect +\S", r.stdout, re.M)
    for status in ("0", "1", "2", "3"):
        assert re.search(r"^  %s  \S" % status, r.stdout, re.M)


def test_no_command_is_a_usage_error(pycache):
    r = pycache()
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines()[-1] == "try 'pycache --help'"


def test_unknown_command_suggests(pycache):
    r = pycache("inspekt", "x.pyc")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "pycache: unknown command 'inspekt' (did you mean 'inspect'?)",
        "try 'pycache --help'",
    ]


def test_unknown_command_far_from_all_has_no_hint(pycache):
    r = pycache("frobnicate")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "pycache: unknown command 'frobnicate'",
        "try 'pycache --help'",
    ]


def test_unknown_global_option(pycache):
    r = pycache("--versoin")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "pycache: unknown option '--versoin' (did you mean '--version'?)",
        "try 'pycache --help'",
    ]


# ---- option parsing ------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--jsn", "x.pyc"], "unknown option '--jsn' (did you mean '--json'?)"),
    (["--zzzzzz", "x.pyc"], "unknown option '--zzzzzz'"),
    (["-Z", "x.pyc"], "unknown option '-Z'"),
    (["--json=yes", "x.pyc"], "option '--json' takes no argument"),
    (["x.pyc", "--prefix"], "option '--prefix' needs an argument (DIR)"),
    (["--c=x", "x.pyc"],
     "ambiguous option '--c' (--check-hash-based-pycs, --code, ...)"),
    (["--check-hash-based-pycs=alway", "x.pyc"],
     "invalid --check-hash-based-pycs value 'alway' (did you mean 'always'?)"),
    (["--color=sometimes", "x.pyc"],
     "invalid --color value 'sometimes' (expected auto, always, never)"),
])
def test_option_errors_are_one_line_plus_hint(pycache, args, message):
    r = pycache("inspect", *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "pycache inspect: " + message,
        "try 'pycache inspect --help'",
    ]


def test_missing_operand(pycache):
    r = pycache("inspect", "--json")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "pycache inspect: no FILE given",
        "try 'pycache inspect --help'",
    ]


def test_command_help_goes_to_stdout(pycache):
    r = pycache("inspect", "--help")
    assert r.returncode == 0
    assert r.stderr == ""
    assert r.stdout.startswith("usage: pycache inspect ")
    for name in ("--json", "--deep", "--check-hash-based-pycs=WHEN", "--prefix=DIR",
                 "-h, --help"):
        assert name in r.stdout
    assert "exit status:" in r.stdout
    # Option help texts start in one column (those that fit).
    cols = set()
    for line in r.stdout.splitlines():
        m = re.match(r"^  ( *-\S.*?\S)  +(\S)", line)
        if m:
            cols.add(m.start(2))
    assert len(cols) == 1


def test_help_wins_even_with_other_arguments(pycache):
    r = pycache("inspect", "nonexistent.pyc", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: pycache inspect ")


def write_garbage(path):
    with open(path, "wb") as f:
        f.write(b"not a pyc at all")


def test_options_anywhere_and_double_dash(pycache, tmp_path):
    write_garbage(str(tmp_path / "a.pyc"))
    write_garbage(str(tmp_path / "-j.pyc"))
    before = pycache("inspect", "--json", "a.pyc", cwd=str(tmp_path))
    after = pycache("inspect", "a.pyc", "--json", cwd=str(tmp_path))
    assert before.stdout == after.stdout
    assert [o["path"] for o in after.json()] == ["a.pyc"]
    # After "--", "-j.pyc" is a file, and "--json" before it still counts.
    r = pycache("inspect", "--json", "--", "-j.pyc", cwd=str(tmp_path))
    assert r.stderr == ""
    assert [o["path"] for o in r.json()] == ["-j.pyc"]
    # An unambiguous prefix of a long option is that option.
    r = pycache("inspect", "--js", "a.pyc", cwd=str(tmp_path))
    assert r.json()[0]["path"] == "a.pyc"


# ---- names that are not UTF-8 -------------------------------------------------------

# Each one is a case of CPython's UTF-8 decoder (Objects/stringlib/codecs.h).
NAMES = [
    b"caf\xe9.pyc",              # Latin-1 byte: invalid start byte
    b"\xed\xa0\x80.pyc",         # a surrogate encoded in UTF-8
    b"\xed\x9f\xbf.pyc",         # U+D7FF, the last code point before them
    b"new\nline.pyc",            # control character
    b"tab\t\"q\"\\\x01\x1f\x7f.pyc",
    b"\xc0\xaf.pyc",             # overlong '/'
    b"\xc1\xbf.pyc",
    b"\xe0\x80\xaf.pyc",         # overlong, 3 bytes
    b"\xe0\xa0\x80.pyc",         # U+0800, shortest valid 3-byte
    b"\xf0\x8f\xbf\xbf.pyc",     # overlong, 4 bytes
    b"\xf4\x90\x80\x80.pyc",     # above U+10FFFF
    b"\xf4\x8f\xbf\xbf.pyc",     # U+10FFFF
    b"\xf5\x80\x80\x80.pyc",
    b"\xf0\x9f\x98.pyc",         # truncated 4-byte sequence
    b"trunc\xe2\x82",            # truncated at the very end of the name
    b"trunc\xf0\x9f",
    b"\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9.pyc",  # valid: euro, emoji, e-acute
    b"\xc2\x80\xc2\x9f.pyc",     # C1 controls (valid UTF-8)
    b"\x80\xbf\xfe\xff.pyc",     # lone continuation bytes, never-valid bytes
    b"\xe1\x80\xe1\x80\x80.pyc", # broken then valid
]


def inspect_names(pycache, tmp_path, names):
    d = os.fsencode(str(tmp_path))
    for name in names:
        write_garbage(os.path.join(d, name))
    r = pycache("inspect", "--json", "--", *names, cwd=str(tmp_path))
    # The output itself is always valid UTF-8 (strict decoding).
    text = r.stdout_bytes.decode("utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    return r, records


def test_json_names_decode_as_os_fsdecode(pycache, tmp_path):
    r, records = inspect_names(pycache, tmp_path, NAMES)
    assert r.stderr == ""
    assert len(records) == len(NAMES)
    for name, rec in zip(NAMES, records):
        assert rec["path"] == os.fsdecode(name)
        assert os.fsencode(rec["path"]) == name


def test_json_random_names_round_trip(pycache, tmp_path):
    rng = random.Random(20240552)
    alphabet = [b for b in range(1, 256) if b != ord("/")]
    # Weight the high bytes so broken and valid multi-byte sequences abound.
    alphabet += list(range(0x80, 0x100)) * 2
    names = set()
    while len(names) < 300:
        n = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        if n not in (b".", b".."):
            names.add(n + b".pyc")
    names = sorted(names)
    r, records = inspect_names(pycache, tmp_path, names)
    assert len(records) == len(names)
    for name, rec in zip(names, records):
        assert rec["path"] == os.fsdecode(name)
        assert os.fsencode(rec["path"]) == name
        # The source path of a legacy file is escaped the same way.
        assert os.fsencode(rec["source"]) == name[:-1]


def test_human_output_and_errors_escape_names(pycache, tmp_path):
    name = b"new\nline.pyc"
    write_garbage(os.path.join(os.fsencode(str(tmp_path)), name))
    r = pycache("inspect", name, b"no\nsuch\xff.pyc", cwd=str(tmp_path))
    assert r.returncode == 3
    assert r.stdout.splitlines()[0] == "new\\nline.pyc"
    assert r.stderr == ("pycache inspect: cannot open 'no\\nsuch\\xff.pyc': "
                        "No such file or directory\n")


# ---- how output ends -------------------------------------------------------------------

def many_files(tmp_path, count=4000):
    path = str(tmp_path / "g.pyc")
    write_garbage(path)
    return [path] * count   # well over a pipe's 64 KiB of output


@pytest.mark.parametrize("ignore_sigpipe", [False, True])
def test_closed_pipe_ends_quietly(pycache_bin, tmp_path, ignore_sigpipe):
    files = many_files(tmp_path)
    script = ("trap '' PIPE; " if ignore_sigpipe else "") + '"$0" inspect "$@" | head -n 1'
    p = subprocess.run(["sh", "-c", script, pycache_bin] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.stdout.decode() == files[0] + "\n"
    assert p.stderr == b""


def test_closed_pipe_status(pycache_bin, tmp_path):
    files = many_files(tmp_path)
    proc = subprocess.Popen([pycache_bin, "inspect"] + files, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert err == b""
    assert proc.returncode == -signal.SIGPIPE


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("many", [False, True])
def test_full_disk_on_stdout_is_reported(pycache_bin, tmp_path, many):
    files = many_files(tmp_path) if many else many_files(tmp_path, 1)
    with open("/dev/full", "w") as full:
        p = subprocess.run([pycache_bin, "inspect"] + files, stdout=full,
                           stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 3
    assert p.stderr.decode() == ("pycache inspect: cannot write to standard output: "
                                 "No space left on device\n")


def test_help_to_full_disk(pycache_bin):
    with open("/dev/full", "w") as full:
        p = subprocess.run([pycache_bin, "--help"], stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 3
    assert b"No space left on device" in p.stderr


def test_closed_stdout_does_not_leak_into_files(pycache_bin, tmp_path):
    """With fd 1 closed, nothing the command opens may become "stdout"."""
    write_garbage(str(tmp_path / "g.pyc"))
    p = subprocess.run([pycache_bin, "inspect", "g.pyc"], cwd=str(tmp_path),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       preexec_fn=lambda: os.close(1))
    # Legacy garbage without a source: corrupt, exit 1 (not 3: the
    # output went to /dev/null on fd 1, not into a file opened as fd 1).
    assert p.returncode == 1
    with open(str(tmp_path / "g.pyc"), "rb") as f:
        assert f.read() == b"not a pyc at all"


@pytest.mark.parametrize("args", [
    ["where", "--python", "3\x1b[31m\n1", "x.py"],
    ["clean", "--debris", "py\ntest", "."],
    ["check", "--fail-on", "stale\r\x07", "."],
])
def test_usage_errors_escape_what_the_user_typed(pycache, tmp_path, args):
    """One error, one line, and no control sequence reaches the terminal,
    whatever the option value holds."""
    r = pycache(*args, cwd=str(tmp_path))
    assert r.returncode == 2
    lines = r.stderr_bytes.split(b"\n")
    assert len(lines) == 3 and lines[2] == b""  # the error, the hint
    assert not any(c < 0x20 and c != 0x0A for c in r.stderr_bytes)
    assert b"\\n" in lines[0] or b"\\x1b" in lines[0] or b"\\r" in lines[0]
