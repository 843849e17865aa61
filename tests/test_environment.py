"""environment.yml (conda/Binder) and pyproject.toml (pip) must list the same packages,
with the same version bounds."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _normal(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def _toml_list(text: str, key: str) -> list[str]:
    """The string list assigned to ``key`` (tomllib is not in Python 3.10's stdlib)."""
    m = re.search(rf"^{re.escape(key)} = (\[.*?\])", text, re.M | re.S)
    assert m, f"{key} not found in pyproject.toml"
    body = re.sub(r"#.*", "", m.group(1))
    return ast.literal_eval(body)


def pyproject_requirements() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    reqs = _toml_list(text, "dependencies") + _toml_list(text, "course")
    return {_normal(r) for r in reqs}


def conda_requirements() -> set[str]:
    text = (ROOT / "environment.yml").read_text()
    block = text.split("\ndependencies:\n", 1)[1]
    reqs = set()
    for line in block.splitlines():
        m = re.match(r"^  - ([^\s#]+)\s*$", line)  # top-level conda packages, not the pip list
        if m and not re.match(r"^(python|pip)\b", m.group(1)):
            reqs.add(_normal(m.group(1)))
    return reqs


def test_same_packages_in_both_files():
    assert conda_requirements() == pyproject_requirements()


def test_lists_hold_the_course_stack():
    names = {re.split(r"[<>=!~]", r)[0] for r in pyproject_requirements()}
    assert {"numpy", "jupyterlab", "ipywidgets", "matplotlib", "nbval", "pytest"} <= names
