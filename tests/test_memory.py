"""Sparse machine memory (vmmlib/memory.py) and a domain's p2m (vmmlib/machine.py).

The p2m picture is the thread's and hardware-facts.md §11.1/§11.4: the guest believes its RAM
starts at guest-physical 0, the machine placed it elsewhere, and every access goes through a
guest-frame -> machine-frame table.
"""

import numpy as np
import pytest

from vmmlib.errors import BadAddressError, BadSizeError, ConfigError
from vmmlib.hw.memory import MIB, PAGE_SHIFT, PAGE_SIZE, MachineMemory
from vmmlib.xen.machine import Machine


def test_page_constants():
    assert PAGE_SIZE == 4096 == 1 << PAGE_SHIFT
    assert MIB == 1 << 20


# --- MachineMemory ----------------------------------------------------------------------------
def test_untouched_memory_reads_zero_without_allocating():
    mem = MachineMemory(512 * MIB)
    assert mem.frames == 512 * MIB // PAGE_SIZE
    assert mem.read(0x1234_5678, 8) == 0
    assert mem.read_bytes(300 * MIB, 3 * PAGE_SIZE) == bytes(3 * PAGE_SIZE)
    assert mem.touched_frames() == []
    assert mem.pages == {}


def test_only_touched_frames_are_allocated():
    mem = MachineMemory(512 * MIB)
    mem.write(0x10_0004, 4, 0xCAFEBABE)
    mem.write(0x1FFF_F000, 1, 0x5A)
    assert mem.touched_frames() == [0x100, 0x1FFFF]
    assert all(p.shape == (PAGE_SIZE,) and p.dtype == np.uint8 for p in mem.pages.values())
    assert mem.read(0x10_0004, 4) == 0xCAFEBABE
    assert mem.read(0x1FFF_F000, 1) == 0x5A
    mem.read(0x5000, 4)  # a read of another page still allocates nothing
    assert mem.touched_frames() == [0x100, 0x1FFFF]


def test_little_endian_layout():
    mem = MachineMemory(PAGE_SIZE)
    mem.write(0x10, 4, 0x11223344)
    assert mem.read_bytes(0x10, 4) == bytes([0x44, 0x33, 0x22, 0x11])
    assert mem.read(0x11, 2) == 0x2233


def test_write_masks_value_to_its_size():
    mem = MachineMemory(PAGE_SIZE)
    mem.write(0, 1, 0x1AB)
    assert mem.read(0, 2) == 0xAB


def test_cross_page_write_and_read():
    mem = MachineMemory(4 * PAGE_SIZE)
    mem.write(PAGE_SIZE - 3, 8, 0x0807060504030201)
    assert mem.touched_frames() == [0, 1]
    assert mem.read_bytes(PAGE_SIZE - 3, 3) == b"\x01\x02\x03"
    assert mem.read_bytes(PAGE_SIZE, 5) == b"\x04\x05\x06\x07\x08"
    assert mem.read(PAGE_SIZE - 3, 8) == 0x0807060504030201


def test_cross_several_pages_bytes():
    mem = MachineMemory(4 * PAGE_SIZE)
    blob = bytes(range(256)) * 40  # 10240 bytes: spans three pages
    mem.write_bytes(100, blob)
    assert mem.touched_frames() == [0, 1, 2]
    assert mem.read_bytes(100, len(blob)) == blob
    assert mem.read_bytes(99, 1) == b"\0"


@pytest.mark.parametrize(
    "addr, length", [(4 * PAGE_SIZE, 1), (4 * PAGE_SIZE - 1, 2), (-1, 1), (1 << 40, 8)]
)
def test_out_of_range_is_bad_address(addr, length):
    mem = MachineMemory(4 * PAGE_SIZE)
    with pytest.raises(BadAddressError):
        mem.read_bytes(addr, length)
    with pytest.raises(BadAddressError):
        mem.write_bytes(addr, bytes(length))
    assert mem.touched_frames() == []  # nothing half-written


def test_last_byte_is_in_range():
    mem = MachineMemory(4 * PAGE_SIZE)
    mem.write(4 * PAGE_SIZE - 1, 1, 0x77)
    assert mem.read(4 * PAGE_SIZE - 1, 1) == 0x77


@pytest.mark.parametrize("size", [0, 4095, -PAGE_SIZE])
def test_memory_size_must_be_whole_pages(size):
    with pytest.raises(BadAddressError):
        MachineMemory(size)


@pytest.mark.parametrize("size", [3, 16, 0])
def test_bad_access_size(size):
    mem = MachineMemory(PAGE_SIZE)
    with pytest.raises(BadSizeError):
        mem.read(0, size)
    with pytest.raises(BadSizeError):
        mem.write(0, size, 0)


# --- Domain p2m -------------------------------------------------------------------------------
def test_domain_at_256_mib_has_guest_frame_0_at_machine_frame_0x10000():
    # hardware-facts.md §11.1: the guest thinks its RAM is 0-256 MiB, the machine put it at
    # 256-512 MiB
    m = Machine(ram=512 * MIB)
    dom = m.add_domain("hvm", 256 * MIB, base=256 * MIB)
    assert dom.gfn_to_mfn(0) == 0x10000
    assert dom.gfn_to_mfn(0xFFFF) == 0x1FFFF
    assert dom.gpa_to_maddr(0) == 256 * MIB
    assert dom.gpa_to_maddr(0x1234) == 0x1000_1234
    assert len(dom.p2m) == 0x10000


def test_guest_ram_writes_land_at_the_machine_address():
    m = Machine(ram=512 * MIB)
    dom = m.add_domain("hvm", 256 * MIB, base=256 * MIB)
    dom.write_ram(0x7C00, 2, 0xAA55)
    assert m.memory.read(0x1000_7C00, 2) == 0xAA55
    assert m.memory.read(0x7C00, 2) == 0  # machine address 0x7C00 is not the guest's
    assert m.memory.touched_frames() == [0x10007]
    assert dom.read_ram(0x7C00, 2) == 0xAA55


def test_gpa_translation_follows_the_p2m_table():
    # hardware-facts.md §11.4: contiguous guest frames need not be contiguous machine frames
    m = Machine(ram=64 * MIB)
    dom = m.add_domain("pv", 16 * MIB, kind="pv")
    dom.p2m[1], dom.p2m[2] = 2, 1
    assert dom.gpa_to_maddr(0x1008) == 0x2008
    dom.write_ram(0x1008, 4, 0x01020304)
    assert m.memory.read(0x2008, 4) == 0x01020304


def test_access_crossing_guest_pages_is_translated_page_by_page():
    # hardware-facts.md §11.4: consecutive PFNs may map to scattered MFNs, so an access that
    # crosses a guest page must look up the second frame in the p2m too
    m = Machine(ram=64 * MIB)
    dom = m.add_domain("pv", 16 * MIB, kind="pv")
    dom.p2m[1] = 0x2000  # guest frame 1 now lives at machine frame 0x2000 (32 MiB)
    dom.write_ram(0x0FFE, 4, 0xAABBCCDD)
    assert m.memory.read(0x0FFE, 2) == 0xCCDD
    assert m.memory.read(0x200_0000, 2) == 0xAABB
    assert m.memory.read(0x1000, 2) == 0  # the machine frame that is NOT the guest's frame 1
    assert dom.read_ram(0x0FFE, 4) == 0xAABBCCDD


def test_access_past_the_end_of_guest_ram_cannot_reach_the_next_domain():
    # hardware-facts.md §11.1: landing in another guest's memory is an isolation failure
    m = Machine(ram=64 * MIB)
    a = m.add_domain("a", 16 * MIB)
    b = m.add_domain("b", 16 * MIB)
    assert b.gpa_to_maddr(0) == 16 * MIB  # b's RAM starts right after a's
    with pytest.raises(BadAddressError):
        a.write_ram(16 * MIB - 2, 4, 0xAABBCCDD)
    assert m.memory.read(16 * MIB - 2, 2) == 0  # no half-write either
    assert b.read_ram(0, 2) == 0
    with pytest.raises(BadAddressError):
        a.read_ram(16 * MIB - 4, 8)


def test_guest_frame_outside_ram_is_bad_address():
    m = Machine(ram=64 * MIB)
    dom = m.add_domain("d", 16 * MIB)
    with pytest.raises(BadAddressError):
        dom.gfn_to_mfn(16 * MIB >> PAGE_SHIFT)
    with pytest.raises(BadAddressError):
        dom.gfn_to_mfn(-1)
    with pytest.raises(BadAddressError):
        dom.read_ram(16 * MIB, 1)


def test_domains_are_placed_one_after_another():
    m = Machine(ram=512 * MIB)
    d0 = m.add_domain("dom0", 128 * MIB)
    d1 = m.add_domain("hvm", 256 * MIB)
    assert (d0.machine_base, d1.machine_base) == (0, 128 * MIB)
    assert (d0.domid, d1.domid) == (0, 1)


@pytest.mark.parametrize(
    "base, size",
    [
        (0, 128 * MIB + PAGE_SIZE),  # its last page is the first page of "first"
        (64 * MIB, 128 * MIB),
        (128 * MIB, 4 * MIB),  # same base
        (127 * MIB, 2 * MIB),
        (255 * MIB, 128 * MIB),  # starts on the last MiB of "first"
        (64 * MIB, 256 * MIB),  # contains "first"
    ],
)
def test_overlapping_domain_ram_is_rejected(base, size):
    m = Machine(ram=512 * MIB)
    m.add_domain("first", 128 * MIB, base=128 * MIB)
    with pytest.raises(ConfigError, match="overlaps"):
        m.add_domain("second", size, base=base)
    assert len(m.domains) == 1


def test_touching_domains_do_not_overlap():
    m = Machine(ram=512 * MIB)
    m.add_domain("first", 128 * MIB, base=128 * MIB)
    m.add_domain("below", 128 * MIB, base=0)
    m.add_domain("above", 128 * MIB, base=256 * MIB)
    assert len(m.domains) == 3


def test_domain_must_fit_in_machine_memory():
    m = Machine(ram=64 * MIB)
    with pytest.raises(BadAddressError):
        m.add_domain("big", 64 * MIB, base=PAGE_SIZE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ram": 0},
        {"ram": 1000},
        {"ram": 4 * MIB, "base": 100},
        {"ram": 4 * MIB, "kind": "pvh"},
        {"ram": 4 * MIB, "vendor": "arm"},
    ],
)
def test_bad_domain_config(kwargs):
    with pytest.raises(ConfigError):
        Machine(ram=64 * MIB).add_domain("bad", **kwargs)


def test_a_shared_page_is_the_frames_own_bytes_allocated_on_first_use():


    mem = MachineMemory(16 * PAGE_SIZE)
    page = mem.page(3)
    assert page.shape == (PAGE_SIZE,) and not page.any()
    page[8:12] = [1, 2, 3, 4]  # a write through the view is a write to RAM
    assert mem.read(3 * PAGE_SIZE + 8, 4) == 0x04030201
    assert mem.page(3) is page
    for bad in (-1, 16, 1.0):
        with pytest.raises(BadAddressError):
            mem.page(bad)
