"""Verdicts: compare a student's results with the reference's, and say which rule broke.

Used on both sides: by the grader (outside the student's kernel, on the results it parsed
from the check cell's output) and by a self-check in the student's own kernel. It works on
plain data only (:mod:`vmmlib.course.checks.plain`), never on the student's objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import Case, Question
from .plain import NOT_PLAIN, RAISED, TOO_BIG, VALUE, Result, as_result

WITHHELD_PHRASE = "is not available while grading"
WITHHELD_HINT = ("vmmlib's own implementation of this rule is withheld while grading, so that "
                 "the check runs your code: write the function without it")
BLANK_HINT = "replace the line `raise NotImplementedError(...)` with your answer"
PLAIN_HINT = ("return plain Python data as the question asks (True/False, int, str, list, dict), "
              "not an object of another type")


@dataclass(frozen=True)
class Verdict:
    """Whether every case was right; ``lines`` is what the student reads (verdict first)."""

    passed: bool
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def reference_results(question: Question, cases: Sequence[Case]) -> list[Result]:
    """The reference implementation's answers (run on the trusted side, or in a self-check)."""
    return [as_result(question.reference(*question.arguments(case))) for case in cases]


def strictly_equal(a: Any, b: Any) -> bool:
    """Equal as plain data, types included (``True`` differs from ``1``)."""
    return as_result(a) == as_result(b)


def show(result: Result) -> str:
    """A result as the student reads it."""
    if result.kind == VALUE:
        return repr(result.value())
    what = json.loads(result.payload)
    if result.kind == RAISED:
        return f"an exception, {what}"
    if result.kind == NOT_PLAIN:
        return f"an object of type {what}, not plain data"
    return f"an answer too big to compare ({what})"


def _hint(question: Question, case: Case, expected: Result, got: Result) -> str:
    if got.kind == RAISED:
        message = json.loads(got.payload)
        if WITHHELD_PHRASE in message:
            return WITHHELD_HINT
        if message.startswith("NotImplementedError"):
            return BLANK_HINT
        return "your function raised an exception on this case. " + case.rule
    if got.kind == NOT_PLAIN:
        return PLAIN_HINT
    if got.kind == TOO_BIG or expected.kind != VALUE:
        return case.rule
    want, have = expected.value(), got.value()
    if question.hint is not None:
        specific = question.hint(case, want, have)
        if specific:
            return specific
    if want == have:  # equal in Python, not as plain data: a bool answered with an int...
        return (f"right value, wrong type: return {type(want).__name__} {want!r}, "
                f"not {type(have).__name__} {have!r}")
    return case.rule


def judge(question: Question, cases: Sequence[Case], expected: Sequence[Result],
          got: Sequence[Result]) -> Verdict:
    """The verdict on ``got`` (the student's results, one per case)."""
    name = f"{question.label} {question.function}"
    if len(got) != len(cases) or len(expected) != len(cases):
        return Verdict(False, (f"{name}: the check reported {len(got)} answers for "
                               f"{len(cases)} cases",))
    wrong = [n for n in range(len(cases)) if got[n] != expected[n]]
    head = f"{name}: {len(cases) - len(wrong)}/{len(cases)} cases correct"
    if not wrong:
        return Verdict(True, (head,))
    first = wrong[0]
    case, want, have = cases[first], expected[first], got[first]
    return Verdict(False, (
        head,
        f"First wrong case: {case.label}: expected {show(want)}, got {show(have)}.",
        f"Hint: {_hint(question, case, want, have)}",
    ))
