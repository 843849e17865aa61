"""Every check is proven on mutants: it fails each plausible wrong answer, passes each right one.

For every chapter checks module of vmmlib.course.checks (a module declaring ``CHAPTER``),
tests/mutants/<module>.py must list, for every question, at least 10 wrong answers and at
least 2 right-but-different ones (a debug print, another algorithm). They run in-process,
through the same code a graded kernel runs (the runner turns answers into plain data) and the
same verdict the grader gives (the judge, against the reference's answers).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import vmmlib.course.checks as framework
from vmmlib.course.checks import Chapter
from vmmlib.course.checks.judge import judge, reference_results
from vmmlib.course.checks.runner import run

MIN_WRONG, MIN_RIGHT = 10, 2


def chapters() -> list[tuple[str, Chapter]]:
    found = []
    for info in pkgutil.iter_modules(framework.__path__):
        module = importlib.import_module(f"{framework.__name__}.{info.name}")
        if isinstance(getattr(module, "CHAPTER", None), Chapter):
            found.append((info.name, module.CHAPTER))
    return found


def mutants(name: str):
    return importlib.import_module(f"mutants.{name}")


def verdict(question, fn):
    cases = list(question.cases())
    got, _, _ = run(question, fn)
    return judge(question, cases, reference_results(question, cases), got)


QUESTIONS = [(name, question) for name, chapter in chapters() for question in chapter.questions]
WRONG = [(question, fn) for name, question in QUESTIONS
         for fn in mutants(name).WRONG[question.label]]
RIGHT = [(question, fn) for name, question in QUESTIONS
         for fn in mutants(name).RIGHT[question.label]]


def test_every_chapter_has_checks_and_mutants():
    assert {"intercepts", "device_model", "split_drivers"} <= set(dict(chapters()))
    for name, question in QUESTIONS:
        module = mutants(name)
        assert len(module.WRONG[question.label]) >= MIN_WRONG, (name, question.label)
        assert len(module.RIGHT[question.label]) >= MIN_RIGHT, (name, question.label)


@pytest.mark.parametrize("question, fn", WRONG,
                         ids=[f"{q.label}-{fn.__name__}" for q, fn in WRONG])
def test_each_wrong_answer_loses_its_check(question, fn):
    result = verdict(question, fn)
    assert not result.passed, f"{fn.__name__} passes {question.label}: {result.text}"
    assert result.lines[1].startswith("First wrong case:") and result.lines[2].startswith("Hint:")


@pytest.mark.parametrize("question, fn", RIGHT,
                         ids=[f"{q.label}-{fn.__name__}" for q, fn in RIGHT])
def test_each_right_answer_keeps_its_check(question, fn):
    result = verdict(question, fn)
    assert result.passed, f"{fn.__name__} fails {question.label}: {result.text}"


@pytest.mark.parametrize("fn, hint", [
    ("q1_first_port_only", "ANY of their bits"),
    ("q1_no_wrap_rule", "always exits on VMX"),
    ("q1_wrap_off_by_one", "one that ends at 0xFFFF does not wrap"),
    ("q1_bitmap_a_only", "bitmap B starts at port 0x8000"),
    ("q1_msb_first", "least significant bit"),
    ("q1_returns_an_int", "right value, wrong type"),
    ("q1_returns_numpy_bool", "plain Python data"),
    ("q2_size_not_plus_one", "MINUS ONE"),
    ("q2_direction_from_bit_0", "bit 3 is 1 for IN"),
    ("q2_port_shifted_by_15", "bits 31:16"),
    ("q2_string_and_rep_swapped", "bit 4 = string"),
    ("q2_flags_as_ints", "'string' must be a bool"),
    ("q2_missing_rep", "exactly the keys"),
    ("q3_by_virtual_address", "translate with the guest's table first"),
    ("q3_ignores_write_permission", "forbids the write"),
    ("q3_page_frame_only", "whatever its size or alignment"),
    ("q3_own_walk_keeps_flag_bits", "flag bits"),
    ("q3_own_walk_ignores_present", "not-present entry"),
    ("q3_paging_off_is_a_fault", "paging off the address IS guest-physical"),
])
def test_the_hint_names_the_rule_the_mistake_breaks(fn, hint):
    module = mutants("intercepts")
    function = getattr(module, fn)
    question = dict((q.label, q) for name, q in QUESTIONS if name == "intercepts")[fn[:2]]
    assert hint in verdict(question, function).text
