"""`make slides`: one offline reveal.js deck per lecture notebook (no CDN at show time)."""

import re
from pathlib import Path

import nbformat
import pytest

from vmmlib.course.slides import VENDOR, WIDGETS_DIR, deck_links, export_slides

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def chapter_deck(tmp_path_factory) -> str:
    """Chapter 01's deck, exported once for the tests of this module (an export takes ~2 s)."""
    return export_slides(ROOT / "notebooks" / "01-intercepts.ipynb",
                         tmp_path_factory.mktemp("deck")).read_text()


def test_lecture_notebooks_carry_slide_metadata():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
        assert None not in kinds, f"{path.name}: a cell has no slideshow.slide_type"
        assert kinds[0] == "slide", f"{path.name} must open with a slide"


def test_deck_loads_nothing_from_the_network(chapter_deck):
    html = chapter_deck
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


def test_one_horizontal_slide_per_section():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            kind = cell.metadata["slideshow"]["slide_type"]
            if cell.cell_type == "markdown" and cell.source.startswith("## "):
                assert kind == "slide", f"{path.name}: section {cell.source[:40]!r} is {kind}"
            elif kind == "slide":
                assert cell.source.startswith("# "), f"{path.name}: a slide outside a heading"


def test_links_between_notebooks_point_at_decks():
    text = "[intercepts](01-intercepts.ipynb) · [x](../exercises/01-intercepts-exercises.ipynb)"
    assert deck_links(text) == (
        "[intercepts](01-intercepts.slides.html) · [x](../exercises/01-intercepts-exercises.ipynb)"
    )
    linked = deck_links('<a href="00-overview.ipynb#map">')
    assert linked == '<a href="00-overview.slides.html#map">'


def test_deck_has_no_mathjax_no_web_fonts_and_the_widgets_fonts_beside_it(chapter_deck):
    html = chapter_deck
    assert "MathJax" not in html and "mermaid" not in html  # no script left to call them
    assert "fonts.googleapis" not in html and "theme/simple.css" not in html
    assert "theme/white.css" in html  # its fonts ship inside reveal.js
    assert f"{WIDGETS_DIR}/embed-amd.js" in html  # the HTML manager, beside its fonts
    assert '"@jupyter-widgets": "vendor/html-manager"' in html
    assert [p for p, inside, _ in VENDOR if "html-manager" in p] and all(
        "unpkg" not in p for p, _, _ in VENDOR
    )
