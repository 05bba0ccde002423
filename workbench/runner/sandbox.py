"""A forked kernel's way into its run's bubblewrap sandbox (the zygote's child calls it).

A kernel exec'd at the `sandbox` level is started by bwrap itself; a kernel forked from the
zygote cannot be, since bwrap only execs. So the zygote's child starts bwrap around a
placeholder and joins the namespaces bwrap made. Standard library only: it runs in a
call's environment's interpreter too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: it changes "/"
# jupyter_client interrupts a kernel (SIGINT to its process group) before killing it.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def enter_sandbox(spec: dict[str, Any]) -> int:
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
