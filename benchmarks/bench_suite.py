"""The whole test suite's wall time, and what each chapter costs in it (budget: <= 60 s on 2
cores for the whole course, DESIGN.md "Tests and budgets").

Runs exactly the pytest command of ``make test`` (after ruff) with a junit report, then adds
the test items' durations by where they belong: a notebook or exercise of chapter NN (its file
name starts with NN, or the test module names it, e.g. ``test_checks_intercepts``), the browser
tests, or the shared core. With two xdist workers, a group's share of the wall time is about
half its summed durations; ``suite_chapter_NN`` prints that estimate, so each chapter issue can
show what it added.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
#: test modules that belong to a chapter without a number in their name
CHAPTER_OF_MODULE = {
    "test_checks_intercepts": "01",
    "test_chapter_exercises": "01",
    # chapter 02: its checks, and the core it added (ioreq, qemu-dm, IDE, disks, VGA, PIC)
    **dict.fromkeys(("test_checks_device_model", "test_device_model", "test_ioreq", "test_ide",
                     "test_ide_drivers", "test_disk", "test_vga", "test_screen", "test_vpic",
                     "test_swimlane", "test_viz_ch02"), "02"),
    # chapter 03: its checks, and the core it added (rings, blkif, grants, events, the drivers)
    **dict.fromkeys(("test_checks_split_drivers", "test_split_drivers", "test_blkback_hostile",
                     "test_fuzz_blkback", "test_fuzz_ch03", "test_ring", "test_blkif",
                     "test_grant_table", "test_event_channel_op", "test_evtchn",
                     "test_viz_ch03", "test_ring_demo", "test_viz_ring", "test_split_attacks",
                     "test_viz_split"), "03"),
}


def pytest_command(junit: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-n", str(WORKERS), "--dist", "loadfile",
        "--no-loadscope-reorder", "--nbval",
        "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval-sanitize.cfg",
        "--nbval-cell-timeout", "120", "--ignore", "tests/fixtures", "-q",
        f"--junitxml={junit}", "tests", "notebooks", "solutions",
    ]


def group_of(classname: str, file: str) -> str:
    name = Path(file or classname.replace(".", "/")).name
    match = re.match(r"(\d\d)-", name)
    if match:
        return f"chapter_{match.group(1)}"
    module = Path(file).stem if file else classname.split(".")[-1]
    for key, chapter in CHAPTER_OF_MODULE.items():
        if module == key:
            return f"chapter_{chapter}"
    match = re.search(r"_ch(\d\d)", module)
    if match:
        return f"chapter_{match.group(1)}"
    return "browser" if "browser" in module else "core"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        # as make test's TESTENV: bytecode caches on
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", PYTHONDONTWRITEBYTECODE="")
        t0 = time.perf_counter()
        done = subprocess.run(pytest_command(junit), cwd=ROOT, env=env, capture_output=True,
                              text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stdout[-3000:])
            raise SystemExit(f"the suite failed (exit {done.returncode})")
        groups: dict[str, float] = defaultdict(float)
        count = 0
        for case in ElementTree.parse(junit).iter("testcase"):
            groups[group_of(case.get("classname", ""), case.get("file", ""))] += float(
                case.get("time", 0))
            count += 1
    print(f"suite_seconds: {wall:.1f} s ({count} tests)")
    for name in sorted(groups):
        print(f"suite_{name}: {groups[name] / WORKERS:.1f} s")


if __name__ == "__main__":
    main()
