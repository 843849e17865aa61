"""Xen's virtual 8259A pair (vmmlib/xen/vpic.py), programmed as xv6's picirq.c does."""

from __future__ import annotations

from vmmlib import MIB, Machine, Vcpu
from vmmlib.cpu.ops import Hlt, In
from vmmlib.guest.pic import IRQ_VECTOR_BASE, pic_eoi, pic_init
from vmmlib.xen.vpic import Pic8259, VirtualPic


def programmed(unmasked=(14,)) -> VirtualPic:
    m = Machine(64 * MIB)
    dom = m.add_domain("hvm", 16 * MIB)
    dom.vpic.attach()
    Vcpu(dom, pic_init(unmasked)).run()
    return dom.vpic


def test_the_icw_sequence_sets_vector_bases_and_masks():
    pic = programmed((1, 14))
    assert (pic.master.vector_base, pic.slave.vector_base) == (IRQ_VECTOR_BASE, 40)
    assert pic.master.imr == 0xFF & ~(1 << 1 | 1 << 2)  # IRQ 1 and the cascade
    assert pic.slave.imr == 0xFF & ~(1 << 6)  # IRQ 14 = the slave's line 6


def test_a_rising_edge_on_a_slave_line_interrupts_through_the_cascade():
    pic = programmed()
    assert not pic.pending()
    pic.set_irq(14, True)
    assert pic.pending()
    assert pic.acknowledge() == (14, IRQ_VECTOR_BASE + 14)
    assert not pic.pending()  # in service until the EOI
    pic.set_irq(14, False)
    pic.set_irq(14, True)  # a new edge waits behind the one in service
    assert not pic.pending()


def test_eoi_frees_the_line_and_masked_lines_never_interrupt():
    pic = programmed()
    pic.set_irq(14, True)
    pic.acknowledge()
    pic.set_irq(14, False)
    pic.set_irq(14, True)
    machine = pic.domain.machine
    Vcpu(pic.domain, pic_eoi(14)).run()
    assert pic.pending() and pic.acknowledge()[0] == 14
    pic.set_irq(3, True)  # masked
    assert pic.master.irr & 1 << 3 and not pic.master.deliverable()
    assert machine.trace.events("irq")[-1].fields == {"irq": 3, "level": 1}


def test_lower_irqs_win_and_reads_give_imr_irr_isr():
    chip = Pic8259("test", 0x20)
    chip.imr = 0
    chip.set_line(5, True)
    chip.set_line(3, True)
    assert chip.deliverable() == 3
    assert chip.read(1, 1) == 0 and chip.read(0, 1) == 0b101000  # IMR, then IRR
    chip.acknowledge(3)
    chip.write(0, 1, 0x0B)  # OCW3: read ISR
    assert chip.read(0, 1) == 0b1000
    assert chip.deliverable() is None  # 5 waits for the EOI of 3


def test_a_halted_guest_wakes_with_the_vector_and_its_ports_never_reach_a_device_model():
    m = Machine(64 * MIB)
    dom = m.add_domain("hvm", 16 * MIB)
    dom.vpic.attach()

    def guest():
        yield from pic_init((4,))
        return (yield Hlt())

    cpu = Vcpu(dom, guest())
    m.clock.call_at(5_000, lambda: dom.vpic.set_irq(4, True))
    cpu.run()
    assert cpu.result == IRQ_VECTOR_BASE + 4 and cpu.crashed is None
    assert m.clock.now >= 5_000
    assert all(e.fields["device"].startswith("PIC") for e in m.trace.events("emulate"))
    assert m.trace.events("ioreq") == []  # Xen answered every PIC port itself


def test_a_halt_nothing_can_end_stops_the_guest_cleanly():
    m = Machine(64 * MIB)
    dom = m.add_domain("hvm", 16 * MIB)
    cpu = Vcpu(dom, (op for op in [In(0x21, 1), Hlt()]))
    cpu.run()
    assert cpu.done and "nothing left that could wake it" in str(cpu.crashed)
