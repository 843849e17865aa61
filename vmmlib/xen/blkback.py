"""dom0's block back end (Linux drivers/block/xen-blkback): the real driver behind blkfront.

It owns the disk (one of chapter 02's disk backends per virtual block device) and serves each
front end's ring, as Linux blkback's thread does:

1. **connect** (``Blkback.connect``, when the front end's xenstore entries appear): map the
   ring page the front end granted (GNTTABOP_map_grant_ref), bind the front end's unbound
   event channel, and ask dom0's kernel to run ``kick`` on its events.
2. **consume** (``Vbd.serve``): read req_prod once, refuse a producer that claims more requests
   than the ring holds (RING_REQUEST_PROD_OVERFLOW: "Frontend provided bogus ring requests",
   and this ring is never served again — other front ends carry on), copy each request into
   private memory before looking at it (a front end rewriting the slot later changes nothing),
   then RING_FINAL_CHECK_FOR_REQUESTS before going back to sleep.
3. **dispatch** each request, one after the other: check it (operation, 1 … 11 segments,
   first_sect ≤ last_sect ≤ 7, sectors inside the disk — ``blkif.request_problems``), map each
   segment's grant (read-only for a disk WRITE, writable for a READ: a READ into a read-only
   grant fails to map), and submit the transfer to the disk, which serves one at a time.
4. **complete**: copy the sectors into (READ) the mapped pages, unmap them, write the response
   (its ``id`` and ``operation`` echoed, BLKIF_RSP_OKAY or BLKIF_RSP_ERROR), publish it and
   send an event only if the front end asked (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY).

Anything wrong in a request is answered BLKIF_RSP_ERROR (BLKIF_RSP_EOPNOTSUPP for an
operation it does not implement) and logged in the trace; nothing a front end writes raises.

Time: the back end runs on dom0's own CPU, in parallel with the guest. Each request costs
``blkback_request_ns`` plus ``grant_map_ns`` per segment on the back end's thread; the disk
adds its latency; completing costs ``grant_unmap_ns`` per segment. Milestones are alarms on the
shared clock, so the guest's vCPU keeps running meanwhile.

Sources: torvalds/linux drivers/block/xen-blkback/blkback.c (``__do_block_io_op``,
``dispatch_rw_block_io``, ``xen_blkbk_map`` with GNTMAP_readonly for writes,
``make_response``), xenbus.c (``connect_ring``, ``xen_blkif_map``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..devices.disk import DiskBackend
from ..errors import ConfigError
from ..hw.memory import PAGE_SIZE
from ..trace import Schema
from .blkif import (
    BLKIF_OP_READ,
    BLKIF_RING_SIZE,
    BLKIF_RSP_OKAY,
    RING_ENTRY_SIZE,
    SECTOR_SIZE,
    Request,
    Response,
    decode_request,
    encode_response,
    error_status,
    request_problems,
)
from .disk_rows import record_disk_access
from .dom0 import Dom0Kernel
from .grant_ops import GrantTables
from .grant_table import GNTST_NAMES, GNTMAP_host_map, GNTMAP_readonly, GNTST_okay
from .ring import BackRing, SharedRing

if TYPE_CHECKING:
    from .domain import Domain

ACTOR = "blkback"
#: where dom0's kernel maps granted pages (a virtual-address area of its own; Xen records the
#: address with the mapping and unmaps by it)
MAP_AREA = 0xFFFF_C900_0000_0000
CONNECT = Schema(ACTOR, "connect", ("domain", "ring_ref", "port", "status"))
TAKE = Schema(ACTOR, "take", ("domain", "req_prod", "count"))
BOGUS = Schema(ACTOR, "bogus-ring", ("domain", "reason"))
REQUEST = Schema(ACTOR, "request", ("domain", "id", "op", "sector", "segments"))
REFUSED = Schema(ACTOR, "refused", ("domain", "id", "reason", "status"))
MAPPED = Schema(ACTOR, "grant-map", ("domain", "id", "refs", "status"))
RESPONSE = Schema(ACTOR, "response", ("domain", "id", "status", "notify"))
SLEEP = Schema(ACTOR, "sleep", ("domain", "req_event"))


class Vbd:
    """One front end's virtual block device in the back end: its mapped ring, its event
    channel, its disk, and what it has done (Linux's ``xen_blkif`` and its ring)."""

    def __init__(self, back: Blkback, frontend: Domain, ring: BackRing, port: int,
                 disk: DiskBackend) -> None:
        self.back, self.frontend, self.ring, self.port, self.disk = (
            back, frontend, ring, port, disk)
        self.machine = frontend.machine
        self.busy_until = 0  # the back end's thread works through requests in order
        self.disk_free_at = 0  # the disk serves one transfer at a time
        self.requests = self.errors = self.notifications = self.events = 0
        self._serving = False
        self._free_vaddrs = deque(MAP_AREA + PAGE_SIZE * i
                                  for i in range(1, 1 + BLKIF_RING_SIZE * 11))

    @property
    def halted(self) -> str | None:
        """Why this ring is no longer served (a bogus front end), or None."""
        return self.ring.halted

    def _row(self, schema: Schema, *values: object, t: int | None = None) -> None:
        clock = self.machine.clock
        self.machine.trace.record((clock.now if t is None else t, schema.id, *values))

    # -- consuming the ring --------------------------------------------------------------------
    def kick(self) -> None:
        """The front end's event, delivered by dom0's kernel: wake the thread and serve."""
        self.events += 1
        if not self._serving:
            self.serve()

    def serve(self) -> None:
        """Take every request the ring holds now, dispatch each, and final-check before
        sleeping (a request published meanwhile is found by the re-check)."""
        self._serving = True
        name = self.frontend.name
        try:
            while not self.ring.halted:
                rp = self.ring.sring.req_prod
                raws = self.ring.take_requests()
                if self.ring.halted:
                    self._row(BOGUS, name, self.ring.halted)
                    return
                self._row(TAKE, name, rp, len(raws))
                for raw in raws:
                    self._dispatch(decode_request(raw))  # the private copy, decoded once
                if not self.ring.final_check_for_requests():
                    self._row(SLEEP, name, self.ring.sring.req_event)
                    return
        finally:
            self._serving = False

    # -- one request ---------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> None:
        costs, clock = self.machine.costs, self.machine.clock
        self.requests += 1
        name = self.frontend.name
        self._row(REQUEST, name, req.id, req.operation, req.sector_number, req.nr_segments)
        problems = request_problems(req, self.disk.sectors)
        start = max(clock.now, self.busy_until) + costs.blkback_request_ns
        if problems:
            self.busy_until = start
            clock.call_at(start, lambda: self._refuse(req, problems[0], error_status(req)))
            return
        self.busy_until = start + costs.grant_map_ns * req.nr_segments
        clock.call_at(self.busy_until, lambda: self._submit(req))

    def _refuse(self, req: Request, reason: str, status: int) -> None:
        self.errors += 1
        self._row(REFUSED, self.frontend.name, req.id, reason, status)
        self._respond(req, status)

    def _map(self, req: Request) -> list | None:
        """Map every segment's grant (GNTMAP_readonly for a disk WRITE); on a failure undo
        the ones done and refuse the request."""
        grants, flags = self.back.grants, GNTMAP_host_map
        if req.operation != BLKIF_OP_READ:
            flags |= GNTMAP_readonly  # the back end only reads the pages of a write
        dom0, handles = self.back.dom0.domain, []
        for seg in req.used_segments():
            vaddr = self._free_vaddrs.popleft()
            result = grants.map_grant_ref(dom0, self.frontend.domid, seg.gref, flags, vaddr)
            if result.status != GNTST_okay:
                self._free_vaddrs.append(vaddr)
                self._unmap(handles)
                self._row(MAPPED, self.frontend.name, req.id, len(handles) + 1, result.status)
                self._refuse(req, f"grant ref {seg.gref}: {GNTST_NAMES[result.status]}",
                             error_status(req))
                return None
            handles.append((result.handle, vaddr))
        self._row(MAPPED, self.frontend.name, req.id, len(handles), GNTST_okay)
        return handles

    def _submit(self, req: Request) -> None:
        handles = self._map(req)
        if handles is None:
            return
        dom0 = self.back.dom0.domain
        pages = [self.back.grants.mapped_page(dom0, h) for h, _ in handles]
        segments = req.used_segments()
        count = req.nr_sectors()
        clock = self.machine.clock
        start = max(clock.now, self.disk_free_at)
        if req.operation == BLKIF_OP_READ:
            data, latency = self.disk.read(req.sector_number, count)
            op = "read"
        else:  # the bytes of each segment, from the pages dom0 mapped read-only
            data = b"".join(bytes(page[s.first_sect * SECTOR_SIZE:(s.last_sect + 1) * SECTOR_SIZE])
                            for page, s in zip(pages, segments, strict=True))
            latency = self.disk.write(req.sector_number, data)
            op = "write"
        done = record_disk_access(self.machine, self.disk.name, op, req.sector_number, count,
                                  latency, start)
        self.disk_free_at = done
        finish = done + self.machine.costs.grant_unmap_ns * len(handles)
        clock.call_at(finish, lambda: self._complete(req, handles, pages, data))

    def _complete(self, req: Request, handles: list, pages: list, data: bytes) -> None:
        if req.operation == BLKIF_OP_READ:  # the sectors land in the front end's pages
            at = 0
            for page, s in zip(pages, req.used_segments(), strict=True):
                n = (s.last_sect - s.first_sect + 1) * SECTOR_SIZE
                page[s.first_sect * SECTOR_SIZE : s.first_sect * SECTOR_SIZE + n] = (
                    memoryview(data)[at : at + n])
                at += n
        self._unmap(handles)
        self._respond(req, BLKIF_RSP_OKAY)

    def _unmap(self, handles: list[tuple[int, int]]) -> None:
        dom0 = self.back.dom0.domain
        for handle, vaddr in handles:
            status = self.back.grants.unmap_grant_ref(dom0, handle, vaddr)
            assert status == GNTST_okay, status  # blkback's own mappings: never refused
            self._free_vaddrs.append(vaddr)

    def _respond(self, req: Request, status: int) -> None:
        """make_response: the response in the next private slot, published; an event if the
        front end asked for one."""
        self.ring.put_response(encode_response(Response(req.id, req.operation, status)))
        notify = self.ring.push_responses_and_check_notify()
        self._row(RESPONSE, self.frontend.name, req.id, status, notify)
        if notify:
            self.notifications += 1
            machine = self.machine
            self.back.dom0.domain.evtchn.send(self.port, dict(enumerate(machine.domains)))


class Blkback:
    """The block back end in ``dom0``: one ``Vbd`` per front end it serves."""

    def __init__(self, dom0: Dom0Kernel, grants: GrantTables) -> None:
        if not isinstance(dom0, Dom0Kernel) or not isinstance(grants, GrantTables):
            raise ConfigError("blkback runs in dom0 (a Dom0Kernel) over Xen's GrantTables")
        self.dom0 = dom0
        self.grants = grants
        self.vbds: dict[int, Vbd] = {}

    def connect(self, frontend: Domain, ring_ref: int, port: int, disk: DiskBackend) -> Vbd | None:
        """xenbus connect_ring: map the front end's ring, bind its event channel. None (and a
        trace row saying why) if the ring cannot be mapped or the channel bound."""
        if not isinstance(disk, DiskBackend):
            raise ConfigError(f"a virtual block device needs a DiskBackend, not {disk!r}")
        machine, dom0 = frontend.machine, self.dom0.domain
        result = self.grants.map_grant_ref(dom0, frontend.domid, ring_ref, GNTMAP_host_map,
                                           MAP_AREA)
        ok = result.status == GNTST_okay and dom0.evtchn.may_bind(frontend.evtchn, port)
        machine.trace.record((machine.clock.now, CONNECT.id, frontend.name, ring_ref, port,
                              "connected" if ok else GNTST_NAMES.get(result.status, "bad port")))
        if not ok:
            if result.status == GNTST_okay:
                self.grants.unmap_grant_ref(dom0, result.handle, MAP_AREA)
            return None
        page = self.grants.mapped_page(dom0, result.handle)
        assert page is not None and page.size == PAGE_SIZE
        local = dom0.evtchn.bind_interdomain(frontend.evtchn, port)
        sring = SharedRing(page, RING_ENTRY_SIZE)
        ring = BackRing(sring, start=sring.rsp_prod)  # BACK_RING_ATTACH: where the ring is
        vbd = Vbd(self, frontend, ring, local, disk)
        self.vbds[frontend.domid] = vbd
        self.dom0.bind(local, vbd.kick)
        return vbd


__all__ = ["Blkback", "Vbd"]
