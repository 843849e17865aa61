"""What grading writes: the grade sheet, one feedback page per submission, a class summary.

* ``grades.csv``: one row per (student, notebook), sorted; columns ``student``, ``notebook``,
  one column per check label (the points awarded; a column holds the check of that label in
  the row's notebook, empty if that notebook has none), ``total``, ``max``.
* ``feedback/<student>/<notebook>.md``: the score, each check with its points and, when it
  failed, its verdict (the first wrong case and a hint), crash or timeout, then notes on how
  the notebook was read (deleted answer cells, added cells, copies, crashes...).
* ``summary.csv`` and ``summary.md``: per check, how many of the submitted notebooks passed it.

Everything is written in a fixed order with no dates, so grading twice gives the same files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from .nbfiles import write_atomically

if TYPE_CHECKING:
    from .grading import ClassGrades, Exercise, SubmissionGrade


def _csv_bytes(rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def grade_rows(result: ClassGrades) -> list[list[object]]:
    """The rows of grades.csv, header first."""
    labels: list[str] = []
    for exercise in result.exercises:
        labels += [check.label for check in exercise.checks if check.label not in labels]
    rows: list[list[object]] = [["student", "notebook", *labels, "total", "max"]]
    for grade in result.grades:
        awarded = {r.check.label: r.awarded for r in grade.results}
        cells = [awarded.get(label, "") for label in labels]
        rows.append([grade.student, grade.notebook, *cells, grade.total, grade.max_points])
    return rows


def feedback_markdown(grade: SubmissionGrade) -> str:
    """The feedback page for one submission (for a notebook not handed in: only that)."""
    lines = [f"# {grade.notebook}: feedback for {grade.student}", ""]
    if not grade.submitted:
        lines += [f"Score: **0 / {grade.max_points}**: not submitted."]
        lines += ["", "## Notes", ""] + [f"- {note}" for note in grade.notes]
        return "\n".join(lines) + "\n"
    lines += [f"Score: **{grade.total} / {grade.max_points}**", "",
              "| check | points | result |", "|---|---|---|"]
    for result in grade.results:
        verdict = "pass" if result.passed else "FAIL"
        lines.append(f"| {result.check.label} | {result.awarded} / {result.check.points} "
                     f"| {verdict} |")
    for result in grade.results:
        if not result.passed:
            lines += ["", f"## {result.check.label}: failed", "", "```",
                      result.reason.replace("```", "'''"), "```"]
    if grade.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in grade.notes]
    return "\n".join(lines) + "\n"


def pass_rates(result: ClassGrades, exercise: Exercise) -> list[tuple[str, int, int, int]]:
    """Per check of ``exercise``: (label, points, submissions graded, submissions passing)."""
    graded = [g for g in result.grades if g.notebook == exercise.name and g.submitted]
    rates = []
    for check in exercise.checks:
        passed = sum(1 for g in graded for r in g.results if r.check == check and r.passed)
        rates.append((check.label, check.points, len(graded), passed))
    return rates


def summary_rows(result: ClassGrades) -> list[list[object]]:
    """The rows of summary.csv, header first."""
    rows: list[list[object]] = [["notebook", "check", "points", "submitted", "passed",
                                 "pass_rate"]]
    for exercise in result.exercises:
        for label, points, submitted, passed in pass_rates(result, exercise):
            rate = f"{passed / submitted:.2f}" if submitted else ""
            rows.append([exercise.name, label, points, submitted, passed, rate])
    return rows


def summary_markdown(result: ClassGrades) -> str:
    """A page for the instructor: per notebook, the mean score and each check's pass rate."""
    students = sorted({grade.student for grade in result.grades})
    lines = ["# Grading summary", "", f"{len(students)} students."]
    for exercise in result.exercises:
        grades = [g for g in result.grades if g.notebook == exercise.name]
        submitted = [g for g in grades if g.submitted]
        mean = sum(g.total for g in submitted) / len(submitted) if submitted else 0.0
        lines += ["", f"## {exercise.name}", "",
                  f"{len(submitted)} submitted, {len(grades) - len(submitted)} missing; "
                  f"mean score of those submitted {mean:.1f} / {exercise.max_points}.", "",
                  "| check | points | passed | pass rate |", "|---|---|---|---|"]
        for label, points, count, passed in pass_rates(result, exercise):
            rate = f"{100 * passed / count:.0f} %" if count else "-"
            lines.append(f"| {label} | {points} | {passed} / {count} | {rate} |")
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_reports(result: ClassGrades, out_dir: Path) -> None:
    """Write grades.csv, the feedback pages, summary.csv and summary.md into ``out_dir``."""
    out_dir = Path(out_dir)
    write_atomically(out_dir / "grades.csv", _csv_bytes(grade_rows(result)))
    for grade in result.grades:
        page = out_dir / "feedback" / grade.student / (Path(grade.notebook).stem + ".md")
        write_atomically(page, feedback_markdown(grade).encode("utf-8"))
    write_atomically(out_dir / "summary.csv", _csv_bytes(summary_rows(result)))
    write_atomically(out_dir / "summary.md", summary_markdown(result).encode("utf-8"))
