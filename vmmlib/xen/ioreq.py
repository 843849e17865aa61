"""Xen's ioreq protocol: how a trapped access becomes a request to the device model.

``ioreq_t`` is 32 bytes (xen/include/public/hvm/ioreq.h; layout derived with gcc, x86-64):

====== ====== ===== ===================================================================
offset field  type  meaning
====== ====== ===== ===================================================================
0      addr   u64   port (PIO) or guest-physical address (COPY = MMIO)
8      data   u64   the value, or (``data_is_ptr``) the guest-physical address of a buffer
16     count  u32   repetitions (REP string I/O); 1 otherwise
20     size   u32   bytes per element: 1, 2, 4, 8
24     vp_eport u32 the event channel between this vCPU and the device model
28     _pad0  u16
30     state:4 | data_is_ptr:1 | dir:1 | df:1 | pad:1   (bits 3:0, 4, 5, 6)
31     type   u8    IOREQ_TYPE_PIO 0, IOREQ_TYPE_COPY 1, PCI_CONFIG 2, ...
====== ====== ===== ===================================================================

``dir``: IOREQ_READ = 1 (device → guest), IOREQ_WRITE = 0. ``state`` walks NONE → READY (Xen
filled the slot and notified) → INPROCESS (the device model took it) → IORESP_READY (it answered
and notified) → NONE (Xen completed the instruction). The **synchronous** page has one slot per
vCPU; the vCPU is blocked until its slot is answered. The **buffered** page carries
fire-and-forget writes: a read and a write pointer and 511 slots of 8-byte ``buf_ioreq_t``
(byte 0 type; byte 1: dir bit 1, size code bits 3:2 with 0→1, 1→2, 2→4, 3→8 bytes; address in
bits 31:12 of the first dword, 20 bits; data at offset 4; an 8-byte write takes two slots).

A state that goes backwards, or one that is unknown, means the device model broke the
protocol: Xen crashes the domain (xen/common/ioreq.c ``wait_for_io``). Sources:
hardware-facts.md §4; xen/include/public/hvm/ioreq.h; xen/common/ioreq.c.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

IOREQ_READ, IOREQ_WRITE = 1, 0
STATE_IOREQ_NONE, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS, STATE_IORESP_READY = 0, 1, 2, 3
STATE_NAMES = {0: "NONE", 1: "READY", 2: "INPROCESS", 3: "IORESP_READY"}
IOREQ_TYPE_PIO, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG = 0, 1, 2
IOREQ_TYPE_TIMEOFFSET, IOREQ_TYPE_INVALIDATE = 7, 8
TYPE_NAMES = {0: "PIO", 1: "COPY", 2: "PCI_CONFIG", 7: "TIMEOFFSET", 8: "INVALIDATE"}
IOREQ_SIZE = 32
IOREQ_BUFFER_SLOT_NUM = 511
SIZES = (1, 2, 4, 8)

_IOREQ = struct.Struct("<QQIIIHBB")


class ProtocolError(Exception):
    """The slot holds something the protocol does not allow (Xen crashes the domain)."""


class Ioreq(NamedTuple):
    """One ioreq_t, decoded."""

    addr: int
    data: int
    count: int
    size: int
    vp_eport: int
    state: int
    data_is_ptr: bool
    dir: int
    df: bool
    type: int

    def encode(self) -> bytes:
        """The 32 bytes of this request, exactly as the C struct holds them."""
        flags = self.state & 0xF | self.data_is_ptr << 4 | self.dir << 5 | self.df << 6
        return _IOREQ.pack(self.addr, self.data, self.count, self.size, self.vp_eport, 0,
                           flags, self.type)

    def describe(self) -> dict[str, object]:
        """The fields as a notebook shows them."""
        return {
            "addr": self.addr, "data": self.data, "count": self.count, "size": self.size,
            "vp_eport": self.vp_eport, "state": STATE_NAMES.get(self.state, str(self.state)),
            "data_is_ptr": self.data_is_ptr, "dir": "read" if self.dir else "write",
            "df": self.df, "type": TYPE_NAMES.get(self.type, str(self.type)),
        }


def decode(raw: bytes) -> Ioreq:
    """Decode 32 bytes of an ioreq slot (any bytes decode: checking is the protocol's job)."""
    addr, data, count, size, port, _pad, flags, kind = _IOREQ.unpack(bytes(raw))
    return Ioreq(addr, data, count, size, port, flags & 0xF, bool(flags & 0x10),
                 flags >> 5 & 1, bool(flags & 0x40), kind)


def problem(req: Ioreq, guest_ram: int) -> str | None:
    """What is wrong with a request a device model takes from its slot, or None."""
    if req.size not in SIZES:
        return f"size {req.size} is not 1, 2, 4 or 8"
    if req.count == 0:
        return "a count of 0"
    if req.type not in (IOREQ_TYPE_PIO, IOREQ_TYPE_COPY):
        return f"unknown type {req.type}"
    if req.type == IOREQ_TYPE_PIO and req.addr > 0xFFFF:
        return f"port {req.addr:#x} is outside the I/O space"
    if req.type == IOREQ_TYPE_COPY and req.addr + req.size > 1 << 52:
        return f"address {req.addr:#x} is beyond the physical address space"
    if req.data_is_ptr:
        span = req.count * req.size
        first = req.data - (span - req.size if req.df else 0)
        if not (0 <= first and first + span <= guest_ram):
            return f"the buffer at {req.data:#x} (+{span}) is outside guest RAM"
    return None


class IoreqPage:
    """The synchronous ioreq page: one 32-byte slot per vCPU, in a shared page."""

    def __init__(self, page: np.ndarray) -> None:
        self.page = page

    def read(self, vcpu_id: int) -> Ioreq:
        return decode(self.page[vcpu_id * IOREQ_SIZE : (vcpu_id + 1) * IOREQ_SIZE].tobytes())

    def write(self, vcpu_id: int, req: Ioreq) -> None:
        self.page[vcpu_id * IOREQ_SIZE : (vcpu_id + 1) * IOREQ_SIZE] = np.frombuffer(
            req.encode(), np.uint8)

    def state(self, vcpu_id: int) -> int:
        return int(self.page[vcpu_id * IOREQ_SIZE + 30]) & 0xF

    def set_state(self, vcpu_id: int, state: int) -> None:
        i = vcpu_id * IOREQ_SIZE + 30
        self.page[i] = int(self.page[i]) & 0xF0 | state

    def advance(self, vcpu_id: int, expected: int, new: int) -> None:
        """Move the slot from ``expected`` to ``new`` state; ProtocolError if it is elsewhere."""
        state = self.state(vcpu_id)
        if state != expected:
            name = STATE_NAMES.get(state, f"unknown state {state}")
            raise ProtocolError(f"ioreq slot {vcpu_id} is {name}, expected "
                                f"{STATE_NAMES[expected]}")
        self.set_state(vcpu_id, new)


class BufIoreq(NamedTuple):
    """One buffered (fire-and-forget) write."""

    type: int
    size: int
    addr: int
    data: int


class BufferedIoreqPage:
    """The buffered ioreq page: read and write pointers, then 511 slots of 8 bytes."""

    def __init__(self, page: np.ndarray) -> None:
        self.page = page
        self.pointers = page[0:8].view("<u4")  # read_pointer, write_pointer (free-running)

    @property
    def read_pointer(self) -> int:
        return int(self.pointers[0])

    @property
    def write_pointer(self) -> int:
        return int(self.pointers[1])

    def _slot(self, index: int) -> slice:
        base = 8 + (index % IOREQ_BUFFER_SLOT_NUM) * 8
        return slice(base, base + 8)

    def push(self, kind: int, addr: int, size: int, data: int) -> bool:
        """Xen's ioreq_send_buffered: False (send it synchronously instead) if the ring is full
        or the write does not fit a slot (address above 20 bits)."""
        code = SIZES.index(size)
        slots = 2 if size == 8 else 1
        used = (self.write_pointer - self.read_pointer) & 0xFFFFFFFF
        if addr > 0xFFFFF or used > IOREQ_BUFFER_SLOT_NUM - slots:
            return False
        first = kind | (code << 2 | IOREQ_WRITE << 1) << 8 | addr << 12
        words = [struct.pack("<II", first, data & 0xFFFFFFFF)]
        if slots == 2:
            words.append(struct.pack("<II", first, data >> 32))
        for i, word in enumerate(words):
            self.page[self._slot(self.write_pointer + i)] = np.frombuffer(word, np.uint8)
        self.pointers[1] = (self.write_pointer + slots) & 0xFFFFFFFF  # after the slots: wmb
        return True

    def pop(self) -> BufIoreq | None:
        """What the device model does: take the next write (two slots for 8 bytes)."""
        if self.read_pointer == self.write_pointer:
            return None
        first, low = struct.unpack("<II", self.page[self._slot(self.read_pointer)].tobytes())
        size = SIZES[first >> 10 & 3]
        data, slots = low, 1
        if size == 8:
            _, high = struct.unpack("<II", self.page[self._slot(self.read_pointer + 1)].tobytes())
            data, slots = low | high << 32, 2
        self.pointers[0] = (self.read_pointer + slots) & 0xFFFFFFFF
        return BufIoreq(first & 0xFF, size, first >> 12, data)
