"""The bus model (vmmlib/bus.py) and the validation in the guest operations (vmmlib/ops.py).

Port numbers, access sizes and the "floating bus" rule are pinned against
shared/reference/hardware-facts.md §1.1 (64 K ports, 1/2/4-byte accesses) and §12 (port map).
"""

import pytest

from vmmlib.cpu.ops import Hypercall, In, Ins, Load, Out, Outs, Store
from vmmlib.errors import (
    BadAddressError,
    BadPortError,
    BadSizeError,
    ConfigError,
    OverlapError,
)
from vmmlib.hw.bus import MMIO_SIZES, PORT_SIZES, MemoryBus, PortBus, elements


class Recorder:
    """A device that remembers every access and answers reads from a byte array."""

    def __init__(self, length: int, fill: int = 0) -> None:
        self.mem = bytearray([fill] * length)
        self.reads: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.reads.append((offset, size))
        return int.from_bytes(self.mem[offset : offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))
        self.mem[offset : offset + size] = value.to_bytes(size, "little")


# --- claims ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base, length",
    [(0x3F8, 8), (0x3F0, 9), (0x3FF, 1), (0x3F0, 0x20), (0x3FA, 2)],
    ids=["same", "tail-overlap", "last-byte", "contains", "inside"],
)
def test_overlapping_claims_are_rejected(base, length):
    bus = PortBus()
    bus.claim(0x3F8, 8, Recorder(8), "COM1")  # hardware-facts.md §12: COM1 = 0x3F8-0x3FF
    with pytest.raises(OverlapError, match="COM1"):
        bus.claim(base, length, Recorder(length), "other")
    assert [r.name for r in bus.regions] == ["COM1"]


def test_adjacent_claims_do_not_overlap():
    # hardware-facts.md §12: COM1 0x3F8-0x3FF sits right after the floppy range 0x3F0-0x3F7
    bus = PortBus()
    bus.claim(0x3F8, 8, Recorder(8), "COM1")
    bus.claim(0x3F0, 8, Recorder(8), "fdc")
    bus.claim(0x400, 1, Recorder(1), "after")
    assert [r.name for r in bus.regions] == ["fdc", "COM1", "after"]
    assert bus.find(0x3F7).name == "fdc"
    assert bus.find(0x3F8).name == "COM1"
    assert bus.find(0x3FF).name == "COM1"
    assert bus.find(0x3EF) is None


def test_overlap_error_is_a_config_error():
    assert issubclass(OverlapError, ConfigError)
    assert issubclass(BadPortError, ConfigError)
    assert issubclass(BadSizeError, ConfigError)


@pytest.mark.parametrize("length", [0, -1])
def test_claim_needs_a_positive_length(length):
    with pytest.raises(ConfigError):
        PortBus().claim(0x60, length, Recorder(1))


def test_claim_beyond_port_space_is_a_bad_port():
    # hardware-facts.md §1.1: the port space is 0x0000-0xFFFF
    bus = PortBus()
    with pytest.raises(BadPortError):
        bus.claim(0xFFFF, 2, Recorder(2))
    with pytest.raises(BadPortError):
        bus.claim(0x10000, 1, Recorder(1))
    bus.claim(0xFFFF, 1, Recorder(1))  # the last port itself exists


# --- addresses and sizes -----------------------------------------------------------------------
@pytest.mark.parametrize("port", [0x10000, 0x1_0000_0000, -1])
def test_port_outside_16_bits_is_bad_port(port):
    # hardware-facts.md §1.1: 64 K ports
    bus = PortBus()
    with pytest.raises(BadPortError):
        bus.read(port, 1)
    with pytest.raises(BadPortError):
        bus.write(port, 1, 0)


def test_port_sizes_are_1_2_4():
    # hardware-facts.md §1.3: the size field encodes 1, 2 or 4 bytes only
    assert PORT_SIZES == (1, 2, 4)
    assert MMIO_SIZES == (1, 2, 4, 8)


@pytest.mark.parametrize("size", [0, 3, 8, 5])
def test_bad_port_access_size(size):
    bus = PortBus()
    with pytest.raises(BadSizeError):
        bus.read(0x60, size)
    with pytest.raises(BadSizeError):
        bus.write(0x60, size, 0)


def test_mmio_bus_takes_8_byte_accesses_but_not_3():
    bus = MemoryBus()
    dev = Recorder(16)
    bus.claim(0xFEE00000, 16, dev, "lapic")
    bus.write(0xFEE00000, 8, 0x1122334455667788)
    assert bus.read(0xFEE00000, 8) == 0x1122334455667788
    with pytest.raises(BadSizeError):
        bus.read(0xFEE00000, 3)


def test_mmio_address_out_of_range():
    bus = MemoryBus(size=1 << 20)
    with pytest.raises(BadAddressError):
        bus.read(1 << 20, 1)


# --- accesses ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size, ones", [(1, 0xFF), (2, 0xFFFF), (4, 0xFFFF_FFFF)])
def test_unclaimed_read_is_all_ones(size, ones):
    # floating data lines: nobody drives the bus, so it reads back as all ones
    assert PortBus().read(0x1234, size) == ones


def test_write_to_unclaimed_port_is_dropped():
    bus = PortBus()
    dev = Recorder(1)
    bus.claim(0x80, 1, dev, "post")
    bus.write(0x81, 1, 0x55)  # nobody answers; no error
    bus.write(0x82, 4, 0xDEADBEEF)
    assert dev.writes == []
    assert bus.read(0x81, 1) == 0xFF


def test_access_is_relative_to_the_claim_base():
    bus = PortBus()
    dev = Recorder(8)
    bus.claim(0x3F8, 8, dev, "COM1")
    bus.write(0x3FB, 1, 0x83)
    assert dev.writes == [(3, 1, 0x83)]
    assert bus.read(0x3FB, 1) == 0x83
    assert dev.reads == [(3, 1)]


def test_device_result_is_truncated_to_access_size():
    class Wide:
        def read(self, offset, size):
            return 0x1_2345_6789

        def write(self, offset, size, value):
            pass

    bus = PortBus()
    bus.claim(0x60, 4, Wide())
    assert bus.read(0x60, 1) == 0x89
    assert bus.read(0x60, 2) == 0x6789


def test_two_byte_access_straddling_two_devices_is_split_by_byte_lanes():
    bus = PortBus()
    lo, hi = Recorder(1, fill=0x34), Recorder(1, fill=0x12)
    bus.claim(0x70, 1, lo, "index")  # hardware-facts.md §12: CMOS index 0x70 / data 0x71
    bus.claim(0x71, 1, hi, "data")
    assert bus.read(0x70, 2) == 0x1234  # little-endian: port 0x70 is the low byte
    assert lo.reads == [(0, 1)] and hi.reads == [(0, 1)]
    bus.write(0x70, 2, 0xBEEF)
    assert lo.writes == [(0, 1, 0xEF)]
    assert hi.writes == [(0, 1, 0xBE)]


def test_access_half_on_a_device_half_unclaimed():
    bus = PortBus()
    dev = Recorder(2, fill=0xAB)
    bus.claim(0x60, 2, dev)
    assert bus.read(0x61, 2) == 0xFFAB  # lane 0 from the device, lane 1 floats high
    bus.write(0x61, 4, 0x11223344)
    assert dev.writes == [(1, 1, 0x44)]


def test_port_access_past_ffff_wraps_to_port_0():
    # hardware-facts.md §1.1: a wrapping access touches 0xFFFF and then 0x0000
    bus = PortBus()
    top, bottom = Recorder(1, fill=0x11), Recorder(2, fill=0x22)
    bus.claim(0xFFFF, 1, top)
    bus.claim(0x0000, 2, bottom)
    assert bus.read(0xFFFF, 2) == 0x2211
    assert bus.read(0xFFFF, 4) == 0xFF222211
    bus.write(0xFFFF, 2, 0xABCD)
    assert top.writes == [(0, 1, 0xCD)] and bottom.writes == [(0, 1, 0xAB)]


def test_whole_access_inside_one_device_is_not_split():
    bus = PortBus()
    dev = Recorder(4)
    bus.claim(0xCFC, 4, dev, "PCI CONFIG_DATA")  # hardware-facts.md §12
    bus.write(0xCFC, 4, 0x80000000)
    assert dev.writes == [(0, 4, 0x80000000)]
    bus.write(0xCFE, 2, 0xABCD)
    assert dev.writes[-1] == (2, 2, 0xABCD)


def test_write_value_is_masked_to_access_size():
    bus = PortBus()
    dev = Recorder(1)
    bus.claim(0x80, 1, dev)
    bus.write(0x80, 1, 0x1FF)
    assert dev.writes == [(0, 1, 0xFF)]


# --- guest operations validate their arguments (vmmlib/ops.py) -------------------------------
@pytest.mark.parametrize("port", [0x10000, -1, 0x3F8 + 0x10000, "0x3F8", 1.0])
def test_ops_reject_bad_ports(port):
    # hardware-facts.md §1.1: ports are 16-bit
    with pytest.raises(BadPortError):
        In(port, 1)
    with pytest.raises(BadPortError):
        Out(port, 1, 0)
    with pytest.raises(BadPortError):
        Ins(port, 1, 1)
    with pytest.raises(BadPortError):
        Outs(port, 1, (0,))


@pytest.mark.parametrize("size", [0, 3, 8])
def test_ops_reject_bad_port_sizes(size):
    # hardware-facts.md §1.3: 1, 2 or 4 bytes
    with pytest.raises(BadSizeError):
        In(0x60, size)
    with pytest.raises(BadSizeError):
        Out(0x60, size, 0)
    with pytest.raises(BadSizeError):
        Ins(0x60, size, 2)
    with pytest.raises(BadSizeError):
        Outs(0x60, size, (0,))


def test_ops_accept_the_extremes():
    assert In(0xFFFF, 4).port == 0xFFFF
    assert Out(0, 4, 0xFFFF_FFFF).value == 0xFFFF_FFFF
    assert Outs(0x3F8, 2, [1, 0xFFFF]).values == (1, 0xFFFF)
    assert Outs(0x3F8, 1, [1, 2, 3]).count == 3
    assert Store(0xB8000, 8, (1 << 64) - 1).size == 8


@pytest.mark.parametrize("size, value", [(1, 0x100), (2, 0x10000), (4, 1 << 32), (1, -1)])
def test_ops_reject_values_that_do_not_fit(size, value):
    with pytest.raises(ConfigError):
        Out(0x80, size, value)
    with pytest.raises(ConfigError):
        Outs(0x80, size, (0, value))
    with pytest.raises(ConfigError):
        Store(0x1000, size, value)


def test_string_ops_need_rep_for_more_than_one_element():
    with pytest.raises(ConfigError):
        Ins(0x1F0, 2, 0)
    with pytest.raises(ConfigError):
        Ins(0x1F0, 2, 4, rep=False)
    with pytest.raises(ConfigError):
        Outs(0x1F0, 2, ())
    with pytest.raises(ConfigError):
        Outs(0x1F0, 2, (1, 2), rep=False)
    assert Ins(0x1F0, 2, 1, rep=False).count == 1
    assert Outs(0x1F0, 2, (7,), rep=False).count == 1


@pytest.mark.parametrize("size", [0, 3, 16])
def test_memory_ops_reject_bad_sizes(size):
    with pytest.raises(BadSizeError):
        Load(0x1000, size)
    with pytest.raises(BadSizeError):
        Store(0x1000, size, 0)


def test_memory_ops_reject_negative_addresses():
    with pytest.raises(ConfigError):
        Load(-4, 4)
    with pytest.raises(ConfigError):
        Store(-4, 4, 0)


def test_hypercall_args_are_register_values():
    # x86-64 hypercalls pass up to 5 arguments in registers: 64-bit values, buffers by address
    assert Hypercall(18, [0, 2, 0x8000]).args == (0, 2, 0x8000)
    assert Hypercall(18, (-1,)).args == ((1 << 64) - 1,)  # a register holds two's complement
    for bad in ([0, b"hi"], [1 << 64], [0] * 6, "abc"):
        with pytest.raises(ConfigError):
            Hypercall(18, bad)


def test_elements_split_a_string_ios_bytes_little_endian_in_order():
    assert elements(b"\x01\x00\x02\x01", 2) == [1, 0x102]
    assert elements(b"\x78\x56\x34\x12", 4) == [0x12345678]
    assert elements(b"abc", 1) == [0x61, 0x62, 0x63] and elements(b"", 4) == []
