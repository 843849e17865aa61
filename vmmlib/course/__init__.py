"""Exercises and grading for the course notebooks (nbformat, nbclient, nbval on top of vmmlib).

* :mod:`vmmlib.course.conventions`: how a solution notebook marks answers and checks;
* :mod:`vmmlib.course.exercises`: ``solutions/NN-slug.ipynb`` -> ``exercises/NN-slug.ipynb``;
* :mod:`vmmlib.course.grading`: grade a folder of submissions with nbval, in parallel;
* ``python -m vmmlib.course``: both, from the command line.

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
    "run_nbval": "nbval_runner",
    "grade": "grading",
    "grade_submission": "grading",
    "load_exercise": "grading",
    "NotebookConventionError": "conventions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
