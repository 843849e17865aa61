"""Build reveal.js slides from the lecture notebooks: ``make slides``.

Each lecture notebook's cells carry ``slideshow.slide_type`` metadata: a ``slide`` starts a
section (→ walks the lecture), a ``subslide`` goes below it (↓, more of the same section).
nbconvert turns each notebook into one HTML deck in ``OUT_DIR`` through the ``offline_slides``
template (``templates/offline_slides``). The decks work offline: reveal.js (with its fonts),
require.js, jQuery and the widgets' HTML manager (with the Font Awesome fonts of the widgets'
icons) are fetched once from the npm registry into ``OUT_DIR/vendor/``; the notebooks use no maths
or diagrams, so MathJax and mermaid are left out. Links between lecture notebooks
(``01-intercepts.ipynb``) point at the other decks (``01-intercepts.slides.html``). Widgets
are drawn from their stored state by the HTML manager: static there (no kernel), showing the
state the notebook was stored with; present live from JupyterLab to step them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates"
#: npm package, file or folder inside it, where it goes under vendor/.
VENDOR = (
    ("reveal.js@4.0.2", "package", "reveal.js"),
    ("requirejs@2.1.10", "package/require.js", "require.js"),
    ("jquery@2.2.4", "package/dist/jquery.min.js", "jquery.min.js"),
    # the widgets' HTML manager, with the Font Awesome fonts its bundle loads beside it
    ("@jupyter-widgets/html-manager@1", "package/dist", "html-manager"),
)
#: Where the widgets' HTML manager and its fonts sit, relative to a deck.
WIDGETS_DIR = "vendor/html-manager"
#: A markdown or HTML link to a sibling notebook: ](name.ipynb) or href="name.ipynb".
_NOTEBOOK_LINK = re.compile(r"(\]\(|href=[\"'])([\w.-]+)\.ipynb(#[^)\"']*)?(?=[)\"'])")
#: Reveal's logical slide size (16:9); the browser scales it to the screen.
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720


def fetch_vendor(vendor: Path) -> None:
    """Download the JavaScript, CSS and fonts the decks need into ``vendor`` (once)."""
    vendor = Path(vendor)
    missing = [v for v in VENDOR if not (vendor / v[2]).exists()]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError("make slides needs npm to fetch reveal.js once (apt-get install npm)")
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for package, inside, target in missing:
            work = Path(tmp) / target
            work.mkdir()
            done = subprocess.run(
                [npm, "pack", "--silent", package], cwd=work, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise ConfigError(f"npm pack {package} failed: {done.stderr.strip()}")
            with tarfile.open(work / done.stdout.strip().splitlines()[-1]) as tar:
                tar.extractall(work, filter="data")
            src = work / inside
            if src.is_dir():
                shutil.copytree(src, vendor / target)
            else:
                shutil.copyfile(src, vendor / target)


def deck_links(markdown: str) -> str:
    """Point links to sibling notebooks at their decks: ``x.ipynb`` -> ``x.slides.html``."""
    return _NOTEBOOK_LINK.sub(lambda m: f"{m[1]}{m[2]}.slides.html{m[3] or ''}", markdown)


def export_slides(notebook: Path, out_dir: Path) -> Path:
    """Write ``out_dir/<name>.slides.html`` for one notebook; returns its path."""
    import nbformat
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        extra_template_basedirs=[str(TEMPLATES)],
        template_name="offline_slides",
        reveal_url_prefix="vendor/reveal.js",
        reveal_theme="white",
        reveal_width=str(SLIDE_WIDTH),
        reveal_height=str(SLIDE_HEIGHT),
        reveal_number="c/t",
        require_js_url="vendor/require.js",
        jquery_url="vendor/jquery.min.js",
        widget_renderer_url=f"{WIDGETS_DIR}/embed-amd.js",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = deck_links(cell.source)
    resources = {"metadata": {"name": notebook.stem}, "vmm_widgets_dir": WIDGETS_DIR}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{notebook.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def build_slides(notebooks: list[Path], out_dir: Path, fetch: bool = True) -> list[Path]:
    """Export every notebook and fetch the vendor files (unless ``fetch`` is False)."""
    out_dir = Path(out_dir)
    if fetch:
        fetch_vendor(out_dir / "vendor")
    return [export_slides(Path(nb), out_dir) for nb in notebooks]
