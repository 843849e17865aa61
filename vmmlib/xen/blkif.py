"""The Xen block interface (blkif): what a block front end puts in the ring, and the answer.

Layouts and constants from ``xen/include/public/io/blkif.h`` (xen-project/xen fab1d32c); the
x86-64 sizes and offsets are derived by compiling the structs with gcc 12:

``struct blkif_request`` (112 bytes): operation u8 @0, nr_segments u8 @1, handle u16 @2,
(4 bytes padding), id u64 @8, sector_number u64 @16, seg[11] @24, each segment 8 bytes
{gref u32 @0, first_sect u8 @4, last_sect u8 @5, 2 bytes padding}.
``struct blkif_response`` (16 bytes): id u64 @0, operation u8 @8, (padding), status i16 @10.
The ring entry is their union: 112 bytes, so a one-page ring has 32 slots.

A segment names one granted 4 KiB frame and an *inclusive* range of 512-byte sectors in it,
first_sect … last_sect, each 0 … 7. Sector numbers are always in 512-byte units.

The checks a back end makes follow Linux blkback (torvalds/linux bb642e83,
drivers/block/xen-blkback/blkback.c: ``__do_block_io_op``, ``dispatch_rw_block_io``,
``dispatch_other_io``; and ``xen_vbd_translate`` in xenbus.c): a bad request is answered
``BLKIF_RSP_ERROR`` with its ``id`` echoed; an operation the back end does not implement is
answered ``BLKIF_RSP_EOPNOTSUPP``. Nothing here raises on a request's *contents*: any 112
bytes decode, and the validator says what is wrong.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import ConfigError
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from .ring import ring_size

BLKIF_OP_READ = 0
BLKIF_OP_WRITE = 1
BLKIF_OP_WRITE_BARRIER = 2
BLKIF_OP_FLUSH_DISKCACHE = 3
BLKIF_OP_RESERVED_1 = 4
BLKIF_OP_DISCARD = 5
BLKIF_OP_INDIRECT = 6

BLKIF_RSP_EOPNOTSUPP = -2
BLKIF_RSP_ERROR = -1
BLKIF_RSP_OKAY = 0

BLKIF_MAX_SEGMENTS_PER_REQUEST = 11
BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8
SECTOR_SHIFT = 9
SECTOR_SIZE = 1 << SECTOR_SHIFT  # 512: the unit of sector_number, first_sect, last_sect
SECTORS_PER_PAGE = PAGE_SIZE >> SECTOR_SHIFT  # 8: sectors 0 … 7 in a frame

#: what this model's back end implements (it advertises no feature-barrier,
#: feature-flush-cache, feature-discard or feature-max-indirect-segments in xenstore)
SUPPORTED_OPERATIONS = frozenset({BLKIF_OP_READ, BLKIF_OP_WRITE})

_HEAD = struct.Struct("<BBH4xQQ")  # operation, nr_segments, handle, (pad), id, sector_number
_SEG = struct.Struct("<IBB2x")  # gref, first_sect, last_sect, (pad)
_RSP = struct.Struct("<QBxh4x")  # id, operation, (pad), status, (pad)
SEGMENT_SIZE = _SEG.size  # 8
REQUEST_SIZE = _HEAD.size + BLKIF_MAX_SEGMENTS_PER_REQUEST * SEGMENT_SIZE  # 112
RESPONSE_SIZE = _RSP.size  # 16
RING_ENTRY_SIZE = max(REQUEST_SIZE, RESPONSE_SIZE)  # union blkif_sring_entry: 112
BLKIF_RING_SIZE = ring_size(PAGE_SIZE, RING_ENTRY_SIZE)  # __CONST_RING_SIZE(blkif, 4096): 32


class Segment(NamedTuple):
    """``struct blkif_request_segment``: a granted frame and an inclusive sector range."""

    gref: int
    first_sect: int
    last_sect: int


EMPTY_SEGMENT = Segment(0, 0, 0)


class Request(NamedTuple):
    """``struct blkif_request`` as decoded: every field as the bytes say, all 11 segment
    slots (only the first ``nr_segments`` mean anything, if nr_segments is sane)."""

    operation: int
    nr_segments: int
    handle: int
    id: int
    sector_number: int
    seg: tuple[Segment, ...]

    def used_segments(self) -> tuple[Segment, ...]:
        """The segments nr_segments names (at most the 11 the struct holds)."""
        return self.seg[: self.nr_segments]

    def nr_sectors(self) -> int:
        """Sectors the used segments move (meaningful once the request is valid)."""
        return sum(s.last_sect - s.first_sect + 1 for s in self.used_segments())


class Response(NamedTuple):
    """``struct blkif_response``: the request's id and operation echoed, and a status."""

    id: int
    operation: int
    status: int


def _field(value: int, bits: int, what: str, signed: bool = False) -> int:
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if value.__class__ is not int or not low <= value <= high:
        raise ConfigError(f"{what} is a {'signed' if signed else 'unsigned'} {bits}-bit "
                          f"field, not {value!r}")
    return value


def make_request(
    operation: int, id: int, sector_number: int, segments: list[Segment] | tuple[Segment, ...],
    handle: int = 0,
) -> Request:
    """A request as a front end builds it: nr_segments = len(segments), the rest zero."""
    segments = tuple(Segment(*s) for s in segments)
    if len(segments) > BLKIF_MAX_SEGMENTS_PER_REQUEST:
        raise ConfigError(f"a request holds at most {BLKIF_MAX_SEGMENTS_PER_REQUEST} "
                          f"segments, not {len(segments)}")
    seg = segments + (EMPTY_SEGMENT,) * (BLKIF_MAX_SEGMENTS_PER_REQUEST - len(segments))
    return Request(operation, len(segments), handle, id, sector_number, seg)


def encode_request(req: Request) -> bytes:
    """The 112 bytes of ``req`` in the ring's layout (padding zero)."""
    if not isinstance(req, Request) or len(req.seg) != BLKIF_MAX_SEGMENTS_PER_REQUEST:
        raise ConfigError("encode a Request with its 11 segment slots (see make_request)")
    out = [_HEAD.pack(_field(req.operation, 8, "operation"),
                      _field(req.nr_segments, 8, "nr_segments"), _field(req.handle, 16, "handle"),
                      _field(req.id, 64, "id"), _field(req.sector_number, 64, "sector_number"))]
    for s in req.seg:
        out.append(_SEG.pack(_field(s.gref, 32, "gref"), _field(s.first_sect, 8, "first_sect"),
                             _field(s.last_sect, 8, "last_sect")))
    return b"".join(out)


def decode_request(raw: bytes) -> Request:
    """Decode the first 112 bytes of a ring slot: any bytes give a Request (never raises
    on content), exactly as a back end's private copy of the slot reads."""
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < REQUEST_SIZE:
        raise ConfigError(f"a blkif request is {REQUEST_SIZE} bytes")
    op, nseg, handle, rid, sector = _HEAD.unpack_from(raw, 0)
    seg = tuple(Segment(*_SEG.unpack_from(raw, _HEAD.size + i * SEGMENT_SIZE))
                for i in range(BLKIF_MAX_SEGMENTS_PER_REQUEST))
    return Request(op, nseg, handle, rid, sector, seg)


def encode_response(rsp: Response) -> bytes:
    """The 16 bytes of ``rsp`` (padding zero)."""
    return _RSP.pack(_field(rsp.id, 64, "id"), _field(rsp.operation, 8, "operation"),
                     _field(rsp.status, 16, "status", signed=True))


def decode_response(raw: bytes) -> Response:
    """Decode the first 16 bytes of a ring slot as a response (never raises on content)."""
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < RESPONSE_SIZE:
        raise ConfigError(f"a blkif response is {RESPONSE_SIZE} bytes")
    return Response(*_RSP.unpack_from(raw, 0))


def request_problems(
    req: Request, disk_sectors: int | None = None, read_only: bool = False,
) -> list[str]:
    """What is wrong with a (decoded, private) request, in the order blkback checks; an
    empty list means it may be served. Never raises on the request's contents.

    * an operation this back end does not implement (answered EOPNOTSUPP);
    * nr_segments 0 or more than 11;
    * a segment with last_sect > 7 or first_sect > last_sect;
    * with ``disk_sectors``: sectors past the end of the disk (or a 64-bit wrap);
    * with ``read_only``: a write to a read-only disk.
    """
    if req.operation not in SUPPORTED_OPERATIONS:
        return [f"operation {req.operation} is not supported"]
    nseg = req.nr_segments
    if nseg == 0 or nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST:
        return [f"bad number of segments: {nseg} (1 … {BLKIF_MAX_SEGMENTS_PER_REQUEST})"]
    problems = []
    for i, s in enumerate(req.used_segments()):
        if s.last_sect >= SECTORS_PER_PAGE:
            problems.append(f"segment {i}: last_sect {s.last_sect} is beyond sector "
                            f"{SECTORS_PER_PAGE - 1} of a 4 KiB page")
        if s.last_sect < s.first_sect:
            problems.append(f"segment {i}: first_sect {s.first_sect} > last_sect {s.last_sect}")
    if problems:
        return problems
    if read_only and req.operation == BLKIF_OP_WRITE:
        return ["write to a read-only disk"]
    end = req.sector_number + req.nr_sectors()
    if end >= 1 << 64:
        return [f"sectors {req.sector_number:#x} + {req.nr_sectors()} wrap past 2**64"]
    if disk_sectors is not None and end > disk_sectors:
        return [f"sectors {req.sector_number} … {end - 1} are beyond the disk's "
                f"{disk_sectors} sectors"]
    return []


def error_status(req: Request) -> int:
    """The status a refused request gets: EOPNOTSUPP for an operation the back end does not
    implement (blkback's dispatch_other_io), ERROR for anything else."""
    if req.operation not in SUPPORTED_OPERATIONS:
        return BLKIF_RSP_EOPNOTSUPP
    return BLKIF_RSP_ERROR


class BufferSegment(NamedTuple):
    """One page of an I/O buffer as a segment will name it: the guest frame to grant, the
    inclusive sector range in it, and whether the grant is read-only."""

    gfn: int
    first_sect: int
    last_sect: int
    readonly: bool


def segments_for_buffer(gpa: int, length: int, operation: int) -> list[BufferSegment]:
    """The segments for ``length`` bytes at guest-physical ``gpa``, page by page: first/last
    sector of the buffer's part of each page; a disk WRITE only needs the back end to read
    the page (a read-only grant), a disk READ needs it writable.

    (Linux blkfront grants every page writable when it uses persistent grants, blkif.h note
    (8); this is the least-privilege choice the grant flags allow.)
    """
    if operation not in (BLKIF_OP_READ, BLKIF_OP_WRITE):
        raise ConfigError(f"a buffer is read (0) or written (1), not operation {operation!r}")
    for what, value in (("address", gpa), ("length", length)):
        if value.__class__ is not int or value < 0 or value % SECTOR_SIZE:
            raise ConfigError(f"the buffer's {what} must be a non-negative multiple of "
                              f"{SECTOR_SIZE}, not {value!r}")
    if length == 0:
        raise ConfigError("an I/O buffer has at least one sector")
    segments = []
    while length:
        offset = gpa & PAGE_MASK
        n = min(length, PAGE_SIZE - offset)
        segments.append(BufferSegment(gpa >> PAGE_SHIFT, offset >> SECTOR_SHIFT,
                                      (offset + n - 1) >> SECTOR_SHIFT,
                                      operation == BLKIF_OP_WRITE))
        gpa, length = gpa + n, length - n
    if len(segments) > BLKIF_MAX_SEGMENTS_PER_REQUEST:
        raise ConfigError(f"the buffer spans {len(segments)} pages; one request carries at "
                          f"most {BLKIF_MAX_SEGMENTS_PER_REQUEST}: split it")
    return segments
