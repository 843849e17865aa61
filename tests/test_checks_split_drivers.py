"""Chapter 03's checks: case lists that cover each rule's boundaries with inputs the rings,
blkfront and Xen's grant checks really see; expected answers from the core; withheld
functions that really are the core's; blank scores 0, the solution full marks.

The mutants (tests/test_checks_mutants.py) prove that the checks catch wrong answers; these
tests prove the case lists and the references themselves.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

from vmmlib.course.checks import split_drivers as chapter
from vmmlib.course.checks.judge import judge, reference_results
from vmmlib.course.checks.plain import VALUE
from vmmlib.course.checks.runner import run
from vmmlib.course.withheld import dotted_name, source_file, withheld_by

QUESTIONS = {q.label: q for q in chapter.CHAPTER.questions}
Q1 = QUESTIONS["q1"]
ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "03-split-drivers-exercises.ipynb"


def inputs(question):
    return [case.inputs for case in question.cases()]


def answers(question):
    cases = list(question.cases())
    return [result.value() for result in reference_results(question, cases)]


def verdict(question, fn):
    cases = list(question.cases())
    got, _, _ = run(question, fn)
    return judge(question, cases, reference_results(question, cases), got)


def test_every_expected_answer_is_plain_data_and_every_case_is_labelled():
    kinds = {"q1": (bool,)}
    for label, question in QUESTIONS.items():
        cases = list(question.cases())
        results = reference_results(question, cases)
        assert all(result.kind == VALUE for result in results), label
        assert all(type(result.value()) in kinds[label] for result in results), label
        assert len({case.label for case in cases}) == len(cases), "labels tell cases apart"
        assert all(case.rule for case in cases), "every case names the rule it tests"


def test_case_lists_are_the_same_on_every_call():
    for question in QUESTIONS.values():
        assert question.cases() == question.cases()


# --- q1 --------------------------------------------------------------------------------------

def test_q1_indices_are_ring_indices_and_the_cases_cover_the_window_edges():
    cases = inputs(Q1)
    assert all(0 <= v < 2**32 for case in cases for v in case)
    # (old, new] edges, in a plain batch and across the wrap
    for old, new in ((5, 9), (0xFFFFFFFE, 1)):
        events = {e for o, n, e in cases if (o, n) == (old, new)}
        assert {old, old + 1 & 0xFFFFFFFF, new, new + 1} <= events
    assert any(o == n for o, n, _ in cases), "no progress"
    assert any(n < o for o, n, _ in cases), "wrap"
    assert any((n - o) % 2**32 >= 2**31 for o, n, _ in cases), "distances a signed compare breaks"
    assert {True, False} == set(answers(Q1))


def test_q1_reference_is_the_window_rule_of_ring_h():
    # hardware-facts.md §5.2: notify iff event in (old, new], modulo 2**32; its example
    assert chapter.reference_notify(0xFFFFFFFE, 0x1, 0xFFFFFFFF) is True
    for (old, new, event), expected in zip(inputs(Q1), answers(Q1), strict=True):
        window = [(old + k) % 2**32 for k in range(1, min((new - old) % 2**32, 40) + 1)]
        if (new - old) % 2**32 <= 40:
            assert expected == (event in window), (old, new, event)


def test_q1_the_hint_for_python_arithmetic_names_the_modulo():
    def no_modulo(old, new, event):
        return new - event < new - old

    assert "modulo 2**32" in verdict(Q1, no_modulo).text


# --- withheld reference functions ------------------------------------------------------------

WITHHELD = withheld_by(chapter.CHAPTER.questions)


def test_each_question_withholds_the_core_function_that_answers_it():
    names = {dotted_name(fn): label for fn, label in WITHHELD.items()}
    assert set(names.values()) == set(QUESTIONS)
    for fn in WITHHELD:
        assert inspect.isfunction(fn)
        source_file(fn)  # a file of the core, not of vmmlib.course or vmmlib.viz
        owner = importlib.import_module(fn.__module__)
        for part in fn.__qualname__.split("."):
            owner = getattr(owner, part)
        assert owner is fn, f"{dotted_name(fn)} does not resolve to the declared function"
    assert names["vmmlib.xen.ring.should_notify"] == "q1"


def solution_answers() -> dict:
    """The solution notebook's answer cells, run here."""
    namespace: dict = {}
    nb = json.loads(SOLUTION.read_text())
    for cell in nb["cells"]:
        if "answer" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), namespace)
    return namespace


@pytest.mark.skipif(not SOLUTION.exists(), reason="the solution notebook is not written yet")
def test_the_solution_scores_full_marks_and_a_blank_answer_zero():
    ns = solution_answers()

    def blank(*args):
        raise NotImplementedError("replace this line with your answer")

    for question in chapter.CHAPTER.questions:
        assert verdict(question, ns[question.function]).passed, question.label
        result = verdict(question, blank)
        assert result.lines[0].endswith(f" 0/{len(question.cases())} cases correct")
        assert "raise NotImplementedError" in result.text
