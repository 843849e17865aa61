"""Generate ``exercises/NN-slug-exercises.ipynb`` from ``solutions/NN-slug-exercises.ipynb``.

For each cell of the solution, the exercise gets:

* an *answer* cell (it holds a solution region): the region replaced by a placeholder
  (see :mod:`vmmlib.course.regions`), the tag ``answer``, outputs cleared;
* a *check* cell (tag ``check``): outputs cleared, so an untouched exercise never shows a
  verdict (the solution's stored "n/n cases correct" under a stub would look solved), and
  ``editable``/``deletable`` false so JupyterLab protects it from accidents. Run by the
  student, it prints its own verdict (self-check); in grading the expected answers come from
  the grader (:mod:`vmmlib.course.grading`), never from this file;
* any other cell: copied as it is, outputs included.

Every cell keeps its id, and nbclient's per-run timing metadata is dropped. The output is a
pure function of the solution file, so a stale ``exercises/`` folder is detected by
regenerating in memory and comparing bytes (``--check``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .conventions import (
    ANSWER_TAG,
    RUN_ONLY_METADATA,
    NotebookConventionError,
    cell_tags,
    describe_cell,
    is_check,
    list_checks,
)
from .nbfiles import notebook_bytes, read_course_notebook, write_atomically
from .regions import find_regions, strip_solutions

if TYPE_CHECKING:
    from nbformat import NotebookNode


def _add_tag(cell: NotebookNode, tag: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def _require_stored_verdict(cell: NotebookNode, where: str) -> None:
    """A check cell must have been run in the solution, and must have passed there."""
    if cell.execution_count is None:
        raise NotebookConventionError(
            f"{where}: the check cell has no stored output; execute the solution notebook "
            "and save it with its outputs"
        )
    if any(output.get("output_type") == "error" for output in cell.outputs):
        raise NotebookConventionError(
            f"{where}: the check cell fails on the solution itself (its stored output is an error)"
        )


def make_exercise(solution: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The exercise notebook for ``solution`` (not modified); ``name`` appears in errors."""
    list_checks(solution, name)  # validates every check cell's points and label
    exercise = copy.deepcopy(solution)
    for index, cell in enumerate(exercise.cells):
        where = describe_cell(name, index, cell)
        for key in RUN_ONLY_METADATA:
            cell.metadata.pop(key, None)
        regions = find_regions(cell.source, where)
        if is_check(cell):
            if regions:
                raise NotebookConventionError(f"{where}: a check cell cannot hold a solution")
            _require_stored_verdict(cell, where)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        elif regions:
            cell.source = strip_solutions(cell.source, cell.cell_type, where)
            _add_tag(cell, ANSWER_TAG)
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        elif ANSWER_TAG in cell_tags(cell):
            raise NotebookConventionError(
                f"{where}: tagged {ANSWER_TAG!r} but holds no solution region"
            )
    return exercise


def exercise_bytes(solution_path: Path) -> bytes:
    """The exact bytes of the exercise generated from the solution file at ``solution_path``."""
    solution_path = Path(solution_path)
    solution = read_course_notebook(solution_path)
    return notebook_bytes(make_exercise(solution, solution_path.name))


def course_notebooks(folder: Path) -> list[Path]:
    """The notebooks of a course folder, sorted by name (hidden files and checkpoints skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    return sorted(path for path in folder.glob("*.ipynb") if not path.name.startswith("."))


@dataclass
class ExerciseSync:
    """What generating exercises found or did, as lists of notebook file names."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """True when exercises/ holds exactly what the solutions generate."""
        return not (self.stale or self.missing or self.extra)


def sync_exercises(solutions_dir: Path, exercises_dir: Path, *,
                   check: bool = False) -> ExerciseSync:
    """Generate every exercise of ``solutions_dir`` into ``exercises_dir``.

    With ``check=True`` nothing is written: the result lists the exercises that are stale
    (differ from what would be generated), missing, or extra (no solution generates them).
    Without it, changed and missing files are written; extra files are reported, not deleted.
    """
    exercises_dir = Path(exercises_dir)
    result = ExerciseSync()
    solutions = course_notebooks(solutions_dir)
    for solution_path in solutions:
        expected = exercise_bytes(solution_path)
        target = exercises_dir / solution_path.name
        current = target.read_bytes() if target.is_file() else None
        if current == expected:
            result.unchanged.append(target.name)
        elif check:
            (result.missing if current is None else result.stale).append(target.name)
        else:
            write_atomically(target, expected)
            result.written.append(target.name)
    if exercises_dir.is_dir():
        names = {path.name for path in solutions}
        result.extra = [p.name for p in course_notebooks(exercises_dir) if p.name not in names]
    return result
