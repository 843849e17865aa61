"""The check framework in-process (vmmlib.course.checks): plain data, verdicts, the runner and
the self-check a student sees; and the grader's caps on what a kernel sends."""

from __future__ import annotations

import enum
import json
import os
import sys
import threading
import warnings
from collections import defaultdict
from io import StringIO

import numpy as np
import pytest

from vmmlib.course.checks import Case, Question
from vmmlib.course.checks import intercepts as chapter
from vmmlib.course.checks.judge import BLANK_HINT, PLAIN_HINT, WITHHELD_HINT, judge
from vmmlib.course.checks.plain import (
    NOT_PLAIN,
    RAISED,
    TOO_BIG,
    VALUE,
    EmissionError,
    Result,
    as_result,
    emission,
    parse_emission,
    raised,
)
from vmmlib.course.checks.runner import run
from vmmlib.course.checks.selfcheck import CheckFailed, self_check

# --- plain data ------------------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Calls:
    """Records any method call: turning it into plain data must call none."""

    called: list[str] = []

    def __eq__(self, other):
        Calls.called.append("__eq__")
        return True

    def __repr__(self):
        Calls.called.append("__repr__")
        return "True"

    def __iter__(self):
        Calls.called.append("__iter__")
        return iter(())

    __hash__ = object.__hash__


class Meta(type):
    def __repr__(cls):
        Calls.called.append("metaclass __repr__")
        return "<class 'bool'>"


class Sneaky(metaclass=Meta):
    pass


class Loud(list):
    def __iter__(self):
        raise AssertionError("never iterated")


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (1, "1"), (None, "null"), ("mmio", '"mmio"'),
    ((1, "a"), '[1,"a"]'), ({"b": True, "a": [0]}, '{"a":[0],"b":true}'), ([], "[]"),
])
def test_plain_values_become_canonical_json(value, text):
    assert as_result(value) == Result(VALUE, text)


@pytest.mark.parametrize("value, kind", [
    (np.bool_(True), NOT_PLAIN), (np.int64(1), NOT_PLAIN), (Color.RED, NOT_PLAIN),
    (Text("mmio"), NOT_PLAIN), (Loud([1]), NOT_PLAIN), ({1: "a"}, NOT_PLAIN), (1.0, NOT_PLAIN),
    ([Calls()], NOT_PLAIN), (Sneaky(), NOT_PLAIN), ([[[[[[[[[[1]]]]]]]]]], TOO_BIG),
    (list(range(5000)), TOO_BIG), (10**100, TOO_BIG), ("x" * 5000, TOO_BIG),
])
def test_anything_else_never_equals_an_answer_and_runs_no_method_of_it(value, kind):
    Calls.called.clear()
    assert as_result(value).kind == kind
    assert Calls.called == []
    assert as_result(value) != as_result(True)


def test_bools_and_ints_differ():
    assert as_result(True) != as_result(1) and as_result(0) != as_result(False)
    assert as_result({"string": True}) != as_result({"string": 16})


def test_an_exception_becomes_its_type_and_message():
    assert raised(ZeroDivisionError("division by zero")) == Result(
        RAISED, '"ZeroDivisionError: division by zero"')

    class Odd(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert raised(Odd("kept")).payload == '"Odd: kept"'  # BaseException.__str__, not theirs


def test_an_emission_reads_back_and_anything_else_is_refused():
    results = [as_result(True), raised(ValueError("x")), as_result(np.bool_(1))]
    text = emission("q1", "vmx_exits", results)
    assert text.splitlines()[0] == "q1 vmx_exits: results of 3 cases"
    assert parse_emission(text, "q1", "vmx_exits", 3) == results
    for bad, count in ((text, 4), (text.replace("q1", "q2"), 3),
                       (text.replace("1 value", "1 valeur"), 3),
                       (text.replace("true", "tru"), 3), ("", 3)):
        with pytest.raises(EmissionError):
            parse_emission(bad, "q1", "vmx_exits", count)


# --- verdicts --------------------------------------------------------------------------------

QUESTION = Question("q9", "double", lambda: [Case("two", (2,), "double it"),
                                             Case("three", (3,), "double it")],
                    reference=lambda x: 2 * x)


def test_a_verdict_names_the_first_wrong_case_and_a_hint():
    cases = QUESTION.cases()
    expected = [as_result(4), as_result(6)]
    assert judge(QUESTION, cases, expected, expected).lines == ("q9 double: 2/2 cases correct",)
    verdict = judge(QUESTION, cases, expected, [as_result(4), as_result(7)])
    assert not verdict.passed and verdict.lines == (
        "q9 double: 1/2 cases correct", "First wrong case: three: expected 6, got 7.",
        "Hint: double it")


@pytest.mark.parametrize("got, hint", [
    (raised(RuntimeError("vmmlib.paging.classify_fault is not available while grading q3")),
     WITHHELD_HINT),
    (raised(NotImplementedError("replace this line with your answer")), BLANK_HINT),
    (as_result(np.int64(6)), PLAIN_HINT),
    (raised(ZeroDivisionError("division by zero")), "raised an exception on this case"),
])
def test_hints_for_answers_that_are_not_answers(got, hint):
    verdict = judge(QUESTION, QUESTION.cases()[:1], [as_result(4)], [got])
    assert hint in verdict.lines[2]


def test_a_right_value_of_the_wrong_type_is_named_as_such():
    verdict = judge(chapter.Q1, chapter.Q1.cases()[:1], [as_result(True)], [as_result(1)])
    assert verdict.lines[2] == "Hint: right value, wrong type: return bool True, not int 1"


def test_a_wrong_number_of_answers_fails():
    assert not judge(QUESTION, QUESTION.cases(), [as_result(4)] * 2, [as_result(4)]).passed


# --- the runner: what the student's function prints never reaches the answers ---------------

def test_prints_warnings_and_file_descriptor_writes_are_captured(capfd):
    def noisy(x):
        print("debug", x)
        print("err", file=sys.stderr)
        warnings.warn("careful", stacklevel=1)
        os.write(1, b"fd one\n")
        os.write(2, b"fd two\n")
        return 2 * x

    results, errors, captured = run(QUESTION, noisy)
    assert results == [as_result(4), as_result(6)] and errors == [None, None]
    assert "debug 2" in captured.text and "fd two" in captured.text and "err" in captured.text
    assert captured.warnings == ["UserWarning: careful"] * 2
    assert capfd.readouterr() == ("", "")


def test_exceptions_are_answers_but_an_interrupt_still_stops_the_check():
    def grumpy(x):
        if x == 2:
            raise SystemExit("bye")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(QUESTION, grumpy)

    results, errors, _ = run(QUESTION, lambda x: 1 / 0)
    assert [r.kind for r in results] == [RAISED, RAISED] and isinstance(errors[0],
                                                                        ZeroDivisionError)


def test_grading_mode_shows_answers_only(monkeypatch):
    shown = []
    monkeypatch.setenv("VMMLIB_GRADING", "1")
    monkeypatch.setattr("IPython.display.publish_display_data",
                        lambda data, metadata: shown.append((data, metadata)))
    QUESTION.check(lambda x: x + 2)
    (data, metadata), = shown
    assert metadata == {"vmmlib": {"check": "q9"}}
    assert data["text/plain"] == "q9 double: results of 2 cases\n1 value 4\n2 value 5\n"


# --- self-check ------------------------------------------------------------------------------

def test_a_self_check_prints_only_the_verdict_when_right(capsys, monkeypatch):
    monkeypatch.delenv("VMMLIB_GRADING", raising=False)
    self_check(QUESTION, lambda x: x * 2)
    assert capsys.readouterr().out == "q9 double: 2/2 cases correct\n"


def test_a_wrong_answer_shows_verdict_and_hint_first_and_no_vmmlib_frame(capsys):
    def student(x):
        print("thinking about", x)
        raise NotImplementedError("replace this line with your answer")

    with pytest.raises(CheckFailed) as failure:
        self_check(QUESTION, student)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "q9 double: 0/2 cases correct"
    assert lines[1].startswith("First wrong case: two: expected 4, got an exception")
    assert lines[2] == f"Hint: {BLANK_HINT}"
    assert "  thinking about 2" in lines
    rendered = failure.value._render_traceback_()
    assert rendered[0].startswith("CheckFailed: q9 double: 0/2 cases correct")
    assert any("in student" in line for line in rendered)
    assert rendered[-1] == "NotImplementedError: replace this line with your answer"
    assert not any("vmmlib" in line for line in rendered)


def test_the_blank_chapter_exercise_fails_every_check_with_the_blank_hint(capsys):
    def blank(*args):
        raise NotImplementedError("replace this line with your answer")

    for question in chapter.CHAPTER.questions:
        with pytest.raises(CheckFailed):
            question.check(blank)
        assert capsys.readouterr().out.splitlines()[2] == f"Hint: {BLANK_HINT}"


# --- the grader's caps on what a kernel sends -------------------------------------------------

def test_the_kernel_stream_sends_small_messages_and_cuts_after_the_cap(monkeypatch):
    from vmmlib.course.capped_stream import CHUNK, CappedOutStream

    stream = CappedOutStream.__new__(CappedOutStream)
    stream._cap, stream._sent = 3 * CHUNK, {}
    stream._buffer_lock = threading.Lock()
    stream._buffers = defaultdict(StringIO)
    stream._buffers[frozenset({"msg_id": "cell"}.items())].write("x" * (5 * CHUNK))
    sent = [text for _, text in stream._flush_buffers()]
    assert max(map(len, sent)) <= CHUNK and sum(map(len, sent)) < 3 * CHUNK + 200
    assert "[output cut" in sent[-1]


def test_the_grader_caps_a_cells_output_whatever_the_kernel_sends():
    from vmmlib.course.kernel import CellOutput, SandboxedKernel
    from vmmlib.course.sandbox import Limits

    kernel = object.__new__(SandboxedKernel)
    kernel.limits, kernel.cell = Limits(output=1000), CellOutput()
    kept = [kernel._capped({"msg_type": "stream", "content": {"name": "stdout",
                                                              "text": "y" * 400}})
            for _ in range(5)]
    assert [len(m["content"]["text"]) for m in kept[:2]] == [400, 400]
    assert "output cut" in kept[2]["content"]["text"] and kept[3]["content"]["text"] == ""
    emission_message = {"msg_type": "display_data", "content": {
        "data": {"text/plain": "q1 ..."}, "metadata": {"vmmlib": {"check": "q1"}}}}
    assert kernel._capped(emission_message)["content"]["data"] == {"text/plain": "q1 ..."}
    forged = {"msg_type": "stream", "content": {"name": "stdout", "text": ["not", "text"]}}
    kernel._capped(forged)  # malformed content is counted, not trusted
    assert kernel.cell.cut


def test_a_kernels_end_is_told_by_its_signal():
    from vmmlib.course.kernel import describe_exit
    from vmmlib.course.sandbox import Limits

    assert describe_exit(139, Limits()) == "crashed: SIGSEGV"  # bwrap: 128 + the signal
    assert describe_exit(-9, Limits()) == "crashed: SIGKILL"
    assert "CPU-time limit of 120 s" in describe_exit(128 + 24, Limits())
    assert describe_exit(3, Limits()) == "it exited with code 3"


def test_emission_metadata_is_what_the_grader_filters_on():
    from vmmlib.course.grading_plugin import is_emission

    ours = {"output_type": "display_data", "data": {"text/plain": "x"},
            "metadata": {"vmmlib": {"check": "q1"}}}
    assert is_emission(ours, "q1") and not is_emission(ours, "q2")
    assert not is_emission({**ours, "output_type": "stream"}, "q1")
    assert not is_emission({**ours, "metadata": {"vmmlib": "q1"}}, "q1")
    assert json.dumps(ours)  # plain JSON, as stored in the graded notebook
