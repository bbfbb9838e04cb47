"""The boot sandbox's stub server: runs the stub programs (aws, curl, k3s, ...) for the node
script without starting a Python interpreter per call (a boot makes dozens of calls; each
start-up was most of a boot's time).

The stubs on the boot's PATH are CLIENT: a bash script that connects to this server over
loopback TCP, sends its PID, its program name and its arguments, and exits with the status
the server answers. For each call the server forks a child that takes the client's standard
output and error (as it keeps them: /proc/<client pid>/fd/4 and 5, opened for appending: the
same pipe or file the caller redirected) and working directory, then runs the program's source with that
argv, exactly as the program would run on its own (print, sys.exit, os.execv all behave as
in a process of their own, because it is one). The server waits for the child and answers
its exit status. Run by boot_sandbox.Sandbox.run, one per run, in its own process group
(killed with its children when the run ends).

    python stub_server.py <folder of <program>.py sources>
"""

from __future__ import annotations

import hashlib  # noqa: F401  (loaded once, for every program: the stubs import it)
import json  # noqa: F401
import os
import re  # noqa: F401
import select
import signal
import socket
import sys
import threading
import time  # noqa: F401
import traceback

import jmespath  # noqa: F401  (the aws stub imports it)
import yaml  # noqa: F401  (the systemctl stub imports it)

CLIENT = r"""#!/bin/bash
# A stub program of the boot sandbox: it runs in the sandbox's stub server
# (tests/support/stub_server.py), which answers with the program's exit status. The program
# writes to this client's output and error as kept in fds 4 and 5 (fds 1 and 2 are the socket
# for a moment while printf sends the request).
exec 4>&1 5>&2 3<>"/dev/tcp/127.0.0.1/$STUB_PORT" || exit 255
printf '%s\0' "$$" "${0##*/}" "$#" "$@" >&3
read -r status <&3 || status=255
exit "$status"
"""


def _fields(connection: socket.socket) -> list[str]:
    """pid, program, count, then count arguments, each NUL-terminated."""
    data, fields = b"", []
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            raise EOFError("the client left before its request was complete")
        data += chunk
        fields = data.split(b"\0")[:-1]
        if len(fields) >= 3 and len(fields) >= 3 + int(fields[2]):
            return [f.decode("utf-8", "surrogateescape") for f in fields]


def _become(client: str) -> None:
    """Take the client's standard output and error, and its working directory."""
    for fd, kept in ((1, 4), (2, 5)):
        target = os.open(f"/proc/{client}/fd/{kept}", os.O_WRONLY | os.O_APPEND)
        os.dup2(target, fd)
        os.close(target)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(f"/proc/{client}/cwd")


def _child(code, program: str, arguments: list[str], client: str) -> None:
    """In the forked child: become the program, with the client's output and directory."""
    try:
        _become(client)
    except BaseException:  # the sandbox's fault, not the program's: said where a test can see it
        with open(os.path.join(os.environ["STUB_LOG"], "stub-server-errors.log"), "a") as log:
            log.write(f"{program} {arguments}: cannot take over client {client}\n{traceback.format_exc()}")
        os._exit(255)
    status = 1
    try:
        sys.argv = [program, *arguments]
        exec(code, {"__name__": "__main__", "__file__": program})
        status = 0
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, (int, type(None))):
            print(done.code, file=sys.stderr)
    except BaseException:  # a stub that breaks says so, as a crashing program would
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


def _serve(connection: socket.socket, programs: dict) -> None:
    with connection:
        client, program, _count, *arguments = _fields(connection)
        if program not in programs:  # the sandbox's fault: say so where the test looks
            with open(os.path.join(os.environ["STUB_LOG"], "stub-server-errors.log"), "a") as log:
                log.write(f"no stub program {program!r} (called with {arguments})\n")
            connection.sendall(b"127\n")
            return
        pid = os.fork()
        if pid == 0:
            connection.close()
            _child(programs[program], program, arguments, client)
        # Until the program ends, or its client does: a client killed (e.g. by `timeout`) is the
        # program killed, as it would be were the client the program itself.
        exited = os.pidfd_open(pid)
        try:
            while True:
                ready, _, _ = select.select([connection, exited], [], [])
                if exited in ready:
                    break
                if not connection.recv(1, socket.MSG_PEEK):
                    os.kill(pid, signal.SIGKILL)
                    break
        finally:
            os.close(exited)
        _, wait_status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        try:
            connection.sendall(f"{status if status >= 0 else 128 - status}\n".encode())
        except OSError:
            pass  # the client is gone (e.g. killed by timeout)


def main(folder: str) -> None:
    programs = {name[:-3]: compile(open(os.path.join(folder, name)).read(), name[:-3], "exec")
                for name in os.listdir(folder) if name.endswith(".py")}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_serve, args=(connection, programs), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1])
