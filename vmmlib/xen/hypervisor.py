"""Xen's exit handlers: what the hypervisor does after the CPU leaves the guest.

The CPU jumps here through the control block's host RIP (``exit_handler(vendor)``), as it
jumps to Xen's ``vmx_vmexit_handler`` or ``svm_vmexit_handler``. Each reads the exit fields
the CPU wrote, dispatches on the exit reason and returns what the emulated instruction
produced (or ``RETRY``):

* Port I/O: decode port, size and direction from the VMX exit qualification (or the SVM
  EXITINFO1), as Xen's ``handle_pio`` fast path does, take OUT data from RAX (or the OUTS
  buffer), perform the access on the domain's emulated port bus and leave IN data in RAX
  (in Xen HVM the device lives in qemu-dm; chapter 02 adds that hop).
* #PF under shadow paging: walk the guest's page table and decide — emulate MMIO, inject a
  real page fault into the guest, or silently fill the shadow entry and retry.
* INVLPG: the guest flushed a TLB entry, so the shadow entry of that page goes too.
* VMCALL / VMMCALL: a hypercall (``vmmlib.xen.hypercalls``).

A PV guest has no VMCS: its #GP (an I/O or privileged instruction Xen must emulate) and #PF
trap here through ``pv_trap``, and its hypercalls through ``pv_hypercall``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..cpu.exits import (
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_HLT,
    EXIT_REASON_INVLPG,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_HLT,
    VMEXIT_INVLPG,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
)
from ..cpu.ops import Hlt, In, Ins, Invlpg, Out, Outs
from ..cpu.vmcs import EMULATED_PAGE, RETRY, Probe
from ..errors import ConfigError, Halted, PageFault
from ..hw.bus import elements
from ..hw.memory import PAGE_SHIFT
from ..trace import Schema
from . import hypercalls
from .shadow import FaultKind, classify_fault
from .upcall import UPCALL, block, vector_pending

if TYPE_CHECKING:
    from .vcpu import Vcpu

EMULATE_IN = Schema("xen", "emulate", ("device", "port", "dir", "value"), {"dir": "in"})
EMULATE_OUT = Schema("xen", "emulate", ("device", "port", "dir", "value"), {"dir": "out"})
_MMIO = ("device", "addr", "size", "dir", "value")
EMULATE_MMIO_READ = Schema("xen", "emulate", _MMIO, {"dir": "read"})
EMULATE_MMIO_WRITE = Schema("xen", "emulate", _MMIO, {"dir": "write"})
INJECT_PF = Schema("xen", "inject", ("vector", "addr", "error_code"), {"vector": 14})
SHADOW_FILL = Schema("xen", "shadow-fill", ("addr", "gpa"))
SHADOW_DROP = Schema("xen", "invlpg", ("addr", "dropped"))
INTERRUPT = Schema("xen", "inject", ("vector", "irq"))
PROBE_MMIO = Schema("xen", "probe", ("addr", "gpa", "page"), {"page": "emulated"})
_EMULATE_IN, _EMULATE_OUT = EMULATE_IN.id, EMULATE_OUT.id


# -- entry points ------------------------------------------------------------------------------
def vmx_vmexit_handler(vcpu: Vcpu) -> Any:
    """Intel: dispatch on the basic exit reason (VMCS field 0x4402, bits 15:0)."""
    c = vcpu.control
    reason = c.exit_reason
    if reason == EXIT_REASON_IO_INSTRUCTION:
        q = c.exit_qualification  # Xen's io_qual: size-1:3, in:1, str:1, rep:1, imm:1, port:16
        if q & 16:  # string I/O: the instruction emulator
            return _string_pio(vcpu, q >> 16, (q & 7) + 1, bool(q & 8))
        return handle_pio(vcpu, q >> 16, (q & 7) + 1, q & 8)
    if reason == EXIT_REASON_EXCEPTION_NMI:  # a #PF: qualification = linear address
        return handle_page_fault(vcpu, c.exit_qualification, c.intr_error_code)
    if reason == EXIT_REASON_VMCALL:
        return hypercalls.dispatch(vcpu)
    if reason == EXIT_REASON_INVLPG:  # qualification = the linear address
        return handle_invlpg(vcpu, c.exit_qualification)
    if reason == EXIT_REASON_HLT:
        return handle_hlt(vcpu)
    raise ConfigError(f"no handler for VMX exit reason {reason}")


def svm_vmexit_handler(vcpu: Vcpu) -> Any:
    """AMD: dispatch on EXITCODE."""
    c = vcpu.control
    code = c.exitcode
    if code == VMEXIT_IOIO:
        info1 = c.exitinfo1  # TYPE bit 0, STR bit 2, one-hot size bits 6:4, port 31:16
        if info1 & 4:
            return _string_pio(vcpu, info1 >> 16, (info1 >> 4) & 7, bool(info1 & 1))
        return handle_pio(vcpu, info1 >> 16, (info1 >> 4) & 7, info1 & 1)
    if code == VMEXIT_EXCEPTION_PF:  # EXITINFO1 = error code, EXITINFO2 = faulting address
        return handle_page_fault(vcpu, c.exitinfo2, c.exitinfo1)
    if code == VMEXIT_VMMCALL:
        return hypercalls.dispatch(vcpu)
    if code == VMEXIT_INVLPG:  # EXITINFO1 = the linear address (decode assists)
        return handle_invlpg(vcpu, c.exitinfo1)
    if code == VMEXIT_HLT:
        return handle_hlt(vcpu)
    raise ConfigError(f"no handler for SVM exit code {code:#x}")


def exit_handler(vendor: str) -> Callable[[Vcpu], Any]:
    """The handler a vCPU's control block points at (its host RIP)."""
    return vmx_vmexit_handler if vendor == "vmx" else svm_vmexit_handler


def pv_hypercall(vcpu: Vcpu) -> Any:
    """The trap a PV guest's hypercall takes (no VM exit: PV guests run without a VMCS)."""
    return hypercalls.dispatch(vcpu)


def pv_trap(vcpu: Vcpu, vector: int, error_code: int, address: int) -> Any:
    """A PV guest's fault, in Xen's own trap handlers. #GP (13): Xen decodes the instruction
    at RIP and emulates the I/O (or INVLPG) the guest may not do itself, as its
    ``emulate_privileged_op`` does; #PF (14): the same decision as for a shadow fault."""
    op = vcpu.instruction
    if vector == 14:
        return handle_page_fault(vcpu, address, error_code)
    if op.__class__ in (In, Out):
        return handle_pio(vcpu, op.port, op.size, op.__class__ is In)
    if op.__class__ in (Ins, Outs):
        return _string_pio(vcpu, op.port, op.size, op.__class__ is Ins)
    if op.__class__ is Invlpg:
        return handle_invlpg(vcpu, op.addr)
    if op.__class__ is Hlt:
        return handle_hlt(vcpu)
    raise ConfigError(f"no PV trap handler for vector {vector} and {op!r}")


# -- halting and interrupts --------------------------------------------------------------------
def handle_hlt(vcpu: Vcpu) -> int:
    """HLT: block the vCPU until its virtual PIC has an interrupt to deliver, or an event is
    pending and the guest asked for a callback vector (``vmmlib.xen.upcall``); time moves on
    from alarm to alarm meanwhile. Then the vector is injected, which the VM entry delivers.
    A vCPU that nothing can ever wake is ended (``Halted``)."""
    dom = vcpu.domain
    machine = vcpu.machine
    pic = dom.vpic
    if pic is None:
        raise Halted("HLT with interrupts that can never arrive: the domain has no PIC")

    def ready() -> bool:
        return pic.pending() or vector_pending(dom)

    block(vcpu, ready, "HLT")
    if pic.pending():
        irq, vector = pic.acknowledge()
        t = machine.clock.advance(machine.costs.inject_ns)
        machine.trace.record((t, INTERRUPT.id, vector, irq))
        return vector
    vector = dom.callback_vector
    t = machine.clock.advance(machine.costs.inject_ns)
    machine.trace.record((t, UPCALL.id, vcpu.name, f"vector {vector:#x}"))
    return vector


# -- port I/O ----------------------------------------------------------------------------------
_MASK = (0, 0xFF, 0xFFFF, 0, 0xFFFF_FFFF)


def handle_pio(vcpu: Vcpu, port: int, size: int, is_in: int) -> int:
    """Emulate a trapped IN/OUT on the domain's emulated port bus, as Xen's ``handle_pio``:
    OUT data comes from RAX, IN data goes to RAX (and is returned)."""
    dom = vcpu.domain
    clock = dom.clock
    bus = dom.ports
    region = bus.by_port.get(port)
    clock.now += dom.pio_ns  # decode the exit, emulate one access
    if region is not None and port + size - 1 <= region.end:  # one device answers it all
        device, name = region.device, region.name
        if is_in:
            value = vcpu.rax = device.read(port - region.base, size) & _MASK[size]
        else:
            value = vcpu.rax
            device.write(port - region.base, size, value)
    elif region is None and dom.ioreq_server is not None and (
            name := dom.ioreq_server.serves_port(port)):  # qemu-dm's: an ioreq to dom0
        clock.now -= vcpu.machine.costs.emulate_ns  # Xen only decodes: qemu-dm emulates
        if is_in:
            value = vcpu.rax = dom.ioreq_server.pio(vcpu, port, size, True) & _MASK[size]
        else:
            value = vcpu.rax
            dom.ioreq_server.pio(vcpu, port, size, False, value)
        return value  # the ioreq rows tell what happened
    else:  # unclaimed, or straddling two devices: the bus decodes it byte lane by lane
        name = region.name if region is not None else "(none)"
        if is_in:
            value = vcpu.rax = bus.read(port, size)
        else:
            value = vcpu.rax
            bus.write(port, size, value)
    record = dom.record  # a bound list.append: called as a local, the call specializes
    record((clock.now, _EMULATE_IN if is_in else _EMULATE_OUT, name, port, value))
    return value


def _string_pio(vcpu: Vcpu, port: int, size: int, is_in: bool) -> list[int]:
    """Emulate (REP) INS/OUTS: ``vcpu.string_count`` elements, from or to the memory operand at
    ``vcpu.string_address`` (guest-virtual; within one page) or, without one, the elements the
    program keeps (``vcpu.string_buffer``). For qemu-dm's ports it is one ioreq with ``count``
    and, with a memory operand, ``data_is_ptr`` and the buffer's guest-physical address."""
    machine = vcpu.machine
    costs = machine.costs
    dom = vcpu.domain
    count, vaddr = vcpu.string_count, vcpu.string_address
    gpa = None
    if vaddr is not None:  # the emulator translates the memory operand (it may fault)
        gpa = _guest_buffer(vcpu, vaddr, count * size, is_in)
    region = dom.ports.find(port)
    server = dom.ioreq_server
    if region is None and server is not None and server.serves_port(port):
        machine.clock.now += costs.decode_ns
        if gpa is not None:
            server.pio(vcpu, port, size, is_in, count=count, gpa=gpa)
            if is_in:
                data = dom.read_bytes(gpa, count * size)
                vcpu.string_buffer = elements(data, size)
            return vcpu.string_buffer
        values = []  # no buffer in guest memory to point at: one ioreq per element
        for i in range(count):
            if is_in:
                values.append(server.pio(vcpu, port, size, True))
            else:
                server.pio(vcpu, port, size, False, vcpu.string_buffer[i])
        if is_in:
            vcpu.string_buffer = values
        return vcpu.string_buffer
    bus = dom.ports
    machine.clock.now += costs.decode_ns + costs.emulate_ns * count
    device = region.name if region is not None else "(none)"
    if is_in:
        data = bus.read_string(port, size, count)
        value = vcpu.string_buffer = elements(data, size)
        if gpa is not None:
            dom.write_bytes(gpa, data)
    else:
        if gpa is not None:
            vcpu.string_buffer = elements(dom.read_bytes(gpa, count * size), size)
        value = vcpu.string_buffer
        for v in value:
            bus.write(port, size, v)
    machine.trace.record(
        (machine.clock.now, _EMULATE_IN if is_in else _EMULATE_OUT, device, port, value)
    )
    return value


def _guest_buffer(vcpu: Vcpu, vaddr: int, length: int, write: bool) -> int:
    """The guest-physical address of a string instruction's memory operand (one page), or a
    #PF injected into the guest, as the emulator's linear access would give."""
    dom = vcpu.domain
    table = dom.page_table
    gpa = vaddr if table is None else table.translate(vaddr, write)
    last = None if gpa is None else (gpa + length - 1)
    if gpa is None or not dom.is_ram(gpa) or not dom.is_ram(last) or (gpa ^ last) >> PAGE_SHIFT:
        code = table.error_code(vaddr, write) if table is not None else 0
        machine = vcpu.machine
        machine.trace.record((machine.clock.now, INJECT_PF.id, vaddr, code))
        raise PageFault(vaddr, code)
    return gpa


# -- shadow page faults ------------------------------------------------------------------------
def handle_invlpg(vcpu: Vcpu, vaddr: int) -> None:
    """The guest invalidated the TLB entry of ``vaddr``: drop the shadow entry of that page."""
    dom = vcpu.domain
    t = dom.clock.advance(vcpu.machine.costs.decode_ns)
    dropped = dom.shadow_table.drop(vaddr >> PAGE_SHIFT)
    dom.record((t, SHADOW_DROP.id, vaddr, dropped))


def handle_page_fault(vcpu: Vcpu, vaddr: int, error_code: int) -> Any:
    """Classify a shadow #PF and act on it; returns the load's value, None, ``RETRY``, or
    ``EMULATED_PAGE`` for the CPU's ``Probe`` of an MMIO page (nothing is emulated then)."""
    machine = vcpu.machine
    dom = vcpu.domain
    op = vcpu.instruction  # the emulator decodes the faulting instruction
    write = bool(error_code & 2)
    t = machine.clock.advance(machine.costs.decode_ns + machine.costs.shadow_walk_ns)
    kind = classify_fault(dom.page_table, dom.mmio, vaddr, write)
    if kind is FaultKind.PAGE_FAULT:
        guest_code = dom.page_table.error_code(vaddr, write)  # type: ignore[union-attr]
        machine.clock.advance(machine.costs.inject_ns)
        machine.trace.record((t, INJECT_PF.id, vaddr, guest_code))
        raise PageFault(vaddr, guest_code)
    gpa = vaddr if dom.page_table is None else dom.page_table.translate(vaddr, write)
    if kind is FaultKind.HIDDEN and dom.is_ram(gpa):
        writable = dom.page_table is None or dom.page_table.translate(vaddr, True) is not None
        dom.shadow_table.fill(vaddr, gpa, dom.gfn_to_mfn(gpa >> 12), writable)
        machine.trace.record((t, SHADOW_FILL.id, vaddr, gpa))
        return RETRY
    # MMIO (or a guest-physical hole nobody answers, which reads as all ones)
    if op.__class__ is Probe:  # the CPU checks a page of a multi-page access first
        machine.trace.record((t, PROBE_MMIO.id, vaddr, gpa))
        return EMULATED_PAGE
    t = machine.clock.advance(machine.costs.emulate_ns)
    region = dom.mmio.find(gpa)
    server = dom.ioreq_server
    if region is None and server is not None and (served := server.serves_mmio(gpa)):
        name, buffered = served
        if write:  # a single write into the VGA window needs no answer: the buffered ring
            if not (buffered and server.send_buffered(1, gpa, op.size, op.value)):
                server.mmio(vcpu, gpa, op.size, True, op.value)
            return None
        return server.mmio(vcpu, gpa, op.size, False) & ((1 << (8 * op.size)) - 1)
    device = region.name if region else "(none)"
    if write:
        dom.mmio.write(gpa, op.size, op.value)
        machine.trace.record((t, EMULATE_MMIO_WRITE.id, device, gpa, op.size, op.value))
        return None
    result = dom.mmio.read(gpa, op.size)
    machine.trace.record((t, EMULATE_MMIO_READ.id, device, gpa, op.size, result))
    return result
