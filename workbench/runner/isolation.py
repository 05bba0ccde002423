"""Isolation levels for the kernel that runs a submission: a registry, like papermill's engines.

    none      the kernel runs as the user's own process (a team on its own laptop)
    process   no namespaces; resource limits and a scrubbed environment
    sandbox   bubblewrap namespaces on top of `process`; fails closed when unavailable

Each level turns the kernel's command line into the one actually launched. The
limits themselves are applied by `workbench.runner.launcher`, which runs first inside the
kernel's process and then replaces itself with the kernel. docs/security.md says
what each level does and does not protect against.

This module is imported by the launcher at every kernel start: no heavy imports.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from workbench.errors import NotFoundError, SandboxError

# Variables a kernel may inherit; everything else (tokens, WORKBENCH_DB...) is dropped.
ENV_ALLOWLIST = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "JPY_PARENT_PID",
    "PYTHONHASHSEED",
)


def allowed_env(env: dict[str, str]) -> dict[str, str]:
    """The part of an environment a kernel may inherit (`ENV_ALLOWLIST`)."""
    return {k: v for k, v in env.items() if k in ENV_ALLOWLIST}


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to the kernel and everything it starts."""

    memory_mb: int
    file_size_mb: int = 1024
    processes: int = 4096  # counts threads too, per user: keep room for BLAS pools
    tmp_size_mb: int = 512  # each of the sandbox's private /tmp and /dev/shm
    # The run's cgroup (`cgroup.procs` files the kernel joins first, see runner.cgroups):
    # it bounds memory and processes for the whole run, so the per-process memory and
    # per-user process limits are not applied on top.
    cgroup: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cgroup", tuple(self.cgroup))  # a list when read from JSON


class Isolation:
    """Base class: `kernel_command` wraps the kernel's command line for this level.

    One instance serves one kernel: `connection` (before the connection file is
    written), then `kernel_command`, then `cleanup` once the kernel is gone.
    """

    name: ClassVar[str]
    # Whether a run at this level gets its own cgroup with the call's limits (as root).
    contained: ClassVar[bool] = False

    def check(self) -> None:
        """Raise `SandboxError` when this level cannot be provided here."""

    def connection(self, run_dir: Path) -> dict[str, str]:
        """Kernel manager settings (transport, ip, connection_file); empty keeps TCP loopback."""
        return {}

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        raise NotImplementedError

    def cleanup(self, run_dir: Path) -> None:
        """Undo what `connection` and `kernel_command` set up; the kernel is gone."""

    def sockets_bound(self) -> None:
        """The kernel is ready (its sockets are bound), before any of the notebook runs."""

    def check_socket(self, path: str) -> None:
        """Raise `SandboxError` unless `path` is this kernel's own Unix socket (or not yet)."""


def check_kernel_socket(path: str, uid: int) -> None:
    """Refuse to connect to `path` unless it is a socket owned by `uid`, not a link.

    A path that does not exist yet is the kernel's still to bind: nothing of the notebook
    has run then. Anything else there was put by someone else.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISSOCK(info.st_mode):
        problem = "is not a socket"
    elif info.st_uid != uid:
        problem = f"belongs to uid {info.st_uid}, not the kernel's {uid}"
    else:
        return
    raise SandboxError(f"{path} {problem}: the runner does not connect to it")


KERNEL_LOG = "kernel.log"


def launcher_command(cmd: list[str], run_dir: Path, *options: str) -> list[str]:
    """`cmd` started through `workbench.runner.launcher`, its own output kept in the run folder.

    `-I`: the launcher runs before any limit, in the run folder, where a submission's
    data files could otherwise shadow `workbench` itself.
    """
    log = f"--log={run_dir / KERNEL_LOG}"
    return [sys.executable, "-I", "-m", "workbench.runner.launcher", log, *options, "--", *cmd]


def _limit_options(limits: Limits, processes: int) -> list[str]:
    if limits.cgroup:  # the run's cgroup bounds memory and processes (runner.cgroups)
        return [f"--file-size-mb={limits.file_size_mb}", "--scrub-env"]
    return [
        f"--memory-mb={limits.memory_mb}",
        f"--file-size-mb={limits.file_size_mb}",
        f"--processes={processes}",
        "--scrub-env",
    ]


def _cgroup_options(limits: Limits) -> list[str]:
    """The launcher's options that make the kernel join the run's cgroup before it starts."""
    return [f"--cgroup={path}" for path in limits.cgroup]


class NoIsolation(Isolation):
    name = "none"

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        return launcher_command(cmd, run_dir)


class ProcessIsolation(Isolation):
    name = "process"
    contained = True

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        options = [*_cgroup_options(limits), *_limit_options(limits, limits.processes)]
        return launcher_command(cmd, run_dir, *options)


# The bubblewrap program, looked up on PATH (tests point it at a missing one).
BWRAP = "bwrap"
# As root, the kernel runs as nobody:nogroup: an account that owns no file on the host
# and that RLIMIT_NPROC binds (it never binds root).
SANDBOX_UID = 65534
SANDBOX_GID = 65534
# nobody runs only sandboxed kernels, so this caps all of them together (threads too).
SANDBOX_MAX_PROCESSES = 1024
CONNECTION_FILE = "kernel.json"
# The connection file and the sockets (`kernel-1` ... `kernel-5`) live in a folder of their
# own, never the run folder: the kernel may bind there until it is ready, then (as root)
# the folder is the runner's again and the kernel cannot replace a socket with a link.
IPC_NAME = "kernel"
SOCKET_DIR_PREFIX = "wbk-"
SOCKET_PATH_MAX = 107  # sun_path, without its terminating NUL
# Written by the runner after the kernel has ended (execute.RECORD_FILE): created empty
# and pinned read-only before the kernel starts, so the kernel cannot plant a symlink there.
RUNNER_LATE_FILES = ("run.json",)
PROBE_TIMEOUT_S = 30.0
INSTALL_HINT = (
    "install it (apt-get install bubblewrap) or lower the level explicitly with --isolation process"
)

_probed: dict[tuple[str, bool], str | None] = {}  # bwrap path, as root -> failure or None


def _privileged() -> bool:
    return os.geteuid() == 0


def _bwrap_path() -> str:
    path = shutil.which(BWRAP)
    if path is None:
        raise SandboxError(
            f"isolation 'sandbox' needs bubblewrap ({BWRAP!r} was not found on PATH); "
            f"nothing ran. To fix: {INSTALL_HINT}"
        )
    return path


def _namespace_args(privileged: bool) -> list[str]:
    args = [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
    ]
    if privileged:
        # bwrap keeps every capability for root; the launcher needs only these two, to
        # become nobody, which then clears them (and no_new_privs stops regaining any).
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]  # an unprivileged bwrap needs a user namespace
    return args


class _Mounts:
    """bwrap's mount arguments, creating each missing parent folder as 0755 first.

    bwrap would create them 0700 and root-owned, which the unprivileged kernel could
    not cross (e.g. `/root` on the way to a Python installed under `/root/.pyenv`).
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self._present = {Path("/")}

    def _parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            if parent not in self._present:
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self._present.add(parent)

    def add(
        self, option: str, source: str | None, dest: str | Path, *, before: tuple[str, ...] = ()
    ) -> None:
        dest = Path(dest)
        self._parents(dest)
        self.args += [*before, option, *([source] if source is not None else []), str(dest)]
        # What was under a new mount is hidden by it; the mount point itself exists.
        self._present = {p for p in self._present if not p.is_relative_to(dest)} | {dest}

    def bind(self, path: str | Path, *, writable: bool = False) -> None:
        self.add("--bind" if writable else "--ro-bind", str(path), path)

    def tmpfs(self, dest: str, perms: str, size_mb: int) -> None:
        size = str(size_mb * 1024 * 1024)
        self.add("--tmpfs", None, dest, before=("--perms", perms, "--size", size))


def _system_mounts() -> _Mounts:
    """The system, read-only: /usr and /etc, and the merged-/usr links (or dirs) at the top."""
    mounts = _Mounts()
    mounts.bind("/usr")
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            mounts.add("--symlink", os.readlink(top), top)
        elif os.path.isdir(top):
            mounts.bind(top)
    mounts.bind("/etc")
    mounts.add("--proc", None, "/proc")
    mounts.add("--dev", None, "/dev")
    return mounts


def python_roots(kernel_python: str | None = None) -> list[Path]:
    """What the kernel needs of the Python environment: the venv, its base install, workbench.

    workbench is bound on its own because it may be an editable install whose source
    folder sits in a repository that must stay out of the sandbox. A kernel started from
    a call's environment (`kernel_python`, another venv) needs that venv as well.
    """
    import workbench

    candidates = [
        Path(sys.prefix),
        Path(sys.exec_prefix),
        Path(sys.base_prefix),
        Path(sys.base_exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
        Path(workbench.__file__).resolve().parent,
    ]
    if kernel_python is not None and os.path.isabs(kernel_python):
        candidates.append(Path(os.path.abspath(kernel_python)).parent.parent)
    roots: list[Path] = []
    found = {p.resolve() for p in candidates if p.is_dir()}
    for path in sorted(found, key=lambda p: (len(p.parts), str(p))):
        covered = any(path.is_relative_to(r) for r in (*roots, Path("/usr")))
        if not covered:
            roots.append(path)
    return roots


def _probe(bwrap: str, privileged: bool) -> str | None:
    """Why bwrap cannot build the sandbox here, or None: actually run `bwrap ... true`."""
    import subprocess

    true = shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true"
    mounts = _system_mounts()  # with every kind of option a kernel's command uses
    mounts.tmpfs("/tmp", "1777", 1)
    mounts.add("--dir", None, "/tmp/probe/folder")
    cmd = [bwrap, *_namespace_args(privileged), *mounts.args, "--chdir", "/", "--", true]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap} could not be started: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"{bwrap} cannot create namespaces here: {detail[-1] if detail else done.returncode}"
    return None


@dataclass(frozen=True)
class SandboxFork:
    """The sandbox of one kernel, for a zygote that forks the kernel into it.

    The zygote's child starts `bwrap` (these options) around a placeholder, joins the
    namespaces it made, and runs `launcher` there in `cwd` with `env`: what
    `kernel_command` would have run, in the same namespaces and mounts.
    """

    bwrap: list[str]
    env: dict[str, str]
    cwd: str
    launcher: list[str]
    # The run's cgroup, joined before bwrap starts, and the command's prefix that joins it
    # when the kernel is exec'd instead (the launcher inside cannot see /sys).
    cgroup: tuple[str, ...] = ()
    outer: tuple[str, ...] = ()


class BubblewrapIsolation(Isolation):
    """The kernel in its own namespaces: no network, a read-only system, its run folder only.

    The kernel manager reaches it over Unix sockets in a folder of their own (TCP loopback is
    not shared with a network namespace). See docs/security.md.
    """

    name = "sandbox"
    contained = True

    def __init__(self) -> None:
        self._socket_dir: Path | None = None  # the connection file's and sockets' folder
        # What a kernel zygote needs to start the kernel in these namespaces (as root only).
        self.fork: SandboxFork | None = None

    def check(self) -> None:
        bwrap = _bwrap_path()
        key = (bwrap, _privileged())
        if key not in _probed:  # once per process: namespaces do not come and go
            _probed[key] = _probe(*key)
        failure = _probed[key]
        if failure is not None:
            raise SandboxError(
                f"isolation 'sandbox' is not available: {failure}; nothing ran. "
                f"To fix: {INSTALL_HINT}"
            )

    def connection(self, run_dir: Path) -> dict[str, str]:
        import tempfile

        # A short private path (a socket's path is at most 107 bytes), outside the run folder.
        self._socket_dir = Path(tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX, dir="/tmp"))
        if _privileged():
            os.chown(self._socket_dir, SANDBOX_UID, SANDBOX_GID)  # the kernel binds there
        return {
            "transport": "ipc",
            "connection_file": str(self._socket_dir / CONNECTION_FILE),
            "ip": str(self._socket_dir / IPC_NAME),
        }

    def sockets_bound(self) -> None:
        # As root the kernel is nobody: once the folder is root's, 0755, it can neither
        # remove its sockets nor put a link in their place. Without root the kernel is
        # this user, who owns the folder anyway; `check_socket` still runs at every connect.
        if self._socket_dir is not None and _privileged():
            os.chown(self._socket_dir, os.getuid(), os.getgid())
            os.chmod(self._socket_dir, 0o755)

    def check_socket(self, path: str) -> None:
        check_kernel_socket(path, SANDBOX_UID if _privileged() else os.getuid())

    @staticmethod
    def _environment() -> dict[str, str]:
        # No JPY_PARENT_PID: inside the PID namespace the kernel's parent is bwrap's init,
        # and ipykernel would take the mismatch for a dead parent. --die-with-parent does it.
        env = allowed_env(dict(os.environ))
        env.pop("JPY_PARENT_PID", None)
        env.update(HOME="/tmp", TMPDIR="/tmp")
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return env

    def _mount_run_folder(self, mounts: _Mounts, run_dir: Path) -> None:
        """The run folder, writable, at its own path; what the runner wrote there, pinned.

        Every entry present now (the input notebook, the executed notebook papermill
        rewrites during the run, the output log, staged data) and
        the record written later are bound read-only onto themselves. A mount point
        cannot be removed or renamed, so the kernel can neither change them nor swap
        one for a symlink through which the runner, writing as itself, would write
        elsewhere on the host.
        """
        for name in RUNNER_LATE_FILES:
            (run_dir / name).touch(exist_ok=True)
        mounts.bind(run_dir, writable=True)
        if self._socket_dir is not None:
            mounts.bind(self._socket_dir, writable=True)
        for entry in sorted(run_dir.iterdir()):
            if not entry.is_symlink() and (entry.is_file() or entry.is_dir()):
                mounts.bind(entry)

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        self.check()
        privileged = _privileged()
        mounts = _system_mounts()
        # tmpfs first: the Python environment, the run folder and the socket folder may all
        # live under /tmp (a checkout there), and a later mount hides what is under it.
        mounts.tmpfs("/tmp", "1777", limits.tmp_size_mb)
        mounts.tmpfs("/dev/shm", "1777", limits.tmp_size_mb)
        for root in python_roots(cmd[0]):  # read-only, the call's environment too
            mounts.bind(root)
        options = _limit_options(limits, min(limits.processes, SANDBOX_MAX_PROCESSES))
        if privileged:
            # The kernel, as nobody, owns its run folder for the run (`cleanup` gives it
            # back) and reads the connection file written by the runner.
            os.chown(run_dir, SANDBOX_UID, SANDBOX_GID)
            # The kernel's connection file (`-f`), written by the runner: nobody reads it.
            if "-f" in cmd[:-1]:
                connection_file = Path(cmd[cmd.index("-f") + 1])
                if connection_file.is_file() and not connection_file.is_symlink():
                    os.chown(connection_file, SANDBOX_UID, SANDBOX_GID)
            options.append(f"--user={SANDBOX_UID}:{SANDBOX_GID}")
        self._mount_run_folder(mounts, run_dir)
        bwrap = [_bwrap_path(), *_namespace_args(privileged), *mounts.args]
        env = self._environment()
        launcher = launcher_command(cmd, run_dir, *options)
        outer = _outer_join(limits)
        if privileged:
            self.fork = SandboxFork(
                bwrap=bwrap,
                env=env,
                cwd=str(run_dir),
                launcher=launcher,
                cgroup=limits.cgroup,
                outer=tuple(outer),
            )
        env_args = ["--clearenv"]
        for key, value in sorted(env.items()):
            env_args += ["--setenv", key, value]
        return [*outer, *bwrap, *env_args, "--chdir", str(run_dir), "--", *launcher]

    def cleanup(self, run_dir: Path) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if _privileged() and run_dir.is_dir():
            # Past runs must not stay writable by whatever else runs as nobody.
            os.chown(run_dir, os.getuid(), os.getgid())
        if run_dir.is_dir():
            # jupyter_client marks the folder of a connection file sticky; a run folder isn't.
            os.chmod(run_dir, stat.S_IMODE(run_dir.stat().st_mode) & ~stat.S_ISVTX)


def _outer_join(limits: Limits) -> list[str]:
    """A launcher that joins the run's cgroup, then execs bwrap; nothing without a cgroup."""
    if not limits.cgroup:
        return []
    return [sys.executable, "-I", "-m", "workbench.runner.launcher", *_cgroup_options(limits), "--"]


class IsolationRegistry:
    def __init__(self) -> None:
        self._levels: dict[str, type[Isolation]] = {}

    def register(self, cls: type[Isolation]) -> None:
        self._levels[cls.name] = cls

    def get(self, name: str) -> Isolation:
        try:
            return self._levels[name]()
        except KeyError:
            known = ", ".join(sorted(self._levels))
            raise NotFoundError(f"unknown isolation level {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._levels)


isolation_levels = IsolationRegistry()
isolation_levels.register(NoIsolation)
isolation_levels.register(ProcessIsolation)
isolation_levels.register(BubblewrapIsolation)
