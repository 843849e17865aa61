"""The chapter-01 checks accept a right answer and catch each plausible wrong one, with the
hint that fits the mistake."""

import pytest

from vmmlib.course.checks import intercepts as checks


# --- q1: does this access exit? -----------------------------------------------------------
def _bit(a, b, p):
    bitmap, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
    return bitmap[i // 8] >> (i % 8) & 1


def right_q1(a, b, port, size):
    return port + size > 0x10000 or any(_bit(a, b, p) for p in range(port, port + size))


def first_port_only(a, b, port, size):
    return port + size > 0x10000 or bool(_bit(a, b, port))


def no_wrap_rule(a, b, port, size):
    return any(_bit(a, b, p % 0x10000) for p in range(port, port + size))


def bitmap_a_only(a, b, port, size):
    def bit(p):  # forgets bitmap B: looks up every port in A, modulo 0x8000
        i = p % 0x8000
        return a[i // 8] >> (i % 8) & 1

    return port + size > 0x10000 or any(bit(p) for p in range(port, port + size))


def msb_first(a, b, port, size):
    def bit(p):
        bitmap, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
        return bitmap[i // 8] >> (7 - i % 8) & 1

    return port + size > 0x10000 or any(bit(p) for p in range(port, port + size))


def test_q1_accepts_the_right_answer(capsys):
    checks.check_vmx_exits(right_q1)
    assert capsys.readouterr().out == "q1 vmx_exits: 22/22 cases correct\n"


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (first_port_only, "ANY of their bits"),
        (no_wrap_rule, "past port 0xFFFF always exits"),
        (bitmap_a_only, "bitmap B starts at port 0x8000"),
        (msb_first, "least significant bit"),
    ],
)
def test_q1_catches(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        checks.check_vmx_exits(wrong)


def test_q1_blank_answer_fails():
    def blank(a, b, port, size):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        checks.check_vmx_exits(blank)


# --- q2: decode a qualification ------------------------------------------------------------
def decode(q, size_offset=1, in_bit=3):
    return {
        "port": q >> 16 & 0xFFFF,
        "size": (q & 7) + size_offset,
        "direction": "in" if q >> in_bit & 1 else "out",
        "string": bool(q & 16),
        "rep": bool(q & 32),
    }


def test_q2_accepts_the_right_answer(capsys):
    checks.check_decode_qualification(decode)
    assert "9/9 cases correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda q: decode(q, size_offset=0), "MINUS ONE"),
        (lambda q: decode(q, in_bit=0), "1 for IN"),
        (lambda q: {**decode(q), "port": q >> 15 & 0xFFFF}, "bits 31:16"),
        (lambda q: {"port": q >> 16}, "exactly the keys"),
        (lambda q: {**decode(q), "rep": bool(q & 16), "string": bool(q & 32)}, "bit 4 = string"),
    ],
)
def test_q2_catches(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        checks.check_decode_qualification(wrong)


# --- q3: MMIO, page fault or neither --------------------------------------------------------
def right_q3(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def by_virtual_address(table, mmio, vaddr, write):
    if table is not None and table.translate(vaddr, write) is None:
        return "page-fault"
    return "mmio" if mmio.find(vaddr) is not None else "neither"


def ignores_write_permission(table, mmio, vaddr, write):
    return right_q3(table, mmio, vaddr, False)


def test_q3_accepts_the_right_answer(capsys):
    checks.check_classify(right_q3)
    assert "9/9 cases correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (by_virtual_address, "translate with the guest's table first"),
        (ignores_write_permission, "forbids the write"),
    ],
)
def test_q3_catches(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        checks.check_classify(wrong)
