"""Chapter 03's lost wake-up, as a scheduler interleaving of the two ends of a blkif ring.

**The lost wake-up** (``lost_wakeup``): the back end has just served a request and goes to
sleep; the front end queues one more. The scheduler runs the back end's "no requests?" check,
then the whole of the front end's put and push — which reads the old req_event and sends no
event — then the back end again: it writes req_event and, without the final check's barrier
and re-check, sleeps with the request in the ring. With RING_FINAL_CHECK_FOR_REQUESTS the
re-check finds it. Both back ends are ``final_check_for_requests_steps`` of ``vmmlib.xen.ring``
— the one without the re-check is that generator closed after it writes req_event.
"""

from __future__ import annotations

from collections.abc import Generator

from ..errors import ConfigError
from ..xen.blkif import (
    BLKIF_OP_READ,
    BLKIF_RSP_OKAY,
    SECTORS_PER_PAGE,
    Request,
    Response,
    Segment,
    decode_request,
    encode_request,
    encode_response,
    make_request,
)
from ..xen.grant_table import GNTTAB_NR_RESERVED_ENTRIES
from .ring_world import Program, RingState, TwoEnds, ring_state, ring_world

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


__all__ = ["RACE", "Interleaving", "lost_wakeup"]
