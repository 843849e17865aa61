"""Exit records in their real encodings (vmmlib/exits.py): VMX, SVM, KVM kvm_run, #PF codes.

Layouts from shared/reference/hardware-facts.md §1.2-1.4 (Intel SDM vol. 3C/3D), §2.2-2.3
(AMD64 APM vol. 2 §15.10) and §3 (linux/kvm.h). The VM-exit interruption-information format
and the #PF error-code bits are from the Intel SDM vol. 3 ("Format of the VM-Exit
Interruption-Information Field"; "Page-Fault Exceptions", the error-code figure), not from
the fact sheet.
"""

import itertools
import struct

import pytest

from vmmlib.cpu.exits import (
    EXIT_REASON_EPT_MISCONFIG,
    EXIT_REASON_EPT_VIOLATION,
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    INTR_INFO_DELIVER_CODE,
    INTR_INFO_VALID,
    INTR_TYPE_HW_EXCEPTION,
    KVM_EXIT_IO,
    KVM_EXIT_IO_IN,
    KVM_EXIT_IO_OUT,
    KVM_EXIT_MMIO,
    KVM_PIO_DATA_OFFSET,
    KVM_RUN_EXIT_REASON_OFFSET,
    KVM_RUN_UNION_OFFSET,
    PF_VECTOR,
    PFEC_FETCH,
    PFEC_PRESENT,
    PFEC_RSVD,
    PFEC_USER,
    PFEC_WRITE,
    SVM_SEGMENTS,
    VMCS_EXIT_QUALIFICATION,
    VMCS_GUEST_PHYSICAL_ADDRESS,
    VMCS_VM_EXIT_INSTRUCTION_LEN,
    VMCS_VM_EXIT_INTR_ERROR_CODE,
    VMCS_VM_EXIT_INTR_INFO,
    VMCS_VM_EXIT_REASON,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_IOIO,
    VMEXIT_NPF,
    VMEXIT_VMMCALL,
    PortAccess,
    decode_kvm_run,
    decode_svm_ioio_exitinfo1,
    decode_vmx_io_qualification,
    describe_pf_error_code,
    kvm_run_io,
    kvm_run_mmio,
    pf_error_code,
    svm_ioio_exitinfo1,
    vmx_intr_info,
    vmx_io_qualification,
)
from vmmlib.errors import BadSizeError, ConfigError, PageFault

ACCESSES = [
    PortAccess(port, size, is_in, string, rep, imm)
    for port, size, (is_in, string, rep, imm) in itertools.product(
        (0x0, 0x60, 0x3F8, 0xCFC, 0x8000, 0xFFFF),
        (1, 2, 4),
        [(i, s, r, m) for i, s, r, m in itertools.product((0, 1), repeat=4) if not (r and not s)],
    )
    if not (imm and string)  # string I/O always takes the port from DX
]


# --- the direction table at the top of hardware-facts.md -------------------------------------
def test_direction_conventions_table():
    # hardware-facts.md, direction table: VMX bit 3 1 = IN; SVM TYPE bit 0 1 = IN;
    # KVM kvm_run.io.direction 1 = OUT (KVM_EXIT_IO_OUT = 1, KVM_EXIT_IO_IN = 0)
    in_acc = PortAccess(0x60, 1, is_in=True)
    out_acc = PortAccess(0x60, 1, is_in=False)
    assert (vmx_io_qualification(in_acc) >> 3) & 1 == 1
    assert (vmx_io_qualification(out_acc) >> 3) & 1 == 0
    assert svm_ioio_exitinfo1(in_acc) & 1 == 1
    assert svm_ioio_exitinfo1(out_acc) & 1 == 0
    assert kvm_run_io(in_acc)[32] == 0 == KVM_EXIT_IO_IN
    assert kvm_run_io(out_acc)[32] == 1 == KVM_EXIT_IO_OUT
    # and the decoders read them back the same way
    assert decode_vmx_io_qualification(1 << 3).is_in
    assert not decode_vmx_io_qualification(0).is_in
    assert decode_svm_ioio_exitinfo1(0x10 | 1).is_in
    assert not decode_svm_ioio_exitinfo1(0x10).is_in
    assert decode_kvm_run(kvm_run_io(in_acc))["direction"] == "IN"
    assert decode_kvm_run(kvm_run_io(out_acc))["direction"] == "OUT"


# --- Intel VMX -------------------------------------------------------------------------------
def test_vmx_exit_reason_numbers():
    # hardware-facts.md §1.2 (and SDM appendix C: 0 = exception or NMI)
    assert EXIT_REASON_EXCEPTION_NMI == 0
    assert EXIT_REASON_VMCALL == 18
    assert EXIT_REASON_IO_INSTRUCTION == 30
    assert EXIT_REASON_EPT_VIOLATION == 48
    assert EXIT_REASON_EPT_MISCONFIG == 49


def test_vmcs_field_encodings():
    # hardware-facts.md §1.3 (0x6400, 0x440C) and §1.4 (0x2400); SDM vol. 3D appendix B and
    # xen vmcs.h for the read-only exit-information fields 0x4402/0x4404/0x4406
    assert VMCS_EXIT_QUALIFICATION == 0x6400
    assert VMCS_VM_EXIT_INSTRUCTION_LEN == 0x440C
    assert VMCS_GUEST_PHYSICAL_ADDRESS == 0x2400
    assert VMCS_VM_EXIT_REASON == 0x4402
    assert VMCS_VM_EXIT_INTR_INFO == 0x4404
    assert VMCS_VM_EXIT_INTR_ERROR_CODE == 0x4406


@pytest.mark.parametrize(
    "acc, qual",
    [
        (PortAccess(0x60, 1, is_in=True, imm=True), 0x0060_0048),  # IN AL, 0x60
        (PortAccess(0x3F8, 1, is_in=False), 0x03F8_0000),  # OUT DX, AL
        (PortAccess(0x3F8, 2, is_in=False), 0x03F8_0001),  # OUT DX, AX
        (PortAccess(0xCFC, 4, is_in=True), 0x0CFC_000B),  # IN EAX, DX
        (PortAccess(0x1F0, 2, is_in=True, string=True, rep=True), 0x01F0_0039),  # REP INSW
        (PortAccess(0x3F8, 1, is_in=False, string=True), 0x03F8_0010),  # OUTSB
        (PortAccess(0xFFFF, 4, is_in=False, string=True, rep=True), 0xFFFF_0033),  # REP OUTSD
    ],
)
def test_vmx_io_qualification_known_values(acc, qual):
    # hardware-facts.md §1.3: size-1 in 2:0, IN bit 3, string 4, REP 5, immediate 6,
    # port 31:16
    assert vmx_io_qualification(acc) == qual
    assert decode_vmx_io_qualification(qual) == acc


@pytest.mark.parametrize(
    "field, bit",
    [("is_in", 3), ("string", 4), ("rep", 5), ("imm", 6)],
)
def test_vmx_io_qualification_single_bits(field, bit):
    # hardware-facts.md §1.3: each flag is exactly one bit
    base = PortAccess(0, 1, is_in=False, string=field == "rep")
    flagged = base._replace(**{field: True})
    assert vmx_io_qualification(flagged) ^ vmx_io_qualification(base) == 1 << bit


@pytest.mark.parametrize("size, code", [(1, 0), (2, 1), (4, 3)])
def test_vmx_size_field_is_size_minus_one(size, code):
    # hardware-facts.md §1.3: bits 2:0 = size - 1
    assert vmx_io_qualification(PortAccess(0, size, False)) == code
    assert decode_vmx_io_qualification(code).size == size


def test_vmx_port_in_bits_31_16():
    # hardware-facts.md §1.3
    assert vmx_io_qualification(PortAccess(0xABCD, 1, False)) == 0xABCD << 16
    assert decode_vmx_io_qualification(0xABCD_0000).port == 0xABCD


def test_vmx_io_qualification_round_trip_all_combinations():
    # hardware-facts.md §1.3: encode and decode are inverses
    assert len(ACCESSES) > 100
    for acc in ACCESSES:
        q = vmx_io_qualification(acc)
        assert q >> 32 == 0 and (q >> 7) & 0x1FF == 0
        assert decode_vmx_io_qualification(q) == acc


@pytest.mark.parametrize("bit", list(range(7, 16)) + [32, 40, 63])
def test_vmx_reserved_bits_rejected(bit):
    # hardware-facts.md §1.3: bits 15:7 and 63:32 are reserved (0)
    with pytest.raises(ConfigError, match="reserved"):
        decode_vmx_io_qualification(0x03F8_0000 | 1 << bit)


@pytest.mark.parametrize("code", [2, 4, 5, 6, 7])
def test_vmx_unused_size_codes_rejected(code):
    # hardware-facts.md §1.3: only 0, 1 and 3 are used
    with pytest.raises(ConfigError):
        decode_vmx_io_qualification(0x03F8_0000 | code)


def test_vmx_interruption_info_for_page_fault():
    # SDM "Format of the VM-Exit Interruption-Information Field": vector 7:0, type 10:8
    # (3 = hardware exception), error code valid bit 11, valid bit 31
    assert PF_VECTOR == 14
    assert INTR_TYPE_HW_EXCEPTION == 3
    assert INTR_INFO_DELIVER_CODE == 1 << 11
    assert INTR_INFO_VALID == 1 << 31
    assert vmx_intr_info(PF_VECTOR, True) == 0x8000_0B0E
    assert vmx_intr_info(6, False) == 0x8000_0306  # #UD has no error code


# --- AMD SVM ---------------------------------------------------------------------------------
def test_svm_exit_codes():
    # hardware-facts.md §2.2 (IOIO 0x7B), §2.3 (NPF 0x400); APM vol. 2 appendix C:
    # exception intercepts start at 0x40 (so #PF = 0x40 + 14), VMMCALL = 0x81
    assert VMEXIT_IOIO == 0x7B == 123
    assert VMEXIT_NPF == 0x400 == 1024
    assert VMEXIT_EXCEPTION_PF == 0x40 + 14 == 0x4E
    assert VMEXIT_VMMCALL == 0x81


@pytest.mark.parametrize("size, bit", [(1, 4), (2, 5), (4, 6)])
def test_svm_size_bits_are_one_hot(size, bit):
    # hardware-facts.md §2.2: SZ8 bit 4, SZ16 bit 5, SZ32 bit 6; (info1 >> 4) & 7 is the size
    info1 = svm_ioio_exitinfo1(PortAccess(0, size, False), address_size=16)
    assert info1 & 0x70 == 1 << bit
    assert (info1 >> 4) & 7 == size


@pytest.mark.parametrize("asize, bit", [(16, 7), (32, 8), (64, 9)])
def test_svm_address_size_bits(asize, bit):
    # hardware-facts.md §2.2: A16 bit 7, A32 bit 8, A64 bit 9
    info1 = svm_ioio_exitinfo1(PortAccess(0, 1, False), address_size=asize)
    assert info1 == (1 << 4) | (1 << bit)


def test_svm_flag_bits():
    # hardware-facts.md §2.2: TYPE bit 0 (1 = IN), STR bit 2, REP bit 3, bit 1 reserved
    plain = svm_ioio_exitinfo1(PortAccess(0x60, 1, False), address_size=16)
    assert svm_ioio_exitinfo1(PortAccess(0x60, 1, True), address_size=16) ^ plain == 1
    ins = svm_ioio_exitinfo1(PortAccess(0x60, 1, True, string=True), address_size=16)
    assert ins ^ plain == 0b101
    rep_ins = svm_ioio_exitinfo1(PortAccess(0x60, 1, True, string=True, rep=True), 16)
    assert rep_ins ^ plain == 0b1101
    assert not (plain | ins | rep_ins) & 0b10


def test_svm_port_in_bits_31_16():
    # hardware-facts.md §2.2: PORT 31:16
    info1 = svm_ioio_exitinfo1(PortAccess(0x3F8, 1, False), address_size=64)
    assert info1 == 0x03F8_0000 | 1 << 9 | 1 << 4
    assert decode_svm_ioio_exitinfo1(0xFFFF_0010).port == 0xFFFF


@pytest.mark.parametrize("seg", SVM_SEGMENTS)
def test_svm_segment_field_for_outs(seg):
    # hardware-facts.md §2.2: SEG 12:10 = effective segment of OUTS (x86 segment numbering
    # ES=0 CS=1 SS=2 DS=3 FS=4 GS=5)
    assert SVM_SEGMENTS == ("ES", "CS", "SS", "DS", "FS", "GS")
    outs = PortAccess(0x3F8, 1, False, string=True)
    info1 = svm_ioio_exitinfo1(outs, segment=seg)
    assert (info1 >> 10) & 7 == SVM_SEGMENTS.index(seg)


def test_svm_segment_defaults_to_ds_and_ins_reports_es():
    # hardware-facts.md §2.2: default DS; INS always reports ES = 0
    outs = PortAccess(0x3F8, 1, False, string=True)
    assert (svm_ioio_exitinfo1(outs) >> 10) & 7 == 3
    ins = PortAccess(0x3F8, 1, True, string=True)
    assert (svm_ioio_exitinfo1(ins, segment="FS") >> 10) & 7 == 0
    assert (svm_ioio_exitinfo1(PortAccess(0x3F8, 1, False)) >> 10) & 7 == 0


def test_svm_exitinfo1_known_value():
    # REP OUTSW to 0x1F0, 32-bit addressing, DS: bits 3,2 | SZ16 bit 5 | A32 bit 8 | SEG 3
    acc = PortAccess(0x1F0, 2, False, string=True, rep=True)
    assert svm_ioio_exitinfo1(acc, address_size=32) == 0x01F0_0000 | 3 << 10 | 1 << 8 | 0x2C


def test_svm_exitinfo1_round_trip():
    # hardware-facts.md §2.2 (SVM has no immediate-operand bit)
    for acc in ACCESSES:
        if acc.imm:
            continue
        for asize in (16, 32, 64):
            assert decode_svm_ioio_exitinfo1(svm_ioio_exitinfo1(acc, asize)) == acc


@pytest.mark.parametrize("bits", [0b000, 0b011, 0b101, 0b110, 0b111])
def test_svm_size_must_be_one_hot(bits):
    # hardware-facts.md §2.2
    with pytest.raises(ConfigError):
        decode_svm_ioio_exitinfo1(0x03F8_0000 | bits << 4)


def test_svm_bad_address_size_or_segment():
    with pytest.raises(ConfigError):
        svm_ioio_exitinfo1(PortAccess(0, 1, False), address_size=8)
    with pytest.raises(ConfigError):
        svm_ioio_exitinfo1(PortAccess(0, 1, False, string=True), segment="XS")


def test_port_access_rejects_impossible_values():
    with pytest.raises(ConfigError):
        PortAccess(0x10000, 1, False)
    with pytest.raises(BadSizeError):
        PortAccess(0x60, 3, False)


def test_port_access_str():
    assert str(PortAccess(0x1F0, 2, True, string=True, rep=True)) == (
        "REP INSW port 0x01f0, 2 byte(s)"
    )
    assert str(PortAccess(0x3F8, 1, False)) == "OUT port 0x03f8, 1 byte(s)"


# --- KVM kvm_run ------------------------------------------------------------------------------
def test_kvm_constants():
    # hardware-facts.md §3
    assert KVM_EXIT_IO == 2 and KVM_EXIT_MMIO == 6
    assert KVM_EXIT_IO_IN == 0 and KVM_EXIT_IO_OUT == 1
    assert KVM_RUN_EXIT_REASON_OFFSET == 8
    assert KVM_RUN_UNION_OFFSET == 32
    assert KVM_PIO_DATA_OFFSET == 4096


def test_kvm_run_io_layout():
    # hardware-facts.md §3: exit_reason u32 at 8; io.direction u8 at 32, size u8 at 33,
    # port u16 at 34, count u32 at 36, data_offset u64 at 40; data at data_offset (4096)
    acc = PortAccess(0x1F0, 2, is_in=False, string=True, rep=True)
    data = bytes([1, 2, 3, 4, 5, 6])
    run = kvm_run_io(acc, data, count=3)
    assert struct.unpack_from("<I", run, 8) == (2,)
    assert run[32] == 1  # OUT
    assert run[33] == 2
    assert struct.unpack_from("<H", run, 34) == (0x1F0,)
    assert struct.unpack_from("<I", run, 36) == (3,)
    assert struct.unpack_from("<Q", run, 40) == (4096,)
    assert bytes(run[4096 : 4096 + 6]) == data
    assert len(run) == 4096 + 6


def test_kvm_run_io_decode_round_trip():
    # hardware-facts.md §3
    acc = PortAccess(0x3F8, 1, is_in=False)
    out = decode_kvm_run(kvm_run_io(acc, b"A"))
    assert out == {
        "exit_reason": "KVM_EXIT_IO",
        "direction": "OUT",
        "size": 1,
        "port": 0x3F8,
        "count": 1,
        "data_offset": 4096,
        "data": b"A",
    }
    inp = decode_kvm_run(kvm_run_io(PortAccess(0xCFC, 4, is_in=True)))
    assert (inp["direction"], inp["size"], inp["port"], inp["count"]) == ("IN", 4, 0xCFC, 1)
    assert inp["data"] == bytes(4)  # for IN, userspace fills the buffer


def test_kvm_decoder_uses_the_data_offset_field_not_the_constant():
    # hardware-facts.md §3: "Always use the field, never the constant"
    run = bytearray(8192)
    struct.pack_into("<I", run, 8, KVM_EXIT_IO)
    struct.pack_into("<BBHIQ", run, 32, KVM_EXIT_IO_OUT, 2, 0x80, 2, 0x1800)
    run[0x1800:0x1804] = b"\x11\x22\x33\x44"
    run[4096:4100] = b"\xee" * 4
    out = decode_kvm_run(run)
    assert out["data_offset"] == 0x1800
    assert out["data"] == b"\x11\x22\x33\x44"


def test_kvm_run_io_rejects_too_much_data():
    with pytest.raises(ConfigError):
        kvm_run_io(PortAccess(0x80, 1, False), b"ab", count=1)


def test_kvm_run_mmio_layout():
    # hardware-facts.md §3: mmio.phys_addr u64 at 32, data[8] at 40, len u32 at 48,
    # is_write u8 at 52
    run = kvm_run_mmio(0xFEBF_0010, 4, True, b"\x78\x56\x34\x12")
    assert struct.unpack_from("<I", run, 8) == (6,)
    assert struct.unpack_from("<Q", run, 32) == (0xFEBF_0010,)
    assert bytes(run[40:48]) == b"\x78\x56\x34\x12\0\0\0\0"
    assert struct.unpack_from("<I", run, 48) == (4,)
    assert run[52] == 1
    assert kvm_run_mmio(0xB8000, 2, False)[52] == 0


def test_kvm_run_mmio_decode_round_trip():
    # hardware-facts.md §3
    w = decode_kvm_run(kvm_run_mmio(0xB8000, 2, True, b"\x41\x07"))
    assert w == {
        "exit_reason": "KVM_EXIT_MMIO",
        "phys_addr": 0xB8000,
        "len": 2,
        "is_write": True,
        "data": b"\x41\x07",
    }
    r = decode_kvm_run(kvm_run_mmio(0xFED0_0000, 8, False))
    assert (r["phys_addr"], r["len"], r["is_write"]) == (0xFED0_0000, 8, False)


@pytest.mark.parametrize("length, data", [(0, b""), (9, b""), (2, b"abc")])
def test_kvm_run_mmio_rejects_bad_lengths(length, data):
    # hardware-facts.md §3: len is 1-8
    with pytest.raises(BadSizeError):
        kvm_run_mmio(0x1000, length, True, data)


def test_kvm_decode_unknown_exit_reason():
    run = bytearray(4096)
    struct.pack_into("<I", run, 8, 7)
    with pytest.raises(ConfigError):
        decode_kvm_run(run)


# --- #PF error code -------------------------------------------------------------------------------
def test_pf_error_code_bits():
    # SDM vol. 3A "Page-Fault Exceptions" (error code figure): P bit 0, W/R bit 1, U/S bit 2,
    # RSVD bit 3, I/D bit 4; hardware-facts.md §2.3 uses the same bits for the NPF error code
    assert (PFEC_PRESENT, PFEC_WRITE, PFEC_USER, PFEC_RSVD, PFEC_FETCH) == (1, 2, 4, 8, 16)
    assert pf_error_code(False, False) == 0
    assert pf_error_code(True, False) == 1
    assert pf_error_code(False, True) == 2
    assert pf_error_code(False, False, user=True) == 4
    assert pf_error_code(False, False, rsvd=True) == 8
    assert pf_error_code(False, False, fetch=True) == 16
    assert pf_error_code(True, True, True, True, True) == 0x1F


def test_describe_pf_error_code():
    assert describe_pf_error_code(0) == "not-present read, supervisor"
    assert describe_pf_error_code(3) == "protection write, supervisor"
    assert describe_pf_error_code(0x14) == "not-present fetch, user"
    assert describe_pf_error_code(0x9) == "protection read, supervisor, reserved bit set"


def test_page_fault_exception_carries_address_and_code():
    f = PageFault(0xB8000, 3)
    assert (f.address, f.error_code) == (0xB8000, 3)
    assert "0xb8000" in str(f) and "0x3" in str(f)


@pytest.mark.parametrize("is_in", [False, True])
def test_exit_forms_agree_across_vendors(is_in):
    # hardware-facts.md §1.3, §2.2, §3: one access, three encodings
    from vmmlib.cpu.exits import exit_forms

    acc = PortAccess(0x3F8, 1, is_in=is_in)
    vmx = {"reason": "IO_INSTRUCTION", "exit_qualification": vmx_io_qualification(acc)}
    svm = {"reason": "IOIO", "exitinfo1": svm_ioio_exitinfo1(acc)}
    forms = exit_forms(vmx)
    assert forms == exit_forms(svm)
    assert forms["Intel VMX"] == f"exit reason 30, qualification {0x03F80000 | is_in << 3:#010x}"
    assert forms["AMD SVM"] == f"exit code 0x7b, EXITINFO1 {0x03F80210 | is_in:#010x}"
    assert forms["KVM"].startswith(f"KVM_EXIT_IO direction={0 if is_in else 1} ")


def test_exit_forms_of_a_page_fault_exit():
    from vmmlib.cpu.exits import exit_forms

    vmx = {"reason": "EXCEPTION_NMI", "exit_qualification": 0xB8000, "intr_error_code": 2}
    svm = {"reason": "EXCP_PF", "exitinfo1": 2, "exitinfo2": 0xB8000}
    emulated = {"addr": 0xB8000, "size": 2, "dir": "write", "value": 0x748}
    forms = exit_forms(vmx, emulated)
    assert forms == exit_forms(svm, emulated)
    assert "intr info 0x80000b0e" in forms["Intel VMX"]
    assert forms["KVM"] == "KVM_EXIT_MMIO phys_addr=0xb8000 len=2 is_write=1"
    assert "not MMIO" in exit_forms(vmx)["KVM"]
    with pytest.raises(ConfigError):
        exit_forms({"reason": "HLT"})
