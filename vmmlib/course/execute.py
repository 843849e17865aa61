"""Execute notebooks in place and store their outputs: ``make notebooks``.

Outputs committed to the repository are produced only by this command, never pasted by
hand. It runs each notebook top to bottom in a fresh kernel (in the notebook's folder),
stores outputs and widget state, and drops what changes from run to run without meaning
anything (execution timestamps), so a re-run of unchanged code gives an unchanged file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

#: A widget model id as ipywidgets makes it (uuid4().hex), where the notebook stores one.
_MODEL_ID = re.compile(r'(?<=")(?:IPY_MODEL_)?([0-9a-f]{32})(?=")')

#: Per-cell timeout when executing, in seconds.
CELL_TIMEOUT = 300


def _hygienic_env() -> None:
    """Keep Jupyter/IPython/matplotlib state out of the user's home while executing."""
    state = tempfile.mkdtemp(prefix="vmmlib-exec-")
    for var in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        os.environ.setdefault(var, os.path.join(state, var.lower()))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def execute_notebook(path: Path, timeout: int = CELL_TIMEOUT) -> None:
    """Run ``path`` in a fresh kernel and write it back with its new outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    client.execute()
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    # the kernel flushes stdout on a timer: one print can arrive in two stream outputs, so
    # merge them, or an unchanged notebook would be stored differently from run to run
    nb, _ = CoalesceStreamsPreprocessor().preprocess(nb, {})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    text = nbformat.writes(nb)
    for n, old in enumerate(_widget_model_order(nb), start=1):
        text = text.replace(old, f"{n:032x}")
    # write again so the widget state is sorted by the new ids, not the random old ones
    nbformat.write(nbformat.reads(text, as_version=4), path)


def _widget_model_order(nb: Any) -> list[str]:
    """The notebook's widget model ids in an order that does not depend on the ids.

    ipywidgets names each model with a random UUID, so an unchanged notebook would change on
    every run. Numbering the models in this order (displayed widgets in cell order, then what
    they refer to, depth first; leftovers by type and content) and renaming every occurrence
    keeps the stored widgets working and the file stable.
    """
    key = "application/vnd.jupyter.widget-state+json"
    state = nb.metadata.get("widgets", {}).get(key, {}).get("state", {})
    order: list[str] = []

    def visit(model: str) -> None:
        if model in state and model not in order:
            order.append(model)
            for ref in _MODEL_ID.findall(json.dumps(state[model], sort_keys=True)):
                visit(ref)

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view:
                visit(view["model_id"])

    def content(model: str) -> str:
        # a reference to a model already numbered counts by its number, so that two
        # leftovers alike but for what they link (two steppers' jslinks) keep their order
        def ref(m: re.Match) -> str:
            return str(order.index(m[1])) if m[1] in order else ""

        return _MODEL_ID.sub(ref, json.dumps(state[model], sort_keys=True))

    for model in sorted(set(state) - set(order), key=content):
        visit(model)
    return order


def execute_all(paths: list[Path], timeout: int = CELL_TIMEOUT) -> None:
    """Execute each notebook in turn, printing one line per notebook."""
    _hygienic_env()
    for path in paths:
        execute_notebook(Path(path), timeout)
        print(f"executed {path}")
