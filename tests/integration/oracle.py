"""Ask CPython itself what it does with a cache file.

The oracle imports a module with the real interpreter, verbose (-v) and
without writing bytecode (-B, so the tree is left as it was), and reads what
the import system says it did:

  'cache'       the cache file was loaded because it matched its source
                ("# PYC matches SRC", 2.7 and 3.x)
  'source'      the source was compiled (the cache was rejected or ignored)
  'sourceless'  a legacy .pyc was imported with no source
  'notfound'    the module could not be found (an orphan is never loaded)
  'error'       the import failed (a cache file that breaks the import)

It also returns what the module printed, so a test can tell *which* code ran
(an unchecked-hash pyc whose source changed runs the old code).
"""

import os
import re
import subprocess


def make_module(directory, name, marker, padding=""):
    """Writes NAME.py printing MARKER; returns its path."""
    path = os.path.join(directory, name + ".py")
    with open(path, "w") as f:
        f.write("print(%r)\n%s" % (marker, padding))
    return path


def compile_source(interp, source, cfile=None, mode=None, optimize=-1, legacy=False):
    """Lets INTERP compile SOURCE with py_compile (its own rules and paths).

    MODE: None (timestamp), 'checked-hash' or 'unchecked-hash' (3.7+).
    LEGACY: write NAME.pyc beside the source (compileall -b style).
    Returns the cache file's path."""
    if interp.major == 2:
        code = ("import py_compile, sys; src = sys.argv[1]; "
                "cf = sys.argv[2] or None; py_compile.compile(src, cfile=cf, doraise=True); "
                "sys.stdout.write(cf or (src + (__debug__ and 'c' or 'o')))")
        flags = ["-O"] if optimize and optimize > 0 else []
        out = interp.run(code, source, cfile or "", flags=flags).stdout
        return out.decode()
    if legacy and not cfile:
        cfile = os.path.splitext(source)[0] + ".pyc"
    kw = ""
    if mode:
        kw = ", invalidation_mode=py_compile.PycInvalidationMode.%s" % (
            mode.upper().replace("-", "_"))
    if (interp.major, interp.minor) >= (3, 5):
        kw += ", optimize=%d" % optimize
    code = ("import py_compile, sys; src = sys.argv[1]; cf = sys.argv[2] or None; "
            "sys.stdout.write(py_compile.compile(src, cfile=cf, doraise=True%s))" % kw)
    return interp.run(code, source, cfile or "").stdout.decode()


def cpython_import(interp, directory, module, flags=(), prefix=None, env=None):
    """Imports MODULE from DIRECTORY with INTERP; returns (outcome, printed)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import %s" % module)
    fl = ["-B", "-v"] + list(flags)
    if prefix is not None:
        fl += ["-X", "pycache_prefix=" + prefix]
    e = {"PYTHONHASHSEED": "0"}
    e.update(env or {})
    r = interp.run(code, directory, flags=fl, env=e, check=False)
    err = r.stderr.decode("utf-8", "replace")
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        if re.search(r"(ModuleNotFoundError|ImportError): No module named", err):
            return "notfound", out
        return "error", out
    mod_re = re.escape(module)
    if re.search(r"^# .*%s[^\n]* matches " % mod_re, err, re.M):
        return "cache", out
    # 3.x: "# code object from '.../mod.pyc'" for a sourceless import;
    # 2.7: "import mod # precompiled from .../mod.pyc" without "matches".
    if re.search(r"code object from '?[^\n]*%s\.py[co]'?$" % mod_re, err, re.M) or \
            re.search(r"^import %s # precompiled from " % mod_re, err, re.M):
        return "sourceless", out
    return "source", out


_BATCH = r"""
import sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    sys.stderr.write("@@MODULE %s\n" % name)
    sys.stdout.write("@@MODULE %s\n" % name)
    sys.stderr.flush(); sys.stdout.flush()
    try:
        __import__(name)
    except ImportError as e:
        sys.stderr.write("@@ERROR ImportError %s\n" % (e,))
    except Exception as e:
        sys.stderr.write("@@ERROR %s %s\n" % (type(e).__name__, e))
    sys.stderr.flush(); sys.stdout.flush()
"""


def _split(text):
    parts, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@@MODULE "):
            cur = line[len("@@MODULE "):]
            parts[cur] = []
        elif cur is not None:
            parts[cur].append(line)
    return {k: "\n".join(v) for k, v in parts.items()}


def batch_import(interp, directory, modules, flags=(), prefix=None):
    """Imports each of MODULES (top-level names) from DIRECTORY in one
    process of INTERP; returns {module: (outcome, printed)} with the outcomes
    of cpython_import."""
    fl = ["-B", "-v"] + list(flags)
    if prefix is not None:
        fl += ["-X", "pycache_prefix=" + prefix]
    r = interp.run(_BATCH, directory, *modules, flags=fl,
                   env={"PYTHONHASHSEED": "0"}, check=True)
    errs = _split(r.stderr.decode("utf-8", "replace"))
    outs = _split(r.stdout.decode("utf-8", "replace"))
    result = {}
    for name in modules:
        err, out = errs.get(name, ""), outs.get(name, "")
        m = re.escape(name)
        used = None
        matches = re.search(r"^# (\S*%s[^\n]*) matches " % m, err, re.M)
        sourceless = re.search(r"code object from '?([^\n']*/%s\.py[co])'?$" % m, err, re.M) or \
            re.search(r"^import %s # precompiled from (.*)$" % m, err, re.M)
        if "@@ERROR ImportError No module named" in err:
            outcome = "notfound"
        elif "@@ERROR" in err:
            outcome = "error"
            used = matches.group(1) if matches else (sourceless.group(1) if sourceless else None)
        elif matches:
            outcome, used = "cache", matches.group(1)
        elif sourceless:
            outcome, used = "sourceless", sourceless.group(1)
        else:
            outcome = "source"
        result[name] = {"outcome": outcome, "printed": out.strip(), "used": used,
                        "log": err}
    return result
