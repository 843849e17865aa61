"""The exit path gives exactly what it gave before it was rewritten for speed.

tests/workload.py runs a long seeded mix (trapped and direct port I/O of every size, REP
string I/O, RAM and MMIO through a guest page table, caught page faults, hypercalls from HVM
and PV guests, two vendors, two domains interleaved by the scheduler). Its trace, clock,
vCPU registers and device state were recorded from the code before the rewrite
(tests/data/exit_path_reference.json; the full traces are beside it, gzipped, for diagnosis).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import workload

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "exit_path_reference.json").read_text())


@pytest.fixture(scope="module")
def now():
    return json.loads(json.dumps(workload.fingerprint()))  # as stored: tuples become lists


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_trace_clock_and_state_match_the_reference(now, vendor):
    if now[vendor]["trace_sha256"] != REFERENCE[vendor]["trace_sha256"]:
        machine, _, scheduler, _ = workload.build(vendor, 2006, 6000)
        scheduler.run(max_steps=60000)
        ours = workload.trace_lines(machine)
        with gzip.open(DATA / f"exit_path_reference.{vendor}.txt.gz", "rt") as f:
            theirs = f.read().split("\n")
        first = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
        pytest.fail(f"event {first} differs:\n  now: {ours[first]}\n  was: {theirs[first]}")
    assert now[vendor]["state"] == REFERENCE[vendor]["state"]
