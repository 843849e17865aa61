"""Chapter 01's checks: case lists that cover each rule's boundaries with real inputs only,
expected answers from the core, withheld functions that really are the core's.

The mutants (tests/test_checks_mutants.py) prove that the checks catch wrong answers; these
tests prove the case lists themselves: which boundaries they hold and that every input is one
real hardware can produce.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from chapter_checks import assert_withheld_are_the_cores

import vmmlib
from vmmlib.course.checks import intercepts as chapter
from vmmlib.course.checks.judge import reference_results
from vmmlib.course.checks.plain import VALUE
from vmmlib.course.withheld import dotted_name, withheld_by, write_stubbed_package

Q1, Q2, Q3 = chapter.Q1, chapter.Q2, chapter.Q3
decode_vmx_io_qualification = chapter.decode_vmx_io_qualification  # named in one place only


def inputs(question):
    return [case.inputs for case in question.cases()]


def answers(question):
    cases = list(question.cases())
    return [result.value() for result in reference_results(question, cases)]


def test_every_expected_answer_is_plain_data_of_the_type_the_question_asks():
    for question, kind in ((Q1, bool), (Q2, dict), (Q3, str)):
        cases = list(question.cases())
        results = reference_results(question, cases)
        assert all(result.kind == VALUE for result in results)
        assert all(type(result.value()) is kind for result in results), question.label
        assert len({case.label for case in cases}) == len(cases), "labels tell cases apart"
        assert all(case.rule for case in cases), "every case names the rule it tests"


def test_case_lists_are_the_same_on_every_call():
    for question in (Q1, Q2, Q3):
        assert question.cases() == question.cases()


# --- q1 --------------------------------------------------------------------------------------

def test_q1_bitmaps_follow_the_core_layout():
    for world in chapter.WORLDS:
        a, b = chapter.bitmap_bytes(world)
        assert len(a) == len(b) == 4096
        core = chapter._core_bitmaps(a, b)
        assert bytes(core.a) == a and bytes(core.b) == b, world
    xen_a, xen_b = chapter.bitmap_bytes("Xen's default")
    default = vmmlib.VmxIoBitmaps.xen_default()
    assert (bytes(default.a), bytes(default.b)) == (xen_a, xen_b)


def test_q1_cases_cover_the_boundaries_of_the_rule():
    cases = inputs(Q1)
    expected = dict(zip(cases, answers(Q1), strict=True))
    assert ("port 0x0000 only", 0x0000, 1) in cases  # port 0
    assert expected[("COM1 0x3F8-0x3FF", 0x400, 1)] is False  # the first port after a region
    assert expected[("COM1 0x3F8-0x3FF", 0x3FF, 2)] is True  # last port and the one after
    assert expected[("port 0x1F1 only", 0x1F0, 4)] is True  # only a middle port's bit set
    assert expected[("port 0x8000 only", 0x7FFE, 4)] is True  # crosses from bitmap A to B
    assert expected[("port 0x8000 only", 0x7FFE, 2)] is False
    assert expected[("nothing", 0xFFFE, 2)] is False  # ends at 0xFFFF: does not wrap
    assert expected[("nothing", 0xFFFF, 2)] is True  # wraps: always exits
    assert expected[("nothing", 0xFFFD, 4)] is True
    assert {size for _, _, size in cases} == {1, 2, 4}  # the only sizes IN/OUT have
    assert all(0 <= port <= 0xFFFF for _, port, _ in cases)
    randoms = [case for case in cases if case[0] == "random"]
    assert len(randoms) >= 16 and any(expected[c] for c in randoms) and not all(
        expected[c] for c in randoms)
    planned = [case for case in cases if case[0] != "random"]
    assert cases[:len(planned)] == planned, "the random part comes last"
    single = [n for n, case in enumerate(planned) if case[2] == 1]
    assert single == list(range(len(single))), "single-port cases come first"


# --- q2 --------------------------------------------------------------------------------------

def test_q2_qualifications_are_ones_real_hardware_produces():
    for (q,) in inputs(Q2):
        assert q >> 32 == 0 and (q >> 7) & 0x1FF == 0, f"{q:#x}: reserved bits set"
        assert q & 7 in (0, 1, 3), f"{q:#x}: size field 2 does not exist"
        string, rep, imm, port = q >> 4 & 1, q >> 5 & 1, q >> 6 & 1, q >> 16
        assert not (rep and not string), f"{q:#x}: REP on a plain IN/OUT is reserved"
        assert not (imm and (string or port > 0xFF)), f"{q:#x}: an impossible immediate"
        decode_vmx_io_qualification(q)  # the core accepts it


def test_q2_cases_cover_every_field_and_its_boundaries():
    decoded = answers(Q2)
    assert {d["size"] for d in decoded} == {1, 2, 4}
    assert {d["direction"] for d in decoded} == {"in", "out"}
    assert {(d["string"], d["rep"]) for d in decoded} == {(False, False), (True, False),
                                                          (True, True)}
    ports = {d["port"] for d in decoded}
    assert {0x0000, 0x00FF, 0x8000, 0xFFFF} <= ports  # 0, the largest immediate, bit 31, max
    qualifications = [q for (q,) in inputs(Q2)]
    assert 0 in qualifications  # OUT DX, AL to port 0: every bit clear
    assert any(q >> 6 & 1 for q in qualifications)  # immediate operands


# --- q3 --------------------------------------------------------------------------------------

def test_q3_cases_cover_region_edges_offsets_and_entry_bits():
    cases = inputs(Q3)
    expected = dict(zip(cases, answers(Q3), strict=True))
    assert expected[(False, 0x0, False)] == "neither"  # address 0, paging off
    assert expected[(True, 0x0, False)] == "page-fault"  # address 0, unmapped
    assert expected[(False, 0xC0000, False)] == "neither"  # first address after VGA
    assert expected[(False, 0xFED003FF, False)] == "mmio"  # a region smaller than a page
    assert expected[(False, 0xFED00400, False)] == "neither"  # ... its first address after
    assert expected[(True, 0x404400, False)] == "neither"  # ... through a mapping, same page
    assert expected[(True, 0x405100, True)] == "mmio"  # a region not page-aligned
    assert expected[(True, 0x4050FF, True)] == "neither"
    assert expected[(True, 0x400FFF, False)] == "mmio"  # a non-zero page offset
    assert expected[(True, 0x403000, False)] == "page-fault"  # not present, frame bits kept
    assert expected[(True, 0x407ABC, False)] == "mmio"  # A, D and NX bits set in the entry
    assert set(expected.values()) == {"mmio", "page-fault", "neither"}
    table, _ = chapter.guest_world(True)
    assert table.pte(0x407000) >> 63 == 1 and table.pte(0x403000) & 1 == 0
    _, mmio = chapter.guest_world(False)
    assert any(r.base % 4096 for r in mmio.regions) and any(r.length < 4096 for r in mmio.regions)


def test_q3_builds_fresh_objects_for_every_case():
    first = Q3.arguments(Q3.cases()[11])
    second = Q3.arguments(Q3.cases()[11])
    assert first[0] is not second[0] and first[1] is not second[1]


# --- withheld reference functions ------------------------------------------------------------

WITHHELD = withheld_by(chapter.CHAPTER.questions)


def test_each_question_withholds_the_core_function_that_answers_it():
    names = {dotted_name(fn): label for fn, label in WITHHELD.items()}
    assert set(names.values()) == {"q1", "q2", "q3"}
    assert_withheld_are_the_cores(WITHHELD)
    assert names[dotted_name(vmmlib.classify_fault)] == "q3"
    assert names[dotted_name(vmmlib.VmxIoBitmaps.exits)] == "q1"
    assert names[dotted_name(decode_vmx_io_qualification)] == "q2"


def test_the_stubbed_package_withholds_them_and_nothing_else(tmp_path):
    copy = write_stubbed_package(tmp_path, WITHHELD)
    exits, shadow = decode_vmx_io_qualification.__module__, vmmlib.classify_fault.__module__
    code = (
        f"import importlib, inspect, vmmlib, {exits}, {shadow}\n"
        "from vmmlib.course.checks import intercepts as c\n"
        "for call in (lambda: vmmlib.VmxIoBitmaps().exits(0x3F8, 1),\n"
        "             lambda: vmmlib.SvmIopm().exits(0x3F8, 1),\n"
        f"             lambda: {exits}.decode_vmx_io_qualification(0),\n"
        f"             lambda: importlib.reload({shadow}).classify_fault(None, None, 0)):\n"
        "    try:\n"
        "        call()\n"
        "    except RuntimeError as error:\n"
        "        print(error)\n"
        f"assert 'not available' in inspect.getsource({shadow}.classify_fault)\n"
        "print(len(c.Q1.cases()), vmmlib.PageTable().translate(0), vmmlib.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" is not available while grading ")[1][:2] for line in lines[:4]] == [
        "q1", "q1", "q2", "q3"]
    assert lines[4].startswith(f"{len(Q1.cases())} None {copy}")
    original = inspect.getsourcefile(chapter)
    with open(original, "rb") as file:
        assert (copy / "course" / "checks" / "intercepts.py").read_bytes() == file.read()


@pytest.mark.parametrize("source, message", [
    ("def f(x): return x\n", "one-line"),
    ("class A:\n    pass\n", "cannot find"),
])
def test_what_cannot_be_withheld_is_a_clear_error(source, message):
    from vmmlib.course.withheld import stub_source
    from vmmlib.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        stub_source(source, {"f": "no"})


def test_a_stub_keeps_the_signature_and_docstring():
    from vmmlib.course.withheld import stub_source

    source = ('class A:\n    def f(self, x):\n        """Doc."""\n        y = x\n'
              '        return y\n\n    def g(self):\n        return 2\n')
    namespace: dict = {}
    exec(stub_source(source, {"A.f": "withheld"}), namespace)
    assert namespace["A"].f.__doc__ == "Doc." and namespace["A"]().g() == 2
    with pytest.raises(RuntimeError, match="withheld"):
        namespace["A"]().f(1)
