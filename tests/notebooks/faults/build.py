"""Writes the fault notebooks of tests/test_sandbox.py: `python tests/notebooks/faults/build.py`.

Each notebook is one hostile or broken behaviour, with a `parameters` cell. Those that
should reach their end record `n_predictions`, the test call's required metric.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

HERE = Path(__file__).parent
PARAMETERS = "n = 1  # predictions to record\n"
RECORD_END = "import workbench\nworkbench.record('n_predictions', n)"

# Opens a file or a connection and reports what happened, without raising.
TRY = '''\
import errno as _errno


def attempt(action, *args):
    """'ok', or the error's class and errno name."""
    try:
        action(*args)
    except OSError as exc:
        return f"{type(exc).__name__}:{_errno.errorcode.get(exc.errno, exc.errno)}"
    return "ok"
'''

BOMB = '''\
import subprocess
import sys

# A fork bomb that stops by itself: every process forks at each of `depth` steps, so
# 2**depth processes at most; then all sleep until a shared deadline and exit. Exit
# status 3 means some fork was refused (EAGAIN): the process cap held.
BOMB = """
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
capped, children = False, []
for _ in range(int(sys.argv[2])):
    try:
        pid = os.fork()
    except OSError:
        capped = True
        break
    if pid == 0:
        children = []
        continue
    children.append(pid)
time.sleep(max(0.0, deadline - time.monotonic()))
for pid in children:
    _, status = os.waitpid(pid, 0)
    capped = capped or os.waitstatus_to_exitcode(status) == 3
os._exit(3 if capped else 0)
"""
done = subprocess.run([sys.executable, "-c", BOMB, str(seconds), str(depth)], timeout=120)
import workbench
workbench.record("fork_exit", done.returncode)
'''

CASES: dict[str, tuple[str, list[str]]] = {
    "infinite_loop": (
        "token = 'none'  # marks the child process, so the test can look for it\n",
        [
            "import subprocess, sys\n"
            "sleeper = 'import time; time.sleep(600)'\n"
            "child = subprocess.Popen([sys.executable, '-c', sleeper, token])",
            "while True:\n    pass",
            RECORD_END,
        ],
    ),
    "sleep_beyond_limit": ("", ["import time\ntime.sleep(600)", RECORD_END]),
    "kill_self": ("", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", RECORD_END]),
    "memory_hog": (
        "block_mb = 256  # allocated again and again, far beyond the memory limit\n",
        [
            "blocks = []\nfor _ in range(1024):\n    blocks.append(bytearray(block_mb * 2**20))",
            RECORD_END,
        ],
    ),
    "fork_bomb": (
        "seconds = 3.0  # how long every process of the bomb lives\n"
        "depth = 12  # 2**depth processes at most\n",
        [BOMB, RECORD_END],
    ),
    "output_flood": (
        "megabytes = 200  # printed\n",
        [
            "import sys\nline = 'x' * (2**20 - 1) + '\\n'\n"
            "for _ in range(megabytes):\n    sys.stdout.write(line)",
            RECORD_END,
        ],
    ),
    "sys_exit": ("", ["import sys\nsys.exit(0)", RECORD_END]),
    "network": (
        "port = 9  # a port the test listens on, on the host's 127.0.0.1\n",
        [
            TRY,
            "import socket\n\n\ndef connect(host, port):\n"
            "    with socket.create_connection((host, port), timeout=5):\n        pass\n\n\n"
            "import workbench\n"
            "workbench.record('loopback', attempt(connect, '127.0.0.1', port))\n"
            "# TEST-NET-1: never routed anywhere; only the error matters\n"
            "workbench.record('outside', attempt(connect, '192.0.2.1', 80))",
            RECORD_END,
        ],
    ),
    "read_outside": (
        "paths = ''  # absolute paths, separated by os.pathsep\n",
        [
            TRY,
            "import os\n\n\ndef read(path):\n    with open(path, 'rb') as handle:\n"
            "        handle.read(1)\n\n\n"
            "import workbench\n"
            "workbench.record('reads', {p: attempt(read, p) for p in paths.split(os.pathsep)})",
            RECORD_END,
        ],
    ),
    "write_outside": (
        "paths = ''  # absolute paths, separated by os.pathsep\n",
        [
            TRY,
            "import os\n\n\ndef write(path):\n    with open(path, 'w') as handle:\n"
            "        handle.write('written by a notebook')\n\n\n"
            "import workbench\n"
            "workbench.record('writes', {p: attempt(write, p) for p in paths.split(os.pathsep)})\n"
            "# Inside the run folder: a new file works; the runner's own files stay out of reach,\n"
            "# including swapping them for a symlink through which the runner would write.\n"
            "workbench.record('inside', {\n"
            "    'new_file': attempt(write, 'notebook-output.txt'),\n"
            "    'overwrite_input': attempt(write, 'input.ipynb'),\n"
            "    'remove_notebook': attempt(os.remove, 'notebook.ipynb'),\n"
            "    'remove_record': attempt(os.remove, 'run.json'),\n"
            "    'rename_record': attempt(os.rename, 'run.json', 'moved.json'),\n"
            "    'symlink_record': attempt(os.symlink, '/etc/passwd', 'run.json'),\n"
            "})",
            RECORD_END,
        ],
    ),
    "fake_results": (
        "",
        [
            "import json\n"
            "for name in ('metrics.json', 'results.json'):\n"
            "    with open(name, 'w') as handle:\n"
            "        fake = {'n_predictions': 999, 'ai.mae': 0.0, 'status': 'succeeded'}\n"
            "        json.dump(fake, handle)",
            RECORD_END,
        ],
    ),
    "inside_view": (
        "",
        [
            "import os, socket\n"
            "import numpy, pandas, plotly, sklearn\n"
            "import workbench\n"
            "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
            "workbench.record('inside', {\n"
            "    'uid': os.getuid(),\n"
            "    'cwd': os.getcwd(),\n"
            "    'home': os.environ.get('HOME'),\n"
            "    'hostname': socket.gethostname(),\n"
            "    'cap_eff': status['CapEff'].strip(),\n"
            "    'no_new_privs': status['NoNewPrivs'].strip(),\n"
            "    'processes': sum(name.isdigit() for name in os.listdir('/proc')),\n"
            "    'rows': len(pandas.read_csv('data/values.csv')),  # staged, relative\n"
            "})",
            RECORD_END,
        ],
    ),
    "parameter_literal": (
        "text = 'plain'  # replaced by the test with quotes, backslashes, newlines and code\n",
        ["import workbench\nworkbench.record('text', text)", RECORD_END],
    ),
}


def build() -> None:
    for name, (parameters, cells) in CASES.items():
        first = new_code_cell(PARAMETERS + parameters)
        first.metadata["tags"] = ["parameters"]
        nb = new_notebook(
            cells=[first, *(new_code_cell(source) for source in cells)],
            metadata={
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
        )
        for index, cell in enumerate(nb.cells):
            cell.id = f"{name.replace('_', '-')}-{index}"
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    build()
