"""Reference functions withheld from the grading kernel.

Each question declares the core functions that answer it (``Question.withholds``). For the
kernel that grades a notebook, the grader writes a copy of the vmmlib package in which the
body of each of those functions is replaced by one ``raise``, and the sandbox mounts that copy,
read-only, where the real package is (:mod:`vmmlib.course.sandbox`). So the real code is not
there to be called, re-imported with ``importlib.reload``, read with ``inspect.getsource`` or
grabbed before the check runs: inside the sandbox no file holds it. The functions of every
question of the notebook are withheld for the whole notebook, each naming its own question.

Functions are declared as objects, not names: a function's home module and qualified name
come from the function itself, so the declaration follows the core when modules move.
"""

from __future__ import annotations

import ast
import compileall
import inspect
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import vmmlib

from ..errors import ConfigError
from .checks import Question

PACKAGE_DIR = Path(vmmlib.__file__).resolve().parent


def dotted_name(fn: Callable[..., Any]) -> str:
    """``vmmlib.iobitmap.VmxIoBitmaps.exits``: where a function is defined."""
    return f"{fn.__module__}.{fn.__qualname__}"


def message(fn: Callable[..., Any], label: str) -> str:
    return (f"{dotted_name(fn)} is not available while grading {label}: the check runs your "
            "own code, so write it without vmmlib's implementation")


def withheld_by(questions: Iterable[Question]) -> dict[Callable[..., Any], str]:
    """Every function the questions withhold, with the label of the question that does."""
    found: dict[Callable[..., Any], str] = {}
    for question in questions:
        for fn in question.withholds:
            found.setdefault(fn, question.label)
    return found


def source_file(fn: Callable[..., Any]) -> Path:
    """The core file that defines ``fn``; ConfigError for anything but a core function."""
    if not inspect.isfunction(fn):
        raise ConfigError(f"{fn!r} is not a function: only functions can be withheld")
    path = Path(inspect.getsourcefile(fn) or "").resolve()
    if PACKAGE_DIR not in path.parents or path.relative_to(PACKAGE_DIR).parts[0] in (
            "course", "viz"):
        raise ConfigError(f"{dotted_name(fn)} is not a function of vmmlib's core")
    return path


def _function_node(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    body: list[ast.stmt] = tree.body
    *outer, name = qualname.split(".")
    for part in outer:
        owner = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if owner is None:
            raise ConfigError(f"cannot find class {part} for {qualname}")
        body = owner.body
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise ConfigError(f"cannot find the definition of {qualname}")


def stub_source(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with the body of each function ``qualname`` replaced by ``raise RuntimeError(
    replacements[qualname])`` (its signature and docstring kept)."""
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    spans = []
    for qualname, why in replacements.items():
        node = _function_node(tree, qualname)
        body = node.body
        if body[0].lineno == node.lineno:
            raise ConfigError(f"{qualname}: a one-line function cannot be withheld")
        docstring = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                     and isinstance(body[0].value.value, str))
        # keep the docstring; everything after it (or the whole body) becomes the raise
        start = body[0].end_lineno if docstring else body[0].lineno - 1
        indent = " " * body[0].col_offset
        spans.append((start, node.end_lineno, f"{indent}raise RuntimeError({why!r})\n"))
    for start, end, replacement in sorted(spans, reverse=True):
        lines[start:end] = [replacement]
    return "".join(lines)


def write_stubbed_package(destination: Path, withheld: Mapping[Callable[..., Any], str]) -> Path:
    """Copy the vmmlib package to ``destination / "vmmlib"`` with ``withheld`` (function ->
    question label) replaced by stubs, byte-compiled; returns the copy's folder."""
    copy = Path(destination) / "vmmlib"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    by_file: dict[Path, dict[str, str]] = {}
    for fn, label in withheld.items():
        by_file.setdefault(source_file(fn), {})[fn.__qualname__] = message(fn, label)
    for path, replacements in by_file.items():
        target = copy / path.relative_to(PACKAGE_DIR)
        target.write_text(stub_source(path.read_text(encoding="utf-8"), replacements),
                          encoding="utf-8")
    compileall.compile_dir(copy, quiet=2, workers=1)
    for path in [copy, *copy.rglob("*")]:  # readable by the sandbox's unprivileged user
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy
