"""Hostile front ends against the shared ring, blkif and grant tables (hypothesis, seeded).

Two properties. **The ring** (``test_no_front_end_breaks_the_ring_or_the_grants``): a machine
with dom0 (the back end), a front-end guest that granted dom0 its ring page and eight data
pages (some of those entries hostile from the start), and a bystander whose RAM is filled. A
small back end in this file (blkback's loop: take requests, validate the private copy, map or
grant-copy each segment, respond, push, final check) serves the ring, round after round,
while the front end queues garbage and boundary requests (bad operations, 0 … 255 segments,
last_sect 8, first > last, sectors past the disk, forged, stale and reserved grant refs), sets
ring indices to bogus values, pokes random bytes anywhere in the ring page — also in the
middle of the back end's consume loop, after it copied a request —, rewrites its grant
entries (flags, domid, frame: frames past its RAM, its own ring and table), revokes and
re-grants, and reads responses. **The grants** (``test_xen_grants_exactly_what_the_entries_
permit``): dom0, the bystander and the granter itself map, unmap and grant-copy every data
ref (and refs reserved, unused, past the table) in bursts, with every map flag, while the
entries change under them; a model of the v1 rules predicts each outcome.

The contract on every example:

* nothing raises out of the ring, blkif or grant-table code; every status is a GNTST_* value;
* Xen allows an access exactly when the entry (or the active pin it rides on) permits it —
  permit_access, for that domain, writable if written, not sub-page for a map, RAM — and the
  frame reached is the one the entry named; what validation accepts fits its page and disk;
* the front end's frames that changed are its ring and table pages and frames Xen let a
  grantee write; the grantees' own frames change only by a copy into them; the bystander's
  RAM is untouched; nothing is written outside the domains' RAM (every page hashed);
* every data grant's pin is back to 0 afterwards (nothing leaks), and the same example gives
  the same memory twice (determinism).

``make test`` runs a small fixed set (``derandomize``); VMMLIB_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmmlib import MIB, Machine
from vmmlib.xen import blkif as B
from vmmlib.xen.grant_ops import GrantTables
from vmmlib.xen.grant_table import (
    DOMID_SELF,
    GNTST_NAMES,
    GNTCOPY_dest_gref,
    GNTCOPY_source_gref,
    GNTMAP_device_map,
    GNTMAP_host_map,
    GNTMAP_readonly,
    GNTST_okay,
    GrantCopy,
    GTF_permit_access,
    GTF_readonly,
    GTF_sub_page,
    GTF_type_mask,
    GuestGrants,
)
from vmmlib.xen.ring import BackRing, FrontRing, SharedRing

EXAMPLES = int(os.environ.get("VMMLIB_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: a test that can fail, never flakes
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RAM = 1 * MIB
RING_GFN, TABLE_GFN, BUF_GFN = 0x10, 0x11, 0x40
DATA_GFNS = range(0x20, 0x28)
DATA_REFS = range(9, 17)  # ref 8 is the ring's
DISK_SECTORS = 64
HOST = 0x7F00_0000

flag_values = st.sampled_from([0, 1, 5, 9, 17, 2, 3, 257, 261, 0xFFFF])
domid_values = st.sampled_from([0, 0, 1, 2, 3, 0x7FF0, 0xFFFF])
frame_values = st.one_of(st.sampled_from(DATA_GFNS),
                         st.sampled_from([RING_GFN, TABLE_GFN, (RAM >> 12) - 1, RAM >> 12,
                                          2**32 - 1]))
u32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 31, 32, 33, 2**31,
                                                              2**32 - 2, 2**32 - 1]))
grefs = st.one_of(st.sampled_from(DATA_REFS), st.sampled_from([0, 3, 7, 8, 511, 512]), u32)
sects = st.one_of(st.integers(0, 8), st.integers(0, 255))
garbage_requests = st.tuples(
    st.just("request"), st.sampled_from([0, 1, 1, 0, 2, 3, 5, 6, 9, 255]),
    st.one_of(st.integers(0, 12), st.integers(0, 255)),
    st.lists(st.tuples(grefs, sects, sects), max_size=11),
    st.one_of(st.integers(0, DISK_SECTORS + 8), st.integers(0, 2**64 - 1)),
    st.integers(0, 2**64 - 1))


@st.composite
def plausible_requests(draw):
    """Well-formed requests naming the granted refs, so the grant checks run — or one
    field just past a limit the back end must check (the boundaries)."""
    segs = draw(st.lists(st.tuples(st.sampled_from(list(DATA_REFS) * 3 + [8, 3, 512]),
                                   st.integers(0, 7), st.integers(0, 7)),
                         min_size=1, max_size=4))
    segs = [(g, min(a, b), max(a, b)) for g, a, b in segs]
    op, nseg = draw(st.sampled_from([0, 1])), len(segs)
    sector = draw(st.integers(0, DISK_SECTORS - 32))
    edge = draw(st.sampled_from(["none"] * 6 + ["last_sect 8", "first > last", "no segments",
                                                "12 segments", "past the disk", "op 2"]))
    g, first, last = segs[0]
    if edge == "last_sect 8":
        segs[0] = (g, first, 8)
    elif edge == "first > last":
        segs[0] = (g, 7, 6)
    elif edge == "no segments":
        nseg = 0
    elif edge == "12 segments":
        segs, nseg = segs * 11, 12
    elif edge == "past the disk":
        sector = DISK_SECTORS - sum(b - a + 1 for _, a, b in segs) + 1
    elif edge == "op 2":
        op = 2
    return ("request", op, nseg, segs[:11], sector, draw(st.integers(0, 2**64 - 1)))


requests = st.one_of(plausible_requests(), garbage_requests, plausible_requests())
indices = st.tuples(st.just("index"), st.integers(0, 3),
                    st.one_of(st.integers(-3, 40), u32), st.booleans())
pokes = st.tuples(st.just("poke"), st.integers(0, 4095), st.binary(min_size=1, max_size=16))
entries = st.tuples(
    st.just("entry"), st.sampled_from(list(DATA_REFS) + [8, 300]),
    st.sampled_from(["flags", "domid", "frame"]),
    st.one_of(flag_values, domid_values, frame_values, st.integers(0, 0xFFFF)))
serves = st.tuples(st.one_of(st.none(), st.integers(0, 40)), st.booleans(),
                   st.integers(0, 12), st.integers(0, 4095), st.binary(min_size=1, max_size=8))
front_actions = st.one_of(requests, requests, indices, requests, pokes, entries, requests,
                          st.tuples(st.just("responses")),
                          st.tuples(st.sampled_from(["revoke", "grant", "grant read-only"]),
                                    st.sampled_from(DATA_REFS)))
#: rounds of (what the front end does, how the back end then serves the ring)
rounds = st.lists(st.tuples(st.lists(front_actions, min_size=1, max_size=5), serves),
                  min_size=2, max_size=10)
starts = st.sampled_from([0, 2**32 - 5, 123456])
legit_grants = st.tuples(st.sampled_from([1, 5]), st.just(0), st.sampled_from(DATA_GFNS))
#: the data entries the front end starts with: mostly proper grants to dom0, some hostile
odd_grants = st.tuples(st.sampled_from([0, 2, 3, 9, 17, 257, 261]), st.sampled_from([0, 1]),
                       st.sampled_from(DATA_GFNS))  # for dom0 or the granter, odd flags
grants = st.lists(st.one_of(legit_grants, odd_grants, legit_grants,
                            st.tuples(flag_values, domid_values, frame_values)),
                  min_size=8, max_size=8)


class World:
    def __init__(self, start: int, data_entries: list[tuple[int, int, int]]):
        self.m = m = Machine(16 * MIB)
        self.dom0 = m.add_domain("dom0", RAM, kind="pv", privileged=True)
        self.front = m.add_domain("front", RAM)
        self.bystander = m.add_domain("bystander", RAM)
        for dom, gfns in ((self.bystander, range(16)), (self.front, DATA_GFNS),
                          (self.dom0, range(BUF_GFN, BUF_GFN + 11))):
            for gfn in gfns:  # distinct contents: any stray write shows in the hashes
                fill = bytes([(gfn * 7 + 1) & 0xFF]) * 4096
                m.memory.write_bytes(dom.gpa_to_maddr(gfn << 12), fill)
        self.gt = GrantTables(m)
        self.table = self.gt.setup(self.front, [TABLE_GFN])
        self.guest = GuestGrants(self.table)
        ring_ref = self.guest.grant(self.dom0.domid, RING_GFN, False)
        for ref, (flags, domid, frame) in zip(DATA_REFS, data_entries, strict=True):
            assert self.guest.claim_ref() == ref
            self.table.write(ref, "domid", domid)
            self.table.write(ref, "frame", frame)
            self.table.write(ref, "flags", flags)
        self.sring = SharedRing.in_guest(self.front, RING_GFN, B.RING_ENTRY_SIZE)
        self.sring.init(start)
        self.front_ring = FrontRing(self.sring, start)
        mapped = self.gt.map_grant_ref(self.dom0, self.front.domid, ring_ref, GNTMAP_host_map,
                                       HOST)
        assert mapped.status == GNTST_okay
        self.back = BackRing(SharedRing(self.gt.mapped_page(self.dom0, mapped.handle),
                                        B.RING_ENTRY_SIZE), start)
        self.written: set[int] = set()  # front frames Xen let dom0 write
        self.ring_mfn = mapped.dev_bus_addr >> 12  # ref 8 stays pinned: Xen uses its frame

    def check_granted(self, ref: int, write: bool, mapping: bool, mfn: int) -> None:
        """The oracle: Xen granted this access, so the entry said so when it was asked —
        type permit_access (not sub-page, for a map), for dom0, writable if written — and the
        frame reached is the one the entry names (the data grants are pinned only while a
        segment moves; the ring's stays pinned, and Xen rightly rides on that pin)."""
        if ref == 8:  # already pinned by dom0's writable ring mapping: no entry check
            assert mfn == self.ring_mfn
            return
        flags, domid, frame = self.table.entry(ref)
        mask = GTF_type_mask | (GTF_sub_page if mapping else 0)
        assert flags & mask == GTF_permit_access and domid == self.dom0.domid
        assert not (write and flags & GTF_readonly)
        assert mfn == self.front.gfn_to_mfn(frame)
        if write:
            self.written.add(frame)

    def act(self, action: tuple) -> None:
        kind = action[0]
        if kind == "request":
            _, op, nseg, segs, sector, rid = action
            seg = tuple(B.Segment(*s) for s in segs) + (B.EMPTY_SEGMENT,) * (11 - len(segs))
            if not self.front_ring.full():
                self.front_ring.put_request(B.encode_request(B.Request(op, nseg, 0, rid,
                                                                       sector, seg)))
                self.front_ring.push_requests_and_check_notify()
        elif kind == "index":
            _, which, value, relative = action
            if relative or value < 0:
                value = self.back.req_cons + value
            setattr(self.sring, ("req_prod", "req_event", "rsp_prod", "rsp_event")[which],
                    value & 0xFFFF_FFFF)
        elif kind == "poke":
            _, at, data = action
            data = data[: 4096 - at]
            self.sring.page[at : at + len(data)] = list(data)
        elif kind == "entry":
            _, ref, field, value = action
            self.table.write(ref, field, value & (0xFFFF_FFFF if field == "frame" else 0xFFFF))
        elif kind == "responses":
            for raw in self.front_ring.take_responses():
                B.decode_response(raw)
            self.front_ring.final_check_for_responses()
        elif kind == "revoke":
            self.guest.end_access(action[1])
        else:  # (re-)grant a data page, properly
            ref = action[1]
            self.guest.grant_access(ref, self.dom0.domid, DATA_GFNS[ref - DATA_REFS[0]],
                                    kind == "grant read-only")

    def serve(self, limit, use_copy, inject_at, inject_off, inject) -> None:
        taken, steps = [], self.back.take_requests_steps(limit)
        for n in itertools.count():
            if n == inject_at:  # the front end strikes mid-loop, e.g. after a copy
                self.sring.page[inject_off : inject_off + len(inject)] = list(
                    inject[: 4096 - inject_off])
            try:
                next(steps)
            except StopIteration as done:
                taken = done.value
                break
        for raw in taken:
            req = B.decode_request(raw)
            problems = B.request_problems(req, DISK_SECTORS)
            assert problems or req.sector_number + req.nr_sectors() <= DISK_SECTORS
            status = B.error_status(req) if problems else self.transfer(req, use_copy)
            self.back.put_response(B.encode_response(B.Response(req.id, req.operation & 0xFF,
                                                                status)))
        self.back.push_responses_and_check_notify()
        self.back.final_check_for_requests()

    def transfer(self, req: B.Request, use_copy: bool) -> int:
        """Move each segment between the granted page and dom0's buffer page."""
        write = req.operation == B.BLKIF_OP_WRITE  # a disk write reads the guest's page
        assert req.operation in (0, 1) and 1 <= req.nr_segments <= 11  # what validation
        for i, seg in enumerate(req.used_segments()):  # promises
            at, n = seg.first_sect * 512, (seg.last_sect - seg.first_sect + 1) * 512
            assert 0 <= at < at + n <= 4096
            buf = self.m.memory.page(self.dom0.gfn_to_mfn(BUF_GFN + i))
            entry = self.table.entry(seg.gref) if seg.gref < self.table.nr_entries else None
            if use_copy:
                u, own = self.front.domid, BUF_GFN + i
                op = (GrantCopy(seg.gref, u, at, own, DOMID_SELF, at, n, GNTCOPY_source_gref)
                      if write else
                      GrantCopy(own, DOMID_SELF, at, seg.gref, u, at, n, GNTCOPY_dest_gref))
                status = self.gt.copy(self.dom0, op)
                if status == GNTST_okay:
                    mfn = self.front.gfn_to_mfn(entry.frame)
                    self.check_granted(seg.gref, not write, False, mfn)
                    guest = self.m.memory.page(mfn)
                    assert (guest[at : at + n] == buf[at : at + n]).all()
            else:
                flags = GNTMAP_host_map | (GNTMAP_readonly if write else 0)
                mapped = self.gt.map_grant_ref(self.dom0, self.front.domid, seg.gref, flags,
                                               HOST + 4096 * (i + 1))
                status = mapped.status
                if status == GNTST_okay:
                    self.check_granted(seg.gref, not write, True, mapped.dev_bus_addr >> 12)
                    page = self.gt.mapped_page(self.dom0, mapped.handle)
                    assert page.flags.writeable is not write
                    if write:
                        buf[at : at + n] = page[at : at + n]
                    else:
                        page[at : at + n] = buf[at : at + n]
                    assert self.gt.unmap_grant_ref(self.dom0, mapped.handle,
                                                   HOST + 4096 * (i + 1)) == GNTST_okay
            assert status in GNTST_NAMES
            if status != GNTST_okay:
                return B.BLKIF_RSP_ERROR
        return B.BLKIF_RSP_OKAY

    def snapshot(self) -> dict[int, str]:
        return {mfn: hashlib.sha256(page.tobytes()).hexdigest()
                for mfn, page in self.m.memory.pages.items()}


ZERO = hashlib.sha256(bytes(4096)).hexdigest()


def changed_frames(world: World, before: dict, after: dict) -> dict[str, set[int]]:
    changed = {mfn for mfn, h in after.items() if before.get(mfn, ZERO) != h}
    out: dict[str, set[int]] = {d.name: set() for d in world.m.domains}
    out["outside RAM"] = set()
    for mfn in changed:
        dom = next((d for d in world.m.domains
                    if 0 <= mfn - (d.machine_base >> 12) < d.ram_size >> 12), None)
        out[dom.name if dom else "outside RAM"].add(mfn - (dom.machine_base >> 12) if dom
                                                     else mfn)
    return out


def run_world(start, data_entries, recipe):
    world = World(start, data_entries)
    before = world.snapshot()
    for actions, serve in recipe:
        for action in actions:
            world.act(action)
        world.serve(*serve)
    world.act(("responses",))
    after = world.snapshot()
    changed = changed_frames(world, before, after)
    assert changed["bystander"] == set() and changed["outside RAM"] == set()
    assert changed["dom0"] <= set(range(BUF_GFN, BUF_GFN + 11))
    assert changed["front"] <= {RING_GFN, TABLE_GFN} | world.written
    assert all(world.gt.pin(world.front.domid, ref) == 0 for ref in DATA_REFS)
    return after


@FUZZ
@given(start=starts, data_entries=grants, recipe=rounds)
def test_no_front_end_breaks_the_ring_or_the_grants(start, data_entries, recipe):
    first = run_world(start, data_entries, recipe)
    assert run_world(start, data_entries, recipe) == first  # deterministic


def test_the_fuzzer_reaches_the_defences():
    """The hostile paths the property test claims to cover are really taken."""
    world = World(0, [(1, 0, gfn) for gfn in DATA_GFNS])
    world.act(("request", 0, 1, [(9, 0, 7)], 0, 1))
    world.act(("request", 1, 1, [(10, 0, 7)], 0, 2))
    world.act(("request", 0, 1, [(600, 0, 7)], 0, 3))  # a forged ref
    world.act(("request", 0, 0, [], 0, 4))  # no segments
    world.serve(2, False, 99, 0, b"\0")
    world.serve(None, True, 99, 0, b"\0")
    got = [B.decode_response(r) for r in world.front_ring.take_responses()]
    assert [(r.id, r.status) for r in got] == [(1, 0), (2, 0), (3, -1), (4, -1)]
    world.act(("index", 0, 40, True))  # req_prod 40 ahead: bogus
    world.serve(None, False, 99, 0, b"\0")
    assert "bogus ring requests" in world.back.halted


# -- Xen's grant checks, densely: hostile entries against map / unmap / copy ----------------
MAP_FLAGS = [GNTMAP_host_map, GNTMAP_host_map | GNTMAP_readonly, GNTMAP_device_map,
             GNTMAP_device_map | GNTMAP_host_map, GNTMAP_readonly, 0]
BURST_REFS = list(DATA_REFS) + [0, 7, 511, 512, 2**32 - 1]  # every action tries them all
grantee_idx = st.integers(0, 2)  # dom0 (PV), the bystander (HVM), the granter itself
grant_actions = st.lists(st.one_of(
    st.tuples(st.just("map"), grantee_idx, st.sampled_from([1, 1, 1, 0, 2, 77]),
              st.sampled_from(MAP_FLAGS)),
    st.tuples(st.just("unmap"), st.integers(0, 2), st.sampled_from(["right", "zero", "wrong"])),
    st.tuples(st.just("copy"), grantee_idx, st.booleans(),
              st.sampled_from([0, 512, 4000, 4096]), st.sampled_from([0, 96, 512, 4096]),
              st.sampled_from([1, 1, 0, 77])),
    st.tuples(st.just("entries"), st.lists(entries, min_size=1, max_size=8)),
    st.tuples(st.sampled_from(["revoke", "grant", "grant read-only"]),
              st.sampled_from(DATA_REFS)),
), min_size=4, max_size=30)


class Live(NamedTuple):
    """A mapping Xen granted, as the test remembers it."""

    grantee: object
    handle: int
    ref: int
    writable: bool
    mfn: int
    host: int
    bus: int
    flags: int


class GrantWorld(World):
    """The same machine; dom0, the bystander and the granter itself ask Xen for access."""

    def __init__(self, data_entries):
        super().__init__(0, data_entries)
        self.grantees = [self.dom0, self.bystander, self.front]
        self.live: list[Live] = []
        self.copied_into: set[tuple[str, int]] = set()
        self.hosts = itertools.count(HOST + 0x100000, 4096)

    def allowed(self, grantee, dom, ref, write, mapping) -> int | None:
        """The oracle: the machine frame this access must reach, or None if Xen must refuse.
        A first pin needs a permitting entry; later pins ride on the active entry."""
        if dom != self.front.domid or ref >= self.table.nr_entries:
            return None
        flags, domid, frame = self.table.entry(ref)
        pins = [x for x in self.live if x.ref == ref]
        if pins:
            if pins[0].grantee is not grantee:
                return None
            if write and not any(x.writable for x in pins) and flags & GTF_readonly:
                return None
            return pins[0].mfn
        mask = GTF_type_mask | (GTF_sub_page if mapping else 0)
        if (flags & mask != GTF_permit_access or domid != grantee.domid
                or (write and flags & GTF_readonly) or not self.front.is_ram(frame << 12)):
            return None
        return self.front.gfn_to_mfn(frame)

    def grant_act(self, action) -> None:
        kind = action[0]
        if kind == "map":
            for ref in BURST_REFS:
                self.map(*action[1:3], ref, action[3])
        elif kind == "unmap":
            for x in self.live[action[1] :: 3]:
                self.unmap(x, action[2])
        elif kind == "copy":
            for ref in BURST_REFS:
                self.copy(action[1], ref, *action[2:])
        elif kind == "entries":
            for entry in action[1]:
                self.act(entry)
        else:
            self.act(action)

    def map(self, who, dom, ref, flags) -> None:
        grantee, write = self.grantees[who], not flags & GNTMAP_readonly
        mfn = self.allowed(grantee, dom, ref, write, True)
        if not flags & (GNTMAP_host_map | GNTMAP_device_map) or (
                grantee.kind == "hvm" and flags & GNTMAP_device_map):
            mfn = None
        host = next(self.hosts)
        got = self.gt.map_grant_ref(grantee, dom, ref, flags, host)
        assert (got.status == GNTST_okay) is (mfn is not None), (who, dom, ref, flags, got)
        if mfn is not None:
            assert got.dev_bus_addr == mfn << 12
            page = self.gt.mapped_page(grantee, got.handle)
            assert page.flags.writeable is bool(write)
            if write:
                page[: 64] = 0xC3  # the grantee writes what it was granted
                self.written.add(mfn - (self.front.machine_base >> 12))
            self.live.append(Live(grantee, got.handle, ref, bool(write), mfn,
                                  host if flags & GNTMAP_host_map else 0,
                                  got.dev_bus_addr, flags))

    def unmap(self, x: Live, how: str) -> None:
        addr = {"right": x.host, "zero": 0, "wrong": x.host + 1}[how]
        status = self.gt.unmap_grant_ref(x.grantee, x.handle, addr, x.bus)
        assert status == (-1 if how == "wrong" and x.host else GNTST_okay)
        gone = status == GNTST_okay and (addr or not x.flags & GNTMAP_host_map)
        assert (self.gt.mapped_page(x.grantee, x.handle) is None) is bool(gone)
        if gone:
            self.live.remove(x)
        elif status == GNTST_okay and x.flags & GNTMAP_device_map:  # host part remains
            self.live[self.live.index(x)] = x._replace(bus=0, flags=GNTMAP_host_map)

    def copy(self, who, ref, to_guest, offset, length, dom) -> None:
        caller = self.grantees[who]
        own = BUF_GFN if caller is self.dom0 else 0x30
        mfn = self.allowed(caller, dom, ref, to_guest, False)
        if offset + length > 4096:
            mfn = None
        op = (GrantCopy(own, DOMID_SELF, offset, ref, dom, offset, length, GNTCOPY_dest_gref)
              if to_guest else
              GrantCopy(ref, dom, offset, own, DOMID_SELF, offset, length,
                        GNTCOPY_source_gref))
        status = self.gt.copy(caller, op)
        assert (status == GNTST_okay) is (mfn is not None), (who, ref, to_guest, status)
        if mfn is not None and to_guest and length:
            self.written.add(mfn - (self.front.machine_base >> 12))
        if mfn is not None and not to_guest and length:
            self.copied_into.add((caller.name, own))

    def unmap_all(self) -> None:
        for x in self.live:
            assert self.gt.unmap_grant_ref(x.grantee, x.handle, x.host, x.bus) == GNTST_okay
        self.live = []


@FUZZ
@given(data_entries=grants, recipe=grant_actions)
def test_xen_grants_exactly_what_the_entries_permit(data_entries, recipe):
    world = GrantWorld(data_entries)
    before = world.snapshot()
    for action in recipe:
        world.grant_act(action)
    world.unmap_all()
    changed = changed_frames(world, before, world.snapshot())
    assert changed["outside RAM"] == set()
    own = {(name, gfn) for name, frames in changed.items() for gfn in frames}
    assert own - {("front", TABLE_GFN)} - {("front", f) for f in world.written} <= \
        world.copied_into  # the grantees' own frames change only by a copy into them
    assert all(world.gt.pin(world.front.domid, ref) == 0 for ref in range(512) if ref != 8)
