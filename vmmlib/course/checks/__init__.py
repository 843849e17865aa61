"""Check functions behind the exercise notebooks' check cells.

A check runs the student's function on a fixed list of cases, compares each answer with the
course's reference, prints one deterministic verdict line and raises ``AssertionError`` with
a hint (chosen from what the first wrong case reveals) when any case is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple


class Case(NamedTuple):
    """One input to try: ``args`` for the student's function and the ``expected`` answer.

    ``hint`` is what a wrong answer on this case most likely means.
    """

    label: str
    args: tuple
    expected: Any
    hint: str


def run_cases(name: str, fn: Callable[..., Any], cases: Sequence[Case]) -> str:
    """Try every case; print and return the verdict, or raise with a hint on the first miss."""
    wrong: list[tuple[Case, Any]] = []
    for case in cases:
        got = fn(*case.args)
        if got != case.expected:
            wrong.append((case, got))
    verdict = f"{name}: {len(cases) - len(wrong)}/{len(cases)} cases correct"
    print(verdict)
    if wrong:
        case, got = wrong[0]
        raise AssertionError(
            f"{verdict}. First wrong case: {case.label}: expected {case.expected!r}, "
            f"got {got!r}. Hint: {case.hint}"
        )
    return verdict
