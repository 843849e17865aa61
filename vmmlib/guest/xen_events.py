"""A guest kernel's event-channel code: hypercalls to set channels up and signal, the upcall.

This is what Linux has in drivers/xen/events (``events_base.c``, ``events_2l.c``) and
``include/xen/events.h``, as generator code over the model's operations. The guest reaches
Xen only through ``Hypercall`` (a VMCALL exit in an HVM guest, a trap in a PV one) with the
command's structure in a scratch buffer of its own memory (layouts in
``vmmlib.xen.evtchn_op``), and reads its ``shared_info`` page with ordinary loads:

* ``evtchn_alloc_unbound(remote)`` offers a new port to ``remote`` (dom0's backend binds it);
  ``evtchn_send(port)`` is Linux's ``notify_remote_via_evtchn``.
* ``evtchn_upcall(shared_info)`` is the 2-level upcall handler: clear
  ``evtchn_upcall_pending``, take the selector word with XCHG, then for each selected word take
  the pending-and-unmasked bits, clearing each pending bit atomically (LOCK CMPXCHG, where
  Linux uses ``sync_clear_bit``) before handling its port. Atomic because Xen may set another
  bit of the same word at any moment.
* ``wait_for_event(port, ...)`` sleeps until ``port`` fires: SCHEDOP_block in a PV guest, HLT
  in an HVM guest that asked for a callback vector (``hvm_set_callback_vector``); both wake
  at once if an event is already pending, so a wake-up is never lost between the last look at
  the ring and going to sleep.

The shared_info page's guest address is something the guest is told (``start_info`` for PV,
chosen with XENMEM_add_to_physmap for HVM); in the model it is the top page of the guest's RAM
(``shared_info_address``).
"""

from __future__ import annotations

import struct

from ..cpu.ops import Cmpxchg, Guest, Hlt, Hypercall, Load, Store, StoreBlock, Xchg
from ..errors import GuestKernelError
from ..hw.memory import PAGE_SHIFT
from ..xen.evtchn import (
    MASK_OFFSET,
    PENDING_OFFSET,
    PENDING_SEL,
    UPCALL_PENDING,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_send,
    EVTCHNOP_unmask,
)
from ..xen.evtchn_op import DOMID_SELF, HYPERVISOR_event_channel_op
from ..xen.upcall import (
    CALLBACK_TYPE_SHIFT,
    CALLBACK_TYPE_VECTOR,
    HVM_PARAM_CALLBACK_IRQ,
    HYPERVISOR_CALLBACK_VECTOR,
    HVMOP_set_param,
    HYPERVISOR_hvm_op,
    HYPERVISOR_sched_op,
    SCHEDOP_block,
)

#: bytes of scratch memory the calls below need for their structures
SCRATCH_SIZE = 16


def shared_info_address(ram_size: int) -> int:
    """Where the model's guest finds its shared_info page: the top page of its RAM."""
    return ((ram_size >> PAGE_SHIFT) - 1) << PAGE_SHIFT


def _checked(rc: int, what: str) -> int:
    if rc < 0:
        raise GuestKernelError(f"{what} failed with {rc}")
    return rc


def evtchn_alloc_unbound(remote_domid: int, scratch: int) -> Guest:
    """EVTCHNOP_alloc_unbound for this domain, to be bound by ``remote_domid``: the new port."""
    yield StoreBlock(scratch, struct.pack("<HHI", DOMID_SELF, remote_domid, 0))
    rc = yield Hypercall(HYPERVISOR_event_channel_op, (EVTCHNOP_alloc_unbound, scratch))
    _checked(rc, "EVTCHNOP_alloc_unbound")
    return (yield Load(scratch + 4, 4))


def evtchn_send(port: int, scratch: int) -> Guest:
    """notify_remote_via_evtchn: EVTCHNOP_send, which marks the remote end pending."""
    yield Store(scratch, 4, port)
    return (yield Hypercall(HYPERVISOR_event_channel_op, (EVTCHNOP_send, scratch)))


def evtchn_unmask(port: int, scratch: int) -> Guest:
    """EVTCHNOP_unmask: Xen clears the mask bit and delivers an edge that waited behind it."""
    yield Store(scratch, 4, port)
    return (yield Hypercall(HYPERVISOR_event_channel_op, (EVTCHNOP_unmask, scratch)))


def hvm_set_callback_vector(scratch: int, vector: int = HYPERVISOR_CALLBACK_VECTOR) -> Guest:
    """An HVM guest asks for its event upcalls as interrupt ``vector`` (HVM_PARAM_CALLBACK_IRQ
    with the vector type), as Linux's xen_set_upcall_vector / xen_callback_vector does."""
    value = CALLBACK_TYPE_VECTOR << CALLBACK_TYPE_SHIFT | vector
    yield StoreBlock(scratch, struct.pack("<HxxIQ", DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, value))
    rc = yield Hypercall(HYPERVISOR_hvm_op, (HVMOP_set_param, scratch))
    return _checked(rc, "HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ)")


def _clear_bit(addr: int, bit: int) -> Guest:
    """sync_clear_bit, as a compare-and-swap loop: clear one bit of a word Xen also writes."""
    old = yield Load(addr, 8)
    while True:
        seen = yield Cmpxchg(addr, 8, old, old & ~(1 << bit))
        if seen == old:
            return
        old = seen


def evtchn_upcall(shared_info: int) -> Guest:
    """The 2-level upcall handler: the ports that fired (their pending bits now clear)."""
    yield Store(shared_info + UPCALL_PENDING, 1, 0)
    selector = yield Xchg(shared_info + PENDING_SEL, 8, 0)
    ports = []
    while selector:
        word = (selector & -selector).bit_length() - 1
        selector &= selector - 1
        pending = yield Load(shared_info + PENDING_OFFSET + 8 * word, 8)
        masked = yield Load(shared_info + MASK_OFFSET + 8 * word, 8)
        live = pending & ~masked
        while live:
            bit = (live & -live).bit_length() - 1
            live &= live - 1
            yield from _clear_bit(shared_info + PENDING_OFFSET + 8 * word, bit)
            ports.append(64 * word + bit)
    return ports


def wait_for_event(port: int, shared_info: int, hvm: bool) -> Guest:
    """Sleep until ``port`` has fired; returns every port the upcalls found on the way."""
    seen: list[int] = []
    while True:
        if hvm:
            yield Hlt()  # the callback vector wakes it (or another interrupt: look again)
        else:
            _checked((yield Hypercall(HYPERVISOR_sched_op, (SCHEDOP_block, 0))),
                     "SCHEDOP_block")
        seen += yield from evtchn_upcall(shared_info)
        if port in seen:
            return seen


__all__ = [
    "SCRATCH_SIZE",
    "evtchn_alloc_unbound",
    "evtchn_send",
    "evtchn_unmask",
    "evtchn_upcall",
    "hvm_set_callback_vector",
    "shared_info_address",
    "wait_for_event",
]
