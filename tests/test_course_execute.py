"""`make notebooks` must give byte-identical files when nothing changed: widget model ids
(random UUIDs in ipywidgets) are renumbered by structure, not by their random names."""

import json
import uuid

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from vmmlib.course.execute import _widget_model_order

KEY = "application/vnd.jupyter.widget-state+json"


def _notebook_with_widgets(ids: list[str]) -> nbformat.NotebookNode:
    box, button, layout = ids
    state = {
        box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{button}"]}},
        button: {"model_name": "ButtonModel", "state": {"layout": f"IPY_MODEL_{layout}"}},
        layout: {"model_name": "LayoutModel", "state": {"width": "88px"}},
    }
    view = {"model_id": box, "version_major": 2, "version_minor": 0}
    out = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": view})
    nb = new_notebook(cells=[new_code_cell("Stepper(...)", outputs=[out], id="stepper")])
    nb.metadata["widgets"] = {KEY: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def _renumbered(ids: list[str]) -> str:
    nb = _notebook_with_widgets(ids)
    text = nbformat.writes(nb)
    for n, old in enumerate(_widget_model_order(nb), start=1):
        text = text.replace(old, f"{n:032x}")
    return nbformat.writes(nbformat.reads(text, as_version=4))


def test_order_follows_display_then_references():
    ids = [uuid.uuid4().hex for _ in range(3)]
    assert _widget_model_order(_notebook_with_widgets(ids)) == ids


def test_two_runs_with_different_random_ids_give_the_same_file():
    first = _renumbered([uuid.uuid4().hex for _ in range(3)])
    second = _renumbered([uuid.uuid4().hex for _ in range(3)])
    assert first == second
    state = json.loads(first)["metadata"]["widgets"][KEY]["state"]
    assert state[f"{1:032x}"]["state"]["children"] == [f"IPY_MODEL_{2:032x}"]
