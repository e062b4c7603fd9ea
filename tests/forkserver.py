"""maintctl's commands, each run as a process of its own without paying for Python's start-up each time.

A server process imports maintctl (and what its commands import) once; each command is then a fork of it that
takes the test's stdin, stdout and stderr, environment, umask, working directory and arguments, and runs
`python -m maintctl` as a new process would (runpy, sys.exit, atexit, flushed streams). The test reads the
command's stdout and stderr from pipes of its own, as subprocess.run does, and gets its exit status (a negative
one for a signal) back from the server. Settings that Python reads at its own start (PYTHON*, the locale) need a
new interpreter, but PYTHONIOENCODING, which the fork applies to the streams it makes: conftest.py runs the
others as subprocess.run does (FORKS_TAKE), and tests/test_forks.py holds a fork to what a new one does.

Run as `python forkserver.py SOCKET`: it prints "ready" once it listens.
"""

from __future__ import annotations

import json
import locale
import os
import select
import selectors
import socket
import struct
import sys
import threading

HEADER = struct.Struct("!I")


def _preload() -> None:
    """Import maintctl's modules and the libraries its commands import lazily, as a start-up would have."""
    import importlib
    import pkgutil

    import maintctl

    for module in pkgutil.walk_packages(maintctl.__path__, "maintctl."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in ("redis", "sqlite_utils", "rich.console", "rich.progress", "rich.table", "typer.rich_utils"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _send(connection: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    socket.send_fds(connection, [HEADER.pack(len(data)) + data], list(fds)) if fds else connection.sendall(
        HEADER.pack(len(data)) + data
    )


def _receive(connection: socket.socket, fds: int = 0) -> tuple[dict, list[int]]:
    """Given a connection, return the next message on it and the file descriptors that came with it."""
    data, received, _, _ = socket.recv_fds(connection, 1 << 20, fds) if fds else (connection.recv(1 << 20), [], 0, 0)
    if len(data) < HEADER.size:
        raise EOFError
    (length,) = HEADER.unpack_from(data)
    while len(data) < HEADER.size + length:
        more = connection.recv(1 << 20)
        if not more:
            raise EOFError
        data += more
    return json.loads(data[HEADER.size :]), received


def _run_command(request: dict, fds: list[int]) -> None:
    """In the forked process: become `python -m maintctl ARGUMENTS` with the given streams; never return."""
    import atexit
    import runpy

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _new_standard_streams(request["env"])
        os.umask(request["umask"])
        os.chdir(request["cwd"])
        sys.path[0] = os.getcwd()  # as `python -m` puts it
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["argv0"], *request["arguments"]]
        try:
            runpy.run_module("maintctl", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code & 0xFF
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
            sys.excepthook(*sys.exc_info())
            code = 1
        threading._shutdown()  # as the interpreter does at exit: wait for threads not daemonic, then atexit
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                code = 120  # as the interpreter does when it cannot flush its streams at exit
    finally:
        os._exit(code)


def _new_standard_streams(environment: dict[str, str]) -> None:
    """Make sys.stdin, sys.stdout and sys.stderr anew on file descriptors 0, 1 and 2, as an interpreter does as it
    starts: buffered (stdout and stderr not, under PYTHONUNBUFFERED, as the server's own streams tell), then
    line-buffered on a terminal and stderr always; encoding and errors as the server's, but as the command's
    PYTHONIOENCODING says where it differs (ENCODING[:ERRORS], as Python reads it)."""
    import codecs
    import io

    given = environment.get("PYTHONIOENCODING", "")
    if given == os.environ.get("PYTHONIOENCODING", ""):
        given = ""  # the server's streams have it already
    named_encoding, _, named_errors = given.partition(":")
    encoding = codecs.lookup(named_encoding).name if named_encoding else None
    errors = named_errors or ("strict" if named_encoding else None)  # an encoding alone means strict
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        old = getattr(sys, f"__{name}__")
        buffered = mode == "r" or not old.write_through
        buffer = open(fd, mode + "b", buffering=-1 if buffered else 0, closefd=False)  # noqa: SIM115 - to its end
        raw = buffer.raw if buffered else buffer
        raw.name = f"<{name}>"
        stream = io.TextIOWrapper(
            buffer,
            encoding=encoding or old.encoding,
            errors=errors if errors and fd != 2 else old.errors,  # stderr's stay backslashreplace
            newline="\n",
            line_buffering=buffered and (raw.isatty() or fd == 2),
            write_through=old.write_through,
        )
        stream.mode = mode
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _serve_one(connection: socket.socket) -> None:
    """In a forked helper: take one request, fork the command, report its exit status (or that it timed out)."""
    import signal

    request, fds = _receive(connection, fds=3)
    pid = os.fork()
    if pid == 0:
        connection.close()
        _run_command(request, fds)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], request["timeout"])
    timed_out = not ready
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    _send(connection, {"status": os.waitstatus_to_exitcode(status), "timed_out": timed_out})
    connection.close()


def serve(path: str) -> None:
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    helpers = set()
    parent = os.getppid()
    while True:
        if not select.select([listener], [], [], 1.0)[0]:
            if os.getppid() != parent:  # the test process is gone (killed, interrupted): so is the server
                return
            continue
        connection, _ = listener.accept()
        if connection.recv(1) == b"q":  # stop: once every command has ended (their CPU time then counts as ours)
            for pid in helpers:
                os.waitpid(pid, 0)
            return
        pid = os.fork()
        if pid == 0:
            listener.close()
            try:
                _serve_one(connection)
            finally:
                os._exit(0)
        connection.close()
        helpers.add(pid)
        while helpers:  # reap the helpers that are done
            ended, _ = os.waitpid(-1, os.WNOHANG)
            if not ended:
                break
            helpers.discard(ended)


class Server:
    """The test's side: start the server once, then run commands through it."""

    def __init__(self, directory, environment: dict[str, str]):
        import subprocess

        self.path = str(directory / "forkserver.sock")
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.path],
            env=environment,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fork server did not start")
        self.argv0 = str(__import__("maintctl").__path__[0]) + "/__main__.py"

    def run(self, arguments: list[str], env: dict[str, str], cwd, timeout: float) -> tuple[int, str, str]:
        """Given arguments, an environment and a directory, run maintctl; return its exit status, stdout, stderr."""
        import subprocess

        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(self.path)
            connection.sendall(b"r")
            request = {
                "arguments": arguments,
                "env": env,
                "cwd": str(cwd),
                "umask": _umask(),
                "argv0": self.argv0,
                "timeout": timeout,
            }
            _send(connection, request, [_stdin(), out_write, err_write])
        finally:
            os.close(out_write)
            os.close(err_write)
        outputs = _read_all({out_read: bytearray(), err_read: bytearray()})
        answer, _ = _receive(connection)
        connection.close()
        encoding = locale.getpreferredencoding(False)  # as subprocess.run(text=True) decodes
        out, err = (bytes(output).decode(encoding) for output in outputs)
        if answer["timed_out"]:
            raise subprocess.TimeoutExpired([sys.executable, "-m", "maintctl", *arguments], timeout, out, err)
        return answer["status"], _universal(out), _universal(err)

    def stop(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.path)
            connection.sendall(b"q")
        try:
            self.process.wait(timeout=60)
        except Exception:  # noqa: BLE001
            self.process.kill()
            self.process.wait()


def _umask() -> int:
    """Return the test process's umask (which a new process would inherit), read without changing it."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))


_NULL: list[int] = []


def _stdin() -> int:
    """Return the test process's standard input (which subprocess.run would pass on), or /dev/null."""
    try:
        os.fstat(0)
        return 0
    except OSError:
        if not _NULL:
            _NULL.append(os.open(os.devnull, os.O_RDONLY))
        return _NULL[0]


def _universal(text: str) -> str:
    """As subprocess.run(text=True) reads it: universal newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_all(buffers: dict[int, bytearray]) -> list[bytearray]:
    """Read each pipe to its end (as communicate() does); return what each gave, in order."""
    order = list(buffers)
    with selectors.DefaultSelector() as selector:
        for fd in order:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    buffers[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    return [buffers[fd] for fd in order]


if __name__ == "__main__":
    serve(sys.argv[1])
