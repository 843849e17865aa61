"""The block interface, pinned to ``xen/include/public/io/blkif.h`` and Linux blkback.

Sources: xen-project/xen fab1d32c ``xen/include/public/io/blkif.h`` (BLKIF_OP_*, BLKIF_RSP_*,
BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, the 512-byte sector note,
the structs); torvalds/linux bb642e83 ``drivers/block/xen-blkback/blkback.c``
(``dispatch_rw_block_io``: nseg 0 or > 11, last_sect >= 8 or < first_sect → BLKIF_RSP_ERROR;
``dispatch_other_io``: unknown operation → BLKIF_RSP_EOPNOTSUPP; ``xen_vbd_translate``: write
to a read-only vbd, sector range wrapping or past the end → error). Sizes and offsets derived
with gcc 12 on x86-64: request 112 bytes (operation 0, nr_segments 1, handle 2, id 8,
sector_number 16, seg 24, segment 8 bytes: gref 0, first_sect 4, last_sect 5), response 16
bytes (id 0, operation 8, status 10), union entry 112, (4096 - 64) / 112 = 36 → 32 slots.
"""

from __future__ import annotations

import random

import pytest

from vmmlib import ConfigError
from vmmlib.xen import blkif as B
from vmmlib.xen.blkif import (
    Request,
    Response,
    Segment,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_status,
    make_request,
    request_problems,
    segments_for_buffer,
)


def test_constants_from_the_header():
    assert (B.BLKIF_OP_READ, B.BLKIF_OP_WRITE, B.BLKIF_OP_WRITE_BARRIER,
            B.BLKIF_OP_FLUSH_DISKCACHE, B.BLKIF_OP_RESERVED_1, B.BLKIF_OP_DISCARD,
            B.BLKIF_OP_INDIRECT) == (0, 1, 2, 3, 4, 5, 6)
    assert (B.BLKIF_RSP_OKAY, B.BLKIF_RSP_ERROR, B.BLKIF_RSP_EOPNOTSUPP) == (0, -1, -2)
    assert B.BLKIF_MAX_SEGMENTS_PER_REQUEST == 11
    assert B.BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST == 8
    assert (B.SECTOR_SIZE, B.SECTORS_PER_PAGE) == (512, 8)


def test_sizes_derived_with_gcc():
    assert (B.REQUEST_SIZE, B.RESPONSE_SIZE, B.SEGMENT_SIZE) == (112, 16, 8)
    assert B.RING_ENTRY_SIZE == 112 and B.BLKIF_RING_SIZE == 32
    assert B.BLKIF_MAX_SEGMENTS_PER_REQUEST * 4096 == 44 * 1024  # most a request moves


def test_request_bytes_sit_at_the_struct_offsets():
    segs = [Segment(0xA0A1A2A3 + i, i % 8, 7) for i in range(11)]
    r = make_request(B.BLKIF_OP_WRITE, 0x0102030405060708, 0x1112131415161718, segs, 0xBEEF)
    raw = encode_request(r)
    expect = bytearray(112)
    expect[0], expect[1] = 1, 11
    expect[2:4] = (0xBEEF).to_bytes(2, "little")
    expect[8:16] = (0x0102030405060708).to_bytes(8, "little")
    expect[16:24] = (0x1112131415161718).to_bytes(8, "little")
    for i, s in enumerate(segs):
        at = 24 + 8 * i
        expect[at : at + 4] = s.gref.to_bytes(4, "little")
        expect[at + 4], expect[at + 5] = s.first_sect, s.last_sect
    assert raw == bytes(expect)  # padding at 4..7 and in each segment is zero


def test_response_bytes_sit_at_the_struct_offsets():
    raw = encode_response(Response(0x8877665544332211, B.BLKIF_OP_READ, B.BLKIF_RSP_ERROR))
    assert raw == bytes.fromhex("1122334455667788 00 00 ffff 00000000")
    assert decode_response(raw) == Response(0x8877665544332211, 0, -1)
    assert decode_response(encode_response(Response(5, 1, -2))).status == -2


def test_round_trip_and_any_bytes_decode():
    r = make_request(B.BLKIF_OP_READ, 42, 100, [Segment(8, 0, 7), Segment(9, 2, 3)])
    assert decode_request(encode_request(r)) == r
    assert r.nr_segments == 2 and len(r.seg) == 11 and r.seg[2] == B.EMPTY_SEGMENT
    rng = random.Random(10)
    for _ in range(300):
        raw = bytes(rng.randrange(256) for _ in range(112))
        got = decode_request(raw)
        assert encode_request(got)[:4] == raw[:4]  # padding aside, bytes survive
        request_problems(got, disk_sectors=rng.randrange(1 << 20))  # never raises
    assert decode_request(bytes(200)).nr_segments == 0  # a whole slot: first 112 bytes
    with pytest.raises(ConfigError):
        decode_request(bytes(111))
    with pytest.raises(ConfigError):
        decode_response(bytes(15))


@pytest.mark.parametrize("field,value", [("operation", 256), ("id", -1), ("id", 2**64),
                                         ("handle", 1 << 16), ("sector_number", 1.0)])
def test_fields_that_cannot_exist_are_config_errors(field, value):
    r = make_request(0, 1, 0, [Segment(8, 0, 7)])._replace(**{field: value})
    with pytest.raises(ConfigError):
        encode_request(r)


def test_segment_fields_and_counts_are_checked_when_encoding():
    with pytest.raises(ConfigError):
        encode_request(make_request(0, 1, 0, [Segment(2**32, 0, 7)]))
    with pytest.raises(ConfigError):
        make_request(0, 1, 0, [Segment(8, 0, 7)] * 12)
    with pytest.raises(ConfigError):
        encode_response(Response(1, 0, 1 << 15))


def good(**changes) -> Request:
    r = make_request(B.BLKIF_OP_READ, 7, 16, [Segment(8, 0, 7), Segment(9, 0, 3)])
    return r._replace(**changes)


def test_a_good_request_has_no_problems():
    assert request_problems(good()) == []
    assert request_problems(good(), disk_sectors=16 + 12) == []  # ends exactly at the end
    assert request_problems(good(operation=B.BLKIF_OP_WRITE), disk_sectors=1000) == []
    assert good().nr_sectors() == 12


@pytest.mark.parametrize("request_,words", [
    (good(nr_segments=0), "bad number of segments: 0"),
    (good(nr_segments=12), "bad number of segments: 12"),
    (good(nr_segments=255), "bad number of segments: 255"),
    (good(seg=(Segment(8, 0, 8),) + good().seg[1:]), "last_sect 8"),
    (good(seg=(Segment(8, 5, 4),) + good().seg[1:]), "first_sect 5 > last_sect 4"),
    (good(seg=(Segment(8, 9, 200),) + good().seg[1:]), "last_sect 200"),
    (good(operation=9), "operation 9 is not supported"),
    (good(operation=B.BLKIF_OP_WRITE_BARRIER), "not supported"),
    (good(operation=B.BLKIF_OP_INDIRECT), "not supported"),
])
def test_each_malformed_request_is_named(request_, words):
    problems = request_problems(request_)
    assert problems and words in " ".join(problems)


def test_disk_bounds_read_only_and_wrap():
    assert "beyond the disk" in request_problems(good(), disk_sectors=27)[0]
    assert "beyond the disk" in request_problems(good(sector_number=2**40), 1 << 20)[0]
    assert "wrap" in request_problems(good(sector_number=2**64 - 4))[0]
    assert request_problems(good(operation=B.BLKIF_OP_WRITE), read_only=True) == [
        "write to a read-only disk"]
    assert request_problems(good(), read_only=True) == []


def test_only_the_used_segments_count():
    junk = (Segment(0xFFFFFFFF, 200, 3),) * 9
    assert request_problems(good(seg=good().seg[:2] + junk)) == []


def test_error_status_says_unsupported_or_error():
    assert error_status(good(operation=9)) == B.BLKIF_RSP_EOPNOTSUPP
    assert error_status(good(operation=B.BLKIF_OP_DISCARD)) == B.BLKIF_RSP_EOPNOTSUPP
    assert error_status(good(nr_segments=0)) == B.BLKIF_RSP_ERROR
    assert error_status(good(operation=B.BLKIF_OP_WRITE)) == B.BLKIF_RSP_ERROR


@pytest.mark.parametrize("gpa,length,expect", [
    (0x5000, 4096, [(5, 0, 7)]),  # one whole page
    (0x5200, 1024, [(5, 1, 2)]),  # inside a page: sectors 1 and 2
    (0x5E00, 1024, [(5, 7, 7), (6, 0, 0)]),  # straddling two pages
    (0x5000, 512, [(5, 0, 0)]),
    (0x5E00, 512, [(5, 7, 7)]),
    (0x5400, 3 * 4096, [(5, 2, 7), (6, 0, 7), (7, 0, 7), (8, 0, 1)]),
])
def test_segments_for_a_buffer(gpa, length, expect):
    for op, readonly in ((B.BLKIF_OP_WRITE, True), (B.BLKIF_OP_READ, False)):
        got = segments_for_buffer(gpa, length, op)
        assert [(s.gfn, s.first_sect, s.last_sect) for s in got] == expect
        assert all(s.readonly is readonly for s in got)  # a disk write: the back end reads


def test_segments_cover_the_buffer_exactly():
    rng = random.Random(4)
    for _ in range(500):
        gpa, length = rng.randrange(1 << 16) * 512, rng.randrange(1, 80) * 512
        try:
            segs = segments_for_buffer(gpa, length, B.BLKIF_OP_READ)
        except ConfigError:
            assert ((gpa & 4095) + length + 4095) // 4096 > 11
            continue
        covered = [(s.gfn << 12) + (k << 9) for s in segs
                   for k in range(s.first_sect, s.last_sect + 1)]
        assert covered == list(range(gpa, gpa + length, 512))
        assert all(0 <= s.first_sect <= s.last_sect <= 7 for s in segs)


def test_buffer_limits():
    assert len(segments_for_buffer(0x10000, 44 * 1024, B.BLKIF_OP_READ)) == 11
    for gpa, length, op in ((0x10200, 44 * 1024, 0), (0x10100, 512, 0), (0x10000, 700, 0),
                            (0x10000, 0, 0), (-512, 512, 0), (0x10000, 512, 2),
                            (0x10000, 512.0, 0)):
        with pytest.raises(ConfigError):
            segments_for_buffer(gpa, length, op)
