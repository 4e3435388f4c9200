# bash completion for pycache(1)                         -*- shell-script -*-
#
# Subcommands, their long options (kept equal to `pycache CMD --help` by
# tests/integration/test_docs.py), fixed choices for the options that take
# one, directories for DIR arguments and file names for operands.

_pycache_options()
{
    case $1 in
    check)
        echo '--json --null --verbose --quiet --deep --expect --fail-on --prefix --zipimport --extracted --extract-mtime --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --color --help' ;;
    clean)
        echo '--dry-run --verbose --quiet --json --null --tag --keep-tag --uninstalled --debris --prefix --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --help' ;;
    compile)
        echo '--python --optimize --invalidation-mode --force --dry-run --jobs --exclude --input --null --no-recurse --maxlevels --ddir --strip --prepend --legacy --prefix --hardlink-dupes --quiet --verbose --json --ignore --no-default-ignores --include-venvs --one-file-system --help' ;;
    prune)
        echo '--dry-run --verbose --quiet --json --null --sourceless --deep --prefix --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --help' ;;
    doctor)
        echo '--fix --staged --json --quiet --color --help' ;;
    convert)
        echo '--to --dry-run --sync --json --null --verbose --quiet --prefix --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --color --help' ;;
    inspect)
        echo '--json --deep --check-hash-based-pycs --prefix --color --zipimport --extracted --extract-mtime --help' ;;
    where)
        echo '--python --opt --prefix --null --json --help' ;;
    stats)
        echo '--json --color --prefix --zipimport --extracted --extract-mtime --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --help' ;;
    versions)
        echo '--json --all --help' ;;
    watch)
        echo '--dry-run --quiet --json --prune-first --prefix --ignore --no-default-ignores --include-venvs --one-file-system --check-hash-based-pycs --help' ;;
    esac
}

# Options of COMMAND ($1) that take an argument: prints them.
_pycache_arg_options()
{
    case $1 in
    check)
        echo '--expect --fail-on --prefix --extract-mtime --ignore --check-hash-based-pycs --color' ;;
    clean)
        echo '--tag --keep-tag --debris --prefix --ignore --check-hash-based-pycs' ;;
    compile)
        echo '--python --optimize --invalidation-mode --jobs --exclude --input --maxlevels --ddir --strip --prepend --prefix --ignore -o -j -x -i -r -d' ;;
    prune)
        echo '--prefix --ignore --check-hash-based-pycs' ;;
    doctor)
        echo '--color' ;;
    convert)
        echo '--to --prefix --ignore --check-hash-based-pycs --color' ;;
    inspect)
        echo '--check-hash-based-pycs --prefix --color --extract-mtime' ;;
    where)
        echo '--python --opt --prefix' ;;
    stats)
        echo '--color --prefix --extract-mtime --ignore --check-hash-based-pycs' ;;
    watch)
        echo '--prefix --ignore --check-hash-based-pycs' ;;
    esac
}

_pycache()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands='check clean compile prune doctor convert inspect where stats versions watch'
    local cmd='' i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    COMPREPLY=()
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi
    # --opt=ARG: COMP_WORDBREAKS splits at '=' (words: --opt = ARG).
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi
    if [[ $prev == -* && " $(_pycache_arg_options "$cmd") " == *" $prev "* ]]; then
        case $prev in
        --to) COMPREPLY=($(compgen -W 'checked-hash unchecked-hash timestamp' -- "$cur")) ;;
        --invalidation-mode) COMPREPLY=($(compgen -W 'timestamp checked-hash unchecked-hash' -- "$cur")) ;;
        --check-hash-based-pycs) COMPREPLY=($(compgen -W 'default always never' -- "$cur")) ;;
        --color) COMPREPLY=($(compgen -W 'auto always never' -- "$cur")) ;;
        --extract-mtime) COMPREPLY=($(compgen -W 'archive now' -- "$cur")) ;;
        --debris) COMPREPLY=($(compgen -W 'pytest mypy ruff coverage jupyter package all' -- "$cur")) ;;
        --opt) COMPREPLY=($(compgen -W '0 1 2' -- "$cur")) ;;
        --optimize) COMPREPLY=($(compgen -W '0 1 2' -- "$cur")) ;;
        --prefix | --ddir | -d)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$cur")) ;;
        --input | -i | --python)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_pycache_options "$cmd")" -- "$cur"))
        return
    fi
    case $cmd in
    versions) ;;
    *)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}

complete -F _pycache pycache
