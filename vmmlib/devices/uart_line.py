"""The serial line: character frames, and the 16550A's transmitter and receiver that move them
at the programmed baud rate in virtual time.

**Time.** Unlike QEMU, which hands a written byte to its back end at once (THRE never stays
clear: hardware-facts.md §8.3), this model sends each character at the programmed baud rate
in *virtual* time. A frame is 1 start bit + 5..8 data bits + an optional parity bit + 1, 1.5
or 2 stop bits, and lasts ``bits * 1e9 * divisor / 115200`` ns, rounded to the nearest ns
(halves up). The UART owns no thread: every access first *catches up* with ``clock.now``,
moving bytes from THR/TX FIFO through the shift register onto the wire for every frame that
has ended. A scheduler that wants interrupts on time asks ``next_event_time()``, advances
the clock there and calls ``catch_up()``.

Decisions where hardware leaves a choice (each one is pinned by a test):

* **THR write when full.** FIFOs off: the new byte overwrites THR and the waiting byte is
  lost. FIFOs on and 16 bytes queued: the *new* byte is dropped (QEMU instead drops the
  oldest). Both count in ``tx_lost``.
* **Receive.** ``receive(data)`` puts bytes on the cable towards us; they arrive paced, one
  frame after another at our own line settings (the far end is assumed to match them).
  Overrun (hardware-facts.md §8.3): FIFOs off, a byte arriving while DR is set overwrites
  RBR; FIFOs on and full, the arriving byte is dropped. Either way LSR.OE is set and
  ``rx_lost`` counts the byte. No parity, framing or break errors are ever generated.
* **Word length.** With 5-7 data bits only the low bits of a byte travel (in both
  directions; the wire's log, ``vmmlib.devices.uart_wire``, records what travelled). The reset
  LCR (0) means 5N1.
* **Divisor 0.** Hardware does not define it; we treat it as 65536 (the 16-bit divisor
  counter wraps), so time still advances. QEMU keeps the previous speed instead.
  *Unconfirmed* against a datasheet.
"""

from __future__ import annotations

from ..errors import ConfigError
from .uart_registers import (
    BAUD_BASE,
    FCR_ENABLE_FIFO,
    FIFO_DEPTH,
    IER_THRI,
    LCR_PARITY,
    LCR_STOP,
    LCR_WLEN_MASK,
    MCR_LOOP,
)


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


class UartLine:
    """The line half of ``Uart16550`` (a mixin: it uses the chip's registers and wire log): the
    line settings, the transmitter (THR / TX FIFO and the shift register), the receiver (the
    cable towards us, RBR / RX FIFO) and catching up with the clock."""

    __slots__ = ()  # the state is declared once, in Uart16550.__slots__

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
    def tx_fifo(self) -> bytes:
        """Bytes waiting in THR / the TX FIFO (not the one in the shift register)."""
        self.catch_up()
        return bytes(self._tx)

    @property
    def rx_fifo(self) -> bytes:
        """Bytes waiting in RBR / the RX FIFO, oldest first."""
        self.catch_up()
        return bytes(self._rx)
