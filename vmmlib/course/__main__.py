"""The command line: generate exercises, grade submissions.

::

    python -m vmmlib.course exercises SOLUTIONS_DIR EXERCISES_DIR [--check]
    python -m vmmlib.course grade EXERCISES_DIR SUBMISSIONS_DIR OUT_DIR [--jobs N] [--timeout S]
                              [--memory MIB] [--cpu-time S] [--output-cap BYTES]
                              [--unsafe-no-sandbox]
    python -m vmmlib.course preflight   (can grading be sandboxed here? how to install bwrap)
    python -m vmmlib.course execute NOTEBOOK...
    python -m vmmlib.course slides OUT_DIR NOTEBOOK...
    python -m vmmlib.course execute NOTEBOOK... (store outputs: vmmlib.course.execute)

Exit status: 0 on success; 1 when ``exercises --check`` finds exercises that are stale, missing
or extra; 2 for a usage or course-notebook error (the message says what to fix).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from .sandbox import Limits


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vmmlib.course",
        description="Generate exercise notebooks from solutions, and grade submissions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    exercises = commands.add_parser(
        "exercises", help="generate exercises/ from solutions/ (solutions stripped)")
    exercises.add_argument("solutions_dir")
    exercises.add_argument("exercises_dir")
    exercises.add_argument("--check", action="store_true",
                           help="write nothing; exit 1 if exercises/ is not up to date")
    grade = commands.add_parser(
        "grade", help="grade SUBMISSIONS_DIR/<student>/<exercise>.ipynb into OUT_DIR")
    grade.add_argument("exercises_dir")
    grade.add_argument("submissions_dir")
    grade.add_argument("out_dir")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="submissions graded at once (default: number of CPUs)")
    grade.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="time one cell may run before it fails (default: 30)")
    limits = Limits()
    grade.add_argument("--memory", type=int, default=limits.memory >> 20, metavar="MIB",
                       help="address space of each grading kernel (default: %(default)s MiB)")
    grade.add_argument("--cpu-time", type=int, default=limits.cpu_seconds, metavar="SECONDS",
                       help="CPU time of each grading kernel (default: %(default)s s)")
    grade.add_argument("--output-cap", type=int, default=limits.output, metavar="BYTES",
                       help="output kept per cell, the rest cut (default: %(default)s)")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run students' code without the bubblewrap sandbox: only for work "
                            "you trust (it can read the solutions and change your files)")
    commands.add_parser("preflight", help="check that grading can run students' code in a "
                                          "bubblewrap sandbox here")
    execute = commands.add_parser(
        "execute", help="run notebooks top to bottom and store their outputs in place")
    execute.add_argument("notebooks", nargs="+")
    slides = commands.add_parser(
        "slides", help="build offline reveal.js slides of lecture notebooks into OUT_DIR")
    slides.add_argument("out_dir")
    slides.add_argument("notebooks", nargs="+")
    return parser


def _exercises(args: argparse.Namespace) -> int:
    from .exercises import sync_exercises

    result = sync_exercises(args.solutions_dir, args.exercises_dir, check=args.check)
    for kind in ("written", "stale", "missing", "extra"):
        for name in getattr(result, kind):
            print(f"{kind}: {os.path.join(args.exercises_dir, name)}")
    if result.extra:
        print("extra notebooks have no solution; delete them or add their solution",
              file=sys.stderr)
    if args.check and not result.up_to_date:
        print("exercises are out of date: run `python -m vmmlib.course exercises "
              f"{args.solutions_dir} {args.exercises_dir}`", file=sys.stderr)
        return 1
    print(f"{len(result.unchanged) + len(result.written)} exercise notebook(s) up to date")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .grading import DEFAULT_CELL_TIMEOUT, grade

    timeout = DEFAULT_CELL_TIMEOUT if args.timeout is None else args.timeout
    limits = Limits(memory=args.memory << 20, cpu_seconds=args.cpu_time, output=args.output_cap)
    if args.unsafe_no_sandbox:
        print("warning: grading WITHOUT a sandbox (--unsafe-no-sandbox): students' code runs "
              "with your rights", file=sys.stderr)
    result = grade(args.exercises_dir, args.submissions_dir, args.out_dir, jobs=args.jobs,
                   cell_timeout=timeout, limits=limits, sandbox=not args.unsafe_no_sandbox)
    for submission in result.grades:
        missing = "" if submission.submitted else "  (not submitted)"
        print(f"{submission.student}  {submission.notebook}  "
              f"{submission.total}/{submission.max_points}{missing}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {os.path.join(args.out_dir, 'grades.csv')}, feedback/, summary.csv, summary.md")
    return 0


def _preflight(args: argparse.Namespace) -> int:
    from .sandbox import INSTALL_HINT, preflight

    problem = preflight()
    if problem:
        print(INSTALL_HINT.format(problem=problem), file=sys.stderr)
        return 2
    print("ok: students' code will be graded in a bubblewrap sandbox")
    return 0


def _execute(args: argparse.Namespace) -> int:
    from .execute import execute_all

    execute_all([Path(notebook) for notebook in args.notebooks])
    return 0


def _slides(args: argparse.Namespace) -> int:
    from .slides import build_slides

    for path in build_slides([Path(nb) for nb in args.notebooks], Path(args.out_dir)):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from .nbfiles import skip_iri_grammar

    args = _parser().parse_args(argv)
    skip_iri_grammar()
    commands = {"exercises": _exercises, "grade": _grade, "preflight": _preflight,
                "execute": _execute, "slides": _slides}
    try:
        return commands[args.command](args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
