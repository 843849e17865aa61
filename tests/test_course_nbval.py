"""The generated exercise under nbval, exactly as students and `make test` run it.

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
from vmmlib.course.nbval_runner import run_nbval

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
               f"--junitxml={folder / (mode + '.xml')}", *notebooks]
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
    """Run, concurrently: the blank exercise and a tampered one under --nbval-lax, and the
    solution under --nbval."""
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
    full = start_pytest(folder, "--nbval", ["solution.ipynb"])
    logs = {"lax": lax.communicate(timeout=120)[0], "full": full.communicate(timeout=120)[0]}
    return folder, lax.returncode, full.returncode, logs


def code_cell_roles(notebook_path: Path) -> list[str]:
    cells = json.loads(notebook_path.read_text(encoding="utf-8"))["cells"]
    return ["check" if "check" in cell["metadata"].get("tags", []) else cell["id"]
            for cell in cells if cell["cell_type"] == "code"]


def test_nbval_names_one_item_per_code_cell_counting_code_cells_only(runs):
    folder, *_ = runs
    roles = code_cell_roles(folder / "blank.ipynb")
    names = {name for (notebook, name) in verdicts(folder / "--nbval-lax.xml")
             if notebook == "blank.ipynb"}
    assert names == {f"Cell {n}" for n in range(len(roles))}
    assert len(roles) < len(json.loads((folder / "blank.ipynb").read_text())["cells"])


def test_the_blank_exercise_fails_every_check_cell(runs):
    folder, lax_code, _, logs = runs
    assert lax_code == 1, logs["lax"]
    found = verdicts(folder / "--nbval-lax.xml")
    for number, role in enumerate(code_cell_roles(folder / "blank.ipynb")):
        verdict = found[("blank.ipynb", f"Cell {number}")]
        if role == "check":
            assert "NotImplementedError" in verdict, verdict
        else:  # answer cells only define functions; the setup cell runs
            assert verdict == "passed", verdict


def test_nbval_lax_compares_the_stored_verdict_of_check_cells(runs):
    folder, *_ = runs
    found = verdicts(folder / "--nbval-lax.xml")
    assert "Cell outputs differ" in found[("tampered.ipynb", "Cell 2")]
    assert found[("tampered.ipynb", "Cell 4")] == "passed"


def test_the_solution_passes_with_its_stored_outputs(runs):
    folder, _, full_code, logs = runs
    assert full_code == 0, logs["full"]
    found = verdicts(folder / "--nbval.xml")
    assert set(found.values()) == {"passed"}
    assert len(found) == len(code_cell_roles(SOLUTION))


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
    run = run_nbval(notebook, cell_timeout=600, deadline=4)
    assert time.monotonic() - start < 10
    assert run.returncode is None and "time limit of 4 s" in run.problem
    assert not any(outcome.passed for outcome in run.outcomes.values())
    assert kernel_state(int(pid_file.read_text())) in ("Z", "X", "gone")
