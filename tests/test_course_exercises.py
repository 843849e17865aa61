"""Exercise generation (vmmlib.course.exercises, regions, conventions): no kernel needed.

The fixture solution is tests/fixtures/course/solutions/01-practice.ipynb, built and executed
by tests/fixtures/course/build_fixtures.py.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vmmlib.course.__main__ import main
from vmmlib.course.conventions import NotebookConventionError, list_checks
from vmmlib.course.exercises import exercise_bytes, make_exercise, sync_exercises
from vmmlib.course.nbfiles import read_course_notebook
from vmmlib.course.regions import CODE_PLACEHOLDER, TEXT_PLACEHOLDER, strip_solutions
from vmmlib.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "course"
SOLUTIONS = FIXTURES / "solutions"
SOLUTION = SOLUTIONS / "01-practice.ipynb"
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def solution():
    return read_course_notebook(SOLUTION)


@pytest.fixture(scope="module")
def exercise(solution):
    return make_exercise(solution, SOLUTION.name)


def cells_by_id(notebook):
    return {cell.id: cell for cell in notebook.cells}


# --- regions ---------------------------------------------------------------------------------

def test_code_region_becomes_raise_indented_like_its_first_code_line():
    source = "def f(x):\n    y = 1\n### BEGIN SOLUTION\n    return x + y\n### END SOLUTION\n"
    stripped = strip_solutions(source, "code")
    assert stripped == f"def f(x):\n    y = 1\n    {CODE_PLACEHOLDER}\n"
    namespace: dict = {}
    exec(stripped, namespace)  # the function stays defined ...
    with pytest.raises(NotImplementedError):  # ... and tells the student what to do
        namespace["f"](1)


def test_every_region_of_a_cell_is_replaced_and_the_rest_kept():
    source = ("a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n"
              "if c:\n    ### BEGIN SOLUTION\n    d = 4\n    ### END SOLUTION\n")
    assert strip_solutions(source, "code") == (
        f"a = 1\n{CODE_PLACEHOLDER}\nc = 3\nif c:\n    {CODE_PLACEHOLDER}\n")


def test_markdown_region_becomes_text_placeholder():
    source = "Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert strip_solutions(source, "markdown") == f"Why?\n\n{TEXT_PLACEHOLDER}"


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "cannot nest"),
])
def test_unbalanced_markers_are_a_clear_error(source, message):
    with pytest.raises(NotebookConventionError, match=message):
        strip_solutions(source, "code", "nb cell 3")


# --- one exercise ----------------------------------------------------------------------------

def test_answer_cells_lose_their_solution_and_outputs(solution, exercise):
    theirs = cells_by_id(exercise)
    for cell_id, kept_line in (("q1-answer", "def add(a, b):"),
                               ("q2-answer", "def io_bitmap_bit(port):")):
        cell = theirs[cell_id]
        assert "answer" in cell.metadata.tags
        assert "SOLUTION" not in cell.source and "return" not in cell.source
        assert kept_line in cell.source and f"    {CODE_PLACEHOLDER}" in cell.source
        assert cell.outputs == [] and cell.execution_count is None
    written = theirs["q2-question"]
    assert "answer" in written.metadata.tags and TEXT_PLACEHOLDER in written.source
    assert "One bit per port" not in written.source
    assert "One bit per port" in cells_by_id(solution)["q2-question"].source  # not modified


def test_check_cells_store_no_verdict_and_are_protected(solution, exercise):
    ours = cells_by_id(solution)
    for cell_id in ("q1-check", "q2-check"):
        cell = cells_by_id(exercise)[cell_id]
        assert ours[cell_id].outputs, "the solution stores its verdict ..."
        assert cell.outputs == [] and cell.execution_count is None  # ... the exercise does not
        assert cell.source == ours[cell_id].source
        assert cell.metadata.tags == ["check"]
        assert cell.metadata.editable is False and cell.metadata.deletable is False


def test_ids_are_kept_and_other_cells_copied_as_they_are(solution, exercise):
    assert [cell.id for cell in exercise.cells] == [cell.id for cell in solution.cells]
    for cell_id in ("intro", "setup", "outro"):
        assert cells_by_id(exercise)[cell_id] == cells_by_id(solution)[cell_id]
    assert cells_by_id(exercise)["setup"].outputs[0].text == "setup done\n"
    assert exercise.metadata == solution.metadata
    nbformat.validate(exercise)


def test_checks_are_labelled_by_check_id_or_nbval_cell_number(exercise):
    checks = list_checks(exercise, "x")
    assert [(c.label, c.cell_id, c.code_index, c.points) for c in checks] == [
        ("q1", "q1-check", 2, 2), ("cell4", "q2-check", 4, 3)]


def test_run_timing_metadata_is_dropped(solution):
    timed = copy.deepcopy(solution)
    for cell in timed.cells:
        cell.metadata["execution"] = {"iopub.status.busy": "2026-11-25T10:00:00.000Z"}
    assert all("execution" not in cell.metadata for cell in make_exercise(timed).cells)


def test_generation_is_a_pure_function_of_the_notebook_content(tmp_path):
    # The same notebook saved with other JSON formatting gives byte-identical exercises.
    raw = json.loads(SOLUTION.read_text(encoding="utf-8"))
    for cell in raw["cells"]:
        cell["source"] = "".join(cell["source"])
    reformatted = tmp_path / SOLUTION.name
    reformatted.write_text(json.dumps(raw, indent=3), encoding="utf-8")
    first = exercise_bytes(SOLUTION)
    assert exercise_bytes(SOLUTION) == first
    assert exercise_bytes(reformatted) == first
    assert b"### BEGIN SOLUTION" not in first


# --- conventions are enforced ----------------------------------------------------------------

def broken(solution, cell_id, change):
    notebook = copy.deepcopy(solution)
    change(cells_by_id(notebook)[cell_id])
    return notebook


@pytest.mark.parametrize("cell_id, change, message", [
    ("q1-check", lambda c: c.metadata.pop("points"), "points"),
    ("q1-check", lambda c: c.metadata.update(points=True), "points"),
    ("q1-check", lambda c: c.metadata.update(points=-1), "points"),
    ("q1-check", lambda c: setattr(c, "execution_count", None), "no stored output"),
    ("q1-check", lambda c: c.outputs.append(nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="", traceback=[])), "fails on the solution"),
    ("q1-check", lambda c: setattr(c, "source", c.source + "### BEGIN SOLUTION\n"
                                                          "### END SOLUTION\n"), "cannot hold"),
    ("q2-check", lambda c: c.metadata.update(check_id="q1"), "used twice"),
    ("q2-check", lambda c: c.metadata.update(check_id="total"), "reserved"),
    ("setup", lambda c: c.metadata.update(tags=["answer"]), "no solution region"),
    ("q2-answer", lambda c: setattr(c, "source", c.source + "### END SOLUTION\n"), "without"),
])
def test_a_broken_convention_is_a_config_error_naming_the_cell(solution, cell_id, change, message):
    with pytest.raises(ConfigError, match=message) as error:
        make_exercise(broken(solution, cell_id, change), "01-practice.ipynb")
    assert "01-practice.ipynb" in str(error.value)


def test_notebooks_without_cell_ids_are_refused(tmp_path):
    raw = json.loads(SOLUTION.read_text(encoding="utf-8"))
    raw["nbformat_minor"] = 4
    for cell in raw["cells"]:
        del cell["id"]
    old = tmp_path / "01-old.ipynb"
    old.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(NotebookConventionError, match="no ids"):
        exercise_bytes(old)


# --- the exercises/ folder and the command line ----------------------------------------------

def test_sync_writes_then_check_finds_stale_missing_and_extra(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / "01-practice.ipynb").write_bytes(SOLUTION.read_bytes())
    (solutions / "02-copy.ipynb").write_bytes(SOLUTION.read_bytes())
    assert sync_exercises(solutions, exercises).written == ["01-practice.ipynb", "02-copy.ipynb"]
    assert sync_exercises(solutions, exercises, check=True).up_to_date
    assert main(["exercises", str(solutions), str(exercises), "--check"]) == 0

    raw = json.loads(SOLUTION.read_text(encoding="utf-8"))
    raw["cells"][0]["source"] = ["# Practice, reworded\n"]  # a changed exercise text
    (solutions / "01-practice.ipynb").write_text(json.dumps(raw), encoding="utf-8")
    (exercises / "02-copy.ipynb").unlink()
    (exercises / "03-orphan.ipynb").write_bytes(SOLUTION.read_bytes())
    before = {path.name: path.read_bytes() for path in exercises.iterdir()}
    capsys.readouterr()

    assert main(["exercises", str(solutions), str(exercises), "--check"]) == 1
    printed = capsys.readouterr().out
    assert "stale: " in printed and "01-practice.ipynb" in printed
    assert "missing: " in printed and "02-copy.ipynb" in printed
    assert "extra: " in printed and "03-orphan.ipynb" in printed
    assert {path.name: path.read_bytes() for path in exercises.iterdir()} == before

    result = sync_exercises(solutions, exercises)
    assert result.written == ["01-practice.ipynb", "02-copy.ipynb"]
    assert result.extra == ["03-orphan.ipynb"]  # reported, never deleted
    assert b"# Practice, reworded" in (exercises / "01-practice.ipynb").read_bytes()


def test_command_line_check_in_a_fresh_process(tmp_path):
    exercises = tmp_path / "exercises"
    exercises.mkdir()
    (exercises / SOLUTION.name).write_bytes(exercise_bytes(SOLUTION) + b" ")
    command = [sys.executable, "-m", "vmmlib.course", "exercises", str(SOLUTIONS), str(exercises)]
    stale = subprocess.run([*command, "--check"], capture_output=True, text=True, cwd=PROJECT)
    assert stale.returncode == 1, stale.stderr
    assert "stale:" in stale.stdout and "out of date" in stale.stderr
    fixed = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT)
    assert fixed.returncode == 0, fixed.stderr
    assert (exercises / SOLUTION.name).read_bytes() == exercise_bytes(SOLUTION)
    missing = subprocess.run([*command[:-2], str(tmp_path / "nowhere"), str(exercises)],
                             capture_output=True, text=True, cwd=PROJECT)
    assert missing.returncode == 2 and "no such folder" in missing.stderr


def test_importing_the_course_package_stays_light():
    code = (
        "import sys\n"
        "import vmmlib.course, vmmlib.course.exercises, vmmlib.course.grading\n"
        "import vmmlib.course.merge, vmmlib.course.reports, vmmlib.course.__main__\n"
        "import vmmlib.course.runs, vmmlib.course.sandbox, vmmlib.course.checks.judge\n"
        "assert callable(vmmlib.course.sync_exercises) and callable(vmmlib.course.grade)\n"
        "print(sorted(m for m in ('nbformat', 'nbval', 'nbclient', 'jsonschema', 'pytest')\n"
        "             if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_course_exercises_folder_is_up_to_date():
    """exercises/ must be what solutions/ generates (also part of `make test`)."""
    result = sync_exercises(PROJECT / "solutions", PROJECT / "exercises", check=True)
    assert result.up_to_date, (
        f"stale {result.stale}, missing {result.missing}, extra {result.extra}: run "
        "`python -m vmmlib.course exercises solutions exercises`")


# --- the fixture itself ----------------------------------------------------------------------

def test_the_stored_fixture_is_what_build_fixtures_builds():
    spec = importlib.util.spec_from_file_location("build_fixtures", FIXTURES / "build_fixtures.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    built, stored = builder.solution_notebook(), read_course_notebook(SOLUTION)
    assert [(c.id, c.cell_type, c.source, c.metadata) for c in built.cells] == [
        (c.id, c.cell_type, c.source, c.metadata) for c in stored.cells]
    assert all(c.execution_count for c in stored.cells if c.cell_type == "code")
