# bash completion for thintrim-host(1)                        -*- shell-script -*-
# SPDX-License-Identifier: GPL-2.0-or-later

# VMs this host knows of: Proxmox VMIDs and libvirt domain names, from the
# directories given with --pve-dir / --libvirt-dir on the line, else the
# installed ones.
_thintrim_host_vms()
{
    local pve_dir=/etc/pve libvirt_dir=/etc/libvirt/qemu j file
    for ((j = 1; j < cword; j++)); do
        case ${words[j]} in
            --pve-dir) pve_dir=${words[j + 1]} ;;
            --libvirt-dir) libvirt_dir=${words[j + 1]} ;;
        esac
    done
    for file in "$pve_dir"/qemu-server/*.conf "$libvirt_dir"/*.xml; do
        [[ -f $file ]] || continue
        file=${file##*/}
        printf '%s\n' "${file%.*}"
    done
}

# Running QEMU processes: what --pid takes.
_thintrim_host_qemu_pids()
{
    local pid comm
    while read -r pid comm; do
        [[ $comm == qemu-system* || $comm == kvm ]] && printf '%s\n' "$pid"
    done < <(ps -eo pid=,comm= 2>/dev/null)
}

_thintrim_host()
{
    local cur prev words cword
    _init_completion || return

    local commands='audit prove vzdump-hook'
    local global_opts='--help --version --pve-dir --libvirt-dir --proc'

    local i command=''
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --pve-dir | --libvirt-dir | --proc) ((i++)) ;;
            -*) ;;
            *)
                command=${words[i]}
                break
                ;;
        esac
    done

    case $prev in
        --pve-dir | --libvirt-dir | --proc)
            _filedir -d
            return
            ;;
        --prometheus | --qga | --qmp)
            _filedir
            return
            ;;
        --pid)
            mapfile -t COMPREPLY < <(compgen -W "$(_thintrim_host_qemu_pids)" -- "$cur")
            return
            ;;
        --vm)
            mapfile -t COMPREPLY < <(compgen -W "$(_thintrim_host_vms)" -- "$cur")
            return
            ;;
        --timeout | --trim-timeout)
            # A duration (5s, 1min): nothing to offer.
            return
            ;;
    esac

    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$global_opts" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        fi
        return
    fi

    if [[ $command == vzdump-hook ]]; then
        # vzdump passes PHASE [MODE VMID]; by hand, the phase that acts.
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W '--qga --trim-timeout --timeout --help' -- "$cur")
        elif [[ $prev == vzdump-hook ]]; then
            mapfile -t COMPREPLY < <(compgen -W 'backup-start backup-end backup-abort job-init job-start job-end job-abort log-end pre-stop pre-restart post-restart' -- "$cur")
        elif [[ $prev == backup-* || $prev == log-end || $prev == pre-* || $prev == post-restart ]]; then
            mapfile -t COMPREPLY < <(compgen -W 'snapshot suspend stop' -- "$cur")
        elif [[ $prev == snapshot || $prev == suspend || $prev == stop ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$(_thintrim_host_vms)" -- "$cur")
        fi
        return
    fi

    local opts='--json --bytes --prometheus --pid --timeout --help'
    case $command in
        audit) opts+=' --vm --no-qmp' ;;
        prove) opts+=' --qga --qmp --trim-timeout' ;;
        *) return ;;
    esac

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return
    fi

    if [[ $command == prove ]]; then
        # One VM.
        local j
        for ((j = i + 1; j < cword; j++)); do
            case ${words[j]} in
                --prometheus | --qga | --qmp | --pid | --timeout | --trim-timeout) ((j++)) ;;
                -*) ;;
                *) return ;;
            esac
        done
        mapfile -t COMPREPLY < <(compgen -W "$(_thintrim_host_vms)" -- "$cur")
    fi
} &&
    complete -F _thintrim_host thintrim-host

# ex: filetype=sh
