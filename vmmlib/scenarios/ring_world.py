"""What chapter 03's ring scenarios share: a guest and dom0 with one blkif ring page and one
event channel, the ring's snapshot for pictures, and the two ends taking turns.

``ring_world(start)`` builds the world: a real ``SharedRing`` in one 4 KiB page of the guest's
memory (guest-physical 0x10000, where ``split_drivers`` puts blkfront's; 32 slots of 112-byte
blkif entries), ``vmmlib.xen.ring``'s ``FrontRing`` and ``BackRing`` over that same page (both
ends read and write its bytes), and an inter-domain event channel (Xen's EVTCHNOP_send marks
the pending bit in the other domain's shared_info; the woken end's upcall clears it).

``ring_state(sring, front, back)`` is a snapshot (``RingState``) of the eight indices and of
every slot, decoded from the page's bytes. ``TwoEnds`` runs a front-end program and a back-end
program one step at a time under a deterministic scheduler (the Stepper protocol); the burst
and the lost wake-up of ``ring_demo`` are two such pairs of programs.

Virtual time (``vmmlib.costs``, every figure an estimate): each step costs ``ram_access_ns``
(a few cached stores and loads); a notification is the EVTCHNOP_send hypercall,
``hypercall_ns``; waking the other end costs ``dom0_wakeup_ns`` for the back end (dom0's upcall
wakes blkback's thread, as ``xen.dom0`` charges) and ``vcpu_wakeup_ns`` for the front end (Xen
unblocks the guest's vCPU, as ``xen.ioreq_server`` charges).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from ..errors import ConfigError
from ..hw.memory import MIB, PAGE_SHIFT
from ..trace import Schema, Trace
from ..xen.blkif import (
    BLKIF_OP_READ,
    BLKIF_RSP_OKAY,
    RING_ENTRY_SIZE,
    Request,
    Response,
    decode_request,
    decode_response,
)
from ..xen.domain import Domain
from ..xen.machine import Machine
from ..xen.ring import RING_IDX_MASK, BackRing, FrontRing, SharedRing
from .split_drivers import RING

#: what a slot holds, in ring order from the front end's consumer to its producer
SLOT_STATES = ("free", "request-private", "request", "serving", "response-private", "response")
NOTIFY = {side: Schema(side, "notify", ("port", "to")) for side in ("front", "back")}
WAKE = {side: Schema(side, "wake", ("ports",)) for side in ("front", "back")}


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


__all__ = [
    "SLOT_STATES", "Program", "RingState", "RingWorld", "SlotView", "TwoEnds", "each_copy",
    "ring_state", "ring_world",
]
