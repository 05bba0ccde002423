"""Runs first in the kernel's process: apply limits, scrub the environment, exec the kernel.

    python -I -m workbench.runner.launcher --memory-mb=4096 --scrub-env -- \
        python -m ipykernel_launcher ...

Limits set here are inherited by everything the kernel starts. Inside the sandbox the
launcher starts as root (with only the capabilities to change user) and becomes the
unprivileged `--user` before anything else runs. This module must stay free of heavy
imports: it runs once per kernel start.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

from workbench.runner.cgroups import join
from workbench.runner.isolation import allowed_env

MB = 1024 * 1024


def _set_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _become(user: str) -> None:
    """Drop to `UID:GID` for good: groups, gid, then uid (real, effective and saved)."""
    uid, gid = (int(part) for part in user.split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise SystemExit(f"workbench.runner.launcher: could not become {user}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The launcher's options; `command` is what runs once they are applied."""
    parser = argparse.ArgumentParser(prog="workbench.runner.launcher")
    parser.add_argument("--memory-mb", type=int)
    parser.add_argument("--file-size-mb", type=int)
    parser.add_argument("--processes", type=int)
    parser.add_argument("--scrub-env", action="store_true")
    parser.add_argument(
        "--cgroup",
        action="append",
        default=[],
        help="a run cgroup's cgroup.procs file to join first (as root; repeated in cgroup v1)",
    )
    parser.add_argument("--user", help="UID:GID to become before the kernel starts (as root)")
    parser.add_argument("--log", help="file that receives the kernel's own stdout and stderr")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.command:
        parser.error("no command to run")
    return args


def prepare(args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """Apply the limits, the user and the log to this process; the environment to run with.

    Shared by `main`, which then execs the command, and by the kernel zygote's forked
    children (`workbench.runner.zygote`), which start the kernel in-process instead.
    """
    if args.cgroup:
        # First, while still root: whatever the kernel forks from now on is in the run's
        # cgroup, under its limits, metered and killed with it.
        join(args.cgroup)
    if args.memory_mb:
        _set_limit(resource.RLIMIT_AS, args.memory_mb * MB)
    if args.file_size_mb:
        _set_limit(resource.RLIMIT_FSIZE, args.file_size_mb * MB)
    if args.processes:
        _set_limit(resource.RLIMIT_NPROC, args.processes)
    if args.user:
        # Before the log: the run folder belongs to that user, not to a root without
        # capabilities.
        _become(args.user)
    if args.scrub_env:
        env = allowed_env(env)
    if args.log:
        # The kernel's own messages belong to the run, not to the user's terminal.
        fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    return env


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    env = prepare(args, dict(os.environ))
    sys.stdout.flush()
    os.execvpe(args.command[0], args.command, env)


if __name__ == "__main__":
    main()
