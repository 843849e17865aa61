"""Chapter 03's ring scenarios: a burst of blkif requests round one shared ring, step by step,
and how many notifications a burst costs as the queue depth grows.

These scenarios drive ``vmmlib.xen.ring``'s ``FrontRing`` and ``BackRing`` themselves — not
the whole drivers of ``split_drivers`` — so that one ``step()`` is one ring operation (put a
request, push, notify, take, answer, final check) and nothing else hides in it. The ring is a
real ``SharedRing``: one 4 KiB page of the guest's memory (guest-physical 0x10000, where
``split_drivers`` puts blkfront's), 32 slots of 112-byte blkif entries, written and read as
bytes by both ends. The doorbell is a real inter-domain event channel between the guest and
dom0 (Xen's EVTCHNOP_send marks the pending bit in the other domain's shared_info).

The two ends take turns, as two CPUs would if each ran until it went to sleep: the front end
queues a batch of ``depth`` requests (each 4 KiB read as blkfront builds it: a fresh id from
its free list, one writable grant ref, sectors 0-7 of the page), pushes with the notify check
and waits; the back end, woken by the event, copies each request (reading req_prod once per
batch, as blkback's loop), final-checks before sleeping (RING_FINAL_CHECK_FOR_REQUESTS), then
answers each request — ``BLKIF_RSP_OKAY`` with its ``id`` echoed — pushing each response with
the notify check (blkback's make_response); the front end, woken, takes the responses and
final-checks (blkif_interrupt). What the back end does not do: grant maps and a disk (its disk
answers at once); ``split_drivers`` has the whole path.

Virtual time (``vmmlib.costs``, every figure an estimate): each ring operation costs
``ram_access_ns`` (a few cached stores and loads); a notification is the EVTCHNOP_send
hypercall, ``hypercall_ns``; waking the other end costs ``dom0_wakeup_ns`` for the back end
(dom0's upcall wakes blkback's thread, as ``xen.dom0`` charges) and ``vcpu_wakeup_ns`` for the
front end (Xen unblocks the guest's vCPU, as ``xen.ioreq_server`` charges); serving a request
costs ``blkback_request_ns`` when it is taken and ``grant_map_ns + grant_unmap_ns`` (its one
segment) when it is answered. The lost wake-up is in ``ring_race``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from ..errors import ConfigError
from ..hw.memory import MIB, PAGE_SHIFT, PAGE_SIZE
from ..trace import Schema, Trace
from ..xen.blkif import (
    BLKIF_OP_READ,
    BLKIF_RING_SIZE,
    BLKIF_RSP_OKAY,
    RING_ENTRY_SIZE,
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
from ..xen.domain import Domain
from ..xen.grant_table import GNTTAB_NR_RESERVED_ENTRIES
from ..xen.machine import Machine
from ..xen.ring import RING_IDX_MASK, BackRing, FrontRing, SharedRing
from .split_drivers import BUFFER, RING

MAX_REQUESTS = 1 << 16
#: what a slot holds, in ring order from the front end's consumer to its producer
SLOT_STATES = ("free", "request-private", "request", "serving", "response-private", "response")

PUT_REQUEST = Schema("front", "put-request", ("id", "sector", "gref", "idx", "slot",
                                              "req_prod_pvt"))
PUSH_REQUESTS = Schema("front", "push", ("old", "req_prod", "req_event", "notify"))
TAKE_REQUEST = Schema("back", "take", ("idx", "slot", "id", "sector", "req_cons"))
BACK_FINAL = Schema("back", "final-check", ("req_event", "more"))
PUT_RESPONSE = Schema("back", "put-response", ("id", "status", "idx", "slot", "rsp_prod_pvt"))
PUSH_RESPONSES = Schema("back", "push", ("old", "rsp_prod", "rsp_event", "notify"))
TAKE_RESPONSE = Schema("front", "take", ("idx", "slot", "id", "status", "rsp_cons"))
FRONT_FINAL = Schema("front", "final-check", ("rsp_event", "more"))
NOTIFY = {side: Schema(side, "notify", ("port", "to")) for side in ("front", "back")}
WAKE = {side: Schema(side, "wake", ("ports",)) for side in ("front", "back")}
SLEEP = {side: Schema(side, "sleep", ("why",)) for side in ("front", "back")}


# -- the world -----------------------------------------------------------------------------------
@dataclass
class RingWorld:
    """A guest and dom0 sharing one blkif ring page (in the guest's memory) and one event
    channel: the front end's ``FrontRing`` and the back end's ``BackRing`` over the same page."""

    machine: Machine
    dom0: Domain
    guest: Domain
    sring: SharedRing
    front: FrontRing
    back: BackRing
    ports: dict[str, int]  # "front": the guest's port, "back": dom0's end of the channel

    @property
    def trace(self) -> Trace:
        return self.machine.trace

    def row(self, schema: Schema, *values: object) -> None:
        """Record one trace row now."""
        self.machine.trace.record((self.machine.clock.now, schema.id, *values))

    def notify(self, sender: str) -> str:
        """EVTCHNOP_send from ``sender``'s end ("front" or "back"); what happened there."""
        domain = self.guest if sender == "front" else self.dom0
        self.row(NOTIFY[sender], self.ports[sender], "back" if sender == "front" else "front")
        self.machine.clock.advance(self.machine.costs.hypercall_ns)
        return domain.evtchn.send(self.ports[sender], dict(enumerate(self.machine.domains)))

    def wake(self, side: str) -> list[int]:
        """``side`` is woken by its event: the upcall clears and returns the pending ports."""
        costs = self.machine.costs
        domain = self.guest if side == "front" else self.dom0
        self.machine.clock.advance(costs.vcpu_wakeup_ns if side == "front"
                                   else costs.dom0_wakeup_ns)
        ports = domain.evtchn.shared.take_upcall()
        self.row(WAKE[side], ports)
        return ports


def ring_world(start: int = 0) -> RingWorld:
    """A fresh 64 MiB machine: dom0 and a PV guest, the guest's ring page initialised with
    every index at ``start`` (SHARED_RING_INIT, event indices start + 1), the event channel
    bound (the guest's unbound port, dom0's bind_interdomain)."""
    if start.__class__ is not int or not 0 <= start <= RING_IDX_MASK:
        raise ConfigError(f"the ring's start index is a 32-bit unsigned int, not {start!r}")
    machine = Machine(64 * MIB)
    dom0 = machine.add_domain("dom0", 16 * MIB, base=0, kind="pv", privileged=True)
    guest = machine.add_domain("guest", 16 * MIB, kind="pv")
    sring = SharedRing.in_guest(guest, RING >> PAGE_SHIFT, RING_ENTRY_SIZE)
    sring.init(start)
    port = guest.evtchn.alloc_unbound(dom0.domid)
    ports = {"front": port, "back": dom0.evtchn.bind_interdomain(guest.evtchn, port)}
    return RingWorld(machine, dom0, guest, sring, FrontRing(sring, start),
                     BackRing(sring, start), ports)


# -- what the picture shows ----------------------------------------------------------------------
@dataclass(frozen=True)
class SlotView:
    """One slot of the ring: what it holds (``SLOT_STATES``), the free-running index of the
    message in it, and that message as the page's bytes decode."""

    slot: int
    state: str
    index: int | None = None
    request: Request | None = None
    response: Response | None = None

    @property
    def label(self) -> str:
        """A short text for the picture: ``id 3 s24`` (a read of sector 24), ``id 3 OK``."""
        if self.request is not None:
            op = "rd" if self.request.operation == BLKIF_OP_READ else f"op{self.request.operation}"
            return f"{op} #{self.request.id} s{self.request.sector_number}"
        if self.response is not None:
            status = "OK" if self.response.status == BLKIF_RSP_OKAY else str(self.response.status)
            return f"#{self.response.id} {status}"
        return ""


@dataclass(frozen=True)
class RingState:
    """A snapshot of a ring for pictures: the shared page's four indices, each end's two
    private indices, and every slot decoded from the page (``touched``: the slot the last
    step used, or None)."""

    req_prod: int
    req_event: int
    rsp_prod: int
    rsp_event: int
    req_prod_pvt: int
    rsp_cons: int
    rsp_prod_pvt: int
    req_cons: int
    size: int
    slots: tuple[SlotView, ...]
    touched: int | None = None

    SHARED = ("req_prod", "req_event", "rsp_prod", "rsp_event")
    PRIVATE = ("req_prod_pvt", "rsp_cons", "rsp_prod_pvt", "req_cons")

    def indices(self) -> dict[str, int]:
        """The eight indices by name, shared first."""
        return {name: getattr(self, name) for name in self.SHARED + self.PRIVATE}

    def slot_of(self, index: int) -> int:
        """The slot a free-running index names: index & (size − 1)."""
        return index & (self.size - 1)

    def count(self, state: str) -> int:
        return sum(1 for s in self.slots if s.state == state)


def ring_state(sring: SharedRing, front, back, touched: int | None = None) -> RingState:
    """Snapshot ``sring`` with the private indices of ``front`` (``req_prod_pvt``,
    ``rsp_cons``: a FrontRing or a Blkfront) and ``back`` (``rsp_prod_pvt``, ``req_cons``: a
    BackRing). Going round from rsp_cons: responses published, responses written, requests
    being served, requests published, requests written; the rest is free."""
    shared = (sring.req_prod, sring.req_event, sring.rsp_prod, sring.rsp_event)
    private = (front.req_prod_pvt, front.rsp_cons, back.rsp_prod_pvt, back.req_cons)
    bounds = [front.rsp_cons, sring.rsp_prod, back.rsp_prod_pvt, back.req_cons, sring.req_prod,
              front.req_prod_pvt]
    steps = [(b - a) & RING_IDX_MASK for a, b in zip(bounds, bounds[1:], strict=False)]
    if sum(steps) > sring.size:
        raise ConfigError(f"the indices {[hex(b) for b in bounds]} are not in ring order "
                          f"within {sring.size} slots: no honest ring looks like this")
    views = {k: SlotView(k, "free") for k in range(sring.size)}
    idx = front.rsp_cons
    for state, n in zip(("response", "response-private", "serving", "request",
                         "request-private"), steps, strict=True):
        for _ in range(n):
            raw, slot = sring.read_slot(idx), sring.slot(idx)
            if state.startswith("response"):
                views[slot] = SlotView(slot, state, idx, response=decode_response(raw))
            else:
                views[slot] = SlotView(slot, state, idx, request=decode_request(raw))
            idx = (idx + 1) & RING_IDX_MASK
    return RingState(*shared, *private, sring.size, tuple(views[k] for k in range(sring.size)),
                     touched)


# -- the two ends taking turns -------------------------------------------------------------------
Program = Generator[str, None, None]


class TwoEnds:
    """Two programs, the front end's and the back end's, run one step at a time by a
    deterministic scheduler (the Stepper protocol: ``step()``, ``trace``).

    A program yields the kind of each step it made; yielding "sleep" ends it. An event sent to
    a sleeping end makes it runnable again (its program restarts with a "wake" step); one sent
    while it is awake stays pending and wakes it as soon as it sleeps. ``schedule`` is a string
    of "F" and "B": each letter gives that end the next step (the other end's, if it cannot
    run); after it, the end that ran last runs until it sleeps, then the other one."""

    def __init__(self, world: RingWorld, schedule: str = "", first: str = "front") -> None:
        if not isinstance(schedule, str) or set(schedule) - {"F", "B"}:
            raise ConfigError(f"a schedule is a string of 'F' and 'B', not {schedule!r}")
        self.world = world
        self.trace = world.trace
        self._schedule: Iterator[str] = iter(schedule)
        self._last = first
        self.programs: dict[str, Program | None] = {"front": None, "back": None}
        self.pending = {"front": False, "back": False}
        self.steps = 0
        self.touched: int | None = None

    def program(self, side: str) -> Program:
        """The program ``side`` runs when it is woken (subclasses)."""
        raise NotImplementedError

    def runnable(self, side: str) -> bool:
        return self.programs[side] is not None or self.pending[side]

    def _pick(self) -> str | None:
        letter = next(self._schedule, None)
        want = {"F": "front", "B": "back", None: self._last}[letter]
        other = "back" if want == "front" else "front"
        for side in (want, other):
            if self.runnable(side):
                return side
        return None

    def notify(self, sender: str) -> None:
        """The doorbell: the other end's event is pending (it wakes when it can run)."""
        outcome = self.world.notify(sender)
        if outcome not in ("bad port", "dropped"):
            self.pending["back" if sender == "front" else "front"] = True

    def _woken(self, side: str) -> Program:
        self.pending[side] = False
        self.world.wake(side)
        yield "wake"
        yield from self.program(side)

    def step(self) -> bool:
        """One step of one end; False once both ends sleep with nothing pending."""
        side = self._pick()
        if side is None:
            return False
        if self.programs[side] is None:
            self.programs[side] = self._woken(side)
        self.world.machine.clock.advance(self.world.machine.costs.ram_access_ns)
        kind = next(self.programs[side], "sleep")
        if kind == "sleep":
            self.programs[side] = None
        self._last = side
        self.steps += 1
        return self.runnable("front") or self.runnable("back")

    def run(self, max_steps: int = 1_000_000) -> TwoEnds:
        """Step to the end."""
        for _ in range(max_steps):
            if not self.step():
                return self
        raise ConfigError(f"the scenario did not end within {max_steps} steps")


def each_copy(steps: Generator[str, None, list[bytes]], cons: Callable[[], int]
              ) -> Generator[int, None, list[bytes]]:
    """Play a ``take_*_steps`` generator of ``vmmlib.xen.ring``, yielding the index of each
    message as soon as it is copied and the consumer index has moved past it; returns the
    private copies."""
    before = cons()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            if cons() != before:
                yield before
            return done.value
        if cons() != before:
            yield before
            before = cons()


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
    "MAX_REQUESTS", "SLOT_STATES", "RingBurst", "RingState", "RingWorld", "SlotView", "TwoEnds",
    "each_copy", "notification_sweep", "ring_burst", "ring_state", "ring_world",
]
