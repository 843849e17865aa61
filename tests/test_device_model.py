"""Chapter 02 end to end: trapped accesses become ioreqs to qemu-dm in dom0 and back
(vmmlib/xen/ioreq_server.py, qemu_dm.py, dom0.py, scenarios/device_model.py)."""

from __future__ import annotations

import pytest

from vmmlib import Vcpu
from vmmlib.cpu.ops import In, Store
from vmmlib.devices.ata import SECTOR_SIZE
from vmmlib.errors import DomainCrash
from vmmlib.scenarios import device_model as ch02
from vmmlib.xen.ioreq import STATE_IOREQ_NONE, Ioreq
from vmmlib.xen.ioreq_server import IOREQ_PAGE, special_gfn


def run(vcpu, steps=200_000):
    vcpu.run(steps)
    assert vcpu.done and vcpu.crashed is None, vcpu.crashed
    return vcpu


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_one_in_from_the_status_port_goes_to_qemu_dm_and_back(vendor):
    vcpu = run(ch02.status_read(vendor))
    trace = vcpu.machine.trace
    hops = [(e.actor, e.kind) for e in trace]
    assert hops == [
        ("cpu", "exit"), ("xen", "ioreq"), ("xen", "evtchn"), ("dom0", "upcall"),
        ("qemu-dm", "take"), ("qemu-dm", "emulate"), ("xen", "evtchn"), ("xen", "ioreq-done"),
        ("hvm", "halt"),
    ]
    sent, done = trace.events("ioreq")[0].fields, trace.events("ioreq-done")[0].fields
    assert (sent["type"], sent["addr"], sent["dir"], sent["state"]) == ("PIO", 0x1F7, "read",
                                                                        "READY")
    assert vcpu.result == done["data"] == 0x50  # DRDY | DSC: the disk is ready
    world = ch02.world_of(vcpu)
    assert world.qemu.server.page.state(0) == STATE_IOREQ_NONE  # the slot is free again
    costs = vcpu.machine.costs
    upcall = trace.events("upcall")[0].time
    assert upcall - trace.events("ioreq")[0].time == costs.dom0_wakeup_ns  # dom0's turn
    assert vcpu.machine.clock.now > costs.dom0_wakeup_ns + costs.vcpu_wakeup_ns


def test_a_rep_insw_is_one_ioreq_with_the_buffer_in_guest_memory():
    vcpu = run(ch02.read_sector(lba=7, style="insw"))
    trace = vcpu.machine.trace
    (data_req,) = [e.fields for e in trace.events("ioreq") if e.fields["count"] > 1]
    assert (data_req["count"], data_req["size"], data_req["data_is_ptr"]) == (256, 2, True)
    assert data_req["data"] == ch02.SECTOR_BUFFER
    world = ch02.world_of(vcpu)
    in_ram = world.guest.read_bytes(ch02.SECTOR_BUFFER, SECTOR_SIZE)
    assert in_ram == vcpu.result == ch02.disk_content()[7 * 512 : 8 * 512]


def test_reading_a_word_at_a_time_costs_an_exit_and_an_ioreq_per_word():
    rep, words = run(ch02.read_sector(style="insw")), run(ch02.read_sector(style="inw"))
    n_rep = len(rep.machine.trace.events("ioreq"))
    n_words = len(words.machine.trace.events("ioreq"))
    assert n_words - n_rep == 256 - 1
    assert words.result == rep.result
    assert words.machine.clock.now > 20 * rep.machine.clock.now


def test_an_interrupt_driven_read_halts_until_irq_14_then_reads_the_status():
    vcpu = run(ch02.read_sector(lba=3, irq=True))
    trace = vcpu.machine.trace
    assert [e.fields["irq"] for e in trace.events("set-irq")][:1] == [14]
    (inject,) = [e for e in trace.events("inject") if e.actor == "xen"]
    assert inject.fields == {"vector": 32 + 14, "irq": 14}
    assert trace.events("block") and vcpu.result[:14] == b"sector 000003 "
    pic_rows = [e for e in trace.events("emulate") if e.actor == "xen"]
    assert pic_rows and all(e.fields["device"].startswith("PIC") for e in pic_rows)


@pytest.mark.parametrize("backend", ["file", "local disk", "network storage"])
def test_every_backend_gives_the_same_bytes_and_its_latency_shows_in_virtual_time(backend):
    fast = run(ch02.read_sector(lba=100, backend="memory"))
    slow = run(ch02.read_sector(lba=100, backend=backend))
    assert slow.result == fast.result
    (disk,) = slow.machine.trace.events("access")
    assert disk.actor == "disk" and disk.fields["lba"] == 100 and disk.fields["count"] == 1
    latency = disk.fields["latency_ns"]
    assert slow.machine.clock.now > latency and (latency > 0 or backend == "file")
    if latency > 100_000:  # the polling driver spins on the status port all that time
        polls = len(slow.machine.trace.events("ioreq")) - len(fast.machine.trace.events("ioreq"))
        assert polls > 10


def test_writes_into_the_vga_window_go_buffered_and_never_block_the_vcpu():
    vcpu = run(ch02.vga_text("Hi"))
    trace = vcpu.machine.trace
    buffered = trace.events("bufioreq")
    assert buffered and all(e.actor in ("xen", "qemu-dm") for e in buffered)
    assert ch02.world_of(vcpu).vga.row(0) == "Hi"
    sync = {e.fields["addr"] for e in trace.events("ioreq")}
    assert all(addr < 0x10000 for addr in sync)  # only the CRTC ports were synchronous


def test_a_guest_that_corrupts_its_ioreq_slot_gets_its_domain_crashed():
    world = ch02.dm_machine()
    slot = special_gfn(world.guest, IOREQ_PAGE) << 12  # the page is in the guest's own RAM

    def guest():
        yield Store(slot + 30, 1, 0x02)  # state = INPROCESS, behind Xen's back
        yield In(0x1F7, 1)

    cpu = Vcpu(world.guest, guest())
    cpu.run()
    assert isinstance(cpu.crashed, DomainCrash) and "slot is busy" in str(cpu.crashed)
    (crash,) = world.machine.trace.events("domain-crash")
    assert crash.fields["domain"] == "hvm"


def test_a_request_no_device_can_take_crashes_the_domain_with_the_reason():
    world = ch02.dm_machine()
    cpu = Vcpu(world.guest, (op for op in ()))
    bad = Ioreq(0x1F0, 0, 1, 3, 0, STATE_IOREQ_NONE, False, 1, False, 0)  # a 3-byte access
    with pytest.raises(DomainCrash, match="size 3"):
        world.qemu.server.send(cpu, bad)
    assert world.machine.trace.events("bad-ioreq")[0].fields["reason"].startswith("size 3")


def test_a_guest_scribbling_on_the_buffered_ring_cannot_hang_or_break_qemu_dm():
    world = ch02.dm_machine()
    ring = special_gfn(world.guest, 2) << 12

    def guest():
        yield Store(0xB8000, 2, 0x0741)  # buffered: the vCPU goes on before dom0 runs ...
        yield Store(ring, 8, 0x7FFFFFFF_00000000)  # ... and makes the pointers bogus

    cpu = Vcpu(world.guest, guest())
    cpu.run()
    assert cpu.crashed is None
    world.machine.clock.run_until(lambda: False)  # let dom0 run: it must not loop 2**31 times
    assert world.qemu.failed == "the buffered ioreq ring's pointers are bogus"
