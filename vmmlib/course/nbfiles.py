"""Reading and writing course notebooks (solutions, exercises) with nbformat, reproducibly.

nbformat is imported inside the functions: importing it costs over a second (see
shared/reference/jupyter-recipes.md) and ``import vmmlib.course`` must stay cheap.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .conventions import NotebookConventionError, read_json, require_cell_ids

if TYPE_CHECKING:
    from nbformat import NotebookNode


def skip_iri_grammar() -> None:
    """Make this process skip jsonschema's optional IRI checker (``rfc3987_syntax``).

    jsonschema imports it, if installed, to check the ``iri`` string format; the import builds
    a grammar and takes 1.5-3 s, and the nbformat schema never uses that format. Only the
    command-line entry points call this (they own their process); library code does not.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def read_course_notebook(path: Path) -> NotebookNode:
    """Read a solution or exercise notebook strictly: nbformat 4.5 ids required, schema valid."""
    import nbformat

    path = Path(path)
    require_cell_ids(read_json(path), path.name)
    notebook = nbformat.read(path, as_version=4)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        raise NotebookConventionError(
            f"{path.name}: not a valid notebook: {error.message}"
        ) from None
    return notebook


def notebook_bytes(notebook: NotebookNode) -> bytes:
    """The file content nbformat writes for ``notebook`` (sorted keys, so reproducible)."""
    import nbformat

    text = nbformat.writes(notebook, version=4)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so no reader sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
