# bash completion for thintrim(1)                             -*- shell-script -*-
# SPDX-License-Identifier: GPL-2.0-or-later

# Mount points of filesystems on block devices: what `trim` and `stack` take.
# findmnt -r escapes blanks and the like as \xNN; printf %b turns them back.
_thintrim_mount_points()
{
    local target source IFS=$' \t\n'
    while read -r target source; do
        [[ $source == /dev/* ]] && printf '%b\n' "$target"
    done < <(findmnt -rn -o TARGET,SOURCE 2>/dev/null)
}

# COMPREPLY: the mount points starting with $cur, quoted for the shell
# ("/mnt/my data" is inserted as /mnt/my\ data).
_thintrim_complete_mount_points()
{
    local candidate IFS=$'\n'
    COMPREPLY=()
    for candidate in $(_thintrim_mount_points); do
        [[ $candidate == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$candidate")")
    done
}

_thintrim()
{
    local cur prev words cword
    _init_completion || return

    local commands='status list stack trim doctor verify cancel suspend resume reload'
    local global_opts='--help --version --sysfs-root --mountinfo --fstab --dev-root --swaps --crypttab --lvm-conf --systemd-config'

    # The command is the first word that is neither an option nor the value
    # of a global option.
    local i command=''
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --sysfs-root | --mountinfo | --fstab | --dev-root | --swaps | --crypttab | --lvm-conf | --systemd-config) ((i++)) ;;
            -*) ;;
            *)
                command=${words[i]}
                break
                ;;
        esac
    done

    case $prev in
        --sysfs-root | --dev-root | --systemd-config)
            _filedir -d
            return
            ;;
        --mountinfo | --fstab | --swaps | --crypttab | --lvm-conf | --config)
            _filedir
            return
            ;;
        --minimum | --chunk | --rate)
            # A size (K, M, G, T), a rate like 200M/s: nothing to offer.
            return
            ;;
    esac

    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts=''
    case $command in
        status) opts='--json --bytes --config' ;;
        list) opts='--all --json --bytes --config' ;;
        stack) opts='--json --bytes --config' ;;
        trim) opts='--all --no-wait --local --config --dry-run --minimum --rate --chunk --json --no-ask-password' ;;
        doctor) opts='--json --config' ;;
        verify) opts='--json --local --no-ask-password' ;;
        cancel | suspend | resume | reload) opts='--no-ask-password' ;;
        *) return ;;
    esac
    opts+=' --help'

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    local IFS=$'\n'
    case $command in
        trim | verify)
            _thintrim_complete_mount_points
            ;;
        stack)
            # One target: a mount point or a block device.
            local j
            for ((j = i + 1; j < cword; j++)); do
                [[ ${words[j]} != -* ]] && return
            done
            if [[ $cur == /dev/* ]]; then
                COMPREPLY=($(compgen -W "$(lsblk -rnpo NAME 2>/dev/null)" -- "$cur"))
            else
                _thintrim_complete_mount_points
            fi
            ;;
    esac
} &&
    complete -F _thintrim thintrim

# ex: filetype=sh
