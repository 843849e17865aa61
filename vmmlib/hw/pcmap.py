"""The PC's two address spaces as a table: which legacy device sits where.

Used by the overview notebook to draw the port space and the physical memory map. Port
ranges: shared/reference/hardware-facts.md §12 (xv6, QEMU hw/i386, Linux include/video/vga.h,
arch/x86/pci/direct.c). Memory map: the VGA window from §10; the 640 KiB / 1 MiB boundaries
and the BIOS area are the IBM PC layout (QEMU hw/i386/pc.c maps the BIOS at the top of the
first megabyte); I/O APIC and local APIC default bases from the Intel MultiProcessor
Specification (xv6 ioapic.c: 0xFEC00000; the local APIC's reset base 0xFEE00000).
"""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """An inclusive range ``first`` … ``last`` owned by ``name``."""

    first: int
    last: int
    name: str


LEGACY_PORTS: tuple[Span, ...] = (
    Span(0x0000, 0x001F, "DMA 1"),
    Span(0x0020, 0x0021, "PIC master"),
    Span(0x0040, 0x0043, "PIT"),
    Span(0x0060, 0x0060, "keyboard data"),
    Span(0x0064, 0x0064, "keyboard status/cmd"),
    Span(0x0070, 0x0071, "CMOS/RTC"),
    Span(0x0080, 0x0080, "POST / I/O delay"),
    Span(0x00A0, 0x00A1, "PIC slave"),
    Span(0x0170, 0x0177, "IDE secondary"),
    Span(0x01F0, 0x01F7, "IDE primary"),
    Span(0x0278, 0x027F, "LPT2"),
    Span(0x02E8, 0x02EF, "COM4"),
    Span(0x02F8, 0x02FF, "COM2"),
    Span(0x0376, 0x0376, "IDE secondary ctl"),
    Span(0x0378, 0x037F, "LPT1"),
    Span(0x03B0, 0x03BB, "VGA mono"),
    Span(0x03C0, 0x03CF, "VGA"),
    Span(0x03D0, 0x03DF, "VGA colour"),
    Span(0x03E8, 0x03EF, "COM3"),
    Span(0x03F6, 0x03F6, "IDE primary ctl"),
    Span(0x03F8, 0x03FF, "COM1"),
    Span(0x0CF8, 0x0CFB, "PCI CONFIG_ADDRESS"),
    Span(0x0CFC, 0x0CFF, "PCI CONFIG_DATA"),
)

KIB = 1 << 10
MIB = 1 << 20

#: The first megabyte and the top-of-4-GiB device area of a PC.
PC_MEMORY_MAP: tuple[Span, ...] = (
    Span(0x00000, 0x9FFFF, "conventional RAM (640 KiB)"),
    Span(0xA0000, 0xBFFFF, "VGA window"),
    Span(0xC0000, 0xDFFFF, "option ROMs"),
    Span(0xE0000, 0xFFFFF, "BIOS"),
    Span(0xFEC00000, 0xFEC00FFF, "I/O APIC"),
    Span(0xFEE00000, 0xFEE00FFF, "local APIC"),
)


def legacy_device_at(port: int) -> str | None:
    """The legacy device that answers ``port`` on a PC, if any."""
    for span in LEGACY_PORTS:
        if span.first <= port <= span.last:
            return span.name
    return None
