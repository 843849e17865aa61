"""Grading in rounds, so that each question is graded in isolation.

Round 1 runs every submission's graded notebook. When a cell crashes the kernel or times out
(or the kernel is gone), the checks before it keep their verdicts, that cell's check (if it
is one) gets the crash or the timeout, and the checks after it are graded again in the next
round: the same notebook in a fresh kernel, with the checks already graded and the cell that
failed left out (tagged ``nbval-skip``). Each round runs its notebooks in ``jobs`` nbval
processes at once (:func:`vmmlib.course.nbval_runner.run_batch`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checks.judge import judge
from .checks.plain import EmissionError, parse_emission
from .grading import (
    CheckResult,
    Exercise,
    SubmissionGrade,
    graded_notebook,
    not_graded,
    read_submission,
    write_merged,
)
from .merge import merge_submission
from .nbval_runner import NotebookJob, run_batch
from .sandbox import Limits

if TYPE_CHECKING:
    from nbformat import NotebookNode

FATAL = ("timeout", "crash", "dead", "missing")


@dataclass
class _Submission:
    """One (student, exercise) pair being graded over the rounds."""

    student: str
    exercise: Exercise
    merged: NotebookNode
    notes: list[str]
    code_index: dict[str, int]  # check label -> its code cell number in the merged notebook
    code_cells: list[Any]
    final: dict[str, CheckResult] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)

    @property
    def pending(self) -> list[str]:
        return [label for label in self.code_index if label not in self.final]


def _start(student: str, exercise: Exercise, path: Path) -> _Submission | SubmissionGrade:
    if not path.is_file():
        return not_graded(student, exercise, f"No submission: expected {student}/"
                           f"{exercise.name}.", submitted=False)
    raw, problem = read_submission(path)
    if raw is None:
        return not_graded(student, exercise, problem, submitted=True)
    merged = merge_submission(exercise.notebook, raw, exercise.name)
    code = [cell for cell in merged.notebook.cells if cell.cell_type == "code"]
    ids = {cell.id: number for number, cell in enumerate(code)}
    index = {check.label: ids[check.cell_id] for check in exercise.checks}
    return _Submission(student, exercise, merged.notebook, merged.notes, index, code)


def _describe(sub: _Submission, number: int) -> str:
    labels = {n: label for label, n in sub.code_index.items()}
    if number in labels:
        return f"Check {labels[number]}"
    first = next((line for line in sub.code_cells[number].source.splitlines() if line.strip()),
                 "")
    return f"The cell starting {first[:60]!r}"


def _verdict(sub: _Submission, label: str, outcome: dict[str, Any], cell_timeout: float
             ) -> CheckResult:
    graded = sub.exercise.graded[label]
    status, detail = outcome.get("status"), outcome.get("detail", "")
    emissions = outcome.get("emissions", [])
    if status in ("passed", "differ") and len(emissions) == 1:
        question, cases = graded.question, list(graded.cases)
        try:
            got = parse_emission(emissions[0], question.label, question.function, len(cases))
        except EmissionError as error:
            return CheckResult(graded.spec, False, f"the check's output is not what the check "
                               f"prints ({error}): did your code change the check?")
        verdict = judge(question, cases, list(graded.expected), got)
        return CheckResult(graded.spec, verdict.passed and status == "passed", verdict.text)
    if status in ("passed", "differ"):
        return CheckResult(graded.spec, False, f"the check showed {len(emissions)} results "
                           "instead of one: did your code run or change the check?")
    reasons = {
        "error": f"the check could not run: {detail} (is the function defined, under this "
                 "name, in its answer cell?)",
        "timeout": f"timed out: the check ran longer than {cell_timeout:g} s (an endless loop, "
                   "or a very slow answer?)",
        "crash": f"the kernel {detail} while running this check",
        "dead": f"not run: {detail or 'the kernel had stopped'}",
        "missing": "not run: the grading run did not reach it",
    }
    return CheckResult(graded.spec, False, reasons.get(status, f"failed ({status})"))


def _fatal_note(sub: _Submission, number: int, outcome: dict[str, Any], cell_timeout: float,
                again: bool) -> str:
    what = _describe(sub, number)
    how = {"timeout": f"ran longer than {cell_timeout:g} s",
           "crash": f"made the kernel stop ({outcome.get('detail', '')})"}.get(
        outcome["status"], "did not run")
    rest = (" It was left out and the checks after it were graded again in a fresh kernel."
            if again else "")
    return f"{what} {how}.{rest}"


def _absorb(sub: _Submission, results: dict[str, Any], cell_timeout: float) -> bool:
    """Take one round's outcomes into ``sub``; True if it needs another round."""
    cells = results.get("cells", {})
    fatal: tuple[int, dict[str, Any]] | None = None
    ran_any = False
    for number in range(len(sub.code_cells)):
        if number in sub.skip:
            continue
        outcome = cells.get(str(number), {"status": "missing"})
        if outcome.get("cut"):
            note = f"{_describe(sub, number)} printed more than the output cap; the rest was cut."
            if note not in sub.notes:
                sub.notes.append(note)
        if outcome["status"] in FATAL:
            if outcome["status"] == "dead" and results.get("problem"):
                outcome = {**outcome, "detail": results["problem"]}
            fatal = (number, outcome)
            break
        ran_any = True
    for label in sub.pending:
        number = sub.code_index[label]
        if fatal is None or number < fatal[0]:
            sub.final[label] = _verdict(sub, label, cells.get(str(number), {}), cell_timeout)
        elif number == fatal[0]:
            sub.final[label] = _verdict(sub, label, fatal[1], cell_timeout)
    if fatal is None:
        return False
    stuck = not ran_any and fatal[1]["status"] in ("dead", "missing")
    if stuck or not sub.pending:
        for label in sub.pending:
            sub.final[label] = _verdict(sub, label, fatal[1], cell_timeout)
        if fatal[1]["status"] in ("timeout", "crash"):
            sub.notes.append(_fatal_note(sub, fatal[0], fatal[1], cell_timeout, again=False))
        return False
    sub.notes.append(_fatal_note(sub, fatal[0], fatal[1], cell_timeout, again=True))
    sub.skip |= {fatal[0]} | {sub.code_index[label] for label in sub.final}
    return True


def _run_round(subs: list[_Submission], folder: Path, packages: dict[str, Path], jobs: int,
               out_dir: Path, first: bool, **run: Any) -> tuple[list[dict[str, Any]], list[str],
                                                            int]:
    folder.mkdir(parents=True)
    work = []
    for n, sub in enumerate(subs):
        path = (out_dir / "merged" / sub.student / sub.exercise.name if first
                else folder / "notebooks" / sub.student / sub.exercise.name)
        write_merged(path, graded_notebook(sub.merged, sub.exercise, sub.skip))
        work.append(NotebookJob(path, packages[sub.exercise.name], folder / f"results-{n}.json",
                                len(sub.code_cells)))
    batches = [work[k::jobs] for k in range(min(jobs, len(work)))]
    with ThreadPoolExecutor(max_workers=len(batches) or 1) as pool:
        runs = list(pool.map(lambda k: run_batch(batches[k], folder / f"batch-{k}", **run),
                             range(len(batches))))
    notes = [run.problem for run in runs if run.problem]
    results = []
    for job in work:
        try:
            results.append(json.loads(job.results.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            results.append({"cells": {}, "problem": "the grading run ended before it"})
    return results, notes, max((run.grader_peak_kib for run in runs), default=0)


def grade_pairs(pairs: list[tuple[str, Exercise]], submissions_dir: Path, out_dir: Path,
                scratch: Path, packages: dict[str, Path], *, jobs: int, cell_timeout: float,
                limits: Limits, sandbox: bool
                ) -> tuple[list[SubmissionGrade], list[str], dict[str, int]]:
    """Grade every (student, exercise) pair; returns the grades, notes for the instructor
    and the peak memory of the run's processes."""
    started = [_start(student, exercise, submissions_dir / student / exercise.name)
               for student, exercise in pairs]
    subs = [sub for sub in started if isinstance(sub, _Submission)]
    notes: list[str] = []
    usage = {"grader_peak_kib": 0, "kernel_peak_kib": 0}
    todo = [sub for sub in subs if sub.pending]
    for number in range(max((len(sub.code_index) for sub in subs), default=0) + 1):
        if not todo:
            break
        results, problems, peak = _run_round(
            todo, scratch / f"round-{number}", packages, jobs, out_dir, number == 0,
            limits=limits, sandbox=sandbox, cell_timeout=cell_timeout)
        notes += problems
        usage["grader_peak_kib"] = max(usage["grader_peak_kib"], peak)
        again = []
        for sub, result in zip(todo, results, strict=True):
            usage["kernel_peak_kib"] = max(usage["kernel_peak_kib"],
                                           int(result.get("peak_kib") or 0))
            if _absorb(sub, result, cell_timeout):
                again.append(sub)
        todo = again
    grades = []
    for sub in started:
        if isinstance(sub, SubmissionGrade):
            grades.append(sub)
            continue
        results = [sub.final.get(check.label, CheckResult(check, False, "not graded"))
                   for check in sub.exercise.checks]
        grades.append(SubmissionGrade(sub.student, sub.exercise.name, results, sub.notes))
    return grades, notes, usage
