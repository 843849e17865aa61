"""The exercise under nbval exactly as students run it (self-check), the grading runner's
deadline, and grading without the sandbox (``--unsafe-no-sandbox``), which must still grade
right and still withhold the reference functions.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import classroom
import nbformat
import pytest
from classroom import NOTEBOOK, ROOT

from vmmlib.course.grading import grade
from vmmlib.course.nbval_runner import NotebookJob, run_batch
from vmmlib.course.sandbox import Limits
from vmmlib.course.withheld import write_stubbed_package

# pytest with jsonschema's slow optional IRI grammar blocked (see nbfiles.skip_iri_grammar)
PYTEST = ("import sys; sys.modules.setdefault('rfc3987_syntax', None); import pytest; "
          "sys.exit(pytest.main(sys.argv[1:]))")


def private_env(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                     "IPYTHONDIR", "MPLCONFIGDIR"):
        env[variable] = str(folder / variable.lower())
    return env


def verdicts(report: Path) -> dict[tuple[str, str], str]:
    """(notebook file, item name) -> 'passed' / the failure text, from a junit report."""
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        notebook = case.get("classname", "").split(".ipynb")[0] + ".ipynb"
        found[(notebook, case.get("name"))] = (
            (problems[0].text or problems[0].get("message", "")) if problems else "passed")
    return found


@pytest.fixture(scope="module")
def self_check(tmp_path_factory):
    """`pytest --nbval-lax` on the blank exercise and on one with the solutions' answers."""
    folder = tmp_path_factory.mktemp("selfcheck")
    (folder / "blank.ipynb").write_bytes((ROOT / "exercises" / NOTEBOOK).read_bytes())
    (folder / "solved.ipynb").write_text(json.dumps(classroom.submission(classroom.RIGHT)))
    command = [sys.executable, "-c", PYTEST, "--nbval-lax", "--nbval-current-env",
               "-p", "no:cacheprovider", "-q", "--junitxml", str(folder / "report.xml"),
               "blank.ipynb", "solved.ipynb"]
    done = subprocess.run(command, cwd=folder, env=private_env(folder), capture_output=True,
                          text=True, timeout=120)
    return {"code": done.returncode, "log": done.stdout + done.stderr,
            "verdicts": verdicts(folder / "report.xml")}


def code_roles() -> list[str]:
    cells = json.loads((ROOT / "exercises" / NOTEBOOK).read_text())["cells"]
    return [cell["metadata"].get("check_id", cell["id"]) for cell in cells
            if cell["cell_type"] == "code"]


def test_the_blank_exercise_fails_each_check_with_its_verdict_and_no_vmmlib_traceback(
        self_check):
    assert self_check["code"] == 1, self_check["log"]
    for number, role in enumerate(code_roles()):
        verdict = self_check["verdicts"][("blank.ipynb", f"Cell {number}")]
        if role in ("q1", "q2", "q3"):
            assert f"CheckFailed: {role} " in verdict and "0/" in verdict, verdict
            assert "NotImplementedError: replace this line" in verdict
            assert "vmmlib/" not in verdict and "site-packages" not in verdict, verdict
        else:
            assert verdict == "passed", verdict


def test_the_solutions_answers_pass_every_check(self_check):
    for number in range(len(code_roles())):
        assert self_check["verdicts"][("solved.ipynb", f"Cell {number}")] == "passed"


def kernel_state(pid: int) -> str:
    """The process state letter from /proc (Z: dead, not yet reaped), or 'gone'."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def running_in(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (the batch's pytest and kernels)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if str(folder).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def test_the_batch_deadline_kills_a_kernel_that_ignores_everything(tmp_path):
    pid_file = tmp_path / "kernel.pid"
    stubborn = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            "import os, signal\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "parent = os.getppid()\n"
            "os.getppid = lambda: parent  # ipykernel's parent poller never sees pytest die\n"),
        nbformat.v4.new_code_cell("import time\ntime.sleep(600)\n"),
    ])
    notebook = tmp_path / "stubborn.ipynb"
    nbformat.write(stubborn, notebook)
    package = write_stubbed_package(tmp_path / "package", {})
    job = NotebookJob(notebook, package, tmp_path / "results.json", 2)
    start = time.monotonic()
    run = run_batch([job], tmp_path / "batch", limits=Limits(), sandbox=False,
                    cell_timeout=600, deadline=3)
    assert time.monotonic() - start < 10
    assert run.returncode is None and "time limit of 3 s" in run.problem
    pids = running_in(tmp_path)
    if pid_file.exists():  # the kernel had started (it may not have, on a busy machine)
        pids.append(int(pid_file.read_text()))
    waited = time.monotonic()  # SIGKILL was sent: give the processes a moment to end
    while any(kernel_state(pid) not in ("Z", "X", "gone") for pid in pids):
        assert time.monotonic() - waited < 3, [(pid, kernel_state(pid)) for pid in pids]
        time.sleep(0.05)


def test_grading_without_the_sandbox_still_grades_and_withholds(tmp_path):
    submissions = tmp_path / "submissions"
    reference_q3 = classroom.CALLS_THE_REFERENCE + "\ndel vmx_exits, decode_qualification\n"
    for student, answers in (("blank", {}), ("calls-the-reference-in-q3",
                                             {**classroom.RIGHT, "q3-answer": reference_q3})):
        (submissions / student).mkdir(parents=True)
        (submissions / student / NOTEBOOK).write_text(
            json.dumps(classroom.submission(answers)))
    grade(ROOT / "exercises", submissions, tmp_path / "out", jobs=2, cell_timeout=30,
          sandbox=False)
    with open(tmp_path / "out" / "grades.csv", newline="") as sheet:
        totals = {row["student"]: row["total"] for row in csv.DictReader(sheet)
                  if row["notebook"] == NOTEBOOK}
    assert totals == {"blank": "0", "calls-the-reference-in-q3": "7"}
    page = (tmp_path / "out" / "feedback" / "calls-the-reference-in-q3" /
            f"{Path(NOTEBOOK).stem}.md").read_text()
    assert "not available while grading q3" in page
