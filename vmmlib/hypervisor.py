"""The hypervisor's exit handlers: what Xen does after the CPU leaves the guest.

* Port I/O: decode the exit record and perform the access on the domain's emulated device
  (in Xen HVM the device lives in qemu-dm; chapter 02 adds that hop).
* #PF under shadow paging: walk the guest's page table and decide — emulate MMIO, inject a
  real page fault into the guest, or silently fill the shadow entry and retry.
* Hypercalls: the paravirtual alternative, where the guest asks instead of being trapped.
  ``HYPERVISOR_console_io`` (number 18, ``CONSOLEIO_write`` = 0) prints a whole buffer on
  the hypervisor's console in one call (xen/include/public/xen.h).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import PageFault
from .exits import pf_error_code, record_port_access
from .memory import PAGE_MASK, PAGE_SHIFT
from .paging import FaultKind, classify_fault

if TYPE_CHECKING:
    from .ops import Hypercall, Load, Store
    from .vcpu import Vcpu

HYPERVISOR_console_io = 18
CONSOLEIO_write = 0
CONSOLEIO_read = 1
ENOSYS = 38
HYPERCALL_NAMES = {HYPERVISOR_console_io: "console_io"}

#: Returned by the #PF handler when the shadow was filled and the access must be retried.
RETRY = object()


def handle_port_io(vcpu: Vcpu, record: dict[str, Any]) -> None:
    """Emulate a trapped IN/OUT/INS/OUTS, knowing only the exit record and guest state.

    Like Xen's ``handle_pio`` fast path, it decodes port, size and direction from the VMX
    exit qualification (or the SVM EXITINFO1), takes OUT data from RAX (or the OUTS buffer),
    performs the access on the domain's emulated port bus and leaves IN data in RAX.
    """
    port, size, is_in, string, _, _ = record_port_access(record)
    machine = vcpu.machine
    costs = machine.costs
    bus = vcpu.domain.ports
    count = vcpu.string_count if string else 1
    machine.clock.now += costs.decode_ns + costs.emulate_ns * count
    region = bus.find(port)
    device = region.name if region is not None else "(none)"
    if is_in:
        if string:
            value = vcpu.string_buffer = [bus.read(port, size) for _ in range(count)]
        else:
            value = vcpu.rax = bus.read(port, size)
    elif string:
        value = vcpu.string_buffer
        for v in value:
            bus.write(port, size, v)
    else:
        value = vcpu.rax
        bus.write(port, size, value)
    machine.trace.record(
        (
            machine.clock.now,
            "xen",
            "emulate",
            {"device": device, "port": port, "dir": "in" if is_in else "out", "value": value},
        )
    )


def pf_error_code_for(domain: Any, vaddr: int, write: bool) -> int:
    """The error code the CPU reports for a shadow #PF: P=1 only if the shadow maps the page."""
    return pf_error_code(present=(vaddr >> PAGE_SHIFT) in domain.shadow, write=write)


def handle_page_fault(vcpu: Vcpu, op: Load | Store, error_code: int) -> Any:
    """Classify a shadow #PF and act on it; returns the load's value, None, or ``RETRY``."""
    machine = vcpu.machine
    dom = vcpu.domain
    write = type(op).__name__ == "Store"
    t = machine.clock.advance(machine.costs.decode_ns + machine.costs.shadow_walk_ns)
    kind = classify_fault(dom.page_table, dom.mmio, op.addr, write)
    if kind is FaultKind.PAGE_FAULT:
        guest_code = dom.page_table.error_code(op.addr, write)  # type: ignore[union-attr]
        machine.clock.advance(machine.costs.inject_ns)
        machine.trace.record(
            (t, "xen", "inject", {"vector": 14, "addr": op.addr, "error_code": guest_code})
        )
        raise PageFault(op.addr, guest_code)
    gpa = op.addr if dom.page_table is None else dom.page_table.translate(op.addr, write)
    if kind is FaultKind.HIDDEN and dom.is_ram(gpa):
        dom.shadow[op.addr >> PAGE_SHIFT] = gpa & ~PAGE_MASK
        machine.trace.record((t, "xen", "shadow-fill", {"addr": op.addr, "gpa": gpa}))
        return RETRY
    # MMIO (or a guest-physical hole nobody answers, which reads as all ones)
    t = machine.clock.advance(machine.costs.emulate_ns)
    region = dom.mmio.find(gpa)
    fields = {"device": region.name if region else "(none)", "addr": gpa, "size": op.size}
    if write:
        dom.mmio.write(gpa, op.size, op.value)
        fields.update(dir="write", value=op.value)
        result = None
    else:
        result = dom.mmio.read(gpa, op.size)
        fields.update(dir="read", value=result)
    machine.trace.record((t, "xen", "emulate", fields))
    return result


def handle_hypercall(vcpu: Vcpu, op: Hypercall) -> int:
    """Serve a hypercall; unknown numbers return -ENOSYS as Xen does."""
    machine = vcpu.machine
    t = machine.clock.advance(machine.costs.hypercall_ns)
    name = HYPERCALL_NAMES.get(op.nr, "unknown")
    fields: dict[str, Any] = {"nr": op.nr, "name": name}
    result = -ENOSYS
    if op.nr == HYPERVISOR_console_io and op.args and op.args[0] == CONSOLEIO_write:
        data = bytes(op.args[1])
        machine.console += data
        fields.update(cmd="write", count=len(data))
        result = 0
    machine.trace.record((t, "xen", "hypercall", fields))
    return result
