"""Building the graded notebook from a student's file (vmmlib.course.merge), in-process.

Only answer cells and the cells a student added come from the student; matched by id, or by
position and tags when there are no ids; the last non-blank copy of an answer counts.
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from classroom import BLANK, EXERCISE, NOTEBOOK, RIGHT, code_cell, insert_before, submission

from vmmlib.course.checks.plain import parse_emission
from vmmlib.course.grading import graded_notebook, load_exercise, not_graded
from vmmlib.course.merge import merge_submission
from vmmlib.course.reports import feedback_markdown


@pytest.fixture(scope="module")
def exercise():
    return load_exercise(EXERCISE)


def merged(exercise, notebook):
    return merge_submission(exercise.notebook, notebook, NOTEBOOK)


def sources(notebook) -> dict[str, str]:
    return {cell.id: cell.source for cell in notebook.cells}


def answers_of(result) -> dict[str, str]:
    return {cell_id: text for cell_id, text in sources(result.notebook).items()
            if cell_id in BLANK}


def test_answers_are_taken_by_id_and_everything_else_from_the_course(exercise):
    student = submission(RIGHT)
    for cell in student["cells"]:
        if cell["id"] == "q1-check":
            cell["source"] = "print('q1 vmx_exits: 63/63 cases correct')"
        if cell["id"] == "setup":
            cell["source"] = "checks = None"
    result = merged(exercise, student)
    ours = sources(exercise.notebook)
    for cell_id, text in sources(result.notebook).items():
        assert text == (RIGHT[cell_id] if cell_id in RIGHT else ours[cell_id])
    assert [c.id for c in result.notebook.cells] == [c.id for c in exercise.notebook.cells]
    assert any("Check q1 was edited" in note for note in result.notes)


def test_a_notebook_without_ids_is_matched_by_position_and_tags(exercise):
    old = submission(RIGHT)
    old["nbformat_minor"] = 4
    for cell in old["cells"]:
        del cell["id"]
    result = merged(exercise, old)
    assert answers_of(result) == RIGHT
    assert any("no cell ids" in note for note in result.notes)
    assert not any("added" in note for note in result.notes)


def test_a_notebook_without_ids_or_tags_but_the_exercises_shape_is_matched_cell_by_cell(
        exercise):
    bare = submission(RIGHT)
    for cell in bare["cells"]:
        del cell["id"]
        cell["metadata"] = {}
    assert answers_of(merged(exercise, bare)) == RIGHT


def test_answers_pasted_into_a_new_notebook_are_found_by_their_tags(exercise):
    pasted = submission(RIGHT)
    for number, cell in enumerate(pasted["cells"]):
        cell["id"] = f"new-{number}"
    result = merged(exercise, pasted)
    assert answers_of(result) == RIGHT
    assert len(result.notebook.cells) == len(exercise.notebook.cells)


def test_added_cells_are_kept_before_the_course_cell_that_follows_them(exercise):
    student = submission({**RIGHT, "q1-answer": "def vmx_exits(a, b, port, size):\n"
                                                "    return helper(a, b, port, size)\n"})
    insert_before(student, "q1-answer", code_cell("def helper(*args):\n    return True\n",
                                                  cell_id="helper"))
    insert_before(student, "q2-check", code_cell("print(decode_qualification(0))"))  # no id
    student["cells"].append({"cell_type": "markdown", "metadata": {"tags": ["check"]},
                             "source": "my notes", "id": "notes"})
    result = merged(exercise, student)
    ids = [cell.id for cell in result.notebook.cells]
    assert ids.index("helper") == ids.index("q1-answer") - 1
    added = [cell for cell in result.notebook.cells if cell.id.startswith("added-")]
    assert [cell.source for cell in added] == ["print(decode_qualification(0))"]
    assert ids.index(added[0].id) == ids.index("q2-check") - 1
    assert ids[-1] == "notes" and result.notebook.cells[-1].metadata == {}
    assert any("3 cell(s) you added" in note for note in result.notes)
    nbformat.validate(result.notebook)


def test_the_last_non_blank_copy_of_an_answer_counts(exercise):
    student = submission({"q2-answer": BLANK["q2-answer"]})
    insert_before(student, "q2-check", code_cell("def decode_qualification(q):\n    return 1\n",
                                                 ("answer",), "first-try"),
                  code_cell(RIGHT["q2-answer"], ("answer",), "second-try"),
                  code_cell("  \n", ("answer",), "empty"))
    same_id = copy.deepcopy(next(c for c in student["cells"] if c["id"] == "q3-answer"))
    same_id["source"] = RIGHT["q3-answer"]
    student["cells"].insert(0, same_id)  # the same id twice, the filled one first
    result = merged(exercise, student)
    assert answers_of(result)["q2-answer"] == RIGHT["q2-answer"]
    assert answers_of(result)["q3-answer"] == RIGHT["q3-answer"]
    notes = " ".join(result.notes)
    assert "appears 4 times" in notes and "appears 2 times" in notes
    assert not any(cell.id in ("first-try", "second-try", "empty")
                   for cell in result.notebook.cells)


def test_deleted_or_retyped_answers_stay_blank_and_garbage_is_ignored(exercise):
    student = submission(RIGHT)
    student["cells"] = [c for c in student["cells"] if c["id"] != "q1-answer"]
    for cell in student["cells"]:
        if cell["id"] == "q2-answer":
            cell["cell_type"] = "markdown"
    student["cells"] += ["not a cell", {"cell_type": "code"}, {"source": 3}]
    result = merged(exercise, student)
    assert answers_of(result)["q1-answer"] == BLANK["q1-answer"]
    assert answers_of(result)["q2-answer"] == BLANK["q2-answer"]
    assert sum("graded blank" in note for note in result.notes) == 2
    assert any("3 malformed cell(s)" in note for note in result.notes)
    assert merged(exercise, {"cells": "garbage"}).notebook.cells == exercise.notebook.cells


def test_merging_leaves_the_exercise_untouched(exercise):
    before = copy.deepcopy(exercise.notebook)
    merged(exercise, submission(RIGHT))
    merged(exercise, json.loads(json.dumps(submission({}))))
    assert exercise.notebook == before


def test_the_graded_notebook_stores_the_expected_answers_under_the_checks(exercise):
    notebook = graded_notebook(merged(exercise, submission(RIGHT)).notebook, exercise, {2})
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for check in exercise.checks:
        cell = next(c for c in code if c.id == check.cell_id)
        assert "nbval-check-output" in cell.metadata.tags and cell.execution_count == 1
        (output,) = cell.outputs
        graded = exercise.graded[check.label]
        results = parse_emission(output.data["text/plain"], check.label,
                                 graded.question.function, len(graded.cases))
        assert results == list(graded.expected)
        assert output.metadata == {"vmmlib": {"check": check.label}}
    others = [cell for cell in code if "check" not in cell.metadata.tags]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in others)
    assert code[2].metadata.tags[-1] == "nbval-skip"
    nbformat.validate(notebook)


def test_a_notebook_not_handed_in_reads_as_not_submitted_on_its_feedback_page(exercise):
    missing = feedback_markdown(not_graded("carol", exercise, "No submission.", False))
    assert "Score: **0 / 10**: not submitted." in missing and "No submission." in missing
    assert "FAIL" not in missing and "| check |" not in missing
    crashed = feedback_markdown(not_graded("carol", exercise, "could not be read", True))
    assert crashed.count("FAIL") == len(exercise.checks)  # handed in, but not gradable
