"""Self-check: a student runs a check cell and reads the verdict in its first lines.

The verdict and the hint are printed first; a wrong answer then raises :class:`CheckFailed`,
whose traceback (IPython renders it with ``_render_traceback_``) is one line, plus the
student's own frames when their function raised: never a frame of vmmlib's code.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import Question
from .judge import judge, reference_results
from .runner import run

_PACKAGE = str(Path(__file__).resolve().parents[2])  # the vmmlib package folder
SHOW_PRINTED_LINES = 15


def _where(filename: str) -> str:
    """``Cell In[3]`` for a notebook cell (as IPython names it), else the file name."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        name = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # not in IPython, or an IPython without the helper
        name = None
    return f"{name[0]} {name[1]}" if name else f"File {filename}"


def student_frames(error: BaseException) -> list[str]:
    """The traceback of ``error`` without vmmlib's frames, then its last line."""
    lines = []
    for frame in traceback.extract_tb(error.__traceback__):
        if str(Path(frame.filename).resolve()).startswith(_PACKAGE):
            continue
        lines.append(f"  {_where(frame.filename)}, line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return lines + [line.rstrip("\n") for line in traceback.format_exception_only(error)]


class CheckFailed(AssertionError):
    """A self-check found a wrong answer; the verdict and hint were printed above."""

    def __init__(self, verdict: str, error: BaseException | None = None) -> None:
        super().__init__(verdict)
        self.verdict = verdict
        self.error = error

    def _render_traceback_(self) -> list[str]:
        lines = [f"CheckFailed: {self.verdict} (first wrong case and hint above)"]
        if self.error is not None:
            lines += ["", "Your function raised this on the first wrong case:"]
            lines += student_frames(self.error)
        return lines


def self_check(question: Question, fn: Callable[..., Any]) -> None:
    """Print the verdict (and a hint); raise CheckFailed when an answer is wrong."""
    cases = list(question.cases())
    got, errors, captured = run(question, fn)
    expected = reference_results(question, cases)
    verdict = judge(question, cases, expected, got)
    print(verdict.text)
    printed = captured.text.splitlines()
    if printed:
        more = " (first lines)" if len(printed) > SHOW_PRINTED_LINES else ""
        print(f"\nYour function printed{more}:")
        print("\n".join("  " + line for line in printed[:SHOW_PRINTED_LINES]))
    if captured.warnings:
        print("\nWarnings while it ran: " + "; ".join(captured.warnings[:3]))
    if not verdict.passed:
        wrong = next((n for n in range(len(got)) if got[n] != expected[n]), None)
        raise CheckFailed(verdict.lines[0], errors[wrong] if wrong is not None else None)
