"""A guest kernel's serial driver, in the style of xv6's ``uart.c``.

Init: FIFO off, the divisor for the baud rate, 8N1, receive interrupt on; output: poll
LSR.THRE, write THR. Register offsets and bits come from the device model
(``vmmlib.devices.uart16550``): one definition of COM1's registers for both sides.
"""

from __future__ import annotations

from ..cpu.ops import Guest, In, Out
from ..devices.uart16550 import (
    BAUD_BASE,
    COM1_BASE,
    FCR,
    IER,
    IER_RDI,
    LCR,
    LCR_DLAB,
    LCR_WLEN8,
    LSR,
    LSR_TEMT,
    LSR_THRE,
    MCR,
    RBR,
    THR,
)


def uart_init(base: int = COM1_BASE, baud: int = 9600) -> Guest:
    """Program the UART as xv6 does; returns False if no UART answers (LSR reads 0xFF)."""
    divisor = BAUD_BASE // baud
    yield Out(base + FCR, 1, 0x00)  # FIFOs off
    yield Out(base + LCR, 1, LCR_DLAB)  # DLAB on: offsets 0/1 are the divisor latch
    yield Out(base + 0, 1, divisor & 0xFF)
    yield Out(base + 1, 1, divisor >> 8)
    yield Out(base + LCR, 1, LCR_WLEN8)  # DLAB off, 8 data bits, 1 stop bit, no parity
    yield Out(base + MCR, 1, 0x00)
    yield Out(base + IER, 1, IER_RDI)  # interrupt on received data
    if (yield In(base + LSR, 1)) == 0xFF:
        return False
    yield In(base + FCR, 1)  # reading offset 2 is IIR: acknowledge pending interrupts
    yield In(base + RBR, 1)  # and RBR
    return True


def uart_putc(ch: int, base: int = COM1_BASE) -> Guest:
    """Wait until the transmit holding register is empty, then write one byte."""
    while not (yield In(base + LSR, 1)) & LSR_THRE:
        pass
    yield Out(base + THR, 1, ch)


def uart_puts(text: str | bytes, base: int = COM1_BASE) -> Guest:
    """Print a string on the serial port, byte by byte."""
    for ch in text.encode() if isinstance(text, str) else text:
        yield from uart_putc(ch, base)


def uart_flush(base: int = COM1_BASE) -> Guest:
    """Wait until the transmitter is completely empty (LSR.TEMT), as a console driver does
    before it hands the line over."""
    while not (yield In(base + LSR, 1)) & LSR_TEMT:
        pass


def serial_hello(text: str = "Hello\n", base: int = COM1_BASE, baud: int = 115200) -> Guest:
    """The chapter-01 guest: initialise COM1, print ``text`` on it, wait until it is sent."""
    if (yield from uart_init(base, baud)):
        yield from uart_puts(text, base)
        yield from uart_flush(base)
