"""Solution regions: the lines of a solution cell that a student must write.

A region starts at a line ``### BEGIN SOLUTION`` and ends at a line ``### END SOLUTION``
(markers alone on their line, any indentation). In the exercise a code region becomes one
``raise NotImplementedError(...)`` line, indented like the region's first code line so that a
region inside a function body leaves the function defined; a markdown region becomes
``_Your answer here._``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conventions import BEGIN_MARKER, END_MARKER, NotebookConventionError

CODE_PLACEHOLDER = 'raise NotImplementedError("replace this line with your answer")'
TEXT_PLACEHOLDER = "_Your answer here._"


@dataclass(frozen=True)
class Region:
    """Lines ``begin``..``end`` (0-based, both markers included) of a cell's source."""

    begin: int
    end: int


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def find_regions(source: str, where: str = "cell") -> list[Region]:
    """The solution regions of ``source``, in order.

    Raises NotebookConventionError (naming ``where`` and the line) for a region that is
    nested, not closed, or closed without being opened.
    """
    regions: list[Region] = []
    begin: int | None = None
    for number, line in enumerate(source.split("\n")):
        marker = line.strip()
        if marker == BEGIN_MARKER:
            if begin is not None:
                raise NotebookConventionError(
                    f"{where}, line {number + 1}: {BEGIN_MARKER!r} inside a region opened "
                    f"on line {begin + 1} (regions cannot nest)"
                )
            begin = number
        elif marker == END_MARKER:
            if begin is None:
                raise NotebookConventionError(
                    f"{where}, line {number + 1}: {END_MARKER!r} without a {BEGIN_MARKER!r}"
                )
            regions.append(Region(begin, number))
            begin = None
    if begin is not None:
        raise NotebookConventionError(
            f"{where}, line {begin + 1}: {BEGIN_MARKER!r} is never closed by {END_MARKER!r}"
        )
    return regions


def strip_solutions(source: str, cell_type: str, where: str = "cell") -> str:
    """``source`` with every solution region replaced by the student's placeholder.

    Code cells get :data:`CODE_PLACEHOLDER`, indented like the first non-blank line inside the
    region (the marker's indentation if the region is empty); other cells get
    :data:`TEXT_PLACEHOLDER` indented like the opening marker.
    """
    lines = source.split("\n")
    regions = find_regions(source, where)
    kept: list[str] = []
    start = 0
    for region in regions:
        kept.extend(lines[start : region.begin])
        body = [line for line in lines[region.begin + 1 : region.end] if line.strip()]
        if cell_type == "code":
            indent = _indent(body[0] if body else lines[region.begin])
            kept.append(indent + CODE_PLACEHOLDER)
        else:
            kept.append(_indent(lines[region.begin]) + TEXT_PLACEHOLDER)
        start = region.end + 1
    kept.extend(lines[start:])
    return "\n".join(kept)
