"""Run one notebook under nbval in a separate, time-limited process and read its verdicts.

nbval (a pytest plugin) runs a notebook cell by cell in a fresh kernel and makes each code
cell a test item named ``Cell N``, N counting *code* cells from 0 (verified with nbval 0.11:
markdown cells are not counted). With ``--nbval-lax`` it compares outputs only for cells tagged
``nbval-check-output``; a cell that raises always fails. Its ``--nbval-cell-timeout``
interrupts a cell that runs too long (the item fails, later items are marked xfail and still
run: an xfail that passes is reported as passed).

Three layers keep a runaway student kernel from hanging the grader:

1. nbval's per-cell timeout interrupts the kernel (SIGINT), and stops it if that fails;
2. a deadline for the whole run: past it the pytest process group is killed and every
   process that carries this run's token in its environment (the kernel runs in a session
   of its own) is killed too, found through ``/proc`` on Linux;
3. an RLIMIT_CPU on pytest, inherited by the kernel, for a loop that holds the GIL.

The child process gets its own Jupyter, IPython, matplotlib and temporary folders inside one
temporary directory (removed afterwards), no pytest plugin but nbval, no ``PYTEST_*``
variables from the caller, no conftest files, an empty ini file (so no project's pytest
settings leak in) and ``PYTHONHASHSEED=0``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

TOKEN_VARIABLE = "VMMLIB_NBVAL_RUN"
KERNEL_STARTUP_TIMEOUT = 60.0
# Beyond the cell timeout, nbval waits up to 5 s for the outputs of an interrupted cell.
PER_CELL_ALLOWANCE = 10.0
RUN_OVERHEAD = 30.0

# Executed with ``python -c``: limit CPU time (inherited by the kernel), skip the slow optional
# IRI grammar (see nbfiles.skip_iri_grammar), then run pytest. argv: [-c, cpu_limit, *args].
_BOOTSTRAP = """\
import sys
try:
    import resource
    _limit = int(sys.argv[1])
    _soft, _hard = resource.getrlimit(resource.RLIMIT_CPU)
    if _hard != resource.RLIM_INFINITY:
        _limit = min(_limit, _hard)
    resource.setrlimit(resource.RLIMIT_CPU, (_limit, _hard))
except (ImportError, ValueError, OSError):
    pass
sys.modules.setdefault("rfc3987_syntax", None)
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""

_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;?]*[A-Za-z]")
_ITEM_NAME = re.compile(r"Cell (\d+)")


@dataclass(frozen=True)
class CellOutcome:
    """nbval's verdict on one code cell: passed, or failed with a one-paragraph reason."""

    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class NbvalRun:
    """The verdicts of one nbval run, by nbval cell number (index among code cells).

    ``problem`` is empty when nbval reported normally; otherwise it says why cells may be
    missing from ``outcomes`` (run killed at its deadline, pytest error).
    """

    outcomes: dict[int, CellOutcome]
    returncode: int | None
    problem: str = ""


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (also in the ``#x1B[`` form junit XML escapes them to)."""
    return _ANSI.sub("", text)


def summarize_failure(report: str) -> str:
    """The part of nbval's failure report a student needs: the error line, the output diff
    (at most 20 lines) or the timeout."""
    text = strip_ansi(report)
    timeout = re.search(r"Timeout of ([\d.]+) seconds exceeded", text)
    if timeout:
        return f"timed out: the cell ran longer than {timeout.group(1)} s (an endless loop?)"
    if "Previous cell timed out" in text:
        return "failed after an earlier cell timed out"
    if "Kernel dead" in text:
        return "not run: the kernel had died (an earlier cell crashed it or was stopped)"
    _, _, tail = text.partition("\nTraceback:\n")
    lines = [line.rstrip() for line in (tail or text).splitlines() if line.strip()]
    if "Cell outputs differ" in text:
        return "the output differs from the expected one:\n" + "\n".join(lines[:20])
    return lines[-1].strip() if lines else "failed"


def parse_junit(xml_text: str) -> dict[int, CellOutcome]:
    """Map nbval's ``Cell N`` test cases in a junit XML report to outcomes."""
    outcomes: dict[int, CellOutcome] = {}
    for case in ElementTree.fromstring(xml_text).iter("testcase"):
        match = _ITEM_NAME.fullmatch(case.get("name", ""))
        if not match:
            continue
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        number = int(match.group(1))
        if problems:
            report = problems[0].text or problems[0].get("message", "")
            outcome = CellOutcome(False, summarize_failure(report))
        else:
            outcome = CellOutcome(True)
        earlier = outcomes.get(number)
        outcomes[number] = outcome if earlier is None or earlier.passed else earlier
    return outcomes


def count_code_cells(notebook: Path) -> int:
    """How many code cells a notebook file has (plain JSON read)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    return sum(1 for cell in cells if isinstance(cell, dict) and cell.get("cell_type") == "code")


def default_deadline(code_cells: int, cell_timeout: float) -> float:
    """A time limit for a whole run that a well-behaved notebook never reaches."""
    return KERNEL_STARTUP_TIMEOUT + code_cells * (cell_timeout + PER_CELL_ALLOWANCE) + RUN_OVERHEAD


def isolated_environment(scratch: Path, token: str) -> dict[str, str]:
    """The child's environment: the caller's, minus pytest settings, plus private folders.

    JUPYTER_PATH is left alone so kernels installed in the environment are still found.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    folders = {
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "matplotlib",
        "TMPDIR": "tmp",  # kernel connection files, the student's temporary files
    }
    for variable, name in folders.items():
        (scratch / name).mkdir(exist_ok=True)
        env[variable] = str(scratch / name)
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONHASHSEED="0")
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
    """SIGKILL every process started by the run tagged ``token`` that is still alive."""
    for pid in processes_with_token(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _nbval_command(notebook: Path, scratch: Path, cell_timeout: float, lax: bool,
                   cpu_limit: int) -> list[str]:
    """The child's command line; ``scratch`` holds its empty ini file and its junit report."""
    return [
        sys.executable, "-c", _BOOTSTRAP, str(cpu_limit), str(notebook),
        "--nbval-lax" if lax else "--nbval", "--nbval-current-env",
        f"--nbval-cell-timeout={cell_timeout:g}",
        f"--nbval-kernel-startup-timeout={KERNEL_STARTUP_TIMEOUT:g}",
        "-p", "nbval.plugin", "-p", "no:cacheprovider", "--noconftest",
        "-c", str(scratch / "pytest.ini"), "--rootdir", str(notebook.parent),
        f"--junitxml={scratch / 'junit.xml'}", "--color=no", "-q",
    ]


def _log_tail(log: Path, lines: int = 15) -> str:
    text = strip_ansi(log.read_text(encoding="utf-8", errors="replace")) if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_nbval(notebook: Path, *, cell_timeout: float, lax: bool = True,
              deadline: float | None = None) -> NbvalRun:
    """Run ``notebook`` under nbval (``--nbval-lax`` unless ``lax=False``) and collect verdicts.

    The kernel runs in the notebook's folder with this interpreter's environment. Never takes
    much longer than ``deadline`` seconds (default: :func:`default_deadline`), and leaves no
    process behind.
    """
    notebook = Path(notebook).resolve()
    if deadline is None:
        deadline = default_deadline(count_code_cells(notebook), cell_timeout)
    token = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="vmmlib-nbval-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)
        (scratch / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        command = _nbval_command(notebook, scratch, cell_timeout, lax, int(deadline) + 1)
        log = scratch / "pytest.log"
        with open(log, "wb") as output:
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                cwd=scratch, env=isolated_environment(scratch, token), start_new_session=True,
            )
            try:
                returncode: int | None = child.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                kill_processes_with_token(token)
        junit = scratch / "junit.xml"
        try:
            outcomes = parse_junit(junit.read_text(encoding="utf-8")) if junit.exists() else {}
        except ElementTree.ParseError:
            outcomes = {}
        if returncode is None:
            problem = f"the whole run was stopped at its time limit of {deadline:g} s"
        elif returncode not in (0, 1) or not outcomes:
            problem = f"nbval did not finish normally (exit code {returncode}):\n{_log_tail(log)}"
        else:
            problem = ""
    return NbvalRun(outcomes, returncode, problem)
