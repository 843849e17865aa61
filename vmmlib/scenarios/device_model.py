"""Chapter 02's scenarios: an HVM guest whose IDE disk and VGA card live in qemu-dm, in dom0.

``dm_machine()`` builds the thread's picture: a 512 MiB PC running Xen with dom0 (PV, the
control domain, machine memory 0-256 MiB) and one HVM guest (its RAM at 256-512 MiB). qemu-dm
runs in dom0 with an IDE controller (the primary channel, one disk behind one of the three
backends the thread names: a file, a local disk, network storage — or memory) and a VGA card;
Xen emulates the guest's PIC itself. The scenario functions build that world and a vCPU that
runs one guest program, and return the vCPU (``vcpu.machine`` and ``world_of(vcpu)`` reach the
rest); called twice, they build two identical worlds (what the stepping widget relies on).

For the notebook's comparisons: ``dm_machine(vga_buffered=False)`` sends every write into the
VGA window synchronously (no buffered ring), ``backends_machine()`` is one PC with four IDE
disks, one behind each backend, ``read_styles()`` reads a sector in each transfer style, and
``ioreq_waits()`` measures from a trace how long the vCPU was blocked on its ioreq slot.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

from ..cpu.ops import Guest, In, Out
from ..devices.ata import (
    CMD_READ_SECTORS,
    PRIMARY,
    REG_COMMAND,
    REG_DEVICE,
    REG_ERROR,
    REG_FEATURES,
    REG_LBAH,
    REG_LBAL,
    REG_LBAM,
    REG_NSECT,
    REG_STATUS,
    SECONDARY,
    SECTOR_SIZE,
)
from ..devices.disk import DiskBackend, ImageFile, LocalDisk, NetworkStorage, RamDisk
from ..devices.ide import IdeController
from ..devices.vga import Vga
from ..errors import ConfigError
from ..guest.ide import READ_STYLES, ide_read, ide_wait_irq
from ..guest.pic import pic_init
from ..guest.vga import console_puts, draw_scene, vga_puts
from ..hw.memory import MIB
from ..trace import Trace
from ..xen.dom0 import Dom0Kernel
from ..xen.domain import Domain
from ..xen.machine import Machine
from ..xen.qemu_dm import QemuDm
from ..xen.vcpu import Vcpu

GUEST_RAM = DOM0_RAM = 256 * MIB
DISK_SECTORS = 8192  # a 4 MiB disk
IDE_BASE, IDE_CTRL, IDE_IRQ = PRIMARY
SECTOR_BUFFER = 0x100000  # where the guest kernel keeps what it reads: above the 640K-1M hole
BACKENDS = ("memory", "file", "local disk", "network storage")


@dataclass
class World:
    """What a chapter-02 scenario built."""

    machine: Machine
    dom0: Domain
    guest: Domain
    qemu: QemuDm
    ide: IdeController
    vga: Vga
    disk: DiskBackend
    #: every IDE channel qemu-dm emulates (``ide`` is the first); see ``backends_machine``
    channels: tuple[IdeController, ...] = ()


def disk_content(sectors: int = DISK_SECTORS) -> bytes:
    """What the disk holds: each sector says which it is (so any read can be checked)."""
    return b"".join(
        f"sector {n:06d} ".encode().ljust(SECTOR_SIZE, bytes([n & 0xFF])) for n in range(sectors)
    )


def make_backend(kind: str = "memory", sectors: int = DISK_SECTORS,
                 image: Path | None = None) -> DiskBackend:
    """One of the backends the thread names, holding ``disk_content()``."""
    if kind not in BACKENDS:
        raise ConfigError(f"backend {kind!r} is not one of {BACKENDS}")
    if kind == "memory":
        return RamDisk(sectors, disk_content(sectors))
    folder = None
    if image is None:  # a private image, removed when the backend is no longer used
        folder = tempfile.mkdtemp(prefix="vmmlib-disk-")
        image = Path(folder) / "disk.img"
    if not image.exists():
        file = ImageFile.create(image, sectors)
        file.write(0, disk_content(sectors))
        file.flush()
    file = ImageFile(image)
    if folder is not None:
        weakref.finalize(file, shutil.rmtree, folder, True)
    if kind == "file":
        return file
    if kind == "local disk":
        return LocalDisk(file)
    return NetworkStorage(file)


def dm_machine(backend: str | DiskBackend = "memory", vendor: str = "vmx", *,
               vga_buffered: bool = True) -> World:
    """dom0 with qemu-dm (IDE + VGA) for one HVM guest; Xen's virtual PIC for the guest.

    ``vga_buffered=False``: the VGA window is registered without the buffered ring, so every
    write into it is a synchronous ioreq (what the buffered ring saves, chapter 02 §4)."""
    disk = make_backend(backend) if isinstance(backend, str) else backend
    return _build(vendor, vga_buffered, (("primary", disk, None),))


CHANNEL_PORTS = {"primary": PRIMARY, "secondary": SECONDARY}
#: Where ``backends_machine`` puts each backend: (channel, drive).
BACKEND_DRIVES = {
    "memory": ("primary", 0),
    "file": ("primary", 1),
    "local disk": ("secondary", 0),
    "network storage": ("secondary", 1),
}


def backends_machine(vendor: str = "vmx", sectors: int = DISK_SECTORS) -> World:
    """One PC with four IDE disks, one behind each backend (``BACKEND_DRIVES``): both
    channels of the PC's IDE controller emulated by qemu-dm (QEMU's -hda ... -hdd). Each holds
    ``disk_content(sectors)``, so that any read can be checked and reads from each compared."""
    disks = {kind: make_backend(kind, sectors) for kind in BACKEND_DRIVES}
    return _build(vendor, True, (("primary", disks["memory"], disks["file"]),
                                 ("secondary", disks["local disk"], disks["network storage"])))


def _build(vendor: str, vga_buffered: bool,
           channels: tuple[tuple[str, DiskBackend, DiskBackend | None], ...]) -> World:
    machine = Machine(512 * MIB)
    dom0 = machine.add_domain("dom0", DOM0_RAM, base=0, kind="pv", privileged=True)
    guest = machine.add_domain("hvm", GUEST_RAM, base=DOM0_RAM, vendor=vendor)
    qemu = QemuDm(Dom0Kernel(dom0), guest)
    ides = []
    for channel, master, slave in channels:
        ide = IdeController(machine.clock, master, slave, channel=channel)
        qemu.attach_ide(ide, ide.irq)
        ides.append(ide)
    vga = Vga()
    qemu.attach_vga(vga, buffered=vga_buffered)
    guest.vpic.attach()  # type: ignore[union-attr]
    return World(machine, dom0, guest, qemu, ides[0], vga, channels[0][1], tuple(ides))


_WORLDS: dict[int, World] = {}


def world_of(vcpu: Vcpu) -> World:
    """The world a scenario built for ``vcpu``."""
    return _WORLDS[id(vcpu.machine)]


def _run(world: World, program: Guest) -> Vcpu:
    vcpu = Vcpu(world.guest, program)
    _WORLDS.clear()  # keep only the newest: scenarios are rebuilt, not kept
    _WORLDS[id(world.machine)] = world
    return vcpu


def vcpu_on(world: World, program: Guest) -> Vcpu:
    """A vCPU of ``world``'s guest that runs ``program`` (not started yet): another program on
    a world that already ran one (its trace and its devices' state go on)."""
    return _run(world, program)


# -- the guest programs --------------------------------------------------------------------
def status_read_program() -> Guest:
    """One IN from the IDE status port: the hop from the guest to qemu-dm and back."""
    return (yield In(IDE_BASE + REG_STATUS, 1))


def read_sector_program(lba: int = 0, style: str = "insw", irq: bool = False,
                        buffer: int | None = SECTOR_BUFFER) -> Guest:
    """Read sector ``lba`` the xv6 way: polled, or waiting for IRQ 14 (with the PIC set up)."""
    if irq:
        yield from pic_init(unmasked=(IDE_IRQ,))
        return (yield from ide_read(lba, 1, style=style, wait=ide_wait_irq,
                                    buffer=buffer if style.startswith("ins") else None))
    return (yield from ide_read(lba, 1, style=style,
                                buffer=buffer if style.startswith("ins") else None))


def vga_text_program(text: str = "Hello from the HVM guest") -> Guest:
    """A console line on the text screen, as xv6's cgaputc writes it (cells and cursor)."""
    yield from console_puts(text + "\n")


def vga_fill_program(lines: tuple[str, ...] = ("Hello from the HVM guest",)) -> Guest:
    """Text straight into the VGA text buffer, one 16-bit store per character (chapter 01's
    way): nothing but writes into the VGA window, each one an MMIO exit."""
    for row, line in enumerate(lines):
        yield from vga_puts(line, row)


def who_answers_program() -> Guest:
    """Three port accesses, three fates: port 0x80 (the I/O delay) reaches the hardware without
    an exit, the PIC's mask register (0x21) is emulated by Xen itself, the IDE status register
    (0x1F7) goes to qemu-dm. Returns what the two INs read."""
    yield Out(0x80, 1, 0)
    mask = yield In(0x21, 1)
    status = yield In(IDE_BASE + REG_STATUS, 1)
    return mask, status


def readback_program(lba: int = 5, features: int = 0x03) -> Guest:
    """The read-back problem, live: write features and a task file, write READ SECTORS to the
    command register, then read the same addresses back. Returns {register: value read}."""
    yield Out(IDE_BASE + REG_FEATURES, 1, features)
    yield Out(IDE_BASE + REG_NSECT, 1, 1)
    yield Out(IDE_BASE + REG_LBAL, 1, lba & 0xFF)
    yield Out(IDE_BASE + REG_LBAM, 1, lba >> 8 & 0xFF)
    yield Out(IDE_BASE + REG_LBAH, 1, lba >> 16 & 0xFF)
    yield Out(IDE_BASE + REG_DEVICE, 1, 0xE0 | (lba >> 24 & 0x0F))
    yield Out(IDE_BASE + REG_COMMAND, 1, CMD_READ_SECTORS)
    read = {}
    for name, reg in (("error (features written)", REG_ERROR), ("sector count", REG_NSECT),
                      ("LBA low", REG_LBAL), ("status (command written)", REG_STATUS)):
        read[name] = yield In(IDE_BASE + reg, 1)
    return read


# -- the scenarios ---------------------------------------------------------------------------
def status_read(vendor: str = "vmx", backend: str = "memory") -> Vcpu:
    """The chapter's first hop: IN from 0x1F7 through Xen, the ioreq slot, qemu-dm, back."""
    return _run(dm_machine(backend, vendor), status_read_program())


def read_sector(lba: int = 0, style: str = "insw", irq: bool = False, backend: str = "memory",
                vendor: str = "vmx") -> Vcpu:
    """Read one sector through emulated IDE (polled or interrupt-driven, in ``style``)."""
    return _run(dm_machine(backend, vendor), read_sector_program(lba, style, irq))


def vga_text(text: str = "Hello from the HVM guest", vendor: str = "vmx",
             buffered: bool = True) -> Vcpu:
    """Write a line on the text screen: MMIO into the VGA window, the writes buffered (or,
    ``buffered=False``, each one a synchronous ioreq)."""
    return _run(dm_machine(vendor=vendor, vga_buffered=buffered), vga_text_program(text))


def vga_fill(lines: tuple[str, ...] = ("Hello from the HVM guest",), vendor: str = "vmx",
             buffered: bool = True) -> Vcpu:
    """Fill text rows with one store per character: every write goes into the VGA window,
    through the buffered ring (or, ``buffered=False``, each a synchronous ioreq)."""
    return _run(dm_machine(vendor=vendor, vga_buffered=buffered), vga_fill_program(lines))


def vga_mode13h(vendor: str = "vmx") -> Vcpu:
    """Set mode 13h through the VGA ports, load a palette, draw a picture."""
    return _run(dm_machine(vendor=vendor), draw_scene())


def settle(vcpu: Vcpu) -> int:
    """The guest has finished: let the rest of its machine finish what it was asked to do
    (dom0 is scheduled, qemu-dm drains the buffered ring, disks complete), moving virtual time
    from alarm to alarm until none is left. Returns the virtual ns that took."""
    clock = vcpu.machine.clock
    began = clock.now
    if not clock.run_until(lambda: not clock.alarms):
        raise ConfigError("the machine did not settle: its alarms keep setting alarms")
    return clock.now - began


# -- measurements for the notebook ---------------------------------------------------------------
def ioreq_waits(trace: Trace, start: int = 0, stop: int | None = None) -> list[int]:
    """How long the vCPU was blocked on each synchronous ioreq among events ``start`` …
    ``stop - 1``: from Xen sending it (READY) to Xen freeing the slot (NONE), in ns."""
    waits, sent = [], None
    for i in range(*slice(start, stop).indices(len(trace))):
        event = trace[i]
        if event.kind == "ioreq":
            sent = event.time
        elif event.kind == "ioreq-done" and sent is not None:
            waits.append(event.time - sent)
            sent = None
    return waits


def _counts(trace: Trace, start: int) -> dict[str, int]:
    events = [trace[i] for i in range(start, len(trace))]
    kinds = [(e.actor, e.kind) for e in events]
    return {"exits": sum(1 for _, k in kinds if k == "exit"),
            "ioreqs": kinds.count(("xen", "ioreq")),
            "buffered": kinds.count(("xen", "bufioreq")),
            "stall_ns": sum(ioreq_waits(trace, start))}


def costs(vcpu: Vcpu) -> dict[str, int]:
    """What a finished run cost: exits, synchronous ioreqs, writes sent through the buffered
    ring, the ns the vCPU was blocked on its slot (``stall_ns``) and the virtual time (``ns``)."""
    return {**_counts(vcpu.machine.trace, 0), "ns": vcpu.machine.clock.now}


def read_styles(lba: int = 1, styles: tuple[str, ...] = READ_STYLES,
                vendor: str = "vmx") -> dict[str, dict[str, int]]:
    """Read sector ``lba`` once in each transfer style, one after the other on one world
    (polled, as xv6's boot loader): per style the exits, ioreqs and virtual ns it took, and
    whether the guest got the right bytes (1) or not (0)."""
    world = dm_machine("memory", vendor)
    found = {}
    for style in styles:
        first, began = len(world.machine.trace), world.machine.clock.now
        vcpu = vcpu_on(world, read_sector_program(lba, style))
        vcpu.run(100_000)
        right = vcpu.result == world.disk.read(lba, 1)[0]
        found[style] = {**_counts(world.machine.trace, first),
                        "ns": world.machine.clock.now - began, "right": int(right)}
    return found


def _data_delivered(trace: Trace, start: int) -> list[int]:
    """When each sector's data reached the guest: the end of each REP INSW's ioreq."""
    times, count = [], 0
    for i in range(start, len(trace)):
        event = trace[i]
        if event.kind == "ioreq":
            count = event.fields["count"]
        elif event.kind == "ioreq-done" and count == SECTOR_SIZE // 2:
            times.append(event.time)
    return times


def read_backends(sectors: int = 32, vendor: str = "vmx") -> dict[str, dict[str, int]]:
    """Read ``sectors`` sectors (one READ SECTORS, REP INSW, polled) from each disk of
    ``backends_machine()``: per backend the virtual ns of the whole read, of its first sector
    (command, request, the backend's first access) and of each further sector in the steady
    state, and ``per_mib_ns`` = first + 2047 x steady: a MiB's read estimated from this one."""
    if not 2 <= sectors <= 128:
        raise ConfigError("read 2 to 128 sectors (64 KiB at most): enough to see the rate")
    world = backends_machine(vendor, sectors=256)  # small images: quick to make
    expected = disk_content(256)[: sectors * SECTOR_SIZE]
    found = {}
    for kind, (channel, drive) in BACKEND_DRIVES.items():
        base, ctrl, _ = CHANNEL_PORTS[channel]
        trace, began = world.machine.trace, world.machine.clock.now
        first = len(trace)
        vcpu = vcpu_on(world, ide_read(0, sectors, drive, style="insw", base=base, ctrl=ctrl,
                                       buffer=SECTOR_BUFFER))
        vcpu.run(1_000_000)
        if vcpu.result != expected:
            raise ConfigError(f"the guest read the wrong bytes from the {kind} disk")
        done = _data_delivered(trace, first)
        steady = (done[-1] - done[0]) // (len(done) - 1)
        found[kind] = {"total_ns": world.machine.clock.now - began, "first_ns": done[0] - began,
                       "steady_ns": steady,
                       "per_mib_ns": done[0] - began + (MIB // SECTOR_SIZE - 1) * steady}
    return found
