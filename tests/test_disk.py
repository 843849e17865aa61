"""Disk backends: one interface, the same bytes through every backend, latencies from the cited
constants (vmmlib/devices/disk.py SOURCES), sparse image files, and clear errors for bad input."""

from __future__ import annotations

import math
import os

import pytest

from vmmlib.devices import disk as d
from vmmlib.devices.disk import (
    SECTOR_SIZE,
    DiskBackend,
    ImageFile,
    LocalDisk,
    NetworkStorage,
    RamDisk,
    seek_ns,
)
from vmmlib.errors import BadAddressError, ConfigError

PATTERN = bytes(range(256)) * 2  # one sector


def sector(n: int) -> bytes:
    """A recognisable sector: its number in the first 4 bytes, then a pattern."""
    return n.to_bytes(4, "little") + PATTERN[4:]


def backends(tmp_path, sectors=64):
    image = ImageFile.create(tmp_path / "disk.img", sectors)
    return [
        RamDisk(sectors),
        image,
        LocalDisk(sectors=sectors),
        LocalDisk(ImageFile.create(tmp_path / "local.img", sectors)),
        NetworkStorage(sectors=sectors),
    ]


# -- the interface -----------------------------------------------------------------------------
def test_every_backend_reads_back_what_was_written(tmp_path):
    for b in backends(tmp_path):
        assert isinstance(b, DiskBackend) and b.sectors == 64
        assert b.read(5, 1)[0] == bytes(SECTOR_SIZE)  # a fresh disk reads zeros
        b.write(5, sector(5) + sector(6))
        data, latency = b.read(5, 2)
        assert data == sector(5) + sector(6), b
        assert isinstance(latency, int) and latency >= 0
        assert isinstance(b.flush(), int)


def test_same_content_through_every_backend(tmp_path):
    image = ImageFile.create(tmp_path / "shared.img", 16)
    image.write(3, sector(3))
    for b in (image, LocalDisk(image), NetworkStorage(image)):
        assert b.read(3, 1)[0] == sector(3)


def test_ram_disk_is_sparse_and_takes_initial_data():
    disk = RamDisk(d.MAX_SECTORS, data=b"boot")  # 2 TiB costs nothing until written
    assert disk.read(0, 1)[0] == b"boot" + bytes(508)
    assert disk.read(d.MAX_SECTORS - 1, 1) == (bytes(512), 0)
    assert len(disk._blocks) == 1


@pytest.mark.parametrize("sectors", [0, -1, 1.5, True, "8", d.MAX_SECTORS + 1, 10**15])
def test_absurd_sizes_are_refused(tmp_path, sectors):
    with pytest.raises(ConfigError):
        RamDisk(sectors)
    with pytest.raises(ConfigError):
        ImageFile.create(tmp_path / "x.img", sectors)
    assert not (tmp_path / "x.img").exists()


@pytest.mark.parametrize("lba, count", [(64, 1), (63, 2), (-1, 1), (0, 0), (0, 65537), (1.0, 1)])
def test_requests_outside_the_disk_raise_a_config_error(lba, count):
    disk = RamDisk(64)
    with pytest.raises(ConfigError):
        disk.read(lba, count)
    if count in (1, 2):
        with pytest.raises(ConfigError):
            disk.write(lba, bytes(SECTOR_SIZE * count))


def test_out_of_range_is_a_bad_address():
    with pytest.raises(BadAddressError):
        RamDisk(8).read(8, 1)


@pytest.mark.parametrize("data", [b"", b"x" * 511, b"x" * 513, "text", [0] * 512])
def test_writes_take_whole_sectors_of_bytes(data):
    with pytest.raises(ConfigError):
        RamDisk(8).write(0, data)


def test_timed_models_need_an_image_or_a_size():
    with pytest.raises(ConfigError):
        LocalDisk()
    with pytest.raises(ConfigError):
        NetworkStorage(RamDisk(8), sectors=9)
    with pytest.raises(ConfigError):
        LocalDisk("disk.img")
    with pytest.raises(ConfigError):
        NetworkStorage(sectors=8, rtt_ns=-1)
    with pytest.raises(ConfigError):
        NetworkStorage(sectors=8, bandwidth=0)


# -- the image file ------------------------------------------------------------------------------
def test_image_file_is_created_sparse(tmp_path):
    path = tmp_path / "big.img"
    ImageFile.create(path, 1 << 21)  # 1 GiB
    assert path.stat().st_size == 1 << 30
    assert path.stat().st_blocks * 512 < 1 << 20  # (almost) nothing allocated


def test_image_file_refuses_to_overwrite_and_to_open_nothing(tmp_path):
    path = tmp_path / "a.img"
    ImageFile.create(path, 4)
    with pytest.raises(ConfigError, match="exists"):
        ImageFile.create(path, 4)
    with pytest.raises(ConfigError):
        ImageFile(tmp_path / "missing.img")
    with pytest.raises(ConfigError):
        ImageFile(tmp_path)  # a directory
    (tmp_path / "empty.img").write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        ImageFile(tmp_path / "empty.img")


def test_a_file_written_with_dd_reads_back(tmp_path):
    # what a student does: dd if=hello.txt of=disk.img bs=512 seek=2 conv=notrunc
    path = tmp_path / "disk.img"
    ImageFile.create(path, 8)
    with open(path, "r+b") as f:
        f.seek(2 * SECTOR_SIZE)
        f.write(b"hello, disk")
    data, _ = ImageFile(path).read(2, 1)
    assert data == b"hello, disk" + bytes(501)


def test_writes_reach_the_file_and_flush_syncs(tmp_path, monkeypatch):
    path = tmp_path / "disk.img"
    image = ImageFile.create(path, 8)
    image.write(7, sector(7))
    with open(path, "rb") as f:
        f.seek(7 * SECTOR_SIZE)
        assert f.read(SECTOR_SIZE) == sector(7)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    assert image.flush() == d.AVERAGE_SEEK_NS + d.AVERAGE_ROTATION_NS
    assert len(synced) == 1


def test_a_partial_last_sector_reads_as_zeros(tmp_path):
    path = tmp_path / "odd.img"
    path.write_bytes(b"x" * 600)  # 1 sector and a bit
    image = ImageFile(path)
    assert image.sectors == 2
    assert image.read(1, 1)[0] == b"x" * 88 + bytes(424)


def test_image_file_latency_is_the_page_cache():
    ns = d.PAGE_CACHE_REQUEST_NS + math.ceil(1024 * 1e9 / d.PAGE_CACHE_BANDWIDTH)
    assert ImageFile._read_ns(None, 0, 2) == ns


# -- the local disk ------------------------------------------------------------------------------
def test_drive_constants_against_their_sources():
    # Deskstar 7K500: 7200 rpm, 8.5 ms average read seek, 64.8 MB/s sustained (zone 0)
    assert (d.RPM, d.AVERAGE_SEEK_NS, d.MEDIA_RATE) == (7200, 8_500_000, 64_800_000)
    assert d.REVOLUTION_NS == 8_333_333 and d.AVERAGE_ROTATION_NS == 4_166_666  # 4.17 ms
    assert (d.SINGLE_TRACK_SEEK_NS, d.FULL_STROKE_SEEK_NS) == (1_000_000, 20_000_000)
    assert d.DRIVE_SECTORS == 97_696_368 + 1_953_504 * (500 - 50)  # IDEMA, 500 GB
    assert d.TRACK_SECTORS == round(76.3e6 / 120 / 512)
    for name in ("RPM", "AVERAGE_SEEK_NS", "SINGLE_TRACK_SEEK_NS", "FULL_STROKE_SEEK_NS",
                 "MEDIA_RATE", "NETWORK_RTT_NS", "NETWORK_BANDWIDTH"):
        assert name in d.SOURCES
    assert "estimate" in d.SOURCES["SINGLE_TRACK_SEEK_NS"]
    assert "estimate" in d.SOURCES["NETWORK_RTT_NS"]


def test_seek_curve_passes_through_the_datasheet_points():
    assert seek_ns(0) == seek_ns(d.TRACK_SECTORS - 1) == 0  # same track: no seek
    assert abs(seek_ns(d.TRACK_SECTORS) - d.SINGLE_TRACK_SEEK_NS) < 20_000
    assert seek_ns(d.DRIVE_SECTORS // 3) == pytest.approx(d.AVERAGE_SEEK_NS, abs=2)
    assert seek_ns(d.DRIVE_SECTORS) == d.FULL_STROKE_SEEK_NS
    distances = [d.TRACK_SECTORS * 4**k for k in range(12)]
    times = [seek_ns(x) for x in distances]
    assert times == sorted(times)  # longer seeks never take less time


def test_local_disk_random_and_sequential_access():
    disk = LocalDisk(sectors=1 << 20)
    per_sector = math.ceil(512e9 / d.MEDIA_RATE)  # 7,902 ns
    first = disk.read(0, 1)[1]  # head parked at 0, not streaming: half a revolution
    assert first == d.AVERAGE_ROTATION_NS + per_sector
    assert disk.read(1, 1)[1] == per_sector  # the next sector streams
    far = 500_000
    eight = math.ceil(8 * 512e9 / d.MEDIA_RATE)
    assert disk.read(far, 8)[1] == seek_ns(far - 2) + d.AVERAGE_ROTATION_NS + eight
    assert disk.head == far + 8
    assert disk.write(far + 8, bytes(512)) == per_sector  # writes stream the same way
    assert disk.flush() == 0 and not disk.write_cache and disk.rpm == 7200


def test_local_disk_is_deterministic():
    def run():
        disk = LocalDisk(sectors=1 << 16)
        return [disk.read(lba, 1)[1] for lba in (0, 9000, 9001, 100, 60000, 60001)]

    assert run() == run()


# -- network storage -----------------------------------------------------------------------------
def test_network_storage_costs_a_round_trip_plus_bandwidth():
    net = NetworkStorage(sectors=64)
    assert d.NETWORK_BANDWIDTH == 125_000_000 * 1448 // 1538
    assert net.read(0, 1)[1] == d.NETWORK_RTT_NS + math.ceil(512e9 / d.NETWORK_BANDWIDTH)
    assert net.write(8, bytes(4096)) == d.NETWORK_RTT_NS + math.ceil(4096e9 / d.NETWORK_BANDWIDTH)
    assert net.flush() == d.NETWORK_RTT_NS and net.write_cache
    slow = NetworkStorage(sectors=64, rtt_ns=1_000_000, bandwidth=1_000_000)
    assert slow.read(0, 2)[1] == 1_000_000 + 1_024_000


def test_per_mib_ordering_of_the_three_backends(tmp_path):
    # sequential 1 MiB in one request: page cache < network < local disk (which pays a seek)
    mib = (1 << 20) // SECTOR_SIZE
    file_ns = ImageFile.create(tmp_path / "f.img", mib).read(0, mib)[1]
    net_ns = NetworkStorage(sectors=mib).read(0, mib)[1]
    local = LocalDisk(sectors=4 * mib)
    local.read(3 * mib, 1)
    local_ns = local.read(0, mib)[1]
    assert file_ns < net_ns < local_ns


def test_costs_table_lists_every_sourced_constant():
    rows = d.costs_table()
    names = [r[0] for r in rows]
    assert "AVERAGE_SEEK_NS" in names and "fsync" in names
    assert all(isinstance(v, int) and src for _, v, src in rows)


def test_repr_has_no_address(tmp_path):
    assert repr(RamDisk(4)) == "RamDisk(4 sectors)"
    assert repr(LocalDisk(sectors=4)) == "LocalDisk(RamDisk(4 sectors))"
    assert repr(ImageFile.create(tmp_path / "r.img", 2)) == "ImageFile('r.img', 2 sectors)"
