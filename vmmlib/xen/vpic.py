"""Xen's virtual PIC: the two 8259A interrupt controllers of a PC, emulated inside Xen.

Devices that Xen emulates itself never reach qemu-dm: the PIC, the I/O APIC and local APIC,
the PIT, the RTC, the HPET and the ACPI PM timer live in the hypervisor (xen/arch/x86/hvm/
vpic.c, vioapic.c, vlapic.c, ...); the model has the PIC. A device model raises an ISA IRQ with
a hypercall (XEN_DMOP_set_isa_irq_level), Xen latches it in the PIC, and the interrupt reaches
the vCPU at its next VM entry when the PIC lets it through.

The 8259A, as programmed by a guest (xv6 ``picirq.c``; the Intel 8259A datasheet): writing a
byte with bit 4 set to the command port (0x20 master, 0xA0 slave) is ICW1 and starts the
initialisation; the data port (0x21, 0xA1) then takes ICW2 (the vector base, bits 7:3), ICW3
(cascade wiring) and, if ICW1 bit 0 asked for it, ICW4 (bit 1: automatic end of interrupt).
Afterwards a data-port write sets the mask (IMR, OCW1); a command-port write with bit 3 set is
OCW3 (bits 1:0 = 10 read the request register IRR, 11 the in-service register ISR), otherwise
OCW2 (0x20: non-specific end of interrupt). ISA interrupts are edge-triggered: a rising line
sets its IRR bit. IRQ 8-15 are the slave's, which signals on the master's IRQ 2. Priority:
the lower the IRQ, the higher; an interrupt is delivered only if no interrupt of higher or equal
priority is in service.

What the model simplifies: no rotation, special mask or poll modes; after reset every line is
masked and the vector bases are the PC BIOS's (0x08 master, 0x70 slave) until the guest
programs its own.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..trace import Schema

MASTER_BASE, SLAVE_BASE = 0x20, 0xA0
CASCADE_IRQ = 2
IRQ_RAISED = Schema("xen", "irq", ("irq", "level"))


class Pic8259:
    """One 8259A, answering its two ports (offset 0 command, 1 data)."""

    def __init__(self, name: str, vector_base: int) -> None:
        self.name = name
        self.irr = self.isr = 0
        self.imr = 0xFF
        self.vector_base = vector_base
        self.auto_eoi = False
        self.read_isr = False
        self._init_step = 0  # 1, 2, 3: expecting ICW2, ICW3, ICW4
        self._icw4 = False
        self._lines = 0
        self.cascade = None  # the master: is the slave (on IRQ 2) asking? (a level, not an edge)

    # -- the bus device --------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if size.__class__ is not int or size != 1 or offset not in (0, 1):
            return 0xFF if size == 1 else (1 << (8 * size)) - 1
        if offset == 1:
            return self.imr
        return self.isr if self.read_isr else self.irr

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 1 or offset not in (0, 1) or value.__class__ is not int:
            return  # the 8259A decodes byte accesses only
        if offset == 0:
            self._command(value & 0xFF)
        elif self._init_step:
            self._icw(value & 0xFF)
        else:
            self.imr = value & 0xFF  # OCW1

    def _command(self, value: int) -> None:
        if value & 0x10:  # ICW1: start initialising
            self._init_step, self._icw4 = 1, bool(value & 1)
            self.imr = self.isr = self.irr = 0
            self.auto_eoi = self.read_isr = False
        elif value & 0x08:  # OCW3
            if value & 0x02:
                self.read_isr = bool(value & 0x01)
        elif value & 0xE0 == 0x20:  # OCW2, non-specific EOI: the highest-priority ISR bit
            if self.isr:
                self.isr &= self.isr - 1
        elif value & 0xE0 == 0x60:  # OCW2, specific EOI
            self.isr &= ~(1 << (value & 7))

    def _icw(self, value: int) -> None:
        if self._init_step == 1:
            self.vector_base = value & 0xF8
            self._init_step = 2
        elif self._init_step == 2:
            self._init_step = 3 if self._icw4 else 0
        else:
            self.auto_eoi = bool(value & 0x02)
            self._init_step = 0

    # -- interrupt lines -------------------------------------------------------------------
    def set_line(self, line: int, level: bool) -> None:
        bit = 1 << line
        if level and not self._lines & bit:
            self.irr |= bit  # edge-triggered: the rising edge is latched
        self._lines = self._lines | bit if level else self._lines & ~bit

    def requests(self) -> int:
        """IRR as the priority logic sees it: latched edges, and the slave's level on IRQ 2."""
        if self.cascade is not None and self.cascade():
            return self.irr | 1 << CASCADE_IRQ
        return self.irr

    def deliverable(self) -> int | None:
        """The line that would interrupt now, or None."""
        ready = self.requests() & ~self.imr
        for line in range(8):
            if self.isr & ((1 << (line + 1)) - 1):
                return None  # something of equal or higher priority is in service
            if ready >> line & 1:
                return line
        return None

    def acknowledge(self, line: int) -> int:
        """The CPU's interrupt acknowledge: IRR → ISR (unless automatic EOI); the vector."""
        self.irr &= ~(1 << line)
        if not self.auto_eoi:
            self.isr |= 1 << line
        return self.vector_base + line


class VirtualPic:
    """The master and slave 8259A of one HVM domain."""

    def __init__(self, domain) -> None:  # noqa: ANN001 - a xen Domain (no import cycle)
        self.domain = domain
        self.master = Pic8259("master PIC", 0x08)
        self.slave = Pic8259("slave PIC", 0x70)
        self.master.cascade = lambda: self.slave.deliverable() is not None

    def attach(self) -> None:
        """Claim the PIC's ports on the domain's Xen-internal port bus (they trap, and Xen
        answers them itself)."""
        self.domain.emulate_ports(MASTER_BASE, 2, self.master, "PIC master (Xen)")
        self.domain.emulate_ports(SLAVE_BASE, 2, self.slave, "PIC slave (Xen)")

    def set_irq(self, irq: int, level: bool) -> None:
        """An ISA IRQ line changes (XEN_DMOP_set_isa_irq_level)."""
        if irq.__class__ is not int or not 0 <= irq < 16:
            raise ConfigError(f"ISA IRQ {irq!r} is not 0-15")
        if irq < 8:
            self.master.set_line(irq, level)
        else:
            self.slave.set_line(irq - 8, level)
        machine = self.domain.machine
        machine.trace.record((machine.clock.now, IRQ_RAISED.id, irq, int(level)))

    def pending(self) -> bool:
        """Would an interrupt be delivered at the next VM entry?"""
        line = self.master.deliverable()
        if line == CASCADE_IRQ:
            return self.slave.deliverable() is not None
        return line is not None

    def acknowledge(self) -> tuple[int, int]:
        """Take the interrupt to deliver: (IRQ, vector)."""
        line = self.master.deliverable()
        if line is None:
            raise ConfigError("no interrupt to acknowledge")
        if line != CASCADE_IRQ:
            return line, self.master.acknowledge(line)
        slave_line = self.slave.deliverable()
        self.master.acknowledge(line)
        if slave_line is None:  # the slave's request went away: a spurious IRQ 15
            return 15, self.slave.vector_base + 7
        return 8 + slave_line, self.slave.acknowledge(slave_line)
