"""blkfront and blkback end to end (vmmlib/guest/blkfront.py, vmmlib/xen/blkback.py,
vmmlib/scenarios/split_drivers.py): the bytes arrive, each hop is in the trace, notifications
follow the ring rules, the HVM guest pays exits where the PV guest traps.

Facts: hardware-facts.md §5 (ring), §6 (blkif), §7 (event channels, grants); Linux
drivers/block/xen-blkfront.c and xen-blkback/blkback.c for the order of things.
"""

import pytest

from vmmlib.cpu.ops import Load
from vmmlib.devices.disk import LocalDisk, RamDisk
from vmmlib.scenarios.device_model import disk_content
from vmmlib.scenarios.split_drivers import (
    BUFFER,
    GRANT_FRAME,
    RING,
    compare_paths,
    io_program,
    split_machine,
    split_read,
    split_world_of,
)
from vmmlib.xen.blkif import BLKIF_RING_SIZE
from vmmlib.xen.grant_table import GNTTAB_NR_RESERVED_ENTRIES, GTF_reading, GTF_writing
from vmmlib.xen.vcpu import Vcpu

SECTOR = 512


def run_read(kind="pv", sector=0, count=8, **kw):
    vcpu = split_read(kind, sector, count, **kw)
    vcpu.run()
    assert vcpu.crashed is None and vcpu.done
    return vcpu, split_world_of(vcpu)


@pytest.mark.parametrize("kind", ["pv", "hvm"])
@pytest.mark.parametrize("sector, count", [(0, 1), (7, 9), (100, 88), (5, 89), (1000, 300)])
def test_a_read_brings_the_disks_bytes_into_the_buffer(kind, sector, count):
    vcpu, world = run_read(kind, sector, count)
    expected = disk_content()[sector * SECTOR : (sector + count) * SECTOR]
    assert world.guest.read_bytes(BUFFER, count * SECTOR) == expected
    pages = -(-count * SECTOR // 4096)
    assert len(vcpu.result) == -(-pages // 11)  # one request per 11 pages (44 KiB)
    assert set(vcpu.result) == {0}  # BLKIF_RSP_OKAY


def test_a_write_reaches_the_disk_and_reads_back():
    world = split_machine("pv")
    data = bytes(range(256)) * 2 * 24  # 24 sectors
    world.guest.write_bytes(BUFFER, data)
    vcpu = Vcpu(world.guest, io_program(world, "write", 40, 24))
    vcpu.run()
    assert vcpu.crashed is None and set(vcpu.result) == {0}
    assert world.disk.read(40, 24)[0] == data
    world.guest.write_bytes(BUFFER, bytes(len(data)))
    again = Vcpu(world.guest, (op for op in ()))  # a fresh vCPU is not needed: reuse the front

    def read_back():
        return (yield from __import__("vmmlib.guest.blkfront", fromlist=["x"]).blkfront_io(
            world.front, "read", 40, 24, BUFFER))

    again = Vcpu(world.guest, read_back())
    again.run()
    assert again.crashed is None and world.guest.read_bytes(BUFFER, len(data)) == data


def test_more_requests_than_the_ring_holds_wait_for_free_slots():
    count = (BLKIF_RING_SIZE + 3) * 88  # 35 requests of 44 KiB
    vcpu, world = run_read("pv", 0, count)
    assert len(vcpu.result) == BLKIF_RING_SIZE + 3 and set(vcpu.result) == {0}
    queued = world.machine.trace.events("request")
    slots = [e.fields["slot"] for e in queued if e.actor == "blkfront"]
    assert slots[:BLKIF_RING_SIZE] == list(range(BLKIF_RING_SIZE)) and slots[32:] == [0, 1, 2]
    assert world.guest.read_bytes(BUFFER, count * SECTOR) == disk_content()[: count * SECTOR]


@pytest.mark.parametrize("start", [0xFFFF_FFFE, 0xFFFF_FFF0])
def test_free_running_indices_wrap_past_2_to_the_32(start):
    vcpu, world = run_read("pv", 0, 40 * 88, start=start)  # 40 requests cross the wrap
    ring = world.vbd.ring.sring
    assert ring.req_prod == ring.rsp_prod == (start + 40) & 0xFFFF_FFFF < 40
    assert set(vcpu.result) == {0}
    assert world.guest.read_bytes(BUFFER, 40 * 88 * SECTOR) == disk_content()[: 40 * 88 * SECTOR]


def test_one_requests_journey_is_in_the_trace_in_order():
    vcpu, world = run_read("pv", 0, 8)
    journey = [(e.actor, e.kind) for e in world.machine.trace.events()
               if e.actor in ("blkfront", "blkback", "dom0", "disk")
               or e.kind in ("evtchn", "upcall")]
    expected = [("blkfront", "request"), ("blkfront", "push"), ("xen", "evtchn"),
                ("dom0", "upcall"), ("blkback", "take"), ("blkback", "request"),
                ("blkback", "sleep"), ("blkback", "grant-map"), ("disk", "access"),
                ("blkback", "response"), ("xen", "evtchn"), ("xen", "upcall"),
                ("blkfront", "response")]
    connect = journey.index(("blkfront", "request"))
    assert journey[connect:] == expected
    times = [e.time for e in world.machine.trace.events()]
    assert times == sorted(times)


def test_grants_are_pinned_while_dom0_has_them_mapped_and_revoked_after():
    world = split_machine("pv", backend=LocalDisk(RamDisk(4096, disk_content(4096))))
    table = world.machine.grant_tables.table(world.guest.domid)
    grants = world.machine.grant_tables
    while_mapped = []
    unmap = grants.unmap_grant_ref

    def watched_unmap(grantee, handle, *args):  # what the entries say just before an unmap
        while_mapped.append([table.entry(ref).flags for ref in (9, 10)])
        return unmap(grantee, handle, *args)

    grants.unmap_grant_ref = watched_unmap
    vcpu = Vcpu(world.guest, io_program(world, "read", 0, 16))  # two pages: refs 9 and 10
    vcpu.run()
    assert vcpu.crashed is None
    busy = 1 | GTF_reading | GTF_writing  # permit_access, mapped writable for a disk read
    assert while_mapped == [[busy, busy], [0 | 1, busy]]  # ref 9 unmapped first, then 10
    assert table.entry(9).flags == table.entry(10).flags == 0  # revoked after the response
    assert table.entry(GNTTAB_NR_RESERVED_ENTRIES).flags & GTF_writing  # the ring, still mapped


def test_a_batch_of_requests_needs_one_doorbell_and_the_answers_one_per_wait():
    world = split_machine("pv", backend=LocalDisk(RamDisk(8192, disk_content(8192))))
    vcpu = Vcpu(world.guest, io_program(world, "read", 0, 24 * 88))  # 1 MiB in 24 requests
    vcpu.run()
    assert vcpu.crashed is None and len(vcpu.result) == 24
    front, vbd = world.front, world.vbd
    assert front.notifications == vbd.events == 1  # 24 published in one push: one doorbell
    pushes = [e.fields for e in world.machine.trace.events("push")]
    assert [p["notify"] for p in pushes] == [True]
    # the back end notifies only when the front end asked (rsp_event = rsp_cons + 1, set
    # before each wait): one event per wait, and the disk answering one request at a time
    # wakes the guest for each
    assert vbd.notifications == front.waits == 24
    notified = [e.fields["notify"] for e in world.machine.trace.events("response")
                if e.actor == "blkback"]
    assert notified == [True] * 24


def test_responses_that_arrive_while_the_front_end_is_busy_need_no_event():
    # the front end does not re-arm rsp_event until it has consumed what is there: responses
    # published meanwhile do not notify (the notify rule sees rsp_event outside (old, new])
    world = split_machine("pv")
    vbd_rows = []

    def slow_guest():
        yield from io_program(world, "read", 0, 8)  # connect, one request: warm up
        front = world.front
        from vmmlib.guest import blkfront as bf
        for i in range(4):
            yield from bf._queue(front, 0, 8 * i, BUFFER + 4096 * i, 4096)
        yield from bf._push(front)
        for _ in range(20_000):  # busy elsewhere while the back end answers all four
            yield Load(BUFFER, 4)
        return (yield from bf._take_responses(front))

    vcpu = Vcpu(world.guest, slow_guest())
    vcpu.run()
    assert vcpu.crashed is None and vcpu.result == 4
    vbd_rows = [e.fields["notify"] for e in world.machine.trace.events("response")
                if e.actor == "blkback"]
    assert vbd_rows == [True, True, False, False, False]


def test_the_hvm_guest_pays_exits_where_the_pv_guest_traps():
    pv, _ = run_read("pv", 0, 64)
    hvm, _ = run_read("hvm", 0, 64)
    pv_exits = pv.machine.trace.events("exit")
    hvm_reasons = [e.fields["exit_reason"] for e in hvm.machine.trace.events("exit")]
    assert pv_exits == []
    assert hvm_reasons.count(18) == 3  # VMCALL: set the callback vector, alloc_unbound, send
    assert hvm_reasons.count(12) >= 1  # HLT, woken by the callback vector
    assert hvm.machine.clock.now > pv.machine.clock.now


def test_the_three_paths_compared():
    emulated, pv, hvm = compare_paths(64)
    assert emulated.ioreqs > 100 and emulated.exits >= emulated.ioreqs
    assert pv.exits == 0 and pv.ioreqs == hvm.ioreqs == 0
    assert 0 < hvm.exits < 20
    assert pv.virtual_ns < hvm.virtual_ns < emulated.virtual_ns / 10


def test_both_guests_take_about_as_long_on_a_real_disk():
    # the thread: PV drivers in an HVM guest perform about as well as in a PV guest. With a
    # disk's milliseconds in the path, the HVM guest's few extra exits hardly show
    times = {}
    for kind in ("pv", "hvm"):
        vcpu = split_read(kind, 0, 2048, backend=LocalDisk(RamDisk(8192, disk_content(8192))))
        vcpu.run()
        assert vcpu.crashed is None
        times[kind] = vcpu.machine.clock.now
    assert times["pv"] < times["hvm"] < times["pv"] * 1.01


def test_ring_and_grant_table_are_where_the_layout_says():
    world = split_machine("hvm")
    assert world.front.ring == RING and world.front.grant_frames == (GRANT_FRAME,)
    table = world.machine.grant_tables.table(world.guest.domid)
    assert table.gfns == (GRANT_FRAME >> 12,)
