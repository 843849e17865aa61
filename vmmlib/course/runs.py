"""Grade every (student, exercise) pair of a class: merge, run, read the verdicts.

Each submission becomes a graded notebook (:func:`vmmlib.course.grading.graded_notebook`,
written to ``OUT_DIR/merged/<student>/``). The notebooks are shared out among ``jobs`` nbval
processes that run at once (:func:`vmmlib.course.nbval_runner.run_batch`), each grading its
share one after the other, every notebook in a fresh sandboxed kernel; a crash or a timeout
costs its own cell only (:mod:`vmmlib.course.grading_plugin` gives the cells after it a fresh
kernel). Then each check's verdict and feedback are computed here, from the answers its cell
showed, against the reference's (:func:`vmmlib.course.checks.judge.judge`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from .sandbox import MAX_MESSAGE, Limits

if TYPE_CHECKING:
    from nbformat import NotebookNode

FATAL = ("timeout", "crash", "refused")


@dataclass
class _Submission:
    """One (student, exercise) pair being graded."""

    student: str
    exercise: Exercise
    merged: NotebookNode
    notes: list[str]
    code_index: dict[str, int]  # check label -> its code cell number in the merged notebook
    code_cells: list[Any]


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
        "refused": "the check's cell sent a message larger than the grader accepts",
        "dead": f"not run: {detail or 'the kernel had stopped'}",
        "missing": "not run: the grading run did not reach it",
    }
    return CheckResult(graded.spec, False, reasons.get(status, f"failed ({status})"))


def _fatal_note(sub: _Submission, number: int, outcome: dict[str, Any],
                cell_timeout: float) -> str:
    what = _describe(sub, number)
    how = {"timeout": f"ran longer than {cell_timeout:g} s",
           "refused": (f"sent output in a message larger than the grader accepts "
                       f"({MAX_MESSAGE >> 20} MiB); it was dropped and the cell failed"),
           }.get(outcome["status"], f"made the kernel stop ({outcome.get('detail', '')})")
    again = (" It was left out, and the cells after it ran again in a fresh kernel."
             if number + 1 < len(sub.code_cells) else "")
    return f"{what} {how}.{again}"


def _grade(sub: _Submission, results: dict[str, Any], cell_timeout: float) -> SubmissionGrade:
    """The grade of ``sub`` from its cells' outcomes."""
    cells = results.get("cells", {})
    for number in range(len(sub.code_cells)):
        outcome = cells.get(str(number))
        if outcome is None:
            continue
        if outcome.get("cut") and outcome["status"] != "refused":
            sub.notes.append(f"{_describe(sub, number)} printed more than the output cap; "
                             "the rest was cut.")
        if outcome["status"] in FATAL:
            sub.notes.append(_fatal_note(sub, number, outcome, cell_timeout))
    if results.get("problem"):
        sub.notes.append(f"The grading kernel could not be started: {results['problem']}")
    verdicts = {}
    for label, number in sub.code_index.items():
        outcome = cells.get(str(number), {"status": "missing"})
        if outcome["status"] == "dead" and results.get("problem"):
            outcome = {**outcome, "detail": "the grading kernel could not be started"}
        verdicts[label] = _verdict(sub, label, outcome, cell_timeout)
    results_in_order = [verdicts[check.label] for check in sub.exercise.checks]
    return SubmissionGrade(sub.student, sub.exercise.name, results_in_order, sub.notes)


def _run(subs: list[_Submission], folder: Path, packages: dict[str, Path], jobs: int,
         out_dir: Path, **run: Any) -> tuple[list[dict[str, Any]], list[str], int]:
    folder.mkdir(parents=True)
    work = []
    for n, sub in enumerate(subs):
        path = out_dir / "merged" / sub.student / sub.exercise.name
        write_merged(path, graded_notebook(sub.merged, sub.exercise, set()))
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
    results, notes, peak = _run(subs, scratch / "run", packages, jobs, out_dir, limits=limits,
                                sandbox=sandbox, cell_timeout=cell_timeout)
    usage = {"grader_peak_kib": peak, "kernel_peak_kib": max(
        (int(result.get("peak_kib") or 0) for result in results), default=0)}
    graded = {id(sub): _grade(sub, result, cell_timeout)
              for sub, result in zip(subs, results, strict=True)}
    grades = [sub if isinstance(sub, SubmissionGrade) else graded[id(sub)] for sub in started]
    return grades, notes, usage
