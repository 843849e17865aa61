"""The upcall: how a pending event reaches a guest's vCPU, and how a vCPU sleeps until one does.

When Xen marks an event pending and sets the vCPU's ``evtchn_upcall_pending`` (``vmmlib.xen.
evtchn``), the guest must be told:

* a **PV** guest registered a callback with Xen; Xen enters it on the guest's next return from
  the hypervisor, unless the guest has ``evtchn_upcall_mask`` set (its "interrupts off"). A PV
  guest with nothing to do sleeps with ``HYPERVISOR_sched_op(SCHEDOP_block)`` (hypercall 29,
  command 1), which re-enables event delivery (clears the mask) and blocks the vCPU until an
  event is pending — returning at once if one already is (xen/common/schedule.c ``do_block``).
* an **HVM** guest has no callback: Xen raises an interrupt. The guest chooses how with
  ``HYPERVISOR_hvm_op(HVMOP_set_param, {domid, HVM_PARAM_CALLBACK_IRQ, value})`` (hypercall 34,
  command 0; the structure ``xen_hvm_param`` is domid u16 @0, index u32 @4, value u64 @8). The
  value's bits 63:56 give the type — 0 a GSI, 1 a PCI INTx line, 2 a **vector** (bits 7:0),
  which Xen injects directly whenever upcall_pending is set (Linux uses vector 0xF3,
  HYPERVISOR_CALLBACK_VECTOR). An HVM guest sleeps with HLT, and the vector wakes it as a device
  interrupt would. Sources: xen/include/public/hvm/params.h (HVM_PARAM_CALLBACK_IRQ 0 and its
  types), xen/include/public/hvm/hvm_op.h (HVMOP_set_param 0, xen_hvm_param), xen/include/
  public/sched.h (SCHEDOP_yield 0, SCHEDOP_block 1), xen/arch/x86/hvm/irq.c
  (``hvm_vcpu_has_pending_irq``: the callback vector while upcall_pending is set).

What the model simplifies: a guest program is not interrupted in the middle of its code, so an
upcall is taken where the guest waits (SCHEDOP_block, HLT); the model supports the vector type
of callback only (a GSI or PCI INTx callback is refused with -EINVAL, where Xen would route it
through the virtual interrupt controllers).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..errors import Halted
from ..trace import Schema
from .errno import EFAULT, EINVAL, ENOSYS, EPERM
from .evtchn import UPCALL_MASK

if TYPE_CHECKING:
    from .domain import Domain
    from .vcpu import Vcpu

HYPERVISOR_sched_op = 29
SCHEDOP_yield, SCHEDOP_block = 0, 1
HYPERVISOR_hvm_op = 34
HVMOP_set_param, HVMOP_get_param = 0, 1
HVM_PARAM_CALLBACK_IRQ = 0
CALLBACK_TYPE_SHIFT = 56
CALLBACK_TYPE_GSI, CALLBACK_TYPE_PCI_INTX, CALLBACK_TYPE_VECTOR = 0, 1, 2
HYPERVISOR_CALLBACK_VECTOR = 0xF3  # Linux arch/x86/include/asm/irq_vectors.h
DOMID_SELF = 0x7FF0

BLOCK = Schema("xen", "block", ("vcpu",))
UPCALL = Schema("xen", "upcall", ("vcpu", "via"))
SCHED_OP = Schema("xen", "hypercall", ("nr", "name", "cmd", "result"),
                  {"nr": HYPERVISOR_sched_op, "name": "sched_op"})
HVM_OP = Schema("xen", "hypercall", ("nr", "name", "cmd", "value", "result"),
                {"nr": HYPERVISOR_hvm_op, "name": "hvm_op"})


def upcall_pending(domain: Domain) -> bool:
    """Is an event waiting for the domain's vCPU (its vcpu_info's evtchn_upcall_pending)?"""
    return domain.evtchn.shared.upcall_pending


def vector_pending(domain: Domain) -> bool:
    """Would Xen inject the callback vector now (HVM, a vector callback, an upcall pending)?"""
    return domain.callback_vector is not None and upcall_pending(domain)


def block(vcpu: Vcpu, ready, why: str) -> None:  # noqa: ANN001 - a () -> bool
    """Block the vCPU until ``ready()``: virtual time runs from alarm to alarm meanwhile.
    A vCPU that nothing can ever wake is ended (``Halted``), as the model's HLT is."""
    machine = vcpu.machine
    t = machine.clock.advance(machine.costs.decode_ns)
    machine.trace.record((t, BLOCK.id, vcpu.name))
    if not machine.clock.run_until(ready):
        raise Halted(f"{why} with nothing pending and nothing left that could wake it")


def sched_op(vcpu: Vcpu, t: int, args: tuple[int, ...]) -> int:
    """HYPERVISOR_sched_op(cmd, arg): SCHEDOP_yield returns at once; SCHEDOP_block enables
    event delivery and sleeps until an event is pending, then the callback is entered."""
    cmd = (args + (0,))[0]
    dom, machine = vcpu.domain, vcpu.machine
    if cmd == SCHEDOP_yield:
        result = 0
    elif cmd == SCHEDOP_block:
        machine.trace.record((t, SCHED_OP.id, "block", 0))
        shared = dom.evtchn.shared
        shared.page[UPCALL_MASK] = 0  # local_event_delivery_enable()
        block(vcpu, lambda: shared.upcall_pending, "SCHEDOP_block")
        t = machine.clock.advance(machine.costs.inject_ns)
        machine.trace.record((t, UPCALL.id, vcpu.name, "callback"))
        return 0
    else:
        result = -ENOSYS  # the model implements yield and block only
    machine.trace.record((t, SCHED_OP.id, {0: "yield"}.get(cmd, f"cmd {cmd}"), result))
    return result


def hvm_op(vcpu: Vcpu, t: int, args: tuple[int, ...]) -> int:
    """HYPERVISOR_hvm_op(HVMOP_set_param / get_param, &xen_hvm_param): the callback parameter."""
    cmd, arg = (args + (0, 0))[:2]
    dom = vcpu.domain
    value = -1
    raw = dom.copy_from_guest(arg, 16) if cmd in (HVMOP_set_param, HVMOP_get_param) else None
    if cmd not in (HVMOP_set_param, HVMOP_get_param):
        result = -ENOSYS
    elif raw is None:
        result = -EFAULT
    else:
        domid, index, value = struct.unpack("<HxxIQ", raw)
        result = _param(dom, cmd, arg, domid, index, value)
    name = {HVMOP_set_param: "set_param", HVMOP_get_param: "get_param"}.get(cmd, f"cmd {cmd}")
    vcpu.machine.trace.record((t, HVM_OP.id, name, value, result))
    return result


def _param(dom: Domain, cmd: int, arg: int, domid: int, index: int, value: int) -> int:
    if dom.kind != "hvm":
        return -EINVAL  # HVM parameters exist for HVM domains only
    if domid not in (DOMID_SELF, dom.domid):
        return -EPERM
    if index != HVM_PARAM_CALLBACK_IRQ:
        return -EINVAL  # the model keeps this one parameter
    if cmd == HVMOP_get_param:
        current = 0 if dom.callback_vector is None else (
            CALLBACK_TYPE_VECTOR << CALLBACK_TYPE_SHIFT | dom.callback_vector)
        return 0 if dom.copy_to_guest(arg + 8, current.to_bytes(8, "little")) else -EFAULT
    kind, vector = value >> CALLBACK_TYPE_SHIFT, value & 0xFF
    if value == 0:
        dom.callback_vector = None  # no callback: events are not delivered
    elif kind == CALLBACK_TYPE_VECTOR:
        dom.callback_vector = vector  # Xen keeps the low byte, unchecked (hvm/irq.c)
    else:
        return -EINVAL
    return 0


__all__ = [
    "HVM_PARAM_CALLBACK_IRQ",
    "HVMOP_set_param",
    "HYPERVISOR_CALLBACK_VECTOR",
    "HYPERVISOR_hvm_op",
    "HYPERVISOR_sched_op",
    "SCHEDOP_block",
    "block",
    "hvm_op",
    "sched_op",
    "vector_pending",
]
