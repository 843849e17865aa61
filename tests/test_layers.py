"""The core is laid out in layers; a module imports only from its own layer or the ones below.

Bottom to top (DESIGN.md, "The core's layers"): the ground modules errors, clock, trace,
costs; hw; devices; cpu; xen; guest; scenarios. ``vmmlib/__init__.py`` re-exports from all of
them; ``vmmlib.viz`` and ``vmmlib.course`` sit on top and the core never imports them. Every
import statement is read, including those inside functions, and the core may import only the
standard library and numpy.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vmmlib"
GROUND = ("errors", "clock", "trace", "costs")
LAYERS = {name: 0 for name in GROUND} | {
    "hw": 1,
    "devices": 2,
    "cpu": 3,
    "xen": 4,
    "guest": 5,
    "scenarios": 6,
    "__init__": 7,
    "viz": 8,
    "course": 8,
}
CORE_THIRD_PARTY = {"numpy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "vmmlib"
    if len(parts) == 1:
        return LAYERS["__init__"]
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module} belongs to no layer: add it to DESIGN.md's layout")
    return LAYERS[parts[1]]


def imports_of(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x: x is a module of the package
                    found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
                    continue
            else:
                target = node.module
            found.append((node.lineno, target))
    return found


CORE = sorted(
    p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("viz", "course")
)


def upward_imports(path: Path, module: str | None = None) -> list[str]:
    """The imports of ``path`` that reach a higher layer than its own."""
    module = module or module_name(path)
    own = layer_of(module)
    return [
        f"{module}:{line} imports {target}"
        for line, target in imports_of(path, module)
        if target.split(".")[0] == "vmmlib" and layer_of(target) > own
    ]


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_only_its_layer_or_below(path):
    assert upward_imports(path) == []


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_numpy_and_the_standard_library_only(path):
    for line, target in imports_of(path):
        top = target.split(".")[0]
        if top in ("vmmlib", "__future__") or top in CORE_THIRD_PARTY:
            continue
        assert top in sys.stdlib_module_names, f"{path.name}:{line} imports {target}"


def test_the_checker_sees_an_upward_import_even_inside_a_function(tmp_path):
    # the test can fail: a device model importing the hypervisor is caught
    source = (PACKAGE / "devices" / "uart16550.py").read_text()
    copy = tmp_path / "uart16550.py"
    copy.write_text(source + "\n\ndef late():\n    from ..xen import machine\n")
    found = upward_imports(copy, "vmmlib.devices.uart16550")
    assert len(found) == 1 and found[0].endswith("imports vmmlib.xen")


def test_every_package_of_the_core_has_a_layer():
    for child in PACKAGE.iterdir():
        name = child.stem
        if child.name.startswith(("_", ".")) and child.name != "__init__.py":
            continue
        if child.is_dir() or child.suffix == ".py":
            assert name in LAYERS, f"vmmlib/{child.name} is in no layer"
