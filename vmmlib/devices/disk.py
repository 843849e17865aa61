"""Disk backends: where the bytes of an emulated hard disk live, and what reaching them costs.

The thread (xen-devel, Nov 2006, "Full virtualization and I/O") says the device model's state
change may become a read of the "hard disk", which can be a real disk, a file on a local disk
or a file on network storage. An emulated IDE disk (``vmmlib.devices.ide``) reads and writes
through one interface, whatever is behind it:

* ``sectors`` (512-byte sectors), ``name``, ``write_cache`` (does FLUSH CACHE have work to
  do), ``rpm`` (0 unless the medium spins);
* ``read(lba, count) -> (bytes, latency_ns)``, ``write(lba, data) -> latency_ns``,
  ``flush() -> latency_ns``.

The latency is *virtual* time: the backend never sleeps, it says how long the access takes and
the IDE controller keeps BSY set until the clock reaches the end. Four backends:

``RamDisk``        bytes in memory (sparse: only written sectors cost memory), no latency; for
                   tests and as the store of the timed models.
``ImageFile``      a raw image file on the host filesystem, created sparse; a student can ``dd``
                   a file in and read it back through the guest; writes reach the file, FLUSH
                   CACHE calls ``fsync``. Latency: dom0's page cache (illustrative).
``LocalDisk``      a 7200 rpm desktop drive of 2006: seek (a function of the distance from the
                   previous head position) + half a revolution + media transfer.
``NetworkStorage`` a file served over gigabit Ethernet: one round trip + bytes / bandwidth per
                   request; FLUSH CACHE is one more round trip (the commit).

``LocalDisk`` and ``NetworkStorage`` wrap an image (a ``RamDisk`` by default, or an
``ImageFile``): the image supplies the bytes, the model supplies the time, so the same content
reads back through every backend. Every constant is in ``SOURCES``; *estimate* marks the ones
we could not take from a datasheet or a measurement.

Bad requests (a sector beyond the disk, a count of 0, data that is not whole sectors) raise a
``ConfigError``: the IDE model checks addresses first and turns them into the ATA error a disk
gives (IDNF), so a guest never reaches these exceptions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import BadAddressError, ConfigError

SECTOR_SIZE = 512
#: The largest disk the course models: 2**32 sectors = 2 TiB. Far below LBA48's 2**48, but a
#: typo (sectors=10**15) must not create a petabyte sparse file.
MAX_SECTORS = 1 << 32
#: One request moves at most 65536 sectors (the most one LBA48 command can ask for).
MAX_REQUEST_SECTORS = 1 << 16

# -- the 7200 rpm drive (LocalDisk) ----------------------------------------------------------
RPM = 7200
REVOLUTION_NS = 60 * 10**9 // RPM  # 8,333,333 ns
AVERAGE_ROTATION_NS = REVOLUTION_NS // 2  # 4,166,666 ns: half a revolution
SINGLE_TRACK_SEEK_NS = 1_000_000
AVERAGE_SEEK_NS = 8_500_000
FULL_STROKE_SEEK_NS = 20_000_000
MEDIA_RATE = 64_800_000  # bytes/s, sustained read, outer zone
DRIVE_SECTORS = 976_773_168  # a 500 GB drive: the stroke the seek distance is measured on
TRACK_SECTORS = 1242  # sectors per track in the outer zone

# -- network storage ---------------------------------------------------------------------------
GIGABIT = 125_000_000  # bytes/s on the wire
TCP_PAYLOAD, ETHERNET_FRAME = 1448, 1538  # bytes per full frame: payload vs time on the wire
NETWORK_BANDWIDTH = GIGABIT * TCP_PAYLOAD // ETHERNET_FRAME  # 117,685,305 bytes/s
NETWORK_RTT_NS = 200_000

# -- dom0's page cache (ImageFile) -------------------------------------------------------------
PAGE_CACHE_REQUEST_NS = 2_000
PAGE_CACHE_BANDWIDTH = 2_000_000_000  # bytes/s

SOURCES = {
    "RPM": "Hitachi Deskstar 7K500 (HDS725050KLA360, 2005-06) specification: 7200 rpm",
    "AVERAGE_ROTATION_NS": "derived: half a revolution at 7200 rpm = 4.17 ms (the spec's "
    "'average latency')",
    "AVERAGE_SEEK_NS": "Deskstar 7K500: average read seek 8.5 ms (spec table, as reproduced "
    "in The Tech Report's 7K500 review, 2005)",
    "SINGLE_TRACK_SEEK_NS": "estimate: 1.0 ms typical read, from Hitachi's Travelstar 7K320 "
    "OEM specification §4.4.2.3 (a 7200 rpm drive of the same family); the 7K500 value was "
    "not found",
    "FULL_STROKE_SEEK_NS": "estimate: 20.0 ms typical read, same 7K320 specification §4.4.2.2",
    "MEDIA_RATE": "Deskstar 7K500 specification table 10: sustained disk-buffer read rate in "
    "zone 0 (outer tracks, where LBA 0 is), 64.8 MB/s typical",
    "DRIVE_SECTORS": "derived: a 500 GB drive has 976,773,168 LBAs by the IDEMA capacity "
    "formula (97,696,368 + 1,953,504 x (500 - 50))",
    "TRACK_SECTORS": "derived: instantaneous zone-0 rate 76.3 MB/s (7K500 table 10) / 120 "
    "revolutions per second / 512 bytes",
    "GIGABIT": "IEEE 802.3ab: 1000 Mbit/s = 125,000,000 bytes/s",
    "NETWORK_BANDWIDTH": "derived: a 1500-byte MTU carries 1448 bytes of TCP payload (IP + TCP "
    "headers with timestamps: 52 bytes) in 1538 bytes of wire time (+ Ethernet header, FCS, "
    "preamble and inter-frame gap: 38 bytes)",
    "NETWORK_RTT_NS": "estimate: 0.2 ms per request and reply on a switched gigabit LAN, "
    "server cache hit; Radkov et al., 'A Performance Comparison of NFS and iSCSI for "
    "IP-Networked Storage' (FAST 2004) observed round trips below 1 ms on theirs",
    "PAGE_CACHE_REQUEST_NS": "illustrative: one pread/pwrite by qemu-dm in dom0 that hits "
    "the page cache (a system call and its bookkeeping, a few microseconds)",
    "PAGE_CACHE_BANDWIDTH": "illustrative: a memory copy of a few GB/s",
    "fsync": "estimate: fsync writes the file's dirty pages back to the local disk: one "
    "average access (AVERAGE_SEEK_NS + AVERAGE_ROTATION_NS)",
}


def check_sectors(sectors: object) -> int:
    """Raise unless ``sectors`` is a disk size the course models (1 … MAX_SECTORS)."""
    if not isinstance(sectors, int) or isinstance(sectors, bool) or not 1 <= sectors:
        raise ConfigError(f"a disk has a positive whole number of sectors, not {sectors!r}")
    if sectors > MAX_SECTORS:
        raise ConfigError(
            f"{sectors:,} sectors ({sectors * SECTOR_SIZE / 2**40:,.1f} TiB) is more than the "
            f"{MAX_SECTORS:,} sectors (2 TiB) a course disk may have"
        )
    return sectors


def transfer_ns(nbytes: int, rate: int) -> int:
    """Time to move ``nbytes`` at ``rate`` bytes per second, in ns rounded up."""
    return -(-nbytes * 10**9 // rate)


class DiskBackend:
    """What an emulated disk reads and writes through (the interface, and its checks)."""

    name = "disk"
    write_cache = False
    rpm = 0

    def __init__(self, sectors: int) -> None:
        self.sectors = check_sectors(sectors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sectors} sectors)"

    # -- the interface ---------------------------------------------------------------------
    def read(self, lba: int, count: int) -> tuple[bytes, int]:
        """``count`` sectors from ``lba``, and how long reading them takes (ns)."""
        self.check_request(lba, count)
        data = self._load(lba, count)
        return data, self._read_ns(lba, count)

    def write(self, lba: int, data: bytes) -> int:
        """Write whole sectors at ``lba``; returns how long the write takes (ns)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"{self.name}: write() takes bytes, not {type(data).__name__}")
        data = bytes(data)
        if not data or len(data) % SECTOR_SIZE:
            raise ConfigError(f"{self.name}: writes whole 512-byte sectors, not {len(data)} bytes")
        count = len(data) // SECTOR_SIZE
        self.check_request(lba, count)
        self._store(lba, data)
        return self._write_ns(lba, count)

    def flush(self) -> int:
        """Make every written sector durable; returns how long that takes (ns)."""
        self._sync()
        return self._flush_ns()

    def check_request(self, lba: int, count: int) -> None:
        """Raise unless sectors ``lba`` … ``lba + count - 1`` exist on this disk."""
        if not isinstance(count, int) or not 1 <= count <= MAX_REQUEST_SECTORS:
            raise ConfigError(f"{self.name}: a request moves 1-65536 sectors, not {count!r}")
        if not isinstance(lba, int) or lba < 0 or lba + count > self.sectors:
            raise BadAddressError(
                f"{self.name}: sectors {lba!r}+{count} are outside the disk's {self.sectors}"
            )

    # -- what subclasses provide -----------------------------------------------------------
    def _load(self, lba: int, count: int) -> bytes:
        raise NotImplementedError

    def _store(self, lba: int, data: bytes) -> None:
        raise NotImplementedError

    def _sync(self) -> None:
        """Nothing to make durable (a memory disk)."""

    def _read_ns(self, lba: int, count: int) -> int:
        return 0

    def _write_ns(self, lba: int, count: int) -> int:
        return 0

    def _flush_ns(self) -> int:
        return 0


class RamDisk(DiskBackend):
    """A disk in memory, zero latency. Sparse: only written sectors take memory (``data``
    fills it from sector 0)."""

    name = "memory"

    def __init__(self, sectors: int, data: bytes = b"") -> None:
        super().__init__(sectors)
        self._blocks: dict[int, bytes] = {}
        if len(data) > self.sectors * SECTOR_SIZE:
            raise ConfigError(f"{len(data)} bytes do not fit in {self.sectors} sectors")
        if data:
            padded = bytes(data) + bytes(-len(data) % SECTOR_SIZE)
            self._store(0, padded)

    def _load(self, lba: int, count: int) -> bytes:
        zero = bytes(SECTOR_SIZE)
        return b"".join(self._blocks.get(s, zero) for s in range(lba, lba + count))

    def _store(self, lba: int, data: bytes) -> None:
        for i in range(len(data) // SECTOR_SIZE):
            self._blocks[lba + i] = data[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE]


class ImageFile(DiskBackend):
    """A raw disk image: a file on the host filesystem, sector n at byte offset 512 * n.

    ``ImageFile.create(path, sectors)`` makes a new sparse file (``truncate``: no blocks are
    allocated until written). ``ImageFile(path)`` opens an existing one; a size that is not a
    whole number of sectors is rounded up and the missing tail reads as zeros (as QEMU's raw
    format does). Each request opens the file, so a student can replace it with ``dd`` between
    runs. ``flush()`` calls ``fsync``.
    """

    name = "file"
    write_cache = True  # the host's page cache holds writes until fsync

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
        except OSError as err:
            raise ConfigError(f"cannot open disk image {self.path}: {err.strerror}") from None
        if not self.path.is_file():
            raise ConfigError(f"disk image {self.path} is not a regular file")
        if size == 0:
            raise ConfigError(f"disk image {self.path} is empty")
        super().__init__(-(-size // SECTOR_SIZE))

    @classmethod
    def create(cls, path: str | os.PathLike[str], sectors: int) -> ImageFile:
        """Create a sparse image of ``sectors`` zero sectors (refuses to overwrite a file)."""
        check_sectors(sectors)
        try:
            with open(path, "xb") as f:
                f.truncate(sectors * SECTOR_SIZE)
        except FileExistsError:
            raise ConfigError(f"{path} exists; open it with ImageFile(path)") from None
        return cls(path)

    def __repr__(self) -> str:
        return f"ImageFile({self.path.name!r}, {self.sectors} sectors)"

    def _load(self, lba: int, count: int) -> bytes:
        n = count * SECTOR_SIZE
        with open(self.path, "rb") as f:
            data = os.pread(f.fileno(), n, lba * SECTOR_SIZE)
        return data + bytes(n - len(data))

    def _store(self, lba: int, data: bytes) -> None:
        with open(self.path, "r+b") as f:
            os.pwrite(f.fileno(), data, lba * SECTOR_SIZE)

    def _sync(self) -> None:
        with open(self.path, "r+b") as f:
            os.fsync(f.fileno())

    def _read_ns(self, lba: int, count: int) -> int:
        return PAGE_CACHE_REQUEST_NS + transfer_ns(count * SECTOR_SIZE, PAGE_CACHE_BANDWIDTH)

    _write_ns = _read_ns

    def _flush_ns(self) -> int:
        return AVERAGE_SEEK_NS + AVERAGE_ROTATION_NS


class _TimedDisk(DiskBackend):
    """A timing model in front of an image that holds the bytes (a RamDisk by default)."""

    def __init__(self, image: DiskBackend | None, sectors: int | None) -> None:
        if image is None:
            if sectors is None:
                raise ConfigError(f"{type(self).__name__} needs an image or a number of sectors")
            image = RamDisk(sectors)
        elif not isinstance(image, DiskBackend):
            raise ConfigError(f"the image must be a DiskBackend, not {type(image).__name__}")
        elif sectors is not None and sectors != image.sectors:
            raise ConfigError(f"the image has {image.sectors} sectors, not {sectors}")
        super().__init__(image.sectors)
        self.image = image

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.image!r})"

    def _load(self, lba: int, count: int) -> bytes:
        return self.image.read(lba, count)[0]  # the image's bytes; our own time

    def _store(self, lba: int, data: bytes) -> None:
        self.image.write(lba, data)

    def _sync(self) -> None:
        self.image.flush()


def seek_ns(distance: int) -> int:
    """Seek time over ``distance`` sectors of the stroke: 0 on the same track, otherwise
    a + b * sqrt(f) + c * f of the fraction f of the full stroke (DRIVE_SECTORS), fitted
    through the datasheet's single-track (f -> 0), average (f = 1/3: the mean distance of two
    random positions) and full-stroke (f = 1) seeks. The square root is the arm accelerating
    and braking on short seeks, the linear part its coasting on long ones (Ruemmler & Wilkes,
    'An introduction to disk drive modeling', IEEE Computer 1994)."""
    if distance < TRACK_SECTORS:
        return 0
    f = min(distance, DRIVE_SECTORS) / DRIVE_SECTORS
    return round(_SEEK_A + _SEEK_B * math.sqrt(f) + _SEEK_C * f)


def _fit_seek() -> tuple[float, float, float]:
    a = SINGLE_TRACK_SEEK_NS
    # b / sqrt(3) + c / 3 = average - a ; b + c = full - a
    avg, full = AVERAGE_SEEK_NS - a, FULL_STROKE_SEEK_NS - a
    b = (avg - full / 3) / (1 / math.sqrt(3) - 1 / 3)
    return a, b, full - b


_SEEK_A, _SEEK_B, _SEEK_C = _fit_seek()


class LocalDisk(_TimedDisk):
    """A 7200 rpm desktop drive of 2006 (constants: ``SOURCES``), deterministic.

    A request that starts where the last one ended streams from the head's current position
    (the drive's read-ahead and write buffer): media transfer time only. Any other request
    pays ``seek_ns(distance from the head)`` + half a revolution (the average rotational
    latency) + the transfer. Writes go straight to the medium (``write_cache`` is off), so
    FLUSH CACHE has nothing to do. Command overhead and zoned recording are not modelled.
    """

    name = "local disk"
    rpm = RPM

    def __init__(self, image: DiskBackend | None = None, *, sectors: int | None = None) -> None:
        super().__init__(image, sectors)
        self.head = 0  # the LBA under the head
        self._streaming_from: int | None = None  # the LBA a sequential request would start at

    def access_ns(self, lba: int, count: int) -> int:
        """What an access costs from the current head position (without moving the head)."""
        transfer = transfer_ns(count * SECTOR_SIZE, MEDIA_RATE)
        if lba == self._streaming_from:
            return transfer
        return seek_ns(abs(lba - self.head)) + AVERAGE_ROTATION_NS + transfer

    def _move(self, lba: int, count: int) -> int:
        ns = self.access_ns(lba, count)
        self.head = self._streaming_from = lba + count
        return ns

    _read_ns = _write_ns = _move


class NetworkStorage(_TimedDisk):
    """A disk image served by a file server over gigabit Ethernet (NFS or iSCSI style).

    Every request is one round trip plus its bytes at the link's payload bandwidth (a server
    cache hit; the server's own disk is not modelled). Writes are acknowledged when they reach
    the server; FLUSH CACHE is one more round trip (the commit that makes them durable).
    """

    name = "network storage"
    write_cache = True

    def __init__(
        self,
        image: DiskBackend | None = None,
        *,
        sectors: int | None = None,
        rtt_ns: int = NETWORK_RTT_NS,
        bandwidth: int = NETWORK_BANDWIDTH,
    ) -> None:
        super().__init__(image, sectors)
        if not isinstance(rtt_ns, int) or rtt_ns < 0:
            raise ConfigError(f"a round trip takes 0 or more ns, not {rtt_ns!r}")
        if not isinstance(bandwidth, int) or bandwidth <= 0:
            raise ConfigError(f"a link moves a positive number of bytes/s, not {bandwidth!r}")
        self.rtt_ns = rtt_ns
        self.bandwidth = bandwidth

    def _read_ns(self, lba: int, count: int) -> int:
        return self.rtt_ns + transfer_ns(count * SECTOR_SIZE, self.bandwidth)

    _write_ns = _read_ns

    def _flush_ns(self) -> int:
        return self.rtt_ns


def costs_table() -> list[tuple[str, int, str]]:
    """(constant, value, source) for every timing constant: what a notebook prints."""
    values = globals()
    rows = [(name, values[name], text) for name, text in SOURCES.items() if name in values]
    rows.append(("fsync", AVERAGE_SEEK_NS + AVERAGE_ROTATION_NS, SOURCES["fsync"]))
    return rows
