"""The PC serial port: a National Semiconductor 16550A UART as a bus device.

A PC has up to four such ports (COM1 at 0x3F8, IRQ 4 is the one every OS probes first). The
UART answers eight consecutive I/O ports; several registers share a port, and which one you
reach depends on the direction of the access and on LCR.DLAB (hardware-facts.md §8.1).

The chip is one class in three parts: its registers (``vmmlib.devices.uart_registers``: the
register map, bits and interrupt sources), its line (``vmmlib.devices.uart_line``: frames, the
transmitter and receiver FIFOs, pacing in virtual time) and the wire's log
(``vmmlib.devices.uart_wire``).

Decisions where hardware leaves a choice (each one is pinned by a test; the others are with
the part they concern):

* **Wider accesses.** The UART is an 8-bit ISA device; a 2- or 4-byte IN/OUT at offset ``o``
  is split into byte cycles at ``o, o+1, ...`` (low byte first), each with its own side
  effects, as the PC/AT bus splits a 16-bit cycle to an 8-bit device and as
  ``vmmlib.bus`` decodes an access that straddles devices. An access that would run past
  offset 7 is a ``BadPortError`` (through a ``PortBus`` it never reaches the UART whole).
* **Reset values** (master reset): IER 0, IIR 0x01, FCR 0, LCR 0, MCR 0, LSR 0x60 (THRE and
  TEMT), SCR 0; the divisor, which real hardware leaves undefined, is 0x0C (9600 baud) as in
  QEMU.

Sources: hardware-facts.md §8 and §12; QEMU ``hw/char/serial.c``; xv6 ``uart.c``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ..clock import Clock
from ..errors import BadPortError, BadSizeError, ConfigError
from ..hw.bus import PORT_SIZES
from .uart_line import UartLine, frame_bits, frame_time_ns
from .uart_registers import (
    BAUD_BASE,
    COM1_BASE,
    COM1_IRQ,
    COM2_BASE,
    COM2_IRQ,
    COM3_BASE,
    COM3_IRQ,
    COM4_BASE,
    COM4_IRQ,
    DLL,
    DLM,
    FCR,
    FCR_CLEAR_RCVR,
    FCR_CLEAR_XMIT,
    FCR_DMA_SELECT,
    FCR_ENABLE_FIFO,
    FCR_TRIGGER_1,
    FCR_TRIGGER_4,
    FCR_TRIGGER_8,
    FCR_TRIGGER_14,
    FCR_TRIGGER_MASK,
    FIFO_DEPTH,
    IER,
    IER_MSI,
    IER_RDI,
    IER_RLSI,
    IER_THRI,
    IIR,
    IIR_FIFO_ENABLED,
    IIR_ID_MASK,
    IIR_MSI,
    IIR_NO_INT,
    IIR_RDI,
    IIR_RLSI,
    IIR_THRI,
    IIR_TIMEOUT,
    LCR,
    LCR_DLAB,
    LCR_EPAR,
    LCR_PARITY,
    LCR_SBC,
    LCR_SPAR,
    LCR_STOP,
    LCR_WLEN5,
    LCR_WLEN6,
    LCR_WLEN7,
    LCR_WLEN8,
    LCR_WLEN_MASK,
    LSR,
    LSR_BI,
    LSR_DR,
    LSR_FE,
    LSR_FIFOE,
    LSR_OE,
    LSR_PE,
    LSR_TEMT,
    LSR_THRE,
    MCR,
    MCR_DTR,
    MCR_LOOP,
    MCR_OUT1,
    MCR_OUT2,
    MCR_RTS,
    MSR,
    MSR_CTS,
    MSR_DCD,
    MSR_DCTS,
    MSR_DDCD,
    MSR_DDSR,
    MSR_DSR,
    MSR_RI,
    MSR_TERI,
    RBR,
    RESET_DIVISOR,
    RX_TRIGGER_LEVELS,
    SCR,
    THR,
    UART_PORTS,
    UartRegisters,
)
from .uart_wire import Frame, WireLog


class Uart16550(UartRegisters, UartLine, WireLog):
    """A 16550A UART with 16-byte FIFOs, paced at its baud rate in virtual time.

    ``on_irq(level)`` is called whenever the interrupt line at the PIC changes.
    ``paced=False`` sends every character in zero time, as QEMU's emulated UART does (a
    device model has no wire to wait for): THRE is set again as soon as THR is written.
    ``out2_gates_irq=False`` drives the IRQ line from INTR alone, as QEMU's model does (the
    emulated COM1 of the chapters); the default is the real PC's wiring, where MCR.OUT2 gates
    the line (chapter 05's real, time-shared port).
    ``tx_log`` holds every frame that has finished on the wire; ``tx_lost`` / ``rx_lost``
    count bytes the chip threw away (THR overwritten or TX FIFO full; receive overrun).
    """

    # the chip's whole state, declared: no register can be added by a typo, and the exit path
    # reads it at slot speed (tests/test_exit_path_equivalence.py says why that matters)
    __slots__ = (
        "clock", "paced", "out2_gates_irq", "name", "on_irq", "tx_lost", "rx_lost",
        "ier", "lcr", "mcr", "scr", "fcr", "divisor",  # registers
        "_tx", "_rx", "_shift", "_incoming", "_thr", "_rbr", "_overrun", "_thri_pending",
        "_rx_activity", "_cable_inputs", "_msr_delta", "_irq_level",  # the line and FIFOs
        "_frame_ns", "_data_mask", "_depth",  # derived from LCR, FCR and the divisor
        "_wire_bytes", "_wire_times",  # the wire log
    )

    def __init__(
        self,
        clock: Clock,
        name: str = "COM1",
        on_irq: Callable[[bool], None] | None = None,
        paced: bool = True,
        out2_gates_irq: bool = True,
    ) -> None:
        if paced.__class__ is not bool or out2_gates_irq.__class__ is not bool:
            raise ConfigError("paced and out2_gates_irq are True or False")
        self.clock = clock
        self.paced = paced
        self.out2_gates_irq = out2_gates_irq
        self.name = name
        self.on_irq = on_irq
        self._new_wire_log()
        self.tx_lost = 0
        self.rx_lost = 0
        self._irq_level = False
        self.reset()

    def __repr__(self) -> str:
        return f"Uart16550({self.name!r})"

    def reset(self) -> None:
        """Master reset (the chip's MR pin): power-on register values, FIFOs empty, line idle."""
        self.ier = self.lcr = self.mcr = self.scr = self.fcr = 0
        self.divisor = RESET_DIVISOR
        self._tx: deque[int] = deque()  # THR, or the TX FIFO when FIFOs are on
        self._rx: deque[int] = deque()  # RBR, or the RX FIFO
        self._shift: tuple | None = None  # (start, end, byte) the shift register is sending
        self._incoming: deque[tuple] = deque()  # (start, end, byte) on the cable towards us
        self._thr = 0  # last byte written to THR (for the state panel)
        self._rbr = 0  # last byte read: what an empty RBR returns
        self._overrun = False
        self._thri_pending = False
        self._rx_activity = self.clock.now  # last time a byte entered or left RX
        self._cable_inputs = MSR_CTS | MSR_DSR | MSR_DCD
        self._msr_delta = 0
        self._line_changed()
        self._update_irq()

    # -- the bus Device protocol -----------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """IN from ``offset`` (0-7): one byte cycle per byte, low byte first."""
        if size != 1 or offset.__class__ is not int or not 0 <= offset < UART_PORTS:
            self._check(offset, size)
        if self._shift is not None or self._incoming:  # something on the wire: catch up
            self._advance()
        if size == 1:
            value = self._read_reg(offset)
        else:
            value = 0
            for i in range(size):
                value |= self._read_reg(offset + i) << (8 * i)
        if self.ier or self._irq_level:  # with IER = 0 and the line low, nothing can change
            self._update_irq()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        """OUT to ``offset`` (0-7): one byte cycle per byte, low byte first."""
        character = offset.__class__ is int and offset == THR and size == 1  # or DLL
        if not character:
            self._check(offset, size)
        if value.__class__ is not int:  # registers hold plain ints, never a numpy scalar
            raise ConfigError(f"{self.name}: a value written is an integer, not {value!r}")
        if self._shift is not None or self._incoming:
            self._advance()
        if character and not self.lcr & LCR_DLAB:  # the common case
            self._write_thr(value & 0xFF, True)  # the only byte cycle of this access
        elif size == 1:
            self._write_reg(offset, value & 0xFF)
        else:
            value &= (1 << (8 * size)) - 1
            for i in range(size):
                self._write_reg(offset + i, (value >> (8 * i)) & 0xFF)
        if self.ier or self._irq_level:
            self._update_irq()

    def _check(self, offset: int, size: int) -> None:
        """Raise unless ``size`` bytes at ``offset`` are a 1, 2 or 4-byte access within 0-7."""
        if size.__class__ is not int or size not in PORT_SIZES:
            raise BadSizeError(f"{self.name}: access size {size!r} is not one of 1, 2, 4 bytes")
        if offset.__class__ is not int or not 0 <= offset or offset + size > UART_PORTS:
            raise BadPortError(
                f"{self.name}: {size}-byte access at offset {offset!r} is outside ports 0-7"
            )


__all__ = [
    "BAUD_BASE", "COM1_BASE", "COM1_IRQ", "COM2_BASE", "COM2_IRQ", "COM3_BASE", "COM3_IRQ",
    "COM4_BASE", "COM4_IRQ", "DLL", "DLM", "FCR", "FCR_CLEAR_RCVR", "FCR_CLEAR_XMIT",
    "FCR_DMA_SELECT", "FCR_ENABLE_FIFO", "FCR_TRIGGER_1", "FCR_TRIGGER_14", "FCR_TRIGGER_4",
    "FCR_TRIGGER_8", "FCR_TRIGGER_MASK", "FIFO_DEPTH", "Frame", "IER", "IER_MSI", "IER_RDI",
    "IER_RLSI", "IER_THRI", "IIR", "IIR_FIFO_ENABLED", "IIR_ID_MASK", "IIR_MSI", "IIR_NO_INT",
    "IIR_RDI", "IIR_RLSI", "IIR_THRI", "IIR_TIMEOUT", "LCR", "LCR_DLAB", "LCR_EPAR",
    "LCR_PARITY", "LCR_SBC", "LCR_SPAR", "LCR_STOP", "LCR_WLEN5", "LCR_WLEN6", "LCR_WLEN7",
    "LCR_WLEN8", "LCR_WLEN_MASK", "LSR", "LSR_BI", "LSR_DR", "LSR_FE", "LSR_FIFOE", "LSR_OE",
    "LSR_PE", "LSR_TEMT", "LSR_THRE", "MCR", "MCR_DTR", "MCR_LOOP", "MCR_OUT1", "MCR_OUT2",
    "MCR_RTS", "MSR", "MSR_CTS", "MSR_DCD", "MSR_DCTS", "MSR_DDCD", "MSR_DDSR", "MSR_DSR",
    "MSR_RI", "MSR_TERI", "RBR", "RESET_DIVISOR", "RX_TRIGGER_LEVELS", "SCR", "THR",
    "UART_PORTS", "Uart16550", "frame_bits", "frame_time_ns",
]
