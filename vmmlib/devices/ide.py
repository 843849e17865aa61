"""The IDE controller, one channel: the ATA disk model qemu-dm runs for an HVM guest.

A channel answers two claims (hardware-facts.md §9.1, §12): the *command block*, eight ports
at 0x1F0 (primary; 0x170 secondary), and the *control block*, one port at 0x3F6 (0x376). It
raises IRQ 14 (15). ``IdeController`` is the channel; ``command_block`` and ``control_block``
are the two small devices to claim (``port_claims()`` lists them). Each of the two devices on
the cable (master = 0, slave = 1) is an ATA disk whose bytes live in a disk backend
(``vmmlib.devices.disk``), or is absent.

The channel's parts: its register file (``vmmlib.devices.ide_registers``: the two claims and
the registers behind them), its command engine (``vmmlib.devices.ide_commands``: commands and
PIO transfers) and the devices on its cable (``vmmlib.devices.ide_drive``).

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

* **Interrupt line.** INTRQ is pending from a completion until the status register is read or
  a command is written; the line shows it only while nIEN = 0 and the device is selected
  (ATA's tri-state INTRQ). QEMU instead decides at the moment it raises. No interrupt after
  the last sector of a read, none after a reset (ATA).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..errors import ConfigError
from . import ata
from .ata import (
    CHANNELS,
    COMMAND_BLOCK_PORTS,
    CONTROL_BLOCK_PORTS,
    CTL_NIEN,
    ER_IDNF,
    IDLE,
    NEXT_STATE,
)
from .disk import DiskBackend
from .ide_commands import IdeCommandEngine
from .ide_drive import IdeDrive
from .ide_registers import NAMES, RESET_NS, CommandBlock, ControlBlock, IdeRegisterFile
from .readback import ReadbackRow

#: How many state changes ``history`` keeps (a bounded record for the notebook's diagram).
HISTORY_LENGTH = 4096


class IdeController(IdeRegisterFile, IdeCommandEngine):
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
        self.drives = (IdeDrive(0, master, channel), IdeDrive(1, slave, channel))
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
    def selected(self) -> IdeDrive:
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
    def _schedule(self, t: int, d: IdeDrive, event: str, payload: Any = None) -> None:
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
    def _go(self, d: IdeDrive, event: str) -> None:
        nxt = NEXT_STATE.get((d.state, event))
        if nxt is None:  # cannot happen: a test walks every path of the model
            raise AssertionError(f"IDE model: no transition from {d.state!r} on {event!r}")
        self.history.append((self.clock.now, d.unit, d.state, event, nxt))
        d.state = nxt

    def _complete(self, d: IdeDrive, event: str, payload: Any) -> None:
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


__all__ = ["HISTORY_LENGTH", "NAMES", "RESET_NS", "CommandBlock", "ControlBlock", "IdeController"]
