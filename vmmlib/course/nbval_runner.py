"""Run a batch of merged notebooks under nbval, in one time-limited pytest process.

One pytest process grades many notebooks one after the other, each in its own sandboxed
kernel (:mod:`vmmlib.course.grading_plugin`), so the cost of starting pytest and importing
nbval is paid once per batch, not once per submission; the grader runs a few batches at once.

The process gets a private folder for its Jupyter, IPython and matplotlib state and its
kernels' sockets (inside the grading run's scratch folder), no pytest plugin but nbval and
the grading plugin, no ``PYTEST_*`` variables from the caller, no conftest files and an
empty ini file, so no project's pytest settings leak in. It imports nothing of the student's.

A deadline bounds the whole batch: past it the process group is killed, and every process
carrying this batch's token in its environment too (found through ``/proc``). Kernels need
none of that to end: bubblewrap kills a sandbox when its parent dies.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .sandbox import TOKEN_VARIABLE, Limits

KERNEL_STARTUP_TIMEOUT = 60.0
# Beyond the cell timeout: nbval waits a few seconds for an interrupted cell's outputs.
PER_CELL_ALLOWANCE = 10.0
PER_NOTEBOOK_OVERHEAD = 10.0
RUN_OVERHEAD = 30.0

# Executed with ``python -c``: skip the slow optional IRI grammar (see nbfiles.skip_iri_grammar)
# and run pytest with the rest of argv.
_BOOTSTRAP = """\
import sys
sys.modules.setdefault("rfc3987_syntax", None)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class NotebookJob:
    """One notebook to grade: the stubbed package its kernel sees, where its results go."""

    notebook: Path
    package: Path
    results: Path
    code_cells: int


@dataclass(frozen=True)
class BatchRun:
    """How a batch ended: pytest's exit code (None if killed at the deadline), a problem
    worth reporting (empty when pytest ended normally) and the grader's peak memory."""

    returncode: int | None
    problem: str
    grader_peak_kib: int


def batch_deadline(jobs: list[NotebookJob], cell_timeout: float) -> float:
    """A time limit for a whole batch that well-behaved notebooks never reach."""
    per_cell = cell_timeout + PER_CELL_ALLOWANCE
    return RUN_OVERHEAD + sum(KERNEL_STARTUP_TIMEOUT + PER_NOTEBOOK_OVERHEAD
                              + job.code_cells * per_cell for job in jobs)


def isolated_environment(folder: Path, token: str) -> dict[str, str]:
    """The pytest process's environment: the caller's minus pytest settings, private folders."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    for variable, name in {"JUPYTER_CONFIG_DIR": "jupyter-config",
                           "JUPYTER_DATA_DIR": "jupyter-data",
                           "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "IPYTHONDIR": "ipython",
                           "MPLCONFIGDIR": "matplotlib", "TMPDIR": "tmp"}.items():
        (folder / name).mkdir(exist_ok=True)
        env[variable] = str(folder / name)
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env[TOKEN_VARIABLE] = token
    return env


def processes_with_token(token: str) -> list[int]:
    """PIDs of this user's processes whose environment carries ``token`` (Linux /proc only)."""
    needle = f"{TOKEN_VARIABLE}={token}\0".encode()
    found = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_processes_with_token(token: str) -> None:
    """SIGKILL every process started by the batch tagged ``token`` that is still alive."""
    for pid in processes_with_token(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _log_tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_batch(jobs: list[NotebookJob], folder: Path, *, limits: Limits, sandbox: bool,
              cell_timeout: float, deadline: float | None = None) -> BatchRun:
    """Grade ``jobs`` in one pytest process whose private files live in ``folder`` (made
    here); each notebook's cell outcomes are written to its ``results`` file."""
    folder.mkdir(parents=True)
    token = secrets.token_hex(8)
    plan = {
        "scratch": str(folder), "limits": dataclasses.asdict(limits), "sandbox": sandbox,
        "usage": str(folder / "usage.json"),
        "notebooks": [{"notebook": str(job.notebook), "package": str(job.package),
                       "results": str(job.results)} for job in jobs],
    }
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    rootdir = Path(os.path.commonpath([str(job.notebook.parent) for job in jobs]))
    command = [
        sys.executable, "-c", _BOOTSTRAP,
        "-p", "nbval.plugin", "-p", "vmmlib.course.grading_plugin",
        f"--vmmlib-plan={folder / 'plan.json'}",
        f"--nbval-cell-timeout={cell_timeout:g}",
        f"--nbval-kernel-startup-timeout={KERNEL_STARTUP_TIMEOUT:g}",
        "-p", "no:cacheprovider", "--noconftest", "-c", str(folder / "pytest.ini"),
        "--rootdir", str(rootdir), "--color=no", "-q", "-o", "console_output_style=classic",
        *(str(job.notebook) for job in jobs),
    ]
    if deadline is None:
        deadline = batch_deadline(jobs, cell_timeout)
    log = folder / "pytest.log"
    with open(log, "wb") as output:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT, cwd=folder,
                                 env=isolated_environment(folder, token),
                                 start_new_session=True)
        try:
            returncode: int | None = child.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            kill_processes_with_token(token)
    if returncode is None:
        problem = f"the grading run was stopped at its time limit of {deadline:g} s"
    elif returncode not in (0, 1):
        problem = f"nbval did not finish normally (exit code {returncode}):\n{_log_tail(log)}"
    else:
        problem = ""
    usage_file = folder / "usage.json"
    usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
    return BatchRun(returncode, problem, int(usage.get("grader_peak_kib", 0)))
