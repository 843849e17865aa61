"""Chapter 03's ring scenarios (vmmlib/scenarios/ring_demo.py): a blkif burst round a real
shared ring page, free-running indices wrapping past 2**32, the notify rule's count of events,
and notifications per request against queue depth."""

import math

import numpy as np
import pytest

from vmmlib.errors import ConfigError
from vmmlib.hw.memory import PAGE_SHIFT
from vmmlib.scenarios.ring_demo import lost_wakeup, notification_sweep, ring_burst
from vmmlib.scenarios.ring_world import SLOT_STATES, ring_state, ring_world
from vmmlib.scenarios.split_drivers import RING
from vmmlib.xen.blkif import BLKIF_OP_READ, decode_request, decode_response
from vmmlib.xen.ring import HEADER_SIZE

MASK = 2**32 - 1


def stepped(burst):
    """Step a burst to its end; the RingState after every step and step()'s results."""
    states, results = [burst.ring], []
    while True:
        results.append(burst.step())
        states.append(burst.ring)
        if not results[-1]:
            return states, results


def in_window(old, new, event):
    """Is ``event`` in the half-open window (old, new] of 32-bit indices? (Written from the
    ring.h comment, not from vmmlib's should_notify.)"""
    return 0 < (event - old) % 2**32 <= (new - old) % 2**32


def test_the_ring_is_a_page_of_the_guest_s_memory_and_holds_what_was_put():
    burst = ring_burst(3, start=0)
    w = burst.world
    page = w.machine.memory.page(w.guest.gfn_to_mfn(RING >> PAGE_SHIFT))
    assert np.shares_memory(w.sring.page, page)
    assert w.sring.size == 32
    for _ in range(3):
        burst.step()  # three put-request steps
    for k, event in enumerate(burst.trace.events("put-request")):
        raw = bytes(page[HEADER_SIZE + k * 112: HEADER_SIZE + (k + 1) * 112])
        req = decode_request(raw)
        assert (req.id, req.sector_number, req.operation) == (
            event.fields["id"], event.fields["sector"], BLKIF_OP_READ)
        assert req.nr_segments == 1 and req.seg[0][1:] == (0, 7)  # a whole 4 KiB page
        assert req.seg[0].gref == event.fields["gref"] >= 8  # refs 0-7 are reserved
    # nothing is published yet: the shared req_prod has not moved
    assert w.sring.req_prod == 0 and w.front.req_prod_pvt == 3
    assert [s.state for s in burst.ring.slots[:4]] == ["request-private"] * 3 + ["free"]


def test_slot_is_the_index_masked_with_31():
    burst = ring_burst(40, start=2**32 - 20, depth=32)
    states, _ = stepped(burst)
    rows = burst.trace.events("put-request") + burst.trace.events("take")
    assert len(rows) == 40 * 3
    for e in rows:
        assert e.fields["slot"] == e.fields["idx"] & 31
    for state in states:
        for view in state.slots:
            if view.index is not None:
                assert view.index & 31 == view.slot
    # the request taken from each index is the one put there: same id, same sector
    put = {e.fields["idx"]: e.fields["id"] for e in burst.trace.events("put-request")}
    taken = [e for e in burst.trace.events("take") if e.actor == "back"]
    assert len(taken) == 40 and all(put[e.fields["idx"]] == e.fields["id"] for e in taken)


def test_the_indices_wrap_past_2_32_and_the_ring_keeps_working():
    start = 2**32 - 3
    burst = ring_burst()  # 6 requests from 2**32 - 3
    states, results = stepped(burst)
    assert results[-1] is False and all(results[:-1])
    assert burst.done and burst.answered == 6
    end = (start + 6) & MASK
    assert end == 3
    assert list(states[-1].indices().values()) == [end, end + 1, end, end + 1, end, end, end, end]
    idxs = [e.fields["idx"] for e in burst.trace.events("put-request")]
    assert idxs == [(start + k) & MASK for k in range(6)] and idxs[3] == 0  # wrapped
    answered = [e.fields["id"] for e in burst.trace.events("take") if e.actor == "front"]
    assert sorted(answered) == sorted(e.fields["id"] for e in burst.trace.events("put-request"))
    assert all(e.fields["status"] == 0 for e in burst.trace.events("put-response"))


def test_the_snapshot_walks_every_state_and_counts_what_is_in_flight():
    states, _ = stepped(ring_burst())
    seen = set()
    for s in states:
        seen |= {v.state for v in s.slots}
        in_flight = (s.req_prod_pvt - s.rsp_cons) & MASK
        assert sum(s.count(k) for k in SLOT_STATES if k != "free") == in_flight
        for v in s.slots:
            if v.state.startswith("response"):
                assert v.response is not None and v.request is None
            elif v.state != "free":
                assert v.request is not None and v.label.startswith("rd #")
    assert seen == set(SLOT_STATES)


def test_the_snapshot_reads_the_page_not_a_copy():
    burst = ring_burst(2, start=0)
    burst.step()
    w = burst.world
    w.sring.page[HEADER_SIZE + 8] = 0x7B  # id byte 0 of slot 0, as a hostile front end could
    assert burst.ring.slots[0].request.id == 0x7B


def test_notifications_follow_the_notify_rule():
    for requests, depth in ((6, None), (50, 7), (64, 32), (9, 1)):
        burst = ring_burst(requests, 2**32 - 5, depth).run()
        assert burst.done
        pushes = burst.trace.events("push")
        for e in pushes:
            f = e.fields
            new = f.get("req_prod", f.get("rsp_prod"))
            event = f.get("req_event", f.get("rsp_event"))
            assert f["notify"] == in_window(f["old"], new, event)
        for actor in ("front", "back"):
            predicted = sum(e.fields["notify"] for e in pushes if e.actor == actor)
            assert len(burst.trace.events("notify", actor)) == predicted
        # the back end sleeps between batches and the front end waits for each batch:
        # one event each way per batch, however many requests it holds
        batches = math.ceil(requests / (depth or min(requests, 32)))
        assert burst.notifications() == {"front->back": batches, "back->front": batches}


def test_the_doorbell_is_a_real_event_channel():
    burst = ring_burst(4, depth=2).run()
    sends = burst.trace.events("evtchn")
    assert len(sends) == len(burst.trace.events("notify")) == 4
    assert {e.fields["domain"] for e in sends} == {"guest", "dom0"}
    assert all(e.fields["outcome"] == "upcall" for e in sends)  # each woken end cleared it
    wakes = burst.trace.events("wake")
    assert len(wakes) == 4 and all(e.fields["ports"] == [1] for e in wakes)


def test_a_burst_is_deterministic():
    one, two = ring_burst(20, depth=3).run(), ring_burst(20, depth=3).run()
    assert [str(e) for e in one.trace] == [str(e) for e in two.trace]
    assert one.ring == two.ring and one.trace is not two.trace


def test_bad_bursts_are_refused():
    for kwargs in ({"requests": 0}, {"requests": 2.0}, {"depth": 33}, {"depth": 0},
                   {"start": -1}, {"start": 2**32}, {"requests": 2**20}):
        with pytest.raises(ConfigError):
            ring_burst(**kwargs)


def test_a_ring_out_of_order_is_no_picture():
    w = ring_world()
    w.sring.req_prod = 40  # a front end claiming 40 requests on a 32-slot ring
    w.front.req_prod_pvt = 40
    with pytest.raises(ConfigError, match="not in ring order"):
        ring_state(w.sring, w.front, w.back)


def test_the_sweep_falls_with_queue_depth():
    rows = notification_sweep()
    assert [r["depth"] for r in rows] == [1, 2, 4, 8, 16, 32]
    for r in rows:
        assert r["front_to_back"] == r["back_to_front"] == math.ceil(256 / r["depth"])
        assert r["per_request"] == (r["front_to_back"] + r["back_to_front"]) / 256
    per = [r["per_request"] for r in rows]
    ns = [r["ns_per_request"] for r in rows]
    assert all(a > b for a, b in zip(per, per[1:], strict=False))
    assert all(a > b for a, b in zip(ns, ns[1:], strict=False))
    assert all(r["notify_ns_per_request"] < r["ns_per_request"] for r in rows)
    with pytest.raises(ConfigError):
        notification_sweep(depths=(64,))
    with pytest.raises(ConfigError):
        notification_sweep(depths=())


def test_the_sweep_counts_time_from_the_cost_model():
    rows = notification_sweep(depths=(1, 4), requests=8)
    burst = ring_burst(8, 0, 1).run()
    costs = burst.world.machine.costs
    one = rows[0]
    assert one["ns_per_request"] == burst.world.machine.clock.now / 8
    per_event = 2 * costs.hypercall_ns + costs.dom0_wakeup_ns + costs.vcpu_wakeup_ns
    assert one["notify_ns_per_request"] == per_event  # one event each way per request
    assert rows[1]["notify_ns_per_request"] == per_event / 4
    # what a request costs besides the events: the same at every depth
    rest = [r["ns_per_request"] - r["notify_ns_per_request"] for r in rows]
    assert rest[0] > costs.blkback_request_ns + costs.grant_map_ns + costs.grant_unmap_ns
    assert abs(rest[0] - rest[1]) < 20


def test_responses_come_back_from_the_page_bytes():
    burst = ring_burst(2, start=0)
    states, _ = stepped(burst)
    with_responses = [s for s in states if s.count("response")]
    assert with_responses
    s = with_responses[-1]
    view = next(v for v in s.slots if v.state == "response")
    raw = burst.world.sring.read_slot(view.index)
    assert decode_response(raw) == view.response and view.label == f"#{view.response.id} OK"


# --- the lost wake-up ---------------------------------------------------------------------------

def test_without_the_final_check_the_wake_up_is_lost():
    race = lost_wakeup(False).run()
    assert race.stuck == 1 and race.notifications == 0
    assert not race.runnable("back") and not race.runnable("front")
    w = race.world
    assert w.sring.req_prod == 2 and w.back.req_cons == 1  # request #1 sits in the ring
    assert w.sring.req_event == 2  # ... and the back end asked for it too late
    fatal = race.rows[race.fatal]
    assert fatal[:2] == ("front", "push") and "no notification" in fatal[2]
    # the back end had looked (and found nothing) just before, and wrote req_event just after
    backs = [i for i, r in enumerate(race.rows) if r[0] == "back"]
    assert backs[0] < race.fatal < backs[1] and "req_event = 0x2" in race.rows[backs[1]][2]
    assert race.rows[-1][:2] == ("back", "sleep") and race.rescue is None
    assert not w.dom0.evtchn.shared.pending(w.ports["back"])  # no event waits for it either


def test_with_the_final_check_the_re_check_finds_the_request():
    race = lost_wakeup(True).run()
    assert race.stuck == 0 and race.notifications == 1  # the response's event only
    w = race.world
    assert w.back.req_cons == w.sring.req_prod == 2 and w.front.rsp_cons == 2
    assert race.rows[race.fatal][2].endswith("no notification")  # the same stale read ...
    assert race.rows[race.rescue] == ("back", "final-check", "re-check: 1 unconsumed requests")
    assert race.rows[race.rescue - 1] == ("back", "final-check", "mb")  # ... after the barrier
    assert race.rows[-1] == ("front", "sleep", "all answered")


def test_other_schedules_lose_nothing_even_without_the_final_check():
    for schedule in ("", "BB", "FFFFFF", "FB" * 10):
        race = lost_wakeup(False, schedule).run()
        assert race.stuck == 0 and race.fatal is None, schedule
        assert race.world.front.rsp_cons == 2  # request #1 answered
    early = lost_wakeup(False, "BB").run()  # req_event written before the push reads it
    assert early.notifications == 2  # so the push notifies, and the response does


def test_the_race_uses_the_ring_generators_and_wraps_too():
    race = lost_wakeup(False, start=2**32 - 1).run()
    assert race.stuck == 1
    texts = [what for _, _, what in race.rows]
    assert "req_prod = 0x1" in texts and "req_event = 0x0: no notification" in texts
    assert {"wmb", "mb"} <= set(texts)  # the barriers of RING_PUSH_REQUESTS_AND_CHECK_NOTIFY


def test_the_race_is_a_deterministic_stepper_scenario():
    one, two = lost_wakeup(True), lost_wakeup(True)
    results = []
    while True:
        results.append(one.step())
        if not results[-1]:
            break
    two.run()
    assert results[-1] is False and all(results[:-1]) and len(results) == len(one.rows)
    assert [str(e) for e in one.trace] == [str(e) for e in two.trace]
    assert not one.step()  # past the end: nothing more
    for bad in ({"final_check": 1}, {"final_check": True, "schedule": "FX"}):
        with pytest.raises(ConfigError):
            lost_wakeup(**bad)
