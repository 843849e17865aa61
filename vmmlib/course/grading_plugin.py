"""The pytest plugin of a grading run: nbval, with sandboxed kernels and recorded verdicts.

Loaded by :mod:`vmmlib.course.nbval_runner` into one pytest process that grades many merged
notebooks, one after the other, each in a fresh sandboxed kernel. nbval still does the work,
cell by cell: :class:`GradedNotebook` and :class:`GradedCell` are nbval's own file and cell
items with three changes:

* the kernel is a :class:`~vmmlib.course.kernel.SandboxedKernel`;
* a check cell's outputs are compared after dropping everything but the check's emission (a
  ``display_data`` whose metadata names the check): a student's debug print, a warning or a
  background thread's output in that cell is not the check's answer and never costs points;
* only the course's metadata decides what nbval compares or skips; the ``# NBVAL_...``
  comments nbval would read from a cell's source (which the student wrote) are ignored.

Each cell's outcome is written, as it happens, to the notebook's results file (JSON): status
``passed``, ``differ`` (outputs differ), ``error`` (an exception), ``timeout``, ``crash``
(the kernel died), ``dead`` (the kernel was gone before the cell) or ``skipped``.
"""

from __future__ import annotations

import json
import os
import resource
from collections import defaultdict
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError, find_metadata_tags

from .checks import EMISSION_METADATA
from .kernel import KernelDied, SandboxedKernel
from .sandbox import Limits

PLAN_OPTION = "--vmmlib-plan"


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
        self.start_problem = ""

    def setup(self) -> None:
        plan = self.config._vmmlib_plan  # type: ignore[attr-defined]
        try:
            self.kernel = SandboxedKernel(
                Path(plan["scratch"]), Path(self.job["package"]), Limits(**plan["limits"]),
                sandbox=plan["sandbox"],
                startup_timeout=self.config.option.nbval_kernel_startup_timeout)
        except Exception as error:  # recorded for every cell; grading goes on
            self.kernel = None
            self.start_problem = str(error)
            self.results["problem"] = self.start_problem
        self.save()

    def collect(self):  # noqa: ANN201 (pytest's generator of items)
        self.nb = nbformat.read(str(self.fspath), as_version=4)
        number = 0
        for cell in self.nb.cells:
            if cell.cell_type != "code":
                continue
            options = defaultdict(bool, find_metadata_tags(cell.metadata))
            options.setdefault("check", False)
            yield GradedCell.from_parent(self, name=f"Cell {number}", cell_num=number, cell=cell,
                                         options=options)
            number += 1

    def record(self, number: int, outcome: dict[str, Any]) -> None:
        self.results["cells"][str(number)] = outcome
        self.save()

    def save(self) -> None:
        _write_json(Path(self.job["results"]), self.results)

    def teardown(self) -> None:
        kernel = self.kernel
        if isinstance(kernel, SandboxedKernel):
            try:
                if kernel.is_alive():
                    kernel.stop()
            finally:
                self.results["peak_kib"] = kernel.peak_kib
                kernel.cleanup()
        self.save()


class GradedCell(IPyNbCell):
    """nbval's cell item; records its outcome and compares a check's emission only."""

    def compare_outputs(self, test: list, ref: list, skip_compare: Any = None) -> bool:
        label = self.cell.metadata.get("check_id")
        kept = [output for output in test if is_emission(output, label)]
        self.emissions = [output.get("data", {}).get("text/plain") for output in kept]
        return super().compare_outputs(kept, ref, skip_compare)

    def runtest(self) -> None:
        parent: GradedNotebook = self.parent  # type: ignore[assignment]
        self.emissions: list[Any] = []
        kernel = parent.kernel
        if kernel is None:
            parent.record(self.cell_num, {"status": "dead", "detail": parent.start_problem})
            raise RuntimeError(parent.start_problem)
        if self.options["skip"]:
            parent.record(self.cell_num, {"status": "skipped"})
            pytest.skip()
        timed_out_before = parent.timed_out
        outcome: dict[str, Any] = {"status": "passed"}
        try:
            super().runtest()
        except KernelDied as died:
            outcome = {"status": "crash", "detail": died.how}
            raise
        except NbCellError as error:
            if parent.timed_out and not timed_out_before:
                outcome = {"status": "timeout"}
            elif "outputs differ" in str(error):
                outcome = {"status": "differ"}
            else:
                outcome = {"status": "error"}
            raise
        except RuntimeError as error:
            dead = "Kernel dead" in str(error)
            outcome = {"status": "dead" if dead else "error", "detail": str(error)[:500]}
            raise
        finally:
            if isinstance(kernel, SandboxedKernel):
                if kernel.cell.error and "detail" not in outcome:
                    outcome["detail"] = kernel.cell.error
                outcome["cut"] = kernel.cell.cut
            outcome["emissions"] = [text for text in self.emissions if isinstance(text, str)]
            parent.record(self.cell_num, outcome)
