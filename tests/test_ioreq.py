"""Xen's ioreq protocol (vmmlib/xen/ioreq.py): the 32-byte ioreq_t, the state machine, the
buffered ring. Layouts: hardware-facts.md §4.1-4.2 (xen/include/public/hvm/ioreq.h), the bit
positions derived by compiling the header's structs with gcc on x86-64."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from vmmlib.xen.ioreq import (
    IOREQ_BUFFER_SLOT_NUM,
    IOREQ_READ,
    IOREQ_TYPE_COPY,
    IOREQ_TYPE_PIO,
    IOREQ_WRITE,
    STATE_IOREQ_INPROCESS,
    STATE_IOREQ_NONE,
    STATE_IOREQ_READY,
    STATE_IORESP_READY,
    BufferedIoreqPage,
    Ioreq,
    IoreqPage,
    ProtocolError,
    decode,
    problem,
)


def req(**changes) -> Ioreq:
    base = Ioreq(addr=0x1F7, data=0, count=1, size=1, vp_eport=3, state=STATE_IOREQ_READY,
                 data_is_ptr=False, dir=IOREQ_READ, df=False, type=IOREQ_TYPE_PIO)
    return base._replace(**changes)


def test_constants_are_xens():
    # xen/include/public/hvm/ioreq.h
    assert (IOREQ_READ, IOREQ_WRITE) == (1, 0)
    assert (STATE_IOREQ_NONE, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS,
            STATE_IORESP_READY) == (0, 1, 2, 3)
    assert (IOREQ_TYPE_PIO, IOREQ_TYPE_COPY) == (0, 1)
    assert IOREQ_BUFFER_SLOT_NUM == 511


def test_ioreq_is_32_bytes_with_the_fields_at_their_offsets():
    raw = req(addr=0x1122334455667788, data=0x99AABBCCDDEEFF00, count=0x10203040,
              size=4, vp_eport=0x55667788, type=IOREQ_TYPE_COPY).encode()
    assert len(raw) == 32
    addr, data, count, size, port = struct.unpack_from("<QQIII", raw)
    assert (addr, data, count, size, port) == (
        0x1122334455667788, 0x99AABBCCDDEEFF00, 0x10203040, 4, 0x55667788)
    assert raw[28:30] == b"\0\0"  # _pad0
    assert raw[31] == IOREQ_TYPE_COPY


@pytest.mark.parametrize("field, value, byte30", [
    ("state", 0xF, 0x0F),  # bits 3:0
    ("data_is_ptr", True, 0x10),  # bit 4
    ("dir", 1, 0x20),  # bit 5
    ("df", True, 0x40),  # bit 6
])
def test_the_bit_field_byte_has_state_ptr_dir_df_where_gcc_puts_them(field, value, byte30):
    blank = req(state=0, dir=0)
    assert blank.encode()[30] == 0
    assert blank._replace(**{field: value}).encode()[30] == byte30


def test_decode_is_the_inverse_of_encode():
    for r in (req(), req(data_is_ptr=True, df=True, count=256, size=2, data=0x10000),
              req(type=IOREQ_TYPE_COPY, addr=0xB8000, dir=IOREQ_WRITE, size=8, data=2**64 - 1)):
        assert decode(r.encode()) == r


@pytest.mark.parametrize("changes, words", [
    ({"size": 3}, "size 3"),
    ({"size": 16}, "size 16"),
    ({"count": 0}, "count of 0"),
    ({"type": 5}, "unknown type"),
    ({"addr": 0x10000}, "outside the I/O space"),
    ({"data_is_ptr": True, "data": 256 * 1024 * 1024 - 1, "count": 2, "size": 2}, "outside"),
    ({"data_is_ptr": True, "data": 0, "count": 2, "size": 2, "df": True}, "outside"),
])
def test_a_device_model_refuses_requests_no_device_can_take(changes, words):
    assert words in problem(req(**changes), 256 * 1024 * 1024)


def test_a_good_request_has_no_problem():
    assert problem(req(), 1 << 20) is None
    assert problem(req(data_is_ptr=True, data=0x1000, count=256, size=2), 1 << 20) is None


def test_the_slot_state_machine_refuses_to_go_anywhere_else():
    page = IoreqPage(np.zeros(4096, np.uint8))
    page.write(0, req(state=STATE_IOREQ_NONE))
    page.advance(0, STATE_IOREQ_NONE, STATE_IOREQ_READY)
    page.advance(0, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS)
    with pytest.raises(ProtocolError, match="INPROCESS, expected READY"):
        page.advance(0, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS)
    page.set_state(0, 9)
    with pytest.raises(ProtocolError, match="unknown state 9"):
        page.advance(0, STATE_IORESP_READY, STATE_IOREQ_NONE)


def test_one_slot_per_vcpu_indexed_by_vcpu_id():
    page = IoreqPage(np.zeros(4096, np.uint8))
    page.write(2, req(addr=0x3F8))
    assert page.read(2).addr == 0x3F8 and page.page[64] == 0xF8  # slot 2 at offset 64
    assert page.read(0).addr == 0


def test_buffered_slots_are_eight_bytes_with_size_code_and_a_20_bit_address():
    ring = BufferedIoreqPage(np.zeros(4096, np.uint8))
    assert ring.push(IOREQ_TYPE_COPY, 0xB8000, 2, 0x0741)
    slot = ring.page[8:16].tobytes()
    first, data = struct.unpack("<II", slot)
    assert first & 0xFF == IOREQ_TYPE_COPY
    assert first >> 9 & 1 == IOREQ_WRITE and first >> 10 & 3 == 1  # size code 1 = 2 bytes
    assert first >> 12 == 0xB8000 and data == 0x0741
    assert (ring.read_pointer, ring.write_pointer) == (0, 1)


def test_an_eight_byte_write_takes_two_slots_and_pops_whole():
    ring = BufferedIoreqPage(np.zeros(4096, np.uint8))
    ring.push(IOREQ_TYPE_COPY, 0xA0000, 8, 0x1122334455667788)
    assert ring.write_pointer == 2
    write = ring.pop()
    assert (write.size, write.addr, write.data) == (8, 0xA0000, 0x1122334455667788)
    assert ring.read_pointer == 2 and ring.pop() is None


def test_a_full_ring_or_a_wide_address_falls_back_to_a_synchronous_request():
    ring = BufferedIoreqPage(np.zeros(4096, np.uint8))
    assert not ring.push(IOREQ_TYPE_COPY, 0x100000, 1, 0)  # 21 bits: does not fit
    for _ in range(IOREQ_BUFFER_SLOT_NUM):
        assert ring.push(IOREQ_TYPE_COPY, 0xA0000, 1, 7)
    assert not ring.push(IOREQ_TYPE_COPY, 0xA0000, 1, 7)
    ring.pop()
    assert not ring.push(IOREQ_TYPE_COPY, 0xA0000, 8, 7)  # one slot free, two needed
    assert ring.push(IOREQ_TYPE_COPY, 0xA0000, 4, 7)
