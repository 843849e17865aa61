"""The IDE controller, one channel: the ATA disk model qemu-dm runs for an HVM guest.

A channel answers two claims (hardware-facts.md §9.1, §12): the *command block*, eight ports
at 0x1F0 (primary; 0x170 secondary), and the *control block*, one port at 0x3F6 (0x376). It
raises IRQ 14 (15). ``IdeController`` is the channel; ``command_block`` and ``control_block``
are the two small devices to claim (``port_claims()`` lists them). Each of the two devices on
the cable (master = 0, slave = 1) is an ATA disk whose bytes live in a disk backend
(``vmmlib.devices.disk``), or is absent.

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

**A state machine from a table.** Each device follows ``TRANSITIONS`` (``vmmlib.devices.ata``):
states idle, busy, drq_in, drq_out, error, reset; every change goes through ``_go``, which
looks the edge up in that table and records it in ``history``. The status register is a view of
the state (``STATE_STATUS``): BSY in busy and reset, DRQ in the two data phases, ERR in error.

**Time.** The backend says how long an access takes; BSY stays set until ``clock.now`` reaches
its end. The model owns no thread: every access first catches up with the clock;
``next_event_time()`` tells a scheduler when the state next changes by itself and
``catch_up()`` applies it, raising the interrupt on time. Each backend access is reported to
``on_backend(event)`` and kept in ``last_backend_access``: a dict with time, device, backend,
op (read / write / flush), lba, count, latency_ns.

Decisions where hardware leaves a choice or where QEMU (hw/ide/core.c, commit 9740b907) and the
ATA standard differ (each one is pinned by a test):

* **One sector per backend request**, as QEMU's PIO path does (``req_nb_sectors = 1``): the
  next sector of READ SECTORS is fetched when the host has read the previous one (BSY in
  between, a new DRQ and interrupt per sector); WRITE SECTORS stores each sector when the
  host has written it, then DRQ + interrupt for the next, an interrupt after the last.
* **Addresses beyond the disk** end the command with ERR and IDNF (ATA: "ID not found") when
  the first missing sector is reached; sectors before it transfer. QEMU aborts (ABRT) instead.
* **Interrupt line.** INTRQ is pending from a completion until the status register is read or
  a command is written; the line shows it only while nIEN = 0 and the device is selected
  (ATA's tri-state INTRQ). QEMU instead decides at the moment it raises. No interrupt after
  the last sector of a read, none after a reset (ATA).
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
* **What is not modelled:** bus-master DMA (READ/WRITE DMA abort), READ/WRITE MULTIPLE, SET
  FEATURES, SMART, ATAPI (IDENTIFY PACKET DEVICE aborts: these are ATA disks). Those commands,
  and every unknown one, end with ERR and ABRT, as QEMU does for commands it does not permit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..errors import BadPortError, BadSizeError, ConfigError
from ..hw.bus import PORT_SIZES
from . import ata
from .ata import (
    BUSY,
    CHANNELS,
    COMMAND_BLOCK_PORTS,
    CONTROL_BLOCK_PORTS,
    CTL_HOB,
    CTL_NIEN,
    CTL_SRST,
    DEV_DEV1,
    DEV_HEAD_MASK,
    DEV_LBA,
    DEV_OBSOLETE,
    DIAGNOSTIC_PASSED,
    DRQ_IN,
    DRQ_OUT,
    ER_ABRT,
    ER_IDNF,
    ER_UNC,
    HEADS,
    IDLE,
    NEXT_STATE,
    RESET,
    SECTOR_SIZE,
    SECTORS_PER_TRACK,
    STATE_STATUS,
)
from .disk import DiskBackend
from .readback import ReadbackRow

#: How long a device stays busy after SRST returns to 0 (estimate, see the docstring).
RESET_NS = 50_000
#: How many state changes ``history`` keeps (a bounded record for the notebook's diagram).
HISTORY_LENGTH = 4096

NAMES = {1: "features", 2: "sector_count", 3: "lba_low", 4: "lba_mid", 5: "lba_high"}
_DEAF = (BUSY, DRQ_IN, DRQ_OUT, RESET)  # states in which registers 1-7 ignore writes


class _Drive:
    """One device on the cable: its copy of the task file, its state, its sector buffer."""

    def __init__(self, unit: int, backend: DiskBackend | None, channel: str) -> None:
        self.unit = unit
        self.backend = backend
        self.present = backend is not None
        self.identify = b""
        if backend is not None:
            number = 2 * (channel == "secondary") + unit + 1  # like QEMU's "QM%05d" counter
            words = ata.identify_page(
                backend.sectors,
                serial=f"VM{number:05d}",
                write_cache=backend.write_cache,
                rpm=backend.rpm,
            )
            self.identify = b"".join(w.to_bytes(2, "little") for w in words)
        self.regs = [0] * 8  # 1 features, 2 count, 3-5 LBA, 6 device/head (index = offset)
        self.hob = [0] * 8  # the previous byte written to 1-5 (LBA48 high-order bytes)
        self.state = IDLE
        self.error = DIAGNOSTIC_PASSED
        self.intrq = False
        self.buffer = bytearray(SECTOR_SIZE)
        self.pos = 0
        self.lba = 0  # the sector the command handles next
        self.remaining = 0  # sectors still to transfer
        self.lba48 = False
        self.command = 0  # the command in progress

    def signature(self) -> None:
        """Registers as after a reset, with the ATA signature in them (QEMU ide_reset and
        ide_set_signature: count 1, LBA low 1, mid 0, high 0; device/head A0h)."""
        self.regs = [0, 0, 1, 1, 0, 0, DEV_OBSOLETE, 0]
        self.hob = [0] * 8
        self.error = DIAGNOSTIC_PASSED
        self.intrq = False
        self.pos = self.remaining = 0


class _Port:
    """Base of the two claimable devices: checks the access, then asks the channel."""

    ports = 0

    def __init__(self, channel: IdeController) -> None:
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


class IdeController:
    """One IDE channel with an ATA disk as master and, optionally, one as slave.

    ``channel`` is "primary" (0x1F0, 0x3F6, IRQ 14) or "secondary" (0x170, 0x376, IRQ 15).
    ``on_irq(level)`` is called whenever the IRQ line changes; ``on_backend(event)`` after every
    backend access.
    """

    TRANSITIONS = ata.TRANSITIONS
    STATES = ata.STATES

    def __init__(
        self,
        clock: Clock,
        master: DiskBackend,
        slave: DiskBackend | None = None,
        *,
        channel: str = "primary",
        name: str | None = None,
        on_irq: Callable[[bool], None] | None = None,
        on_backend: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if channel not in CHANNELS:
            raise ConfigError(f"an IDE channel is 'primary' or 'secondary', not {channel!r}")
        if not isinstance(master, DiskBackend):
            raise ConfigError("an IDE channel needs a master disk (a DiskBackend)")
        if slave is not None and not isinstance(slave, DiskBackend):
            raise ConfigError(f"the slave must be a DiskBackend or None, not {slave!r}")
        self.clock = clock
        self.channel = channel
        self.cmd_base, self.ctrl_base, self.irq = CHANNELS[channel]
        self.name = name or f"IDE {channel}"
        self.on_irq = on_irq
        self.on_backend = on_backend
        self.drives = (_Drive(0, master, channel), _Drive(1, slave, channel))
        self.command_block = CommandBlock(self)
        self.control_block = ControlBlock(self)
        self.history: deque[tuple[int, int, str, str, str]] = deque(maxlen=HISTORY_LENGTH)
        self.last_backend_access: dict[str, Any] | None = None
        self._irq_level = False
        self.reset()

    def __repr__(self) -> str:
        return f"IdeController({self.name!r})"

    def reset(self) -> None:
        """Power-on (hardware) reset: both devices idle with their signature, device 0."""
        self.unit = 0
        self.devctl = 0
        self._pending: list[tuple[int, int, int, str, Any]] = []
        self._seq = 0
        self._written: dict[int | None, int | None] = dict.fromkeys([*range(8), None])
        for d in self.drives:
            d.signature()
            d.state = IDLE
        self._update_irq()

    def port_claims(self) -> list[tuple[int, int, CommandBlock | ControlBlock, str]]:
        """(base, length, device, name) of the two claims this channel needs on a port bus."""
        return [
            (self.cmd_base, COMMAND_BLOCK_PORTS, self.command_block, self.name),
            (self.ctrl_base, CONTROL_BLOCK_PORTS, self.control_block, f"{self.name} ctl"),
        ]

    # -- views ------------------------------------------------------------------------------
    @property
    def selected(self) -> _Drive:
        return self.drives[self.unit]

    @property
    def state(self) -> str:
        """The selected device's protocol state ("absent" for a missing slave)."""
        self.catch_up()
        return self.selected.state if self.selected.present else "absent"

    @property
    def irq_level(self) -> bool:
        """The IRQ line: the selected device's pending interrupt, unless nIEN masks it."""
        d = self.selected
        return d.present and d.intrq and not self.devctl & CTL_NIEN

    def _status(self, d: _Drive) -> int:
        return STATE_STATUS[d.state] if d.present else 0

    def registers(self) -> dict[str, int]:
        """Every register of the selected device by name, WITHOUT the guest's side effects
        (no interrupt acknowledge, no data consumed). Write-only registers show the model's
        shadow copy: features, command, device control."""
        self.catch_up()
        d = self.selected
        regs = {
            "data": self._peek_data(d),
            "error": d.error if d.present else 0,
            **{name: d.regs[i] for i, name in NAMES.items()},
            "device": d.regs[6],
            "status": self._status(d),
            "command": self._written[7] or 0,
            "device_control": self._written[None] or 0,
        }
        regs.update({f"hob_{name}": d.hob[i] for i, name in NAMES.items()})
        return regs

    def readback_table(self) -> list[ReadbackRow]:
        """What a read at each address returns vs what the guest last wrote there, and what
        the model must shadow because the guest can never read it back."""
        r = self.registers()
        d = self.selected
        w = self._written
        base, ctl = self.cmd_base, self.ctrl_base
        return [
            ReadbackRow(base, "data", "data", r["data"], w[0], False,
                        "the sector buffer and the position in it"),
            ReadbackRow(base + 1, "error", "features", r["error"], w[1], False,
                        "features (and its previous byte, for LBA48 commands)"),
            ReadbackRow(base + 2, "sector count", "sector count", r["sector_count"], w[2], True,
                        ""),
            ReadbackRow(base + 3, "LBA low", "LBA low", r["lba_low"], w[3], True, ""),
            ReadbackRow(base + 4, "LBA mid", "LBA mid", r["lba_mid"], w[4], True, ""),
            ReadbackRow(base + 5, "LBA high", "LBA high", r["lba_high"], w[5], True, ""),
            ReadbackRow(base + 6, "device/head", "device/head", r["device"], w[6], True, ""),
            ReadbackRow(base + 7, "status", "command", r["status"], w[7], False,
                        "the command being executed"),
            ReadbackRow(ctl, "alternate status", "device control", r["status"], w[None], False,
                        "device control: nIEN, SRST, HOB"),
            ReadbackRow(None, "-", "-", None, None, False,
                        f"the protocol state ({d.state}) beyond BSY and DRQ, the sectors "
                        f"left ({d.remaining}), the interrupt pending ({d.intrq})"),
        ]

    # -- time -------------------------------------------------------------------------------
    def _schedule(self, t: int, d: _Drive, event: str, payload: Any = None) -> None:
        self._seq += 1
        self._pending.append((t, self._seq, d.unit, event, payload))
        self._pending.sort()

    def _advance(self) -> None:
        now = self.clock.now
        while self._pending and self._pending[0][0] <= now:
            _, _, unit, event, payload = self._pending.pop(0)
            self._complete(self.drives[unit], event, payload)

    def catch_up(self) -> None:
        """Bring the channel up to ``clock.now`` and update the IRQ line."""
        self._advance()
        self._update_irq()

    def next_event_time(self) -> int | None:
        """When the state next changes by itself (a backend access ends, a reset finishes)."""
        self.catch_up()
        return self._pending[0][0] if self._pending else None

    def _update_irq(self) -> None:
        level = self.irq_level
        if level != self._irq_level:
            self._irq_level = level
            if self.on_irq is not None:
                self.on_irq(level)

    # -- the state machine -------------------------------------------------------------------
    def _go(self, d: _Drive, event: str) -> None:
        nxt = NEXT_STATE.get((d.state, event))
        if nxt is None:  # cannot happen: a test walks every path of the model
            raise AssertionError(f"IDE model: no transition from {d.state!r} on {event!r}")
        self.history.append((self.clock.now, d.unit, d.state, event, nxt))
        d.state = nxt

    def _complete(self, d: _Drive, event: str, payload: Any) -> None:
        """A scheduled event happens: the backend finished, or the reset did."""
        if event == ata.SECTOR_READY:
            d.buffer[:] = payload
            d.pos = 0
        elif event == ata.SECTOR_NOT_FOUND:
            d.error = ER_IDNF
        elif event == ata.MEDIA_ERROR:
            d.error = payload
        elif event == ata.SECTOR_STORED:
            d.pos = 0
        self._go(d, event)
        if event == ata.RESET_DONE:
            d.signature()
            self.unit = 0
        else:
            d.intrq = True

    # -- port accesses ----------------------------------------------------------------------
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
        if off != 7 and self.selected.present and self.selected.state in _DEAF:
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

    # -- the data port -----------------------------------------------------------------------
    def _peek_data(self, d: _Drive) -> int:
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
        if not d.present or d.state in _DEAF:
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

    def _address(self, d: _Drive) -> tuple[int, int]:
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

    def _set_address(self, d: _Drive) -> None:
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

    def _in_range(self, d: _Drive) -> bool:
        return 0 <= d.lba < d.backend.sectors  # type: ignore[union-attr]

    def _backend(self, d: _Drive, op: str, lba: int, count: int, data: bytes = b"") -> Any:
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

    def _fetch(self, d: _Drive) -> None:
        """Ask the backend for the next sector of a read; it is ready when the access ends."""
        if not self._in_range(d):
            self._schedule(self.clock.now, d, ata.SECTOR_NOT_FOUND)
            return
        got = self._backend(d, "read", d.lba, 1)
        if got is None:
            self._schedule(self.clock.now, d, ata.MEDIA_ERROR, ER_UNC)
        else:
            self._schedule(self.clock.now + got[1], d, ata.SECTOR_READY, got[0])

    def _sector_drained(self, d: _Drive) -> None:
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

    def _sector_filled(self, d: _Drive) -> None:
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
