"""Execute notebooks in place and store their outputs: ``make notebooks``.

Outputs committed to the repository are produced only by this command, never pasted by
hand. It runs each notebook top to bottom in a fresh kernel (in the notebook's folder),
stores outputs and widget state, and drops what changes from run to run without meaning
anything (execution timestamps), so a re-run of unchanged code gives an unchanged file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def execute_all(paths: list[Path], timeout: int = CELL_TIMEOUT) -> None:
    """Execute each notebook in turn, printing one line per notebook."""
    _hygienic_env()
    for path in paths:
        execute_notebook(Path(path), timeout)
        print(f"executed {path}")
