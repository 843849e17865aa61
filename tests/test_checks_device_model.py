"""Chapter 02's checks: case lists that cover each rule's boundaries with inputs Xen, the IDE
model and the 16550 really produce; expected answers from the core; q2's replay of a driver;
withheld functions that really are the core's; blank scores 0, the solution full marks.

The mutants (tests/test_checks_mutants.py) prove that the checks catch wrong answers; these
tests prove the case lists and the replay themselves.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from chapter_checks import assert_withheld_are_the_cores
from chapter_checks import solution_answers as run_answer_cells

from vmmlib.course.checks import device_model as chapter
from vmmlib.course.checks import device_model_replay as replay_checks
from vmmlib.course.checks.judge import judge, reference_results
from vmmlib.course.checks.plain import VALUE
from vmmlib.course.checks.runner import run
from vmmlib.course.withheld import dotted_name, withheld_by, write_stubbed_package

Q1, Q2, Q3, Q4 = chapter.CHAPTER.questions
ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "02-device-model-exercises.ipynb"
# the core names the checks module uses, reached through it (they follow the core if it moves)
Ioreq, decode, problem = chapter.Ioreq, chapter.decode, importlib.import_module(
    chapter.decode.__module__).problem
BufferedIoreqPage, IdeController = chapter.BufferedIoreqPage, chapter.IdeController


def inputs(question):
    return [case.inputs for case in question.cases()]


def answers(question):
    cases = list(question.cases())
    return [result.value() for result in reference_results(question, cases)]


def solution_answers() -> dict:
    """The solution notebook's answer cells, run here."""
    return run_answer_cells(SOLUTION)


def answer_source(cell_id: str) -> str:
    nb = json.loads(SOLUTION.read_text())
    return next("".join(c["source"]) for c in nb["cells"] if c.get("id") == cell_id)


def verdict(question, fn):
    cases = list(question.cases())
    got, _, _ = run(question, fn)
    return judge(question, cases, reference_results(question, cases), got)


def test_every_expected_answer_is_plain_data_of_the_type_the_question_asks():
    for question, kinds in ((Q1, (dict,)), (Q2, (dict,)), (Q3, (dict, type(None))),
                            (Q4, (str,))):
        cases = list(question.cases())
        results = reference_results(question, cases)
        assert all(result.kind == VALUE for result in results), question.label
        assert all(type(result.value()) in kinds for result in results), question.label
        assert len({case.label for case in cases}) == len(cases), "labels tell cases apart"
        assert all(case.rule for case in cases), "every case names the rule it tests"


def test_case_lists_are_the_same_on_every_call():
    for question in (Q1, Q2, Q3, Q4):
        assert question.cases() == question.cases()


# --- q1 --------------------------------------------------------------------------------------

def test_q1_requests_are_ones_xen_sends():
    for (hex_bytes,) in inputs(Q1):
        raw = bytes.fromhex(hex_bytes)
        assert len(raw) == 32 and raw[28:30] == b"\0\0" and not raw[30] & 0x80, hex_bytes
        req = decode(raw)
        assert req.encode() == raw  # nothing the decoded fields do not say
        assert req.state in (0, 1, 2, 3) and req.size in (1, 2, 4, 8) and req.count >= 1
        assert req.type in (0, 1, 2)
        if req.df:
            assert req.data_is_ptr, "DF matters for string I/O only"
        if req.type in (0, 1):
            assert problem(req, 256 << 20) is None, hex_bytes  # qemu-dm would take it
        if not req.data_is_ptr:
            assert req.data < 1 << (8 * req.size)


def test_q1_cases_cover_every_field_and_its_boundaries():
    decoded = answers(Q1)
    assert {d["state"] for d in decoded} == {"NONE", "READY", "INPROCESS", "IORESP_READY"}
    assert {d["type"] for d in decoded} == {"PIO", "COPY", "PCI_CONFIG"}
    assert {d["dir"] for d in decoded} == {"read", "write"}
    assert {(d["data_is_ptr"], d["df"]) for d in decoded} == {(False, False), (True, False),
                                                              (True, True)}
    assert {d["size"] for d in decoded} == {1, 2, 4, 8}
    addrs = {d["addr"] for d in decoded}
    assert 0 in addrs and 0xFFFC in addrs and any(a >= 1 << 32 for a in addrs)
    assert any(d["data"] >= 1 << 63 for d in decoded) and any(d["data"] >= 1 << 32
                                                               and d["data"] < 1 << 63
                                                               for d in decoded)
    assert max(d["count"] for d in decoded) == 0x10000
    assert {d["vp_eport"] for d in decoded} >= {1, 4095}


def test_q1_a_pci_config_address_has_the_layout_of_the_reference():
    # hardware-facts.md §4.1: segment 63:48, bus 47:40, device 39:35, function 34:32, reg 31:0
    assert chapter._pci_address(0xFF, 31, 7, 0xFFC) == 0x0000_FFFF_0000_0FFC
    assert chapter._pci_address(0, 1, 1, 0x3C) == 1 << 35 | 1 << 32 | 0x3C


# --- q2 --------------------------------------------------------------------------------------

def test_q2_the_reference_driver_reads_the_right_sector_of_the_right_drive():
    for (lba, drive, _busy), expected in zip(inputs(Q2), answers(Q2), strict=True):
        assert expected["command"] == 0x20, "READ SECTORS, LBA28"
        assert expected["disk_reads"] == [[drive, lba]]
        assert expected["returned"]["bytes"] == 512
        assert expected["returned"]["starts"] == f"drive {drive} LBA {lba:#09x} "
        tf = expected["task_file"]
        assert (tf["lba_low"], tf["lba_mid"], tf["lba_high"]) == (
            lba & 0xFF, lba >> 8 & 0xFF, lba >> 16 & 0xFF)
        assert tf["device"] == 0xE0 | drive << 4 | lba >> 24 and tf["count"] == 1


def test_q2_cases_cover_every_byte_of_the_address_both_drives_and_a_busy_disk():
    cases = inputs(Q2)
    lbas = {lba for lba, _, _ in cases}
    for below, above in ((0xFF, 0x100), (0xFFFF, 0x10000), (0xFFFFFF, 0x1000000)):
        assert {below, above} <= lbas
    assert 0 in lbas
    # the last sector a 28-bit command reaches: IDENTIFY's LBA28 capacity saturates at
    # 2**28 - 1 sectors (ATA; QEMU ide_identify_size), so LBAs run to 2**28 - 2
    assert max(lbas) == replay_checks.LBA28_LAST == 0x0FFFFFFE
    assert {drive for _, drive, _ in cases} == {0, 1}
    assert any(busy and drive == 0 for _, drive, busy in cases)
    assert any(busy and drive == 1 for _, drive, busy in cases)
    assert any(lba >> 24 for lba, drive, _ in cases if drive == 1)  # LBA 27:24 with drive 1


def test_q2_pattern_disks_differ_in_every_sector_and_between_drives():
    a, b = replay_checks.PatternDisk(0), replay_checks.PatternDisk(1)
    sectors = {a.sector(n) for n in (0, 1, 0x100, 0x10000)} | {b.sector(0), b.sector(1)}
    assert len(sectors) == 6 and all(len(s) == 512 for s in sectors)
    assert a.read(5, 1) == (a.sector(5), replay_checks.READ_NS)


def _polled(lba, drive):
    return replay_checks._reference_driver(lba, drive)


def test_q2_a_busy_disk_ignores_a_driver_that_does_not_wait():
    from vmmlib.cpu.ops import In, Ins, Out

    def hasty(lba, drive):
        yield Out(0x1F3, 1, lba & 0xFF)
        yield Out(0x1F2, 1, 1)
        yield Out(0x1F6, 1, 0xE0 | drive << 4)
        yield Out(0x1F7, 1, 0x20)
        while (yield In(0x1F7, 1)) & 0x88 != 0x08:
            pass
        return bytes((yield Ins(0x1F0, 1, 1)))

    idle = replay_checks.replay(hasty(9, 0), busy=False)
    assert idle["task_file"]["lba_low"] == 9 and idle["disk_reads"] == [[0, 9]]
    with pytest.raises(replay_checks.DriverError, match="port accesses"):
        replay_checks.replay(hasty(9, 0), busy=True)  # the command was ignored: DRQ never comes


def test_q2_replay_reports_what_it_cannot_run():
    from vmmlib.cpu.ops import Hlt, Ins, Load

    def halts(lba, drive):
        yield Hlt()

    def loads(lba, drive):
        yield Load(0x1000, 4)

    def to_memory(lba, drive):
        yield Ins(0x1F0, 2, 256, addr=0x1000)

    for driver, message in ((halts, "polled"), (loads, "not Load"), (to_memory, "without addr")):
        with pytest.raises(replay_checks.DriverError, match=message):
            replay_checks.replay(driver(0, 0))
    with pytest.raises(replay_checks.DriverError, match="generator"):
        replay_checks.replay(b"bytes")
    got, errors, _ = run(Q2, replay_checks.replayed(lambda lba, drive: b"\0" * 512))
    assert got[0].kind == "raised" and "generator" in got[0].payload


def test_q2_replay_is_deterministic_and_reports_plain_data():
    first = replay_checks.replay(_polled(0x123456, 1), busy=True)
    assert first == replay_checks.replay(_polled(0x123456, 1), busy=True)
    assert json.loads(json.dumps(first)) == first
    assert replay_checks.digest(None) is None and replay_checks.digest([1]) == "not bytes: list"


# --- q3 --------------------------------------------------------------------------------------

def test_q3_writes_are_ones_xen_buffers_with_pointers_as_xen_keeps_them():
    for r, w, addr, size, data in inputs(Q3):
        assert 0 <= r < chapter.SLOTS and 0 <= w - r <= chapter.SLOTS, (r, w)  # canonical
        assert 0xA0000 <= addr and addr + size <= 0xC0000, "inside the VGA window"
        assert size in (1, 2, 4, 8) and 0 <= data < 1 << (8 * size)


def test_q3_reference_slots_decode_back_to_the_write():
    for (_r, w, addr, size, data), expected in zip(inputs(Q3), answers(Q3), strict=True):
        if expected is None:
            continue
        page = np.zeros(4096, np.uint8)
        ring = BufferedIoreqPage(page)
        for index, value in expected["slots"]:
            page[8 + 8 * index : 16 + 8 * index] = np.frombuffer(value.to_bytes(8, "little"),
                                                                 np.uint8)
        ring.pointers[0], ring.pointers[1] = w, expected["write_pointer"]
        got = ring.pop()
        assert (got.type, got.size, got.addr, got.data) == (1, size, addr, data)


def test_q3_cases_cover_the_wrap_a_full_ring_and_every_size():
    cases = dict(zip(inputs(Q3), answers(Q3), strict=True))
    assert {size for _, _, _, size, _ in cases} == {1, 2, 4, 8}
    assert {0xA0000, 0xBFFFF} <= {addr for _, _, addr, _, _ in cases}
    slots = [s for a in cases.values() if a for s, _ in a["slots"]]
    assert 510 in slots and 0 in slots
    eight_wrapping = [a for (r, w, _, size, _), a in cases.items() if size == 8 and a
                      and w % 511 == 510]
    assert eight_wrapping and [s for s, _ in eight_wrapping[0]["slots"]] == [510, 0]
    by_room = {}
    for (r, w, _, size, _), a in cases.items():
        by_room.setdefault((chapter.SLOTS - (w - r), size == 8), set()).add(a is None)
    assert by_room[(0, False)] == {True} and by_room[(1, False)] == {False}  # full / one left
    assert by_room[(1, True)] == {True} and by_room[(2, True)] == {False}  # 8 bytes need two


# --- q4 --------------------------------------------------------------------------------------

def test_q4_cases_cover_every_port_of_both_channels_and_both_uarts():
    cases = inputs(Q4)
    ide = {port for device, port, _ in cases if device == "ide"}
    assert ide == {*range(0x1F0, 0x1F8), 0x3F6, *range(0x170, 0x178), 0x376}
    uart = {(port, dlab) for device, port, dlab in cases if device == "uart"}
    assert uart == {(p, d) for base in (0x3F8, 0x2F8) for p in range(base, base + 8)
                    for d in (0, 1)}


def test_q4_answers_follow_the_read_back_tables():
    expected = dict(zip(inputs(Q4), answers(Q4), strict=True))
    for channel_base, ctrl in ((0x1F0, 0x3F6), (0x170, 0x376)):
        assert expected[("ide", channel_base + 7, 0)] == "shadow"  # status / command
        assert expected[("ide", channel_base + 1, 0)] == "shadow"  # error / features
        assert expected[("ide", channel_base + 2, 0)] == "readable"  # sector count
        assert expected[("ide", ctrl, 0)] == "shadow"  # alternate status / device control
    for base in (0x3F8, 0x2F8):
        assert expected[("uart", base, 0)] == "shadow" and expected[("uart", base, 1)] == (
            "readable")  # THR vs DLL
        assert expected[("uart", base + 2, 1)] == "shadow"  # FCR, whatever DLAB says
        assert expected[("uart", base + 5, 0)] == "nothing"  # LSR: writes do nothing
        assert expected[("uart", base + 7, 1)] == "readable"  # SCR
    assert set(expected.values()) == {"readable", "shadow", "nothing"}


# --- the whole chapter: blank, solution, hints -------------------------------------------------

def test_the_solution_scores_full_marks_and_a_blank_answer_zero():
    ns = solution_answers()
    answers_of = {"q1": ns["decode_ioreq"], "q2": replay_checks.replayed(ns["read_sector"]),
                  "q3": ns["buffered_write"], "q4": ns["readback"]}

    def blank(*args):
        raise NotImplementedError("replace this line with your answer")

    for question in chapter.CHAPTER.questions:
        assert verdict(question, answers_of[question.label]).passed, question.label
        cases = list(question.cases())
        answer = replay_checks.replayed(blank) if question.label == "q2" else blank
        got, _, _ = run(question, answer)
        result = judge(question, cases, reference_results(question, cases), got)
        assert result.lines[0].endswith(f" 0/{len(cases)} cases correct"), question.label
        assert "raise NotImplementedError" in result.text


def test_check_read_sector_replays_the_driver_in_a_self_check(capsys):
    checks = chapter
    checks.check_read_sector(solution_answers()["read_sector"])
    assert capsys.readouterr().out.startswith(f"q2 read_sector: {len(Q2.cases())}/")


@pytest.mark.parametrize("label, fn, hint", [
    ("q1", "q1_count_and_size_swapped", "count is the u32 at offset 16"),
    ("q1", "q1_flags_as_ints", "must be a bool"),
    ("q1", "q1_copy_called_mmio", '1 "COPY"'),
    ("q2", "q2_mid_and_high_swapped", "LBA 15:8 goes to 0x1F4"),
    ("q2", "q2_drive_in_bit_0", "bit 4 the drive"),
    ("q2", "q2_write_command", "READ SECTORS, 0x20"),
    ("q2", "q2_reads_before_drq", "DRQ (bit 3)"),
    ("q3", "q3_512_slots", "511 slots"),
    ("q3", "q3_full_one_slot_early", "fits only if"),
    ("q3", "q3_pointer_advances_by_one", "plus the slots used"),
    ("q4", "q4_command_reads_back", "a read returns status and a write sets command"),
    ("q4", "q4_ignores_dlab", "DLAB = 1"),
])
def test_the_hint_names_the_rule_the_mistake_breaks(label, fn, hint):
    module = importlib.import_module("mutants.device_model")
    found = [f for f in module.WRONG[label] if f.__name__ == fn]
    assert found, fn
    assert hint in verdict(chapter.CHAPTER.question(label), found[0]).text


# --- withheld reference functions ------------------------------------------------------------

WITHHELD = withheld_by(chapter.CHAPTER.questions)


def test_each_question_withholds_the_core_function_that_answers_it():
    names = {dotted_name(fn): label for fn, label in WITHHELD.items()}
    assert set(names.values()) == {"q1", "q2", "q3", "q4"}
    assert_withheld_are_the_cores(WITHHELD)
    assert names[dotted_name(decode)] == "q1"
    assert names[dotted_name(replay_checks.ide_read)] == "q2"
    assert names[dotted_name(BufferedIoreqPage.push)] == "q3"
    assert names[dotted_name(IdeController.readback_table)] == "q4"


def test_the_stubbed_package_withholds_them_and_the_replay_still_runs(tmp_path):
    copy = write_stubbed_package(tmp_path, WITHHELD)
    driver = answer_source("q2-answer")
    code = (
        "import numpy as np\n"
        "from vmmlib.course.checks import device_model as c, device_model_replay as r\n"
        "calls = (lambda: c.decode(bytes(32)),\n"
        "         lambda: c.BufferedIoreqPage(np.zeros(4096, np.uint8)).push(1, 0xA0000, 1, 0),\n"
        "         lambda: next(r.ide_read(0)),\n"
        "         lambda: c.IdeController(c.Clock(), c.PatternDisk(0)).readback_table(),\n"
        "         lambda: c.uart_readback_table(c.Uart16550(c.Clock())))\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except RuntimeError as error:\n"
        "        print(str(error).split(' is not available while grading ')[1][:2])\n"
        f"{driver}\n"
        "print(r.replay(read_sector(0x123, 1), busy=True)['disk_reads'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["q1", "q3", "q2", "q4", "q4", "[[1, 291]]"]


def test_q3_full_is_xen_s_rule():
    # xen/common/ioreq.c, ioreq_send_buffered: the ring is full when write_pointer -
    # read_pointer >= IOREQ_BUFFER_SLOT_NUM - qw (qw = 1 for an 8-byte write, which takes two
    # slots), and the slots written are write_pointer % 511 and (write_pointer + 1) % 511
    for used in range(505, chapter.SLOTS + 1):
        for size in (1, 2, 4, 8):
            qw = size == 8
            got = chapter.reference_ring(3, 3 + used, 0xA0000, size, 1)
            assert (got is None) == (used >= chapter.SLOTS - qw), (used, size)
            if got is not None:
                assert [s for s, _ in got["slots"]] == [(3 + used + i) % 511
                                                         for i in range(1 + qw)]
