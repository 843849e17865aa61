"""Build reveal.js slides from the lecture notebooks: ``make slides``.

Each lecture notebook's cells carry ``slideshow.slide_type`` metadata; nbconvert turns the
notebook into one HTML deck per notebook in ``OUT_DIR``. The decks work offline: reveal.js,
require.js and jQuery are fetched once from the npm registry into ``OUT_DIR/vendor/`` (the
notebooks use no maths or diagrams, so MathJax and mermaid are dropped from the template).
Widgets are drawn from their stored state by the widgets' HTML manager, fetched the same way,
but they are static there (no kernel): present live from JupyterLab to step them.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates"
#: npm package, file inside it, where it goes under vendor/.
VENDOR = (
    ("reveal.js@4.0.2", "package", "reveal.js"),
    ("requirejs@2.1.10", "package/require.js", "require.js"),
    ("jquery@2.2.4", "package/dist/jquery.min.js", "jquery.min.js"),
    ("@jupyter-widgets/html-manager@1", "package/dist/embed-amd.js", "embed-amd.js"),
)


def fetch_vendor(vendor: Path) -> None:
    """Download the JavaScript the decks need into ``vendor`` (once; kept afterwards)."""
    missing = [v for v in VENDOR if not (vendor / v[2]).exists()]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError("make slides needs npm to fetch reveal.js once (apt-get install npm)")
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for package, inside, target in missing:
            done = subprocess.run(
                [npm, "pack", "--silent", package], cwd=tmp, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise ConfigError(f"npm pack {package} failed: {done.stderr.strip()}")
            with tarfile.open(Path(tmp) / done.stdout.strip().splitlines()[-1]) as tar:
                tar.extractall(tmp, filter="data")
            src = Path(tmp) / inside
            if src.is_dir():
                shutil.copytree(src, vendor / target)
            else:
                shutil.copyfile(src, vendor / target)


def export_slides(notebook: Path, out_dir: Path) -> Path:
    """Write ``out_dir/<name>.slides.html`` for one notebook; returns its path."""
    import nbformat
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        extra_template_basedirs=[str(TEMPLATES)],
        template_name="offline_slides",
        reveal_url_prefix="vendor/reveal.js",
        require_js_url="vendor/require.js",
        jquery_url="vendor/jquery.min.js",
        widget_renderer_url="vendor/embed-amd.js",
        reveal_scroll=True,  # a slide taller than the screen scrolls instead of being cut
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = nbformat.read(notebook, as_version=4)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{notebook.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def build_slides(notebooks: list[Path], out_dir: Path, fetch: bool = True) -> list[Path]:
    """Export every notebook and fetch the vendor scripts (unless ``fetch`` is False)."""
    out_dir = Path(out_dir)
    if fetch:
        fetch_vendor(out_dir / "vendor")
    return [export_slides(Path(nb), out_dir) for nb in notebooks]
