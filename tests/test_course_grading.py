"""Grading a class (vmmlib.course.grading, merge, reports) against the fixture exercise.

Exercise 01-practice has two checks: q1 (add, 2 points) and cell4 (io_bitmap_bit, 3 points).
Seven students cover what graders get wrong: blank, correct, one check wrong, a cheater who
deleted one check and replaced another with `pass` plus a print of the passing verdict, an
endless loop, no submission, and a file that is not JSON.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import time
from pathlib import Path

import pytest

from vmmlib.course.__main__ import main
from vmmlib.course.conventions import NotebookConventionError
from vmmlib.course.exercises import exercise_bytes
from vmmlib.course.grading import grade, load_exercise
from vmmlib.course.merge import merge_submission
from vmmlib.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "course"
SOLUTION = FIXTURES / "solutions" / "01-practice.ipynb"
NAME = SOLUTION.name

ADD_RIGHT = "def add(a, b):\n    return a + b\n"
ADD_LOOPS = "def add(a, b):\n    while True:\n        pass\n"
BIT_RIGHT = ("def io_bitmap_bit(port):\n"
             "    return ('A' if port < 0x8000 else 'B'), (port % 0x8000) // 8, port % 8\n")
BIT_WRONG = ("def io_bitmap_bit(port):\n"  # forgets that bitmap B starts again at byte 0
             "    return ('A' if port < 0x8000 else 'B'), port // 8, port % 8\n")
FAKE_OUTPUT = {"name": "stdout", "output_type": "stream",
               "text": ["q2 io_bitmap_bit: 6/6 cases correct\n"]}

# The cheater's check: `pass`, and print the verdict the course stored, so that only a grader
# that runs the course's own check cell can catch it.
FAKE_CHECK = 'pass\nprint("q2 io_bitmap_bit: 6/6 cases correct")\n'

EXPECTED = {  # student -> points for (q1, cell4)
    "abe": (0, 3),  # endless loop in q1 (first in line: the slowest run starts first)
    "ada": (2, 3),  # correct
    "bob": (0, 0),  # blank
    "cy": (2, 0),  # q2 wrong
    "dee": (2, 0),  # q2 wrong; deleted check q1, replaced check cell4 (FAKE_CHECK)
    "fay": (0, 0),  # no submission
    "gus": (0, 0),  # not JSON
}


def as_saved(source: str) -> list[str]:
    return source.splitlines(keepends=True)  # how Jupyter stores a source


def student_notebook(answers: dict[str, str], drop: tuple[str, ...] = (),
                     edits: dict[str, str] | None = None) -> dict:
    """The exercise as a student saves it: answers typed in (with outputs), cells deleted or
    edited."""
    notebook = json.loads(exercise_bytes(SOLUTION))
    cells = []
    for cell in notebook["cells"]:
        if cell["id"] in drop:
            continue
        if cell["id"] in answers:
            cell["source"] = as_saved(answers[cell["id"]])
            cell["execution_count"], cell["outputs"] = 9, [dict(FAKE_OUTPUT)]
        if cell["id"] in (edits or {}):
            cell["source"] = as_saved(edits[cell["id"]])
            cell["outputs"] = [dict(FAKE_OUTPUT)]
        cells.append(cell)
    notebook["cells"] = cells
    return notebook


def digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    exercises, submissions, out = root / "exercises", root / "submissions", root / "out"
    exercises.mkdir()
    (exercises / NAME).write_bytes(exercise_bytes(SOLUTION))
    notebooks = {
        "ada": student_notebook({"q1-answer": ADD_RIGHT, "q2-answer": BIT_RIGHT}),
        "bob": student_notebook({}),
        "cy": student_notebook({"q1-answer": ADD_RIGHT, "q2-answer": BIT_WRONG}),
        "dee": student_notebook({"q1-answer": ADD_RIGHT, "q2-answer": BIT_WRONG},
                                drop=("q1-check",), edits={"q2-check": FAKE_CHECK}),
        "abe": student_notebook({"q1-answer": ADD_LOOPS, "q2-answer": BIT_RIGHT}),
    }
    for student, notebook in notebooks.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / NAME).write_text(json.dumps(notebook, indent=1))
    (submissions / "fay").mkdir()
    (submissions / "gus").mkdir()
    (submissions / "gus" / NAME).write_text("{ this is not json")
    (submissions / "ada" / ".ipynb_checkpoints").mkdir()
    (submissions / "ada" / "01-practice (1).ipynb").write_text("{}")
    (submissions / "stray.ipynb").write_text("{}")
    before = digest(submissions)
    start = time.monotonic()
    status = main(["grade", str(exercises), str(submissions), str(out),
                   "--jobs", "3", "--timeout", "4"])
    elapsed = time.monotonic() - start
    return {"out": out, "status": status, "elapsed": elapsed, "before": before,
            "after": digest(submissions), "exercises": exercises}


def feedback(graded, student: str) -> str:
    return (graded["out"] / "feedback" / student / "01-practice.md").read_text()


def test_grade_sheet_has_the_right_points_per_check(graded):
    assert graded["status"] == 0
    with open(graded["out"] / "grades.csv", newline="") as sheet:
        rows = list(csv.DictReader(sheet))
    assert list(rows[0]) == ["student", "notebook", "q1", "cell4", "total", "max"]
    assert [row["student"] for row in rows] == sorted(EXPECTED)
    for row in rows:
        q1, q2 = EXPECTED[row["student"]]
        assert (row["notebook"], row["q1"], row["cell4"], row["total"], row["max"]) == (
            NAME, str(q1), str(q2), str(q1 + q2), "5"), row


def test_submissions_are_never_modified(graded):
    assert graded["after"] == graded["before"]


def test_an_endless_loop_fails_its_check_only_and_does_not_hang(graded):
    assert graded["elapsed"] < 60
    page = feedback(graded, "abe")
    assert "Score: **3 / 5**" in page and "timed out" in page and "longer than 4 s" in page


def test_feedback_explains_each_failure(graded):
    assert "Score: **5 / 5**" in feedback(graded, "ada") and "FAIL" not in feedback(graded, "ada")
    assert "NotImplementedError: replace this line" in feedback(graded, "bob")
    wrong = feedback(graded, "cy")
    assert "| q1 | 2 / 2 | pass |" in wrong and "| cell4 | 0 / 3 | FAIL |" in wrong
    assert "AssertionError: port p is bit p % 8 of byte" in wrong
    cheat = feedback(graded, "dee")
    assert "Check q1 was missing" in cheat and "Check cell4 was edited" in cheat
    assert "No submission: expected fay/01-practice.ipynb" in feedback(graded, "fay")
    assert "could not be read as a notebook" in feedback(graded, "gus")


def test_summary_gives_pass_rates_over_the_submitted_notebooks(graded):
    with open(graded["out"] / "summary.csv", newline="") as sheet:
        rows = {row["check"]: row for row in csv.DictReader(sheet)}
    # submitted: everyone but fay; q1 passed by ada, cy, dee; cell4 by abe, ada
    assert (rows["q1"]["submitted"], rows["q1"]["passed"], rows["q1"]["pass_rate"]) == (
        "6", "3", "0.50")
    assert (rows["cell4"]["points"], rows["cell4"]["passed"], rows["cell4"]["pass_rate"]) == (
        "3", "2", "0.33")
    page = (graded["out"] / "summary.md").read_text()
    assert "| q1 | 2 | 3 / 6 | 50 % |" in page and "1 missing" in page
    assert "stray.ipynb" in page and "ada/01-practice (1).ipynb" in page
    assert ".ipynb_checkpoints" not in page


def test_the_graded_notebook_has_the_course_checks_and_outputs(graded):
    exercise = json.loads((graded["exercises"] / NAME).read_text())
    merged = json.loads((graded["out"] / "merged" / "dee" / NAME).read_text())
    assert [c["id"] for c in merged["cells"]] == [c["id"] for c in exercise["cells"]]
    ours = {c["id"]: c for c in exercise["cells"]}
    for cell in merged["cells"]:
        if cell["id"] in ("q1-answer", "q2-answer"):
            assert "".join(cell["source"]) in (ADD_RIGHT, BIT_WRONG)
            assert cell["outputs"] == [] and cell["execution_count"] is None
        else:
            assert cell == ours[cell["id"]]


# --- merging, without a kernel ---------------------------------------------------------------

@pytest.fixture(scope="module")
def exercise(tmp_path_factory):
    path = tmp_path_factory.mktemp("exercise") / NAME
    path.write_bytes(exercise_bytes(SOLUTION))
    return load_exercise(path)


def sources(notebook) -> dict[str, str]:
    return {cell.id: cell.source for cell in notebook.cells}


def test_a_deleted_or_retyped_answer_cell_stays_blank(exercise):
    submission = student_notebook({"q1-answer": ADD_RIGHT, "q2-answer": BIT_RIGHT},
                                  drop=("q1-answer",))
    for cell in submission["cells"]:
        if cell["id"] == "q2-answer":
            cell["cell_type"] = "markdown"
    merged = merge_submission(exercise.notebook, submission, NAME)
    assert sources(merged.notebook) == sources(exercise.notebook)
    assert sum("graded blank" in note for note in merged.notes) == 2


def test_duplicated_ids_and_added_cells_are_reported_not_graded(exercise):
    submission = student_notebook({"q1-answer": ADD_RIGHT})
    extra = copy.deepcopy(submission["cells"][2])
    extra["source"] = ADD_LOOPS
    submission["cells"] += [extra, {"id": "mine", "cell_type": "code", "source": "x = 1"},
                            "not a cell", {"cell_type": "code", "source": "no id"}]
    merged = merge_submission(exercise.notebook, submission, NAME)
    assert sources(merged.notebook)["q1-answer"] == ADD_RIGHT  # the first one wins
    assert "mine" not in sources(merged.notebook)
    assert any("used more than once" in note for note in merged.notes)
    assert any("1 cell(s) you added" in note for note in merged.notes)


def test_merging_leaves_the_exercise_untouched(exercise):
    before = copy.deepcopy(exercise.notebook)
    merge_submission(exercise.notebook, student_notebook({"q1-answer": ADD_RIGHT}), NAME)
    merge_submission(exercise.notebook, {"cells": "garbage"}, NAME)
    assert exercise.notebook == before


def test_grading_against_a_solution_notebook_is_refused(tmp_path):
    with pytest.raises(NotebookConventionError, match="solution region"):
        load_exercise(SOLUTION)
    with pytest.raises(ConfigError, match="must not contain each other"):
        grade(tmp_path, tmp_path / "submissions", tmp_path / "submissions" / "out")
