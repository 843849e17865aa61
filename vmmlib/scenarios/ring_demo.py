"""Chapter 03's ring scenarios: a burst of blkif requests round one shared ring, step by step;
the lost wake-up that RING_FINAL_CHECK_FOR_REQUESTS prevents, as a scheduler interleaving; and
how many notifications a burst costs as the queue depth grows.

They drive ``vmmlib.xen.ring``'s ``FrontRing`` and ``BackRing`` themselves — not the whole
drivers of ``split_drivers`` — over a real shared ring page and a real event channel
(``ring_world``), so that one ``step()`` is one ring operation and nothing hides in it.

**The burst** (``ring_burst``): the two ends take turns as two CPUs would if each ran until it
went to sleep. The front end queues a batch of ``depth`` requests (each a 4 KiB read as
blkfront builds it: a fresh id from its free list, one writable grant ref, sectors 0-7 of the
page), pushes with the notify check and waits; the back end, woken by the event, copies each
request (reading req_prod once per batch, as blkback's loop does), final-checks before
sleeping, then answers each request — ``BLKIF_RSP_OKAY`` with its ``id`` echoed — pushing each
response with the notify check (blkback's make_response); the front end, woken, takes the
responses and final-checks (blkif_interrupt). The back end maps no grants and has no disk (it
answers at once; ``split_drivers`` has the whole path); serving a request costs
``blkback_request_ns`` when it is taken and ``grant_map_ns + grant_unmap_ns`` (its one segment)
when it is answered (estimates, ``vmmlib.costs``).

**The lost wake-up** (``lost_wakeup``) has its own module, ``vmmlib.scenarios.lost_wakeup``
(re-exported here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from ..errors import ConfigError
from ..hw.memory import PAGE_SIZE
from ..trace import Schema
from ..xen.blkif import (
    BLKIF_OP_READ,
    BLKIF_RING_SIZE,
    BLKIF_RSP_OKAY,
    SECTORS_PER_PAGE,
    Request,
    Response,
    Segment,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    make_request,
    segments_for_buffer,
)
from ..xen.grant_table import GNTTAB_NR_RESERVED_ENTRIES
from .lost_wakeup import RACE, Interleaving, lost_wakeup
from .ring_world import Program, RingState, TwoEnds, each_copy, ring_state, ring_world
from .split_drivers import BUFFER

MAX_REQUESTS = 1 << 16

PUT_REQUEST = Schema("front", "put-request", ("id", "sector", "gref", "idx", "slot",
                                              "req_prod_pvt"))
PUSH_REQUESTS = Schema("front", "push", ("old", "req_prod", "req_event", "notify"))
TAKE_REQUEST = Schema("back", "take", ("idx", "slot", "id", "sector", "req_cons"))
BACK_FINAL = Schema("back", "final-check", ("req_event", "more"))
PUT_RESPONSE = Schema("back", "put-response", ("id", "status", "idx", "slot", "rsp_prod_pvt"))
PUSH_RESPONSES = Schema("back", "push", ("old", "rsp_prod", "rsp_event", "notify"))
TAKE_RESPONSE = Schema("front", "take", ("idx", "slot", "id", "status", "rsp_cons"))
FRONT_FINAL = Schema("front", "final-check", ("rsp_event", "more"))
SLEEP = {side: Schema(side, "sleep", ("why",)) for side in ("front", "back")}


# -- the burst -----------------------------------------------------------------------------------
class RingBurst(TwoEnds):
    """``requests`` blkif reads pushed round the ring in batches of ``depth`` (see the module
    docstring); ``ring`` is the picture's snapshot after the last step."""

    def __init__(self, requests: int, start: int, depth: int) -> None:
        super().__init__(ring_world(start))
        self.requests, self.depth, self.start = requests, depth, start
        self.left = requests  # not yet queued
        self.sector = 0
        self.free_ids = deque(range(BLKIF_RING_SIZE))  # blkfront's free list of ids
        self.free_refs = deque(range(GNTTAB_NR_RESERVED_ENTRIES, 512))  # and of grant refs
        self.in_flight: dict[int, int] = {}  # id -> grant ref
        self.answered = 0
        self.programs["front"] = self._front(woken=False)  # the front end starts awake

    @property
    def ring(self) -> RingState:
        w = self.world
        return ring_state(w.sring, w.front, w.back, self.touched)

    @property
    def done(self) -> bool:
        return self.answered == self.requests

    def notifications(self) -> dict[str, int]:
        """Events sent so far, each way."""
        rows = self.trace.events("notify")
        return {"front->back": sum(e.actor == "front" for e in rows),
                "back->front": sum(e.actor == "back" for e in rows)}

    def program(self, side: str) -> Program:
        return self._front() if side == "front" else self._back()

    # the front end
    def _put_request(self) -> None:
        w, rid = self.world, self.free_ids.popleft()
        ref = self.free_refs.popleft()
        seg = segments_for_buffer(BUFFER + rid * PAGE_SIZE, PAGE_SIZE, BLKIF_OP_READ)[0]
        req = make_request(BLKIF_OP_READ, rid, self.sector,
                           [Segment(ref, seg.first_sect, seg.last_sect)])
        idx = w.front.put_request(encode_request(req))
        self.in_flight[rid] = ref
        self.touched = w.sring.slot(idx)
        w.row(PUT_REQUEST, rid, self.sector, ref, idx, self.touched, w.front.req_prod_pvt)
        self.sector += SECTORS_PER_PAGE
        self.left -= 1

    def _front(self, woken: bool = True) -> Program:
        w = self.world
        more = woken
        while more:
            for idx in self._consume(w.front.take_responses_steps(), lambda: w.front.rsp_cons):
                rsp = decode_response(w.sring.read_slot(idx))  # (the picture's read)
                self.touched = w.sring.slot(idx)
                w.row(TAKE_RESPONSE, idx, self.touched, rsp.id, rsp.status, w.front.rsp_cons)
                yield "take"
            for raw in self._copies:  # the private copies: free the id and the grant
                rid = decode_response(raw).id
                self.free_refs.append(self.in_flight.pop(rid))
                self.free_ids.append(rid)
                self.answered += 1
            more = w.front.final_check_for_responses()
            w.row(FRONT_FINAL, w.sring.rsp_event, more)
            yield "final-check"
        batch = min(self.depth, self.left, w.front.free_requests(), len(self.free_ids))
        for _ in range(batch):
            self._put_request()
            yield "put-request"
        if batch:
            old = w.sring.req_prod
            notify = w.front.push_requests_and_check_notify()
            w.row(PUSH_REQUESTS, old, w.sring.req_prod, w.sring.req_event, notify)
            yield "push"
            if notify:
                self.notify("front")
                yield "notify"
        w.row(SLEEP["front"], "wait for responses" if self.in_flight else "all answered")
        yield "sleep"

    def _consume(self, steps, cons) -> Iterator[int]:
        copies = yield from each_copy(steps, cons)
        self._copies = copies

    # the back end
    def _back(self) -> Program:
        w, costs = self.world, self.world.machine.costs
        taken: list[Request] = []
        more = True
        while more:
            for idx in self._consume(w.back.take_requests_steps(), lambda: w.back.req_cons):
                req = decode_request(w.sring.read_slot(idx))  # (the picture's read)
                self.touched = w.sring.slot(idx)
                w.machine.clock.advance(costs.blkback_request_ns)
                w.row(TAKE_REQUEST, idx, self.touched, req.id, req.sector_number, w.back.req_cons)
                yield "take"
            taken += [decode_request(raw) for raw in self._copies]  # the private copies
            more = w.back.final_check_for_requests()
            w.row(BACK_FINAL, w.sring.req_event, more)
            yield "final-check"
        for req in taken:
            yield from self._answer(req)
        w.row(SLEEP["back"], "no requests")
        yield "sleep"

    def _answer(self, req: Request) -> Program:
        w, costs = self.world, self.world.machine.costs
        w.machine.clock.advance((costs.grant_map_ns + costs.grant_unmap_ns) * req.nr_segments)
        idx = w.back.put_response(encode_response(Response(req.id, req.operation,
                                                           BLKIF_RSP_OKAY)))
        self.touched = w.sring.slot(idx)
        w.row(PUT_RESPONSE, req.id, BLKIF_RSP_OKAY, idx, self.touched, w.back.rsp_prod_pvt)
        yield "put-response"
        old = w.sring.rsp_prod
        notify = w.back.push_responses_and_check_notify()
        w.row(PUSH_RESPONSES, old, w.sring.rsp_prod, w.sring.rsp_event, notify)
        yield "push"
        if notify:
            self.notify("back")
            yield "notify"


def ring_burst(requests: int = 6, start: int = 2**32 - 3, depth: int | None = None) -> RingBurst:
    """A Stepper scenario: ``requests`` 4 KiB blkif reads round one 32-slot ring whose indices
    all start at ``start`` (by default 3 below 2**32, so they wrap during the burst), queued
    ``depth`` at a time (default: as many as fit, up to 32). A fresh world each call."""
    if requests.__class__ is not int or not 1 <= requests <= MAX_REQUESTS:
        raise ConfigError(f"a burst has 1 … {MAX_REQUESTS} requests, not {requests!r}")
    if depth is None:
        depth = min(requests, BLKIF_RING_SIZE)
    if depth.__class__ is not int or not 1 <= depth <= BLKIF_RING_SIZE:
        raise ConfigError(f"the queue depth is 1 … {BLKIF_RING_SIZE} requests (the ring's "
                          f"slots), not {depth!r}")
    return RingBurst(requests, start, depth)


# -- batching against notifications --------------------------------------------------------------
def notification_sweep(depths: tuple[int, ...] = (1, 2, 4, 8, 16, 32), requests: int = 256
                       ) -> list[dict]:
    """Run a burst of ``requests`` at each queue depth; per depth: the events sent each way,
    notifications per request, and virtual time per request (ns) — all of it, and the part
    the notifications cost (the EVTCHNOP_send hypercalls and the wake-ups they cause)."""
    if not isinstance(depths, (tuple, list)) or not depths:
        raise ConfigError(f"give the queue depths as a tuple of ints, not {depths!r}")
    out = []
    for depth in depths:
        burst = ring_burst(requests, 0, depth).run()
        if not burst.done:
            raise ConfigError(f"depth {depth}: only {burst.answered} of {requests} answered")
        sent = burst.notifications()
        costs = burst.world.machine.costs
        notify_ns = (sent["front->back"] * (costs.hypercall_ns + costs.dom0_wakeup_ns)
                     + sent["back->front"] * (costs.hypercall_ns + costs.vcpu_wakeup_ns))
        out.append({
            "depth": depth, "requests": requests,
            "front_to_back": sent["front->back"], "back_to_front": sent["back->front"],
            "per_request": (sent["front->back"] + sent["back->front"]) / requests,
            "ns_per_request": burst.world.machine.clock.now / requests,
            "notify_ns_per_request": notify_ns / requests,
        })
    return out


__all__ = [
    "MAX_REQUESTS", "RACE", "Interleaving", "RingBurst", "lost_wakeup", "notification_sweep",
    "ring_burst",
]
