#!/usr/bin/env python3
# mounts.py - mount(2)/umount2(2) in bulk for tests/bench/mounts.sh and
# tests/dbus/mount-churn.sh: mount(8) re-reads the whole mount table on each
# call, which at 10,000 mounts costs more than the mount itself.
#
#   mounts.py grow BASE FROM TO SOURCE...   mounts BASE/m<i> for FROM <= i < TO:
#                                           every 20th a tmpfs, every 20th (+10)
#                                           an overlay, the rest bind mounts of
#                                           the SOURCEs in turn
#   mounts.py binds BASE FROM TO SOURCE [PAUSE]  bind mounts of SOURCE at BASE/b<i>
#   mounts.py unbind BASE FROM TO [PAUSE]        unmounts BASE/b<i>
#   mounts.py churn BASE SOURCE PAIRS PAUSE bind-mounts SOURCE at BASE/churn and
#                                           unmounts it, PAIRS times, PAUSE
#                                           seconds after each call
import ctypes
import os
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
MNT_DETACH = 2


def mount(source, target, fstype=None, flags=0, data=None):
    enc = lambda s: s.encode() if s is not None else None
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} {target}: {os.strerror(err)}")


def umount(target):
    if libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def grow(base, first, last, sources):
    for i in range(first, last):
        target = f"{base}/m{i}"
        os.makedirs(target, exist_ok=True)
        if i % 20 == 0:
            mount("tmpfs", target, "tmpfs", 0, "size=1m")
        elif i % 20 == 10:
            layer = f"{base}/.ov{i}"
            for d in ("l", "u", "w"):
                os.makedirs(f"{layer}/{d}", exist_ok=True)
            mount("overlay", target, "overlay", 0,
                  f"lowerdir={layer}/l,upperdir={layer}/u,workdir={layer}/w")
        else:
            mount(sources[i % len(sources)], target, None, MS_BIND)


def binds(base, first, last, source, pause):
    for i in range(first, last):
        os.makedirs(f"{base}/b{i}", exist_ok=True)
        mount(source, f"{base}/b{i}", None, MS_BIND)
        time.sleep(pause)


def unbind(base, first, last, pause):
    for i in range(first, last):
        umount(f"{base}/b{i}")
        time.sleep(pause)


def churn(base, source, pairs, pause):
    target = f"{base}/churn"
    os.makedirs(target, exist_ok=True)
    for _ in range(pairs):
        mount(source, target, None, MS_BIND)
        time.sleep(pause)
        umount(target)
        time.sleep(pause)


def main():
    cmd = sys.argv[1]
    if cmd == "grow":
        grow(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    elif cmd == "binds":
        binds(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
              float(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif cmd == "unbind":
        unbind(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
               float(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif cmd == "churn":
        churn(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(f"usage: {sys.argv[0]} grow|churn ...")


main()
