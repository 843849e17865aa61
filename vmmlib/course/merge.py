"""Build the notebook that is graded: the course's exercise with the student's answers in it.

From the student's notebook only two things are taken: the source of each *answer* cell, and
the cells the student *added* (a helper function, a test of their own). Everything else comes
from the course: the check cells, the exercise's own code and text cells and every output. So
a deleted, duplicated or edited check changes nothing, and outputs saved in the student's file
are never trusted. The submission is read as plain JSON and never modified.

Matching the student's cells to the exercise's:

1. by cell id (nbformat 4.5, what JupyterLab saves);
2. for cells left over (a notebook saved without ids, nbformat 4.4, or cells pasted into a new
   notebook), by tags and position: the k-th unmatched ``check``-tagged cell is the k-th
   unmatched check; an ``answer``-tagged cell is an answer of the section it sits in (the
   cells between two checks); an untagged cell with exactly a course cell's text is that
   cell; and a notebook with neither ids nor tags but the exercise's shape is matched cell by
   cell;
3. whatever is left was added by the student: it is kept, in place, before the course cell that
   follows it in the student's notebook, so it runs before the answers after it.

An answer cell that occurs more than once (copied, or the same id twice): the last copy that
is not blank (not empty, not the exercise's unchanged placeholder) counts, with a note.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .conventions import ANSWER_TAG, CHECK_TAG, cell_tags, list_checks, source_text

if TYPE_CHECKING:
    from nbformat import NotebookNode

CELL_TYPES = ("code", "markdown", "raw")


@dataclass
class Merged:
    """The notebook to grade, and what the student should know about how it was built."""

    notebook: NotebookNode
    notes: list[str]


@dataclass
class _StudentCell:
    index: int
    cell_type: str
    source: str
    tags: list[str]
    cell_id: str | None
    course: int | None = None  # the course cell it is (or is a copy of)
    role: str = "added"  # "match", "copy" or "added"


@dataclass
class _Matching:
    course: list[Any]
    cells: list[_StudentCell]
    matched: dict[int, int] = field(default_factory=dict)  # course index -> student index

    def match(self, student: _StudentCell, course: int, role: str = "match") -> None:
        student.course, student.role = course, role
        if role == "match":
            self.matched[course] = student.index

    def unmatched(self) -> list[_StudentCell]:
        return [cell for cell in self.cells if cell.course is None]


def _read_cells(submission: dict[str, Any]) -> tuple[list[_StudentCell], int]:
    """The well-formed cells of the submission, and how many others were ignored."""
    cells = submission.get("cells")
    found, ignored = [], 0
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        text = source_text(cell) if isinstance(cell, dict) and "source" in cell else None
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        if text is None or kind not in CELL_TYPES:
            ignored += 1
            continue
        cell_id = cell.get("id")
        found.append(_StudentCell(index, kind, text, cell_tags(cell),
                                  cell_id if isinstance(cell_id, str) else None))
    return found, ignored


def _role(cell: Any) -> str:
    tags = cell_tags(cell)
    return "check" if CHECK_TAG in tags else "answer" if ANSWER_TAG in tags else "fixed"


def _match_by_id(m: _Matching) -> None:
    by_id = {cell.id: index for index, cell in enumerate(m.course)}
    for student in m.cells:
        course = by_id.get(student.cell_id)
        if course is None or student.cell_type != m.course[course].cell_type:
            continue
        if course not in m.matched:
            m.match(student, course)
        elif _role(m.course[course]) == "answer":
            m.match(student, course, "copy")
        else:  # a second copy of a check or of the exercise's text: the course's runs once
            m.match(student, course, "ignored")


def _sections(m: _Matching) -> dict[int, int]:
    """Student cell index -> course index of the last check before it (-1: none)."""
    checks = [index for index, cell in enumerate(m.course) if _role(cell) == "check"]
    free_checks = [index for index in checks if index not in m.matched]
    for student in m.unmatched():
        if CHECK_TAG in student.tags and free_checks and student.cell_type == "code":
            m.match(student, free_checks.pop(0))
    last, sections = -1, {}
    for student in m.cells:
        sections[student.index] = last
        if student.course is not None and _role(m.course[student.course]) == "check":
            last = student.course
    return sections


def _match_by_tags_and_position(m: _Matching) -> None:
    sections = _sections(m)
    for student in m.unmatched():
        if ANSWER_TAG not in student.tags:
            continue
        after = sections[student.index]
        section = []  # the course answers between check `after` and the next check
        for index in range(after + 1, len(m.course)):
            role = _role(m.course[index])
            if role == "check":
                break
            if role == "answer" and m.course[index].cell_type == student.cell_type:
                section.append(index)
        free = [index for index in section if index not in m.matched]
        if free:
            m.match(student, free[0])
        elif section:
            before = [i for i in section if m.matched[i] < student.index]
            m.match(student, before[-1] if before else section[0], "copy")
    for student in m.unmatched():  # an exercise cell without its id: the same text
        for index, cell in enumerate(m.course):
            if (index not in m.matched and _role(cell) == "fixed"
                    and cell.cell_type == student.cell_type and cell.source == student.source):
                m.match(student, index)
                break


def _match_by_shape(m: _Matching) -> bool:
    """A notebook with no ids and no tags at all but the exercise's shape: cell by cell."""
    if any(c.cell_id or c.tags for c in m.cells) or len(m.cells) != len(m.course) or [
            c.cell_type for c in m.cells] != [c.cell_type for c in m.course]:
        return False
    for index, student in enumerate(m.cells):
        m.match(student, index)
    return True


def _blank(text: str, exercise_text: str) -> bool:
    return not text.strip() or text.strip() == exercise_text.strip()


def _added_id(student: _StudentCell, taken: set[str]) -> str:
    cell_id = student.cell_id
    if cell_id is None or cell_id in taken or not 1 <= len(cell_id) <= 64:
        cell_id = f"added-{student.index}"
    taken.add(cell_id)
    return cell_id


def _added_cell(student: _StudentCell, cell_id: str) -> Any:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

    make = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    return make[student.cell_type](student.source, id=cell_id)


def merge_submission(exercise: NotebookNode, submission: dict[str, Any],
                     name: str = "notebook") -> Merged:
    """The exercise (not modified) with the student's answers and added cells in it.

    ``submission`` is the student's notebook as parsed JSON; anything in it that is not a
    well-formed cell is ignored.
    """
    cells, ignored = _read_cells(submission)
    m = _Matching(exercise.cells, cells)
    notes: list[str] = []
    if not any(cell.cell_id for cell in cells) and cells:
        notes.append("Your notebook has no cell ids (saved by an older tool): its cells were "
                     "matched to the exercise's by their position and tags.")
    _match_by_id(m)
    if not _match_by_shape(m):
        _match_by_tags_and_position(m)
    labels = {check.cell_index: check.label for check in list_checks(exercise, name)}
    by_index = {cell.index: cell for cell in cells}
    merged = copy.deepcopy(exercise)
    for index, cell in enumerate(merged.cells):
        role = _role(cell)
        if role == "check" and index not in m.matched:
            notes.append(f"Check {labels[index]} was missing from your notebook; the course's "
                         "check was run.")
        elif role == "check" and by_index[m.matched[index]].source != cell.source:
            notes.append(f"Check {labels[index]} was edited in your notebook; the course's "
                         "check was run.")
        if role != "answer":
            continue
        copies = [c for c in cells if c.course == index and c.role in ("match", "copy")]
        filled = [c for c in copies if not _blank(c.source, cell.source)]
        if not copies:
            notes.append(f"Answer cell {index} (id {cell.id}) was not found in your notebook "
                         "(deleted, or changed type), so it was graded blank.")
            continue
        chosen = (filled or copies)[-1]
        cell.source = chosen.source
        if len(copies) > 1:
            notes.append(f"Answer cell {index} (id {cell.id}) appears {len(copies)} times in "
                         f"your notebook; the last one you filled in (your cell "
                         f"{chosen.index}) was graded, the others were not run.")
    _insert_added(merged, m, notes)
    if ignored:
        notes.append(f"{ignored} malformed cell(s) in your file were ignored.")
    return Merged(merged, notes)


def _insert_added(merged: NotebookNode, m: _Matching, notes: list[str]) -> None:
    """Put each added cell before the course cell that follows it in the student's notebook."""
    anchors: dict[int | None, list[_StudentCell]] = {}
    pending: list[_StudentCell] = []
    for student in m.cells:
        if student.course is None:
            pending.append(student)
        elif student.role in ("match", "copy") and pending:
            anchors.setdefault(student.course, []).extend(pending)
            pending = []
    if pending:
        anchors.setdefault(None, []).extend(pending)
    if not any(anchors.values()):
        return
    taken = {cell.id for cell in merged.cells}
    cells = []
    for index, cell in enumerate(merged.cells):
        cells += [_added_cell(s, _added_id(s, taken)) for s in anchors.get(index, [])]
        cells.append(cell)
    cells += [_added_cell(s, _added_id(s, taken)) for s in anchors.get(None, [])]
    merged.cells = cells
    count = sum(len(group) for group in anchors.values())
    notes.append(f"{count} cell(s) you added were kept and run where you put them.")
