"""Grade a class's submissions against the generated exercises, where students cannot reach.

Submission layout: one folder per student, named by the student's id, holding that student's
notebooks under the exercise's own file name::

    SUBMISSIONS_DIR/
        alice/01-intercepts-exercises.ipynb
        bob/01-intercepts-exercises.ipynb

Hidden entries (``.ipynb_checkpoints``...) are skipped; any other file (a loose notebook, a
renamed copy such as ``01-intercepts-exercises (1).ipynb``) is not graded and is listed in
the summary's notes, so the instructor can rename it. A missing notebook scores 0.

How a verdict stays out of the student's reach
----------------------------------------------
The student's code runs in a kernel; anything in that kernel can be changed by it (the check
functions, the input transformers, the stack frames, what gets printed), so nothing there is
trusted with a verdict:

1. **The kernel only computes answers.** In the graded kernel a check cell calls the student's
   function on each case's *inputs* and shows its *answers* as plain data, one line per case
   (:mod:`vmmlib.course.checks.plain`); an object that claims to equal everything is shown as
   "not plain data" and matches nothing. The kernel never holds an expected answer.
2. **The grader computes the expected answers**, outside the kernel, with the reference
   implementation (:func:`load_exercise`), and stores them as the check cells' outputs in the
   graded notebook, which stays in the grader's output folder.
3. **nbval compares**, cell by cell as ever, in a pytest process outside the sandbox: it runs
   each cell in the kernel and compares the check's answers with the stored ones
   (:mod:`vmmlib.course.grading_plugin`). The student's stray prints and warnings are not part
   of the comparison, and the feedback (which case, which rule) is computed here from the
   answers the kernel showed (:mod:`vmmlib.course.checks.judge`).
4. **The kernel runs in a bubblewrap sandbox** (:mod:`vmmlib.course.sandbox`): it sees the
   Python installation, the virtual environment and a copy of the vmmlib package in which the
   notebook's reference functions are withheld (:mod:`vmmlib.course.withheld`), all read-only,
   and a private empty /tmp; not the solutions, the exercise, the graded notebook, other
   submissions or the network. It has its own PID namespace (nothing it starts outlives it),
   an unprivileged uid, memory and CPU-time limits, and its output is capped by the grader.

So a student can still make a check *fail* (by printing a wrong answer), but can only make it
pass by computing the right answers: by solving the question.

Fairness: each question is graded in isolation. If a cell crashes the kernel or times out,
the cells after it run in a fresh kernel in which the cells before them ran again, without the
failed one (a crash is reported with its signal, a timeout as a timeout); how the notebook is
assembled from the student's cells is :mod:`vmmlib.course.merge`. Submissions are only read;
everything the grader writes goes into the output folder: ``grades.csv``,
``feedback/<student>/<notebook>.md``, ``summary.csv``, ``summary.md``
(:mod:`vmmlib.course.reports`) and ``merged/`` (the graded notebooks, with the expected
answers, for the instructor to inspect).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .checks import EMISSION_METADATA, Case, Question, load_chapter
from .checks.judge import reference_results
from .checks.plain import Result, emission
from .conventions import (
    NBVAL_CHECK_TAG,
    CheckSpec,
    NotebookConventionError,
    describe_cell,
    has_solution_markers,
    is_check,
    list_checks,
)
from .exercises import course_notebooks
from .nbfiles import notebook_bytes, read_course_notebook, write_atomically
from .sandbox import Limits, require_sandbox
from .withheld import withheld_by, write_stubbed_package

if TYPE_CHECKING:
    from nbformat import NotebookNode

DEFAULT_CELL_TIMEOUT = 30.0
CHECKS_METADATA = "vmmlib"  # notebook metadata: {"vmmlib": {"checks": "<module>"}}
SKIP_TAG = "nbval-skip"


@dataclass(frozen=True)
class GradedCheck:
    """A check cell, the question it runs, its cases and the reference's answers."""

    spec: CheckSpec
    question: Question
    cases: tuple[Case, ...]
    expected: tuple[Result, ...]

    @property
    def emission(self) -> str:
        return emission(self.question.label, self.question.function, list(self.expected))


@dataclass(frozen=True)
class Exercise:
    """A generated exercise notebook, ready to receive students' answers."""

    name: str
    notebook: NotebookNode
    checks: tuple[CheckSpec, ...]
    graded: dict[str, GradedCheck] = field(default_factory=dict, compare=False)

    @property
    def max_points(self) -> int:
        return sum(check.points for check in self.checks)

    @property
    def withheld(self) -> dict[Any, str]:
        return withheld_by(check.question for check in self.graded.values())


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
    """Every submission's grade, sorted by student then notebook, and notes on the run.

    ``usage`` holds measurements of the run (peak memory of the grader's nbval processes and
    of the kernels, in KiB) that do not go into the reports, which stay reproducible."""

    exercises: list[Exercise]
    grades: list[SubmissionGrade]
    notes: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)


def load_exercise(path: Path) -> Exercise:
    """Read a generated exercise and compute its checks' expected answers (here, outside any
    student's kernel); refuse a solution notebook (it would give everyone full marks)."""
    path = Path(path)
    notebook = read_course_notebook(path)
    checks = tuple(list_checks(notebook, path.name))
    for index, cell in enumerate(notebook.cells):
        if has_solution_markers(cell.source):
            raise NotebookConventionError(
                f"{describe_cell(path.name, index, cell)} holds a solution region: grade "
                "against the generated exercises/, not solutions/")
    module = notebook.metadata.get(CHECKS_METADATA, {}).get("checks")
    try:
        chapter = load_chapter(str(module))
    except (ImportError, ValueError) as error:
        raise NotebookConventionError(
            f"{path.name}: notebook metadata {CHECKS_METADATA}.checks must name the checks "
            f"module of vmmlib.course.checks that grades it ({error})") from None
    graded = {}
    for check in checks:
        try:
            question = chapter.question(check.label)
        except KeyError as error:
            raise NotebookConventionError(f"{path.name}: {error.args[0]}") from None
        if question.function not in notebook.cells[check.cell_index].source:
            raise NotebookConventionError(
                f"{path.name}: check {check.label} does not call the question's function "
                f"{question.function!r}")
        cases = tuple(question.cases())
        graded[check.label] = GradedCheck(check, question, cases,
                                          tuple(reference_results(question, cases)))
    return Exercise(path.name, notebook, checks, graded)


def graded_notebook(merged: NotebookNode, exercise: Exercise, skip: set[int]) -> NotebookNode:
    """The notebook nbval runs: outputs cleared, each check cell holding the expected
    answers (compared by nbval), the code cells numbered in ``skip`` tagged not to run."""
    notebook = copy.deepcopy(merged)
    labels = {check.cell_id: check.label for check in exercise.checks}
    code_index = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        tags = [t for t in cell.metadata.get("tags", []) if t in ("check", "answer")]
        if cell.id in labels and is_check(cell):
            check = exercise.graded[labels[cell.id]]
            cell.metadata["check_id"] = check.spec.label
            cell.execution_count = 1
            cell.outputs = [{"output_type": "display_data",
                             "data": {"text/plain": check.emission},
                             "metadata": {EMISSION_METADATA: {"check": check.spec.label}}}]
            tags.append(NBVAL_CHECK_TAG)
        if code_index in skip:
            tags.append(SKIP_TAG)
        cell.metadata["tags"] = tags
        code_index += 1
    import nbformat

    return nbformat.from_dict(notebook)


def not_graded(student: str, exercise: Exercise, note: str, submitted: bool) -> SubmissionGrade:
    results = [CheckResult(check, False, "not graded") for check in exercise.checks]
    return SubmissionGrade(student, exercise.name, results, [note], submitted)


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
                "(pip install 'vmmlib[course]')")


def _refuse_overlap(submissions_dir: Path, out_dir: Path) -> None:
    inputs, outputs = Path(submissions_dir).resolve(), Path(out_dir).resolve()
    if inputs == outputs or inputs in outputs.parents or outputs in inputs.parents:
        raise ConfigError(
            f"the output folder {out_dir} and the submissions folder {submissions_dir} must "
            "not contain each other (submissions are never written to)")


def read_submission(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The submission as JSON, or None and a note saying why it cannot be graded."""
    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, (f"Your file could not be read as a notebook ({type(error).__name__}): "
                      "0 points.")
    if not isinstance(raw, dict):
        return None, "Your file is not a notebook (its JSON is not an object): 0 points."
    return raw, ""


def _scratch_folder(out_dir: Path) -> Path:
    """Where the run keeps its kernels' sockets and stubbed packages: inside the output folder
    unless its path is too long for a Unix socket (then a temporary folder)."""
    inside = out_dir.resolve() / ".grading"
    if len(str(inside)) <= 60:
        shutil.rmtree(inside, ignore_errors=True)
        inside.mkdir(parents=True)
        return inside
    return Path(tempfile.mkdtemp(prefix="vmmlib-grade-"))


def grade(exercises_dir: Path, submissions_dir: Path, out_dir: Path, *,
          jobs: int | None = None, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
          limits: Limits | None = None, sandbox: bool = True) -> ClassGrades:
    """Grade every student's notebooks and write the grade sheet, feedback and summary.

    ``jobs`` nbval processes run at once (default: the number of CPUs), each grading its share
    of the submissions one after the other; ``cell_timeout`` is the time in seconds one cell
    may run before it is interrupted and fails; ``limits`` those of each kernel. Without
    ``sandbox`` the kernels run unconfined (``--unsafe-no-sandbox``): trusted work only.
    """
    from .reports import write_reports
    from .runs import grade_pairs

    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    if cell_timeout <= 0:
        raise ConfigError(f"the cell timeout must be positive, got {cell_timeout}")
    _refuse_overlap(submissions_dir, out_dir)
    _require_tools()
    if sandbox:
        require_sandbox()
    exercises = [load_exercise(path) for path in course_notebooks(exercises_dir)]
    if not exercises:
        raise ConfigError(f"{exercises_dir}: no exercise notebooks to grade against")
    students, notes = find_students(submissions_dir, {exercise.name for exercise in exercises})
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = _scratch_folder(out_dir)
    try:
        packages = {exercise.name: write_stubbed_package(scratch / f"package-{n}",
                                                         exercise.withheld)
                    for n, exercise in enumerate(exercises)}
        pairs = [(student, exercise) for student in students for exercise in exercises]
        grades, run_notes, usage = grade_pairs(
            pairs, Path(submissions_dir).resolve(), out_dir, scratch, packages,
            jobs=jobs or os.cpu_count() or 1, cell_timeout=cell_timeout,
            limits=limits or Limits(), sandbox=sandbox)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = ClassGrades(exercises, grades, notes + run_notes, usage)
    write_reports(result, out_dir)
    return result


def write_merged(path: Path, notebook: NotebookNode) -> None:
    write_atomically(path, notebook_bytes(notebook))

