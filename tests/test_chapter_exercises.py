"""The real chapter exercises: up to date, and graded honestly.

One grading run over the shipped exercises/ with three students: one who handed in the blank
exercise (every check must fail), one who copied the solutions' answer cells (full marks),
and one whose q1 checks only the first port of an access (q1 fails, q2 and q3 pass).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from vmmlib.course.exercises import course_notebooks, sync_exercises
from vmmlib.course.grading import grade, load_exercise

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
SOLUTIONS = ROOT / "solutions"
NOTEBOOK = "01-intercepts.ipynb"

FIRST_PORT_ONLY = """def vmx_exits(a: bytes, b: bytes, port: int, size: int) -> bool:
    bits = a if port < 0x8000 else b
    index = port % 0x8000
    return bool(bits[index // 8] >> (index % 8) & 1)
"""


def test_exercises_are_generated_from_the_current_solutions():
    result = sync_exercises(SOLUTIONS, EXERCISES, check=True)
    assert result.up_to_date, (
        f"run `make exercises`: stale {result.stale}, missing {result.missing}"
    )
    assert [p.name for p in course_notebooks(EXERCISES)] == [
        p.name for p in course_notebooks(SOLUTIONS)
    ]


def test_every_answer_cell_of_the_exercise_is_blank():
    nb = json.loads((EXERCISES / NOTEBOOK).read_text())
    answers = [c for c in nb["cells"] if "answer" in c["metadata"].get("tags", [])]
    assert len(answers) == 3
    for cell in answers:
        source = "".join(cell["source"])
        assert "raise NotImplementedError" in source and "BEGIN SOLUTION" not in source


def _submission(cells_from: dict[str, str]) -> dict:
    """The exercise notebook with some answer cells replaced (by cell id)."""
    nb = json.loads((EXERCISES / NOTEBOOK).read_text())
    for cell in nb["cells"]:
        if cell["id"] in cells_from:
            cell["source"] = cells_from[cell["id"]]
    return nb


@pytest.fixture(scope="module")
def class_grades(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    solution = json.loads((SOLUTIONS / NOTEBOOK).read_text())
    marker = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
    answers = {
        c["id"]: marker.sub("", "".join(c["source"]))
        for c in solution["cells"]
        if "BEGIN SOLUTION" in "".join(c["source"])
    }
    students = {
        "blank": _submission({}),
        "correct": _submission(answers),
        "first-port-only": _submission({**answers, "q1-answer": FIRST_PORT_ONLY}),
    }
    subs = tmp / "submissions"
    for name, nb in students.items():
        (subs / name).mkdir(parents=True)
        (subs / name / NOTEBOOK).write_text(json.dumps(nb))
    before = {p: p.read_bytes() for p in subs.rglob("*.ipynb")}
    grade(EXERCISES, subs, tmp / "out", jobs=2, cell_timeout=60)
    after = {p: p.read_bytes() for p in subs.rglob("*.ipynb")}
    assert before == after, "grading must never modify a submission"
    with open(tmp / "out" / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    shutil.rmtree(tmp / "out" / "merged")
    return rows


def test_blank_exercise_scores_zero_on_every_check(class_grades):
    row = class_grades["blank"]
    assert (row["q1"], row["q2"], row["q3"], row["total"]) == ("0", "0", "0", "0")


def test_solution_answers_score_full_marks(class_grades):
    row = class_grades["correct"]
    assert (row["q1"], row["q2"], row["q3"], row["total"], row["max"]) == (
        "4",
        "3",
        "3",
        "10",
        "10",
    )


def test_a_wrong_answer_loses_exactly_its_check(class_grades):
    row = class_grades["first-port-only"]
    assert (row["q1"], row["q2"], row["q3"], row["total"]) == ("0", "3", "3", "6")


def test_check_points_match_the_exercise_metadata():
    checks = load_exercise(EXERCISES / NOTEBOOK).checks
    assert [(c.label, c.points) for c in checks] == [("q1", 4), ("q2", 3), ("q3", 3)]
