#!/usr/bin/env python3
"""A FAKE qemu-guest-agent for tests: listens on a unix socket (as QEMU's
chardev does for the org.qemu.guest_agent.0 channel) and answers the calls
thintrim-host prove makes. There is no guest behind it: `thintrim` is "not
installed" (guest-exec fails as the real agent's does) and `fstrim -av`
"trims" FAKE_TRIMMED bytes without touching anything.

With FAKE_AGENT_HMP_SOCKET (a second QMP socket of the VM) and
FAKE_AGENT_DISCARD (a drive id and a length, "drive-scsi0 4M"), its
"fstrim" also discards that range through QEMU's block layer (HMP qemu-io),
so the image really shrinks; QEMU's device counters do not see it.

With FAKE_AGENT_FSINFO (JSON), guest-get-fsinfo answers it; without, the
agent lacks that command (CommandNotFound), as one that disallows it does.

With FAKE_AGENT_NEVER_ANSWER=1 it accepts the connection and reads, but
never answers: a stuck agent.

Usage: fake-guest-agent.py SOCKET [FAKE_TRIMMED]
"""
import base64
import json
import os
import socket
import sys

path = sys.argv[1]
trimmed = int(sys.argv[2]) if len(sys.argv) > 2 else 1073741824
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
# Never outlive a test that failed before connecting, or stalled.
server.settimeout(60)
connection, _ = server.accept()
connection.settimeout(60)
stream = connection.makefile("rwb")


def reply(obj, delimited=False):
    stream.write((b"\xff" if delimited else b"") + json.dumps(obj).encode() + b"\n")
    stream.flush()


def discard_through_qemu():
    hmp_socket = os.environ.get("FAKE_AGENT_HMP_SOCKET")
    target = os.environ.get("FAKE_AGENT_DISCARD")
    if not hmp_socket or not target:
        return
    drive, length = target.split()
    qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    qmp.connect(hmp_socket)
    lines = qmp.makefile("rwb")
    lines.readline()
    for request in ({"execute": "qmp_capabilities"},
                    {"execute": "human-monitor-command",
                     "arguments": {"command-line": f'qemu-io {drive} "discard 0 {length}"'}}):
        lines.write(json.dumps(request).encode() + b"\n")
        lines.flush()
        lines.readline()
    qmp.close()


if os.environ.get("FAKE_AGENT_NEVER_ANSWER") == "1":
    for raw in stream:
        pass
    sys.exit(0)

polls = 0
for raw in stream:
    line = raw.lstrip(b"\xff").strip()
    if not line:
        continue
    request = json.loads(line)
    command = request.get("execute")
    arguments = request.get("arguments", {})
    if command == "guest-sync-delimited":
        reply({"return": arguments["id"]}, delimited=True)
    elif command == "guest-get-fsinfo" and os.environ.get("FAKE_AGENT_FSINFO"):
        reply({"return": json.loads(os.environ["FAKE_AGENT_FSINFO"])})
    elif command == "guest-exec" and arguments.get("path") == "thintrim":
        reply({"error": {"class": "GenericError", "desc": "Guest agent command failed, error "
                         "was 'Failed to execute child process \u201cthintrim\u201d (No such "
                         "file or directory)'"}})
    elif command == "guest-exec":
        discard_through_qemu()
        reply({"return": {"pid": 321}})
    elif command == "guest-exec-status":
        polls += 1
        if polls < 2:
            reply({"return": {"exited": False}})
        else:
            out = f"/: 1 GiB ({trimmed} bytes) trimmed on /dev/sda1\n"
            reply({"return": {"exited": True, "exitcode": 0,
                              "out-data": base64.b64encode(out.encode()).decode()}})
    else:
        reply({"error": {"class": "CommandNotFound", "desc": f"{command} not found"}})
