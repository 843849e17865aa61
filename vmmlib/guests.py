"""Guest drivers and programs, written as generators in the style of xv6's drivers.

Each function is a piece of a guest kernel: it yields operations to its vCPU and gets the
results back. Compose them with ``yield from``. The UART driver follows xv6's ``uart.c``
(init: FIFO off, 9600 baud 8N1, receive interrupt on; output: poll LSR.THRE, write THR);
the VGA writer stores character/attribute cells at 0xB8000 as xv6's ``console.c`` does; the
PV console writer asks Xen to print the whole buffer with one ``HYPERVISOR_console_io``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from .hypervisor import CONSOLEIO_write, HYPERVISOR_console_io
from .ops import Hypercall, In, Out, Store
from .vga_text import ATTR_DEFAULT, cell_address

COM1 = 0x3F8
THR, IER, FCR, LCR, MCR, LSR = 0, 1, 2, 3, 4, 5
LSR_THRE = 0x20
LSR_TEMT = 0x40

Guest = Generator[Any, Any, Any]


def uart_init(base: int = COM1, baud: int = 9600) -> Guest:
    """Program the UART as xv6 does; returns False if no UART answers (LSR reads 0xFF)."""
    divisor = 115200 // baud
    yield Out(base + FCR, 1, 0x00)  # FIFOs off
    yield Out(base + LCR, 1, 0x80)  # DLAB on: offsets 0/1 are the divisor latch
    yield Out(base + 0, 1, divisor & 0xFF)
    yield Out(base + 1, 1, divisor >> 8)
    yield Out(base + LCR, 1, 0x03)  # DLAB off, 8 data bits, 1 stop bit, no parity
    yield Out(base + MCR, 1, 0x00)
    yield Out(base + IER, 1, 0x01)  # interrupt on received data
    if (yield In(base + LSR, 1)) == 0xFF:
        return False
    yield In(base + FCR, 1)  # reading offset 2 is IIR: acknowledge pending interrupts
    yield In(base + 0, 1)  # and RBR
    return True


def uart_putc(ch: int, base: int = COM1) -> Guest:
    """Wait until the transmit holding register is empty, then write one byte."""
    while not (yield In(base + LSR, 1)) & LSR_THRE:
        pass
    yield Out(base + THR, 1, ch)


def uart_puts(text: str | bytes, base: int = COM1) -> Guest:
    """Print a string on the serial port, byte by byte."""
    for ch in text.encode() if isinstance(text, str) else text:
        yield from uart_putc(ch, base)


def uart_flush(base: int = COM1) -> Guest:
    """Wait until the transmitter is completely empty (LSR.TEMT), as a console driver does
    before it hands the line over."""
    while not (yield In(base + LSR, 1)) & LSR_TEMT:
        pass


def serial_hello(text: str = "Hello\n", base: int = COM1, baud: int = 115200) -> Guest:
    """The chapter-01 guest: initialise COM1, print ``text`` on it, wait until it is sent."""
    if (yield from uart_init(base, baud)):
        yield from uart_puts(text, base)
        yield from uart_flush(base)


def vga_puts(text: str, row: int = 0, col: int = 0, attr: int = ATTR_DEFAULT) -> Guest:
    """Write ``text`` into the colour text buffer, one 16-bit cell store per character."""
    for i, ch in enumerate(text.encode()):
        yield Store(cell_address(row, col + i), 2, ch | attr << 8)


def pv_console_write(text: str | bytes) -> Guest:
    """The paravirtual way: one hypercall hands the whole buffer to the hypervisor."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    return (yield Hypercall(HYPERVISOR_console_io, (CONSOLEIO_write, data)))
