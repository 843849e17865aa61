"""The IDE channel's command engine: the ATA commands a device carries out and the PIO data
transfers they make, one sector per backend request.

Decisions where hardware leaves a choice or where QEMU (hw/ide/core.c, commit 9740b907) and the
ATA standard differ (each one is pinned by a test):

* **One sector per backend request**, as QEMU's PIO path does (``req_nb_sectors = 1``): the
  next sector of READ SECTORS is fetched when the host has read the previous one (BSY in
  between, a new DRQ and interrupt per sector); WRITE SECTORS stores each sector when the
  host has written it, then DRQ + interrupt for the next, an interrupt after the last.
* **Addresses beyond the disk** end the command with ERR and IDNF (ATA: "ID not found") when
  the first missing sector is reached; sectors before it transfer. QEMU aborts (ABRT) instead.
* **What is not modelled:** bus-master DMA (READ/WRITE DMA abort), READ/WRITE MULTIPLE, SET
  FEATURES, SMART, ATAPI (IDENTIFY PACKET DEVICE aborts: these are ATA disks). Those commands,
  and every unknown one, end with ERR and ABRT, as QEMU does for commands it does not permit.
"""

from __future__ import annotations

from typing import Any

from . import ata
from .ata import (
    DEV_HEAD_MASK,
    DEV_LBA,
    DRQ_IN,
    DRQ_OUT,
    ER_ABRT,
    ER_UNC,
    HEADS,
    SECTOR_SIZE,
    SECTORS_PER_TRACK,
)
from .ide_drive import IdeDrive
from .ide_registers import DEAF_STATES


class IdeCommandEngine:
    """The command half of ``IdeController`` (a mixin: it uses the channel's drives, clock,
    backend hook and state machine): commands, addresses, the data port, backend accesses."""

    # -- the data port -----------------------------------------------------------------------
    def _peek_data(self, d: IdeDrive) -> int:
        if d.present and d.state == DRQ_IN:
            return int.from_bytes(d.buffer[d.pos : d.pos + 2], "little")
        return 0

    def _read_data(self, size: int) -> int:
        d = self.selected
        if not d.present or d.state != DRQ_IN:
            return 0
        n = max(size, 2)  # a byte read still moves a whole word (QEMU)
        value = int.from_bytes(d.buffer[d.pos : d.pos + n], "little")
        d.pos += n
        if d.pos >= SECTOR_SIZE:
            self._sector_drained(d)
        return value & ((1 << (8 * size)) - 1)

    def _write_data(self, size: int, value: int) -> None:
        self._written[0] = value
        d = self.selected
        if size == 1 or not d.present or d.state != DRQ_OUT:
            return
        d.buffer[d.pos : d.pos + size] = value.to_bytes(size, "little")
        d.pos += size
        if d.pos >= SECTOR_SIZE:
            self._sector_filled(d)

    # -- commands -----------------------------------------------------------------------------
    def _command(self, code: int) -> None:
        d = self.selected
        if not d.present or d.state in DEAF_STATES:
            return  # a missing slave ignores commands; so does a busy device
        d.intrq = False  # writing the command register clears a pending interrupt
        d.error = 0
        d.command = code
        if code in ata.READ_COMMANDS or code in ata.WRITE_COMMANDS:
            d.lba48 = ata.READ_COMMANDS.get(code, ata.WRITE_COMMANDS.get(code))
            d.lba, d.remaining = self._address(d)
            if code in ata.READ_COMMANDS:
                self._go(d, ata.DATA_IN_COMMAND)
                self._fetch(d)
            else:
                d.pos = 0
                self._go(d, ata.DATA_OUT_COMMAND)
        elif code == ata.CMD_IDENTIFY:
            d.lba, d.remaining = 0, 1
            self._go(d, ata.DATA_IN_COMMAND)
            self._schedule(self.clock.now, d, ata.SECTOR_READY, d.identify)
        elif code in ata.FLUSH_COMMANDS:
            self._go(d, ata.NON_DATA_COMMAND)
            ns = self._backend(d, "flush", 0, 0)
            if ns is None:
                self._schedule(self.clock.now, d, ata.MEDIA_ERROR, ER_ABRT)
            else:
                self._schedule(self.clock.now + ns, d, ata.COMMAND_DONE)
        else:
            d.error = ER_ABRT
            self._go(d, ata.COMMAND_ABORTED)
            d.intrq = True

    def _address(self, d: IdeDrive) -> tuple[int, int]:
        """(first LBA, sector count) from the task file; LBA -1 if a CHS address is invalid."""
        r, h = d.regs, d.hob
        if d.lba48:
            count = (h[2] << 8 | r[2]) or 0x10000
        else:
            count = r[2] or 0x100
        if r[6] & DEV_LBA:
            if d.lba48:
                lba = h[5] << 40 | h[4] << 32 | h[3] << 24 | r[5] << 16 | r[4] << 8 | r[3]
            else:
                lba = (r[6] & DEV_HEAD_MASK) << 24 | r[5] << 16 | r[4] << 8 | r[3]
            return lba, count
        cyl, head, sector = r[5] << 8 | r[4], r[6] & DEV_HEAD_MASK, r[3]
        if not 1 <= sector <= SECTORS_PER_TRACK or head >= HEADS:
            return -1, count
        return (cyl * HEADS + head) * SECTORS_PER_TRACK + sector - 1, count

    def _set_address(self, d: IdeDrive) -> None:
        """After each sector the task file holds the next address and the count left (QEMU
        ide_set_sector; LBA modes only)."""
        lba, r = d.lba, d.regs
        if not r[6] & DEV_LBA:
            return
        r[2], r[3], r[4], r[5] = d.remaining & 0xFF, lba & 0xFF, lba >> 8 & 0xFF, lba >> 16 & 0xFF
        if d.lba48:
            d.hob[2], d.hob[3], d.hob[4], d.hob[5] = (
                d.remaining >> 8 & 0xFF, lba >> 24 & 0xFF, lba >> 32 & 0xFF, lba >> 40 & 0xFF
            )
        else:
            r[6] = (r[6] & ~DEV_HEAD_MASK) | (lba >> 24 & DEV_HEAD_MASK)

    def _in_range(self, d: IdeDrive) -> bool:
        return 0 <= d.lba < d.backend.sectors  # type: ignore[union-attr]

    def _backend(self, d: IdeDrive, op: str, lba: int, count: int, data: bytes = b"") -> Any:
        """One backend access, reported to the hook. None if the host's I/O failed."""
        backend = d.backend
        assert backend is not None
        try:
            if op == "read":
                data, ns = backend.read(lba, count)
                result: Any = (data, ns)
            elif op == "write":
                result = ns = backend.write(lba, data)
            else:
                result = ns = backend.flush()
        except OSError:
            return None
        event = {
            "time": self.clock.now, "device": d.unit, "backend": backend.name, "op": op,
            "lba": lba, "count": count, "latency_ns": ns,
        }
        self.last_backend_access = event
        if self.on_backend is not None:
            self.on_backend(event)
        return result

    def _fetch(self, d: IdeDrive) -> None:
        """Ask the backend for the next sector of a read; it is ready when the access ends."""
        if not self._in_range(d):
            self._schedule(self.clock.now, d, ata.SECTOR_NOT_FOUND)
            return
        got = self._backend(d, "read", d.lba, 1)
        if got is None:
            self._schedule(self.clock.now, d, ata.MEDIA_ERROR, ER_UNC)
        else:
            self._schedule(self.clock.now + got[1], d, ata.SECTOR_READY, got[0])

    def _sector_drained(self, d: IdeDrive) -> None:
        """The host has read the whole sector buffer."""
        d.remaining -= 1
        if d.command != ata.CMD_IDENTIFY:  # IDENTIFY is one page with no address
            d.lba += 1
            self._set_address(d)
        if d.remaining:
            self._go(d, ata.SECTOR_DRAINED)
            self._fetch(d)
        else:
            self._go(d, ata.LAST_SECTOR_DRAINED)

    def _sector_filled(self, d: IdeDrive) -> None:
        """The host has written a whole sector: store it through the backend."""
        self._go(d, ata.SECTOR_FILLED)
        if not self._in_range(d):
            self._schedule(self.clock.now, d, ata.SECTOR_NOT_FOUND)
            return
        ns = self._backend(d, "write", d.lba, 1, bytes(d.buffer))
        if ns is None:
            self._schedule(self.clock.now, d, ata.MEDIA_ERROR, ER_ABRT)
            return
        d.remaining -= 1
        d.lba += 1
        self._set_address(d)
        event = ata.SECTOR_STORED if d.remaining else ata.COMMAND_DONE
        self._schedule(self.clock.now + ns, d, event)
