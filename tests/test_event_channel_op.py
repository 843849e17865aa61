"""Event channels as a guest uses them: HYPERVISOR_event_channel_op, SCHEDOP_block, the HVM
callback vector, the 2-level upcall handler (vmmlib/xen/evtchn_op.py, vmmlib/xen/upcall.py,
vmmlib/guest/xen_events.py).

Numbers and layouts: hardware-facts.md §7.1; xen/include/public/xen.h (hypercalls 29, 32, 34),
event_channel.h (EVTCHNOP_* and their structures), sched.h, hvm/hvm_op.h, hvm/params.h;
xen/common/event_channel.c for the answers (-EINVAL, -ESRCH, -EPERM, a dropped send).
"""

import struct

import pytest

from vmmlib.cpu.ops import Hypercall, Load, Store, StoreBlock
from vmmlib.errors import GuestKernelError, Halted
from vmmlib.guest.xen_events import (
    evtchn_alloc_unbound,
    evtchn_send,
    evtchn_unmask,
    evtchn_upcall,
    hvm_set_callback_vector,
    shared_info_address,
    wait_for_event,
)
from vmmlib.hw.memory import MIB
from vmmlib.xen import evtchn_op, upcall
from vmmlib.xen.errno import EFAULT, EINVAL, ENOSYS, EPERM, ESRCH
from vmmlib.xen.evtchn import (
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_send,
    EVTCHNOP_unmask,
)
from vmmlib.xen.machine import Machine
from vmmlib.xen.vcpu import Vcpu

SCRATCH = 0x8000
GUEST_RAM = 16 * MIB
SHINFO = shared_info_address(GUEST_RAM)


def world(kind="pv", vendor="vmx"):
    m = Machine(64 * MIB)
    dom0 = m.add_domain("dom0", 16 * MIB, kind="pv", privileged=True)
    guest = m.add_domain("guest", GUEST_RAM, kind=kind, vendor=vendor)
    return m, dom0, guest


def connect(m, dom0, guest_port, at=None):
    """dom0's backend binds the guest's unbound port; returns dom0's end."""
    return dom0.evtchn.bind_interdomain(m.domains[1].evtchn, guest_port)


def dom0_sends_at(m, dom0, port_of_dom0, t):
    m.clock.call_at(t, lambda: dom0.evtchn.send(port_of_dom0, dict(enumerate(m.domains))))


def hypercall_rows(m, name):
    return [e.fields for e in m.trace.events("hypercall") if e.fields.get("name") == name]


# --- the numbers and layouts ---------------------------------------------------------------------
def test_hypercall_and_command_numbers_are_xens():
    assert evtchn_op.HYPERVISOR_event_channel_op == 32
    assert upcall.HYPERVISOR_sched_op == 29 and upcall.HYPERVISOR_hvm_op == 34
    assert (EVTCHNOP_bind_interdomain, EVTCHNOP_send, EVTCHNOP_alloc_unbound,
            EVTCHNOP_unmask) == (0, 4, 6, 9)
    assert (upcall.SCHEDOP_yield, upcall.SCHEDOP_block) == (0, 1)
    assert (upcall.HVMOP_set_param, upcall.HVM_PARAM_CALLBACK_IRQ) == (0, 0)
    assert upcall.CALLBACK_TYPE_VECTOR == 2 and upcall.CALLBACK_TYPE_SHIFT == 56
    assert evtchn_op.DOMID_SELF == 0x7FF0


def test_argument_structures_have_the_x86_64_layouts():
    # evtchn_alloc_unbound {domid_t dom, remote_dom; evtchn_port_t port}: 8 bytes, port @4;
    # evtchn_bind_interdomain {domid_t remote_dom; port_t remote_port, local_port}: 12, @4, @8
    sizes = {cmd: (size, struct.calcsize(fmt)) for cmd, (size, fmt) in evtchn_op.LAYOUTS.items()}
    assert sizes == {EVTCHNOP_alloc_unbound: (8, 8), EVTCHNOP_bind_interdomain: (12, 12),
                     EVTCHNOP_send: (4, 4), EVTCHNOP_unmask: (4, 4)}
    raw = struct.pack("<HxxII", 1, 7, 9)
    assert raw[4:8] == (7).to_bytes(4, "little") and raw[8:] == (9).to_bytes(4, "little")
    # xen_hvm_param {domid_t domid; uint32_t index; uint64_t value}: 16 bytes, value @8
    assert struct.calcsize("<HxxIQ") == 16


# --- alloc_unbound, bind, send, block: a PV guest --------------------------------------------
def test_a_pv_guest_allocates_a_port_and_sleeps_until_dom0_signals_it():
    m, dom0, guest = world("pv")
    got = {}

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        got["port"] = port
        m.clock.call_at(m.clock.now + 5_000, lambda: dom0_sends_at(
            m, dom0, connect(m, dom0, port), m.clock.now))
        got["seen"] = yield from wait_for_event(port, SHINFO, hvm=False)

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.crashed is None
    assert got["port"] == 1 and got["seen"] == [1]
    assert guest.evtchn.ports[1].state == "interdomain"
    kinds = [(e.actor, e.kind) for e in m.trace.events()]
    assert ("xen", "block") in kinds and ("xen", "upcall") in kinds
    assert [e.fields["via"] for e in m.trace.events("upcall")] == ["callback"]
    assert m.clock.now >= 5_000
    assert not guest.evtchn.shared.pending(1)  # the handler cleared it
    assert m.trace.events("exit") == []  # PV: traps into Xen, no VM exits


def test_block_returns_at_once_when_an_event_is_already_pending():
    m, dom0, guest = world("pv")

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        dom0.evtchn.send(connect(m, dom0, port), dict(enumerate(m.domains)))
        before = m.clock.now
        yield from wait_for_event(port, SHINFO, hvm=False)
        return m.clock.now - before

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.crashed is None and cpu.result < 2_000  # no waiting: the wake-up is not lost


def test_blocking_with_nothing_that_could_wake_the_guest_ends_it_cleanly():
    m, _, guest = world("pv")
    cpu = Vcpu(guest, wait_for_event(1, SHINFO, hvm=False))
    cpu.run()
    assert isinstance(cpu.crashed, Halted) and "SCHEDOP_block" in str(cpu.crashed)


# --- an HVM guest: hypercalls exit, the event arrives as the callback vector -------------------
@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_an_hvm_guest_gets_its_events_as_the_callback_vector(vendor):
    m, dom0, guest = world("hvm", vendor)
    vectors = []

    def program():
        yield from hvm_set_callback_vector(SCRATCH)
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        dom0_sends_at(m, dom0, connect(m, dom0, port), m.clock.now + 3_000)
        yield from wait_for_event(port, SHINFO, hvm=True)
        vectors.extend(e.fields["vector"] for e in m.trace.events("entry")
                       if "vector" in e.fields)

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.crashed is None
    assert guest.callback_vector == upcall.HYPERVISOR_CALLBACK_VECTOR == 0xF3
    assert vectors == [0xF3]
    reasons = [e.fields.get("exit_reason", e.fields.get("exitcode"))
               for e in m.trace.events("exit")]
    hypercall_exit, hlt_exit = (18, 12) if vendor == "vmx" else (0x81, 0x78)
    assert reasons.count(hypercall_exit) == 2 and reasons.count(hlt_exit) == 1
    assert [e.fields["via"] for e in m.trace.events("upcall")] == ["vector 0xf3"]


def test_an_hvm_guest_without_a_callback_is_never_woken_by_an_event():
    m, dom0, guest = world("hvm")

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        dom0_sends_at(m, dom0, connect(m, dom0, port), m.clock.now + 1_000)
        yield from wait_for_event(port, SHINFO, hvm=True)

    cpu = Vcpu(guest, program())
    cpu.run()
    assert isinstance(cpu.crashed, Halted)
    assert guest.evtchn.shared.pending(1)  # the event is there; nothing delivers it


def test_hvm_param_errors():
    m, _, guest = world("hvm")
    results = []

    def program():
        for domid, index, value in ((5, 0, 2 << 56 | 0xF3),   # another domain
                                    (0x7FF0, 3, 0),            # a parameter the model lacks
                                    (0x7FF0, 0, 0 << 56 | 5),  # a GSI callback
                                    (0x7FF0, 0, 2 << 56 | 0x40)):
            yield StoreBlock(SCRATCH, struct.pack("<HxxIQ", domid, index, value))
            results.append((yield Hypercall(34, (0, SCRATCH))))
        results.append((yield Hypercall(34, (0, 0x7FFF_0000))))  # not guest memory
        results.append((yield Hypercall(34, (9, SCRATCH))))  # unknown command
        yield StoreBlock(SCRATCH, struct.pack("<HxxIQ", 0x7FF0, 0, 0))
        results.append((yield Hypercall(34, (1, SCRATCH))))  # get_param
        results.append((yield Load(SCRATCH + 8, 8)))

    Vcpu(guest, program()).run()
    assert results == [-EPERM, -EINVAL, -EINVAL, 0, -EFAULT, -ENOSYS, 0, 2 << 56 | 0x40]
    assert guest.callback_vector == 0x40


def test_hvm_op_from_a_pv_guest_is_refused():
    m, _, guest = world("pv")
    cpu = Vcpu(guest, hvm_set_callback_vector(SCRATCH))
    cpu.run()
    assert isinstance(cpu.crashed, GuestKernelError) and str(-EINVAL) in str(cpu.crashed)


# --- what events are: edges, coalesced; masks; the handler's atomicity ------------------------
def test_two_sends_before_the_guest_runs_are_one_upcall_and_one_port():
    m, dom0, guest = world("pv")

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        mine = connect(m, dom0, port)
        dom0_sends_at(m, dom0, mine, m.clock.now + 1_000)
        dom0_sends_at(m, dom0, mine, m.clock.now + 1_500)
        yield Hypercall(29, (1, 0))  # SCHEDOP_block: wakes at the first
        for _ in range(5):  # the second arrives while the guest works: already pending
            yield Load(SCRATCH, 4)
        m.clock.advance(1_000)
        return (yield from evtchn_upcall(SHINFO))

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.result == [1]
    assert [e.fields["outcome"] for e in m.trace.events("evtchn")] == ["upcall", "coalesced"]


def test_a_masked_port_keeps_its_edge_until_unmask_delivers_it():
    m, dom0, guest = world("pv")

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        mine = connect(m, dom0, port)
        guest.evtchn.shared.set_mask(port, True)  # the guest set its mask bit
        dom0.evtchn.send(mine, dict(enumerate(m.domains)))
        pending_while_masked = guest.evtchn.shared.upcall_pending
        yield from evtchn_unmask(port, SCRATCH)
        seen = yield from wait_for_event(port, SHINFO, hvm=False)
        return pending_while_masked, seen

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.crashed is None and cpu.result == (False, [1])


def test_an_event_that_fires_while_the_handler_runs_is_not_lost():
    # Xen sets port B's bit between the handler's steps: the atomic selector swap and the
    # compare-and-swap bit clears keep it, so the next upcall finds it
    m, dom0, guest = world("pv")

    def program():
        a = yield from evtchn_alloc_unbound(0, SCRATCH)
        b = yield from evtchn_alloc_unbound(0, SCRATCH)
        mine_a, mine_b = connect(m, dom0, a), connect(m, dom0, b)
        dom0.evtchn.send(mine_a, dict(enumerate(m.domains)))
        handler = evtchn_upcall(SHINFO)
        op = next(handler)
        steps = 0
        while True:
            result = yield op
            steps += 1
            if steps == 3:  # after the selector swap, before the bit clears
                dom0.evtchn.send(mine_b, dict(enumerate(m.domains)))
            try:
                op = handler.send(result)
            except StopIteration as done:
                first = done.value
                break
        second = yield from wait_for_event(b, SHINFO, hvm=False)
        return first, second

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.crashed is None
    first, second = cpu.result
    assert 1 in first and 2 in first + second and first.count(2) + second.count(2) == 1


# --- the answers Xen gives a wrong request ---------------------------------------------------
def evtchn_call(cmd, payload):
    def program():
        yield StoreBlock(SCRATCH, payload)
        return (yield Hypercall(32, (cmd, SCRATCH)))
    return program()


@pytest.mark.parametrize("cmd, payload, expected", [
    (EVTCHNOP_send, struct.pack("<I", 77), -EINVAL),             # no such port
    (EVTCHNOP_unmask, struct.pack("<I", 77), -EINVAL),
    (EVTCHNOP_alloc_unbound, struct.pack("<HHI", 0, 0, 0), -EPERM),   # in dom0: not ours
    (EVTCHNOP_alloc_unbound, struct.pack("<HHI", 0x7FF0, 9, 0), -ESRCH),  # no domain 9
    (EVTCHNOP_bind_interdomain, struct.pack("<HxxII", 0, 1, 0), -EINVAL),  # not offered
    (EVTCHNOP_bind_interdomain, struct.pack("<HxxII", 9, 1, 0), -ESRCH),
    (2, struct.pack("<I", 0), -ENOSYS),                           # bind_pirq: not modelled
])
def test_wrong_requests_get_xens_errors(cmd, payload, expected):
    m, dom0, guest = world("pv")
    dom0.evtchn.alloc_unbound(0)  # dom0's port 1, offered to dom0 itself, not to the guest
    cpu = Vcpu(guest, evtchn_call(cmd, payload))
    cpu.run()
    assert cpu.crashed is None and cpu.result == expected
    assert hypercall_rows(m, "event_channel_op")[-1]["result"] == expected


def test_a_buffer_outside_guest_memory_is_efault():
    m, _, guest = world("pv")

    def program():
        return (yield Hypercall(32, (EVTCHNOP_send, 0x7FFF_0000)))

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.result == -EFAULT


def test_a_send_on_a_port_still_unbound_is_dropped_silently():
    m, _, guest = world("pv")

    def program():
        port = yield from evtchn_alloc_unbound(0, SCRATCH)
        return (yield from evtchn_send(port, SCRATCH))

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.result == 0
    assert m.trace.events("evtchn")[-1].fields["outcome"] == "dropped"


def test_a_guest_may_not_signal_a_port_xen_consumes():
    m, _, guest = world("pv")
    port = guest.evtchn.alloc_unbound(0)
    guest.evtchn.consumers[port] = lambda: None  # e.g. an ioreq server's channel

    def program():
        yield Store(SCRATCH, 4, port)
        return (yield Hypercall(32, (EVTCHNOP_send, SCRATCH)))

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.result == -EINVAL


def test_sched_op_yield_and_unknown_commands():
    m, _, guest = world("pv")

    def program():
        a = yield Hypercall(29, (0, 0))
        b = yield Hypercall(29, (7, 0))
        return a, b

    cpu = Vcpu(guest, program())
    cpu.run()
    assert cpu.result == (0, -ENOSYS)
