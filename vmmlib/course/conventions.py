"""The conventions an exercise notebook follows, in one place.

A chapter's exercise is written once, as ``solutions/NN-slug-exercises.ipynb`` (nbformat 4.5,
so every cell has a stable ``id``; the ``-exercises`` suffix tells it from the lecture notebook
``notebooks/NN-slug.ipynb`` in a browser tab):

* Solution code sits between a line ``### BEGIN SOLUTION`` and a line ``### END SOLUTION``
  (the marker convention nbgrader made familiar). A cell holding such a region is an *answer*
  cell; it may be a code cell or a markdown cell (a written answer).
* A *check* cell is a code cell tagged ``check`` with an integer ``points`` in its metadata and
  a short ``check_id`` (e.g. ``"q1"``) that names it in grade sheets and names the question of
  the notebook's checks module (notebook metadata ``{"vmmlib": {"checks": "vmmlib.course.
  checks.<chapter>"}}``) it runs, as ``checks.check_<name>(<the student's function>)``; see
  :mod:`vmmlib.course.checks`. Run by a student it prints the verdict and raises with a hint
  when an answer is wrong; in grading it only shows the student's answers, which the grader
  compares with the reference's outside the student's kernel.

The generated exercise tags answer cells ``answer`` and stores no output under check cells.
The graded notebook (:mod:`vmmlib.course.grading`) tags check cells ``nbval-check-output``,
so that nbval compares them with the expected answers the grader stores there.

This module is stdlib-only: notebooks are handled here as plain JSON dictionaries, so a
submission that is not even a valid notebook can still be inspected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"

ANSWER_TAG = "answer"
CHECK_TAG = "check"
NBVAL_CHECK_TAG = "nbval-check-output"
POINTS_KEY = "points"
CHECK_ID_KEY = "check_id"

# Cell metadata that describes one run of the solution notebook, not the exercise:
# nbclient's per-cell timestamps (``record_timing``).
RUN_ONLY_METADATA = ("execution",)

# Column names of grades.csv that a check label must not shadow.
RESERVED_LABELS = ("student", "notebook", "total", "max")


class NotebookConventionError(ConfigError):
    """A course notebook breaks the solution/exercise conventions (markers, tags, points, ids)."""


@dataclass(frozen=True)
class CheckSpec:
    """One check cell of an exercise: where it is, what it is called, what it is worth.

    ``code_index`` counts code cells only, from 0: it is the ``N`` of nbval's test item
    ``Cell N``, which is how a check is found again in nbval's junit report.
    """

    label: str
    cell_id: str
    cell_index: int
    code_index: int
    points: int


def source_text(cell: dict[str, Any]) -> str | None:
    """A cell's source as one string (files store it as a list of lines); None if malformed."""
    source = cell.get("source", "")
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return None


def cell_tags(cell: dict[str, Any]) -> list[str]:
    """The cell's tags (``metadata.tags``), or an empty list."""
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def is_check(cell: dict[str, Any]) -> bool:
    """True for a check cell (tagged ``check``)."""
    return CHECK_TAG in cell_tags(cell)


def has_solution_markers(text: str) -> bool:
    """True if any line of ``text`` is a solution marker."""
    return any(line.strip() in (BEGIN_MARKER, END_MARKER) for line in text.splitlines())


def describe_cell(notebook_name: str, index: int, cell: dict[str, Any]) -> str:
    """``"01-intercepts-exercises.ipynb cell 4 (id 'a1b2')"``: how error messages point at
    a cell."""
    return f"{notebook_name} cell {index} (id {cell.get('id')!r})"


def check_points(cell: dict[str, Any], where: str) -> int:
    """The ``points`` of a check cell: a non-negative int, else NotebookConventionError."""
    points = cell.get("metadata", {}).get(POINTS_KEY)
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise NotebookConventionError(
            f"{where}: a check cell needs metadata {POINTS_KEY!r} = a whole number >= 0, "
            f"got {points!r}"
        )
    return points


def list_checks(notebook: dict[str, Any], notebook_name: str) -> list[CheckSpec]:
    """The check cells of a notebook in order, with unique labels.

    A check is labelled by its ``check_id`` metadata, else ``cellN`` with N its nbval cell
    number. Raises NotebookConventionError for a malformed check cell or a repeated label.
    """
    checks: list[CheckSpec] = []
    code_index = 0
    for index, cell in enumerate(notebook["cells"]):
        where = describe_cell(notebook_name, index, cell)
        if is_check(cell):
            if cell.get("cell_type") != "code":
                raise NotebookConventionError(f"{where}: only a code cell can be a check")
            label = cell.get("metadata", {}).get(CHECK_ID_KEY, f"cell{code_index}")
            if not isinstance(label, str) or not label.strip() or "\n" in label:
                raise NotebookConventionError(
                    f"{where}: {CHECK_ID_KEY!r} must be a one-line text, got {label!r}"
                )
            checks.append(CheckSpec(label, cell["id"], index, code_index,
                                    check_points(cell, where)))
        if cell.get("cell_type") == "code":
            code_index += 1
    labels = [check.label for check in checks]
    for label in labels:
        if labels.count(label) > 1 or label in RESERVED_LABELS:
            raise NotebookConventionError(
                f"{notebook_name}: check label {label!r} is used twice or is a reserved column "
                f"name {RESERVED_LABELS}; give the check cells distinct {CHECK_ID_KEY!r} values"
            )
    return checks


def require_cell_ids(raw: dict[str, Any], notebook_name: str) -> None:
    """Refuse a course notebook whose cells lack unique nbformat 4.5 ids.

    Without stored ids nbformat would invent random ones on reading, and exercises could no
    longer be generated byte-for-byte or matched with submissions.
    """
    cells = raw.get("cells")
    if raw.get("nbformat") != 4 or not isinstance(cells, list):
        raise NotebookConventionError(f"{notebook_name}: not an nbformat 4 notebook")
    ids = [cell.get("id") if isinstance(cell, dict) else None for cell in cells]
    if raw.get("nbformat_minor", 0) < 5 or any(not isinstance(i, str) for i in ids):
        raise NotebookConventionError(
            f"{notebook_name}: cells have no ids (nbformat < 4.5); open and save it with "
            "JupyterLab 3 or later, or upgrade it with nbformat, so that every cell gets one"
        )
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise NotebookConventionError(f"{notebook_name}: repeated cell ids {repeated}")


def read_json(path: Path) -> dict[str, Any]:
    """Parse a notebook file as plain JSON; NotebookConventionError if it is not a JSON object."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotebookConventionError(f"{path}: cannot read as a notebook: {error}") from None
    if not isinstance(raw, dict):
        raise NotebookConventionError(f"{path}: not a notebook (the JSON is not an object)")
    return raw
