"""The guest's block front end (Linux drivers/block/xen-blkfront.c, in xv6-sized pieces).

A *modified* driver: it does not touch a disk controller at all. It speaks the blkif protocol
through memory it shares with dom0's block back end, and the only traps it makes are
hypercalls: ``EVTCHNOP_send`` to ring the doorbell, and the wait for the answer
(SCHEDOP_block in a PV guest, HLT woken by the callback vector in an HVM guest).

Everything it does is guest operations on its own memory, as the C driver's loads and stores:

* **grants** (``_grant``/``_end_access``): an entry of its v1 grant table is written domid,
  then frame, then flags — the flags make it valid, so Xen never sees a half-written entry —
  and revoked with a compare-and-swap of the flags to 0, refused while Xen has it mapped
  (GTF_reading/GTF_writing set). A disk READ grants the buffer page writable (dom0 writes
  it), a disk WRITE read-only;
* **requests** (``_queue``): 112 bytes written in the next private slot of the shared ring
  (``req_prod_pvt``), with up to 11 segments of inclusive sector ranges, one grant each;
* **publish and notify** (``_push``): RING_PUSH_REQUESTS_AND_CHECK_NOTIFY — read the shared
  req_prod (old), store the new one, read req_event, and send an event only if req_event lies
  in (old, new];
* **responses** (``_take_responses``): read rsp_prod, refuse a back end that claims more
  responses than the ring holds, copy each 16-byte response out, match its ``id`` to the
  request it answers and end the request's grants; with nothing left in flight, ask for an
  event on the next response (rsp_event = rsp_cons + 1), as blkif_interrupt does;
* **sleeping** (``blkfront_io``): RING_FINAL_CHECK_FOR_RESPONSES before waiting — set
  rsp_event = rsp_cons + 1, then look at rsp_prod once more — so a response that lands just
  then is not waited for in vain.

The driver's private state (its private ring indices, free ids, free grant refs, the shadow of
each request in flight) is a Python object, as it is a C struct in the guest kernel. The ring
and grant table live in guest RAM at addresses the scenario gives it (the toolstack and
xenbus in real Xen). The driver records its own milestones in the trace (actor ``blkfront``),
as tracepoints would: queued, pushed, answered.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..cpu.ops import Cmpxchg, Guest, Load, LoadBlock, Store, StoreBlock
from ..errors import ConfigError, GuestKernelError
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from ..trace import Schema, Trace
from ..xen.blkif import (
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_RING_SIZE,
    RESPONSE_SIZE,
    RING_ENTRY_SIZE,
    SECTOR_SIZE,
    Segment,
    decode_response,
    encode_request,
    make_request,
    segments_for_buffer,
)
from ..xen.grant_table import (
    ENTRIES_PER_FRAME,
    GNTTAB_NR_RESERVED_ENTRIES,
    GRANT_ENTRY_SIZE,
    GTF_permit_access,
    GTF_reading,
    GTF_readonly,
    GTF_writing,
)
from ..xen.ring import (
    HEADER_SIZE,
    REQ_EVENT,
    REQ_PROD,
    RING_IDX_MASK,
    RSP_EVENT,
    RSP_PROD,
    should_notify,
)
from .xen_events import evtchn_alloc_unbound, evtchn_send, hvm_set_callback_vector, wait_for_event

QUEUED = Schema("blkfront", "request", ("id", "op", "sector", "segments", "slot"))
PUSHED = Schema("blkfront", "push", ("req_prod", "req_event", "notify"))
ANSWERED = Schema("blkfront", "response", ("id", "status", "slot"))
BROKEN = Schema("blkfront", "bogus-backend", ("reason",))

OPERATIONS = {"read": BLKIF_OP_READ, "write": BLKIF_OP_WRITE}


@dataclass
class Blkfront:
    """One virtual block device's front end: where its shared structures are, and the
    driver's private state (``blkfront_info`` and its ring info, in Linux)."""

    ring: int  # guest address of the shared ring page
    grant_frames: tuple[int, ...]  # guest addresses of the grant table's frames
    scratch: int  # a few bytes for hypercall arguments
    shared_info: int
    hvm: bool
    trace: Trace
    now: Callable[[], int]
    backend_domid: int = 0
    start: int = 0  # the ring's first index (≠ 0 only to show the indices wrapping)
    req_prod_pvt: int = 0
    rsp_cons: int = 0
    ring_ref: int | None = None
    port: int | None = None
    broken: str | None = None
    free_ids: deque = field(default_factory=lambda: deque(range(BLKIF_RING_SIZE)))
    free_refs: deque = field(default_factory=deque)
    shadow: dict = field(default_factory=dict)  # id → (request, grant refs, tag)
    statuses: dict = field(default_factory=dict)  # tag → status of an answered request
    issued: int = 0  # requests queued so far (each request's tag)
    notifications: int = 0
    waits: int = 0

    def __post_init__(self) -> None:
        for what, addr in (("ring", self.ring), *(("grant frame", g) for g in self.grant_frames)):
            if addr.__class__ is not int or addr < 0 or addr & PAGE_MASK:
                raise ConfigError(f"the {what} is a page-aligned guest address, not {addr!r}")
        if not self.grant_frames:
            raise ConfigError("blkfront needs a grant table of at least one frame")
        self.req_prod_pvt = self.rsp_cons = self.start & RING_IDX_MASK
        nr_entries = len(self.grant_frames) * ENTRIES_PER_FRAME
        self.free_refs = deque(range(GNTTAB_NR_RESERVED_ENTRIES, nr_entries))

    def slot_address(self, idx: int) -> int:
        return self.ring + HEADER_SIZE + (idx & (BLKIF_RING_SIZE - 1)) * RING_ENTRY_SIZE

    def entry_address(self, ref: int) -> int:
        frame, index = divmod(ref, ENTRIES_PER_FRAME)
        return self.grant_frames[frame] + index * GRANT_ENTRY_SIZE

    def in_flight(self) -> int:
        return (self.req_prod_pvt - self.rsp_cons) & RING_IDX_MASK

    def _row(self, schema: Schema, *values: object) -> None:
        self.trace.record((self.now(), schema.id, *values))


# -- setting up: the ring, its grant, the event channel ------------------------------------------
def blkfront_connect(front: Blkfront) -> Guest:
    """What blkfront's talk_to_blkback does: initialise the shared ring (SHARED_RING_INIT),
    grant its page to the back end, allocate an unbound event channel for it; returns
    (ring-ref, event-channel), the two values the front end publishes in xenstore."""
    if front.hvm:
        yield from hvm_set_callback_vector(front.scratch)
    start = front.start & RING_IDX_MASK
    header = struct.pack("<IIII", start, start + 1 & RING_IDX_MASK, start,
                         start + 1 & RING_IDX_MASK)
    yield StoreBlock(front.ring, header.ljust(HEADER_SIZE, b"\0"))
    front.ring_ref = yield from _grant(front, front.ring >> PAGE_SHIFT, readonly=False)
    front.port = yield from evtchn_alloc_unbound(front.backend_domid, front.scratch)
    return front.ring_ref, front.port


def _grant(front: Blkfront, gfn: int, readonly: bool) -> Guest:
    """gnttab_grant_foreign_access: claim a ref, write domid, frame, then the flags."""
    if not front.free_refs:
        raise GuestKernelError("blkfront: no free grant reference")
    ref = front.free_refs.popleft()
    at = front.entry_address(ref)
    yield Store(at + 2, 2, front.backend_domid)
    yield Store(at + 4, 4, gfn)
    # (a write barrier here on weakly ordered CPUs; x86 keeps stores in order)
    yield Store(at, 2, GTF_permit_access | (GTF_readonly if readonly else 0))
    return ref


def _end_access(front: Blkfront, ref: int) -> Guest:
    """gnttab_end_foreign_access_ref: flags to 0 with a compare-and-swap, unless Xen still has
    the grant mapped; a ref still in use is not reused (Linux defers it; here it is leaked)."""
    at = front.entry_address(ref)
    flags = yield Load(at, 2)
    while not flags & (GTF_reading | GTF_writing):
        seen = yield Cmpxchg(at, 2, flags, 0)
        if seen == flags:
            front.free_refs.append(ref)
            return True
        flags = seen
    return False


# -- requests out ------------------------------------------------------------------------------
def _queue(front: Blkfront, op: int, sector: int, buffer: int, nbytes: int) -> Guest:
    """Build one request for ``nbytes`` at guest address ``buffer`` (≤ 11 pages) in the next
    private slot: a grant per page, the segments' inclusive sector ranges, a fresh id."""
    refs, segments = [], []
    for seg in segments_for_buffer(buffer, nbytes, op):
        ref = yield from _grant(front, seg.gfn, seg.readonly)
        refs.append(ref)
        segments.append(Segment(ref, seg.first_sect, seg.last_sect))
    rid = front.free_ids.popleft()
    request = make_request(op, rid, sector, segments)
    idx = front.req_prod_pvt
    yield StoreBlock(front.slot_address(idx), encode_request(request))
    front.req_prod_pvt = (idx + 1) & RING_IDX_MASK
    tag = front.issued
    front.issued += 1
    front.shadow[rid] = (request, refs, tag)
    front._row(QUEUED, rid, op, sector, len(segments), idx & (BLKIF_RING_SIZE - 1))
    return tag


def _push(front: Blkfront) -> Guest:
    """RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, then the doorbell if the back end asked for it."""
    old = yield Load(front.ring + REQ_PROD, 4)
    new = front.req_prod_pvt
    yield Store(front.ring + REQ_PROD, 4, new)  # after the requests: x86 keeps the order
    event = yield Load(front.ring + REQ_EVENT, 4)  # (after a full barrier, mb())
    notify = should_notify(old, new, event)
    front._row(PUSHED, new, event, notify)
    if notify:
        front.notifications += 1
        yield from evtchn_send(front.port, front.scratch)
    return notify


# -- responses in --------------------------------------------------------------------------------
def _take_responses(front: Blkfront) -> Guest:
    """Consume every published response (blkif_interrupt's loop); returns how many."""
    rp = yield Load(front.ring + RSP_PROD, 4)
    if (rp - front.rsp_cons) & RING_IDX_MASK > front.in_flight():
        return _break(front, f"rsp_prod {rp:#x} claims more responses than requests in flight")
    taken = 0
    while front.rsp_cons != rp:
        idx = front.rsp_cons
        rsp = decode_response((yield LoadBlock(front.slot_address(idx), RESPONSE_SIZE)))
        entry = front.shadow.pop(rsp.id, None)
        if entry is None:
            return _break(front, f"a response for id {rsp.id}, which is not in flight")
        request, refs, tag = entry
        if rsp.operation != request.operation:
            front.shadow[rsp.id] = entry
            return _break(front, f"response {rsp.id} is for operation {rsp.operation}, "
                                 f"the request was {request.operation}")
        for ref in refs:
            yield from _end_access(front, ref)
        front.free_ids.append(rsp.id)
        front.statuses[tag] = rsp.status
        front._row(ANSWERED, rsp.id, rsp.status, idx & (BLKIF_RING_SIZE - 1))
        front.rsp_cons = (idx + 1) & RING_IDX_MASK
        taken += 1
    if front.rsp_cons == front.req_prod_pvt:  # nothing in flight: the next response notifies
        yield Store(front.ring + RSP_EVENT, 4, (front.rsp_cons + 1) & RING_IDX_MASK)
    return taken


def _break(front: Blkfront, reason: str) -> int:
    front.broken = reason
    front._row(BROKEN, reason)
    return 0


def _final_check(front: Blkfront) -> Guest:
    """RING_FINAL_CHECK_FOR_RESPONSES: True if responses are waiting (do not sleep)."""
    rp = yield Load(front.ring + RSP_PROD, 4)
    if rp != front.rsp_cons:
        return True
    yield Store(front.ring + RSP_EVENT, 4, (front.rsp_cons + 1) & RING_IDX_MASK)
    rp = yield Load(front.ring + RSP_PROD, 4)  # (after mb()): did one land meanwhile?
    return rp != front.rsp_cons


# -- a whole transfer ----------------------------------------------------------------------------
def chunks(buffer: int, nbytes: int) -> list[tuple[int, int]]:
    """(address, bytes) pieces of a buffer, each within 11 pages: one request each."""
    pieces = []
    while nbytes:
        limit = BLKIF_MAX_SEGMENTS_PER_REQUEST * PAGE_SIZE - (buffer & PAGE_MASK)
        n = min(nbytes, limit)
        pieces.append((buffer, n))
        buffer, nbytes = buffer + n, nbytes - n
    return pieces


def blkfront_io(front: Blkfront, op: str, sector: int, count: int, buffer: int) -> Guest:
    """Read or write ``count`` sectors from ``sector`` to/from guest memory at ``buffer``, as
    the block layer hands blkfront a request queue: fill the ring, push, and while requests
    are in flight take the responses — waiting for the event only after the final check.
    Returns the statuses of the requests, in order (0 = BLKIF_RSP_OKAY)."""
    if op not in OPERATIONS:
        raise ConfigError(f"blkfront reads or writes, not {op!r}")
    if front.port is None:
        raise ConfigError("connect the front end first (blkfront_connect)")
    if count.__class__ is not int or count < 1 or buffer % SECTOR_SIZE:
        raise ConfigError("a transfer is at least one sector, to a sector-aligned buffer")
    code = OPERATIONS[op]
    pending = deque(chunks(buffer, count * SECTOR_SIZE))
    tags, at = [], sector
    while (pending or front.shadow) and not front.broken:
        queued = False
        while pending and front.free_ids and front.in_flight() < BLKIF_RING_SIZE:
            addr, n = pending.popleft()
            tags.append((yield from _queue(front, code, at, addr, n)))
            at += n // SECTOR_SIZE
            queued = True
        if queued:
            yield from _push(front)
        if (yield from _take_responses(front)) or front.broken or not front.shadow:
            continue
        if not (yield from _final_check(front)):
            front.waits += 1
            yield from wait_for_event(front.port, front.shared_info, front.hvm)
    if front.broken:
        raise GuestKernelError(f"blkfront: the back end is broken: {front.broken}")
    return [front.statuses.pop(tag) for tag in tags]


__all__ = ["Blkfront", "blkfront_connect", "blkfront_io", "chunks"]
