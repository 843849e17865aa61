"""The read-back problem as data: for every register of a device, what a read at its address
returns next to what the guest last wrote there, and what the device model has to keep in a
shadow copy because the guest can never read it back.

The thread's point (xen-devel, Nov 2006): a device model must be "modelled after a real device",
and you cannot read back every register of an IDE device: a read at the command register's
address gives the status, not the command you wrote. The same holds for the 16550's FCR, THR
and its FIFOs. Whoever wants to save a device's state, or hand it to another guest (chapter
05), must know those values from somewhere else. ``ReadbackRow`` is one row of that table;
``IdeController.readback_table()`` and ``uart_readback_table()`` fill it from a live device
(without side effects).
"""

from __future__ import annotations

from typing import NamedTuple

from .uart16550 import COM1_BASE, Uart16550


class ReadbackRow(NamedTuple):
    """One register address of a device as the guest sees it.

    ``port`` is None for internal state that has no address at all. ``readable`` says whether
    a read at this address returns what the guest wrote (by the device's design, not just by
    coincidence right now); ``shadow`` names what the model must keep because it cannot.
    """

    port: int | None
    read: str
    write: str
    read_value: int | None
    written: int | None
    readable: bool
    shadow: str


def uart_readback_table(uart: Uart16550, base: int = COM1_BASE) -> list[ReadbackRow]:
    """The read-back table of a 16550A UART at ``base`` (hardware-facts.md §8.1)."""
    r = uart.registers()  # no side effects: IIR and LSR are not acknowledged
    fifo = uart.tx_fifo
    return [
        ReadbackRow(base + 0, "RBR (DLAB=0)", "THR (DLAB=0)", r["RBR"], r["THR"], False,
                    "THR: the byte written is on its way to the wire, a read gives RBR"),
        ReadbackRow(base + 0, "DLL (DLAB=1)", "DLL (DLAB=1)", r["DLL"], r["DLL"], True, ""),
        ReadbackRow(base + 1, "IER (DLAB=0)", "IER (DLAB=0)", r["IER"], r["IER"], True, ""),
        ReadbackRow(base + 1, "DLM (DLAB=1)", "DLM (DLAB=1)", r["DLM"], r["DLM"], True, ""),
        ReadbackRow(base + 2, "IIR", "FCR", r["IIR"], r["FCR"], False,
                    "FCR: FIFOs on or off, receive trigger level (write-only)"),
        ReadbackRow(base + 3, "LCR", "LCR", r["LCR"], r["LCR"], True, ""),
        ReadbackRow(base + 4, "MCR", "MCR", r["MCR"], r["MCR"], True, ""),
        ReadbackRow(base + 5, "LSR", "(factory test)", r["LSR"], None, False, ""),
        ReadbackRow(base + 6, "MSR", "(ignored)", r["MSR"], None, False, ""),
        ReadbackRow(base + 7, "SCR", "SCR", r["SCR"], r["SCR"], True, ""),
        ReadbackRow(None, "-", "-", len(fifo), None, False,
                    "the transmit FIFO and shift register: bytes written, not yet sent"),
        ReadbackRow(None, "-", "-", None, None, False,
                    "a pending THRE interrupt (reading IIR acknowledges it) and the "
                    "receive time-out timer"),
    ]
