"""A guest kernel's 8259A interrupt controllers, programmed as xv6's ``picirq.c`` does.

ICW1 0x11 (edge, cascade, ICW4 follows) to both command ports, ICW2 the vector base (xv6:
T_IRQ0 = 32 for IRQ 0, 40 for IRQ 8), ICW3 the cascade wiring (the master: the slave is on
IRQ 2; the slave: its identity 2), ICW4 0x01 (8086 mode, normal end of interrupt, so the
handler must acknowledge with an EOI), then the masks. Unlike xv6, which masks the PIC and
uses the APICs, this kernel leaves the lines it needs unmasked: the interrupt path in the model
is the PIC's.
"""

from __future__ import annotations

from ..cpu.ops import Guest, Out

MASTER, SLAVE = 0x20, 0xA0  # command ports; data (mask) ports are +1
IRQ_VECTOR_BASE = 32  # xv6 traps.h T_IRQ0
CASCADE = 2
EOI = 0x20  # OCW2: non-specific end of interrupt


def pic_init(unmasked: tuple[int, ...] = ()) -> Guest:
    """Initialise both PICs and unmask the IRQs in ``unmasked`` (and the cascade if needed)."""
    irqs = set(unmasked) | ({CASCADE} if any(i >= 8 for i in unmasked) else set())
    for cmd, base, wiring in ((MASTER, IRQ_VECTOR_BASE, 1 << CASCADE),
                              (SLAVE, IRQ_VECTOR_BASE + 8, CASCADE)):
        yield Out(cmd, 1, 0x11)  # ICW1
        yield Out(cmd + 1, 1, base)  # ICW2: vector base
        yield Out(cmd + 1, 1, wiring)  # ICW3
        yield Out(cmd + 1, 1, 0x01)  # ICW4: 8086 mode, normal EOI
    master_mask = 0xFF & ~sum(1 << i for i in irqs if i < 8)
    slave_mask = 0xFF & ~sum(1 << (i - 8) for i in irqs if i >= 8)
    yield Out(MASTER + 1, 1, master_mask)
    yield Out(SLAVE + 1, 1, slave_mask)


def pic_eoi(irq: int) -> Guest:
    """End of interrupt: to the slave and the master for IRQ 8-15, to the master otherwise."""
    if irq >= 8:
        yield Out(SLAVE, 1, EOI)
    yield Out(MASTER, 1, EOI)
