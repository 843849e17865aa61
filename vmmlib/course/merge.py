"""Build the notebook that is graded: the course's exercise with the student's answers in it.

Only answer cells come from the student, matched by cell id: every other cell, every check
and every stored output comes from the pristine exercise. So a deleted, duplicated or edited
check cell changes nothing, outputs saved in the student's file are never trusted, and an
answer cell the student deleted stays as the exercise had it (blank). The submission itself
is read as plain JSON and never modified.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .conventions import ANSWER_TAG, cell_tags, list_checks, source_text

if TYPE_CHECKING:
    from nbformat import NotebookNode


@dataclass
class Merged:
    """The notebook to grade, and what the student should know about how it was built."""

    notebook: NotebookNode
    notes: list[str]


def _cells_by_id(submission: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The submission's cells by id (first one wins), and the ids that occur more than once."""
    cells = submission.get("cells")
    found: dict[str, dict[str, Any]] = {}
    repeated: set[str] = set()
    for cell in cells if isinstance(cells, list) else []:
        cell_id = cell.get("id") if isinstance(cell, dict) else None
        if not isinstance(cell_id, str):
            continue
        if cell_id in found:
            repeated.add(cell_id)
        else:
            found[cell_id] = cell
    return found, repeated


def merge_submission(exercise: NotebookNode, submission: dict[str, Any],
                     name: str = "notebook") -> Merged:
    """The exercise (not modified) with each ``answer`` cell's source taken from ``submission``.

    ``submission`` is the student's notebook as parsed JSON; anything in it that is not a
    well-formed cell with an id is ignored.
    """
    merged = copy.deepcopy(exercise)
    student, repeated = _cells_by_id(submission)
    labels = {check.cell_id: check.label for check in list_checks(exercise, name)}
    notes: list[str] = []
    for index, cell in enumerate(merged.cells):
        theirs = student.get(cell.id)
        if ANSWER_TAG in cell_tags(cell):
            text = source_text(theirs) if theirs is not None else None
            if text is None or theirs.get("cell_type") != cell.cell_type:
                notes.append(f"Answer cell {index} (id {cell.id}) was not found in your "
                             "notebook (deleted, or changed type), so it was graded blank.")
            else:
                cell.source = text
        elif cell.id in labels:
            if theirs is None:
                notes.append(f"Check {labels[cell.id]} was missing from your notebook; the "
                             "course's check was run.")
            elif source_text(theirs) != cell.source:
                notes.append(f"Check {labels[cell.id]} was edited in your notebook; the "
                             "course's check was run.")
    added = sorted(set(student) - {cell.id for cell in merged.cells})
    if added:
        notes.append(f"{len(added)} cell(s) you added were not graded: only answer cells "
                     "count, so write your answers in them.")
    if repeated:
        notes.append(f"Cell ids used more than once in your notebook: {sorted(repeated)}; the "
                     "first cell with each id was used.")
    return Merged(merged, notes)
