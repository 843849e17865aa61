"""Run a student's function on a question's cases, in the student's kernel.

Whatever the function prints while it runs (``print``, ``sys.stderr``, warnings, writes to
file descriptors 1 and 2 from C code or subprocesses) is captured, so a debug line never
changes what the check shows; a self-check shows the first lines of it after the verdict.
An exception from the student's function becomes that case's result; only
``KeyboardInterrupt`` (how a timeout stops the cell) passes through.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import EMISSION_METADATA, Question
from .plain import Result, as_result, emission, raised

KEEP_OUTPUT = 8000  # characters of captured output kept for a self-check to show


class _Capped(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.kept: list[str] = []
        self.room = limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if isinstance(text, str) and self.room > 0:
            self.kept.append(text[: self.room])
            self.room -= len(self.kept[-1])
        return len(text) if isinstance(text, str) else 0


@dataclass
class Captured:
    """What the student's code wrote while the check ran."""

    text: str = ""
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Capture sys.stdout, sys.stderr, warnings and file descriptors 1 and 2."""
    captured = Captured()
    stream = _Capped(KEEP_OUTPUT)
    saved_streams = sys.stdout, sys.stderr
    saved_fds: list[tuple[int, int]] = []
    spool = tempfile.TemporaryFile()
    for fd in (1, 2):
        try:
            saved_fds.append((fd, os.dup(fd)))
            os.dup2(spool.fileno(), fd)
        except OSError:
            continue
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sys.stdout = sys.stderr = stream
            try:
                yield captured
            finally:
                sys.stdout, sys.stderr = saved_streams
        captured.warnings = [f"{w.category.__name__}: {w.message}" for w in caught[:20]]
    finally:
        for fd, saved in saved_fds:
            os.dup2(saved, fd)
            os.close(saved)
        spool.seek(0)
        written = spool.read(KEEP_OUTPUT).decode("utf-8", "replace")
        spool.close()
        captured.text = ("".join(stream.kept) + written)[:KEEP_OUTPUT]


def run(question: Question, fn: Callable[..., Any]
        ) -> tuple[list[Result], list[BaseException | None], Captured]:
    """The results of ``fn`` on every case, the exception each case raised (or None), and
    what ``fn`` printed."""
    results: list[Result] = []
    errors: list[BaseException | None] = []
    with captured_output() as captured:
        for case in question.cases():
            try:
                answer = fn(*question.arguments(case))
            except (Exception, SystemExit) as error:
                results.append(raised(error))
                errors.append(error)
                continue
            results.append(as_result(answer))
            errors.append(None)
    return results, errors, captured


def emit(question: Question, fn: Callable[..., Any]) -> None:
    """Grading mode: show the results as one display output that the grader compares."""
    results, _, _ = run(question, fn)
    text = emission(question.label, question.function, results)
    try:
        from IPython.display import publish_display_data
    except ImportError:  # not in a kernel: print what a kernel would show
        print(text, end="")
        return
    publish_display_data({"text/plain": text},
                         metadata={EMISSION_METADATA: {"check": question.label}})
