"""The generated exercise under nbval, exactly as students run it, and the solution under it.

Also pins what the grader relies on in nbval 0.11 on this machine: one test item per code cell,
named ``Cell N`` with N counting code cells only; and the grader's own runner, whose deadline
must stop a kernel that nbval cannot (here one that sleeps and ignores its parent's death).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest

from vmmlib.course.exercises import exercise_bytes
from vmmlib.course.nbval_runner import parse_junit, run_nbval

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "course"
SOLUTION = FIXTURES / "solutions" / "01-practice.ipynb"


def private_env(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                     "IPYTHONDIR", "MPLCONFIGDIR"):
        env[variable] = str(folder / variable.lower())
    return env


def start_pytest(folder: Path, mode: str, notebooks: list[str]) -> subprocess.Popen:
    """`python -m pytest --nbval[-lax] NOTEBOOKS` in ``folder``, with a junit report."""
    command = [sys.executable, "-m", "pytest", mode, "-p", "no:cacheprovider", "-q",
               f"--junitxml={folder / (mode.strip('-') + '.xml')}", *notebooks]
    return subprocess.Popen(command, cwd=folder, env=private_env(folder),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def verdicts(report: Path) -> dict[tuple[str, str], str]:
    """(notebook file, item name) -> 'passed' / first failure text, from a junit report."""
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        notebook = case.get("classname", "").split(".ipynb")[0] + ".ipynb"
        found[(notebook, case.get("name"))] = (
            (problems[0].text or problems[0].get("message", "")) if problems else "passed")
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """At the same time: the student's command `pytest --nbval-lax` on the blank exercise and
    on a tampered one, and the grader's runner on the solution in full --nbval mode."""
    folder = tmp_path_factory.mktemp("nbval")
    (folder / "blank.ipynb").write_bytes(exercise_bytes(SOLUTION))
    (folder / "solution.ipynb").write_bytes(SOLUTION.read_bytes())
    # Correct answers, but q1's stored verdict changed: only nbval's output comparison of the
    # nbval-check-output cell can make that check fail.
    tampered = nbformat.reads(exercise_bytes(SOLUTION).decode(), as_version=4)
    answers = {cell.id: cell.source for cell in nbformat.read(SOLUTION, as_version=4).cells}
    for cell in tampered.cells:
        if "answer" in cell.metadata.get("tags", []) and cell.cell_type == "code":
            cell.source = answers[cell.id]
        if cell.id == "q1-check":
            cell.outputs[0].text = "q1 add: 3/4 cases correct\n"
    nbformat.write(tampered, folder / "tampered.ipynb")
    lax = start_pytest(folder, "--nbval-lax", ["blank.ipynb", "tampered.ipynb"])
    solution = run_nbval(folder / "solution.ipynb", cell_timeout=60, lax=False)
    log = lax.communicate(timeout=120)[0]
    return {"folder": folder, "lax_code": lax.returncode, "log": log, "solution": solution,
            "lax": verdicts(folder / "nbval-lax.xml")}


def code_cell_roles(notebook_path: Path) -> list[str]:
    cells = json.loads(notebook_path.read_text(encoding="utf-8"))["cells"]
    return ["check" if "check" in cell["metadata"].get("tags", []) else cell["id"]
            for cell in cells if cell["cell_type"] == "code"]


def test_nbval_names_one_item_per_code_cell_counting_code_cells_only(runs):
    folder = runs["folder"]
    roles = code_cell_roles(folder / "blank.ipynb")
    names = {name for (notebook, name) in runs["lax"] if notebook == "blank.ipynb"}
    assert names == {f"Cell {n}" for n in range(len(roles))}
    assert len(roles) < len(json.loads((folder / "blank.ipynb").read_text())["cells"])


def test_the_blank_exercise_fails_every_check_cell(runs):
    assert runs["lax_code"] == 1, runs["log"]
    for number, role in enumerate(code_cell_roles(runs["folder"] / "blank.ipynb")):
        verdict = runs["lax"][("blank.ipynb", f"Cell {number}")]
        if role == "check":
            assert "NotImplementedError" in verdict, verdict
        else:  # answer cells only define functions; the setup cell runs
            assert verdict == "passed", verdict


def test_nbval_lax_compares_the_stored_verdict_of_check_cells(runs):
    assert "Cell outputs differ" in runs["lax"][("tampered.ipynb", "Cell 2")]
    assert runs["lax"][("tampered.ipynb", "Cell 4")] == "passed"


def test_the_solution_passes_with_its_stored_outputs(runs):
    solution = runs["solution"]
    assert solution.returncode == 0 and solution.problem == "", solution.problem
    assert sorted(solution.outcomes) == list(range(len(code_cell_roles(SOLUTION))))
    assert all(outcome.passed for outcome in solution.outcomes.values())


# Excerpts of junit reports nbval 0.11 wrote on this machine (colour codes as junit escapes them).
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="0" failures="2" skipped="1" tests="5">
<testcase classname="x.ipynb" name="Cell 0" time="0.8" />
<testcase classname="x.ipynb" name="Cell 1" time="1.854"><failure message="Notebook cell \
execution failed">Notebook cell execution failed
Cell 1: Timeout of 1 seconds exceeded executing cell

Input:
while True:
    pass

Traceback:

#x1B[31mKeyboardInterrupt#x1B[39m:
</failure></testcase>
<testcase classname="x.ipynb" name="Cell 2" time="0.135"><skipped type="pytest.xfail" \
message="Previous cell timed out, expected cell to fail" /></testcase>
<testcase classname="x.ipynb" name="Cell 3" time="0.17"><failure message="Notebook cell \
execution failed">Notebook cell execution failed
Cell 3: Cell execution caused an exception

Input:
assert f() == 1, "f() must return 1"

Traceback:

#x1B[31mAssertionError#x1B[39m: f() must return 1
</failure></testcase>
<testcase classname="x.ipynb" name="Cell 12" time="0.01" />
<testcase classname="tests.test_x" name="test_other" time="0.01" />
</testsuite></testsuites>"""


def test_junit_reports_become_per_cell_outcomes_with_readable_reasons():
    outcomes = parse_junit(JUNIT)
    assert sorted(outcomes) == [0, 1, 2, 3, 12]
    assert [outcomes[n].passed for n in (0, 1, 2, 3, 12)] == [True, False, False, False, True]
    assert outcomes[1].reason.startswith("timed out: the cell ran longer than 1 s")
    assert outcomes[2].reason == "failed after an earlier cell timed out"
    assert outcomes[3].reason == "AssertionError: f() must return 1"


def kernel_state(pid: int) -> str:
    """The process state letter from /proc (Z: dead, not yet reaped), or 'gone'."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_the_run_deadline_kills_a_kernel_that_outlives_pytest(tmp_path):
    pid_file = tmp_path / "kernel.pid"
    stubborn = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            "import os\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "parent = os.getppid()\n"
            "os.getppid = lambda: parent  # ipykernel's parent poller never sees pytest die\n"),
        nbformat.v4.new_code_cell("import time\ntime.sleep(600)\n"),
    ])
    stubborn.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook = tmp_path / "stubborn.ipynb"
    nbformat.write(stubborn, notebook)
    start = time.monotonic()
    run = run_nbval(notebook, cell_timeout=600, deadline=5)
    assert time.monotonic() - start < 10
    assert run.returncode is None and "time limit of 5 s" in run.problem
    assert not any(outcome.passed for outcome in run.outcomes.values())
    assert kernel_state(int(pid_file.read_text())) in ("Z", "X", "gone")
