"""Xen's shared I/O ring: one page of guest memory between a front end and a back end.

This is ``xen/include/public/io/ring.h`` (xen-project/xen 3f20b8de; the newer names
XEN_RING_NR_UNCONSUMED_* and RING_RESPONSE_PROD_OVERFLOW as in torvalds/linux 1136fa0c
``include/xen/interface/io/ring.h``), rewritten as Python over a real 4 KiB page
(``MachineMemory.page``), so both ends see exactly the bytes the other one wrote.

The page (``struct *_sring``): four 32-bit indices — req_prod @0, req_event @4, rsp_prod @8,
rsp_event @12 — then 4 bytes ``pvt`` and 44 bytes of padding (a 64-byte header), then the slots,
each a union of one request and one response. The number of slots is what fits, rounded down
to a power of two (``__RD32``): blkif's 112-byte entries give (4096 − 64) / 112 = 36 → 32.

Indices are *free-running* 32-bit counters: they only ever grow (mod 2^32) and are masked only
to pick a slot (idx & (size − 1)); every difference below is taken mod 2^32, so "full" and
"empty" differ without a wasted slot and nothing breaks when a counter wraps past 2^32 − 1.
Each end keeps its private indices in its own memory: the front end ``req_prod_pvt`` and
``rsp_cons``, the back end ``rsp_prod_pvt`` and ``req_cons``.

Memory barriers cost nothing in a single-threaded model, but where ring.h puts one the
``*_steps`` generators yield its name ("wmb", "rmb", "mb"), between the other named steps, so a
stepper can show them and a scheduler can run the other side at exactly that point (the
lost-wake-up race of the final check). ``run(steps)`` plays a whole operation at once; the
plain methods do that.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import numpy as np

from ..errors import ConfigError
from ..hw.memory import PAGE_SIZE

RING_IDX_MASK = 0xFFFF_FFFF
HEADER_SIZE = 64
#: byte offsets in the shared page (struct *_sring)
REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT, PVT, PAD = 0, 4, 8, 12, 16, 20
BARRIERS = ("wmb", "rmb", "mb")

T = TypeVar("T")
Steps = Generator[str, None, T]


def round_down_pow2(n: int) -> int:
    """ring.h's __RD32: the largest power of two <= n (0 for 0), for a 32-bit n."""
    if n.__class__ is not int or not 0 <= n <= RING_IDX_MASK:
        raise ConfigError(f"__RD32 takes a 32-bit unsigned number, not {n!r}")
    return 1 << (n.bit_length() - 1) if n else 0


def ring_size(space: int, entry_size: int) -> int:
    """__CONST_RING_SIZE: slots of ``entry_size`` bytes after the header in ``space`` bytes."""
    return round_down_pow2((space - HEADER_SIZE) // entry_size)


def should_notify(old: int, new: int, event: int) -> bool:
    """The notify rule of RING_PUSH_*_AND_CHECK_NOTIFY: having moved a producer index from
    ``old`` to ``new``, notify iff the consumer's ``event`` index lies in (old, new], i.e.
    (RING_IDX)(new − event) < (RING_IDX)(new − old), with 32-bit unsigned subtraction."""
    return (new - event) & RING_IDX_MASK < (new - old) & RING_IDX_MASK


def run(steps: Steps[T]) -> T:
    """Play a stepped ring operation to its end and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _u32(value: int, what: str) -> int:
    if value.__class__ is not int or not 0 <= value <= RING_IDX_MASK:
        raise ConfigError(f"{what} is a 32-bit ring index (0 … 2**32 − 1), not {value!r}")
    return value


class SharedRing:
    """The shared ring page (``struct *_sring``): header indices and slots, read and written
    in place in ``page`` (a 4096-byte uint8 array: a machine frame, as both ends map it)."""

    def __init__(self, page: np.ndarray, entry_size: int) -> None:
        if not (isinstance(page, np.ndarray) and page.dtype == np.uint8
                and page.shape == (PAGE_SIZE,)):
            raise ConfigError("a shared ring lives in one page: a 4096-byte uint8 array")
        if entry_size.__class__ is not int or not 1 <= entry_size <= PAGE_SIZE - HEADER_SIZE:
            raise ConfigError(f"a ring entry of {entry_size!r} bytes does not fit in a page")
        self.page = page
        self.entry_size = entry_size
        self.size = ring_size(PAGE_SIZE, entry_size)  # nr_ents
        self._idx = page[:16].view("<u4")

    @classmethod
    def in_guest(cls, domain, gfn: int, entry_size: int) -> SharedRing:
        """The ring in guest frame ``gfn`` of ``domain`` (through its p2m)."""
        return cls(domain.machine.memory.page(domain.gfn_to_mfn(gfn)), entry_size)

    def _get(self, i: int) -> int:
        return int(self._idx[i])

    def _set(self, i: int, value: int) -> None:
        self._idx[i] = value & RING_IDX_MASK

    req_prod = property(lambda s: s._get(0), lambda s, v: s._set(0, v))
    req_event = property(lambda s: s._get(1), lambda s, v: s._set(1, v))
    rsp_prod = property(lambda s: s._get(2), lambda s, v: s._set(2, v))
    rsp_event = property(lambda s: s._get(3), lambda s, v: s._set(3, v))

    def init(self, start: int = 0) -> None:
        """SHARED_RING_INIT (the front end's job only): producers 0, both event indices 1 (so
        the first message notifies), pvt and padding zeroed. ``start`` ≠ 0 is a teaching aid:
        the ring as if ``start`` messages had already gone round (start near 2**32 shows the
        wrap); Xen always starts at 0 and re-attaches with FRONT/BACK_RING_ATTACH."""
        start = _u32(start, "the start index")
        self.req_prod = self.rsp_prod = start
        self.req_event = self.rsp_event = start + 1
        self.page[PVT:HEADER_SIZE] = 0

    def slot(self, idx: int) -> int:
        """The slot that free-running index ``idx`` names: idx & (size − 1)."""
        return idx & (self.size - 1)

    def slot_offset(self, idx: int) -> int:
        """Byte offset of index ``idx``'s slot in the page."""
        return HEADER_SIZE + self.slot(idx) * self.entry_size

    def read_slot(self, idx: int) -> bytes:
        """A private copy of index ``idx``'s slot (RING_COPY_REQUEST/RESPONSE)."""
        at = self.slot_offset(idx)
        return self.page[at : at + self.entry_size].tobytes()

    def write_slot(self, idx: int, data: bytes) -> None:
        """Write a message at the start of index ``idx``'s slot (the rest stays as it was, as
        when C stores the smaller member of the union)."""
        if not isinstance(data, (bytes, bytearray)) or len(data) > self.entry_size:
            raise ConfigError(f"a ring message is at most {self.entry_size} bytes of data")
        at = self.slot_offset(idx)
        self.page[at : at + len(data)] = np.frombuffer(bytes(data), np.uint8)


class FrontRing:
    """The front end's half (``struct *_front_ring``): it produces requests and consumes
    responses; ``req_prod_pvt`` and ``rsp_cons`` are in the front end's private memory.

    ``halted`` is None, or why this end stopped trusting the ring (a bogus back end)."""

    def __init__(self, sring: SharedRing, start: int = 0) -> None:
        self.sring = sring
        self.size = sring.size
        self.req_prod_pvt = self.rsp_cons = _u32(start, "the start index")  # FRONT_RING_ATTACH
        self.halted: str | None = None

    def free_requests(self) -> int:
        """RING_FREE_REQUESTS: size − (req_prod_pvt − rsp_cons)."""
        return self.size - ((self.req_prod_pvt - self.rsp_cons) & RING_IDX_MASK)

    def full(self) -> bool:
        """RING_FULL: no free request slot."""
        return self.free_requests() == 0

    def unconsumed_responses(self) -> int:
        """XEN_RING_NR_UNCONSUMED_RESPONSES: rsp_prod − rsp_cons."""
        return (self.sring.rsp_prod - self.rsp_cons) & RING_IDX_MASK

    def response_prod_overflow(self, prod: int) -> bool:
        """RING_RESPONSE_PROD_OVERFLOW: a back end claiming more responses than the ring
        holds, (prod − rsp_cons) > size."""
        return (prod - self.rsp_cons) & RING_IDX_MASK > self.size

    def put_request(self, data: bytes) -> int:
        """Write a request in the next private slot (not yet visible: see push); its index."""
        if self.full():
            raise ConfigError("the ring is full: wait for responses before queueing more")
        idx = self.req_prod_pvt
        self.sring.write_slot(idx, data)
        self.req_prod_pvt = (idx + 1) & RING_IDX_MASK
        return idx

    def push_requests_steps(self) -> Steps[bool]:
        """RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, step by step; returns whether to notify."""
        old, new = self.sring.req_prod, self.req_prod_pvt
        yield "wmb"  # the back end sees the requests before the new producer index
        self.sring.req_prod = new
        yield f"req_prod = {new:#x}"
        yield "mb"  # the back end sees req_prod before we read its req_event
        event = self.sring.req_event
        notify = should_notify(old, new, event)
        yield f"req_event = {event:#x}: {'notify' if notify else 'no notification'}"
        return notify

    def push_requests_and_check_notify(self) -> bool:
        """Publish the private requests; True if the back end asked to be notified."""
        return run(self.push_requests_steps())

    def take_responses_steps(self) -> Steps[list[bytes]]:
        """Read rsp_prod once, check it (RING_RESPONSE_PROD_OVERFLOW), then copy each
        response out of the ring and advance rsp_cons; a bogus back end halts this end."""
        if self.halted:
            return []
        rp = self.sring.rsp_prod
        yield f"rsp_prod = {rp:#x}"
        yield "rmb"  # see the responses up to rp
        if self.response_prod_overflow(rp):
            n = (rp - self.rsp_cons) & RING_IDX_MASK
            self.halted = f"illegal number of responses: {n} > {self.size}"
            yield self.halted
            return []
        taken = []
        while self.rsp_cons != rp:
            idx = self.rsp_cons
            taken.append(self.sring.read_slot(idx))
            yield f"copy response {idx:#x} from slot {self.sring.slot(idx)}"
            self.rsp_cons = (idx + 1) & RING_IDX_MASK
        return taken

    def take_responses(self) -> list[bytes]:
        """Private copies of every published response (empty if halted)."""
        return run(self.take_responses_steps())

    def final_check_for_responses_steps(self) -> Steps[bool]:
        """RING_FINAL_CHECK_FOR_RESPONSES: before sleeping, ask for a notification on the next
        response (rsp_event = rsp_cons + 1), full barrier, then look again."""
        work = self.unconsumed_responses()
        yield f"{work} unconsumed responses"
        if work:
            return True
        self.sring.rsp_event = self.rsp_cons + 1
        yield f"rsp_event = {self.sring.rsp_event:#x}"
        yield "mb"
        work = self.unconsumed_responses()
        yield f"re-check: {work} unconsumed responses"
        return bool(work)

    def final_check_for_responses(self) -> bool:
        """True if responses arrived, so the front end must not go to sleep."""
        return run(self.final_check_for_responses_steps())


class BackRing:
    """The back end's half (``struct *_back_ring``): it consumes requests and produces
    responses, defending itself against a hostile front end (§5.4 of hardware-facts):

    * it reads req_prod once per batch and refuses a producer that claims more outstanding
      requests than the ring holds (RING_REQUEST_PROD_OVERFLOW) — then, as Linux blkback's
      ``__do_block_io_op``, it reports "bogus ring requests" in ``halted`` and stops serving
      this ring for good;
    * it never consumes past the responses it still owes (RING_REQUEST_CONS_OVERFLOW);
    * it copies each request into private memory before anyone looks at it, so a front end
      rewriting the slot afterwards changes nothing (no double fetch).
    """

    def __init__(self, sring: SharedRing, start: int = 0) -> None:
        self.sring = sring
        self.size = sring.size
        self.rsp_prod_pvt = self.req_cons = _u32(start, "the start index")  # BACK_RING_ATTACH
        self.halted: str | None = None

    def unconsumed_requests(self) -> int:
        """XEN_RING_NR_UNCONSUMED_REQUESTS: min(req_prod − req_cons,
        size − (req_cons − rsp_prod_pvt)) — never more than the responses it can still give."""
        req = (self.sring.req_prod - self.req_cons) & RING_IDX_MASK
        rsp = (self.size - ((self.req_cons - self.rsp_prod_pvt) & RING_IDX_MASK)) & RING_IDX_MASK
        return min(req, rsp)

    def request_prod_overflow(self, prod: int) -> bool:
        """RING_REQUEST_PROD_OVERFLOW: (prod − rsp_prod_pvt) > size, an impossible producer."""
        return (prod - self.rsp_prod_pvt) & RING_IDX_MASK > self.size

    def request_cons_overflow(self, cons: int) -> bool:
        """RING_REQUEST_CONS_OVERFLOW: (cons − rsp_prod_pvt) >= size, consuming one more would
        overrun the response space (the consume loop's termination test)."""
        return (cons - self.rsp_prod_pvt) & RING_IDX_MASK >= self.size

    def take_requests_steps(self, limit: int | None = None) -> Steps[list[bytes]]:
        """blkback's consume loop: rp = req_prod, rmb, the overflow check, then copy requests
        (at most ``limit``) into private memory, advancing req_cons before each is used."""
        if limit is not None and (limit.__class__ is not int or limit < 0):
            raise ConfigError(f"a request limit is a non-negative int or None, not {limit!r}")
        if self.halted:
            return []
        rp = self.sring.req_prod
        yield f"req_prod = {rp:#x}"
        yield "rmb"  # see the requests up to rp
        if self.request_prod_overflow(rp):
            n = (rp - self.rsp_prod_pvt) & RING_IDX_MASK
            self.halted = (f"frontend provided bogus ring requests ({rp:#x} - "
                           f"{self.rsp_prod_pvt:#x} = {n} > {self.size}): ring halted")
            yield self.halted
            return []
        taken: list[bytes] = []
        rc = self.req_cons
        while rc != rp and not self.request_cons_overflow(rc):
            if limit is not None and len(taken) >= limit:
                break
            taken.append(self.sring.read_slot(rc))
            yield f"copy request {rc:#x} from slot {self.sring.slot(rc)}"
            rc = self.req_cons = (rc + 1) & RING_IDX_MASK
        return taken

    def take_requests(self, limit: int | None = None) -> list[bytes]:
        """Private copies of the requests to serve now (empty once halted)."""
        return run(self.take_requests_steps(limit))

    def put_response(self, data: bytes) -> int:
        """Write a response in the next private slot (not yet visible: see push); its index.
        Its slot's request was consumed already, so this never overwrites an unread one."""
        if (self.req_cons - self.rsp_prod_pvt) & RING_IDX_MASK == 0:
            raise ConfigError("no consumed request is waiting for this response")
        idx = self.rsp_prod_pvt
        self.sring.write_slot(idx, data)
        self.rsp_prod_pvt = (idx + 1) & RING_IDX_MASK
        return idx

    def push_responses_steps(self) -> Steps[bool]:
        """RING_PUSH_RESPONSES_AND_CHECK_NOTIFY, step by step; returns whether to notify."""
        old, new = self.sring.rsp_prod, self.rsp_prod_pvt
        yield "wmb"  # the front end sees the responses before the new producer index
        self.sring.rsp_prod = new
        yield f"rsp_prod = {new:#x}"
        yield "mb"  # the front end sees rsp_prod before we read its rsp_event
        event = self.sring.rsp_event
        notify = should_notify(old, new, event)
        yield f"rsp_event = {event:#x}: {'notify' if notify else 'no notification'}"
        return notify

    def push_responses_and_check_notify(self) -> bool:
        """Publish the private responses; True if the front end asked to be notified."""
        return run(self.push_responses_steps())

    def final_check_for_requests_steps(self) -> Steps[bool]:
        """RING_FINAL_CHECK_FOR_REQUESTS: before sleeping, ask for a notification on the next
        request (req_event = req_cons + 1), full barrier, then look again: a request that
        came in between is found by the re-check instead of waiting for a lost wake-up."""
        work = self.unconsumed_requests()
        yield f"{work} unconsumed requests"
        if work:
            return True
        self.sring.req_event = self.req_cons + 1
        yield f"req_event = {self.sring.req_event:#x}"
        yield "mb"
        work = self.unconsumed_requests()
        yield f"re-check: {work} unconsumed requests"
        return bool(work)

    def final_check_for_requests(self) -> bool:
        """True if requests are waiting, so the back end must not go to sleep."""
        return run(self.final_check_for_requests_steps())


__all__ = [
    "BARRIERS", "HEADER_SIZE", "RING_IDX_MASK", "BackRing", "FrontRing", "SharedRing",
    "ring_size", "round_down_pow2", "run", "should_notify",
]
