"""The real chapter exercises as students get them: generated from the current solutions,
every answer blank, no stored verdict anywhere, checks that run the chapter's questions.

The real exercise is graded for real (blank scores 0, the solutions' answers full marks) in
tests/test_course_grading.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmmlib.course.checks import load_chapter
from vmmlib.course.exercises import course_notebooks, sync_exercises
from vmmlib.course.grading import load_exercise

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
SOLUTIONS = ROOT / "solutions"
#: every chapter's exercise: its questions and their points
CHAPTERS = {
    "01-intercepts-exercises.ipynb": (("q1", 4), ("q2", 3), ("q3", 3)),
    "02-device-model-exercises.ipynb": (("q1", 3), ("q2", 3), ("q3", 2), ("q4", 2)),
    "03-split-drivers-exercises.ipynb": (("q1", 2), ("q2", 3), ("q3", 3), ("q4", 2)),
}
each_chapter = pytest.mark.parametrize("notebook", sorted(CHAPTERS))


def test_exercises_are_generated_from_the_current_solutions():
    result = sync_exercises(SOLUTIONS, EXERCISES, check=True)
    assert result.up_to_date, f"run `make exercises`: {result.stale}, {result.missing} stale"
    names = [p.name for p in course_notebooks(EXERCISES)]
    assert names == [p.name for p in course_notebooks(SOLUTIONS)]
    assert all(name.endswith("-exercises.ipynb") for name in names)  # a tab tells them apart
    assert names == sorted(CHAPTERS)


@each_chapter
def test_every_answer_cell_of_the_exercise_is_blank(notebook):
    nb = json.loads((EXERCISES / notebook).read_text())
    answers = [c for c in nb["cells"] if "answer" in c["metadata"].get("tags", [])]
    assert len(answers) == len(CHAPTERS[notebook])
    for cell in answers:
        source = "".join(cell["source"])
        assert "raise NotImplementedError" in source and "BEGIN SOLUTION" not in source


@each_chapter
def test_an_untouched_exercise_shows_no_verdict(notebook):
    nb = json.loads((EXERCISES / notebook).read_text())
    checks = [c for c in nb["cells"] if "check" in c["metadata"].get("tags", [])]
    assert checks and all(c["outputs"] == [] and c["execution_count"] is None for c in checks)
    assert "cases correct" not in (EXERCISES / notebook).read_text()


@each_chapter
def test_each_check_runs_a_question_of_the_chapters_checks_module(notebook):
    exercise = load_exercise(EXERCISES / notebook)
    assert tuple((c.label, c.points) for c in exercise.checks) == CHAPTERS[notebook]
    assert sum(c.points for c in exercise.checks) == 10
    chapter = load_chapter(exercise.notebook.metadata["vmmlib"]["checks"])
    assert [q.label for q in chapter.questions] == [label for label, _ in CHAPTERS[notebook]]
    for check in exercise.checks:
        function = chapter.question(check.label).function
        source = exercise.notebook.cells[check.cell_index].source
        assert source == f"checks.check_{function}({function})"
