"""`make slides`: one offline reveal.js deck per lecture notebook (no CDN at show time)."""

import re
from pathlib import Path

import nbformat

from vmmlib.course.slides import VENDOR, export_slides

ROOT = Path(__file__).resolve().parent.parent


def test_lecture_notebooks_carry_slide_metadata():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
        assert None not in kinds, f"{path.name}: a cell has no slideshow.slide_type"
        assert kinds[0] == "slide", f"{path.name} must open with a slide"


def test_deck_loads_nothing_from_the_network(tmp_path):
    deck = export_slides(ROOT / "notebooks" / "01-intercepts.ipynb", tmp_path)
    html = deck.read_text()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    remote = [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert remote == []
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html
    for _, _, target in VENDOR:
        assert f"vendor/{target}" in html


def test_every_slide_cell_starts_a_section(tmp_path):
    path = ROOT / "notebooks" / "00-overview.ipynb"
    nb = nbformat.read(path, as_version=4)
    starts = sum(
        c.metadata["slideshow"]["slide_type"] in ("slide", "subslide") for c in nb.cells
    )
    html = export_slides(path, tmp_path).read_text()
    # reveal nests subslides in a slide section: one <section> per slide and per subslide,
    # plus one outer section per slide that has subslides
    assert html.count("<section") >= starts
