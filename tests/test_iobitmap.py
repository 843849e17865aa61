"""Intel VMX I/O bitmaps and the AMD SVM IOPM (vmmlib/iobitmap.py), bit for bit.

Every rule is from shared/reference/hardware-facts.md §1.1 (VMX) and §2.1 (SVM).
"""

import numpy as np
import pytest

from vmmlib.cpu.iobitmap import (
    CPU_BASED_ACTIVATE_IO_BITMAP,
    CPU_BASED_UNCOND_IO_EXITING,
    SVM_IOPM_BITS,
    SVM_IOPM_SIZE,
    VMCB_IOPM_BASE_PA,
    VMCS_IO_BITMAP_A,
    VMCS_IO_BITMAP_B,
    XEN_PASSTHROUGH_PORTS,
    SvmIopm,
    VmxIoBitmaps,
)
from vmmlib.errors import BadPortError, BadSizeError, ConfigError


# --- VMX: controls and encodings ---------------------------------------------------------------
def test_vmx_control_bits():
    # hardware-facts.md §1.1: "unconditional I/O exiting" = bit 24, "use I/O bitmaps" = bit 25
    assert CPU_BASED_UNCOND_IO_EXITING == 0x0100_0000 == 1 << 24
    assert CPU_BASED_ACTIVATE_IO_BITMAP == 0x0200_0000 == 1 << 25


def test_vmx_bitmap_field_encodings():
    # hardware-facts.md §1.1: VMCS encodings of the I/O bitmap A / B addresses
    assert VMCS_IO_BITMAP_A == 0x2000
    assert VMCS_IO_BITMAP_B == 0x2002


def test_vmx_controls_word_reflects_the_flags():
    # hardware-facts.md §1.1: the two flags are bits of one 32-bit control word
    assert VmxIoBitmaps().procbased_ctls == 0x0200_0000
    assert VmxIoBitmaps(use_io_bitmaps=False).procbased_ctls == 0
    assert (
        VmxIoBitmaps(use_io_bitmaps=False, unconditional_io_exiting=True).procbased_ctls
        == 0x0100_0000
    )
    both = VmxIoBitmaps(unconditional_io_exiting=True)
    assert both.procbased_ctls == 0x0300_0000
    assert both.use_io_bitmaps and both.unconditional_io_exiting


def test_vmx_bitmaps_are_two_4k_pages():
    # hardware-facts.md §1.1: each bitmap is 4 KiB (32768 bits)
    bm = VmxIoBitmaps()
    assert len(bm.a) == 4096 and len(bm.b) == 4096
    assert len(bm.bits) == 8192
    assert bm.as_array().shape == (0x10000,)


# --- VMX: the decision table --------------------------------------------------------------------
@pytest.mark.parametrize(
    "uncond, use_bitmaps, set_bit_exits, clear_bit_exits",
    [
        (False, False, False, False),  # neither control: never exits
        (True, False, True, True),  # unconditional I/O exiting alone: always exits
        (False, True, True, False),  # bitmaps decide
        (True, True, True, False),  # bitmaps decide; unconditional exiting is ignored
    ],
)
def test_vmx_decision_table(uncond, use_bitmaps, set_bit_exits, clear_bit_exits):
    # hardware-facts.md §1.1, decision rule table
    bm = VmxIoBitmaps(use_io_bitmaps=use_bitmaps, unconditional_io_exiting=uncond)
    bm.intercept(0x3F8)
    assert bm.exits(0x3F8, 1) is set_bit_exits
    assert bm.exits(0x60, 1) is clear_bit_exits


def test_vmx_decision_follows_a_change_to_the_control_word():
    # hardware-facts.md §1.1: the controls, not the constructor flags, are what the CPU reads
    bm = VmxIoBitmaps()
    assert not bm.exits(0x60, 1)
    bm.procbased_ctls = CPU_BASED_UNCOND_IO_EXITING
    assert bm.exits(0x60, 1)
    bm.procbased_ctls |= CPU_BASED_ACTIVATE_IO_BITMAP
    assert not bm.exits(0x60, 1)


# --- VMX: bitmap A and B bit positions ----------------------------------------------------------
@pytest.mark.parametrize(
    "port, page, byte, bit",
    [
        (0x0000, "a", 0x000, 0),
        (0x0080, "a", 0x010, 0),
        (0x00ED, "a", 0x01D, 5),
        (0x03F8, "a", 0x07F, 0),
        (0x03FF, "a", 0x07F, 7),
        (0x7FFF, "a", 0xFFF, 7),
        (0x8000, "b", 0x000, 0),
        (0x8001, "b", 0x000, 1),
        (0xCFC, "a", 0x19F, 4),
        (0xC0DE, "b", 0x81B, 6),
        (0xFFFF, "b", 0xFFF, 7),
    ],
)
def test_vmx_port_bit_position(port, page, byte, bit):
    # hardware-facts.md §1.1: port p is bit (p mod 8) of byte (p mod 0x8000) / 8 of A or B
    assert byte == (port % 0x8000) // 8 and bit == port % 8
    bm = VmxIoBitmaps()
    bm.intercept(port)
    view, other = (bm.a, bm.b) if page == "a" else (bm.b, bm.a)
    assert view[byte] == 1 << bit
    assert sum(view) == 1 << bit  # exactly one bit set in this page
    assert not any(other)
    assert bm.bit(port) == 1
    bm.allow(port)
    assert not any(bm.bits)


@pytest.mark.parametrize("page, port_base", [("a", 0x0000), ("b", 0x8000)])
def test_vmx_cpu_reads_the_bitmap_pages_themselves(page, port_base):
    # hardware-facts.md §1.1: the CPU consults the bitmap memory; writing a byte of page A/B
    # directly (as a VMM does) changes which ports exit
    bm = VmxIoBitmaps()
    view = bm.a if page == "a" else bm.b
    view[0x7F] = 0b0000_0100  # byte 0x7F, bit 2 -> port base + 0x3FA
    assert bm.exits(port_base + 0x3FA, 1)
    assert not bm.exits(port_base + 0x3F9, 1)
    assert not bm.exits(port_base + 0x3FB, 1)
    assert bm.as_array()[port_base + 0x3FA] == 1


def test_vmx_as_array_matches_bits():
    bm = VmxIoBitmaps()
    for p in (0, 7, 0x80, 0x7FFF, 0x8000, 0xFFFF):
        bm.intercept(p)
    arr = bm.as_array()
    assert np.flatnonzero(arr).tolist() == [0, 7, 0x80, 0x7FFF, 0x8000, 0xFFFF]


def test_vmx_intercept_range():
    bm = VmxIoBitmaps()
    bm.intercept(0x1F0, 0x1F7)  # hardware-facts.md §12: IDE primary 0x1F0-0x1F7
    assert np.flatnonzero(bm.as_array()).tolist() == list(range(0x1F0, 0x1F8))
    assert bm.a[0x1F0 // 8] == 0xFF
    bm.allow(0x1F2, 0x1F3)
    assert bm.a[0x1F0 // 8] == 0b1111_0011


# --- VMX: multi-byte and wrap-around ------------------------------------------------------------
def test_vmx_four_byte_in_at_7ffe_checks_a_and_b():
    # hardware-facts.md §1.1: a 4-byte IN at 0x7FFE checks A bits 0x7FFE, 0x7FFF and
    # B bits 0x8000, 0x8001; any 1 exits
    bm = VmxIoBitmaps()
    assert not bm.exits(0x7FFE, 4)
    for port, view, byte, bit in [
        (0x7FFE, "a", 0xFFF, 6),
        (0x7FFF, "a", 0xFFF, 7),
        (0x8000, "b", 0x000, 0),
        (0x8001, "b", 0x000, 1),
    ]:
        bm = VmxIoBitmaps()
        (bm.a if view == "a" else bm.b)[byte] = 1 << bit
        assert bm.exits(0x7FFE, 4), hex(port)
        assert bm.exits(port, 1)
    bm = VmxIoBitmaps()
    bm.b[0] = 1 << 2  # port 0x8002: just beyond the access
    assert not bm.exits(0x7FFE, 4)
    bm = VmxIoBitmaps()
    bm.a[0xFFF] = 1 << 5  # port 0x7FFD: just before it
    assert not bm.exits(0x7FFE, 4)


@pytest.mark.parametrize("size, later, shorter", [(2, 1, 1), (4, 1, 1), (4, 2, 2), (4, 3, 2)])
def test_vmx_access_exits_if_a_later_byte_is_intercepted(size, later, shorter):
    # hardware-facts.md §1.1: intercepted although the bit of its first port is 0
    bm = VmxIoBitmaps()
    bm.intercept(0x3F8 + later)
    assert bm.bit(0x3F8) == 0
    assert bm.exits(0x3F8, size)
    assert not bm.exits(0x3F8, shorter)  # a shorter access that stops before it does not


@pytest.mark.parametrize("port, size", [(0xFFFF, 2), (0xFFFF, 4), (0xFFFE, 4), (0xFFFD, 4)])
def test_vmx_wrap_around_always_exits(port, size):
    # hardware-facts.md §1.1: an access that wraps past 0xFFFF always exits, bits regardless
    bm = VmxIoBitmaps()
    assert not any(bm.bits)
    assert bm.exits(port, size)


@pytest.mark.parametrize("port, size", [(0xFFFF, 1), (0xFFFE, 2), (0xFFFC, 4)])
def test_vmx_access_ending_at_ffff_does_not_wrap(port, size):
    # hardware-facts.md §1.1: only p + s - 1 > 0xFFFF wraps
    assert not VmxIoBitmaps().exits(port, size)


def test_vmx_wrap_rule_needs_bitmaps_in_use():
    # hardware-facts.md §1.1: with neither control set nothing exits, wrap or not
    assert not VmxIoBitmaps(use_io_bitmaps=False).exits(0xFFFF, 4)


# --- VMX: Xen's default -------------------------------------------------------------------------
def test_xen_default_intercepts_everything_but_0x80_and_0xed():
    # hardware-facts.md §1.1 and §12: all ones except the I/O-delay ports 0x80 and 0xED
    assert XEN_PASSTHROUGH_PORTS == (0x80, 0xED)
    bm = VmxIoBitmaps.xen_default()
    assert bm.use_io_bitmaps
    arr = bm.as_array()
    assert np.flatnonzero(arr == 0).tolist() == [0x80, 0xED]
    assert bm.a[0x10] == 0xFE and bm.a[0x1D] == 0xDF
    assert all(b == 0xFF for i, b in enumerate(bm.a) if i not in (0x10, 0x1D))
    assert all(b == 0xFF for b in bm.b)
    assert not bm.exits(0x80, 1) and not bm.exits(0xED, 1)
    assert bm.exits(0x80, 2)  # 0x81 is intercepted
    assert bm.exits(0x7F, 2)
    assert bm.exits(0x3F8, 1) and bm.exits(0xFFFF, 1)


# --- argument checking -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [VmxIoBitmaps, SvmIopm])
def test_exits_rejects_bad_port_and_size(cls):
    m = cls()
    with pytest.raises(BadPortError):
        m.exits(0x10000, 1)
    with pytest.raises(BadPortError):
        m.exits(-1, 1)
    with pytest.raises(BadSizeError):
        m.exits(0x60, 3)
    with pytest.raises(BadSizeError):
        m.exits(0x60, 8)


def test_vmx_bit_range_is_64k():
    bm = VmxIoBitmaps()
    with pytest.raises(BadPortError):
        bm.intercept(0x10000)
    with pytest.raises(BadPortError):
        bm.bit(0x10000)
    with pytest.raises(ConfigError):
        bm.intercept(0x3FF, 0x3F8)  # reversed range


# --- SVM IOPM ----------------------------------------------------------------------------------
def test_svm_iopm_is_12k_with_64k_plus_3_bits():
    # hardware-facts.md §2.1: 12 KiB, 64K + 3 meaningful bits, base at VMCB offset 0x040
    assert SVM_IOPM_SIZE == 12 * 1024
    assert SVM_IOPM_BITS == 0x10003
    assert VMCB_IOPM_BASE_PA == 0x040
    iopm = SvmIopm()
    assert len(iopm.bits) == 12 * 1024
    assert iopm.as_array().shape == (0x10003,)
    iopm.intercept(0x10002)  # the last meaningful bit exists ...
    assert iopm.bits[0x2000] == 0b100  # ... as bit 2 of the first byte of the third page
    with pytest.raises(BadPortError):
        iopm.intercept(0x10003)  # ... and the next one does not


@pytest.mark.parametrize("port", [0x0, 0x80, 0x3F8, 0x7FFF, 0x8000, 0xFFFF])
def test_svm_bit_n_is_port_n(port):
    # hardware-facts.md §2.1: one linear array, bit n = port n, 1 = intercept
    iopm = SvmIopm()
    iopm.intercept(port)
    assert iopm.bits[port // 8] == 1 << (port % 8)
    assert sum(iopm.bits) == 1 << (port % 8)
    assert iopm.exits(port, 1)
    assert not iopm.exits(port ^ 1, 1)


def test_svm_multi_byte_rule():
    # hardware-facts.md §2.1: all bytes' bits are checked; any 1 intercepts
    iopm = SvmIopm()
    iopm.intercept(0x3F9)
    assert not iopm.exits(0x3F8, 1)
    assert iopm.exits(0x3F8, 2)
    assert iopm.exits(0x3F6, 4)
    assert not iopm.exits(0x3FA, 4)
    assert not iopm.exits(0x3F5, 4)  # 0x3F5-0x3F8 stops short of 0x3F9


def test_svm_wrap_with_spill_bits_clear_does_not_exit():
    # hardware-facts.md §2.1: no hard-wired wrap rule; the 3 bits past 0xFFFF decide
    iopm = SvmIopm()
    assert not iopm.exits(0xFFFF, 4)
    assert not iopm.exits(0xFFFE, 4)
    assert not iopm.exits(0xFFFF, 2)


@pytest.mark.parametrize(
    "spill_bit, exiting",
    [
        (0x10000, [(0xFFFF, 2), (0xFFFF, 4), (0xFFFE, 4), (0xFFFD, 4)]),
        (0x10001, [(0xFFFF, 4), (0xFFFE, 4)]),
        (0x10002, [(0xFFFF, 4)]),
    ],
)
def test_svm_wrap_decided_by_spill_bits(spill_bit, exiting):
    # hardware-facts.md §2.1: a 4-byte access at 0xFFFF checks 0xFFFF, 0x10000-0x10002
    iopm = SvmIopm()
    iopm.intercept(spill_bit)
    for port, size in [(0xFFFF, 2), (0xFFFF, 4), (0xFFFE, 4), (0xFFFD, 4), (0xFFFF, 1)]:
        assert iopm.exits(port, size) is ((port, size) in exiting), (hex(port), size)


def test_svm_xen_default_sets_spill_bits():
    # hardware-facts.md §1.1 and §2.1: Xen's map is all ones (the 3 spill bits too) except
    # 0x80 and 0xED
    iopm = SvmIopm.xen_default()
    assert iopm.ioio_prot
    arr = iopm.as_array()
    assert np.flatnonzero(arr == 0).tolist() == [0x80, 0xED]
    assert arr[0x10000:].tolist() == [1, 1, 1]
    assert iopm.exits(0xFFFF, 4)
    assert not iopm.exits(0x80, 1) and not iopm.exits(0xED, 1)
    iopm.allow(0x10000, 0x10002)
    iopm.allow(0xFFFF)
    assert not iopm.exits(0xFFFF, 4)


def test_svm_ioio_prot_off_means_no_exits():
    # hardware-facts.md §2.1: the map is consulted only when IOIO_PROT is enabled
    iopm = SvmIopm(intercept_all=True, ioio_prot=False)
    for port, size in [(0x3F8, 1), (0x80, 2), (0xFFFF, 4), (0, 4)]:
        assert not iopm.exits(port, size)
    iopm.ioio_prot = True
    assert iopm.exits(0x3F8, 1)


# --- the CPU's lookup table is the bitmaps, recomputed ----------------------------------------
def _random_maps(seed: int):
    rng = np.random.default_rng(seed)
    vmx, svm = VmxIoBitmaps(), SvmIopm()
    for port in rng.choice(0x10000, 300, replace=False).tolist() + [0x7FFF, 0x8000, 0xFFFF]:
        vmx.intercept(port)
        svm.intercept(port)
    svm.intercept(0x10000, 0x10002)  # the spill bits
    return vmx, svm


@pytest.mark.parametrize("seed", [0, 1])
def test_exit_lookup_agrees_with_the_bit_by_bit_rules_on_every_port_and_size(seed):
    vmx, svm = _random_maps(seed)
    for bm in (vmx, svm):
        for size in (1, 2, 4):
            table = bm.exit_lookup[size]
            assert len(table) == 0x10000
            assert [bool(b) for b in table] == [bm.exits(p, size) for p in range(0x10000)]


def test_exit_lookup_follows_every_change_of_bits_pages_and_controls():
    bm = VmxIoBitmaps()
    assert not bm.exit_lookup[1][0x3F8]
    bm.intercept(0x3F8)
    assert bm.exit_lookup[1][0x3F8] and bm.exit_lookup[4][0x3F5]
    bm.a[0x3F8 // 8] = 0  # the VMM writes the page itself
    assert not bm.exit_lookup[1][0x3F8]
    bm.procbased_ctls = CPU_BASED_UNCOND_IO_EXITING  # bitmaps off: everything exits
    assert all(bm.exit_lookup[1][p] for p in (0, 0x80, 0xFFFF))
    iopm = SvmIopm(intercept_all=True)
    iopm.ioio_prot = False
    assert not any(iopm.exit_lookup[2])
