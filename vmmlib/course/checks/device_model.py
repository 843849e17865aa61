"""Checks for chapter 02, "The device model" (solutions/02-device-model-exercises.ipynb).

* q1 ``decode_ioreq(raw)``: the 32 bytes of an ioreq slot as its fields. Cases are requests Xen
  really sends (port I/O both ways, REP string I/O with ``data_is_ptr`` and ``df``, MMIO reads
  and writes, PCI config), in each slot state, with the boundaries of every field: port 0 and
  0xFFFC, an address above 4 GiB, 64-bit data with its top bit set, the largest REP count, and
  a seeded random part.
* q2 ``read_sector(lba, drive)``: a guest driver, as a generator, that reads one sector with
  READ SECTORS. It is replayed against the real IDE model (``vmmlib.devices.ide``) behind a
  small port bus, with two disks whose every sector is different, a backend that takes 20 µs
  per sector, and sometimes a FLUSH CACHE still running when the driver starts; the answer is
  what the model saw (the task file latched when the command arrived, the sectors its backend
  read) and a digest of what the driver returned: plain data, whatever order the driver wrote
  the registers in or how it polled. LBAs cover every byte of the address (0, 0xFF, 0x100,
  0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, and 0x0FFFFFFE, the last sector a 28-bit command
  reaches: IDENTIFY's LBA28 capacity is at most 2**28 - 1 sectors) and both drives.
* q3 ``buffered_write(read_pointer, write_pointer, addr, size, data)``: where a write into the
  VGA window lands in the buffered ioreq ring (511 slots of 8 bytes), or None when it does not
  fit. Pointers as Xen keeps them (read pointer below 511), the ring's wrap at slot 510, a ring
  that is full, one slot short of full for an 8-byte write, every size, the window's first and
  last bytes, and a seeded random part.
* q4 ``readback(device, port, dlab)``: can a register be read back, or must the model keep a
  shadow copy? Every port of both IDE channels and of COM1 and COM2, with DLAB 0 and 1.

Expected answers come from the core: ``vmmlib.xen.ioreq.decode``, the guest driver
``vmmlib.guest.ide.ide_read`` (replayed the same way), ``BufferedIoreqPage.push`` and the
devices' read-back tables, each withheld from the grading kernel; the core's unit tests pin
them to Xen's headers, the ATA rules and the 16550's register map (hardware-facts.md §4, §8,
§9). q2's replay runs in the student's kernel, like any check's call of the student's function:
what it reports is plain data, and the verdict is computed outside it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from vmmlib.clock import Clock
from vmmlib.devices.ide import IdeController
from vmmlib.devices.readback import ReadbackRow, uart_readback_table
from vmmlib.devices.uart16550 import Uart16550
from vmmlib.xen.ioreq import (
    IOREQ_READ,
    IOREQ_TYPE_COPY,
    IOREQ_TYPE_PCI_CONFIG,
    IOREQ_TYPE_PIO,
    IOREQ_WRITE,
    BufferedIoreqPage,
    Ioreq,
    decode,
)

from . import Case, Chapter, Question
from .device_model_replay import Q2, PatternDisk, replayed

SEED = 2006

# --- q1: decode an ioreq ----------------------------------------------------------------------
KEYS = ("addr", "data", "count", "size", "vp_eport", "state", "data_is_ptr", "dir", "df", "type")
FIELD_HINTS = {
    "addr": "addr is the little-endian u64 at offset 0 (all 64 bits)",
    "data": "data is the little-endian u64 at offset 8 (all 64 bits)",
    "count": "count is the u32 at offset 16; size the u32 at offset 20",
    "size": "size is the u32 at offset 20 (bytes per element); count the u32 at offset 16",
    "vp_eport": "vp_eport is the u32 at offset 24 (offsets 28-29 are padding)",
    "state": ("state is bits 3:0 of byte 30, as its name: 0 NONE, 1 READY, 2 INPROCESS, "
              "3 IORESP_READY"),
    "data_is_ptr": "data_is_ptr is bit 4 of byte 30, as a bool",
    "dir": 'dir is bit 5 of byte 30: 1 is IOREQ_READ ("read"), 0 IOREQ_WRITE ("write")',
    "df": "df is bit 6 of byte 30, as a bool (bit 7 is padding)",
    "type": 'type is byte 31, as its name: 0 "PIO", 1 "COPY", 2 "PCI_CONFIG"',
}
DECODE = "decode each field from its own bytes and bits, as the table in the question shows"
STATES = (0, 1, 2, 3)


def _pci_address(bus: int, device: int, function: int, register: int) -> int:
    """A PCI config ioreq's addr (hardware-facts.md §4.1): segment 0, bus 47:40, device
    39:35, function 34:32, register 31:0."""
    return bus << 40 | device << 35 | function << 32 | register


#: (what it is, Ioreq fields but vp_eport: addr, data, count, size, state, ptr, dir, df, type)
Q1_PLAN: tuple[tuple[str, tuple], ...] = (
    ("IN AL, 0x1F7 as Xen sends it (READY)", (0x1F7, 0, 1, 1, 1, False, IOREQ_READ, False, 0)),
    ("the same, taken by qemu-dm (INPROCESS)", (0x1F7, 0, 1, 1, 2, False, IOREQ_READ, False, 0)),
    ("the same, answered 0x50 (IORESP_READY)",
     (0x1F7, 0x50, 1, 1, 3, False, IOREQ_READ, False, 0)),
    ("the same, freed by Xen (NONE)", (0x1F7, 0x50, 1, 1, 0, False, IOREQ_READ, False, 0)),
    ("OUT 0x1F6, 0xE0 (select drive 0, LBA)",
     (0x1F6, 0xE0, 1, 1, 1, False, IOREQ_WRITE, False, 0)),
    ("OUT 0x0, AL with AL = 0 (port 0, every byte 0)",
     (0x0, 0, 1, 1, 1, False, IOREQ_WRITE, False, 0)),
    ("IN EAX, DX at port 0xFFFC", (0xFFFC, 0, 1, 4, 1, False, IOREQ_READ, False, 0)),
    ("IN EAX from PCI CONFIG_DATA, answered",
     (0xCFC, 0x12378086, 1, 4, 3, False, IOREQ_READ, False, 0)),
    ("REP INSW of a sector into the buffer at 0x100000",
     (0x1F0, 0x100000, 256, 2, 1, True, IOREQ_READ, False, 0)),
    ("REP OUTSB of 16 bytes with DF = 1, buffer ending at 0x7FFF",
     (0x3F8, 0x7FFF, 16, 1, 1, True, IOREQ_WRITE, True, 0)),
    ("REP INSB with DF = 1, answered", (0x60, 0x2000F, 16, 1, 3, True, IOREQ_READ, True, 0)),
    ("the largest REP count the model sends (65536 words)",
     (0x1F0, 0x200000, 0x10000, 2, 1, True, IOREQ_READ, False, 0)),
    ("MMIO read of a text cell at 0xB8000 (COPY)",
     (0xB8000, 0, 1, 2, 1, False, IOREQ_READ, False, 1)),
    ("MMIO write of 8 bytes at 0xA0000, every data bit set",
     (0xA0000, (1 << 64) - 1, 1, 8, 1, False, IOREQ_WRITE, False, 1)),
    ("MMIO read of the window's last byte, answered 0x80",
     (0xBFFFF, 0x80, 1, 1, 3, False, IOREQ_READ, False, 1)),
    ("MMIO read above 4 GiB (a 64-bit BAR), answered with the top bit set",
     (0x8_0000_1008, 0x8000_0000_0000_0001, 1, 8, 3, False, IOREQ_READ, False, 1)),
    ("PCI config read: bus 0, device 1, function 1, register 0x3C",
     (_pci_address(0, 1, 1, 0x3C), 0, 1, 4, 1, False, IOREQ_READ, False,
      IOREQ_TYPE_PCI_CONFIG)),
    ("PCI config write: bus 0xFF, device 31, function 7, register 0xFFC",
     (_pci_address(0xFF, 31, 7, 0xFFC), 0xFFFFFFFF, 1, 4, 1, False, IOREQ_WRITE, False,
      IOREQ_TYPE_PCI_CONFIG)),
)
VP_EPORTS = (1, 5, 4095)  # the event channel: small numbers, and the 2-level ABI's largest


def _random_requests() -> list[tuple[str, tuple]]:
    rng = random.Random(SEED + 10)
    found = []
    for _ in range(14):
        kind = rng.choice((IOREQ_TYPE_PIO, IOREQ_TYPE_COPY))
        size = rng.choice((1, 2, 4) if kind == IOREQ_TYPE_PIO else (1, 2, 4, 8))
        addr = rng.randrange(0x10000 - size) if kind == IOREQ_TYPE_PIO else rng.randrange(
            0xA0000, 0xC0000 - size)
        direction = rng.choice((IOREQ_READ, IOREQ_WRITE))
        state = rng.choice(STATES)
        ptr = kind == IOREQ_TYPE_PIO and rng.random() < 0.4
        count = rng.randrange(2, 4097) if ptr else 1
        df = ptr and rng.random() < 0.3
        if ptr:
            data = rng.randrange(0x100000, 0x800000)
        elif direction == IOREQ_WRITE or state in (2, 3):
            data = rng.randrange(1 << (8 * size))
        else:
            data = 0
        found.append(("a random request", (addr, data, count, size, state, ptr, direction, df,
                                           kind)))
    return found


def ioreq_cases() -> list[Case]:
    cases = []
    for n, (what, fields) in enumerate(Q1_PLAN + tuple(_random_requests())):
        addr, data, count, size, state, ptr, direction, df, kind = fields
        port = VP_EPORTS[n % len(VP_EPORTS)]
        raw = Ioreq(addr, data, count, size, port, state, ptr, direction, df, kind).encode()
        cases.append(Case(f"{raw.hex()} ({what})", (raw.hex(),), DECODE))
    return cases


def ioreq_arguments(hex_bytes: str) -> tuple[bytes]:
    return (bytes.fromhex(hex_bytes),)


def reference_decode(raw: bytes) -> dict:
    return decode(raw).describe()


def ioreq_hint(case: Case, expected: object, got: object) -> str | None:
    """Name the first field the answer got wrong (or typed wrong)."""
    if not isinstance(got, dict) or sorted(got) != sorted(KEYS):
        return f"return a dict with exactly the keys {list(KEYS)}"
    assert isinstance(expected, dict)
    for key in KEYS:
        if got[key] != expected[key]:
            return FIELD_HINTS[key]
        if type(got[key]) is not type(expected[key]):
            return (f"{key!r} must be a {type(expected[key]).__name__} "
                    f"({expected[key]!r}), not {got[key]!r}")
    return None


Q1 = Question(
    label="q1", function="decode_ioreq", cases=ioreq_cases, build=ioreq_arguments,
    reference=reference_decode, withholds=(decode, Ioreq.describe), hint=ioreq_hint,
)

# --- q3: the buffered ioreq ring --------------------------------------------------------------
SLOTS = 511
RING = "the ring has 511 slots: a pointer p names slot p % 511, after slot 510 comes slot 0"
FULL = ("a write of n slots fits only if (write_pointer - read_pointer) + n <= 511; "
        "otherwise return None (Xen sends it synchronously)")
EIGHT = ("an 8-byte write takes two slots: the same low word in both, data bits 31:0 in the "
         "first, bits 63:32 in the second")
LAYOUT = ("bits 7:0 type (1 = COPY), bit 9 dir (0 = write), bits 11:10 the size code "
          "(0, 1, 2, 3 for 1, 2, 4, 8 bytes), bits 31:12 the address, bits 63:32 the data")

#: (read pointer, write pointer, addr, size, data, rule)
Q3_PLAN = (
    (0, 0, 0xB8000, 2, 0x0748, LAYOUT),
    (0, 0, 0xA0000, 1, 0x00, LAYOUT),
    (0, 0, 0xBFFFF, 1, 0xFF, LAYOUT),
    (3, 10, 0xB8F9E, 2, 0x1F41, LAYOUT),
    (0, 0, 0xA0008, 4, 0xDEADBEEF, LAYOUT),
    (0, 0, 0xA0000, 8, 0x0102030405060708, EIGHT),
    (5, 5, 0xBFFF8, 8, 0xFFFFFFFF00000000, EIGHT),
    (0, 1, 0xA0010, 8, 0x00000000FFFFFFFF, EIGHT),
    (100, 510, 0xB8000, 2, 0x0741, RING),
    (200, 511, 0xB8002, 2, 0x0742, RING),
    (300, 509, 0xA0000, 8, 0x1111111122222222, RING),
    (400, 510, 0xA0008, 8, 0x3333333344444444, RING),
    (510, 1000, 0xB8004, 2, 0x0743, RING),
    (0, 510, 0xB8006, 2, 0x0744, FULL),
    (0, 511, 0xB8008, 2, 0x0745, FULL),
    (0, 509, 0xA0000, 8, 0x55, FULL),
    (0, 510, 0xA0000, 8, 0x66, FULL),
    (7, 518, 0xA0000, 1, 0x77, FULL),
    (7, 517, 0xA0000, 1, 0x77, FULL),
    (510, 1020, 0xA0000, 8, 0x88, FULL),
    (510, 1019, 0xA0000, 8, 0x99, FULL),
    (42, 42, 0xA0000, 8, 0, EIGHT),
)


def _random_writes() -> list[tuple]:
    rng = random.Random(SEED + 30)
    found = []
    for _ in range(12):
        read = rng.randrange(SLOTS)
        write = read + rng.choice((rng.randrange(SLOTS + 1), SLOTS - 1, SLOTS, SLOTS - 2))
        size = rng.choice((1, 2, 4, 8))
        addr = rng.randrange(0xA0000, 0xC0000 - size + 1)
        found.append((read, write, addr, size, rng.randrange(1 << (8 * size)), RING))
    return found


def ring_cases() -> list[Case]:
    return [Case(f"pointers read {r}, write {w}; a {size}-byte write of {data:#x} at {addr:#x}",
                 (r, w, addr, size, data), rule)
            for r, w, addr, size, data, rule in Q3_PLAN + tuple(_random_writes())]


def reference_ring(read_pointer: int, write_pointer: int, addr: int, size: int,
                   data: int) -> dict | None:
    page = np.zeros(4096, np.uint8)
    ring = BufferedIoreqPage(page)
    ring.pointers[0], ring.pointers[1] = read_pointer, write_pointer
    if not ring.push(IOREQ_TYPE_COPY, addr, size, data):
        return None
    slots = []
    for pointer in range(write_pointer, ring.write_pointer):
        index = pointer % SLOTS
        raw = bytes(page[8 + 8 * index : 16 + 8 * index])
        slots.append([index, int.from_bytes(raw, "little")])
    return {"slots": slots, "write_pointer": ring.write_pointer}


def ring_hint(case: Case, expected: object, got: object) -> str | None:
    if expected is None and got is not None:
        return FULL
    if expected is not None and got is None:
        return FULL
    if not isinstance(got, dict) or sorted(got) != ["slots", "write_pointer"]:
        return 'return None, or a dict with the keys "slots" and "write_pointer"'
    assert isinstance(expected, dict)
    if got["write_pointer"] != expected["write_pointer"]:
        return "the new write pointer is the old one plus the slots used (1, or 2 for 8 bytes)"
    if [s[0] for s in got["slots"] if isinstance(s, list) and s] != [
            s[0] for s in expected["slots"]]:
        return RING
    return None


Q3 = Question(
    label="q3", function="buffered_write", cases=ring_cases, reference=reference_ring,
    withholds=(BufferedIoreqPage.push,), hint=ring_hint,
)

# --- q4: read back, or shadow? ----------------------------------------------------------------
READBACK = ("a register is 'readable' if a read at its address returns what was written; "
            "'shadow' if what a write sets can never be read back (the model must keep it); "
            "'nothing' if a write there has no effect to keep")
DLAB = "with DLAB = 1 offsets 0 and 1 are the divisor latch (DLL, DLM); other offsets ignore DLAB"
CHANNELS = (("primary", 0x1F0, 0x3F6), ("secondary", 0x170, 0x376))
UARTS = (("COM1", 0x3F8), ("COM2", 0x2F8))


def readback_cases() -> list[Case]:
    cases = []
    for channel, base, ctrl in CHANNELS:
        for port in [*range(base, base + 8), ctrl]:
            cases.append(Case(f"IDE {channel}, port {port:#x}", ("ide", port, 0), READBACK))
    for name, base in UARTS:
        for dlab in (0, 1):
            for port in range(base, base + 8):
                rule = DLAB if port - base < 2 or dlab else READBACK
                cases.append(Case(f"{name}, port {port:#x}, DLAB {dlab}", ("uart", port, dlab),
                                  rule))
    return cases


def _row(device: str, port: int, dlab: int) -> ReadbackRow:
    """The read-back row of the device's register at ``port`` (with DLAB, for the UART)."""
    if device == "ide":
        for channel, base, ctrl in CHANNELS:
            if base <= port < base + 8 or port == ctrl:
                ide = IdeController(Clock(), PatternDisk(0), channel=channel)
                return next(r for r in ide.readback_table() if r.port == port)
    for _, base in UARTS:
        if base <= port < base + 8:
            rows = [r for r in uart_readback_table(Uart16550(Clock()), base) if r.port == port]
            if len(rows) > 1:  # offsets 0 and 1: one row per DLAB setting
                rows = [r for r in rows if f"DLAB={dlab}" in r.read]
            return rows[0]
    raise ValueError(f"no {device} register at port {port:#x}")


def reference_readback(device: str, port: int, dlab: int) -> str:
    row = _row(device, port, dlab)
    return "readable" if row.readable else ("shadow" if row.shadow else "nothing")


def readback_hint(case: Case, expected: object, got: object) -> str | None:
    """Name the registers at the address: what a read there returns, what a write sets."""
    if got not in ("readable", "shadow", "nothing"):
        return 'return "readable", "shadow" or "nothing"'
    row = _row(*case.inputs)
    return (f"at {row.port:#x} a read returns {row.read} and a write sets {row.write}. "
            + case.rule)


Q4 = Question(
    label="q4", function="readback", cases=readback_cases, reference=reference_readback,
    withholds=(IdeController.readback_table, uart_readback_table), hint=readback_hint,
)

CHAPTER = Chapter(__name__, (Q1, Q2, Q3, Q4))

check_decode_ioreq = Q1.check


def check_read_sector(driver: Callable[..., Any]) -> None:
    """q2's check cell: the driver is replayed against the IDE model on each case."""
    Q2.check(replayed(driver))


check_buffered_write = Q3.check
check_readback = Q4.check
