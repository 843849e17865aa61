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


def test_leftovers_alike_but_for_their_links_keep_a_stable_order():
    # two steppers each jslink a Play to a slider: the Link models are not displayed and
    # differ only in the models they point at; with fresh random ids each time, their order
    # must still follow the models they link (20 tries: a coin flip would fail)
    for _ in range(20):
        play1, play2, link1, link2 = (uuid.uuid4().hex for _ in range(4))
        state = {
            play1: {"model_name": "PlayModel", "state": {"max": 23}},
            play2: {"model_name": "PlayModel", "state": {"max": 23}},
            link1: {"model_name": "LinkModel", "state": {"source": [f"IPY_MODEL_{play1}", "v"]}},
            link2: {"model_name": "LinkModel", "state": {"source": [f"IPY_MODEL_{play2}", "v"]}},
        }
        views = [{"model_id": m, "version_major": 2, "version_minor": 0} for m in (play1, play2)]
        cells = [
            new_code_cell("Stepper(...)", id=f"c{i}", outputs=[
                new_output("display_data", data={"application/vnd.jupyter.widget-view+json": v})
            ])
            for i, v in enumerate(views)
        ]
        nb = new_notebook(cells=cells)
        nb.metadata["widgets"] = {KEY: {"state": state, "version_major": 2, "version_minor": 0}}
        assert _widget_model_order(nb) == [play1, play2, link1, link2]
