"""Chapter 02's q2 (see :mod:`vmmlib.course.checks.device_model`): the student's READ SECTORS
driver, a generator of port operations, replayed against the real IDE model
(``vmmlib.devices.ide``) behind a small port bus; what the model saw and a digest of what the
driver returned are the answer (ATA rules and xv6's ide.c: hardware-facts.md §9)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from typing import Any

from vmmlib.clock import Clock
from vmmlib.cpu.ops import In, Ins, Out, Outs
from vmmlib.devices.ata import CMD_FLUSH_CACHE, LBA28_LIMIT, REG_COMMAND, SECTOR_SIZE
from vmmlib.devices.disk import DiskBackend
from vmmlib.devices.ide import IdeController
from vmmlib.guest.ide import boot_readsect, ide_command, ide_read
from vmmlib.hw.bus import PortBus

from . import Case, Question

# --- q2: read a sector, replayed against the IDE model ---------------------------------------
OP_NS = 1_000  # every port access the driver makes takes 1 µs of virtual time
MAX_OPS = 20_000  # a driver that makes more has a wait loop that does not end
READ_NS = 20_000  # the replay's disks take 20 µs to read a sector ...
FLUSH_NS = 50_000  # ... and 50 µs to flush their cache (the "busy at start" cases)
DISK_SECTORS = 1 << 28  # every LBA28 address exists
DIGEST_BYTES = 8
#: The last sector a 28-bit command reaches: IDENTIFY's LBA28 capacity is at most 2**28 - 1
#: sectors (ATA; QEMU ide_identify_size), numbered from 0.
LBA28_LAST = LBA28_LIMIT - 1


class PatternDisk(DiskBackend):
    """A disk whose every sector says which drive and LBA it is (nothing stored)."""

    name = "pattern"
    write_cache = True

    def __init__(self, drive: int) -> None:
        super().__init__(DISK_SECTORS)
        self.drive = drive

    def sector(self, lba: int) -> bytes:
        head = f"drive {self.drive} LBA {lba:#09x} ".encode()
        fill = bytes((lba * 7 + self.drive * 101 + i) & 0xFF for i in range(SECTOR_SIZE))
        return (head + fill)[:SECTOR_SIZE]

    def _load(self, lba: int, count: int) -> bytes:
        return b"".join(self.sector(lba + i) for i in range(count))

    def _store(self, lba: int, data: bytes) -> None:
        pass  # never written by q2

    def _read_ns(self, lba: int, count: int) -> int:
        return READ_NS * count

    def _flush_ns(self) -> int:
        return FLUSH_NS


class DriverError(RuntimeError):
    """The driver did something the replay cannot run (the message says what)."""


def digest(data: object) -> object:
    """What q2 reports of the driver's return value: None, or the length, the first bytes as
    text and a short hash of bytes; the type name of anything else."""
    if data is None:
        return None
    if type(data) not in (bytes, bytearray):
        return f"not bytes: {type(data).__name__}"
    data = bytes(data)
    head = data[:22].decode("latin-1")
    return {"bytes": len(data), "starts": head,
            "sha256": hashlib.sha256(data).hexdigest()[: 2 * DIGEST_BYTES]}


def replay(program: object, busy: bool = False) -> dict:
    """Run a driver generator against a fresh IDE channel (two pattern disks), polled; return
    what the model saw and what the driver returned, as plain data."""
    if not isinstance(program, Generator):
        raise DriverError("read_sector must be a generator function (it yields In, Out and "
                          f"Ins), but calling it returned {type(program).__name__}")
    clock = Clock()
    disks = (PatternDisk(0), PatternDisk(1))
    ide = IdeController(clock, disks[0], disks[1])
    bus = PortBus("replay ports")
    for base, length, device, name in ide.port_claims():
        bus.claim(base, length, device, name)
    reads: list[list[int]] = []
    seen: dict[str, Any] = {"task_file": None, "command": None}

    def backend(event: dict) -> None:
        if event["op"] == "read":
            reads.append([event["device"], event["lba"]])

    if busy:  # a FLUSH CACHE still running when the driver starts
        bus.write(ide.cmd_base + REG_COMMAND, 1, CMD_FLUSH_CACHE)
    ide.on_backend = backend
    result: Any = None
    sent: Any = None
    for ops in range(MAX_OPS + 1):
        try:
            op = program.send(sent)
        except StopIteration as stop:
            result = stop.value
            break
        if ops == MAX_OPS:
            program.close()
            raise DriverError(f"the driver made {MAX_OPS:,} port accesses without returning: a "
                              "wait loop never saw what it waits for (before the command: BSY "
                              "clear and DRDY set; after it: BSY clear and DRQ set)")
        clock.advance(OP_NS)
        sent = _perform(bus, ide, op, seen)
    return {"task_file": seen["task_file"], "command": seen["command"], "disk_reads": reads,
            "returned": digest(result)}


def _perform(bus: PortBus, ide: IdeController, op: object, seen: dict) -> Any:
    cls = type(op)
    if cls is In:
        return bus.read(op.port, op.size)
    if cls is Out:
        if op.port == ide.cmd_base + REG_COMMAND and seen["command"] is None:
            r = ide.registers()
            seen["command"] = op.value
            seen["task_file"] = {"count": r["sector_count"], "lba_low": r["lba_low"],
                                 "lba_mid": r["lba_mid"], "lba_high": r["lba_high"],
                                 "device": r["device"]}
        bus.write(op.port, op.size, op.value)
        return None
    if cls is Ins:
        if op.addr is not None:
            raise DriverError("keep the data in your program: Ins(port, size, count) "
                              "without addr")
        return [bus.read(op.port, op.size) for _ in range(op.count)]
    if cls is Outs:
        for v in op.values:
            bus.write(op.port, op.size, v)
        return None
    raise DriverError("this check runs the driver on the IDE ports only, polled: yield "
                      f"In, Out or Ins, not {cls.__name__}")


def replayed(driver: Callable[..., Any]) -> Callable[[int, int, bool], dict]:
    """The q2 answer a check runs: ``driver(lba, drive)`` replayed (busy at start or not)."""

    def run(lba: int, drive: int, busy: bool) -> dict:
        return replay(driver(lba, drive), busy)

    run.__name__ = getattr(driver, "__name__", "read_sector")
    run.__qualname__ = run.__name__
    return run


def _reference_driver(lba: int, drive: int) -> Generator:
    return ide_read(lba, 1, drive, style="insw")


reference_read = replayed(_reference_driver)

WAIT = ("wait until the disk is ready ((status & (BSY | DRDY)) == DRDY) before writing the "
        "task file: a busy disk ignores register writes")
TASK_FILE = ("wait until (status & 0xC0) == 0x40; the task file: 1 to 0x1F2, LBA 7:0 to 0x1F3, "
             "15:8 to 0x1F4, 23:16 to 0x1F5, 0xE0 | drive << 4 | LBA 27:24 to 0x1F6; 0x20 to "
             "0x1F7; wait until BSY is clear and DRQ set; read 256 words from 0x1F0")
#: (lba, drive, busy at start, rule)
Q2_PLAN = (
    (0, 0, False, TASK_FILE), (1, 0, False, TASK_FILE), (0xFF, 0, False, TASK_FILE),
    (0x100, 0, False, TASK_FILE), (0xFFFF, 0, False, TASK_FILE), (0x10000, 0, False, TASK_FILE),
    (0x123456, 0, False, TASK_FILE), (0xFFFFFF, 0, False, TASK_FILE),
    (0x1000000, 0, False, TASK_FILE), (0x0ABCDEF1, 0, False, TASK_FILE),
    (LBA28_LAST, 0, False, TASK_FILE),
    (0, 1, False, TASK_FILE), (0x2A, 1, False, TASK_FILE), (0x1000000, 1, False, TASK_FILE),
    (LBA28_LAST, 1, False, TASK_FILE),
    (7, 0, True, WAIT), (0x5A5A5, 1, True, WAIT),
)


def read_cases() -> list[Case]:
    return [Case(f"read LBA {lba:#x} from drive {drive}"
                 + (" (a FLUSH CACHE still running)" if busy else ""), (lba, drive, busy), rule)
            for lba, drive, busy, rule in Q2_PLAN]


def read_hint(case: Case, expected: object, got: object) -> str | None:
    """Say which part of the sequence went wrong: a register, the command, the wait."""
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return None
    lba, drive, busy = case.inputs
    if got["command"] is None:
        return "write the command READ SECTORS (0x20) to 0x1F7 after the task file"
    if got["command"] != expected["command"]:
        return (f"the command is READ SECTORS, {expected['command']:#04x}, written to 0x1F7; "
                f"the disk got {got['command']:#04x}")
    want, have = expected["task_file"], got["task_file"]
    if busy and have != want:
        return WAIT
    names = {"count": "the sector count (0x1F2) is 1",
             "lba_low": "LBA 7:0 goes to 0x1F3", "lba_mid": "LBA 15:8 goes to 0x1F4",
             "lba_high": "LBA 23:16 goes to 0x1F5",
             "device": "0x1F6 gets 0xE0 | drive << 4 | (LBA >> 24) & 0x0F: bit 6 LBA mode, "
                       "bit 4 the drive, bits 3:0 LBA 27:24"}
    for key, text in names.items():
        if have[key] != want[key]:
            return f"{text} (the disk saw {have[key]:#04x}, it should be {want[key]:#04x})"
    if got["returned"] != expected["returned"]:
        return ("wait until the sector is ready — BSY clear and DRQ (bit 3) set — then read "
                "256 words (or 128 dwords) from 0x1F0 and return them as bytes, little-endian")
    return None


Q2 = Question(
    label="q2", function="read_sector", cases=read_cases, reference=reference_read,
    withholds=(ide_read, ide_command, boot_readsect), hint=read_hint,
)
