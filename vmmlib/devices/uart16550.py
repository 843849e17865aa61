"""The PC serial port: a National Semiconductor 16550A UART as a bus device.

A PC has up to four such ports (COM1 at 0x3F8, IRQ 4 is the one every OS probes first). The
UART answers eight consecutive I/O ports; several registers share a port, and which one you
reach depends on the direction of the access and on LCR.DLAB (hardware-facts.md §8.1):

====== ============================== ==============================
offset read                           write
====== ============================== ==============================
0      RBR receive buffer (DLAB=0)     THR transmit holding (DLAB=0)
0      DLL divisor latch low (DLAB=1)  DLL
1      IER interrupt enable (DLAB=0)   IER
1      DLM divisor latch high (DLAB=1) DLM
2      IIR interrupt identification    FCR FIFO control (write-only)
3..7   LCR, MCR, LSR, MSR, SCR         LCR, MCR, (ignored), (ignored), SCR
====== ============================== ==============================

**Time.** Unlike QEMU, which hands a written byte to its back end at once (THRE never stays
clear: hardware-facts.md §8.3), this model sends each character at the programmed baud rate
in *virtual* time. A frame is 1 start bit + 5..8 data bits + an optional parity bit + 1, 1.5
or 2 stop bits, and lasts ``bits * 1e9 * divisor / 115200`` ns, rounded to the nearest ns
(halves up). The UART owns no thread: every access first *catches up* with ``clock.now``,
moving bytes from THR/TX FIFO through the shift register onto the wire for every frame that
has ended. A scheduler that wants interrupts on time asks ``next_event_time()``, advances
the clock there and calls ``catch_up()``.

Decisions where hardware leaves a choice (each one is pinned by a test):

* **Wider accesses.** The UART is an 8-bit ISA device; a 2- or 4-byte IN/OUT at offset ``o``
  is split into byte cycles at ``o, o+1, ...`` (low byte first), each with its own side
  effects, as the PC/AT bus splits a 16-bit cycle to an 8-bit device and as
  ``vmmlib.bus`` decodes an access that straddles devices. An access that would run past
  offset 7 is a ``BadPortError`` (through a ``PortBus`` it never reaches the UART whole).
* **THR write when full.** FIFOs off: the new byte overwrites THR and the waiting byte is
  lost. FIFOs on and 16 bytes queued: the *new* byte is dropped (QEMU instead drops the
  oldest). Both count in ``tx_lost``.
* **Receive.** ``receive(data)`` puts bytes on the cable towards us; they arrive paced, one
  frame after another at our own line settings (the far end is assumed to match them).
  Overrun (hardware-facts.md §8.3): FIFOs off, a byte arriving while DR is set overwrites
  RBR; FIFOs on and full, the arriving byte is dropped. Either way LSR.OE is set and
  ``rx_lost`` counts the byte. No parity, framing or break errors are ever generated.
* **Word length.** With 5-7 data bits only the low bits of a byte travel (in both
  directions); ``tx_log`` records what was on the wire. The reset LCR (0) means 5N1.
* **Divisor 0.** Hardware does not define it; we treat it as 65536 (the 16-bit divisor
  counter wraps), so time still advances. QEMU keeps the previous speed instead.
  *Unconfirmed* against a datasheet.
* **Interrupt line.** The chip's INTR output is "some enabled interrupt is pending"
  (``intr``). On a PC it reaches the PIC only through a gate driven by MCR.OUT2 ("Most PC
  uarts need OUT2 raised to enable interrupts", hardware-facts.md §8.2), and in loopback
  mode the OUT2 pin is forced inactive, so IRQ = INTR and OUT2 and not LOOP (``irq``).
  QEMU ignores OUT2, which is why xv6 (MCR = 0) gets interrupts under QEMU but would not on
  a real PC. The loopback part is *derived*: 16550-compatible manuals (Microchip MMUART
  MCR.Loop, NXP LPC17xx UART1 MCR) say the modem output pins go inactive in loopback.
* **Modem inputs.** The far end is a terminal that is on: CTS, DSR and DCD asserted, as
  QEMU's reset value of MSR (0xB0).
* **Reset values** (master reset): IER 0, IIR 0x01, FCR 0, LCR 0, MCR 0, LSR 0x60 (THRE and
  TEMT), SCR 0; the divisor, which real hardware leaves undefined, is 0x0C (9600 baud) as in
  QEMU. ``tx_log`` is the wire's history, not chip state, and survives a reset.
* **FCR.** Changing FCR bit 0 empties both FIFOs (QEMU ``serial_ioport_write``). Bits 1
  and 2 clear a FIFO and read back as 0 in ``registers()``; the shift register is untouched.
* **THRE interrupt.** It is latched when THR/TX FIFO becomes empty while IER.THRI is set,
  and when IER.THRI goes 0 -> 1 while THR is empty (QEMU and Bochs do this; Windows relies
  on it). Reading IIR while it is the reported source, or writing THR, clears it.
* **Character timeout** (IIR 0x0C, FIFO mode): pending while the RX FIFO holds data and
  nothing entered or left it for 4 frame times.

Sources: hardware-facts.md §8 and §12; Linux ``include/uapi/linux/serial_reg.h`` (names);
QEMU ``hw/char/serial.c``; xv6 ``uart.c``.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ..clock import Clock
from ..errors import BadPortError, BadSizeError, ConfigError
from ..hw.bus import PORT_SIZES

# -- the four PC serial ports (hardware-facts.md §12; QEMU hw/char/serial-isa.c) -----------
COM1_BASE, COM1_IRQ = 0x3F8, 4
COM2_BASE, COM2_IRQ = 0x2F8, 3
COM3_BASE, COM3_IRQ = 0x3E8, 4
COM4_BASE, COM4_IRQ = 0x2E8, 3
UART_PORTS = 8  # a UART answers 8 consecutive ports

# -- register offsets (hardware-facts.md §8.1) ----------------------------------------------
RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7

# -- bits (hardware-facts.md §8.2) ----------------------------------------------------------
IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08

IIR_NO_INT = 0x01  # bit 0 = 1: nothing pending
IIR_ID_MASK = 0x0E
IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_TIMEOUT = 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FIFO_ENABLED = 0xC0

FCR_ENABLE_FIFO, FCR_CLEAR_RCVR, FCR_CLEAR_XMIT, FCR_DMA_SELECT = 0x01, 0x02, 0x04, 0x08
FCR_TRIGGER_MASK = 0xC0
FCR_TRIGGER_1, FCR_TRIGGER_4, FCR_TRIGGER_8, FCR_TRIGGER_14 = 0x00, 0x40, 0x80, 0xC0
RX_TRIGGER_LEVELS = {FCR_TRIGGER_1: 1, FCR_TRIGGER_4: 4, FCR_TRIGGER_8: 8, FCR_TRIGGER_14: 14}
FIFO_DEPTH = 16

LCR_WLEN_MASK = 0x03  # 00 = 5 ... 11 = 8 data bits
LCR_WLEN5, LCR_WLEN6, LCR_WLEN7, LCR_WLEN8 = 0x00, 0x01, 0x02, 0x03
LCR_STOP, LCR_PARITY, LCR_EPAR, LCR_SPAR, LCR_SBC, LCR_DLAB = 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10

LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_THRE, LSR_TEMT, LSR_FIFOE = 0x20, 0x40, 0x80

MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 0x01, 0x02, 0x04, 0x08
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80

BAUD_BASE = 115200  # 1.8432 MHz / 16: divisor = 115200 / baud
RESET_DIVISOR = 0x0C  # 9600 baud, QEMU's reset value


def _half_bits(lcr: int) -> int:
    """Length of one frame in half bits (1.5 stop bits make halves necessary)."""
    data = 5 + (lcr & LCR_WLEN_MASK)
    parity = 1 if lcr & LCR_PARITY else 0
    if lcr & LCR_STOP:
        stop_halves = 3 if data == 5 else 4
    else:
        stop_halves = 2
    return 2 * (1 + data + parity) + stop_halves


def frame_bits(lcr: int) -> float:
    """Bits in one character frame for line control value ``lcr`` (start+data+parity+stop)."""
    _check_byte("LCR", lcr)
    return _half_bits(lcr) / 2


def frame_time_ns(lcr: int, divisor: int) -> int:
    """Duration of one frame in ns: bits * 1e9 * divisor / 115200, rounded halves up."""
    _check_byte("LCR", lcr)
    if not isinstance(divisor, int) or not 0 <= divisor <= 0xFFFF:
        raise ConfigError(f"divisor {divisor!r} is not a 16-bit value")
    num = _half_bits(lcr) * 10**9 * (divisor or 0x10000)  # divisor 0 counts 65536
    den = 2 * BAUD_BASE
    return (2 * num + den) // (2 * den)


def _check_byte(what: str, value: int) -> None:
    if value.__class__ is not int or not 0 <= value <= 0xFF:
        raise ConfigError(f"{what} {value!r} is not a byte")


class Frame(NamedTuple):
    """One character on the wire: when its start bit began, when its stop bit ended, the byte."""

    start: int
    end: int
    byte: int


class Uart16550:
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
        # the wire's history, compactly: the bytes, and each frame's start and end times
        self._wire_bytes = bytearray()
        self._wire_times = array("q")
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

    def _line_changed(self) -> None:
        """Recompute what LCR, FCR and the divisor imply (read on every character)."""
        self._depth = FIFO_DEPTH if self.fcr & FCR_ENABLE_FIFO else 1
        self._data_mask = (1 << (5 + (self.lcr & LCR_WLEN_MASK))) - 1  # 5-7 bit words
        self._frame_ns = frame_time_ns(self.lcr, self.divisor) if self.paced else 0

    # -- line settings ---------------------------------------------------------------------
    @property
    def fifo_enabled(self) -> bool:
        """FCR bit 0: 16-byte FIFOs in use (otherwise one-byte THR and RBR)."""
        return bool(self.fcr & FCR_ENABLE_FIFO)

    @property
    def baud(self) -> float:
        """The programmed line speed in bits per second (divisor 0 counts as 65536)."""
        return BAUD_BASE / (self.divisor or 0x10000)

    @property
    def frame_ns(self) -> int:
        """How long one character takes on the wire with the current LCR and divisor."""
        return self._frame_ns

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
        if size != 1 or offset.__class__ is not int or not 0 <= offset < UART_PORTS:
            self._check(offset, size)
        if value.__class__ is not int:  # registers hold plain ints, never a numpy scalar
            raise ConfigError(f"{self.name}: a value written is an integer, not {value!r}")
        if self._shift is not None or self._incoming:
            self._advance()
        if size == 1:
            if offset == THR and not self.lcr & LCR_DLAB:  # the common case: a character
                self._write_thr(value & 0xFF, True)  # the only byte cycle of this access
            else:
                self._write_reg(offset, value & 0xFF)
        else:
            value &= (1 << (8 * size)) - 1
            for i in range(size):
                self._write_reg(offset + i, (value >> (8 * i)) & 0xFF)
        if self.ier or self._irq_level:
            self._update_irq()

    def _check(self, offset: int, size: int) -> None:
        if size.__class__ is not int or size not in PORT_SIZES:
            raise BadSizeError(f"{self.name}: access size {size!r} is not one of 1, 2, 4 bytes")
        if offset.__class__ is not int or not 0 <= offset or offset + size > UART_PORTS:
            raise BadPortError(
                f"{self.name}: {size}-byte access at offset {offset!r} is outside ports 0-7"
            )

    def _read_reg(self, reg: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if reg == RBR:
            return self.divisor & 0xFF if dlab else self._pop_rx()
        if reg == IER:
            return self.divisor >> 8 if dlab else self.ier
        if reg == IIR:
            iid = self._interrupt_id()
            if iid == IIR_THRI:  # reading IIR acknowledges a THRE interrupt
                self._thri_pending = False
            return iid | self._fifo_bits()
        if reg == LSR:
            value = self._lsr()
            self._overrun = False  # OE (and BI, never set here) clear on read
            return value
        if reg == MSR:
            value = self._msr()
            self._msr_delta = 0
            return value
        return {LCR: self.lcr, MCR: self.mcr, SCR: self.scr}[reg]

    def _write_reg(self, reg: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if reg == THR:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                self._line_changed()
            else:
                self._write_thr(value)
        elif reg == IER:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | value << 8
                self._line_changed()
            else:
                self._write_ier(value)
        elif reg == FCR:
            self._write_fcr(value)
            self._line_changed()
        elif reg == LCR:
            self.lcr = value
            self._line_changed()
        elif reg == MCR:
            before = self._modem_inputs()
            self.mcr = value & 0x1F  # bits 7:5 read as 0 on a 16550A
            self._latch_msr_deltas(before)
        elif reg == SCR:
            self.scr = value
        # LSR and MSR: writes have no effect (factory test only on the real chip)

    # -- transmitter -----------------------------------------------------------------------
    def _write_thr(self, byte: int, last_cycle: bool = False) -> None:
        """A byte for the transmitter. ``last_cycle``: nothing else happens in this access, so
        an unpaced frame can leave at once (what the next access's catch-up would do first)."""
        self._thr = byte
        self._thri_pending = False
        if self._shift is None and not self._tx:  # idle: the byte goes straight to the shifter
            t = self.clock.now
            if self.ier & IER_THRI:
                self._thri_pending = True  # THR is empty again at once
            if last_cycle and not (self._frame_ns or self._incoming or self.mcr & MCR_LOOP):
                # unpaced, nothing arriving, no loopback: on the wire at once (_finish_frame)
                self._wire_bytes.append(byte & self._data_mask)
                self._wire_times.append(t)
                self._wire_times.append(t)
            else:
                self._shift = (t, t + self._frame_ns, byte & self._data_mask)
            return
        if len(self._tx) < self._depth:
            self._tx.append(byte)
        elif self.fifo_enabled:
            self.tx_lost += 1  # TX FIFO full: the new byte is dropped
        else:
            self._tx[-1] = byte  # THR still full: overwrite, the waiting byte is lost
            self.tx_lost += 1
        if self._shift is None:
            self._start_frame(self.clock.now)

    def _start_frame(self, t: int) -> None:
        """Move the next byte from THR/TX FIFO into the shift register; its frame starts at t.

        The frame ends (even unpaced, at t itself) when the next access catches up: so the
        rest of the access that wrote THR (a 4-byte OUT also writes IER, FCR, LCR) sees it
        still in the shift register, as on the chip."""
        byte = self._tx.popleft() & self._data_mask
        self._shift = (t, t + self._frame_ns, byte)
        if not self._tx and self.ier & IER_THRI:
            self._thri_pending = True

    def _finish_frame(self, start: int, end: int, byte: int) -> None:
        """The frame in the shift register has ended at ``end``: onto the wire (or back into
        the receiver in loopback), and the next queued byte starts."""
        self._shift = None
        if self.mcr & MCR_LOOP:
            self._rx_push(byte, end)  # the wire stays idle in loopback
        else:
            self._wire_bytes.append(byte)
            self._wire_times.append(start)
            self._wire_times.append(end)
        if self._tx:
            self._start_frame(end)

    def _write_ier(self, value: int) -> None:
        value &= 0x0F  # bits 7:4 are always 0
        if value & IER_THRI and not self.ier & IER_THRI and not self._tx:
            self._thri_pending = True  # enabling THRI while THR is empty interrupts at once
        if not value & IER_THRI:
            self._thri_pending = False
        self.ier = value

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_ENABLE_FIFO:
            value |= FCR_CLEAR_RCVR | FCR_CLEAR_XMIT  # switching mode empties both FIFOs
        if value & FCR_CLEAR_RCVR:
            self._rx.clear()
        if value & FCR_CLEAR_XMIT and self._tx:
            self._tx.clear()
            if self.ier & IER_THRI:
                self._thri_pending = True
        self.fcr = value & (FCR_ENABLE_FIFO | FCR_DMA_SELECT | FCR_TRIGGER_MASK)

    # -- receiver --------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """The far end of the cable sends ``data``: frames back to back, starting now."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"{self.name}: receive() takes bytes, not {type(data).__name__}")
        self._advance()
        t = max(self.clock.now, self._incoming[-1][1] if self._incoming else 0)
        frame, mask = self.frame_ns, self._data_mask
        for byte in bytes(data):
            self._incoming.append((t, t + frame, byte & mask))
            t += frame

    def _arrive(self, frame: tuple) -> None:
        if self.mcr & MCR_LOOP:
            self.rx_lost += 1  # loopback disconnects the receiver from the cable
        else:
            self._rx_push(frame[2], frame[1])

    def _rx_push(self, byte: int, t: int) -> None:
        self._rx_activity = t
        if len(self._rx) < self._depth:
            self._rx.append(byte)
            return
        self._overrun = True
        self.rx_lost += 1
        if not self.fifo_enabled:
            self._rx[-1] = byte  # RBR overwritten: the unread byte is lost

    def _pop_rx(self) -> int:
        if self._rx:
            self._rbr = self._rx.popleft()
            self._rx_activity = self.clock.now
        return self._rbr

    def _timeout_at(self) -> int | None:
        """When the character-timeout interrupt becomes pending (FIFO mode, data waiting)."""
        if not (self.fifo_enabled and self._rx):
            return None
        return self._rx_activity + 4 * self.frame_ns

    # -- status registers ------------------------------------------------------------------
    def _lsr(self) -> int:
        value = LSR_DR if self._rx else 0
        if self._overrun:
            value |= LSR_OE
        if not self._tx:
            value |= LSR_THRE
            if self._shift is None:
                value |= LSR_TEMT
        return value

    def _modem_inputs(self) -> int:
        """MSR bits 7:4: the cable's lines, or in loopback our own MCR outputs."""
        if not self.mcr & MCR_LOOP:
            return self._cable_inputs
        m = self.mcr
        return (
            (MSR_CTS if m & MCR_RTS else 0)
            | (MSR_DSR if m & MCR_DTR else 0)
            | (MSR_RI if m & MCR_OUT1 else 0)
            | (MSR_DCD if m & MCR_OUT2 else 0)
        )

    def _latch_msr_deltas(self, before: int) -> None:
        after = self._modem_inputs()
        delta = ((before ^ after) >> 4) & (MSR_DCTS | MSR_DDSR | MSR_DDCD)
        if before & MSR_RI and not after & MSR_RI:
            delta |= MSR_TERI  # trailing edge of RI only
        self._msr_delta |= delta

    def _msr(self) -> int:
        return self._modem_inputs() | self._msr_delta

    def _fifo_bits(self) -> int:
        return IIR_FIFO_ENABLED if self.fifo_enabled else 0

    # -- interrupts ------------------------------------------------------------------------
    def _interrupt_id(self) -> int:
        """IIR bits 3:0: the highest-priority enabled interrupt pending, or IIR_NO_INT."""
        ier = self.ier
        if ier & IER_RLSI and self._overrun:
            return IIR_RLSI
        if ier & IER_RDI:
            trigger = RX_TRIGGER_LEVELS[self.fcr & FCR_TRIGGER_MASK] if self.fifo_enabled else 1
            if len(self._rx) >= trigger:
                return IIR_RDI
            t = self._timeout_at()
            if t is not None and t <= self.clock.now:
                return IIR_TIMEOUT
        if ier & IER_THRI and self._thri_pending:
            return IIR_THRI
        if ier & IER_MSI and self._msr_delta:
            return IIR_MSI
        return IIR_NO_INT

    @property
    def intr(self) -> bool:
        """The chip's INTR pin: an enabled interrupt is pending (IIR bit 0 reads 0)."""
        return self._interrupt_id() != IIR_NO_INT

    @property
    def irq(self) -> bool:
        """The IRQ line at the PIC: on a PC, INTR gated by MCR.OUT2 and cut in loopback;
        with ``out2_gates_irq=False`` (QEMU's model), INTR itself."""
        if not self.out2_gates_irq:
            return self.intr
        return self.intr and self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2

    def _update_irq(self) -> None:
        level = self.irq
        if level != self._irq_level:
            self._irq_level = level
            if self.on_irq is not None:
                self.on_irq(level)

    # -- time ------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Play every frame that ended by ``clock.now``, in time order (transmit first on ties)."""
        now = self.clock.now
        while True:
            tx = self._shift
            rx = self._incoming[0] if self._incoming else None
            if tx is not None and tx[1] <= now and (rx is None or tx[1] <= rx[1]):
                self._finish_frame(*tx)
            elif rx is not None and rx[1] <= now:
                self._incoming.popleft()
                self._arrive(rx)
            else:
                return

    def catch_up(self) -> None:
        """Bring the UART up to ``clock.now`` and update the IRQ line (call after advancing)."""
        self._advance()
        self._update_irq()

    def next_event_time(self) -> int | None:
        """When the state next changes by itself: a frame ends or an RX timeout fires."""
        self.catch_up()
        times = []
        if self._shift is not None:
            times.append(self._shift[1])
        if self._incoming:
            times.append(self._incoming[0][1])
        t = self._timeout_at()
        if t is not None and t > self.clock.now:
            times.append(t)
        return min(times, default=None)

    # -- views for notebooks ---------------------------------------------------------------
    @property
    def tx_log(self) -> list[Frame]:
        """Every frame that has finished on the wire so far, oldest first."""
        self.catch_up()
        times = self._wire_times
        return [Frame(times[2 * i], times[2 * i + 1], b) for i, b in enumerate(self._wire_bytes)]

    @property
    def output(self) -> bytes:
        """Every byte that has finished on the wire so far."""
        self.catch_up()
        return bytes(self._wire_bytes)

    @property
    def tx_fifo(self) -> bytes:
        """Bytes waiting in THR / the TX FIFO (not the one in the shift register)."""
        self.catch_up()
        return bytes(self._tx)

    @property
    def rx_fifo(self) -> bytes:
        """Bytes waiting in RBR / the RX FIFO, oldest first."""
        self.catch_up()
        return bytes(self._rx)

    def registers(self) -> dict[str, int]:
        """Every register by name, for a state panel, read WITHOUT the guest's side effects.

        It catches up with the clock first (time passing is not a side effect of reading).
        THR is the last byte written; FCR is the model's copy of a write-only register.
        """
        self.catch_up()
        return {
            "RBR": self._rx[0] if self._rx else self._rbr,
            "THR": self._thr,
            "IER": self.ier,
            "IIR": self._interrupt_id() | self._fifo_bits(),
            "FCR": self.fcr,
            "LCR": self.lcr,
            "MCR": self.mcr,
            "LSR": self._lsr(),
            "MSR": self._msr(),
            "SCR": self.scr,
            "DLL": self.divisor & 0xFF,
            "DLM": self.divisor >> 8,
        }
