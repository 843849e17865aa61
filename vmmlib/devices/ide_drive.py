"""One device on an IDE cable: an ATA disk's copy of the task file, its protocol state and its
sector buffer, in front of the disk backend that holds its bytes (``vmmlib.devices.disk``).

Both devices latch every register write (one cable), so each keeps its own copy of the task
file; a missing slave is a device with no backend. Its IDENTIFY DEVICE page is built once,
from the backend's size and properties (``ata.identify_page``).
"""

from __future__ import annotations

from . import ata
from .ata import DEV_OBSOLETE, DIAGNOSTIC_PASSED, IDLE, SECTOR_SIZE
from .disk import DiskBackend


class IdeDrive:
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
