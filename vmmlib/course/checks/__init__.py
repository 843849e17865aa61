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

    ``hint`` is what a wrong answer on this case most likely means: a text, or a function of
    the wrong answer that returns one (to name the field that is wrong).
    """

    label: str
    args: tuple
    expected: Any
    hint: str | Callable[[Any], str]


def run_cases(name: str, fn: Callable[..., Any], cases: Sequence[Case]) -> None:
    """Try every case and print the verdict; raise with a hint on the first miss.

    Nothing is returned, so a check cell shows the verdict once (as printed text)."""
    wrong: list[tuple[Case, Any]] = []
    for case in cases:
        got = fn(*case.args)
        if got != case.expected:
            wrong.append((case, got))
    verdict = f"{name}: {len(cases) - len(wrong)}/{len(cases)} cases correct"
    print(verdict)
    if wrong:
        case, got = wrong[0]
        hint = case.hint(got) if callable(case.hint) else case.hint
        raise AssertionError(
            f"{verdict}. First wrong case: {case.label}: expected {case.expected!r}, "
            f"got {got!r}. Hint: {hint}"
        )
