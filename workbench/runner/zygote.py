"""Kernels forked from a process that has already imported them: the kernel zygote.

A kernel started as `python -m ipykernel_launcher` spends about 0.3 s of CPU importing
IPython, zmq, tornado and debugpy before it answers, and a batch pays that once per
submission, on the cores the notebooks need. The zygote is a small process, started
once per coordinating process, that imports those modules and then forks one child
per kernel. Each child is still a fresh process: it inherits nothing from earlier
runs, only modules imported and never used. It applies the run's limits, user,
environment and log exactly as `workbench.runner.launcher` would, then starts the kernel
application in-process instead of exec'ing a new interpreter.

Only a command that the launcher would end by exec'ing `python -m ipykernel_launcher`
with this interpreter is forked; anything else (another kernel, another Python) is
started as before. A bubblewrap sandbox's kernel is forked into the sandbox: see
`_enter_sandbox`. A child whose final environment asks the
interpreter for something the zygote's start-up did not have (a `PYTHON*` variable,
a hash seed) execs the kernel the ordinary way. Set `WORKBENCH_FORK_KERNELS=0` to
never fork.

The zygote runs in its own session with a scrubbed environment, so it holds no secret
of the coordinator's. It exits when the coordinator's end of its socket closes, and
every child dies with it (`PR_SET_PDEATHSIG`), so a coordinator killed with SIGKILL
leaves no kernel behind.

Protocol, JSON lines over a Unix socket pair:

    -> {"id": 7, "argv": [launcher arguments], "cwd": "...", "env": {...}}
    <- {"id": 7, "pid": 1234} with the child's pidfd attached, or {"id": 7, "error": "..."}
    <- {"exited": 1234, "status": -9}          whenever a child ends

What a forked kernel shares with the others that a kernel started anew would not: the
zygote's hash seed (string hashing, so the iteration order of sets of strings, is the
same in every kernel of a batch; `random` reseeds itself after a fork) and its memory
layout. docs/security.md says so too.
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
        from workbench.runner import launcher

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
            parent = _enter_sandbox(sandbox)  # returns in a child born inside it
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


PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: it changes "/"
# jupyter_client interrupts a kernel (SIGINT to its process group) before killing it.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _enter_sandbox(spec: dict[str, Any]) -> int:
    """Start the run's bubblewrap sandbox around a placeholder, and continue inside it.

    This process (root, in its own session) starts `bwrap` with the run's options, joins
    every namespace bwrap made for the placeholder, and forks: the child, born inside
    (the PID namespace applies to children only), returns its parent's pid as it sees it
    and goes on to become the kernel. This process waits for it and exits with its
    status; bwrap
    dies with this process (`--die-with-parent`), and the whole sandbox with bwrap. What
    bwrap does for the command it runs itself is done here: a new session, no new
    privileges, an empty capability bounding set (the launcher then becomes nobody).
    """
    import ctypes
    import subprocess

    libc = ctypes.CDLL(None, use_errno=True)
    info_r, info_w = os.pipe()
    placeholder = subprocess.Popen(
        [*spec["bwrap"], "--info-fd", str(info_w), "--", *spec["placeholder"]],
        pass_fds=[info_w],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    os.close(info_w)
    # bwrap reports the pid before it has mounted anything: the placeholder's first line
    # says the sandbox is complete (it runs once every mount is in place).
    assert placeholder.stdout is not None
    if not placeholder.stdout.readline():
        raise OSError("bubblewrap did not start the sandbox")
    raw = b""
    while True:
        chunk = os.read(info_r, 4096)
        if not chunk:
            raise OSError(f"bubblewrap did not start the sandbox: {raw!r}")
        raw += chunk
        with contextlib.suppress(ValueError):
            inside = int(json.loads(raw)["child-pid"])
            break
    os.close(info_r)
    for name in NAMESPACES:
        target = f"/proc/{inside}/ns/{name}"
        if os.stat(target).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
            continue  # not one bwrap unshared (cgroup when the kernel has none)
        fd = os.open(target, os.O_RDONLY)
        if libc.setns(fd, 0) != 0:
            raise OSError(ctypes.get_errno(), f"cannot join the sandbox's {name} namespace")
        os.close(fd)
    pid = os.fork()
    if pid != 0:
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the zygote's socket among them
        # Signals meant for the kernel reach this process (its group leader, seen from the
        # kernel manager): pass them on. The kernel stays this process's child until it is
        # reaped below, so its pid cannot be reused meanwhile.
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, lambda received, _: os.kill(pid, received))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # end by the same signal (SIGKILL has no handler to reset)
            with contextlib.suppress(OSError):
                signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
            code = 128 - code
        os._exit(code)
    os.setsid()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    # Seen from inside, the parent (outside the PID namespace) has no pid: 0.
    return os.getppid()


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

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
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
            [sys.executable, "-m", __name__, str(theirs.fileno()), *preload],
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


_shared: Zygote | None = None
_shared_lock = threading.Lock()


def shared_zygote() -> Zygote:
    """This process's zygote, started on first use and again if it died."""
    import atexit

    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            if _shared is None:
                atexit.register(_close_shared)
            _shared = Zygote()
        return _shared


def _close_shared() -> None:
    if _shared is not None:
        _shared.close(wait=False)  # this process is exiting; the zygote follows on its own


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

    if sandbox is not None and cmd[: len(sandbox.bwrap)] == sandbox.bwrap:
        shell = shutil.which("sh", path="/usr/bin:/bin")
        if cmd[-len(sandbox.launcher) :] != sandbox.launcher or shell is None:
            return None
        request = fork_request(sandbox.launcher, {"cwd": sandbox.cwd, "env": sandbox.env})
        if request is not None:
            ready = "echo ready && exec sleep infinity"
            request["sandbox"] = {"bwrap": sandbox.bwrap, "placeholder": [shell, "-c", ready]}
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
    with contextlib.suppress(OSError):
        if os.path.samefile(command[0], sys.executable):
            from workbench.runner.isolation import allowed_env

            env = dict(kwargs["env"] if kwargs.get("env") is not None else os.environ)
            if args.scrub_env:
                # Scrubbed here, so what the level keeps from the kernel never leaves.
                env = allowed_env(env)
            return {"argv": cmd[4:], "cwd": str(kwargs.get("cwd") or Path.cwd()), "env": env}
    return None


if __name__ == "__main__":
    serve(int(sys.argv[1]), tuple(sys.argv[2:]))
