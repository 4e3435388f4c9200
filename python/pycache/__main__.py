"""``python -m pycache ARGS``: runs the bundled pycache program with ARGS.

The process is replaced (``os.execv``), so the exit status, signals and the
terminal are the program's own, exactly as when ``pycache ARGS`` is typed.
"""

import os
import sys

from ._binary import PycacheNotFound, find_pycache_bin


def main() -> None:
    try:
        binary = find_pycache_bin()
    except PycacheNotFound as e:
        sys.stderr.write("pycache: %s\n" % e)
        sys.exit(127)
    argv = ["pycache"] + sys.argv[1:]
    try:
        os.execv(binary, argv)
    except OSError as e:
        sys.stderr.write("pycache: cannot run '%s': %s\n" % (binary, e.strerror))
        sys.exit(126)


if __name__ == "__main__":
    main()
