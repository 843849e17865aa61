"""Checks for chapter 01, "Intercepts" (solutions/01-intercepts.ipynb).

Each case list is built to catch a plausible wrong answer: checking only the first port of
a multi-byte access, forgetting the wrap-around rule, indexing bitmap B from port 0, taking
the size field as the size, swapping IN and OUT, testing the virtual instead of the
guest-physical address. Expected answers come from the core's reference implementation,
which the unit tests pin to the Intel SDM / AMD APM (hardware-facts.md §1-2).
"""

from __future__ import annotations

from collections.abc import Callable

from ...cpu.exits import PortAccess, vmx_io_qualification
from ...cpu.iobitmap import VmxIoBitmaps
from ...cpu.paging import PageTable
from ...hw.bus import MemoryBus
from ...xen.shadow import classify_fault
from . import Case, run_cases

FIRST_ONLY = "an access of s bytes touches ports p ... p+s-1; it exits if ANY of their bits is 1"
WRAP = "an access that runs past port 0xFFFF always exits on VMX, whatever the bits say"
B_OFFSET = (
    "bitmap B starts at port 0x8000: port p is bit (p - 0x8000) % 8 of byte (p - 0x8000) // 8"
)
BIT_ORDER = "port p is bit p % 8 (counting from the least significant bit) of byte p // 8"
PASS_THROUGH = "a clear bit means the guest reaches the port directly: no exit"


def _bitmaps(*ports: int, xen: bool = False) -> VmxIoBitmaps:
    bm = VmxIoBitmaps.xen_default() if xen else VmxIoBitmaps()
    for p in ports:
        bm.intercept(p)
    return bm


def vmx_exit_cases() -> list[Case]:
    """(bitmaps, port, size) cases for q1, expected answers from ``VmxIoBitmaps.exits``."""
    plan = [
        (
            "COM1 only",
            _bitmaps(0x3F8),
            [
                (0x3F8, 1, BIT_ORDER),
                (0x3F9, 1, PASS_THROUGH),
                (0x3F7, 1, PASS_THROUGH),
                (0x3F7, 2, FIRST_ONLY),
                (0x3F5, 4, FIRST_ONLY),
                (0x3F4, 4, FIRST_ONLY),
            ],
        ),
        (
            "port 0x8000 only",
            _bitmaps(0x8000),
            [
                (0x7FFF, 1, PASS_THROUGH),
                (0x7FFE, 4, FIRST_ONLY),
                (0x8000, 1, B_OFFSET),
                (0x0000, 1, B_OFFSET),
            ],
        ),
        (
            "port 0xFFF1 only",
            _bitmaps(0xFFF1),
            [
                (0xFFF1, 1, B_OFFSET),
                (0xFFF0, 1, BIT_ORDER),
                (0x7FF1, 1, B_OFFSET),
            ],
        ),
        (
            "nothing intercepted",
            _bitmaps(),
            [
                (0xFFFF, 1, PASS_THROUGH),
                (0xFFFF, 2, WRAP),
                (0xFFFE, 4, WRAP),
                (0xFFFC, 4, WRAP),
            ],
        ),
        (
            "Xen default",
            _bitmaps(xen=True),
            [
                (0x80, 1, PASS_THROUGH),
                (0xED, 1, PASS_THROUGH),
                (0x80, 2, FIRST_ONLY),
                (0x7F, 2, FIRST_ONLY),
                (0x3F8, 1, BIT_ORDER),
            ],
        ),
    ]
    cases = []
    for name, bm, accesses in plan:
        a, b = bytes(bm.a), bytes(bm.b)
        for port, size, hint in accesses:
            label = f"{name}, {size}-byte access at {port:#06x}"
            cases.append(Case(label, (a, b, port, size), bm.exits(port, size), hint))
    # single ports first, then multi-byte accesses, then wrapping ones: the first case an
    # answer gets wrong then points at the rule it breaks
    cases.sort(key=lambda c: (c.args[3] > 1, c.args[2] + c.args[3] > 0x10000))
    return cases


def check_vmx_exits(fn: Callable[[bytes, bytes, int, int], bool]) -> None:
    """q1: does an access exit, given raw I/O bitmaps A and B?"""
    run_cases("q1 vmx_exits", lambda *a: bool(fn(*a)), vmx_exit_cases())


def _decoded(acc: PortAccess) -> dict:
    return {
        "port": acc.port,
        "size": acc.size,
        "direction": "in" if acc.is_in else "out",
        "string": acc.string,
        "rep": acc.rep,
    }


QUALIFICATION_HINTS = {
    "port": "the port is bits 31:16",
    "size": "bits 2:0 hold the size MINUS ONE (0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes)",
    "direction": "bit 3 is 1 for IN, 0 for OUT",
    "string": "bit 4 = string instruction, bit 5 = REP prefix",
    "rep": "bit 4 = string instruction, bit 5 = REP prefix",
}


def _qualification_hint(expected: dict) -> Callable[[object], str]:
    """Name the first field the answer got wrong."""

    def hint(got: object) -> str:
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"return a dict with exactly the keys {sorted(expected)}"
        wrong = next(key for key in expected if got[key] != expected[key])
        return QUALIFICATION_HINTS[wrong]

    return hint


def qualification_cases() -> list[Case]:
    """Exit qualifications for q2 with the decoded dict expected."""
    accesses = [
        PortAccess(0x3F8, 1, is_in=False),
        PortAccess(0x3FD, 1, is_in=True),
        PortAccess(0x1F0, 2, is_in=True),
        PortAccess(0xCFC, 4, is_in=False),
        PortAccess(0x1F0, 2, True, string=True, rep=True),
        PortAccess(0x3F8, 1, False, string=True),
        PortAccess(0x60, 1, True, imm=True),
        PortAccess(0xFFFF, 4, True),
        PortAccess(0x8001, 1, False, imm=True),
    ]
    cases = []
    for acc in accesses:
        q = vmx_io_qualification(acc)
        expected = _decoded(acc)
        cases.append(Case(f"qualification {q:#x}", (q,), expected, _qualification_hint(expected)))
    return cases


def check_decode_qualification(fn: Callable[[int], dict]) -> None:
    """q2: decode a VMX I/O exit qualification."""
    run_cases("q2 decode_qualification", fn, qualification_cases())


MMIO_BASE, MMIO_SIZE = 0xB8000, 0x8000


class _Nothing:
    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass


def fault_cases() -> list[Case]:
    """(page table, MMIO bus, vaddr, write) cases for q3."""
    mmio = MemoryBus("guest MMIO")
    mmio.claim(MMIO_BASE, MMIO_SIZE, _Nothing(), "VGA text")
    pt = PageTable()
    pt.map(0x400000, MMIO_BASE)  # a kernel mapping of the text buffer
    pt.map(0x401000, 0x200000)  # ordinary RAM
    pt.map(0x402000, MMIO_BASE + 0x1000, writable=False)
    pt.map(MMIO_BASE, 0x300000)  # virtual address that LOOKS like MMIO, mapped to RAM
    pt.map(0x403000, 0x1000, present=False)
    plan = [
        (
            None,
            0xB8000,
            True,
            "paging off, store into the text buffer",
            "with paging off the address IS guest-physical: look it up on the MMIO bus",
        ),
        (
            None,
            0x200000,
            False,
            "paging off, load from RAM",
            "RAM that the shadow had not mapped yet is neither: fill the shadow and retry",
        ),
        (
            pt,
            0x400010,
            True,
            "store through a mapping of the text buffer",
            "translate with the guest's table first, then look up the guest-physical address",
        ),
        (pt, 0x401000, False, "load from mapped RAM", "mapped RAM is neither MMIO nor a #PF"),
        (
            pt,
            0x500000,
            False,
            "load from an unmapped page",
            "the guest's own entry is not present: a real #PF for the guest",
        ),
        (
            pt,
            0x403000,
            False,
            "load through a not-present entry",
            "the guest's own entry is not present: a real #PF for the guest",
        ),
        (
            pt,
            0x402000,
            True,
            "store through a read-only mapping of MMIO",
            "the guest's table forbids the write: the guest gets the #PF before any emulation",
        ),
        (
            pt,
            0x402000,
            False,
            "load through a read-only mapping of MMIO",
            "reading through a read-only entry is allowed: this is MMIO",
        ),
        (
            pt,
            0xB8000,
            True,
            "store to virtual 0xB8000, mapped to RAM",
            "classify by the GUEST-PHYSICAL address the guest's table gives, not the virtual one",
        ),
    ]
    return [
        Case(
            label,
            (table, mmio, vaddr, write),
            classify_fault(table, mmio, vaddr, write).value,
            hint,
        )
        for table, vaddr, write, label, hint in plan
    ]


def check_classify(fn: Callable[[PageTable | None, MemoryBus, int, bool], str]) -> None:
    """q3: classify a shadow #PF as "mmio", "page-fault" or "neither"."""
    run_cases("q3 classify", fn, fault_cases())
