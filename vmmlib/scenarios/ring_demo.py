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

**The lost wake-up** (``lost_wakeup``): the back end has just served a request and goes to
sleep; the front end queues one more. The scheduler runs the back end's "no requests?" check,
then the whole of the front end's put and push — which reads the old req_event and sends no
event — then the back end again: it writes req_event and, without the final check's barrier
and re-check, sleeps with the request in the ring. With RING_FINAL_CHECK_FOR_REQUESTS the
re-check finds it. Both back ends are ``final_check_for_requests_steps`` of ``vmmlib.xen.ring``
— the one without the re-check is that generator closed after it writes req_event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator

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


# -- the lost wake-up ---------------------------------------------------------------------------
#: the back end's "no requests?", then the front end's put, wmb, req_prod, mb, req_event, sleep
RACE = "B" + "F" * 6


class Interleaving(TwoEnds):
    """A back end going to sleep and a front end queueing one more request, interleaved by
    ``schedule`` (see ``TwoEnds``). Outcome: ``stuck``, ``notifications``, ``rows``; ``fatal``
    is the row where the front end read a req_event the back end was about to change (and so
    sent no event), ``rescue`` the re-check row that found the request anyway."""

    def __init__(self, final_check: bool, schedule: str = RACE, start: int = 0) -> None:
        if final_check.__class__ is not bool:
            raise ConfigError(f"final_check is True or False, not {final_check!r}")
        super().__init__(ring_world(start), schedule, first="back")
        self.final_check = final_check
        self._prologue()
        self.begin = len(self.trace)  # the interleaving's rows start here
        self._window = False  # the back end found no work and has not written req_event yet
        self._fatal: int | None = None
        self._rescue: int | None = None
        self.programs = {"front": self._submit(1), "back": self._back(check_first=True)}

    def _row(self, side: str, kind: str, what: str) -> str:
        w = self.world
        w.trace.add(w.machine.clock.now, side, kind, what=what)
        return kind

    def _request(self, rid: int) -> bytes:
        return encode_request(make_request(BLKIF_OP_READ, rid, rid * SECTORS_PER_PAGE,
                                           [Segment(GNTTAB_NR_RESERVED_ENTRIES + rid, 0, 7)]))

    def _prologue(self) -> None:
        """Request #0 goes round: queued, pushed (its event wakes the back end), taken,
        answered (its event wakes the front end), taken; the back end is about to sleep."""
        w, clock = self.world, self.world.machine.clock
        w.front.put_request(self._request(0))
        w.front.push_requests_and_check_notify()
        self._row("front", "before", "request #0 queued and pushed: req_event asked for it")
        w.notify("front")
        w.wake("back")
        (raw,) = w.back.take_requests()
        req = decode_request(raw)
        w.back.put_response(encode_response(Response(req.id, req.operation, BLKIF_RSP_OKAY)))
        w.back.push_responses_and_check_notify()
        self._row("back", "before", "request #0 taken and answered")
        w.notify("back")
        w.wake("front")
        w.front.take_responses()
        w.front.final_check_for_responses()
        self._row("front", "before", "response #0 taken; the front end queues request #1")
        clock.advance(w.machine.costs.ram_access_ns)

    def _play(self, side: str, kind: str, steps: Generator[str, None, object]) -> Program:
        """One row per step of a ``vmmlib.xen.ring`` generator; returns its result."""
        while True:
            try:
                text = next(steps)
            except StopIteration as done:
                return done.value
            yield self._row(side, kind, text)

    def program(self, side: str) -> Program:
        return self._responses() if side == "front" else self._back(check_first=False)

    def _submit(self, rid: int) -> Program:
        w = self.world
        idx = w.front.put_request(self._request(rid))
        yield self._row("front", "put-request", f"request #{rid} in slot {w.sring.slot(idx)} "
                                                f"(req_prod_pvt = {w.front.req_prod_pvt:#x})")
        notify = yield from self._play("front", "push", w.front.push_requests_steps())
        if not notify and self._window:
            self._fatal = len(self.trace) - 1
        if notify:
            self.notify("front")
            yield "notify"
        yield self._row("front", "sleep", "wait for the response")

    def _responses(self) -> Program:
        w = self.world
        yield from self._play("front", "take", w.front.take_responses_steps())
        yield from self._play("front", "final-check", w.front.final_check_for_responses_steps())
        yield self._row("front", "sleep", "all answered")

    def _check(self) -> Program:
        """RING_FINAL_CHECK_FOR_REQUESTS, or (final_check False) the same generator closed
        once it has written req_event: no barrier, no re-check."""
        steps = self.world.back.final_check_for_requests_steps()
        n = 0
        while True:
            try:
                text = next(steps)
            except StopIteration as done:
                self._window = False
                if done.value and n == 4:  # the re-check after the barrier found work
                    self._rescue = len(self.trace) - 1
                return done.value
            n += 1
            if n == 1:
                self._window = self.world.back.unconsumed_requests() == 0
            elif n == 2:  # req_event is written
                self._window = False
            yield self._row("back", "final-check", text)
            if n == 2 and not self.final_check:
                steps.close()  # sleep now: no barrier, no re-check
                return False

    def _back(self, check_first: bool) -> Program:
        w = self.world
        while True:
            if not check_first:
                raws = yield from self._play("back", "take", w.back.take_requests_steps())
                for raw in raws:
                    yield from self._answer(decode_request(raw))
            check_first = False
            if not (yield from self._check()):
                yield self._row("back", "sleep", "sleep until an event"
                                if w.back.unconsumed_requests() == 0
                                else "sleep, with a request in the ring")
                return

    def _answer(self, req: Request) -> Program:
        w = self.world
        idx = w.back.put_response(encode_response(Response(req.id, req.operation,
                                                           BLKIF_RSP_OKAY)))
        yield self._row("back", "put-response", f"response #{req.id} in slot "
                                                f"{w.sring.slot(idx)}")
        notify = yield from self._play("back", "push", w.back.push_responses_steps())
        if notify:
            self.notify("back")
            yield "notify"

    # the outcome
    @property
    def rows(self) -> list[tuple[str, str, str]]:
        """(actor, kind, what) of every step of the interleaving, in order."""
        return [(e.actor, e.kind, _what(e)) for e in self._events(len(self.trace))]

    def _events(self, stop: int) -> list:
        return [e for e in (self.trace[i] for i in range(self.begin, stop)) if e.actor != "xen"]

    def _row_index(self, at: int | None) -> int | None:
        return None if at is None else len(self._events(at))

    @property
    def fatal(self) -> int | None:
        """The row where the front end's push read a stale req_event (no event sent)."""
        return self._row_index(self._fatal)

    @property
    def rescue(self) -> int | None:
        """The row where the back end's re-check found the request."""
        return self._row_index(self._rescue)

    @property
    def stuck(self) -> int:
        """Requests in the ring that nobody will serve: published, not taken, the back end
        asleep with no event pending."""
        if self.runnable("back"):
            return 0
        return self.world.back.unconsumed_requests()

    @property
    def notifications(self) -> int:
        """Events sent during the interleaving (either way)."""
        return sum(1 for i in range(self.begin, len(self.trace))
                   if self.trace[i].kind == "notify")

    @property
    def ring(self) -> RingState:
        w = self.world
        return ring_state(w.sring, w.front, w.back)


def _what(event) -> str:
    """A step's text: what the ring generator said, or the event channel's part."""
    if "what" in event.fields:
        return event.fields["what"]
    if event.kind == "notify":
        return f"EVTCHNOP_send → {event.fields['to']} end"
    return f"woken by the event (upcall: ports {event.fields['ports']})"


def lost_wakeup(final_check: bool, schedule: str = RACE, start: int = 0) -> Interleaving:
    """A Stepper scenario (and ``.run()``): the lost wake-up race, with the back end going to
    sleep with or without RING_FINAL_CHECK_FOR_REQUESTS (see the module docstring)."""
    return Interleaving(final_check, schedule, start)


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
