"""Event channels, 2-level ABI (vmmlib/xen/evtchn.py): hardware-facts.md §7.1;
xen/common/event_2l.c; layouts derived by compiling xen/include/public/xen.h with gcc."""

from __future__ import annotations

import numpy as np
import pytest

from vmmlib import MIB, Machine
from vmmlib.errors import ConfigError
from vmmlib.xen import evtchn as ev


def two_domains():
    m = Machine(64 * MIB)
    a = m.add_domain("a", 8 * MIB)
    b = m.add_domain("b", 8 * MIB)
    kicks = []
    b.evtchn.on_upcall = lambda: kicks.append(m.clock.now)
    port_b = b.evtchn.alloc_unbound(a.domid)
    port_a = a.evtchn.bind_interdomain(b.evtchn, port_b)
    return m, a, b, port_a, port_b, kicks


def test_numbers_and_layout_are_xens():
    # event_channel.h; shared_info: 32 vcpu_info of 64 bytes, then pending, then mask
    assert (ev.EVTCHNOP_bind_interdomain, ev.EVTCHNOP_send, ev.EVTCHNOP_alloc_unbound,
            ev.EVTCHNOP_unmask) == (0, 4, 6, 9)
    assert (ev.VCPU_INFO_SIZE, ev.PENDING_OFFSET, ev.MASK_OFFSET) == (64, 2048, 2560)
    assert (ev.UPCALL_PENDING, ev.UPCALL_MASK, ev.PENDING_SEL) == (0, 1, 8)
    assert ev.NR_PORTS == 4096


def test_send_marks_the_remote_end_pending_in_its_shared_info_and_kicks_once():
    m, a, b, port_a, port_b, kicks = two_domains()
    assert a.evtchn.send(port_a, {0: a, 1: b}) == ev.UPCALL
    shared = b.evtchn.shared
    assert shared.pending(port_b) and shared.upcall_pending and kicks == [0]
    word = port_b >> 6
    assert int(shared.page[ev.PENDING_OFFSET + 8 * word]) >> (port_b & 63) & 1
    assert int(shared.page[ev.PENDING_SEL]) >> word & 1  # the selector bit of its word


def test_events_coalesce_an_edge_not_a_counter():
    m, a, b, port_a, port_b, kicks = two_domains()
    domains = {0: a, 1: b}
    a.evtchn.send(port_a, domains)
    assert a.evtchn.send(port_a, domains) == ev.COALESCED
    assert kicks == [0]
    assert b.evtchn.shared.take_upcall() == [port_b]  # one event, however many sends
    assert not b.evtchn.shared.pending(port_b) and not b.evtchn.shared.upcall_pending


def test_a_masked_port_remembers_the_edge_and_unmasking_delivers_it():
    m, a, b, port_a, port_b, kicks = two_domains()
    b.evtchn.shared.set_mask(port_b, True)
    assert a.evtchn.send(port_a, {0: a, 1: b}) == ev.MASKED
    assert kicks == [] and b.evtchn.shared.pending(port_b)
    assert b.evtchn.unmask(port_b) == ev.UPCALL and kicks == [0]


def test_a_second_port_of_an_already_selected_word_needs_no_second_kick():
    m = Machine(64 * MIB)
    b = m.add_domain("b", 8 * MIB)
    shared = b.evtchn.shared
    assert shared.set_pending(3) == ev.UPCALL
    assert shared.set_pending(5) == ev.ALREADY_SELECTED
    assert shared.take_upcall() == [3, 5]


def test_binding_needs_a_port_left_unbound_for_this_domain():
    m, a, b, port_a, port_b, kicks = two_domains()
    c = m.add_domain("c", 8 * MIB)
    with pytest.raises(ConfigError):
        c.evtchn.bind_interdomain(b.evtchn, port_b)  # already bound, and not for c
    assert a.evtchn.send(99, {0: a, 1: b, 2: c}) == "bad port"


def test_shared_info_is_the_top_page_of_guest_ram():
    m, a, b, *_ = two_domains()
    mfn = b.gfn_to_mfn((b.ram_size >> 12) - 1)
    assert b.evtchn.shared.page is m.memory.page(mfn)
    assert isinstance(b.evtchn.shared.page, np.ndarray)
