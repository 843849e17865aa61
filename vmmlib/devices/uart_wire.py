"""The serial wire's log: every character that has left the UART, when its start bit began
and when its stop bit ended.

The transmitter (``vmmlib.devices.uart_line``) appends each frame as it finishes; with 5-7 data
bits only the bits that travelled are recorded. ``tx_log`` is the wire's history, not chip
state, and survives a reset.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple


class Frame(NamedTuple):
    """One character on the wire: when its start bit began, when its stop bit ended, the byte."""

    start: int
    end: int
    byte: int


class WireLog:
    """The wire half of ``Uart16550`` (a mixin): the log, kept compactly as the bytes and each
    frame's start and end times."""

    __slots__ = ()  # the state is declared once, in Uart16550.__slots__

    def _new_wire_log(self) -> None:
        """An empty wire (the chip's reset does not clear it)."""
        self._wire_bytes = bytearray()
        self._wire_times = array("q")

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
