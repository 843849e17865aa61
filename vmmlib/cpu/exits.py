"""Exit records in their real encodings: Intel VMX, AMD SVM and KVM's ``struct kvm_run``.

When a guest touches an intercepted port, the CPU leaves the guest and writes a few fields
that tell the hypervisor what happened. Each vendor packs the same facts (port, size,
direction, string, REP) into its own bit layout, and KVM repacks them once more for user
space. This module encodes and decodes all three, bit-exact; ``PortAccess`` is the common,
decoded form. Field and bit positions: shared/reference/hardware-facts.md §1.2-1.4 (Intel SDM
vol. 3C/3D), §2.2-2.3 (AMD64 APM vol. 2 §15.10), §3 (linux/kvm.h). Mind the directions:
VMX bit 3 and SVM bit 0 say 1 = IN, but KVM's ``io.direction`` says 1 = OUT.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import BadSizeError, ConfigError
from ..hw.bus import check_port_access
from ..trace import Schema

# --- Intel VMX ------------------------------------------------------------------------------
EXIT_REASON_EXCEPTION_NMI = 0
EXIT_REASON_HLT = 12
EXIT_REASON_INVLPG = 14  # exit qualification: the linear address
EXIT_REASON_VMCALL = 18
EXIT_REASON_IO_INSTRUCTION = 30
EXIT_REASON_EPT_VIOLATION = 48
EXIT_REASON_EPT_MISCONFIG = 49
#: VMCS field encodings the handler reads.
VMCS_GUEST_PHYSICAL_ADDRESS = 0x2400
VMCS_VM_EXIT_REASON = 0x4402
VMCS_VM_EXIT_INTR_INFO = 0x4404
VMCS_VM_EXIT_INTR_ERROR_CODE = 0x4406
VMCS_VM_EXIT_INSTRUCTION_LEN = 0x440C
VMCS_EXIT_QUALIFICATION = 0x6400
#: VM-exit interruption information: vector 7:0, type 10:8, error code valid 11, valid 31.
INTR_TYPE_HW_EXCEPTION = 3
INTR_INFO_DELIVER_CODE = 1 << 11
INTR_INFO_VALID = 1 << 31

# --- AMD SVM --------------------------------------------------------------------------------
VMEXIT_EXCEPTION_PF = 0x4E  # VMEXIT_EXCP_BASE (0x40) + vector 14
VMEXIT_HLT = 0x78
VMEXIT_INVLPG = 0x79  # EXITINFO1: the linear address (with decode assists)
VMEXIT_IOIO = 0x7B
VMEXIT_VMMCALL = 0x81
VMEXIT_NPF = 0x400
SVM_SEGMENTS = ("ES", "CS", "SS", "DS", "FS", "GS")

# --- KVM ------------------------------------------------------------------------------------
KVM_EXIT_IO = 2
KVM_EXIT_MMIO = 6
KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1
KVM_RUN_EXIT_REASON_OFFSET = 8
KVM_RUN_UNION_OFFSET = 32
KVM_PIO_DATA_OFFSET = 4096  # KVM_PIO_PAGE_OFFSET (1) x PAGE_SIZE on x86

# --- the exit records as trace rows: one schema per record shape (see vmmlib.trace) -------
#: A VM exit is traced as ``(time, SCHEMA, *the fields that vary)``.
VMX_IO_EXIT = Schema(
    "cpu", "exit", ("reason", "exit_reason", "exit_qualification", "instruction_len"),
    {"reason": "IO_INSTRUCTION", "exit_reason": EXIT_REASON_IO_INSTRUCTION, "instruction_len": 1},
)
VMX_STRING_IO_EXIT = Schema(  # INS/OUTS with a REP prefix: two bytes long
    "cpu", "exit", VMX_IO_EXIT.fields, {**VMX_IO_EXIT.fixed, "instruction_len": 2}
)
SVM_IO_EXIT = Schema(
    "cpu", "exit", ("reason", "exitcode", "exitinfo1", "exitinfo2"),
    {"reason": "IOIO", "exitcode": VMEXIT_IOIO},
)
VMX_PF_EXIT = Schema(
    "cpu", "exit",
    ("reason", "exit_reason", "exit_qualification", "intr_info", "intr_error_code"),
    {"reason": "EXCEPTION_NMI", "exit_reason": EXIT_REASON_EXCEPTION_NMI,
     "intr_info": INTR_INFO_VALID | INTR_INFO_DELIVER_CODE | INTR_TYPE_HW_EXCEPTION << 8 | 14},
)
SVM_PF_EXIT = Schema(
    "cpu", "exit", ("reason", "exitcode", "exitinfo1", "exitinfo2"),
    {"reason": "EXCP_PF", "exitcode": VMEXIT_EXCEPTION_PF},
)
VMX_VMCALL_EXIT = Schema(
    "cpu", "exit", ("reason", "exit_reason"),
    {"reason": "VMCALL", "exit_reason": EXIT_REASON_VMCALL},
)
VMX_INVLPG_EXIT = Schema(
    "cpu", "exit", ("reason", "exit_reason", "exit_qualification"),
    {"reason": "INVLPG", "exit_reason": EXIT_REASON_INVLPG},
)
SVM_INVLPG_EXIT = Schema(
    "cpu", "exit", ("reason", "exitcode", "exitinfo1"),
    {"reason": "INVLPG", "exitcode": VMEXIT_INVLPG},
)
VMX_HLT_EXIT = Schema(
    "cpu", "exit", ("reason", "exit_reason"), {"reason": "HLT", "exit_reason": EXIT_REASON_HLT}
)
SVM_HLT_EXIT = Schema(
    "cpu", "exit", ("reason", "exitcode"), {"reason": "HLT", "exitcode": VMEXIT_HLT}
)
#: an interrupt delivered at the VM entry that ends a HLT
INTERRUPT_ENTRY = Schema("cpu", "entry", ("vector",))
#: the re-entry after a hypercall: the guest resumes with the result in RAX
HYPERCALL_ENTRY = Schema("cpu", "entry", ("rax",))
#: a paravirtualized guest has no VMCS: its faults trap straight into Xen (no VM exit)
PV_GP_TRAP = Schema("cpu", "trap", ("vector", "name", "rip"), {"vector": 13, "name": "#GP"})
PV_PF_TRAP = Schema(
    "cpu", "trap", ("vector", "name", "addr", "error_code"), {"vector": 14, "name": "#PF"}
)
SVM_VMMCALL_EXIT = Schema(
    "cpu", "exit", ("reason", "exitcode"), {"reason": "VMMCALL", "exitcode": VMEXIT_VMMCALL}
)

# --- x86 #PF error code ---------------------------------------------------------------------
PF_VECTOR = 14
PFEC_PRESENT = 1 << 0
PFEC_WRITE = 1 << 1
PFEC_USER = 1 << 2
PFEC_RSVD = 1 << 3
PFEC_FETCH = 1 << 4


class _PortAccessFields(NamedTuple):
    port: int
    size: int
    is_in: bool
    string: bool = False
    rep: bool = False
    imm: bool = False  # port given as an immediate operand (IN AL, 0x60) rather than in DX


class PortAccess(_PortAccessFields):
    """What a trapped port-I/O instruction did, independent of any vendor's encoding.

    An immutable tuple (port, size, is_in, string, rep, imm), checked when it is made: it is
    built on every simulated exit, so it is kept cheap.
    """

    __slots__ = ()

    def __new__(
        cls,
        port: int,
        size: int,
        is_in: bool,
        string: bool = False,
        rep: bool = False,
        imm: bool = False,
    ) -> PortAccess:
        check_port_access(port, size)
        return tuple.__new__(cls, (port, size, is_in, string, rep, imm))

    @classmethod
    def unchecked(cls, *fields: int | bool) -> PortAccess:
        """Build one from fields already known to be valid (a decoded bit field, a checked
        operation), in the order of ``__new__``, skipping the checks on the hot path; flags
        left out are False."""
        return tuple.__new__(cls, fields + (False,) * (len(cls._fields) - len(fields)))

    def __str__(self) -> str:
        name = ("REP " if self.rep else "") + ("IN" if self.is_in else "OUT")
        name += ("S" + "BWxD"[self.size - 1]) if self.string else ""
        return f"{name} port {self.port:#06x}, {self.size} byte(s)"


# --- Intel exit qualification for I/O instructions -----------------------------------------
def vmx_io_qualification(acc: PortAccess) -> int:
    """Encode the VMX exit qualification (field 0x6400) of an I/O-instruction exit."""
    return (
        (acc.size - 1)
        | acc.is_in << 3
        | acc.string << 4
        | acc.rep << 5
        | acc.imm << 6
        | acc.port << 16
    )


def decode_vmx_io_qualification(q: int) -> PortAccess:
    """Decode a VMX I/O exit qualification; reserved bits or size code 2 are an error."""
    if q >> 32 or (q >> 7) & 0x1FF:
        raise ConfigError(f"exit qualification {q:#x} has reserved bits set")
    code = q & 7
    if code not in (0, 1, 3):
        raise ConfigError(f"size field {code} is not 0, 1 or 3 (1, 2 or 4 bytes)")
    # every field comes from a bit field already checked above: no need to check it again
    return PortAccess.unchecked(
        (q >> 16) & 0xFFFF, code + 1, bool(q & 8), bool(q & 16), bool(q & 32), bool(q & 64)
    )


def vmx_intr_info(vector: int, error_code_valid: bool, kind: int = INTR_TYPE_HW_EXCEPTION) -> int:
    """VM-exit interruption information (field 0x4404) for an exception exit."""
    return (
        vector | kind << 8 | (INTR_INFO_DELIVER_CODE if error_code_valid else 0) | INTR_INFO_VALID
    )


# --- AMD EXITINFO1 for IOIO -----------------------------------------------------------------
def svm_ioio_exitinfo1(acc: PortAccess, address_size: int = 64, segment: str = "DS") -> int:
    """Encode EXITINFO1 of #VMEXIT(IOIO): TYPE, STR, REP, one-hot SZ, one-hot A, SEG, PORT.

    The address size describes the instruction's addressing mode and is filled in for every
    IN/OUT; the segment only matters for OUTS (INS always uses ES, reported as 0).
    """
    a_bit = {16: 1 << 7, 32: 1 << 8, 64: 1 << 9}.get(address_size)
    if a_bit is None:
        raise ConfigError(f"address size {address_size} is not 16, 32 or 64")
    seg = 0
    if acc.string and not acc.is_in:
        if segment not in SVM_SEGMENTS:
            raise ConfigError(f"segment {segment!r} is not one of {SVM_SEGMENTS}")
        seg = SVM_SEGMENTS.index(segment)
    return (
        acc.is_in
        | acc.string << 2
        | acc.rep << 3
        | acc.size << 4  # one-hot: 1 -> bit 4, 2 -> bit 5, 4 -> bit 6
        | a_bit
        | seg << 10
        | acc.port << 16
    )


def decode_svm_ioio_exitinfo1(info1: int) -> PortAccess:
    """Decode EXITINFO1 of #VMEXIT(IOIO); the size field must be one-hot."""
    size = (info1 >> 4) & 7
    if size not in (1, 2, 4):
        raise ConfigError(f"EXITINFO1 {info1:#x}: size bits 6:4 = {size:03b} are not one-hot")
    return PortAccess.unchecked(
        (info1 >> 16) & 0xFFFF, size, bool(info1 & 1), bool(info1 & 4), bool(info1 & 8)
    )


# --- KVM struct kvm_run ----------------------------------------------------------------------
_KVM_IO = struct.Struct("<BBHIQ")  # direction, size, port, count, data_offset
_KVM_MMIO = struct.Struct("<Q8sIB")  # phys_addr, data[8], len, is_write


def kvm_run_io(acc: PortAccess, data: bytes = b"", count: int = 1) -> bytearray:
    """The kvm_run page (+ the PIO data page) user space sees after KVM_EXIT_IO."""
    if len(data) > count * acc.size:
        raise ConfigError("more data than count x size bytes")
    run = bytearray(KVM_PIO_DATA_OFFSET + count * acc.size)
    struct.pack_into("<I", run, KVM_RUN_EXIT_REASON_OFFSET, KVM_EXIT_IO)
    direction = KVM_EXIT_IO_IN if acc.is_in else KVM_EXIT_IO_OUT
    _KVM_IO.pack_into(
        run, KVM_RUN_UNION_OFFSET, direction, acc.size, acc.port, count, KVM_PIO_DATA_OFFSET
    )
    run[KVM_PIO_DATA_OFFSET : KVM_PIO_DATA_OFFSET + len(data)] = data
    return run


def kvm_run_mmio(phys_addr: int, length: int, is_write: bool, data: bytes = b"") -> bytearray:
    """The kvm_run page user space sees after KVM_EXIT_MMIO."""
    if not 1 <= length <= 8 or len(data) > length:
        raise BadSizeError(f"an MMIO exit carries 1-8 bytes, not {length}")
    run = bytearray(KVM_PIO_DATA_OFFSET)
    struct.pack_into("<I", run, KVM_RUN_EXIT_REASON_OFFSET, KVM_EXIT_MMIO)
    _KVM_MMIO.pack_into(
        run, KVM_RUN_UNION_OFFSET, phys_addr, data.ljust(8, b"\0"), length, int(is_write)
    )
    return run


def decode_kvm_run(run: bytes) -> dict:
    """Read a kvm_run buffer the way a VMM's run loop does, by ``exit_reason``."""
    (reason,) = struct.unpack_from("<I", run, KVM_RUN_EXIT_REASON_OFFSET)
    if reason == KVM_EXIT_IO:
        direction, size, port, count, off = _KVM_IO.unpack_from(run, KVM_RUN_UNION_OFFSET)
        return {
            "exit_reason": "KVM_EXIT_IO",
            "direction": "OUT" if direction == KVM_EXIT_IO_OUT else "IN",
            "size": size,
            "port": port,
            "count": count,
            "data_offset": off,
            "data": bytes(run[off : off + size * count]),
        }
    if reason == KVM_EXIT_MMIO:
        addr, data, length, is_write = _KVM_MMIO.unpack_from(run, KVM_RUN_UNION_OFFSET)
        return {
            "exit_reason": "KVM_EXIT_MMIO",
            "phys_addr": addr,
            "len": length,
            "is_write": bool(is_write),
            "data": data[:length],
        }
    raise ConfigError(f"kvm_run exit_reason {reason} is neither KVM_EXIT_IO nor KVM_EXIT_MMIO")


# --- #PF error code -------------------------------------------------------------------------
def pf_error_code(
    present: bool, write: bool, user: bool = False, rsvd: bool = False, fetch: bool = False
) -> int:
    """The x86 page-fault error code pushed with #PF (and reported on a #PF exit)."""
    return present | write << 1 | user << 2 | rsvd << 3 | fetch << 4


def describe_pf_error_code(code: int) -> str:
    """Spell out a #PF error code, e.g. ``not-present write, supervisor``."""
    parts = ["protection" if code & PFEC_PRESENT else "not-present"]
    parts[0] += " " + ("fetch" if code & PFEC_FETCH else "write" if code & PFEC_WRITE else "read")
    parts.append("user" if code & PFEC_USER else "supervisor")
    if code & PFEC_RSVD:
        parts.append("reserved bit set")
    return ", ".join(parts)


# --- one exit, three encodings --------------------------------------------------------------
def record_port_access(record: dict) -> PortAccess:
    """Decode the port access of an I/O exit record from either vendor."""
    if "exit_qualification" in record:
        return decode_vmx_io_qualification(record["exit_qualification"])
    return decode_svm_ioio_exitinfo1(record["exitinfo1"])


def exit_forms(record: dict, emulated: dict | None = None) -> dict[str, str]:
    """The same exit as Intel VMX, AMD SVM and KVM would report it.

    ``record`` is an exit event's fields (either vendor). For a #PF exit, ``emulated`` (the
    hypervisor's following ``emulate`` event: guest-physical ``addr``, ``dir``, ``value``)
    gives the KVM_EXIT_MMIO a device model would see; without it the fault was not MMIO.
    """
    reason = record.get("reason")
    if reason in ("IO_INSTRUCTION", "IOIO"):
        acc = record_port_access(record)
        kvm = decode_kvm_run(kvm_run_io(acc))
        return {
            "Intel VMX": f"exit reason {EXIT_REASON_IO_INSTRUCTION}, "
            f"qualification {vmx_io_qualification(acc):#010x}",
            "AMD SVM": f"exit code {VMEXIT_IOIO:#x}, EXITINFO1 {svm_ioio_exitinfo1(acc):#010x}",
            "KVM": f"KVM_EXIT_IO direction={KVM_EXIT_IO_OUT if not acc.is_in else KVM_EXIT_IO_IN}"
            f" ({kvm['direction']}) size={kvm['size']} port={kvm['port']:#x} "
            f"count={kvm['count']}",
        }
    if reason in ("EXCEPTION_NMI", "EXCP_PF"):
        if "exit_qualification" in record:
            addr, code = record["exit_qualification"], record["intr_error_code"]
        else:
            addr, code = record["exitinfo2"], record["exitinfo1"]
        kvm = "no KVM_EXIT_MMIO: the fault was not MMIO"
        if emulated is not None and "addr" in emulated:
            kvm = (
                f"KVM_EXIT_MMIO phys_addr={emulated['addr']:#x} len={emulated['size']} "
                f"is_write={int(emulated['dir'] == 'write')}"
            )
        return {
            "Intel VMX": f"exit reason {EXIT_REASON_EXCEPTION_NMI}, qualification {addr:#x}, "
            f"intr info {vmx_intr_info(PF_VECTOR, True):#x}, error code {code:#x}",
            "AMD SVM": f"exit code {VMEXIT_EXCEPTION_PF:#x}, EXITINFO1 {code:#x}, "
            f"EXITINFO2 {addr:#x}",
            "KVM": kvm,
        }
    raise ConfigError(f"no three-way view of a {reason!r} exit")
