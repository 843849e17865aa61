"""Exercises and grading for the course notebooks (nbformat, nbclient, nbval on top of vmmlib).

* :mod:`vmmlib.course.conventions`: how a solution notebook marks answers and checks;
* :mod:`vmmlib.course.exercises`: ``solutions/NN-slug-exercises.ipynb`` ->
  ``exercises/NN-slug-exercises.ipynb``;
* :mod:`vmmlib.course.checks`: the checks behind the check cells, one module per chapter;
* :mod:`vmmlib.course.grading`: grade a folder of submissions with nbval, in parallel, each
  kernel in a bubblewrap sandbox (:mod:`vmmlib.course.sandbox`), verdicts computed where the
  students' code cannot reach them (the module's docstring says how);
* ``python -m vmmlib.course``: all of it, from the command line.

Importing this package is cheap: nbformat and nbval are imported only by the functions that
use them. The names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "make_exercise": "exercises",
    "exercise_bytes": "exercises",
    "sync_exercises": "exercises",
    "merge_submission": "merge",
    "run_batch": "nbval_runner",
    "grade": "grading",
    "load_exercise": "grading",
    "preflight": "sandbox",
    "NotebookConventionError": "conventions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
