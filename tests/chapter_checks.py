"""What every chapter's checks tests share: the solution's answer cells run in-process, and
the withheld reference functions checked to be the core's own."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

from vmmlib.course.withheld import source_file


def solution_answers(solution: Path) -> dict:
    """The solution notebook's answer cells, run here: the names they define."""
    namespace: dict = {}
    for cell in json.loads(solution.read_text())["cells"]:
        if "answer" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), namespace)
    return namespace


def assert_withheld_are_the_cores(withheld: dict) -> None:
    """Each withheld function is a function of the core (not of vmmlib.course or vmmlib.viz)
    that its dotted name resolves to."""
    for fn in withheld:
        assert inspect.isfunction(fn)
        source_file(fn)
        owner = importlib.import_module(fn.__module__)
        for part in fn.__qualname__.split("."):
            owner = getattr(owner, part)
        assert owner is fn, f"{fn.__module__}.{fn.__qualname__} does not resolve to the function"
