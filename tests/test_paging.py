"""Guest page tables and the shadow-paging MMIO decision (vmmlib/paging.py).

PTE bits and the #PF error code are the x86 ones (Intel SDM vol. 3A, "Paging": 4-KByte page
table entry format, P bit 0, R/W bit 1, U/S bit 2, frame in bits 51:12 with MAXPHYADDR 52;
"Page-Fault Exceptions" for the error code). The three outcomes of a shadow #PF follow the
technique described in the module docstring and hardware-facts.md §1.4 (the last paragraph:
without EPT, MMIO arrives as a #PF the hypervisor tells apart from a real one).
"""

import pytest

from vmmlib.cpu.paging import (
    PTE_FRAME_MASK,
    PTE_PRESENT,
    PTE_USER,
    PTE_WRITABLE,
    PageTable,
    make_pte,
)
from vmmlib.devices.vga_text import TEXT_BASE, TEXT_SIZE, VgaTextBuffer
from vmmlib.errors import ConfigError
from vmmlib.hw.bus import MemoryBus
from vmmlib.xen.shadow import FaultKind, classify_fault


def test_pte_bit_positions():
    # SDM vol. 3A, 4-KByte PTE: P bit 0, R/W bit 1, U/S bit 2
    assert (PTE_PRESENT, PTE_WRITABLE, PTE_USER) == (1, 2, 4)


def test_pte_frame_field_is_bits_51_to_12():
    # SDM vol. 3A: physical address of the 4 KiB page in bits (MAXPHYADDR-1):12, 52 at most
    assert PTE_FRAME_MASK == 0x000F_FFFF_FFFF_F000
    assert make_pte(0xFFFF_FFFF_FF) & PTE_FRAME_MASK == 0xFFFF_FFFF_FF << 12


@pytest.mark.parametrize(
    "kwargs, low",
    [
        ({}, 0b011),
        ({"writable": False}, 0b001),
        ({"user": True}, 0b111),
        ({"present": False}, 0b010),
        ({"present": False, "writable": False, "user": True}, 0b100),
    ],
)
def test_make_pte(kwargs, low):
    pte = make_pte(0x12345, **kwargs)
    assert pte == 0x1234_5000 | low


def test_map_writes_a_pte_for_the_page():
    pt = PageTable()
    pt.map(0x40_0000, 0xB8000, writable=False, user=True)
    assert pt.pte(0x40_0000) == 0xB8000 | PTE_PRESENT | PTE_USER
    assert pt.pte(0x40_0FFF) == pt.pte(0x40_0000)  # same page
    assert pt.pte(0x40_1000) == 0  # absent entry reads as all zero
    assert pt.entries == {0x400: 0xB8000 | 0b101}


def test_map_requires_page_alignment():
    with pytest.raises(ConfigError):
        PageTable().map(0x1001, 0x2000)
    with pytest.raises(ConfigError):
        PageTable().map(0x1000, 0x2800)


def test_translate_keeps_the_offset_and_checks_permissions():
    pt = PageTable()
    pt.map(0x5000, 0x9000, writable=False)
    assert pt.translate(0x5ABC) == 0x9ABC
    assert pt.translate(0x5ABC, write=True) is None  # read-only
    assert pt.translate(0x5ABC, user=True) is None  # supervisor page
    assert pt.translate(0x6000) is None  # not mapped
    pt.map(0x6000, 0x0, present=False)
    assert pt.translate(0x6000) is None  # mapped but not present
    pt.map(0x7000, 0x0)
    assert pt.translate(0x7004) == 0x4  # guest-physical page 0 is a real answer


@pytest.mark.parametrize(
    "mapping, write, user, code",
    [
        (None, False, False, 0b000),  # not present, read
        (None, True, False, 0b010),  # not present, write
        ({"writable": False}, True, False, 0b011),  # protection: write to read-only
        ({"user": False}, False, True, 0b101),  # protection: user read of supervisor page
        (None, True, True, 0b110),  # not present, user write
    ],
)
def test_error_code_for_the_guest(mapping, write, user, code):
    # SDM vol. 3A "Page-Fault Exceptions": P = 0 for a not-present page, 1 for a protection
    # violation; W/R = write; U/S = user mode
    pt = PageTable()
    if mapping is not None:
        pt.map(0x3000, 0x8000, **mapping)
    assert pt.translate(0x3010, write, user) is None
    assert pt.error_code(0x3010, write, user) == code


# --- classify_fault -------------------------------------------------------------------------
def vga_bus() -> MemoryBus:
    # hardware-facts.md §10: colour text buffer at 0xB8000-0xBFFFF
    bus = MemoryBus()
    bus.claim(TEXT_BASE, TEXT_SIZE, VgaTextBuffer(), "vga")
    return bus


@pytest.mark.parametrize(
    "vaddr, kind",
    [
        (0xB8000, FaultKind.MMIO),
        (0xBFFFF, FaultKind.MMIO),
        (0xB7FFF, FaultKind.HIDDEN),
        (0xC0000, FaultKind.HIDDEN),
        (0x7C00, FaultKind.HIDDEN),
    ],
)
def test_classify_with_paging_off(vaddr, kind):
    # paging off: virtual = guest-physical, so only the MMIO ranges decide; no real #PF exists
    bus = vga_bus()
    assert classify_fault(None, bus, vaddr) is kind
    assert classify_fault(None, bus, vaddr, write=True) is kind


def test_classify_with_paging_on():
    bus = vga_bus()
    pt = PageTable()
    pt.map(0xC000_0000, 0xB8000)  # the guest maps its screen high
    pt.map(0x0040_0000, 0x0010_0000)  # and some RAM
    pt.map(0x0050_0000, 0x0020_0000, writable=False)  # read-only RAM
    pt.map(0x0060_0000, 0xB9000, writable=False)  # read-only view of the screen
    pt.map(0x0070_0000, 0xB8000, present=False)  # a not-present entry pointing at MMIO
    assert classify_fault(pt, bus, 0xC000_0010) is FaultKind.MMIO
    assert classify_fault(pt, bus, 0xC000_0010, write=True) is FaultKind.MMIO
    assert classify_fault(pt, bus, 0x0040_0123, write=True) is FaultKind.HIDDEN
    assert classify_fault(pt, bus, 0x0050_0000) is FaultKind.HIDDEN
    assert classify_fault(pt, bus, 0x0060_0000) is FaultKind.MMIO
    # the guest's own table decides first: these are real page faults, not MMIO
    assert classify_fault(pt, bus, 0x0080_0000) is FaultKind.PAGE_FAULT  # not mapped
    assert classify_fault(pt, bus, 0x0070_0000) is FaultKind.PAGE_FAULT  # not present
    assert classify_fault(pt, bus, 0x0050_0000, write=True) is FaultKind.PAGE_FAULT
    assert classify_fault(pt, bus, 0x0060_0000, write=True) is FaultKind.PAGE_FAULT
    assert classify_fault(pt, bus, 0x0040_0000, user=True) is FaultKind.PAGE_FAULT
    # identity address 0xB8000 is not mapped by this guest: a real fault, though it is MMIO
    # when paging is off
    assert classify_fault(pt, bus, 0xB8000) is FaultKind.PAGE_FAULT
    assert classify_fault(None, bus, 0xB8000) is FaultKind.MMIO


def test_fault_kind_values():
    assert {k.value for k in FaultKind} == {"mmio", "page-fault", "neither"}
