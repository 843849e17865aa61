"""Grading a class for real: the shipped chapter-01 exercise, the bubblewrap sandbox, nbval.

One grading run over the class of tests/classroom.py (every attack of issue 5, every
situation in which right answers used to score 0, blank, solution, mutants through the real
grader) is shared by the tests of this file; a second run at the same time, shared out over
another number of processes, of the students whose grading depends on timing (crashes, hangs,
floods, noise) shows that their reports do not depend on it. On a machine without bubblewrap
the run is skipped, except in CI, where it must run for real.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

import classroom
import pytest
from classroom import EXPECTED, NOTEBOOK, ROOT, Paths

from vmmlib.course.__main__ import main
from vmmlib.course.conventions import NotebookConventionError
from vmmlib.course.grading import grade, load_exercise
from vmmlib.course.sandbox import Limits
from vmmlib.errors import ConfigError

EXERCISES = ROOT / "exercises"
TIMEOUT = 4.0  # seconds per cell: the C-level hang costs this, plus nbval's wait for output
LIMITS = Limits(cpu_seconds=60)
MORE = {"absent": (0, 0, 0), "not-json": (0, 0, 0)}  # students beyond the classroom's
TIMING = ("crash-and-hang", "escape", "mutants-wrong", "noisy", "solution")


def add_more(submissions: Path) -> None:
    (submissions / "absent").mkdir()
    (submissions / "not-json").mkdir()
    (submissions / "not-json" / NOTEBOOK).write_text("{ this is not json")
    (submissions / "solution" / "01-intercepts-exercises (1).ipynb").write_text("{}")
    (submissions / "solution" / ".ipynb_checkpoints").mkdir()
    (submissions / "stray.ipynb").write_text("{}")


def digest(*folders: Path) -> dict[str, str]:
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in folders for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in command and "pytest" not in command:
            found.append(command[:120])
    return found


def reports(out: Path) -> dict[str, str]:
    return {str(path.relative_to(out)): path.read_text() for path in sorted(out.rglob("*"))
            if path.is_file() and path.suffix in (".csv", ".md")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if shutil.which("bwrap") is None and not os.environ.get("CI"):
        pytest.skip("bubblewrap is not installed (CI installs it; see .ci/run)")
    root = tmp_path_factory.mktemp("class")
    paths = Paths(root / "submissions", root / "out", f"vmmlib-attack-{secrets.token_hex(4)}")
    classroom.build(paths)
    add_more(paths.submissions)
    course = [ROOT / "vmmlib", ROOT / "exercises", ROOT / "solutions"]
    timing = root / "timing"  # the students whose grading could depend on timing
    for student in TIMING:
        shutil.copytree(paths.submissions / student, timing / student)
    before = digest(*course, paths.submissions)
    again: dict = {}

    def second_run() -> None:  # at the same time, shared out otherwise
        again["result"] = grade(EXERCISES, timing, root / "again", jobs=3,
                                cell_timeout=TIMEOUT, limits=LIMITS)

    thread = threading.Thread(target=second_run)
    thread.start()
    result = grade(EXERCISES, paths.submissions, paths.out, jobs=2, cell_timeout=TIMEOUT,
                   limits=LIMITS)
    thread.join()
    waited = time.monotonic()  # killed sandboxes take a moment to vanish from /proc
    while processes_with(paths.marker) and time.monotonic() - waited < 3:
        time.sleep(0.1)
    return {"result": result, "out": paths.out, "again": root / "again", "paths": paths,
            "root": root, "before": before, "after": digest(*course, paths.submissions),
            "processes": processes_with(paths.marker)}


def feedback(graded, student: str) -> str:
    return (graded["out"] / "feedback" / student / f"{Path(NOTEBOOK).stem}.md").read_text()


def test_every_student_gets_exactly_what_their_own_functions_earn(graded):
    with open(graded["out"] / "grades.csv", newline="") as sheet:
        rows = {row["student"]: row for row in csv.DictReader(sheet)
                if row["notebook"] == NOTEBOOK}
    expected = {**EXPECTED, **MORE}
    assert sorted(rows) == sorted(expected)
    for student, points in expected.items():
        row = rows[student]
        got = (int(row["q1"]), int(row["q2"]), int(row["q3"]))
        assert got == points, f"{student}: {got} != {points}\n{feedback(graded, student)}"
        assert (row["total"], row["max"]) == (str(sum(points)), "10")


def test_blank_scores_zero_and_the_solution_full_marks(graded):
    assert "Score: **0 / 10**" in feedback(graded, "blank")
    page = feedback(graded, "solution")
    assert "Score: **10 / 10**" in page and "FAIL" not in page


def test_nothing_outside_the_output_folder_changes(graded):
    assert graded["after"] == graded["before"], "a course file or a submission changed"
    assert sorted(p.name for p in graded["root"].iterdir()) == [
        "again", "out", "submissions", "timing"]
    assert sorted(p.name for p in graded["out"].iterdir()) == [
        "feedback", "grades.csv", "merged", "summary.csv", "summary.md"]


def test_no_process_outlives_grading(graded):
    assert graded["processes"] == []
    assert processes_with(graded["paths"].marker) == []


def test_memory_stays_within_the_caps(graded):
    usage = graded["result"].usage
    assert 0 < usage["kernel_peak_kib"] < LIMITS.memory // 1024
    # a kernel that floods IOPub included: ~75 MiB on a quiet machine; under a loaded suite
    # one run peaked at 477 MiB (what piles up while the grader falls behind), still bounded
    assert 0 < usage["grader_peak_kib"] < 640 * 1024, usage
    assert "MemoryError" in feedback(graded, "escape")
    notes = feedback(graded, "escape").split("## Notes")[1]
    assert "printed more than the output cap" in notes
    assert "larger than the grader accepts (4 MiB); it was dropped and the cell failed" in notes


def test_a_crash_and_a_hang_cost_their_question_only_and_are_called_what_they_were(graded):
    page = feedback(graded, "crash-and-hang")
    q1, rest = page.split("## q1: failed")[1].split("## q2: failed")
    q2, notes = rest.split("## Notes")
    assert "the kernel crashed: SIGSEGV while running this check" in q1
    assert f"timed out: the check ran longer than {TIMEOUT:g} s" in q2 and "SIG" not in q2
    assert "timed out" in feedback(graded, "mutants-wrong").split("## q3")[1]  # Python-level
    assert notes.count("ran again in a fresh kernel") == 2


def test_the_reference_is_not_available_while_grading(graded):
    page = feedback(graded, "calls-the-reference")
    for label in ("q1", "q2", "q3"):
        assert f"is not available while grading {label}" in page
    assert page.count("withheld while grading") == 3


def test_attacks_on_the_checks_fail_the_checks(graded):
    for student in ("patches-checks", "input-transformer", "fakes"):
        assert "Score: **0 / 10**" in feedback(graded, student), student
    fakes = feedback(graded, "fakes")
    assert fakes.count("not plain data") == 2 and "AlwaysDict" in fakes
    escape = feedback(graded, "escape").split("## q2")[0]
    assert "KeyError: vmx_exits" in escape  # it found no classmate's file to read
    with open(graded["out"] / "grades.csv") as sheet:
        assert "hacked" not in sheet.read()


def test_feedback_says_how_the_notebook_was_read(graded):
    assert "no cell ids" in feedback(graded, "no-ids")
    copies = feedback(graded, "helpers-and-copies")
    assert "appears 3 times" in copies and "appears 2 times" in copies
    assert "1 cell(s) you added were kept" in copies
    assert "not graded" not in feedback(graded, "noisy")
    absent = feedback(graded, "absent")
    assert "No submission: expected absent/" in absent and "not submitted" in absent
    assert "FAIL" not in absent and "not graded" not in absent  # nothing to fail
    assert "could not be read as a notebook" in feedback(graded, "not-json")


def test_the_summary_gives_pass_rates_and_lists_what_was_not_graded(graded):
    with open(graded["out"] / "summary.csv", newline="") as sheet:
        rows = {row["check"]: row for row in csv.DictReader(sheet)
                if row["notebook"] == NOTEBOOK}
    every = {**EXPECTED, **MORE}
    submitted = len(every) - 1  # "absent" handed nothing in
    for number, label in enumerate(("q1", "q2", "q3")):
        passed = sum(1 for points in every.values() if points[number])
        assert (rows[label]["submitted"], rows[label]["passed"]) == (str(submitted), str(passed))
    page = (graded["out"] / "summary.md").read_text()
    assert "stray.ipynb" in page and "01-intercepts-exercises (1).ipynb" in page
    assert ".ipynb_checkpoints" not in page


def test_the_graded_notebooks_hold_the_course_checks_with_the_expected_answers(graded):
    exercise = load_exercise(EXERCISES / NOTEBOOK)
    notebook = json.loads((graded["out"] / "merged" / "patches-checks" / NOTEBOOK).read_text())
    cells = {cell["id"]: cell for cell in notebook["cells"]}
    for check in exercise.checks:
        cell = cells[check.cell_id]
        assert "".join(cell["source"]) == exercise.notebook.cells[check.cell_index].source
        assert "".join(cell["outputs"][0]["data"]["text/plain"]) == exercise.graded[
            check.label].emission


def test_grading_the_same_students_twice_gives_the_same_reports(graded):
    first, again = reports(graded["out"]), reports(graded["again"])
    feedback_pages = {k: v for k, v in first.items() if k.split("/")[1:2] and
                      k.split("/")[1] in TIMING}
    assert {k: v for k, v in again.items() if k.startswith("feedback/")} == feedback_pages
    with open(graded["out"] / "grades.csv", newline="") as a, \
            open(graded["again"] / "grades.csv", newline="") as b:
        rows = {row["student"]: row for row in csv.DictReader(a) if row["student"] in TIMING}
        assert {row["student"]: row for row in csv.DictReader(b)} == rows


# --- without a kernel ------------------------------------------------------------------------

def test_without_bubblewrap_grading_refuses_unless_told_to_run_unsafe(tmp_path, monkeypatch,
                                                                      capsys):
    (tmp_path / "subs").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(ConfigError, match="sudo apt-get install bubblewrap"):
        grade(EXERCISES, tmp_path / "subs", tmp_path / "out")
    assert main(["grade", str(EXERCISES), str(tmp_path / "subs"), str(tmp_path / "out")]) == 2
    assert "--unsafe-no-sandbox" in capsys.readouterr().err
    assert main(["preflight"]) == 2


def test_grading_against_a_solution_notebook_or_into_the_submissions_is_refused(tmp_path):
    with pytest.raises(NotebookConventionError, match="solution region"):
        load_exercise(ROOT / "solutions" / NOTEBOOK)
    with pytest.raises(ConfigError, match="must not contain each other"):
        grade(EXERCISES, tmp_path / "submissions", tmp_path / "submissions" / "out")
