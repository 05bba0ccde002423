"""A call's reference environment: the packages its notebooks may use, built once, locked.

A call declares `protocol.environment` (`requirements:` with version bounds, or a `lock:`
file beside the call file); a kit carries the funder's lock as `calls/<call>.lock`, which
a team's build then installs exactly. `build` makes a virtual environment (with `uv` when
it is on PATH, else `python -m venv` and this interpreter's pip) holding ipykernel, the
workbench's kernel side (`record`, the kernel launcher and zygote) and the requirements,
in a folder keyed by the declaration's hash; it writes the resolved lock (every
distribution==version) last, so a folder without one is an unfinished build and is made
again. Building again is a no-op; runs only read what was built, never the index.

Nothing here imports the store or the workspace: a Dask worker builds or verifies the
same lock with it (`ensure`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ExecutionError, InputError, InvalidError, Problem
from workbench.runner.records import KernelEnvironment
from workbench.runner.zygote import ENVIRONMENT_MARKER as MARKER

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.workspace import Workspace

# What every kernel environment holds besides the call's requirements.
KERNEL_REQUIREMENTS = ("ipykernel",)
FOLDER = "environments"  # under the workspace
WORKER_ROOT_ENV = "WORKBENCH_ENVIRONMENTS"  # where a Dask worker keeps its environments
LOCK_FILE = "lock.txt"
REQUIREMENTS_FILE = "requirements.txt"
KIT_LOCK_SUFFIX = ".lock"
# The workbench's own modules a kernel needs, copied into each environment: `record`, and
# what the zygote and the launcher run inside the kernel's interpreter (standard library
# only). `workbench/__init__.py` is the package's own: it imports nothing until asked.
KERNEL_SUPPORT = (
    "__init__.py",
    "errors.py",
    "recording.py",
    "runner/__init__.py",
    "runner/cgroups.py",
    "runner/isolation.py",
    "runner/launcher.py",
    "runner/sandbox.py",
    "runner/zygote.py",
)
BUILD_TIMEOUT_S = 1800.0

_FREEZE = """\
import importlib.metadata as m, json, re, sysconfig
found = {}
for d in m.distributions():
    name = re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "")).lower()
    if name:
        found[name] = d.version
print(json.dumps({"lock": sorted(found.items()), "purelib": sysconfig.get_paths()["purelib"]}))
"""

_FIND_SPECS = """\
import importlib.util, json, sys
missing = []
for name in sys.argv[1:]:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        missing.append(name)
print(json.dumps(missing))
"""


@dataclass(frozen=True)
class Declared:
    """What a call declares: its requirements, and the text of a lock shipped with it."""

    requirements: tuple[str, ...]
    lock: str | None = None

    @property
    def key(self) -> str:
        """The environment's folder name: the declaration's hash, per Python version."""
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        value = [python, list(KERNEL_REQUIREMENTS), sorted(self.requirements), self.lock]
        return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]

    def to_wire(self) -> dict[str, Any]:
        return {"requirements": list(self.requirements), "lock": self.lock}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Declared:
        return cls(tuple(data["requirements"]), data.get("lock"))


def lock_sha256(lock: str) -> str:
    return hashlib.sha256(lock.encode()).hexdigest()


def declared(call: Call, calls_dir: Path) -> Declared | None:
    """The call's declared environment, or None: its kernels run in the workbench's own."""
    spec = call.protocol.environment
    if spec is None:
        return None
    lock_path = calls_dir / spec.lock if spec.lock else calls_dir / f"{call.id}{KIT_LOCK_SUFFIX}"
    lock = None
    if spec.lock or lock_path.is_file():
        try:
            lock = lock_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidError.single(
                calls_dir / f"{call.id}.yaml", "protocol.environment.lock", f"{lock_path}: {exc}"
            ) from exc
    return Declared(tuple(spec.requirements), lock)


def default_root(workspace_root: Path) -> Path:
    return workspace_root / FOLDER


def worker_root() -> Path:
    """Where a Dask worker keeps the environments it builds ($WORKBENCH_ENVIRONMENTS)."""
    configured = os.environ.get(WORKER_ROOT_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench" / FOLDER


def interpreter(folder: Path) -> Path:
    return folder / "venv" / "bin" / "python"


def find(spec: Declared, root: Path) -> KernelEnvironment | None:
    """The built environment for `spec` under `root`, or None when it is not built."""
    # The folder's real path (not the venv's interpreter link): what the sandbox mounts.
    folder = root.resolve() / spec.key
    python, lock_file = interpreter(folder), folder / LOCK_FILE
    if not (lock_file.is_file() and python.exists()):
        return None
    lock = lock_file.read_text(encoding="utf-8")
    return KernelEnvironment(interpreter=str(python), lock_sha256=lock_sha256(lock))


def read_lock(spec: Declared, root: Path) -> str | None:
    lock_file = root / spec.key / LOCK_FILE
    return lock_file.read_text(encoding="utf-8") if lock_file.is_file() else None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One build of an environment at a time (workers of one machine share the folder)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, log: Callable[[str], None] | None) -> str:
    if log is not None:
        log(" ".join(cmd))
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExecutionError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ExecutionError(f"{what} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def _install(folder: Path, spec: Declared, log: Callable[[str], None] | None) -> None:
    """Create the venv and install into it: exactly the lock's pins, else the requirements."""
    venv, python = folder / "venv", str(interpreter(folder))
    if spec.lock is not None:
        lock_file = folder / "install-lock.txt"
        lock_file.write_text(spec.lock, encoding="utf-8")
        packages = ["--no-deps", "-r", str(lock_file)]
    else:
        packages = [*KERNEL_REQUIREMENTS, *spec.requirements]
    uv = shutil.which("uv")
    if uv is not None:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], "uv venv", log)
        _run([uv, "pip", "install", "--quiet", "--python", python, *packages], "uv pip", log)
        return
    # Without pip of its own: this interpreter's pip installs into it (`--python`), so a
    # venv made here holds what one made by uv holds, and both give the same lock.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv", log)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    _run([*pip, "--disable-pip-version-check", *packages], "pip install", log)


def _freeze(folder: Path) -> tuple[str, Path]:
    """The environment's lock text (`name==version`, sorted) and its site-packages."""
    out = _run([str(interpreter(folder)), "-I", "-c", _FREEZE], "reading the environment", None)
    data = json.loads(out)
    lock = "".join(f"{name}=={version}\n" for name, version in data["lock"])
    return lock, Path(data["purelib"])


def install_kernel_support(folder: Path, purelib: Path | None = None) -> None:
    """Copy the workbench's kernel side into the environment (again when it changed)."""
    import workbench

    if purelib is None:
        _lock, purelib = _freeze(folder)
    source = Path(workbench.__file__).resolve().parent
    for rel in KERNEL_SUPPORT:
        target = purelib / "workbench" / rel
        content = (source / rel).read_bytes()
        if not target.is_file() or target.read_bytes() != content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    marker = {"workbench": workbench.__version__, "site_packages": str(purelib)}
    (folder / "venv" / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def _support_current(folder: Path) -> bool:
    import workbench

    try:
        marker = json.loads((folder / "venv" / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    source = Path(workbench.__file__).resolve().parent
    target = Path(marker.get("site_packages", "")) / "workbench"
    return all(
        (target / rel).is_file() and (target / rel).read_bytes() == (source / rel).read_bytes()
        for rel in KERNEL_SUPPORT
    )


@dataclass(frozen=True)
class Built:
    environment: KernelEnvironment
    lock: str
    folder: Path
    created: bool  # False: it was there already and nothing was installed


def build(spec: Declared, root: Path, *, log: Callable[[str], None] | None = None) -> Built:
    """Build the environment for `spec` under `root`, or find it built; write its lock."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root.resolve() / spec.key
    with _exclusive(root / f".{spec.key}.build"):
        found = find(spec, root)
        if found is not None:
            if not _support_current(folder):
                install_kernel_support(folder)
            lock = (folder / LOCK_FILE).read_text(encoding="utf-8")
            return Built(found, lock, folder, created=False)
        if folder.exists():
            shutil.rmtree(folder)  # an unfinished build: no lock was written
        folder.mkdir(parents=True)
        try:
            _install(folder, spec, log)
            lock, purelib = _freeze(folder)
            install_kernel_support(folder, purelib)
            requirements = "".join(f"{r}\n" for r in (*KERNEL_REQUIREMENTS, *spec.requirements))
            (folder / REQUIREMENTS_FILE).write_text(requirements, encoding="utf-8")
            (folder / LOCK_FILE).write_text(lock, encoding="utf-8")  # last: the build is done
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    python = str(interpreter(folder))
    environment = KernelEnvironment(interpreter=python, lock_sha256=lock_sha256(lock))
    return Built(environment, lock, folder, created=True)


def ensure(spec: Declared, root: Path, expected_sha256: str, lock: str) -> KernelEnvironment:
    """On a worker: build the environment from the coordinator's `lock`, or verify it.

    Raises `ExecutionError` when the environment found or built here has another lock.
    """
    pinned = Declared(spec.requirements, spec.lock if spec.lock is not None else lock)
    built = build(pinned, root)
    if built.environment.lock_sha256 != expected_sha256:
        raise ExecutionError(
            f"its environment {built.folder} has lock {built.environment.lock_sha256[:12]}, "
            f"the batch's is {expected_sha256[:12]}"
        )
    return built.environment


def not_built(call_id: str) -> InputError:
    return InputError(
        f"call {call_id!r} declares an environment that is not built here; nothing ran. "
        f"To fix: workbench env build {call_id}"
    )


def kernel_environment(call: Call, calls_dir: Path, root: Path) -> KernelEnvironment | None:
    """The environment a call's kernels start from; None for the workbench's own.

    A declared environment that is not built is an error: runs never build (nor reach
    the package index).
    """
    spec = declared(call, calls_dir)
    if spec is None:
        return None
    found = find(spec, root)
    if found is None:
        raise not_built(call.id)
    return found


# --- imports of a notebook ------------------------------------------------------------


def _guarded(handlers: list[Any]) -> bool:
    """A `try` whose handlers catch ImportError: an optional import, not a requirement."""
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    for handler in handlers:
        kind = handler.type
        kinds = kind.elts if kind is not None and hasattr(kind, "elts") else [kind]
        if kind is None or any(getattr(k, "id", None) in names for k in kinds):
            return True
    return False


# Magics whose argument (line) or body (cell) is Python that runs: `%time import x`.
PYTHON_MAGICS = {"time", "timeit", "prun", "capture"}


def _magic_code(call: Any) -> str | None:
    """The Python that `get_ipython().run_line_magic/run_cell_magic(...)` runs, if any."""
    import ast

    func, args = call.func, call.args
    if not isinstance(func, ast.Attribute) or len(args) < 2:
        return None
    values = [a.value if isinstance(a, ast.Constant) else None for a in args]
    if values[0] not in PYTHON_MAGICS:
        return None
    if func.attr == "run_line_magic" and isinstance(values[1], str):
        return values[1]
    if func.attr == "run_cell_magic" and len(values) > 2 and isinstance(values[2], str):
        return values[2]
    return None


def _imports(tree: Any) -> Iterator[str]:
    """Top-level module names imported anywhere in a cell (functions too), unguarded."""
    import ast

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Try) and _guarded(node.handlers):
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                yield from visit(child)
            return
        if isinstance(node, ast.Call) and (code := _magic_code(node)) is not None:
            with contextlib.suppress(SyntaxError):
                yield from visit(ast.parse(code))
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module.split(".")[0]
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def notebook_imports(nb: Any) -> list[tuple[int, str]]:
    """(cell index, module) for each module a notebook's code cells import, in order."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()  # magics and shell escapes become plain Python
    found: list[tuple[int, str]] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(transformer.transform_cell(cell.source))
        except SyntaxError:
            continue  # the kernel reports it; it imports nothing we can read
        seen: set[str] = set()
        for name in _imports(tree):
            if name not in seen:
                seen.add(name)
                found.append((index, name))
    return found


# A built environment never changes: what it was found to lack, by (interpreter, lock hash).
_answers: dict[tuple[str, str], dict[str, bool]] = {}


def missing_modules(environment: KernelEnvironment | None, modules: list[str]) -> set[str]:
    """The modules an environment cannot find (`importlib.util.find_spec`).

    A call's environment is asked in one subprocess of its interpreter, for the modules it
    was not asked about before (a batch's submissions mostly import the same ones); the
    workbench's own (None) is this interpreter, asked in this process.
    """
    import importlib.util

    wanted = sorted(set(modules))
    if environment is None:
        found = {}
        for name in wanted:
            try:
                found[name] = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found[name] = False
        return {name for name, ok in found.items() if not ok}
    known = _answers.setdefault((environment.interpreter, environment.lock_sha256), {})
    unknown = [name for name in wanted if name not in known]
    if unknown:
        cmd = [environment.interpreter, "-I", "-c", _FIND_SPECS, *unknown]
        lacking = set(json.loads(_run(cmd, "checking the notebook's imports", None)))
        known.update({name: name not in lacking for name in unknown})
    return {name for name in wanted if not known[name]}


OWN = "the workbench's own environment"
CALLS = "the call's environment"


def import_problems(
    notebook: Path, nb: Any, folder: Path, environment: KernelEnvironment | None
) -> list[Problem]:
    """One problem per module the notebook imports and the environment lacks.

    A module the submission ships itself (`name.py` or `name/` in its folder) is found in
    the run folder by the kernel, so it is not asked of the environment.
    """
    imports = [
        (index, name)
        for index, name in notebook_imports(nb)
        if re.match(r"^\w+$", name)
        and not (folder / f"{name}.py").is_file()
        and not (folder / name).is_dir()
    ]
    missing = missing_modules(environment, [name for _, name in imports])
    provider = OWN if environment is None else CALLS
    reported: set[str] = set()
    problems = []
    for index, name in imports:
        if name in missing and name not in reported:
            reported.add(name)
            problems.append(
                Problem(
                    str(notebook),
                    f"cell {index}",
                    f"imports {name}, which {provider} does not provide",
                )
            )
    return problems


def check_imports(
    folder: Path, notebook: Path, call: Call, calls_dir: Path, root: Path
) -> list[Problem]:
    """A submission's imports against its call's environment, or the workbench's own.

    An environment declared but not built is itself the problem: nothing can run.
    """
    from workbench.notebooks import read_notebook

    spec = declared(call, calls_dir)
    environment = None
    if spec is not None:
        environment = find(spec, root)
        if environment is None:
            where = str(calls_dir / f"{call.id}.yaml")
            return [Problem(where, "protocol.environment", str(not_built(call.id)))]
    try:
        nb = read_notebook(notebook)
    except InputError:
        return []  # an unreadable notebook is reported by the parameters' check
    return import_problems(notebook, nb, folder, environment)


def own_environment_note(call: Call, call_file: Path) -> str | None:
    """What `validate` says of a call without an environment of its own."""
    if call.protocol.environment is not None:
        return None
    return (
        f"{call_file}: no protocol.environment: its notebooks run in the workbench's own "
        "Python environment, and may import only what the workbench installs"
    )


def of_call(workspace: Workspace, call: Call) -> KernelEnvironment | None:
    """The built environment of the call's kernels; None: the workbench's own.

    Refuses (nothing stored, nothing run) a declared environment that is not built.
    """
    return kernel_environment(call, workspace.calls_dir, default_root(workspace.root))


def worker_wire(workspace: Workspace, call: Call) -> dict[str, Any] | None:
    """What a worker needs to build or verify the call's environment (see `runner.wire`)."""
    spec = declared(call, workspace.calls_dir)
    if spec is None:
        return None
    lock = read_lock(spec, default_root(workspace.root))
    if lock is None:
        raise not_built(call.id)
    return {"declared": spec.to_wire(), "lock": lock, "lock_sha256": lock_sha256(lock)}
