"""The Xen shared ring, pinned to ``xen/include/public/io/ring.h``.

Sources: xen-project/xen 3f20b8de ``xen/include/public/io/ring.h`` (struct *_sring, __RD32,
SHARED_RING_INIT, RING_PUSH_*_AND_CHECK_NOTIFY, RING_FINAL_CHECK_FOR_*, the overflow macros);
torvalds/linux 1136fa0c ``include/xen/interface/io/ring.h`` (RING_RESPONSE_PROD_OVERFLOW);
Linux blkback ``__do_block_io_op`` (bogus req_prod halts the ring); hardware-facts.md §5.
Offsets derived by compiling the blkif sring with gcc 12 (x86-64): req_prod 0, req_event 4,
rsp_prod 8, rsp_event 12, pvt 16, __pad 20, ring 64.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from vmmlib import MIB, ConfigError, Machine
from vmmlib.xen import ring as R
from vmmlib.xen.ring import BackRing, FrontRing, SharedRing, run, should_notify

TOP = 2**32


def fresh(start: int = 0, entry_size: int = 112):
    sring = SharedRing(np.zeros(4096, np.uint8), entry_size)
    sring.init(start)
    return sring, FrontRing(sring, start), BackRing(sring, start)


def req(n: int) -> bytes:
    return bytes([n & 0xFF]) * 112


def test_header_layout_is_the_gcc_derived_sring():
    assert (R.REQ_PROD, R.REQ_EVENT, R.RSP_PROD, R.RSP_EVENT, R.PVT, R.PAD) == (0, 4, 8, 12, 16,
                                                                             20)
    assert R.HEADER_SIZE == 64
    page = np.zeros(4096, np.uint8)
    sring = SharedRing(page, 112)
    sring.req_prod, sring.req_event = 0x11223344, 0x55667788
    sring.rsp_prod, sring.rsp_event = 0x99AABBCC, 0xDDEEFF00
    assert page[:16].tobytes() == bytes.fromhex("44332211 88776655 ccbbaa99 00ffeedd")
    assert sring.slot_offset(0) == 64 and sring.slot_offset(1) == 64 + 112


def test_ring_size_rounds_down_to_a_power_of_two():
    # __RD32 and __CONST_RING_SIZE
    assert [R.round_down_pow2(n) for n in (0, 1, 2, 3, 36, 255, 256, TOP - 1)] == [
        0, 1, 2, 2, 32, 128, 256, 2**31]
    assert R.ring_size(4096, 112) == 32  # blkif: (4096 - 64) // 112 = 36 -> 32
    assert R.ring_size(4096, 12) == 256  # netif tx (12-byte request): NET_TX_RING_SIZE 256
    assert SharedRing(np.zeros(4096, np.uint8), 112).size == 32
    for bad in (-1, TOP, 1.0):
        with pytest.raises(ConfigError):
            R.round_down_pow2(bad)


def test_shared_ring_init_sets_events_to_one_and_clears_the_padding():
    page = np.full(4096, 0xAA, np.uint8)
    sring = SharedRing(page, 112)
    sring.init()
    assert (sring.req_prod, sring.req_event, sring.rsp_prod, sring.rsp_event) == (0, 1, 0, 1)
    assert not page[16:64].any()  # pvt and __pad zeroed
    assert (page[64:] == 0xAA).all()  # the slots are not touched


def test_bad_ring_configurations_are_config_errors():
    for page, size in ((np.zeros(4096, np.int8), 112), (np.zeros(4095, np.uint8), 112),
                       (bytearray(4096), 112), (np.zeros(4096, np.uint8), 0),
                       (np.zeros(4096, np.uint8), 4033)):
        with pytest.raises(ConfigError):
            SharedRing(page, size)
    with pytest.raises(ConfigError):
        fresh()[0].init(-1)
    with pytest.raises(ConfigError):
        fresh()[1].put_request(bytes(113))


NOTIFY_CASES = [
    # (old, new, event, notify): notify iff event in (old, new], mod 2**32
    (0, 1, 1, True),  # SHARED_RING_INIT's event 1: the first request notifies
    (0, 5, 5, True),
    (0, 5, 3, True),
    (0, 5, 6, False),  # the consumer wants a later index
    (0, 5, 0, False),  # event == old: already notified for that one
    (4, 4, 4, False),  # nothing published
    (10, 12, 3, False),  # event long behind: the consumer is awake
    (0xFFFFFFFE, 0x00000001, 0xFFFFFFFF, True),  # hardware-facts §5.2's example across the wrap
    (0xFFFFFFFE, 0x00000001, 0x00000000, True),
    (0xFFFFFFFE, 0x00000001, 0x00000001, True),
    (0xFFFFFFFE, 0x00000001, 0x00000002, False),
    (0xFFFFFFFE, 0x00000001, 0xFFFFFFFE, False),
    (0xFFFFFFFF, 0x00000000, 0x00000000, True),
]


@pytest.mark.parametrize("old,new,event,notify", NOTIFY_CASES)
def test_the_notify_rule(old, new, event, notify):
    assert should_notify(old, new, event) is notify


def test_notify_rule_equals_event_in_the_published_window():
    rng = random.Random(3)
    for _ in range(5000):
        old = rng.choice([rng.randrange(TOP), TOP - 1 - rng.randrange(40)])
        new = (old + rng.randrange(40)) % TOP
        event = (old + rng.randrange(-50, 50)) % TOP
        assert should_notify(old, new, event) == (0 < (event - old) % TOP <= (new - old) % TOP)


def test_push_steps_put_the_barriers_where_ring_h_does():
    sring, front, _ = fresh()
    front.put_request(req(1))
    steps = front.push_requests_steps()
    assert next(steps) == "wmb" and sring.req_prod == 0  # requests visible before req_prod
    assert next(steps) == "req_prod = 0x1" and sring.req_prod == 1
    assert next(steps) == "mb"  # req_prod visible before req_event is read
    assert next(steps) == "req_event = 0x1: notify"
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value is True


def test_notifications_are_avoided_while_the_back_end_is_busy():
    sring, front, back = fresh()
    front.put_request(req(1))
    assert front.push_requests_and_check_notify() is True  # event 1 is in (0, 1]
    front.put_request(req(2))
    assert front.push_requests_and_check_notify() is False  # the back end has not slept
    assert len(back.take_requests()) == 2
    back.put_response(bytes(16))
    back.put_response(bytes(16))
    assert back.push_responses_and_check_notify() is True  # rsp_event 1
    assert back.final_check_for_requests() is False
    assert sring.req_event == 3  # req_cons + 1: wake me for the next one
    front.put_request(req(3))
    assert front.push_requests_and_check_notify() is True


def test_final_check_re_check_catches_the_request_that_raced_it():
    """The lost wake-up: the back end found no work, the front end pushes before the back
    end has asked for a notification, so no notification is sent; the re-check after the
    barrier finds the request instead."""
    sring, front, back = fresh()
    front.put_request(req(1))
    front.push_requests_and_check_notify()
    back.take_requests()
    back.put_response(bytes(16))
    back.push_responses_and_check_notify()
    check = back.final_check_for_requests_steps()
    assert next(check) == "0 unconsumed requests"
    front.put_request(req(2))  # the front end runs here
    assert front.push_requests_and_check_notify() is False  # req_event is still 1: no wake-up
    assert next(check) == "req_event = 0x2"
    assert next(check) == "mb"
    assert next(check) == "re-check: 1 unconsumed requests"
    with pytest.raises(StopIteration) as done:
        next(check)
    assert done.value.value is True  # without the re-check the request would sit unserved
    assert len(back.take_requests()) == 1


def test_a_push_after_the_event_write_notifies():
    sring, front, back = fresh()
    check = back.final_check_for_requests_steps()
    next(check), next(check)  # req_event = req_cons + 1 written
    front.put_request(req(1))
    assert front.push_requests_and_check_notify() is True
    assert run(check) is True


def test_front_final_check_mirrors_the_back():
    sring, front, back = fresh()
    assert front.final_check_for_responses() is False and sring.rsp_event == 1
    front.put_request(req(1))
    front.push_requests_and_check_notify()
    back.take_requests()
    back.put_response(b"\x07" * 16)
    assert back.push_responses_and_check_notify() is True
    assert front.final_check_for_responses() is True
    assert front.take_responses() == [b"\x07" * 16 + req(1)[16:]]  # rest of the slot kept
    assert front.final_check_for_responses() is False and sring.rsp_event == 2


def test_indices_run_freely_past_2_to_the_32():
    start = TOP - 3
    sring, front, back = fresh(start)
    assert sring.req_event == TOP - 2
    idx = [front.put_request(req(n)) for n in range(6)]
    assert idx == [TOP - 3, TOP - 2, TOP - 1, 0, 1, 2]
    assert [sring.slot(i) for i in idx] == [29, 30, 31, 0, 1, 2]
    assert front.push_requests_and_check_notify() is True
    assert sring.req_prod == 3 and front.free_requests() == 26
    got = back.take_requests()
    assert got == [req(n) for n in range(6)] and back.req_cons == 3
    for _ in got:
        back.put_response(bytes(16))
    assert back.push_responses_and_check_notify() is True and sring.rsp_prod == 3
    assert len(front.take_responses()) == 6 and front.free_requests() == 32


def test_free_slots_and_full():
    sring, front, back = fresh()
    for n in range(32):
        assert front.free_requests() == 32 - n
        front.put_request(req(n))
    assert front.full()
    with pytest.raises(ConfigError):
        front.put_request(req(99))
    front.push_requests_and_check_notify()
    back.take_requests()
    back.put_response(bytes(16))
    back.push_responses_and_check_notify()
    assert front.full() and front.unconsumed_responses() == 1
    front.take_responses()
    assert front.free_requests() == 1


def test_unconsumed_requests_never_exceed_the_response_space():
    sring, front, back = fresh()
    for n in range(32):
        front.put_request(req(n))
    front.push_requests_and_check_notify()
    back.take_requests(limit=20)
    assert back.unconsumed_requests() == 12
    sring.req_prod = 0x1000  # a hostile front end
    assert back.unconsumed_requests() == 12  # min(0x1000 - 20, 32 - (20 - 0))
    assert back.take_requests() == []  # but serving stops at the bogus producer itself
    assert back.halted and back.req_cons == 20


@pytest.mark.parametrize("rsp_prod_pvt", [0, 1000, TOP - 16])
def test_request_overflow_checks_at_their_boundaries(rsp_prod_pvt):
    _, _, back = fresh(rsp_prod_pvt)
    at = rsp_prod_pvt
    assert not back.request_prod_overflow((at + 32) % TOP)  # exactly a ring's worth
    assert back.request_prod_overflow((at + 33) % TOP)
    assert back.request_prod_overflow((at - 1) % TOP)  # behind: 2**32 - 1 outstanding
    assert not back.request_cons_overflow((at + 31) % TOP)
    assert back.request_cons_overflow((at + 32) % TOP)  # no response slot left for it


def test_a_bogus_req_prod_halts_the_ring_for_good():
    sring, front, back = fresh()
    front.put_request(req(1))
    front.push_requests_and_check_notify()
    sring.req_prod = 33  # 33 outstanding in a 32-slot ring
    assert back.take_requests() == []
    assert "bogus ring requests" in back.halted and back.req_cons == 0
    sring.req_prod = 1  # repairing it changes nothing: blkback stopped serving this ring
    assert back.take_requests() == [] and back.req_cons == 0


def test_a_req_prod_of_exactly_the_ring_size_is_served():
    sring, front, back = fresh()
    for n in range(32):
        front.put_request(req(n))
    front.push_requests_and_check_notify()
    assert len(back.take_requests()) == 32 and back.halted is None


def test_each_request_is_copied_before_anyone_looks_at_it():
    sring, front, back = fresh()
    front.put_request(req(1))
    front.put_request(req(2))
    front.push_requests_and_check_notify()
    steps = back.take_requests_steps()
    assert [next(steps) for _ in range(3)] == ["req_prod = 0x2", "rmb",
                                                "copy request 0x0 from slot 0"]
    sring.write_slot(0, b"\xEE" * 112)  # the front end rewrites the slot after the copy
    got = run(steps)
    assert got == [req(1), req(2)]  # the private copy is what the back end validates
    assert sring.read_slot(0) == b"\xEE" * 112


def test_take_requests_limit():
    sring, front, back = fresh()
    for n in range(5):
        front.put_request(req(n))
    front.push_requests_and_check_notify()
    assert back.take_requests(limit=2) == [req(0), req(1)] and back.req_cons == 2
    assert back.take_requests(limit=0) == []
    assert back.take_requests() == [req(2), req(3), req(4)]
    with pytest.raises(ConfigError):
        back.take_requests(limit=-1)


def test_a_bogus_rsp_prod_halts_the_front_end():
    sring, front, back = fresh()
    front.put_request(req(1))
    front.push_requests_and_check_notify()
    assert not front.response_prod_overflow(32) and front.response_prod_overflow(33)
    sring.rsp_prod = 40
    assert front.take_responses() == [] and "illegal number of responses" in front.halted
    assert front.rsp_cons == 0


def test_a_response_needs_a_consumed_request():
    _, _, back = fresh()
    with pytest.raises(ConfigError):
        back.put_response(bytes(16))


def test_the_ring_lives_in_the_guests_memory():
    m = Machine(16 * MIB)
    dom = m.add_domain("guest", 4 * MIB, base=8 * MIB)
    sring = SharedRing.in_guest(dom, 0x10, 112)
    sring.init()
    assert dom.read_ram(0x10004, 4) == 1  # req_event, seen by the guest at its own address
    dom.write_ram(0x10000, 4, 7)
    assert sring.req_prod == 7
    assert m.memory.touched_frames() == [(8 * MIB >> 12) + 0x10]
