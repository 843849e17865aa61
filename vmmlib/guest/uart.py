"""A guest kernel's serial driver: xv6's ``uart.c``, step for step.

What xv6 (mit-pdos/xv6-public, commit eeb7b41, ``uart.c``) does, and so does this driver:

* ``uartinit``: FIFOs off (FCR = 0); DLAB on, divisor 115200 / 9600 = 12 (9600 baud), DLAB off
  with 8 data bits, 1 stop bit, no parity (LCR = 0x03); MCR = 0; IER = 0x01 (interrupt on
  received data); "if status is 0xFF, no serial port" (LSR read); then read IIR and RBR to
  acknowledge old interrupt conditions.
* ``uartputc``: poll LSR at most **128** times until THRE (bit 5) is set, then write THR
  *whether or not it is set*. Between polls xv6 calls ``microdelay(10)``, whose body in
  ``lapic.c`` is empty ("On real hardware would want to tune this dynamically"), so the
  polls follow each other without a pause, here as on xv6. On QEMU, THRE is set again the
  moment THR is written and the bound never matters; on a UART that takes its real frame
  time (1.04 ms a character at 9600 baud) 128 polls are over long before THRE comes back,
  and the next character overwrites the one still waiting in THR.
* ``uartgetc`` / ``uartintr``: on IRQ 4, read LSR; while DR (bit 0) is set, read RBR.

Where this driver differs from xv6, and why:

* ``serial_hello`` ends with ``uart_flush``, a wait for LSR.TEMT that xv6 does not have, so
  that a run ends when the last byte is on the wire (and the notebooks can show the wire).
* ``uart_putc(max_polls=...)`` can use another bound: ``None`` polls until THRE comes back,
  ``LINUX_EARLY_POLLS`` is the bound of Linux's early console (``arch/x86/kernel/
  early_printk.c``, ``early_serial_putc``: ``timeout = 0xffff``).
* xv6 then routes IRQ 4 to a CPU (``ioapicenable``); chapter 01 models no interrupt
  controller, so a test reads the UART's IRQ line instead.

Register offsets and bits come from the device model (``vmmlib.devices.uart16550``): one
definition of COM1's registers for both sides.
"""

from __future__ import annotations

from ..cpu.ops import Guest, In, Out
from ..devices.uart16550 import (
    BAUD_BASE,
    COM1_BASE,
    DLL,
    DLM,
    FCR,
    IER,
    IER_RDI,
    IIR,
    LCR,
    LCR_DLAB,
    LCR_WLEN8,
    LSR,
    LSR_DR,
    LSR_TEMT,
    LSR_THRE,
    MCR,
    RBR,
    THR,
)

#: xv6's baud rate (``uartinit``: divisor 115200 / 9600 = 12).
XV6_BAUD = 9600
#: xv6's bound on LSR polls per character (``uartputc``: ``i < 128``).
XV6_POLLS = 128
#: Linux's early console bound (``early_serial_putc``: ``timeout = 0xffff``).
LINUX_EARLY_POLLS = 0xFFFF


def uart_init(base: int = COM1_BASE, baud: int = XV6_BAUD) -> Guest:
    """Program the UART as xv6's ``uartinit`` does; returns False if no UART answers (LSR
    reads 0xFF), True otherwise."""
    divisor = BAUD_BASE // baud
    yield Out(base + FCR, 1, 0x00)  # FIFOs off
    yield Out(base + LCR, 1, LCR_DLAB)  # DLAB on: offsets 0/1 are the divisor latch
    yield Out(base + DLL, 1, divisor & 0xFF)
    yield Out(base + DLM, 1, divisor >> 8)
    yield Out(base + LCR, 1, LCR_WLEN8)  # DLAB off, 8 data bits, 1 stop bit, no parity
    yield Out(base + MCR, 1, 0x00)  # no DTR, RTS, OUT1, OUT2
    yield Out(base + IER, 1, IER_RDI)  # interrupt on received data
    if (yield In(base + LSR, 1)) == 0xFF:
        return False
    yield In(base + IIR, 1)  # acknowledge pending interrupt conditions
    yield In(base + RBR, 1)
    return True


def uart_putc(ch: int, base: int = COM1_BASE, max_polls: int | None = XV6_POLLS) -> Guest:
    """xv6's ``uartputc``: poll LSR up to ``max_polls`` times (None: until THRE is set) for
    an empty transmit holding register, then write the byte to THR in any case. Returns the
    number of LSR polls it made."""
    polls = 0
    while max_polls is None or polls < max_polls:
        polls += 1
        if (yield In(base + LSR, 1)) & LSR_THRE:
            break
    yield Out(base + THR, 1, ch)
    return polls


def uart_puts(
    text: str | bytes, base: int = COM1_BASE, max_polls: int | None = XV6_POLLS
) -> Guest:
    """Print a string on the serial port, byte by byte (``uart_putc`` each)."""
    for ch in text.encode() if isinstance(text, str) else text:
        yield from uart_putc(ch, base, max_polls)


def uart_flush(base: int = COM1_BASE) -> Guest:
    """Wait until the transmitter is completely empty (LSR.TEMT). Not in xv6: the chapter's
    guest uses it to end its run when the last byte has left."""
    while not (yield In(base + LSR, 1)) & LSR_TEMT:
        pass


def uart_getc(base: int = COM1_BASE) -> Guest:
    """xv6's ``uartgetc``: -1 if LSR says no data is ready, else the byte read from RBR."""
    if not (yield In(base + LSR, 1)) & LSR_DR:
        return -1
    return (yield In(base + RBR, 1))


def uart_intr(base: int = COM1_BASE) -> Guest:
    """xv6's ``uartintr`` (the IRQ 4 handler): read bytes while there are any, as
    ``consoleintr(uartgetc)`` does; returns them."""
    received = bytearray()
    while (c := (yield from uart_getc(base))) >= 0:
        received.append(c)
    return bytes(received)


def serial_hello(
    text: str | bytes = "Hello\n",
    base: int = COM1_BASE,
    baud: int = XV6_BAUD,
    max_polls: int | None = XV6_POLLS,
) -> Guest:
    """The chapter-01 guest: xv6's ``uartinit``, then ``text`` through xv6's ``uartputc``,
    then a wait until the last byte is on the wire (``uart_flush``, not in xv6)."""
    if (yield from uart_init(base, baud)):
        yield from uart_puts(text, base, max_polls)
        yield from uart_flush(base)
