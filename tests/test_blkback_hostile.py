"""A hostile front end against blkback: every attack gets the answer Linux blkback gives —
BLKIF_RSP_ERROR (or EOPNOTSUPP) with the id echoed, or the ring no longer served — is logged
in the trace, and leaves dom0 and the other guest untouched and served.

Attacks from issue 10: a bogus req_prod, a request rewritten after the back end copied it,
nr_segments 0 or > 11, first_sect > last_sect, last_sect > 7, a bad grant ref, a sector beyond
the disk; and what the grant checks add (a read into a read-only grant, a grant to someone
else, a frame that is not the guest's RAM). Sources: torvalds/linux
drivers/block/xen-blkback/blkback.c (``__do_block_io_op``, ``dispatch_rw_block_io``,
``xen_blkbk_map``), xen/common/grant_table.c.
"""

import hashlib

import pytest

from vmmlib.cpu.ops import Load, LoadBlock, Store, StoreBlock
from vmmlib.errors import Halted
from vmmlib.guest import blkfront as bf
from vmmlib.guest.xen_events import evtchn_send, wait_for_event
from vmmlib.scenarios.device_model import disk_content
from vmmlib.scenarios.split_drivers import (
    BUFFER,
    add_guest,
    connect_program,
    io_program,
    split_machine,
)
from vmmlib.xen.blkif import (
    BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR,
    BLKIF_RSP_OKAY,
    RESPONSE_SIZE,
    Segment,
    decode_response,
    encode_request,
    make_request,
)
from vmmlib.xen.ring import REQ_PROD, RSP_EVENT, RSP_PROD
from vmmlib.xen.vcpu import Vcpu

DISK_SECTORS = 8192


def digest(machine, dom) -> str:
    first, n = dom.machine_base >> 12, dom.ram_size >> 12
    pages = [machine.memory.pages[f].tobytes() for f in sorted(machine.memory.pages)
             if first <= f < first + n]
    return hashlib.sha256(b"".join(pages)).hexdigest()


@pytest.fixture
def two_guests():
    """An attacker (the scenario's PV guest) and a bystander guest on the same blkback,
    both connected; the bystander has done one read."""
    world = split_machine("pv")
    other, other_front = add_guest(world.machine, world.blkback, world.disk, "hvm", "bystander",
                                   ram=64 << 20)
    for dom, front in ((other, other_front), (world.guest, world.front)):
        cpu = Vcpu(dom, connect_program(world.machine, dom, front))
        cpu.run()
        assert cpu.crashed is None
    cpu = Vcpu(other, bf.blkfront_io(other_front, "read", 0, 8, BUFFER))
    cpu.run()
    assert cpu.crashed is None
    return world, other, other_front


def raw_push(front, raw: bytes):
    """Put 112 raw bytes in the next slot and publish them (with the notify rule)."""
    yield StoreBlock(front.slot_address(front.req_prod_pvt), raw)
    front.req_prod_pvt = (front.req_prod_pvt + 1) & 0xFFFF_FFFF
    yield from bf._push(front)


def responses(front, n: int):
    """Wait for ``n`` responses and return them decoded (re-arming rsp_event each time)."""
    got = []
    while len(got) < n:
        rp = yield Load(front.ring + RSP_PROD, 4)
        while front.rsp_cons != rp:
            raw = yield LoadBlock(front.slot_address(front.rsp_cons), RESPONSE_SIZE)
            got.append(decode_response(raw))
            front.rsp_cons += 1
        if len(got) < n:
            yield Store(front.ring + RSP_EVENT, 4, front.rsp_cons + 1)
            if (yield Load(front.ring + RSP_PROD, 4)) == front.rsp_cons:
                yield from wait_for_event(front.port, front.shared_info, front.hvm)
    return got


def attack(world, program):
    cpu = Vcpu(world.guest, program())
    cpu.run()
    return cpu


def bystander_still_served(world, other, other_front):
    cpu = Vcpu(other, bf.blkfront_io(other_front, "read", 16, 8, BUFFER))
    cpu.run()
    assert cpu.crashed is None and cpu.result == [BLKIF_RSP_OKAY]
    assert other.read_bytes(BUFFER, 4096) == disk_content()[16 * 512 : 24 * 512]


def test_a_bogus_req_prod_halts_that_ring_only(two_guests):
    world, other, other_front = two_guests
    before = digest(world.machine, other), digest(world.machine, world.dom0)

    vbd = world.blkback.vbds[world.guest.domid]

    def program():
        front = world.front
        yield Store(front.ring + REQ_PROD, 4, 40)  # 40 requests in a 32-slot ring
        yield from evtchn_send(front.port, front.scratch)
        while not vbd.halted:  # (the test peeks: until blkback has looked)
            yield Load(BUFFER, 4)
        yield from bf.blkfront_io(front, "read", 0, 8, BUFFER)  # never answered now

    cpu = attack(world, program)
    assert isinstance(cpu.crashed, Halted)  # the attacker waits forever: it broke its ring
    assert "bogus ring requests" in vbd.halted
    rows = [e.fields for e in world.machine.trace.events("bogus-ring")]
    assert rows and rows[0]["domain"] == world.guest.name
    assert vbd.requests == 0  # nothing of that ring was ever dispatched
    assert (digest(world.machine, other), digest(world.machine, world.dom0)) == before
    bystander_still_served(world, other, other_front)


def test_a_request_rewritten_after_the_copy_changes_nothing(two_guests):
    world, other, other_front = two_guests
    vbd = world.blkback.vbds[world.guest.domid]

    def program():
        front = world.front
        yield from bf._queue(front, BLKIF_OP_READ, 0, BUFFER, 4096)
        slot = front.slot_address(front.req_prod_pvt - 1)
        yield from bf._push(front)
        while vbd.ring.req_cons == 0:  # spin until the back end has copied it
            yield Load(BUFFER, 4)
        evil = make_request(BLKIF_OP_WRITE, 99, 4000, [Segment(9, 0, 7)])
        yield StoreBlock(slot, encode_request(evil))  # too late: blkback has its own copy
        return (yield from responses(front, 1))

    cpu = attack(world, program)
    assert cpu.crashed is None
    (rsp,) = cpu.result
    assert (rsp.id, rsp.operation, rsp.status) == (0, BLKIF_OP_READ, BLKIF_RSP_OKAY)
    assert world.guest.read_bytes(BUFFER, 4096) == disk_content()[:4096]  # sector 0, read
    assert world.disk.read(4000, 8)[0] == disk_content()[4000 * 512 : 4008 * 512]  # no write


def _req(op, rid, sector, segments, nr=None):
    raw = bytearray(encode_request(make_request(op, rid, sector, segments)))
    if nr is not None:
        raw[1] = nr
    return bytes(raw)


#: (what, how to build the request given a writable grant ref w and a read-only one r, status)
BAD_REQUESTS = [
    ("no segments", lambda w, r: _req(BLKIF_OP_READ, 11, 0, [], nr=0), BLKIF_RSP_ERROR),
    ("12 segments", lambda w, r: _req(BLKIF_OP_READ, 12, 0, [Segment(w, 0, 0)] * 11, nr=12),
     BLKIF_RSP_ERROR),
    ("255 segments", lambda w, r: _req(BLKIF_OP_READ, 13, 0, [Segment(w, 0, 0)], nr=255),
     BLKIF_RSP_ERROR),
    ("first > last", lambda w, r: _req(BLKIF_OP_READ, 14, 0, [Segment(w, 3, 2)]),
     BLKIF_RSP_ERROR),
    ("last sector 8", lambda w, r: _req(BLKIF_OP_READ, 15, 0, [Segment(w, 0, 8)]),
     BLKIF_RSP_ERROR),
    ("ref past the table", lambda w, r: _req(BLKIF_OP_READ, 16, 0, [Segment(9999, 0, 7)]),
     BLKIF_RSP_ERROR),
    ("ref never granted", lambda w, r: _req(BLKIF_OP_READ, 17, 0, [Segment(300, 0, 7)]),
     BLKIF_RSP_ERROR),
    ("reserved ref 0", lambda w, r: _req(BLKIF_OP_READ, 18, 0, [Segment(0, 0, 7)]),
     BLKIF_RSP_ERROR),
    ("sector past the disk", lambda w, r: _req(BLKIF_OP_READ, 19, DISK_SECTORS - 4,
                                                [Segment(w, 0, 7)]), BLKIF_RSP_ERROR),
    ("sector wraps 2**64", lambda w, r: _req(BLKIF_OP_READ, 20, 2**64 - 2, [Segment(w, 0, 7)]),
     BLKIF_RSP_ERROR),
    ("read into a read-only grant", lambda w, r: _req(BLKIF_OP_READ, 21, 0, [Segment(r, 0, 7)]),
     BLKIF_RSP_ERROR),
    ("flush (not offered)", lambda w, r: _req(BLKIF_OP_FLUSH_DISKCACHE, 22, 0,
                                              [Segment(w, 0, 0)]), BLKIF_RSP_EOPNOTSUPP),
    ("operation 200", lambda w, r: _req(200, 23, 0, [Segment(w, 0, 0)]), BLKIF_RSP_EOPNOTSUPP),
]


@pytest.mark.parametrize("what, build, status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_a_bad_request_is_answered_with_an_error_and_the_ring_keeps_working(
        two_guests, what, build, status):
    world, other, other_front = two_guests
    before = digest(world.machine, other), digest(world.machine, world.dom0)
    world.disk.read(0, 1)  # (the disk is fine)
    page = bytes(world.guest.read_bytes(BUFFER, 4096))

    def program():
        front = world.front
        writable = yield from bf._grant(front, BUFFER >> 12, readonly=False)
        readonly = yield from bf._grant(front, (BUFFER >> 12) + 1, readonly=True)
        raw = build(writable, readonly)
        yield from raw_push(front, raw)
        bad = yield from responses(front, 1)
        good = yield from bf.blkfront_io(front, "read", 8, 8, BUFFER + 0x10000)
        return raw, bad, good

    cpu = attack(world, program)
    assert cpu.crashed is None
    raw, (rsp,), good = cpu.result
    assert rsp.id == int.from_bytes(raw[8:16], "little") and rsp.status == status
    assert rsp.operation == raw[0]  # echoed
    assert world.guest.read_bytes(BUFFER, 4096) == page  # the bad read wrote nothing
    assert good == [BLKIF_RSP_OKAY]  # the next request is served
    refused = world.machine.trace.events("refused")
    assert len(refused) == 1 and refused[0].fields["status"] == status
    assert (digest(world.machine, other), digest(world.machine, world.dom0)) == before
    bystander_still_served(world, other, other_front)


def test_a_grant_to_another_domain_or_outside_ram_cannot_be_mapped(two_guests):
    world, other, other_front = two_guests

    def program():
        front = world.front
        ref = yield from bf._grant(front, BUFFER >> 12, readonly=False)
        yield Store(front.entry_address(ref) + 2, 2, other.domid)  # granted to the bystander
        outside = yield from bf._grant(front, 0xFFFFF, readonly=False)  # not the guest's RAM
        yield from raw_push(front, _req(BLKIF_OP_READ, 1, 0, [Segment(ref, 0, 7)]))
        yield from raw_push(front, _req(BLKIF_OP_READ, 2, 0, [Segment(outside, 0, 7)]))
        return (yield from responses(front, 2))

    cpu = attack(world, program)
    assert cpu.crashed is None
    assert [(r.id, r.status) for r in cpu.result] == [(1, BLKIF_RSP_ERROR), (2, BLKIF_RSP_ERROR)]
    statuses = [e.fields["status"] for e in world.machine.trace.events("grant-map")][-2:]
    assert statuses == [-1, -9]  # GNTST_general_error (wrong domid), GNTST_bad_page
    bystander_still_served(world, other, other_front)


def test_a_frontend_flood_of_events_costs_only_empty_looks():
    world = split_machine("pv")

    def program():
        yield from connect_program(world.machine, world.guest, world.front)
        for _ in range(50):
            yield from evtchn_send(world.front.port, world.front.scratch)
            yield Load(BUFFER, 4)
        return (yield from bf.blkfront_io(world.front, "read", 0, 8, BUFFER))

    cpu = Vcpu(world.guest, program())
    cpu.run()
    assert cpu.crashed is None and cpu.result == [BLKIF_RSP_OKAY]
    vbd = world.blkback.vbds[world.guest.domid]
    assert vbd.requests == 1 and vbd.events >= 1


def test_a_bogus_back_end_is_refused_by_the_front_end():
    world = split_machine("pv")

    def program():
        yield from io_program(world, "read", 0, 8)
        yield Store(world.front.ring + RSP_PROD, 4, 1000)  # as if the back end wrote it
        return (yield from bf._take_responses(world.front))

    cpu = Vcpu(world.guest, program())
    cpu.run()
    assert cpu.crashed is None and cpu.result == 0
    assert "claims more responses" in world.front.broken
    assert world.machine.trace.events("bogus-backend")
