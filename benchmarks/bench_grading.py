"""Time to grade a class of 30 submissions of chapter 01 (DESIGN budget: 60 s on 2 cores).

Builds 30 submissions from the shipped exercise: a third blank, a third with the solutions'
answers, a third with one wrong answer; grades them with the real grader (nbval, one sandboxed
kernel per submission, one nbval process per CPU grading its share one after the other) and
checks every student's total before reporting. Also reports the peak memory of the grader's
nbval processes and of the kernels.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import time
from pathlib import Path

from vmmlib.course.grading import grade

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "01-intercepts-exercises.ipynb"
STUDENTS = 30
WRONG_Q2 = "def decode_qualification(q):\n    return {}\n"


def build(subs: Path) -> dict[str, int]:
    exercise = json.loads((ROOT / "exercises" / NOTEBOOK).read_text())
    solution = json.loads((ROOT / "solutions" / NOTEBOOK).read_text())
    marker = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
    answers = {
        c["id"]: marker.sub("", "".join(c["source"]))
        for c in solution["cells"]
        if "BEGIN SOLUTION" in "".join(c["source"])
    }
    expected = {}
    for i in range(STUDENTS):
        kind = i % 3
        chosen = {} if kind == 0 else dict(answers)
        if kind == 2:
            chosen["q2-answer"] = WRONG_Q2
        nb = json.loads(json.dumps(exercise))
        for cell in nb["cells"]:
            if cell["id"] in chosen:
                cell["source"] = chosen[cell["id"]]
        name = f"student{i:02d}"
        (subs / name).mkdir(parents=True)
        (subs / name / NOTEBOOK).write_text(json.dumps(nb))
        expected[name] = (0, 10, 7)[kind]
    return expected


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        expected = build(subs)
        t0 = time.perf_counter()
        result = grade(ROOT / "exercises", subs, out, jobs=os.cpu_count() or 1)
        elapsed = time.perf_counter() - t0
        with open(out / "grades.csv", newline="") as f:
            totals = {row["student"]: int(row["total"]) for row in csv.DictReader(f)
                      if row["notebook"] == NOTEBOOK}
        assert totals == expected, totals
    print(f"grade_{STUDENTS}_submissions: {elapsed:.1f} s")
    print(f"grader_peak_memory: {result.usage['grader_peak_kib'] / 1024:.0f} MiB")
    print(f"kernel_peak_memory: {result.usage['kernel_peak_kib'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
