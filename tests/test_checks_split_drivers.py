"""Chapter 03's checks: case lists that cover each rule's boundaries with inputs the rings,
blkfront and Xen's grant checks really see; expected answers from the core; withheld
functions that really are the core's; blank scores 0, the solution full marks.

The mutants (tests/test_checks_mutants.py) prove that the checks catch wrong answers; these
tests prove the case lists and the references themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chapter_checks import assert_withheld_are_the_cores
from chapter_checks import solution_answers as run_answer_cells

from vmmlib.course.checks import split_drivers as chapter
from vmmlib.course.checks import split_drivers_grants as grants
from vmmlib.course.checks import split_drivers_runs as runs
from vmmlib.course.checks.judge import judge, reference_results
from vmmlib.course.checks.plain import VALUE
from vmmlib.course.checks.runner import run
from vmmlib.course.withheld import dotted_name, withheld_by, write_stubbed_package
from vmmlib.guest import blkfront
from vmmlib.scenarios.split_drivers import io_program, split_machine
from vmmlib.xen.grant_table import GTF_readonly
from vmmlib.xen.vcpu import Vcpu

QUESTIONS = {q.label: q for q in chapter.CHAPTER.questions}
Q1, Q2, Q3, Q4 = (QUESTIONS[label] for label in ("q1", "q2", "q3", "q4"))
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
    kinds = {"q1": (bool,), "q2": (list,), "q3": (int,), "q4": (dict,)}
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


# --- q2 --------------------------------------------------------------------------------------

def _ring_requests(monkeypatch, op, sector, count, buffer):
    """Run the real blkfront (and blkback) on a chapter-03 machine and record every request it
    encodes into the ring, with the access of each segment's grant as it stands then."""
    world = split_machine("pv")
    table = world.machine.grant_tables.table(world.guest.domid)
    seen = []
    encode = blkfront.encode_request

    def recording(request):
        segments = request.used_segments()
        flags = {bool(table.entry(s.gref).flags & GTF_readonly) for s in segments}
        assert len(flags) == 1, "one access for every grant of a request"
        seen.append({"sector_number": request.sector_number, "readonly": flags.pop(),
                     "segments": [[table.entry(s.gref).frame, s.first_sect, s.last_sect]
                                  for s in segments]})
        return encode(request)

    monkeypatch.setattr(blkfront, "encode_request", recording)
    vcpu = Vcpu(world.guest, io_program(world, op, sector, count, buffer))
    vcpu.run()
    assert vcpu.crashed is None and set(vcpu.result) == {0}
    return seen


@pytest.mark.parametrize("op, sector, count, buffer", [
    ("read", 7, 1, 0x100E00), ("read", 3, 3, 0x100E00), ("write", 100, 8, 0x100200),
    ("read", 1000, 89, 0x100000), ("write", 5, 88, 0x100200), ("read", 64, 256, 0x100600),
])
def test_q2_reference_is_what_blkfront_puts_in_the_ring(monkeypatch, op, sector, count, buffer):
    assert chapter.reference_requests(op, sector, count, buffer) == _ring_requests(
        monkeypatch, op, sector, count, buffer)


def test_q2_requests_cover_the_buffer_page_by_page_in_blkif_limits():
    for (op, sector, count, buffer), requests in zip(inputs(Q2), answers(Q2), strict=True):
        addr, at = buffer, sector
        for request in requests:
            assert request["readonly"] is (op == "write")
            assert request["sector_number"] == at
            assert 1 <= len(request["segments"]) <= 11
            for gfn, first, last in request["segments"]:
                assert 0 <= first <= last <= 7
                assert (gfn, first) == (addr >> 12, (addr & 0xFFF) >> 9)
                addr += (last - first + 1) * 512
                at += last - first + 1
        assert addr == buffer + count * 512, "every sector once, in order"


def test_q2_cases_cover_every_sector_offset_and_the_11_page_limit():
    cases = inputs(Q2)
    assert {buffer >> 9 & 7 for _, _, _, buffer in cases} == set(range(8))
    shapes = {tuple(len(r["segments"]) for r in requests) for requests in answers(Q2)}
    assert {(1,), (2,), (11,), (11, 1), (11, 11), (11, 11, 11)} <= shapes
    assert {op for op, *_ in cases} == {"read", "write"}
    assert any(buffer >= 1 << 32 for *_, buffer in cases)


# --- q3 --------------------------------------------------------------------------------------

STATUS_OF_RULE = {grants.BAD_DOMAIN: -2, grants.BAD_REF: -3, grants.TYPE: -1,
                  grants.SUB_PAGE: -1, grants.GRANTEE: -1, grants.READ_ONLY: -1,
                  grants.BAD_PAGE: -9, grants.OKAY: 0}


def test_q3_each_case_s_hint_names_the_check_that_decides_it():
    # the rule is derived in Xen's order; the status is what GrantTables really answers
    for case, status in zip(Q3.cases(), answers(Q3), strict=True):
        assert STATUS_OF_RULE[case.rule] == status, case.label
    assert set(answers(Q3)) == {0, -1, -2, -3, -9}
    assert {case.rule for case in Q3.cases()} == set(STATUS_OF_RULE)


def test_q3_what_the_student_is_told_is_what_the_machine_holds():
    machine, tables = grants._grant_machine()
    told = grants.grant_domains()
    assert sorted(told) == [d.domid for d in machine.domains]
    for domain in machine.domains:
        about = told[domain.domid]
        assert about["ram_pages"] * 4096 == domain.ram_size
        table = tables.table(domain.domid)
        if table is None:
            assert about["grant_table"] is None
            continue
        assert len(about["grant_table"]) == table.nr_entries
        assert [tuple(table.entry(ref)) for ref in range(table.nr_entries)] == about[
            "grant_table"]


def test_q3_map_and_copy_differ_only_on_sub_page_grants():
    by = {(case.inputs[0], case.inputs[1:]): status
          for case, status in zip(Q3.cases(), answers(Q3), strict=True)}
    differ = {rest for (op, rest), status in by.items()
              if op == "map" and by[("copy", rest)] != status}
    assert differ and all(grants._entry(dom, ref)[0] & grants.GTF_sub_page
                          for _, dom, ref, _ in differ)


# --- q4 --------------------------------------------------------------------------------------

def test_q4_reference_follows_ring_h_on_the_textbook_runs():
    count = runs.reference_notifications
    # hardware-facts.md §5.2-5.3: the first push notifies (event = start + 1), a later one only
    # after a final check found no work and set event = cons + 1
    assert count(0, [("send", 1), ("send", 1)]) == {"front": 1, "back": 0}
    assert count(0, [("send", 1), ("take",), ("back_check",), ("send", 1)])["front"] == 2
    assert count(0, [("send", 1), ("take",), ("send", 1), ("back_check",),
                     ("send", 1)])["front"] == 1
    assert count(2**32 - 1, [("send", 1)])["front"] == 1  # req_event 0 after the wrap
    assert count(0, [("send", 2), ("take",), ("answer", 1), ("collect",), ("front_check",),
                     ("answer", 1)])["back"] == 2


def test_q4_runs_are_legal_and_some_wrap_past_2_32():
    wrapped = 0
    for start, ops in inputs(Q4):
        collected = taken = answered = sent = 0
        for name, *n in ops:
            assert name in runs.OPS
            if name == "send":
                sent += n[0]
                assert sent - collected <= 32, "RING_FULL: at most 32 requests outstanding"
            if name == "take":
                taken = sent
            if name == "answer":
                answered += n[0]
                assert answered <= taken, "a response answers a request taken"
            if name == "collect":
                collected = answered
        wrapped += start + sent >= 2**32
    assert wrapped >= 5
    assert {v for a in answers(Q4) for v in a.values()} >= {0, 1, 2}


# --- withheld reference functions ------------------------------------------------------------

WITHHELD = withheld_by(chapter.CHAPTER.questions)


def test_each_question_withholds_the_core_function_that_answers_it():
    names = {dotted_name(fn): label for fn, label in WITHHELD.items()}
    assert set(names.values()) == set(QUESTIONS)
    assert_withheld_are_the_cores(WITHHELD)
    assert names["vmmlib.xen.ring.should_notify"] == "q1"
    assert names["vmmlib.xen.blkif.segments_for_buffer"] == "q2"
    assert names["vmmlib.guest.blkfront.chunks"] == "q2"
    assert names["vmmlib.xen.grant_ops.GrantTables.map_grant_ref"] == "q3"
    assert names["vmmlib.xen.grant_table.entry_permits"] == "q3"
    assert names["vmmlib.xen.ring.FrontRing.push_requests_steps"] == "q4"


def test_the_stubbed_package_withholds_them_and_the_cases_still_build(tmp_path):
    # in the grading kernel the check builds every case's arguments with the core withheld
    copy = write_stubbed_package(tmp_path, WITHHELD)
    code = (
        "from vmmlib.course.checks import split_drivers as c\n"
        "from vmmlib.course.checks import split_drivers_grants as g, split_drivers_runs as r\n"
        "for q in c.CHAPTER.questions:\n"
        "    print(q.label, sum(1 for case in q.cases() if q.arguments(case)))\n"
        "for call in (lambda: c.should_notify(0, 1, 1),\n"
        "             lambda: c.chunks(0, 512),\n"
        "             lambda: g.reference_grant('map', 0, 1, 8, False, {}),\n"
        "             lambda: r.reference_notifications(0, [('send', 1)])):\n"
        "    try:\n"
        "        call()\n"
        "    except RuntimeError as error:\n"
        "        print(str(error).split(' is not available while grading ')[1][:2])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    counts = [f"{q.label} {len(q.cases())}" for q in chapter.CHAPTER.questions]
    assert done.stdout.splitlines() == [*counts, "q1", "q2", "q3", "q4"]


def solution_answers() -> dict:
    """The solution notebook's answer cells, run here."""
    return run_answer_cells(SOLUTION)


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


EXERCISE = ROOT / "exercises" / "03-split-drivers-exercises.ipynb"


def test_the_exercise_is_blank_and_names_the_chapter_s_checks():
    nb = json.loads(EXERCISE.read_text())
    assert nb["metadata"]["vmmlib"]["checks"] == chapter.__name__
    answers_ = [c for c in nb["cells"] if "answer" in c["metadata"].get("tags", [])]
    checks = [c for c in nb["cells"] if "check" in c["metadata"].get("tags", [])]
    assert len(answers_) == len(checks) == 4
    for cell in answers_:
        source = "".join(cell["source"])
        assert "raise NotImplementedError" in source and "BEGIN SOLUTION" not in source
    assert [(c["metadata"]["check_id"], c["metadata"]["points"]) for c in checks] == [
        ("q1", 2), ("q2", 3), ("q3", 3), ("q4", 2)]
    for cell, question in zip(checks, chapter.CHAPTER.questions, strict=True):
        assert cell["outputs"] == [] and cell["execution_count"] is None
        assert "".join(cell["source"]) == f"checks.check_{question.function}({question.function})"


def test_every_check_cell_fails_on_the_blank_exercise(capsys):
    from vmmlib.course.checks.selfcheck import CheckFailed

    namespace: dict = {}
    failed = []
    for cell in json.loads(EXERCISE.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            exec("".join(cell["source"]), namespace)
        except CheckFailed as failure:
            failed.append(failure.verdict)
    assert [v.split(":")[0] for v in failed] == [f"{q.label} {q.function}"
                                                 for q in chapter.CHAPTER.questions]
    assert all(" 0/" in v for v in failed)
    assert capsys.readouterr().out.count("replace the line `raise NotImplementedError") == 4
