"""The checks behind the exercise notebooks' check cells: one framework for every chapter.

A chapter's checks module (``intercepts`` for chapter 01) declares each question in one place::

    Q1 = Question(
        label="q1",                  # the check cell's ``check_id``
        function="vmx_exits",        # the name the student writes
        cases=vmx_exit_cases,        # () -> [Case]: plain-data inputs, each with the rule it tests
        build=bitmap_arguments,      # Case.inputs -> the function's arguments (fresh objects)
        reference=reference_exits,   # those arguments -> the right answer (never in the graded
                                     #   kernel)
        withholds=(VmxIoBitmaps.exits, SvmIopm.exits),  # core functions hidden while grading
        hint=None,                   # optional (case, expected, got) -> a hint naming the rule
    )
    CHAPTER = Chapter("vmmlib.course.checks.intercepts", (Q1, Q2, Q3))
    check_vmx_exits = Q1.check       # what the check cell calls: ``checks.check_vmx_exits(...)``

and ``tests/mutants/<module>.py`` lists the question's plausible wrong answers and its
right-but-different ones; ``tests/test_checks_mutants.py`` proves the check on all of them, for
every chapter. The exercise notebook names its checks module in its metadata
(``{"vmmlib": {"checks": "vmmlib.course.checks.intercepts"}}``).

A check cell runs in one of two modes:

* **self-check** (a student running the cell, or ``pytest --nbval-lax`` on the exercise): the
  verdict is computed in the kernel, printed in the cell's first lines with a hint, and a wrong
  answer raises :class:`~vmmlib.course.checks.selfcheck.CheckFailed`, whose traceback shows the
  student's own frames only. Nothing stops a student from cheating here, and nothing needs to.
* **grading** (the variable ``VMMLIB_GRADING=1``, set only in the grader's sandboxed kernel):
  the check calls the student's function on each case's inputs and shows the answers as plain
  data (:mod:`vmmlib.course.checks.plain`). It knows no expected answer: the grader computes
  those outside the kernel and nbval compares (see :mod:`vmmlib.course.grading`).

Importing this package is cheap (stdlib only); a chapter module imports the core.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

GRADING_VARIABLE = "VMMLIB_GRADING"
#: Where the grader's comparison finds a check's emission: display metadata ``{"vmmlib":
#: {"check": label}}`` on a ``display_data`` output (stray output of the cell is ignored).
EMISSION_METADATA = "vmmlib"


class Case(NamedTuple):
    """One input to try. ``inputs`` is plain data (shown to the student when the case fails);
    ``label`` says what the case is; ``rule`` is the hint for a wrong answer on it: the rule of
    the exercise that a wrong answer here most likely breaks."""

    label: str
    inputs: tuple
    rule: str = ""


def _same(*args: Any) -> tuple:
    return args


@dataclass(frozen=True)
class Question:
    """One exercise question and everything its check needs (see the module doc)."""

    label: str
    function: str
    cases: Callable[[], Sequence[Case]]
    reference: Callable[..., Any]
    build: Callable[..., tuple] = _same
    withholds: tuple[Callable[..., Any], ...] = ()
    hint: Callable[[Case, Any, Any], str | None] | None = None

    def arguments(self, case: Case) -> tuple:
        """Fresh arguments for the student's function (or the reference) on ``case``."""
        return self.build(*case.inputs)

    def check(self, fn: Callable[..., Any]) -> None:
        """What the check cell calls: grade-mode emission, or a self-check verdict."""
        if os.environ.get(GRADING_VARIABLE) == "1":
            from .runner import emit

            emit(self, fn)
        else:
            from .selfcheck import self_check

            self_check(self, fn)


@dataclass(frozen=True)
class Chapter:
    """A chapter's questions; ``module`` is the dotted name of the checks module."""

    module: str
    questions: tuple[Question, ...]

    def question(self, label: str) -> Question:
        for question in self.questions:
            if question.label == label:
                return question
        raise KeyError(f"{self.module} has no question {label!r}")


def load_chapter(module: str) -> Chapter:
    """The chapter declared by checks module ``module`` (its ``CHAPTER``)."""
    import importlib

    if not module.startswith(__name__ + "."):
        raise ValueError(f"{module!r} is not a module of {__name__}")
    chapter = getattr(importlib.import_module(module), "CHAPTER", None)
    if not isinstance(chapter, Chapter):
        raise ValueError(f"{module} declares no CHAPTER")
    return chapter
