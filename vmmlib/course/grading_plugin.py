"""The pytest plugin of a grading run: nbval, with sandboxed kernels and recorded verdicts.

Loaded by :mod:`vmmlib.course.nbval_runner` into one pytest process that grades many graded
notebooks, one after the other, each in a fresh sandboxed kernel. nbval still does the work,
cell by cell: :class:`GradedNotebook` and :class:`GradedCell` are nbval's own file and cell
items with four changes:

* the kernel is a :class:`~vmmlib.course.kernel.SandboxedKernel`;
* a check cell's outputs are compared after dropping everything but the check's emission (a
  ``display_data`` whose metadata names the check): a student's debug print, a warning or a
  background thread's output in that cell is not the check's answer and never costs points;
* only the course's metadata decides what nbval compares or skips; the ``# NBVAL_...``
  comments nbval would read from a cell's source (which the student wrote) are ignored;
* each question is graded in isolation: after a cell that crashes the kernel or times out,
  the next cell gets a fresh kernel in which the code cells before it have run again, except
  the checks and every cell that crashed or timed out (:meth:`GradedNotebook.revive`).

Each cell's outcome is written, as it happens, to the notebook's results file (JSON): status
``passed``, ``differ`` (outputs differ), ``error`` (an exception), ``timeout``, ``crash``
(the kernel died), ``refused`` (the kernel sent a message over the grader's limit, so the
cell's output is incomplete; like a crash, the next cell gets a fresh kernel), ``dead`` (no
kernel could be started) or ``skipped``.
"""

from __future__ import annotations

import json
import os
import resource
from collections import defaultdict
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError, find_metadata_tags

from .checks import EMISSION_METADATA
from .kernel import KernelDied, SandboxedKernel
from .sandbox import Limits

PLAN_OPTION = "--vmmlib-plan"
#: How long nbval waits for a cell's last outputs once the kernel has replied (nbval: 5 s).
OUTPUT_TIMEOUT = 3.0
FATAL = ("timeout", "crash", "dead", "refused")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(PLAN_OPTION, help="the grading plan (JSON) of this run")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption(PLAN_OPTION)
    if path:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
        config._vmmlib_plan = plan  # type: ignore[attr-defined]
        config._vmmlib_jobs = {  # type: ignore[attr-defined]
            str(Path(job["notebook"]).resolve()): job for job in plan["notebooks"]}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    jobs = getattr(parent.config, "_vmmlib_jobs", {})
    job = jobs.get(str(Path(file_path).resolve()))
    if job is None:
        return None
    return GradedNotebook.from_parent(parent, path=file_path, job=job)


def pytest_unconfigure(config: pytest.Config) -> None:
    plan = getattr(config, "_vmmlib_plan", None)
    if plan and plan.get("usage"):
        usage = {"grader_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        _write_json(Path(plan["usage"]), usage)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, path)


def is_emission(output: Any, label: object) -> bool:
    """Is ``output`` the emission of check ``label`` (see vmmlib.course.checks.runner)?"""
    metadata = output.get("metadata") if output.get("output_type") == "display_data" else None
    ours = metadata.get(EMISSION_METADATA) if isinstance(metadata, dict) else None
    return isinstance(ours, dict) and ours.get("check") == label and isinstance(
        output.get("data"), dict)


class GradedNotebook(IPyNbFile):
    """nbval's notebook collector, with a sandboxed kernel and a results file."""

    def __init__(self, *args: Any, job: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compare_outputs = False  # only cells tagged nbval-check-output are compared
        self.job = job
        self.results: dict[str, Any] = {"cells": {}, "problem": "", "peak_kib": 0}
        self.kernel: SandboxedKernel | None = None
        self.code_cells: list[GradedCell] = []
        self.failed: set[int] = set()  # cells that crashed the kernel or timed out
        self.needs_fresh_kernel = False

    def setup(self) -> None:
        self.start_kernel()

    def start_kernel(self) -> None:
        plan = self.config._vmmlib_plan  # type: ignore[attr-defined]
        try:
            self.kernel = SandboxedKernel(
                Path(plan["scratch"]), Path(self.job["package"]), Limits(**plan["limits"]),
                sandbox=plan["sandbox"],
                startup_timeout=self.config.option.nbval_kernel_startup_timeout)
        except Exception as error:  # recorded for every cell; grading goes on
            self.kernel = None
            self.results["problem"] = str(error)
        self.timed_out = False
        self.save()

    def stop_kernel(self) -> None:
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            try:
                if kernel.is_alive():
                    kernel.stop()
            finally:
                self.results["peak_kib"] = max(self.results["peak_kib"], kernel.peak_kib)
                kernel.cleanup()

    def revive(self, before: int) -> None:
        """A fresh kernel in which the code cells before cell ``before`` have run again,
        except the checks, the skipped cells and the cells that crashed or timed out (a
        cell failing again now joins those, and the replay starts over)."""
        while True:
            self.stop_kernel()
            self.start_kernel()
            if self.kernel is None:
                return
            for item in self.code_cells[:before]:
                if (item.cell_num in self.failed or item.options["skip"]
                        or "check" in item.cell.metadata.get("tags", [])):
                    continue
                if not self._replay(item):
                    self.failed.add(item.cell_num)
                    break
            else:
                return

    def _replay(self, item: GradedCell) -> bool:
        """Run a cell again, its outputs unread; False if it crashed or timed out."""
        kernel = self.kernel
        try:
            msg_id = kernel.execute_cell_input(item.cell.source, allow_stdin=False)
            kernel.await_reply(msg_id, timeout=self.config.option.nbval_cell_timeout)
            kernel.await_idle(msg_id, OUTPUT_TIMEOUT)
        except (KernelDied, Empty):
            return False
        return True

    def collect(self):  # noqa: ANN201 (pytest's generator of items)
        self.nb = nbformat.read(str(self.fspath), as_version=4)
        number = 0
        for cell in self.nb.cells:
            if cell.cell_type != "code":
                continue
            options = defaultdict(bool, find_metadata_tags(cell.metadata))
            options.setdefault("check", False)
            item = GradedCell.from_parent(self, name=f"Cell {number}", cell_num=number,
                                          cell=cell, options=options)
            self.code_cells.append(item)
            yield item
            number += 1

    def record(self, number: int, outcome: dict[str, Any]) -> None:
        self.results["cells"][str(number)] = outcome
        self.save()

    def save(self) -> None:
        _write_json(Path(self.job["results"]), self.results)

    def teardown(self) -> None:
        self.stop_kernel()
        self.save()


class GradedCell(IPyNbCell):
    """nbval's cell item; records its outcome and compares a check's emission only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_timeout = OUTPUT_TIMEOUT
        self.emissions: list[Any] = []

    def compare_outputs(self, test: list, ref: list, skip_compare: Any = None) -> bool:
        label = self.cell.metadata.get("check_id")
        kept = [output for output in test if is_emission(output, label)]
        self.emissions = [output.get("data", {}).get("text/plain") for output in kept]
        return super().compare_outputs(kept, ref, skip_compare)

    def runtest(self) -> None:
        parent: GradedNotebook = self.parent  # type: ignore[assignment]
        if self.options["skip"]:
            parent.record(self.cell_num, {"status": "skipped"})
            pytest.skip()
        if parent.needs_fresh_kernel:
            parent.needs_fresh_kernel = False
            parent.revive(self.cell_num)
        kernel = parent.kernel
        if kernel is None:
            parent.record(self.cell_num, {"status": "dead", "detail": parent.results["problem"]})
            raise RuntimeError(parent.results["problem"])
        outcome: dict[str, Any] = {"status": "error", "detail": "the grader failed on this cell"}
        try:
            super().runtest()
            outcome = {"status": "passed"}
        except KernelDied as died:  # or killed, when it would not answer a timeout's interrupt
            outcome = {"status": "timeout"} if kernel.hung else {"status": "crash",
                                                                 "detail": died.how}
            raise
        except NbCellError as error:
            if parent.timed_out:
                outcome = {"status": "timeout"}
            elif "outputs differ" in str(error):
                outcome = {"status": "differ"}
            else:
                outcome = {"status": "error"}
            raise
        except RuntimeError as error:  # nbval: "Kernel dead on test start", idle timeouts
            outcome = {"status": "crash" if not kernel.is_alive() else "error",
                       "detail": str(error)[:500]}
            raise
        finally:
            if kernel.cell.error and "detail" not in outcome:
                outcome["detail"] = kernel.cell.error
            outcome["cut"] = kernel.cell.cut
            if kernel.cell.refused:  # whatever else arrived, the cell's output is incomplete
                outcome["status"] = "refused"
            outcome["emissions"] = [text for text in self.emissions if isinstance(text, str)]
            if outcome["status"] in FATAL:
                parent.failed.add(self.cell_num)
                parent.needs_fresh_kernel = True
            parent.record(self.cell_num, outcome)
