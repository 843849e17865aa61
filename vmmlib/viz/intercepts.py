"""Chapter 01's state panels: what each of its stepping widgets is about.

* ``serial_panel`` (the "Hello" on COM1 stepper): the guest's last port access, the exit it
  caused in its Intel, AMD and KVM encodings, COM1's registers, and the wire as text.
* ``mmio_panel`` (the MMIO / RAM / real #PF stepper): the last #PF exit, the hypervisor's walk
  of the guest's page table and its verdict, the shadow entry of the faulting page, what KVM
  would hand a device model, and the VGA text the guest has written.

Each returns a ``vmmlib.viz.panels.Panel``, so the Stepper highlights what the last step
changed. Both take the vCPU of a chapter-01 scenario (``vmmlib.scenarios.intercepts``).
"""

from __future__ import annotations

from typing import Any

from ..cpu.exits import describe_pf_error_code, exit_forms, record_port_access
from ..cpu.paging import PTE_PRESENT, PTE_USER, PTE_WRITABLE
from ..devices.vga_text import TEXT_BASE
from ..hw.memory import PAGE_SHIFT
from ..scenarios.intercepts import uart_of
from ..xen.shadow import FaultKind, classify_fault
from .panels import Panel, key_value, register_table, text_block, vcpu_section
from .text import wire_text

#: What the hypervisor does with each kind of shadow #PF.
VERDICTS = {
    FaultKind.MMIO: "MMIO: emulate it, the guest sees no fault",
    FaultKind.HIDDEN: "RAM: fill the shadow entry, retry",
    FaultKind.PAGE_FAULT: "a real #PF: inject it into the guest",
}


def _last_exit(vcpu: Any) -> tuple[dict | None, dict | None]:
    """The fields of the trace's last exit, and of the hypervisor's ``emulate`` after it."""
    events = vcpu.machine.trace.events()
    for i in range(len(events) - 1, -1, -1):
        if events[i].kind == "exit":
            after = events[i + 1] if i + 1 < len(events) else None
            emulated = after.fields if after is not None and after.kind == "emulate" else None
            return events[i].fields, emulated
    return None, None


def _byte_note(port: int, value: int) -> str:
    """A character written to THR or read from RBR (offset 0), as text."""
    return f" {wire_text(bytes([value]))!r}" if port & 7 == 0 else ""


def serial_panel(vcpu: Any) -> Panel:
    """The last port access and its exit three ways, COM1's registers, and the wire."""
    record, emulated = _last_exit(vcpu)
    if record is None or record.get("reason") not in ("IO_INSTRUCTION", "IOIO"):
        exit_section = key_value("the last exit", {"": "none yet"})
    else:
        access = str(record_port_access(record))
        if emulated is not None:
            value = emulated["value"]
            arrow = "→" if emulated["dir"] == "in" else "←"
            access += f" {arrow} {value:#04x}{_byte_note(emulated['port'], value)}"
        exit_section = key_value(
            "the last exit, three ways", {"guest": access, **exit_forms(record, emulated)}
        )
    uart = uart_of(vcpu)
    return Panel(
        exit_section,
        register_table("COM1 registers", uart.registers()),
        text_block("COM1's wire", wire_text(uart.output)),
        vcpu_section(vcpu),
    )


def _pte_text(pte: int) -> str:
    if not pte & PTE_PRESENT:
        return "not present"
    flags = ["present", "writable" if pte & PTE_WRITABLE else "read-only"]
    if pte & PTE_USER:
        flags.append("user")
    return f"gpa {pte >> PAGE_SHIFT << PAGE_SHIFT:#x} ({', '.join(flags)})"


def mmio_panel(vcpu: Any) -> Panel:
    """The last #PF exit and the hypervisor's walk of the guest's table with its verdict;
    then what follows: the shadow entry of the faulting page, what KVM would hand a device
    model, row 0 of the VGA text buffer, and what the guest's own #PF handler got."""
    dom = vcpu.domain
    record, emulated = _last_exit(vcpu)
    walk: dict[str, str] = {}
    after: dict[str, str] = {}
    if record is None or record.get("reason") not in ("EXCEPTION_NMI", "EXCP_PF"):
        walk["exit"] = "none yet"
    else:
        if "exit_qualification" in record:  # VMX: the address is the exit qualification
            addr, code = record["exit_qualification"], record["intr_error_code"]
        else:  # SVM: EXITINFO2 is the address, EXITINFO1 the error code
            addr, code = record["exitinfo2"], record["exitinfo1"]
        write = bool(code & 2)
        walk["address"] = f"{addr:#x}"
        walk["error code"] = f"{code:#x} ({describe_pf_error_code(code)})"
        table = dom.page_table
        walk["guest PTE"] = "paging off" if table is None else _pte_text(table.pte(addr))
        gpa = addr if table is None else table.translate(addr, write)
        if gpa is not None:
            region = dom.mmio.find(gpa)
            walk["gpa is"] = f"{region.name} (emulated)" if region else "RAM"
        walk["verdict"] = VERDICTS[classify_fault(table, dom.mmio, addr, write=write)]
        entry = dom.shadow_table.entries.get(addr >> PAGE_SHIFT)
        if entry is None:
            after["shadow entry"] = "none: an access faults"
        else:
            maddr = entry >> PAGE_SHIFT << PAGE_SHIFT
            rw = "writable" if entry & PTE_WRITABLE else "read-only"
            after["shadow entry"] = f"maddr {maddr:#x}, {rw}"
        after["KVM"] = exit_forms(record, emulated)["KVM"].replace(": the fault was", ":")
    vga = dom.mmio.find(TEXT_BASE)
    if vga is not None and callable(getattr(vga.device, "row", None)):
        after["VGA row 0"] = repr(vga.device.row(0).rstrip())
    if vcpu.done and vcpu.result is not None:
        after["guest's #PF"] = str(vcpu.result)
    return Panel(
        key_value("the last #PF exit, and Xen's walk", walk),
        key_value("what follows", after),
    )


__all__ = ["VERDICTS", "mmio_panel", "serial_panel"]
