# fish completion for pycache(1): subcommands, their long options (kept
# equal to `pycache CMD --help` by tests/integration/test_docs.py), fixed
# choices, directories for DIR arguments, file names for operands.

set -l commands check clean compile prune doctor convert inspect where stats versions watch
complete -c pycache -f
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -l help -d 'show help'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -l version -d 'show the version'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a check -d 'report every cache file under PATH with CPythons verdict on it'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a clean -d 'remove all bytecode under PATH (and, on request, tool caches)'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a compile -d 'byte-compile what is not fresh, with the real interpreters (parallel workers)'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a prune -d 'remove the bytecode CPython cannot or should not use; keep fresh caches'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a doctor -d 'audit a projects bytecode habits and fix them (--fix)'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a convert -d 'rewrite fresh 3.7+ pycs into another invalidation mode, without recompiling'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a inspect -d 'show what one cache files header says, and its verdict'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a where -d 'print where a sources cache goes, or a cache files source'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a stats -d 'count cache files and bytes by interpreter, level, mode and status'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a versions -d 'list the magic numbers of every Python, and their cache tags'
complete -c pycache -n "not __fish_seen_subcommand_from $commands" -a watch -d 'follow trees with inotify: remove a sources bytecode the moment it goes'

# check
complete -c pycache -n '__fish_seen_subcommand_from check' -F
complete -c pycache -n '__fish_seen_subcommand_from check' -l json -d 'JSON Lines: one object per cache file'
complete -c pycache -n '__fish_seen_subcommand_from check' -s 0 -l null -d 'print the paths of the files listed, each ended by NUL'
complete -c pycache -n '__fish_seen_subcommand_from check' -s v -l verbose -d 'list every cache file, fresh ones too'
complete -c pycache -n '__fish_seen_subcommand_from check' -s q -l quiet -d 'print nothing but errors: the exit status tells'
complete -c pycache -n '__fish_seen_subcommand_from check' -l deep -d 'also read each fresh pycs body as marshal.loads would'
complete -c pycache -n '__fish_seen_subcommand_from check' -l expect -x -d 'every source needs a fresh cache for Python X.Y'
complete -c pycache -n '__fish_seen_subcommand_from check' -l fail-on -x -d 'statuses that make the exit status 1'
complete -c pycache -n '__fish_seen_subcommand_from check' -l prefix -x -a '(__fish_complete_directories)' -d 'a PYTHONPYCACHEPREFIX tree'
complete -c pycache -n '__fish_seen_subcommand_from check' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from check' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from check' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from check' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from check' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from check' -l color -x -a 'auto always never' -d 'colour the status words: auto, always or never'
complete -c pycache -n '__fish_seen_subcommand_from check' -l zipimport -d 'judge a zip archive as zipimport does with it on sys.path'
complete -c pycache -n '__fish_seen_subcommand_from check' -l extracted -d 'judge an archive as its extracted files'
complete -c pycache -n '__fish_seen_subcommand_from check' -l extract-mtime -x -a 'archive now' -d 'the mtimes extraction gives the sources'
complete -c pycache -n '__fish_seen_subcommand_from check' -s h -l help -d 'show help'

# clean
complete -c pycache -n '__fish_seen_subcommand_from clean' -F
complete -c pycache -n '__fish_seen_subcommand_from clean' -s n -l dry-run -d 'list what would be removed, remove nothing'
complete -c pycache -n '__fish_seen_subcommand_from clean' -s v -l verbose -d 'list every file removed (and every file kept)'
complete -c pycache -n '__fish_seen_subcommand_from clean' -s q -l quiet -d 'print nothing but errors'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l json -d 'JSON Lines: one object per file, with an action field'
complete -c pycache -n '__fish_seen_subcommand_from clean' -s 0 -l null -d 'print the paths removed, each ended by NUL (xargs -0)'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l tag -x -d 'only the caches of this interpreter'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l keep-tag -x -d 'keep the caches of this interpreter (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l uninstalled -d 'only the caches of interpreters not installed here'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l debris -x -a 'pytest mypy ruff coverage jupyter package all' -d 'also remove tool caches'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l prefix -x -a '(__fish_complete_directories)' -d 'a PYTHONPYCACHEPREFIX tree'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from clean' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from clean' -s h -l help -d 'show help'

# compile
complete -c pycache -n '__fish_seen_subcommand_from compile' -F
complete -c pycache -n '__fish_seen_subcommand_from compile' -l python -r -F -d 'compile for this interpreter'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s o -l optimize -x -a '0 1 2' -d 'optimization levels, comma-separated or repeated: 0, 1, 2'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l invalidation-mode -x -a 'timestamp checked-hash unchecked-hash' -d 'timestamp, checked-hash or unchecked-hash'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s f -l force -d 'compile every source, fresh or not'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s n -l dry-run -d 'list what would be compiled or rewritten; start nothing'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s j -l jobs -x -d 'worker processes per interpreter'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s x -l exclude -x -d 'skip sources whose path matches this POSIX extended regex'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s i -l input -r -F -d 'also compile the files and directories listed in FILE, one'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s 0 -l null -d 'with -i: the names end with NUL bytes instead of newlines'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s l -l no-recurse -d 'do not recurse into subdirectories (compileall -l)'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s r -l maxlevels -x -d 'recurse at most N directory levels (compileall -r)'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s d -l ddir -x -a '(__fish_complete_directories)' -d 'record DIR in place of each PATH in the code objects file'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l strip -x -d 'remove PREFIXs components from the recorded file names'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l prepend -x -d 'prepend PREFIX to the recorded file names, after --strip'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s b -l legacy -d 'write NAME.pyc beside each source, for sourceless deployment'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l prefix -x -a '(__fish_complete_directories)' -d 'write into a PYTHONPYCACHEPREFIX tree at DIR (3.8+)'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l hardlink-dupes -d 'hard-link a levels pyc to the previous levels when'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s q -l quiet -d 'no summary; -qq: no error messages either'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s v -l verbose -d 'one line per cache file, and how many interpreters were'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l json -d 'JSON Lines: one object per cache file, with an action field'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from compile' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from compile' -s h -l help -d 'show help'

# prune
complete -c pycache -n '__fish_seen_subcommand_from prune' -F
complete -c pycache -n '__fish_seen_subcommand_from prune' -s n -l dry-run -d 'list what would be removed, remove nothing'
complete -c pycache -n '__fish_seen_subcommand_from prune' -s v -l verbose -d 'list every file removed, and every file kept'
complete -c pycache -n '__fish_seen_subcommand_from prune' -s q -l quiet -d 'print nothing but errors'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l json -d 'JSON Lines: one object per file, with an action field'
complete -c pycache -n '__fish_seen_subcommand_from prune' -s 0 -l null -d 'print the paths removed, each ended by NUL (xargs -0)'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l sourceless -d 'also remove sourceless pycs'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l deep -d 'also read each fresh pycs body as marshal.loads would'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l prefix -x -a '(__fish_complete_directories)' -d 'a PYTHONPYCACHEPREFIX tree'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from prune' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from prune' -s h -l help -d 'show help'

# doctor
complete -c pycache -n '__fish_seen_subcommand_from doctor' -F
complete -c pycache -n '__fish_seen_subcommand_from doctor' -l fix -d 'append the missing ignore lines to .gitignore, untrack'
complete -c pycache -n '__fish_seen_subcommand_from doctor' -l staged -d 'pre-commit mode: fail when a FILE'
complete -c pycache -n '__fish_seen_subcommand_from doctor' -l json -d 'JSON Lines'
complete -c pycache -n '__fish_seen_subcommand_from doctor' -s q -l quiet -d 'print nothing but errors: the exit status tells'
complete -c pycache -n '__fish_seen_subcommand_from doctor' -l color -x -a 'auto always never' -d 'colour the checklist: auto, always or never'
complete -c pycache -n '__fish_seen_subcommand_from doctor' -s h -l help -d 'show help'

# convert
complete -c pycache -n '__fish_seen_subcommand_from convert' -F
complete -c pycache -n '__fish_seen_subcommand_from convert' -l to -x -a 'checked-hash unchecked-hash timestamp' -d 'the invalidation mode to write'
complete -c pycache -n '__fish_seen_subcommand_from convert' -s n -l dry-run -d 'say what would be converted; change nothing'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l sync -d 'make the rewritten files durable before exiting'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l json -d 'JSON Lines: one object per pyc, with an action field'
complete -c pycache -n '__fish_seen_subcommand_from convert' -s 0 -l null -d 'print the paths of the files converted'
complete -c pycache -n '__fish_seen_subcommand_from convert' -s v -l verbose -d 'also list every file converted or already in that mode'
complete -c pycache -n '__fish_seen_subcommand_from convert' -s q -l quiet -d 'print nothing but errors: the exit status tells'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l prefix -x -a '(__fish_complete_directories)' -d 'a PYTHONPYCACHEPREFIX tree'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from convert' -l color -x -a 'auto always never' -d 'colour the action words: auto, always or never'
complete -c pycache -n '__fish_seen_subcommand_from convert' -s h -l help -d 'show help'

# inspect
complete -c pycache -n '__fish_seen_subcommand_from inspect' -F
complete -c pycache -n '__fish_seen_subcommand_from inspect' -s j -l json -d 'write one JSON object per file (JSON Lines)'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l deep -d 'also check the marshalled code (what marshal.loads rejects)'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l check-hash-based-pycs -x -a 'default always never' -d 'as CPythons option: default, always or never'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l prefix -x -a '(__fish_complete_directories)' -d 'the cache prefix tree FILEs lie in ($PYTHONPYCACHEPREFIX)'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l color -x -a 'auto always never' -d 'colour the status: auto, always or never'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l zipimport -d 'judge a zip archive as zipimport does with it on sys.path'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l extracted -d 'judge an archive as its extracted files'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -l extract-mtime -x -a 'archive now' -d 'the mtimes extraction gives the sources'
complete -c pycache -n '__fish_seen_subcommand_from inspect' -s h -l help -d 'show help'

# where
complete -c pycache -n '__fish_seen_subcommand_from where' -F
complete -c pycache -n '__fish_seen_subcommand_from where' -l python -r -F -d 'whose rules apply'
complete -c pycache -n '__fish_seen_subcommand_from where' -l opt -x -a '0 1 2' -d 'optimization level 0, 1 or 2 (-O, -OO) for sources'
complete -c pycache -n '__fish_seen_subcommand_from where' -l prefix -x -a '(__fish_complete_directories)' -d 'PYTHONPYCACHEPREFIX (3.8+; default: $PYTHONPYCACHEPREFIX)'
complete -c pycache -n '__fish_seen_subcommand_from where' -s 0 -l null -d 'end each path with a NUL byte, not a newline'
complete -c pycache -n '__fish_seen_subcommand_from where' -l json -d 'JSON Lines: {path, python, opt, cache|source}'
complete -c pycache -n '__fish_seen_subcommand_from where' -s h -l help -d 'show help'

# stats
complete -c pycache -n '__fish_seen_subcommand_from stats' -F
complete -c pycache -n '__fish_seen_subcommand_from stats' -l json -d 'JSON Lines: one object per row (group, key, files, bytes...)'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l color -x -a 'auto always never' -d 'bold headings: auto, always or never'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l prefix -x -a '(__fish_complete_directories)' -d 'a PYTHONPYCACHEPREFIX tree'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l zipimport -d 'judge a zip archive as zipimport does with it on sys.path'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l extracted -d 'judge an archive as its extracted files'
complete -c pycache -n '__fish_seen_subcommand_from stats' -l extract-mtime -x -a 'archive now' -d 'the mtimes extraction gives the sources'
complete -c pycache -n '__fish_seen_subcommand_from stats' -s h -l help -d 'show help'

# versions
complete -c pycache -n '__fish_seen_subcommand_from versions' -l json -d 'JSON Lines: one object per magic number'
complete -c pycache -n '__fish_seen_subcommand_from versions' -l all -d 'every magic number, not only each versions final one'
complete -c pycache -n '__fish_seen_subcommand_from versions' -s h -l help -d 'show help'

# watch
complete -c pycache -n '__fish_seen_subcommand_from watch' -F
complete -c pycache -n '__fish_seen_subcommand_from watch' -s n -l dry-run -d 'report what would be removed, remove nothing'
complete -c pycache -n '__fish_seen_subcommand_from watch' -s q -l quiet -d 'print nothing but errors'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l json -d 'JSON Lines: one object per action, with an action field'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l prune-first -d 'at start-up, remove what pycache prune would'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l prefix -x -a '(__fish_complete_directories)' -d 'also remove the entries of the PYTHONPYCACHEPREFIX tree DIR'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l ignore -x -d 'do not enter directories named NAME (repeatable)'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l no-default-ignores -d 'also enter .git .hg .svn .bzr _darcs and node_modules'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l include-venvs -d 'also enter virtual environments'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l one-file-system -d 'do not cross mount points'
complete -c pycache -n '__fish_seen_subcommand_from watch' -l check-hash-based-pycs -x -a 'default always never' -d 'judge hash-based pycs as python --check-hash-based-pycs'
complete -c pycache -n '__fish_seen_subcommand_from watch' -s h -l help -d 'show help'
