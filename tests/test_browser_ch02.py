"""Chapter 02's steppers in a real browser, as a student sees them on a laptop (1366x768).

One test, with the JupyterLab and Chromium fixtures of tests/test_browser.py (this module gets
its own pair: keep it to this one test). Like chapter 01's browser test it runs the chapter's
stepper cells, and the cells they need, in a notebook beside the chapter. For each stepper:
the widget renders, its buttons and its state panel are on one screen, **first** then **step**
moves it, what the step changed is highlighted, and the hop stepper's slot walks NONE → READY.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import test_browser
from test_browser import IDLE, LAPTOP, ROOT, SHOW_STEPPER, _boxes

lab, browser = test_browser.lab, test_browser.browser  # the fixtures, for this module

CHAPTER = ROOT / "notebooks" / "02-device-model.ipynb"
#: The cells the steppers need: the imports, the two recordings, the two Stepper cells.
WANTED = ("imports", "s1-run", "s2-run", "s1-widget", "s2-widget")


def steppers_notebook(folder: Path) -> str:
    chapter = nbformat.read(CHAPTER, as_version=4)
    cells = [nbformat.v4.new_code_cell(c.source) for c in chapter.cells if c.get("id") in WANTED]
    assert len(cells) == len(WANTED)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=chapter.metadata)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, folder / "02-steppers.ipynb")
    return "notebooks/02-steppers.ipynb"


def test_chapter_02_steppers_fit_a_laptop_and_walk_the_ioreq_slot(lab, browser):
    page = browser.new_page(viewport=LAPTOP)
    try:
        path = steppers_notebook(lab.root / "notebooks")
        lab.open(page, path, "chapter-02")
        page.wait_for_function(
            "p => (window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && (window.jupyterapp.shell.currentWidget.context || {}).path === p)",
            arg=path, timeout=60_000,
        )
        page.wait_for_function(IDLE, timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-Notebook .vmm-stepper .widget-button')"
            ".length >= 8", timeout=60_000,
        )
        page.wait_for_function(IDLE, timeout=60_000)
        current = ".jp-NotebookPanel:not(.lm-mod-hidden)"
        [visible] = _boxes(page, f"{current} .jp-WindowedPanel-outer")
        page.evaluate(
            "() => document.querySelectorAll('.jp-Notebook .vmm-stepper')"
            ".forEach((s, k) => s.closest('.jp-Cell').setAttribute('data-vmm-test', k))"
        )
        for k, first_hop in ((0, "exit"), (1, "exit")):
            page.evaluate(SHOW_STEPPER, k)
            cell = f"{current} [data-vmm-test='{k}']"
            text = page.locator(f"{cell} .jp-OutputArea").text_content()
            for bad in ("Error displaying widget", "Loading widget", "Traceback"):
                assert bad not in text
            stepper = page.locator(f"{cell} .vmm-stepper")
            stepper.locator(".widget-button", has_text="first").click()
            page.wait_for_function(
                "s => /step 0 of/.test(document.querySelector(s).textContent)",
                arg=f"{cell} .vmm-stepper", timeout=20_000,
            )
            for n in (1, 2):
                stepper.locator(".widget-button", has_text="step").click()
                page.wait_for_function(
                    "([s, n]) => new RegExp(`step ${n} of`).test("
                    "document.querySelector(s).textContent)",
                    arg=[f"{cell} .vmm-stepper", n], timeout=20_000,
                )
            page.wait_for_selector(
                f"{cell} .vmm-stepper-state span[style*=background]", timeout=20_000
            )
            page.evaluate(SHOW_STEPPER, k)
            buttons = _boxes(page, f"{cell} .vmm-stepper .widget-button")
            [state] = _boxes(page, f"{cell} .vmm-stepper-state")
            # the buttons and the whole state panel on one screen, nothing to scroll
            assert min(b["top"] for b in buttons) >= visible["top"] - 1
            assert state["bottom"] <= visible["bottom"], (k, state, visible)
            assert state["right"] <= visible["right"]
            content = stepper.text_content()
            assert first_hop in content and "ioreq" in content
            if k == 0:  # the hop: after the exit and Xen's ioreq, the slot is READY
                assert "NONE → [READY] → INPROCESS" in content
                assert "blocked on its ioreq slot" in content
            page.screenshot(path=str(lab.root.parent / f"chapter-02-stepper-{k}.png"))
    finally:
        page.close()
