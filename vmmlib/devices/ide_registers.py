"""The IDE channel's register file: the command block (eight ports at 0x1F0, 0x170 on the
secondary channel) and the control block (one port at 0x3F6, 0x376) as the two claimable
devices, and what reading and writing each register does (hardware-facts.md §9.1, §12).

====== ===================================== =========================================
port   read                                   write
====== ===================================== =========================================
+0     data (16 bits; 32-bit insl works too) data
+1     error                                  features
+2..5  sector count, LBA 7:0, 15:8, 23:16     the same (LBA48: each written twice, high
                                              byte first; HOB = 1 reads the first byte)
+6     device/head                            device/head (bit 4 drive, bit 6 LBA)
+7     status (acknowledges the interrupt)    command
ctl    alternate status (no acknowledge)      device control (nIEN, SRST, HOB)
====== ===================================== =========================================

Decisions where hardware leaves a choice or where QEMU (hw/ide/core.c, commit 9740b907) and the
ATA standard differ (each one is pinned by a test):

* **Busy means deaf.** While BSY or DRQ is set, writes to registers 1-6 and commands are
  ignored (QEMU); a data-port access without DRQ, or in the wrong direction, reads 0 and
  writes nothing (QEMU). A byte read of the data port consumes a word and returns its low
  byte (QEMU since 2022); a byte write there is ignored.
* **Absent slave.** Register writes reach both devices (one cable); with device 1 absent and
  selected, status and error read 0 and the other registers what was written; commands to it
  are ignored (QEMU, and ATA's "device 0 responds for device 1"). A channel needs a master:
  a channel with no device is simply not claimed (the bus floats, reads give 0xFF).
* **Reset.** Power-on and SRST leave the error register 01h (diagnostic passed) and the ATA
  signature (sector count 1, LBA 1, 0, 0). SRST = 1 holds BSY; BSY stays RESET_NS after SRST
  returns to 0 (QEMU resets at once; ATA allows up to 31 s); then device 0 is selected.
"""

from __future__ import annotations

from ..errors import BadPortError, BadSizeError
from ..hw.bus import PORT_SIZES
from . import ata
from .ata import (
    BUSY,
    COMMAND_BLOCK_PORTS,
    CONTROL_BLOCK_PORTS,
    CTL_HOB,
    CTL_SRST,
    DEV_DEV1,
    DEV_OBSOLETE,
    DRQ_IN,
    DRQ_OUT,
    RESET,
    SECTOR_SIZE,
    STATE_STATUS,
)
from .ide_drive import IdeDrive

#: How long a device stays busy after SRST returns to 0 (estimate, see the docstring).
RESET_NS = 50_000

NAMES = {1: "features", 2: "sector_count", 3: "lba_low", 4: "lba_mid", 5: "lba_high"}
DEAF_STATES = (BUSY, DRQ_IN, DRQ_OUT, RESET)  # states in which registers 1-7 ignore writes


class _Port:
    """Base of the two claimable devices: checks the access, then asks the channel."""

    ports = 0

    def __init__(self, channel: IdeRegisterFile) -> None:
        self.channel = channel

    def _check(self, offset: int, size: int) -> None:
        if size not in PORT_SIZES:
            raise BadSizeError(f"{self.channel.name}: access size {size!r} is not 1, 2 or 4")
        if not isinstance(offset, int) or offset < 0 or offset + size > self.ports:
            raise BadPortError(
                f"{self.channel.name}: {size}-byte access at offset {offset!r} is outside "
                f"ports 0-{self.ports - 1} of the {type(self).__name__}"
            )


class CommandBlock(_Port):
    """Ports base+0 … base+7: data, error/features, task file, device/head, status/command."""

    ports = COMMAND_BLOCK_PORTS

    def read(self, offset: int, size: int) -> int:
        ch = self.channel
        if offset == 0 and (size == 2 or size == 4) and not ch._pending:
            d = ch.drives[ch.unit]  # the data port in mid-sector: nothing else can change
            if d.state == DRQ_IN and d.pos + size < SECTOR_SIZE:
                d.pos += size
                return int.from_bytes(d.buffer[d.pos - size : d.pos], "little")
        self._check(offset, size)
        return ch._access(offset, size, None)

    def read_string(self, offset: int, size: int, count: int) -> bytes:
        """``count`` reads at once (a REP INSW's ioreq), exactly as ``count`` calls of
        ``read``: the words of a sector up to (not including) its last come out of the buffer
        as one slice; the last word — where the drive changes state — and every other access
        go through ``read``."""
        ch, out = self.channel, []
        while count > 0:
            if offset == 0 and (size == 2 or size == 4) and not ch._pending:
                d = ch.drives[ch.unit]
                if d.state == DRQ_IN:
                    n = min(count, (SECTOR_SIZE - d.pos + size - 1) // size - 1)
                    if n > 0:
                        out.append(bytes(d.buffer[d.pos : d.pos + n * size]))
                        d.pos += n * size
                        count -= n
                        continue
            out.append(self.read(offset, size).to_bytes(size, "little"))
            count -= 1
        return b"".join(out)

    def write(self, offset: int, size: int, value: int) -> None:
        ch = self.channel
        if offset == 0 and (size == 2 or size == 4) and not ch._pending:
            d = ch.drives[ch.unit]
            if d.state == DRQ_OUT and d.pos + size < SECTOR_SIZE:
                value &= (1 << 8 * size) - 1
                d.buffer[d.pos : d.pos + size] = value.to_bytes(size, "little")
                d.pos += size
                ch._written[0] = value
                return
        self._check(offset, size)
        ch._access(offset, size, value & ((1 << (8 * size)) - 1))

    def __repr__(self) -> str:
        return f"CommandBlock({self.channel.name!r})"


class ControlBlock(_Port):
    """The one control port: alternate status (read) and device control (write)."""

    ports = CONTROL_BLOCK_PORTS

    def read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        return self.channel._access(None, size, None)

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(offset, size)
        self.channel._access(None, size, value & 0xFF)

    def __repr__(self) -> str:
        return f"ControlBlock({self.channel.name!r})"


class IdeRegisterFile:
    """The register half of ``IdeController`` (a mixin: it uses the channel's drives, clock and
    state machine): one guest access decoded into register reads and writes."""

    def _status(self, d: IdeDrive) -> int:
        return STATE_STATUS[d.state] if d.present else 0

    def _access(self, offset: int | None, size: int, value: int | None) -> int:
        """One guest access; offset None is the control block. Returns what a read gives."""
        self._advance()
        result = 0
        if offset is None:  # one port: size is 1
            if value is None:
                result = self._status(self.selected)
            else:
                self._write_control(value)
        elif offset == 0:
            if value is None:
                result = self._read_data(size)
            else:
                self._write_data(size, value)
        else:
            for i in range(size):  # an 8-bit register: one byte cycle per byte, low first
                if value is None:
                    result |= self._read_register(offset + i) << (8 * i)
                else:
                    self._write_register(offset + i, (value >> (8 * i)) & 0xFF)
        self._advance()
        self._update_irq()
        return result

    def _read_register(self, off: int) -> int:
        d = self.selected
        hob = self.devctl & CTL_HOB
        if off == 1:
            return (d.hob[1] if hob else d.error) if d.present else 0
        if off <= 5:
            return d.hob[off] if hob else d.regs[off]
        if off == 6:
            return d.regs[6]
        status = self._status(d)
        d.intrq = False  # reading status acknowledges the interrupt
        return status

    def _write_register(self, off: int, v: int) -> None:
        self._written[off] = v
        if off != 7 and self.selected.present and self.selected.state in DEAF_STATES:
            return  # ignored while BSY or DRQ
        self.devctl &= ~CTL_HOB  # any write to the command block clears HOB
        if off == 7:
            self._command(v)
            return
        for d in self.drives:  # one cable: both devices latch the write
            if off == 6:
                d.regs[6] = v | DEV_OBSOLETE
            else:
                d.hob[off], d.regs[off] = d.regs[off], v
        if off == 6:
            self.unit = 1 if v & DEV_DEV1 else 0

    def _write_control(self, v: int) -> None:
        self._written[None] = v
        old, self.devctl = self.devctl, v
        for d in self.drives:
            if not d.present:
                continue
            if v & CTL_SRST and not old & CTL_SRST:
                self._pending = [p for p in self._pending if p[2] != d.unit]
                d.intrq = False
                self._go(d, ata.SRST_SET)
            elif old & CTL_SRST and not v & CTL_SRST:
                self._go(d, ata.SRST_CLEARED)
                self._schedule(self.clock.now + RESET_NS, d, ata.RESET_DONE)
