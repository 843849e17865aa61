"""Grade a class's submissions against the generated exercises.

Submission layout: one folder per student, named by the student's id, holding that student's
notebooks under the exercise's own file name::

    SUBMISSIONS_DIR/
        alice/01-intercepts.ipynb
        alice/02-device-model.ipynb
        bob/01-intercepts.ipynb

Hidden entries (``.ipynb_checkpoints``...) are skipped; any other file (a loose notebook, a
renamed copy such as ``01-intercepts (1).ipynb``) is not graded and is listed in the summary's
notes, so the instructor can rename it. A missing notebook scores 0.

For each (student, exercise) pair, :func:`grade_submission` builds the merged notebook
(:mod:`vmmlib.course.merge`) into ``OUT_DIR/merged/<student>/``, runs it under
``pytest --nbval-lax`` with a per-cell timeout (:mod:`vmmlib.course.nbval_runner`), and awards a
check's points when nbval passed its cell. Pairs are graded in parallel. The submissions are
only read. The student's code runs with your user's rights, in the merged notebook's folder:
grade untrusted work inside a container or a throw-away VM.

Outputs (see :mod:`vmmlib.course.reports`): ``grades.csv``, ``feedback/<student>/<notebook>.md``,
``summary.csv`` and ``summary.md`` (per-check pass rates across the class).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .conventions import (
    NBVAL_CHECK_TAG,
    CheckSpec,
    NotebookConventionError,
    cell_tags,
    describe_cell,
    has_solution_markers,
    list_checks,
)
from .exercises import course_notebooks
from .merge import merge_submission
from .nbfiles import notebook_bytes, read_course_notebook, write_atomically
from .nbval_runner import run_nbval

if TYPE_CHECKING:
    from nbformat import NotebookNode

DEFAULT_CELL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Exercise:
    """A generated exercise notebook, ready to receive students' answers."""

    name: str
    notebook: NotebookNode
    checks: tuple[CheckSpec, ...]

    @property
    def max_points(self) -> int:
        return sum(check.points for check in self.checks)


@dataclass(frozen=True)
class CheckResult:
    """One check of one submission: passed or not, and why not."""

    check: CheckSpec
    passed: bool
    reason: str = ""

    @property
    def awarded(self) -> int:
        return self.check.points if self.passed else 0


@dataclass
class SubmissionGrade:
    """The grade of one student's notebook for one exercise."""

    student: str
    notebook: str
    results: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    submitted: bool = True

    @property
    def total(self) -> int:
        return sum(result.awarded for result in self.results)

    @property
    def max_points(self) -> int:
        return sum(result.check.points for result in self.results)


@dataclass
class ClassGrades:
    """Every submission's grade, sorted by student then notebook, and notes on the layout."""

    exercises: list[Exercise]
    grades: list[SubmissionGrade]
    notes: list[str] = field(default_factory=list)


def load_exercise(path: Path) -> Exercise:
    """Read a generated exercise; refuse a solution notebook (it would give everyone full marks)."""
    path = Path(path)
    notebook = read_course_notebook(path)
    checks = tuple(list_checks(notebook, path.name))
    for index, cell in enumerate(notebook.cells):
        if has_solution_markers(cell.source):
            raise NotebookConventionError(
                f"{describe_cell(path.name, index, cell)} holds a solution region: grade "
                "against the generated exercises/, not solutions/"
            )
    for check in checks:
        if NBVAL_CHECK_TAG not in cell_tags(notebook.cells[check.cell_index]):
            raise NotebookConventionError(
                f"{path.name}: check {check.label} is not tagged {NBVAL_CHECK_TAG!r}; was this "
                "notebook generated with `python -m vmmlib.course exercises`?"
            )
    return Exercise(path.name, notebook, checks)


def _not_graded(student: str, exercise: Exercise, note: str, submitted: bool) -> SubmissionGrade:
    results = [CheckResult(check, False, "not graded") for check in exercise.checks]
    return SubmissionGrade(student, exercise.name, results, [note], submitted)


def grade_submission(student: str, exercise: Exercise, submission: Path, merged_path: Path,
                     *, cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> SubmissionGrade:
    """Grade one notebook file; the merged notebook that was run is written to ``merged_path``."""
    if not Path(submission).is_file():
        note = f"No submission: expected {student}/{exercise.name}."
        return _not_graded(student, exercise, note, submitted=False)
    try:
        raw = json.loads(Path(submission).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        note = f"Your file could not be read as a notebook ({type(error).__name__}): 0 points."
        return _not_graded(student, exercise, note, submitted=True)
    if not isinstance(raw, dict):
        note = "Your file is not a notebook (its JSON is not an object): 0 points."
        return _not_graded(student, exercise, note, submitted=True)
    merged = merge_submission(exercise.notebook, raw, exercise.name)
    write_atomically(merged_path, notebook_bytes(merged.notebook))
    run = run_nbval(merged_path, cell_timeout=cell_timeout)
    results = []
    for check in exercise.checks:
        outcome = run.outcomes.get(check.code_index)
        if outcome is None:
            results.append(CheckResult(check, False, "no result: the run did not reach it"))
        else:
            results.append(CheckResult(check, outcome.passed, outcome.reason))
    notes = merged.notes + ([run.problem] if run.problem else [])
    return SubmissionGrade(student, exercise.name, results, notes)


def find_students(submissions_dir: Path, exercise_names: set[str]) -> tuple[list[str], list[str]]:
    """The student folders (sorted), and notes on entries that will not be graded."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise ConfigError(f"{submissions_dir}: no such folder")
    students: list[str] = []
    notes: list[str] = []
    for entry in sorted(submissions_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            notes.append(f"Ignored file {entry.name}: put each student's notebooks in a folder "
                         "named after the student.")
            continue
        students.append(entry.name)
        for item in sorted(entry.iterdir()):
            if not item.name.startswith(".") and item.name not in exercise_names:
                notes.append(f"Ignored {entry.name}/{item.name}: not the name of an exercise.")
    return students, notes


def _require_tools() -> None:
    """Fail at once, not with a zero for everyone, if this Python cannot run nbval."""
    for module in ("pytest", "nbval", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{module} is not installed for {sys.executable}; grading runs nbval with it "
                "(pip install 'vmmlib[course]')"
            )


def _refuse_overlap(submissions_dir: Path, out_dir: Path) -> None:
    inputs, outputs = Path(submissions_dir).resolve(), Path(out_dir).resolve()
    if inputs == outputs or inputs in outputs.parents or outputs in inputs.parents:
        raise ConfigError(
            f"the output folder {out_dir} and the submissions folder {submissions_dir} must "
            "not contain each other (submissions are never written to)"
        )


def grade(exercises_dir: Path, submissions_dir: Path, out_dir: Path, *,
          jobs: int | None = None, cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> ClassGrades:
    """Grade every student's notebooks and write the grade sheet, feedback and summary.

    ``jobs`` submissions are graded at once (default: the number of CPUs); ``cell_timeout``
    is the time in seconds one cell may run before it is interrupted and fails.
    """
    from .reports import write_reports

    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    if cell_timeout <= 0:
        raise ConfigError(f"the cell timeout must be positive, got {cell_timeout}")
    _refuse_overlap(submissions_dir, out_dir)
    _require_tools()
    exercises = [load_exercise(path) for path in course_notebooks(exercises_dir)]
    if not exercises:
        raise ConfigError(f"{exercises_dir}: no exercise notebooks to grade against")
    students, notes = find_students(submissions_dir, {exercise.name for exercise in exercises})
    out_dir = Path(out_dir)

    def grade_pair(pair: tuple[str, Exercise]) -> SubmissionGrade:
        student, exercise = pair
        return grade_submission(
            student, exercise, Path(submissions_dir) / student / exercise.name,
            out_dir / "merged" / student / exercise.name, cell_timeout=cell_timeout,
        )

    pairs = [(student, exercise) for student in students for exercise in exercises]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        grades = list(pool.map(grade_pair, pairs))
    result = ClassGrades(exercises, grades, notes)
    write_reports(result, out_dir)
    return result
