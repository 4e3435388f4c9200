"""The man page, the README's examples and the shell completions stay true.

Each is compared with what the binary itself says: the commands of
`pycache --help` and the long options of `pycache CMD --help`. The man page
must build with scdoc and render with man(1) without a warning; every command
needs its section there, and every long option its mention in that section;
every `pycache ...` line of the README and of the man page's examples must
name a command that exists with options that parse; each completion file must
offer exactly the long options of each command, and the bash one must work
when sourced.
"""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import ROOT

SCD = os.path.join(ROOT, "docs", "pycache.1.scd")
COMPLETIONS = os.path.join(ROOT, "completions")


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


@pytest.fixture(scope="session")
def commands(pycache_bin):
    """The commands `pycache --help` lists, in its order."""
    out = run([pycache_bin, "--help"]).stdout
    section = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in section.splitlines() if line.strip()]
    assert "watch" in names and "check" in names
    return names


def help_options(pycache_bin, cmd):
    """{long option: takes an argument} from `pycache CMD --help`."""
    r = run([pycache_bin, cmd, "--help"])
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("options:\n", 1)[1].split("\n\n", 1)[0]
    opts = {}
    for line in section.splitlines():
        m = re.match(r"^  (?:-\S, |    )--([a-z0-9-]+)(=\S+)?", line)
        if m:
            opts[m.group(1)] = m.group(2) is not None
    assert "help" in opts
    return opts


@pytest.fixture(scope="session")
def all_options(pycache_bin, commands):
    return {cmd: help_options(pycache_bin, cmd) for cmd in commands}


# ---- the man page ----------------------------------------------------------------

@pytest.fixture(scope="session")
def man_page(tmp_path_factory):
    """Builds the page with the Makefile's own rule (`make man`) into a
    fresh build directory."""
    if shutil.which("scdoc") is None:
        pytest.fail("scdoc is missing (scripts/install-deps installs it)")
    build = str(tmp_path_factory.mktemp("man-build"))
    r = run(["make", "-s", "BUILD=" + build, "man"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    page = os.path.join(build, "pycache.1")
    assert os.path.getsize(page) > 0
    return page


def test_man_page_renders_without_warnings(man_page):
    if shutil.which("man") is None:
        pytest.skip("man (man-db) is missing")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    r = run(["man", "--warnings", "-l", man_page], env=env)
    assert r.returncode == 0
    assert r.stderr == ""
    assert "pycache - keep Python bytecode caches honest" in r.stdout
    # No scdoc markup left over (an unbalanced * or _ would show).
    assert "\\_" not in r.stdout and "*--" not in r.stdout
    for line in r.stdout.splitlines():
        assert len(line) <= 80, line


def man_sections():
    """{command: the text of its '## command' section} of the scdoc source."""
    text = open(SCD).read()
    parts = re.split(r"^## (\S+)\s*$", text, flags=re.M)
    sections = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        # A subsection ends at the next top-level section.
        sections[name] = re.split(r"^# ", body, flags=re.M)[0]
    return sections


def test_every_command_has_a_section(commands):
    sections = man_sections()
    missing = [c for c in commands if c not in sections]
    assert not missing, "commands without a man page section: %s" % missing


def test_every_long_option_is_in_its_commands_section(all_options):
    sections = man_sections()
    missing = []
    for cmd, opts in all_options.items():
        body = sections.get(cmd, "")
        for opt in opts:
            if opt == "help":
                continue  # said once for all, in DESCRIPTION
            if not re.search(r"\*--%s\*" % re.escape(opt), body):
                missing.append("%s --%s" % (cmd, opt))
    assert not missing, "options missing from the man page: %s" % missing


def test_man_page_required_sections():
    text = open(SCD).read()
    for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "STATUSES",
                 "JSON FIELDS", "EXIT STATUS", "ENVIRONMENT", "SEE ALSO"):
        assert re.search(r"^# %s$" % name, text, flags=re.M), name
    for var in ("PYTHONPYCACHEPREFIX", "NO\\_COLOR", "PYCACHE\\_PYTHONS",
                "SOURCE\\_DATE\\_EPOCH"):
        assert "*%s*" % var in text, var


def test_statuses_and_exit_codes_match_the_binary(libpycache, pycache_bin):
    """STATUSES lists every status the library names; EXIT STATUS the four
    of `pycache --help`."""
    import ctypes
    libpycache.pyc_status_name.restype = ctypes.c_char_p
    libpycache.pyc_status_name.argtypes = [ctypes.c_int]
    text = open(SCD).read()
    statuses = text.split("# STATUSES", 1)[1].split("\n# ", 1)[0]
    names = []
    for i in range(32):
        name = libpycache.pyc_status_name(i)
        if not name or name in (b"", b"?", b"unknown"):
            break
        names.append(name.decode())
    assert len(names) >= 10
    for name in names:
        assert "*%s*\n" % name in statuses, name
    exits = text.split("# EXIT STATUS", 1)[1].split("\n# ", 1)[0]
    help_text = run([pycache_bin, "--help"]).stdout
    for code in re.findall(r"^  (\d)  ", help_text, flags=re.M):
        assert "*%s*\n" % code in exits


# ---- examples: the README's and the man page's ------------------------------------

def example_lines():
    """(where, line) for each `pycache ...` command line in the README's code
    blocks and the man page's examples."""
    found = []
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", open(readme).read(), flags=re.M | re.S)
        for block in blocks:
            for line in block.splitlines():
                found.append(("README.md", line))
    in_examples = False
    for line in open(SCD).read().splitlines():
        if line.startswith(("#", "*")):
            in_examples = False
        elif line == "Examples:":
            in_examples = True
        elif in_examples:
            line = line.strip().replace("++", "").replace("\\_", "_").replace("\\*", "*")
            found.append(("pycache.1.scd", line))
    out = []
    for where, line in found:
        line = line.split(" #", 1)[0].strip()
        m = re.search(r"(?:^|[|&;]\s*)(?:\$ )?(?:\S*/)?pycache (\S.*)$", line)
        if m:
            # Up to a pipe or the end of the shell command.
            out.append((where, m.group(1).split("|")[0].strip()))
    return out


EXAMPLES = example_lines()


def test_examples_were_found():
    assert len([e for e in EXAMPLES if e[0] == "pycache.1.scd"]) >= 20


@pytest.mark.parametrize("where,line", EXAMPLES, ids=["%s: %s" % e for e in EXAMPLES])
def test_example_commands_parse(where, line, pycache_bin, commands, tmp_path):
    words = shlex.split(os.path.expanduser(line))
    cmd = words[0]
    assert cmd in commands, "%s: unknown command %r" % (where, cmd)
    # --help after the options: it is acted on only if every option before
    # it parsed (a usage error exits with 2 first).
    r = run([pycache_bin] + words + ["--help"], cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, "%s: %r: %s" % (where, line, r.stderr)
    assert r.stdout.startswith("usage: pycache %s" % cmd)


# ---- completions ------------------------------------------------------------------------

def bash_options():
    text = open(os.path.join(COMPLETIONS, "pycache.bash")).read()
    body = text.split("_pycache_options()", 1)[1].split("\n}", 1)[0]
    return {cmd: set(re.findall(r"--([a-z0-9-]+)", opts))
            for cmd, opts in re.findall(r"^\s+(\w+)\)\n\s+echo '([^']*)'", body, flags=re.M)}


def zsh_options():
    text = open(os.path.join(COMPLETIONS, "_pycache")).read()
    out = {}
    for cmd, body in re.findall(r"^_pycache_(\w+)\(\)\n\{\n(.*?)^\}", text, flags=re.M | re.S):
        # Option specs: '--name[...' '--name=[...' and {-x,--name}'[...'
        out[cmd] = set(re.findall(r"(?:'|,)--([a-z0-9-]+)(?:=?\[|\+?=?\})", body))
    return out


def fish_options():
    text = open(os.path.join(COMPLETIONS, "pycache.fish")).read()
    out = {}
    for cmd, rest in re.findall(r"-n '__fish_seen_subcommand_from (\w+)' (.*)$", text, flags=re.M):
        m = re.search(r"(?:^| )-l ([a-z0-9-]+)", rest)
        if m:
            out.setdefault(cmd, set()).add(m.group(1))
    return out


@pytest.mark.parametrize("parse", [bash_options, zsh_options, fish_options],
                         ids=["bash", "zsh", "fish"])
def test_completion_options_equal_help(parse, all_options):
    got = parse()
    assert set(got) == set(all_options), "commands differ"
    for cmd, opts in all_options.items():
        want, have = set(opts), got[cmd]
        assert have == want, "%s: missing %s, extra %s" % (cmd, want - have, have - want)


def bash_complete(words, cword=None):
    """COMPREPLY of the bash completion for WORDS (the last one being
    completed), with the file sourced in a fresh `bash -c`."""
    if cword is None:
        cword = len(words) - 1
    script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _pycache; '
              'printf "%%s\\n" "${COMPREPLY[@]}"') % (
        shlex.quote(os.path.join(COMPLETIONS, "pycache.bash")),
        " ".join(shlex.quote(w) for w in words), cword)
    r = run(["bash", "-c", script])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return [l for l in r.stdout.splitlines() if l]


def test_bash_syntax():
    r = run(["bash", "-n", os.path.join(COMPLETIONS, "pycache.bash")])
    assert r.returncode == 0, r.stderr


def test_completions_are_generated_from_help(pycache_bin, tmp_path):
    """The three files are what scripts/gen-completions makes of the binary's
    own --help: `make completions` after changing an option."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader(
        "gen_completions", os.path.join(ROOT, "scripts", "gen-completions"))
    spec = importlib.util.spec_from_loader("gen_completions", loader)
    gen = importlib.util.module_from_spec(spec)
    loader.exec_module(gen)
    for name, text in gen.generate(pycache_bin).items():
        with open(os.path.join(COMPLETIONS, name)) as f:
            assert f.read() == text, "completions/%s is out of date: make completions" % name


def test_bash_completes_commands(commands):
    assert bash_complete(["pycache", ""]) == commands + ["help", "--help", "--version"]
    assert bash_complete(["pycache", "wa"]) == ["watch"]
    assert bash_complete(["pycache", "-q", "pr"]) == ["prune"]


def test_bash_completes_each_commands_options(all_options):
    for cmd, opts in all_options.items():
        got = bash_complete(["pycache", cmd, "--"])
        assert sorted(got) == sorted("--" + o for o in opts), cmd


@pytest.mark.parametrize("words,want", [
    (["pycache", "convert", "--to", ""], ["checked-hash", "unchecked-hash", "timestamp"]),
    (["pycache", "convert", "--to", "=", "un"], ["unchecked-hash"]),
    (["pycache", "convert", "--to=un"], ["unchecked-hash"]),
    (["pycache", "compile", "--invalidation-mode", "c"], ["checked-hash"]),
    (["pycache", "check", "--check-hash-based-pycs", ""], ["default", "always", "never"]),
    (["pycache", "stats", "--color", "a"], ["auto", "always"]),
    (["pycache", "watch", "--pr"], ["--prune-first", "--prefix"]),
])
def test_bash_completes_choices(words, want):
    assert bash_complete(words) == want


def test_bash_completes_directories_and_files(tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile.py").write_text("")
    base = str(tmp_path) + "/a"
    assert bash_complete(["pycache", "watch", "--prefix", base]) == [base + "dir"]
    assert sorted(bash_complete(["pycache", "check", base])) == [base + "dir", base + "file.py"]
    assert bash_complete(["pycache", "versions", base]) == []


def test_zsh_completion_loads():
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed")
    path = os.path.join(COMPLETIONS, "_pycache")
    r = run([zsh, "-n", path])
    assert r.returncode == 0, r.stderr
    # Loaded by compinit from an fpath directory, as installed.
    script = ("fpath=(%s $fpath); autoload -Uz compinit; compinit -u -D; "
              "print -r -- ${_comps[pycache]}") % shlex.quote(COMPLETIONS)
    r = run([zsh, "-f", "-c", script], env=dict(os.environ, HOME=os.environ.get("TMPDIR", "/tmp")))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "_pycache"


def test_fish_completion_works(all_options):
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish is not installed")
    path = os.path.join(COMPLETIONS, "pycache.fish")
    r = run([fish, "--no-execute", path])
    assert r.returncode == 0, r.stderr
    for cmd in ("watch", "convert"):
        script = "source %s; complete -C 'pycache %s --'" % (shlex.quote(path), cmd)
        r = run([fish, "--no-config", "-c", script])
        assert r.returncode == 0, r.stderr
        got = {l.split("\t")[0] for l in r.stdout.splitlines()}
        assert got == {"--" + o for o in all_options[cmd]}, cmd
    r = run([fish, "--no-config", "-c",
             "source %s; complete -C 'pycache convert --to '" % shlex.quote(path)])
    assert {l.split("\t")[0] for l in r.stdout.splitlines()} == {
        "checked-hash", "unchecked-hash", "timestamp"}
