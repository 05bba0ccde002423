"""Kernels forked from a process that has already imported them: the kernel zygote.

A kernel started as `python -m ipykernel_launcher` spends about 0.3 s of CPU importing
IPython, zmq, tornado and debugpy before it answers, once per submission, on the cores
the notebooks need. The zygote, started once per coordinating process, imports those
modules and forks one child per kernel: a fresh process, inheriting nothing from earlier
runs, that applies the run's limits, user, environment and log as
`workbench.runner.launcher` would, then starts the kernel application in-process.

Only what the launcher would end by exec'ing as `python -m ipykernel_launcher`, with this
interpreter or a call's environment's, is forked (one zygote per interpreter), into the
sandbox at that level (`runner.sandbox`); a child whose environment needs what the
zygote's start-up lacked (a `PYTHON*` variable, a hash seed) execs the kernel, and
anything else starts as before. `WORKBENCH_FORK_KERNELS=0`: never fork.

The zygote runs in its own session with a scrubbed environment (no secret of the
coordinator's); it exits when the coordinator's end of its socket closes, and every
child dies with it (`PR_SET_PDEATHSIG`): a coordinator killed leaves no kernel behind.

Protocol, JSON lines over a Unix socket pair:

    -> {"id": 7, "argv": [launcher arguments], "cwd": "...", "env": {...}}
    <- {"id": 7, "pid": 1234} with the child's pidfd attached, or {"id": 7, "error": "..."}
    <- {"exited": 1234, "status": -9}          whenever a child ends

A forked kernel shares with the others the zygote's hash seed (the iteration order of
sets of strings; `random` reseeds itself after a fork) and memory layout (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from workbench.runner.isolation import SandboxFork

# What a kernel imports before it answers its first request (measured: a child forked
# after these spends about 0.03 s of CPU before it is ready, against 0.3 s started anew).
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completer",
    "debugpy",
    "sqlite3",
    "pdb",
    "psutil",
    "workbench.recording",
)
KERNEL_MODULE = "ipykernel_launcher"
LAUNCHER = ["-I", "-m", "workbench.runner.launcher"]
DISABLE_ENV = "WORKBENCH_FORK_KERNELS"
SPAWN_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1
ENVIRONMENT_MARKER = "workbench-kernel.json"  # at a call's environment's root (its venv)


# --- the zygote process ---------------------------------------------------------------


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    """What in an environment changes how the interpreter starts (and so its state)."""
    import site

    keys = {k for k in env if k.startswith("PYTHON")}
    if site.ENABLE_USER_SITE:
        keys.add("HOME")  # user site-packages are found under HOME
    return {k: env[k] for k in keys}


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _die_with(parent: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(
    request: dict[str, Any], zygote_pid: int, startup: dict[str, str], settled: int
) -> NoReturn:
    """In the forked child: become the run's kernel, then exit; never returns."""
    code = 1
    try:
        from workbench.runner import cgroups, launcher
        from workbench.runner.sandbox import enter_sandbox

        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.close(settled)  # the zygote may answer now: this process leads its own group
        argv, cwd, env = request.pop("argv"), request.pop("cwd"), request.pop("env")
        sandbox = request.pop("sandbox", None)
        request.clear()  # the zygote's frames below this one hold the same dict
        args = launcher.parse(argv)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        parent = zygote_pid
        if sandbox is not None:
            _die_with(zygote_pid)
            # Before bwrap: the sandbox, its placeholder and the kernel are all in the
            # run's cgroup (the launcher inside cannot reach /sys to join it).
            cgroups.join(sandbox.get("cgroup") or ())
            parent = enter_sandbox(sandbox)  # returns in a child born inside it
        os.chdir(cwd)
        env = launcher.prepare(args, env)
        # After the user changes: a change of credentials clears the death signal.
        _die_with(parent)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the zygote's socket and pipes
        if _startup_env(env) != startup:
            # This interpreter did not start the way the kernel's would: start that one.
            os.execvpe(args.command[0], args.command, env)
        os.environ.clear()
        os.environ.update(env)
        from importlib.util import find_spec

        from ipykernel.kernelapp import IPKernelApp

        spec = find_spec(KERNEL_MODULE)
        sys.argv = [spec.origin if spec and spec.origin else KERNEL_MODULE, *args.command[3:]]
        IPKernelApp.launch_instance(argv=args.command[3:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def serve(fd: int, preload: tuple[str, ...] = ()) -> None:
    """The zygote's loop: fork a kernel per request, report each child's end.

    `preload`: more to do before the first fork, each `module` or `module:function`.
    """
    import importlib

    sock = socket.socket(fileno=fd)
    # Started as `python -m` in "/": like ipykernel's launcher, keep the start folder off
    # sys.path (the kernel's own folder is added back by IPython).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for name in preload:
        module, _, function = name.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    startup = _startup_env(dict(os.environ))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    requests = _lines(sock)
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(sock)
        if sock.fileno() not in ready:
            continue
        try:
            request = next(requests)
        except (StopIteration, OSError):
            # The coordinator is gone; the children die with this process. Nothing to
            # flush or finalise: skip the interpreter's teardown of every preloaded module.
            os._exit(0)
        # The coordinator sends one whole line and waits for its answer before the
        # next, so a read never leaves a request behind in the buffer.
        reply: dict[str, Any] = {"id": request.pop("id", None)}
        # The child closes its end of `settled` once it leads its own session, so the
        # coordinator never gets a pid whose process group does not exist yet.
        settled_r, settled_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(settled_r)
            os.close(settled_w)
            _send(sock, {**reply, "error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            _child(request, me, startup, settled_w)
        del request
        os.close(settled_w)
        os.read(settled_r, 1)
        os.close(settled_r)
        # Opened before this loop can reap the child: the pidfd is of this child, even if
        # it has already ended and its pid is reused later. It travels with the answer.
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(sock, [json.dumps({**reply, "pid": pid}).encode() + b"\n"], [pidfd])
        finally:
            os.close(pidfd)


# --- the coordinator's side -----------------------------------------------------------


class ForkedKernel:
    """A kernel process forked by the zygote, with the part of `Popen` that providers use.

    It is not this process's child: its end is watched through a pidfd that the zygote
    opened before it could reap the child (so signals never reach a reused pid), and
    its exit status comes from the zygote.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int, zygote: Zygote) -> None:
        import weakref

        self.pid = pid
        self.returncode: int | None = None
        self._zygote = zygote
        self._pidfd = pidfd
        weakref.finalize(self, zygote.forget, pid, pidfd)

    def _ended(self, timeout: float | None) -> bool:
        ready, _, _ = select.select([self._pidfd], [], [], timeout)
        return bool(ready)

    def poll(self) -> int | None:
        if self.returncode is None and self._ended(0):
            # Ended; the zygote reports how at once. If the zygote died too, the kernel was
            # killed with it (PR_SET_PDEATHSIG).
            status = self._zygote.exit_status(self.pid, timeout=1.0)
            self.returncode = status if status is not None else -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        if self.returncode is None and not self._ended(timeout):
            raise subprocess.TimeoutExpired(["kernel", str(self.pid)], timeout or 0)
        status = self.poll()
        assert status is not None
        return status

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """The coordinator's handle on one zygote process.

    Requests carry an id that the answer echoes, so an answer that comes after its
    request was given up on is never taken for another's: its kernel is killed.
    """

    def __init__(self, python: str | None = None, preload: tuple[str, ...] = ()) -> None:
        import itertools
        import subprocess

        from workbench.runner.isolation import allowed_env

        ours, theirs = socket.socketpair()
        env = allowed_env(dict(os.environ))
        # debugpy warns at import that frozen modules hide breakpoints; kernels here are
        # not debugged. Children get the run's environment, not this one.
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        self.process = subprocess.Popen(
            # Started as `python -m ipykernel_launcher` starts, in "/" (see `serve`), with
            # only the allow-listed environment: a kernel whose environment differs in
            # what changes Python's start-up is exec'd instead (see `_child`).
            # A call's environment's interpreter imports its own ipykernel.
            [python or sys.executable, "-m", __name__, str(theirs.fileno()), *preload],
            pass_fds=[theirs.fileno()],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on the batch is for the coordinator
        )
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._replies: dict[int, tuple[dict[str, Any], int | None]] = {}
        self._abandoned: set[int] = set()
        self._exits: dict[int, int] = {}
        self._changed = threading.Condition()
        self._open = True
        self._reader = threading.Thread(target=self._read, name="workbench-zygote", daemon=True)
        self._reader.start()

    def _messages(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        """The zygote's messages, each answer with the pidfd that came with it."""
        import collections

        buffer, fds = b"", collections.deque[int]()
        while True:
            chunk, received, _, _ = socket.recv_fds(self._sock, 65536, 16)
            if not chunk:
                return
            fds.extend(received)  # a pidfd arrives with the first byte of its answer
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                yield message, (fds.popleft() if "pid" in message and fds else None)

    def _read(self) -> None:
        try:
            for message, pidfd in self._messages():
                with self._changed:
                    if "exited" in message:
                        self._exits[message["exited"]] = message["status"]
                    elif message.get("id") in self._abandoned:
                        self._abandoned.discard(message["id"])
                        if pidfd is not None:
                            with contextlib.suppress(ProcessLookupError):
                                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                            os.close(pidfd)
                    else:
                        self._replies[int(message.get("id") or 0)] = (message, pidfd)
                    self._changed.notify_all()
        except (OSError, ValueError):
            pass
        with self._changed:
            self._open = False
            self._changed.notify_all()

    @property
    def alive(self) -> bool:
        return self._open and self.process.poll() is None

    def spawn(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        sandbox: dict[str, Any] | None = None,
    ) -> ForkedKernel:
        """Fork a kernel that runs `workbench.runner.launcher` with `argv`, in `cwd`, with `env`.

        With `sandbox` (see `fork_request`), inside a bubblewrap sandbox of its own.
        """
        from workbench.errors import ExecutionError

        with self._lock:
            request_id = next(self._ids)
            try:
                request = {"id": request_id, "argv": argv, "cwd": cwd, "env": env}
                if sandbox is not None:
                    request["sandbox"] = sandbox
                _send(self._sock, request)
            except OSError as exc:
                raise ExecutionError(f"the kernel zygote is gone: {exc}") from exc
            with self._changed:
                if not self._changed.wait_for(
                    lambda: request_id in self._replies or not self._open, SPAWN_TIMEOUT_S
                ):
                    self._abandoned.add(request_id)
                    raise ExecutionError("the kernel zygote did not answer")
                if request_id not in self._replies:
                    raise ExecutionError("the kernel zygote exited")
                reply, pidfd = self._replies.pop(request_id)
        if "error" in reply or pidfd is None:
            raise ExecutionError(
                f"the kernel zygote could not start a kernel: {reply.get('error', reply)}"
            )
        return ForkedKernel(reply["pid"], pidfd, self)

    def exit_status(self, pid: int, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self._open, timeout)
            return self._exits.pop(pid, None)

    def forget(self, pid: int, pidfd: int) -> None:
        """A kernel handle is gone: close its pidfd and drop an exit nobody asked for."""
        os.close(pidfd)
        with self._changed:
            self._exits.pop(pid, None)

    def close(self, wait: bool = True) -> None:
        """Close the socket: the zygote exits, and its kernels with it."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        if wait:
            with contextlib.suppress(Exception):
                self.process.wait(timeout=5)


_shared: dict[str, Zygote] = {}  # by interpreter
_shared_lock = threading.Lock()


def shared_zygote(python: str | None = None) -> Zygote:
    """The zygote for `python` (default: this one), started on first use and if it died."""
    import atexit

    python = python or sys.executable
    with _shared_lock:
        zygote = _shared.get(python)
        if zygote is None or not zygote.alive:
            if not _shared:
                atexit.register(_close_shared)
            zygote = _shared[python] = Zygote(python)
        return zygote


def _close_shared() -> None:
    for zygote in _shared.values():
        zygote.close(wait=False)  # this process is exiting; the zygote follows on its own


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") != "0" and hasattr(os, "pidfd_open")


def fork_request(
    cmd: list[str], kwargs: dict[str, Any], sandbox: SandboxFork | None = None
) -> dict[str, Any] | None:
    """The zygote request for a kernel command line, or None when it must be exec'd.

    `sandbox` is the bubblewrap level's description of the command: the kernel is then
    forked into the namespaces of a placeholder started with the same bwrap options.
    """
    import shutil

    from workbench.runner import launcher

    outer = list(sandbox.outer) if sandbox is not None else []
    if sandbox is not None and cmd[: len(outer) + len(sandbox.bwrap)] == outer + sandbox.bwrap:
        shell = shutil.which("sh", path="/usr/bin:/bin")
        if cmd[-len(sandbox.launcher) :] != sandbox.launcher or shell is None:
            return None
        request = fork_request(sandbox.launcher, {"cwd": sandbox.cwd, "env": sandbox.env})
        if request is not None:
            ready = "echo ready && exec sleep infinity"
            request["sandbox"] = {
                "bwrap": sandbox.bwrap,
                "placeholder": [shell, "-c", ready],
                "cgroup": list(sandbox.cgroup),
            }
        return request
    if cmd[:4] != [sys.executable, *LAUNCHER]:
        return None
    try:
        args = launcher.parse(cmd[4:])
    except SystemExit:
        return None
    command = args.command
    if len(command) < 3 or command[1:3] != ["-m", KERNEL_MODULE]:
        return None
    if (python := kernel_python(command[0])) is None:
        return None
    from workbench.runner.isolation import allowed_env

    env = dict(kwargs["env"] if kwargs.get("env") is not None else os.environ)
    if args.scrub_env:
        # Scrubbed here, so what the level keeps from the kernel never leaves.
        env = allowed_env(env)
    request = {"argv": cmd[4:], "cwd": str(kwargs.get("cwd") or Path.cwd()), "env": env}
    return request if python == sys.executable else {**request, "python": python}


def kernel_python(path: str) -> str | None:
    """The interpreter whose zygote can fork this kernel, or None (it is exec'd). A call's
    environment has `ENVIRONMENT_MARKER` (see `workbench.environments`); checked first, as
    its interpreter is often a link to the same file as this one's."""
    with contextlib.suppress(OSError):
        if os.path.isabs(path) and (Path(path).parent.parent / ENVIRONMENT_MARKER).is_file():
            return path
        if os.path.samefile(path, sys.executable):
            return sys.executable
    return None


if __name__ == "__main__":
    serve(int(sys.argv[1]), tuple(sys.argv[2:]))
