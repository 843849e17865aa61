"""Every link in the lecture notebooks opens the right file in JupyterLab (`make lab` serves
the repository root, so relative links from notebooks/ reach exercises/ as ../exercises/)."""

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [m for c in nb.cells if c.cell_type == "markdown" for m in _LINK.findall(c.source)]


def resolves(source: Path, target: str) -> bool:
    return (source.parent / target.split("#")[0]).resolve().exists()


def test_every_relative_link_resolves():
    for nb in NOTEBOOKS:
        for target in links(nb):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            assert resolves(nb, target), f"{nb.name}: link {target} leads nowhere"


def test_the_course_map_links_every_chapter_and_its_exercises():
    overview = links(ROOT / "notebooks" / "00-overview.ipynb")
    for nb in NOTEBOOKS[1:]:
        assert nb.name in overview, f"the course map does not link {nb.name}"
        assert f"../exercises/{nb.stem}-exercises.ipynb" in overview


def test_each_chapter_ends_by_pointing_at_its_exercises():
    for nb in NOTEBOOKS[1:]:
        last = nbformat.read(nb, as_version=4).cells[-1].source
        assert f"](../exercises/{nb.stem}-exercises.ipynb)" in last, nb.name
