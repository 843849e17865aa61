"""Chapter 03's hostile front end: each attack on blkback, and what the back end does.

A front end is guest code, and a guest may be hostile: it owns the shared ring page and may
write anything into it at any moment. Linux's blkback (drivers/block/xen-blkback/blkback.c)
answers the attacks of issue 10 in one of two ways:

* **the ring is no longer served**: a ``req_prod`` that claims more requests than the ring
  can hold (``RING_REQUEST_PROD_OVERFLOW`` in ``__do_block_io_op``: "Frontend provided bogus
  ring requests", the function returns -EACCES and the ring's thread waits for shutdown).
  Nothing on that ring is answered again; the back end's other rings carry on;
* **BLKIF_RSP_ERROR for that request**, its id echoed (``dispatch_rw_block_io``'s
  ``fail_response``): nr_segments 0 or more than 11, a segment with first_sect > last_sect or
  last_sect > 7, a sector range beyond the disk (``xen_vbd_translate``), a grant that cannot
  be mapped (``xen_blkbk_map``). The next request on the ring is served as usual.

And one attack that changes nothing: rewriting a request in its slot after the back end
copied it (a time-of-check-to-time-of-use race). blkback copies each request into private
memory before it looks at it, so the copy is what is checked *and* what is served.

Each attack runs on a fresh machine with two guests on one blkback: the **attacker** (PV, its
own virtual disk) and a **victim** (HVM, its own vbd on a disk of its own), both connected,
the victim having read once. ``run_attack`` hashes the victim's memory, dom0's memory and both
disks before and after the attack, then has the victim read again. Scenario code may peek
at the back end's private state to time an attack (when blkback has copied a request): a
real attacker would get there by retrying.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ..cpu.ops import Guest, Load, LoadBlock, Store, StoreBlock
from ..devices.disk import DiskBackend
from ..errors import ConfigError, GuestFault
from ..guest.blkfront import Blkfront, _push, blkfront_io
from ..guest.blkfront import _grant as grant_page
from ..guest.xen_events import evtchn_send, wait_for_event
from ..hw.memory import MIB, PAGE_SHIFT, PAGE_SIZE
from ..trace import Event, Schema
from ..xen.blkback import Blkback, Vbd
from ..xen.blkif import (
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_RING_SIZE,
    BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR,
    BLKIF_RSP_OKAY,
    RESPONSE_SIZE,
    SECTOR_SIZE,
    Response,
    Segment,
    decode_response,
    encode_request,
    make_request,
)
from ..xen.dom0 import Dom0Kernel
from ..xen.domain import Domain
from ..xen.machine import Machine
from ..xen.ring import REQ_PROD, RING_IDX_MASK, RSP_EVENT, RSP_PROD
from ..xen.vcpu import Vcpu
from .device_model import DISK_SECTORS, disk_content, make_backend
from .split_drivers import BUFFER, DOM0_RAM, GUEST_RAM, add_guest, connect_program

ATTACKS: tuple[str, ...] = (
    "bogus req_prod",
    "rewritten after the copy",
    "nr_segments 0",
    "nr_segments 12",
    "first_sect > last_sect",
    "last_sect 8",
    "bad grant ref",
    "sector beyond the disk",
)
WHAT = {
    "bogus req_prod": f"req_prod says {BLKIF_RING_SIZE + 8} requests wait in a "
                      f"{BLKIF_RING_SIZE}-slot ring",
    "rewritten after the copy": "a READ of sector 0, rewritten in its slot into a WRITE of "
                                "sector 4000 once blkback has copied it",
    "nr_segments 0": "a READ with no segments",
    "nr_segments 12": "a READ claiming 12 segments (the most is 11)",
    "first_sect > last_sect": "a segment from sector 3 to sector 2 of its page",
    "last_sect 8": "a segment ending at sector 8 of a 4 KiB page (sectors 0 … 7)",
    "bad grant ref": "a segment whose grant ref 9999 is past the grant table's end",
    "sector beyond the disk": f"8 sectors from sector {DISK_SECTORS - 4} of a "
                              f"{DISK_SECTORS}-sector disk",
}
STATUS_NAMES = {BLKIF_RSP_OKAY: "BLKIF_RSP_OKAY", BLKIF_RSP_ERROR: "BLKIF_RSP_ERROR",
                BLKIF_RSP_EOPNOTSUPP: "BLKIF_RSP_EOPNOTSUPP"}
VICTIM_RAM = 64 * MIB
VICTIM_SECTOR = 16  # what the victim reads after the attack
REWRITTEN = Schema("attacker", "rewrite", ("slot", "op", "sector"))
#: how long the attacker is willing to spin for the back end to copy its request (loads)
SPIN_LIMIT = 100_000
RUN_STEPS = 2_000_000


@dataclass
class AttackResult:
    """What one attack did: the back end's answer, the row it logged, and what became of
    the victim and of the attacker's ring."""

    name: str
    what: str  # the attack, in one line
    answer: str  # "BLKIF_RSP_ERROR", or "ring stopped: <reason>", or the served copy's status
    logged: str  # the trace row blkback wrote about it
    victim_served: bool  # the victim's read after the attack returned the right bytes
    victim_intact: bool  # victim's memory, dom0's memory, both disks: hashes unchanged
    attacker_ok: bool  # the attack raised nothing on the Python side (a guest fault may end it)
    attacker_served_after: bool  # the attacker's next ordinary read was answered
    status: int | None = None  # the status of the attack's response (None: no response)


@dataclass
class Arena:
    """A machine with blkback, an attacker and a victim, both connected."""

    machine: Machine
    dom0: Domain
    blkback: Blkback
    attacker: Domain
    front: Blkfront
    disk: DiskBackend
    victim: Domain
    victim_front: Blkfront
    victim_disk: DiskBackend

    @property
    def vbd(self) -> Vbd:
        """blkback's side of the attacker's disk."""
        return self.blkback.vbds[self.attacker.domid]


def arena() -> Arena:
    """dom0 with blkback; the attacker (PV) and the victim (HVM) on disks of their own, both
    connected, the victim having read sectors 0-7."""
    machine = Machine(512 * MIB)
    dom0 = machine.add_domain("dom0", DOM0_RAM, base=0, kind="pv", privileged=True)
    blkback = Blkback(Dom0Kernel(dom0), machine.grant_tables)
    disk, victim_disk = make_backend("memory"), make_backend("memory")
    attacker, front = add_guest(machine, blkback, disk, "pv", "attacker", ram=GUEST_RAM)
    victim, victim_front = add_guest(machine, blkback, victim_disk, "hvm", "victim",
                                     ram=VICTIM_RAM)
    for dom, fe in ((victim, victim_front), (attacker, front)):
        _run(dom, connect_program(machine, dom, fe), "connecting")
    _run(victim, blkfront_io(victim_front, "read", 0, 8, BUFFER), "the victim's first read")
    return Arena(machine, dom0, blkback, attacker, front, disk, victim, victim_front,
                 victim_disk)


def _run(dom: Domain, program: Guest, what: str) -> Vcpu:
    cpu = Vcpu(dom, program)
    cpu.run(RUN_STEPS)
    if what and (cpu.crashed is not None or not cpu.done):
        raise ConfigError(f"{what} did not finish: {cpu.crashed or 'still running'}")
    return cpu


# -- what the attacker's kernel does ----------------------------------------------------------
def push_raw(front: Blkfront, raw: bytes) -> Guest:
    """Write 112 bytes of the attacker's choosing in the next slot and publish them."""
    yield StoreBlock(front.slot_address(front.req_prod_pvt), raw)
    front.req_prod_pvt = (front.req_prod_pvt + 1) & RING_IDX_MASK
    yield from _push(front)


def await_responses(front: Blkfront, n: int) -> Guest:
    """Wait for ``n`` responses and return them decoded (asking for an event each time)."""
    got: list[Response] = []
    while len(got) < n:
        rp = yield Load(front.ring + RSP_PROD, 4)
        while front.rsp_cons != rp and len(got) < n:
            raw = yield LoadBlock(front.slot_address(front.rsp_cons), RESPONSE_SIZE)
            got.append(decode_response(raw))
            front.rsp_cons = (front.rsp_cons + 1) & RING_IDX_MASK
        if len(got) < n:
            yield Store(front.ring + RSP_EVENT, 4, (front.rsp_cons + 1) & RING_IDX_MASK)
            if (yield Load(front.ring + RSP_PROD, 4)) == front.rsp_cons:
                yield from wait_for_event(front.port, front.shared_info, front.hvm)
    return got


def _request(op: int, rid: int, sector: int, segments: list[Segment],
             nr_segments: int | None = None) -> bytes:
    """A request's 112 bytes; ``nr_segments`` overrides the count byte (offset 1, blkif.h)."""
    raw = bytearray(encode_request(make_request(op, rid, sector, segments)))
    if nr_segments is not None:
        raw[1] = nr_segments
    return bytes(raw)


#: per-request attacks: (request id, how to build it from a writable grant ref)
BAD_REQUESTS: dict[str, tuple[int, Callable[[int], bytes]]] = {
    "nr_segments 0": (10, lambda w: _request(BLKIF_OP_READ, 10, 0, [], nr_segments=0)),
    "nr_segments 12": (11, lambda w: _request(BLKIF_OP_READ, 11, 0, [Segment(w, 0, 0)] * 11,
                                              nr_segments=12)),
    "first_sect > last_sect": (12, lambda w: _request(BLKIF_OP_READ, 12, 0, [Segment(w, 3, 2)])),
    "last_sect 8": (13, lambda w: _request(BLKIF_OP_READ, 13, 0, [Segment(w, 0, 8)])),
    "bad grant ref": (14, lambda w: _request(BLKIF_OP_READ, 14, 0, [Segment(9999, 0, 7)])),
    "sector beyond the disk": (15, lambda w: _request(BLKIF_OP_READ, 15, DISK_SECTORS - 4,
                                                      [Segment(w, 0, 7)])),
}


def _bad_request(a: Arena, name: str) -> Guest:
    _, build = BAD_REQUESTS[name]
    writable = yield from grant_page(a.front, BUFFER >> PAGE_SHIFT, readonly=False)
    yield from push_raw(a.front, build(writable))
    return (yield from await_responses(a.front, 1))


def _bogus_req_prod(a: Arena) -> Guest:
    """req_prod far ahead of anything the ring holds, then the doorbell; then wait for an
    answer that never comes."""
    front = a.front
    yield Store(front.ring + REQ_PROD, 4, (front.req_prod_pvt + BLKIF_RING_SIZE + 8)
                & RING_IDX_MASK)
    yield from evtchn_send(front.port, front.scratch)
    yield from wait_for_event(front.port, front.shared_info, front.hvm)
    return []


def _rewrite_after_copy(a: Arena) -> Guest:
    """A READ of sector 0 into the buffer; the moment blkback has copied it (req_cons moved)
    the slot is rewritten into a WRITE of sector 4000 from the same page."""
    front, ring = a.front, a.vbd.ring
    ref = yield from grant_page(front, BUFFER >> PAGE_SHIFT, readonly=False)
    slot = front.req_prod_pvt
    consumed = ring.req_cons
    yield from push_raw(front, _request(BLKIF_OP_READ, 7, 0, [Segment(ref, 0, 7)]))
    for _ in range(SPIN_LIMIT):
        if ring.req_cons != consumed:  # (the scenario peeks: blkback has its copy now)
            break
        yield Load(BUFFER, 4)
    else:
        raise ConfigError("blkback never took the request")
    a.machine.trace.record((a.machine.clock.now, REWRITTEN.id, slot & (BLKIF_RING_SIZE - 1),
                            BLKIF_OP_WRITE, 4000))
    yield StoreBlock(front.slot_address(slot),
                     _request(BLKIF_OP_WRITE, 7, 4000, [Segment(ref, 0, 7)]))
    return (yield from await_responses(front, 1))


def _program(a: Arena, name: str) -> Guest:
    if name == "bogus req_prod":
        return _bogus_req_prod(a)
    if name == "rewritten after the copy":
        return _rewrite_after_copy(a)
    return _bad_request(a, name)


# -- running one ---------------------------------------------------------------------------------
def _page_hash(machine: Machine, dom: Domain) -> str:
    """A hash of the domain's RAM as machine frames: (frame, contents) of every non-zero
    page (a page the model has not touched yet is zero)."""
    first, n = dom.machine_base >> PAGE_SHIFT, dom.ram_size >> PAGE_SHIFT
    h = hashlib.sha256()
    pages = machine.memory.pages
    for frame in sorted(f for f in pages if first <= f < first + n):
        page = pages[frame]
        if page.any():
            h.update(frame.to_bytes(8, "little"))
            h.update(page.tobytes())
    return h.hexdigest()


def intact_hash(a: Arena) -> tuple[str, ...]:
    """What the attacker must not change: the victim's memory, dom0's memory, both disks."""
    disks = tuple(hashlib.sha256(d.read(0, d.sectors)[0]).hexdigest()
                  for d in (a.victim_disk, a.disk))
    return (_page_hash(a.machine, a.victim), _page_hash(a.machine, a.dom0), *disks)


def _victim_served(a: Arena) -> bool:
    cpu = _run(a.victim, blkfront_io(a.victim_front, "read", VICTIM_SECTOR, 8, BUFFER), "")
    want = disk_content()[VICTIM_SECTOR * SECTOR_SIZE:(VICTIM_SECTOR + 8) * SECTOR_SIZE]
    return (cpu.crashed is None and cpu.result == [BLKIF_RSP_OKAY]
            and a.victim.read_bytes(BUFFER, 8 * SECTOR_SIZE) == want)


def _attacker_served(a: Arena) -> bool:
    where = BUFFER + 0x10000
    cpu = _run(a.attacker, blkfront_io(a.front, "read", 8, 8, where), "")
    return (cpu.crashed is None and cpu.result == [BLKIF_RSP_OKAY]
            and a.attacker.read_bytes(where, PAGE_SIZE) == disk_content()[8 * 512:16 * 512])


def _blkback_row(a: Arena, since: int, kind: str) -> Event | None:
    rows = [e for e in list(a.machine.trace)[since:] if e.actor == "blkback" and e.kind == kind]
    return rows[0] if rows else None


def run_attack(name: str, where: Arena | None = None) -> AttackResult:
    """Run one of ``ATTACKS`` against a fresh arena (or ``where``, to look at it afterwards)
    and report what the back end did."""
    if name not in ATTACKS:
        raise ConfigError(f"the attacks are {ATTACKS}, not {name!r}")
    if where is not None and not isinstance(where, Arena):
        raise ConfigError(f"an attack runs in an Arena (see arena()), not {where!r}")
    a = arena() if where is None else where
    before = intact_hash(a)
    since = len(a.machine.trace)
    try:
        cpu = _run(a.attacker, _program(a, name), "")
        # a guest fault (Halted: asleep for good) is the guest's business; any other error
        # the vCPU caught is the model's Python side breaking
        ok = cpu.crashed is None or isinstance(cpu.crashed, GuestFault)
        responses = cpu.result if cpu.done and cpu.crashed is None else []
    except Exception:  # noqa: BLE001 — what the table reports: the attack made Python raise
        ok, responses = False, []
    intact = intact_hash(a) == before
    status = responses[0].status if responses else None
    if a.vbd.halted:
        answer, row = f"ring stopped: {a.vbd.halted}", _blkback_row(a, since, "bogus-ring")
    elif name == "rewritten after the copy":
        row = _blkback_row(a, since, "request")
        served = ("the copy was served" if intact and a.attacker.read_bytes(BUFFER, PAGE_SIZE)
                  == disk_content()[:PAGE_SIZE] else "the rewritten slot was served")
        answer = f"{STATUS_NAMES.get(status, status)}: {served}"
    else:
        answer = str(STATUS_NAMES.get(status, status))
        row = _blkback_row(a, since, "refused")
    logged = str(row).strip() if row is not None else "(nothing logged)"
    served = _victim_served(a)
    return AttackResult(name, WHAT[name], answer, logged, served, intact, ok,
                        _attacker_served(a), status)


def attack_table() -> list[AttackResult]:
    """Every attack of ``ATTACKS``, in order."""
    return [run_attack(name) for name in ATTACKS]


# -- the notebook's table ----------------------------------------------------------------------
HEADER = ("attack", "blkback's answer", "victim served", "victim intact", "attacker ok",
          "its next read")


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def attack_rows(results: list[AttackResult]) -> list[tuple[str, ...]]:
    """The table's rows, header first (yes/NO for the checks; the attacker's next ordinary
    read "served" or "never answered")."""
    return [HEADER] + [(r.name, r.answer, _yes(r.victim_served), _yes(r.victim_intact),
                        _yes(r.attacker_ok),
                        "served" if r.attacker_served_after else "never answered")
                       for r in results]


def attack_text(results: list[AttackResult], width: int = 40) -> str:
    """The table as fixed-width text (cells cut at ``width`` characters); under each row, the
    attack and the row blkback logged, in full."""
    if width.__class__ is not int or width < 8:
        raise ConfigError(f"a column is at least 8 characters wide, not {width!r}")
    rows = attack_rows(results)
    cut = [tuple(c if len(c) <= width else c[: width - 1] + "…" for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cut) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cut[0], widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row, r in zip(cut[1:], results, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.append(f"    attack: {r.what}")
        lines.append(f"    logged: {r.logged}")
    return "\n".join(lines)


__all__ = [
    "ATTACKS", "Arena", "AttackResult", "arena", "attack_rows", "attack_table", "attack_text",
    "await_responses", "intact_hash", "push_raw", "run_attack",
]
