"""Where the bundled ``pycache`` program is, and how to run it.

The wheel installs the program as a script: into the environment's ``bin/``
(a venv, pipx, ``uv tool``, the system), the user scheme's ``bin/`` (``pip
install --user``) or ``TARGET/bin`` (``pip install --target``). The search
mirrors ruff's ``find_ruff_bin``: the scheme this interpreter installs
scripts into first, so the program found is the one installed with this
package, not another ``pycache`` earlier on ``PATH``.
"""

import os
import shutil
import sys
import sysconfig
from typing import Dict, List

__all__ = ["find_pycache_bin", "PycacheNotFound", "api_environ"]


class PycacheNotFound(FileNotFoundError):
    """The ``pycache`` program is not installed where this package expects it."""


def _user_scheme() -> str:
    if os.name == "nt":
        return "nt_user"
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return "posix_user"


def _candidates() -> List[str]:
    names: List[str] = []
    scripts = sysconfig.get_path("scripts")
    if scripts:
        names.append(os.path.join(scripts, "pycache"))
    try:
        user = sysconfig.get_path("scripts", scheme=_user_scheme())
    except KeyError:
        user = None
    if user:
        names.append(os.path.join(user, "pycache"))
    # pip install --target DIR: DIR/pycache/ (this package) beside DIR/bin/.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names.append(os.path.join(package_root, "bin", "pycache"))
    return names


def find_pycache_bin() -> str:
    """The path of the ``pycache`` program this package runs: ``$PYCACHE``
    when set (tests, or a build of your own), else the one installed with
    the package, else the first on ``PATH``. Raises PycacheNotFound."""
    env = os.environ.get("PYCACHE")
    if env:
        return env
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("pycache")
    if found:
        return found
    raise PycacheNotFound(
        "the pycache program is not installed (looked in %s and on PATH)"
        % ", ".join(_candidates()))


def api_environ() -> Dict[str, str]:
    """The environment the API runs the program in: the caller's, without
    PYTHONPYCACHEPREFIX (an API call names its prefix explicitly, so the
    answer does not depend on the shell that started Python)."""
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env
