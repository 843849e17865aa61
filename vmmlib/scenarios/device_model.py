"""Chapter 02's scenarios: an HVM guest whose IDE disk and VGA card live in qemu-dm, in dom0.

``dm_machine()`` builds the thread's picture: a 512 MiB PC running Xen with dom0 (PV, the
control domain, machine memory 0-256 MiB) and one HVM guest (its RAM at 256-512 MiB). qemu-dm
runs in dom0 with an IDE controller (the primary channel, one disk behind one of the three
backends the thread names: a file, a local disk, network storage — or memory) and a VGA card;
Xen emulates the guest's PIC itself. The scenario functions build that world and a vCPU that
runs one guest program, and return the vCPU (``vcpu.machine`` and ``world_of(vcpu)`` reach the
rest); called twice, they build two identical worlds (what the stepping widget relies on).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..cpu.ops import Guest, In
from ..devices.ata import PRIMARY, REG_STATUS, SECTOR_SIZE
from ..devices.disk import DiskBackend, ImageFile, LocalDisk, NetworkStorage, RamDisk
from ..devices.ide import IdeController
from ..devices.vga import Vga
from ..errors import ConfigError
from ..guest.ide import ide_read, ide_wait_irq
from ..guest.pic import pic_init
from ..guest.vga import console_puts, draw_scene
from ..hw.memory import MIB
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
    if image is None:
        image = Path(tempfile.mkdtemp(prefix="vmmlib-disk-")) / "disk.img"
    if not image.exists():
        file = ImageFile.create(image, sectors)
        file.write(0, disk_content(sectors))
        file.flush()
    file = ImageFile(image)
    if kind == "file":
        return file
    if kind == "local disk":
        return LocalDisk(file)
    return NetworkStorage(file)


def dm_machine(backend: str | DiskBackend = "memory", vendor: str = "vmx") -> World:
    """dom0 with qemu-dm (IDE + VGA) for one HVM guest; Xen's virtual PIC for the guest."""
    machine = Machine(512 * MIB)
    dom0 = machine.add_domain("dom0", DOM0_RAM, base=0, kind="pv", privileged=True)
    guest = machine.add_domain("hvm", GUEST_RAM, base=DOM0_RAM, vendor=vendor)
    qemu = QemuDm(Dom0Kernel(dom0), guest)
    disk = make_backend(backend) if isinstance(backend, str) else backend
    ide = IdeController(machine.clock, disk)
    qemu.attach_ide(ide, IDE_IRQ)
    vga = Vga()
    qemu.attach_vga(vga)
    guest.vpic.attach()  # type: ignore[union-attr]
    return World(machine, dom0, guest, qemu, ide, vga, disk)


_WORLDS: dict[int, World] = {}


def world_of(vcpu: Vcpu) -> World:
    """The world a scenario built for ``vcpu``."""
    return _WORLDS[id(vcpu.machine)]


def _run(world: World, program: Guest) -> Vcpu:
    vcpu = Vcpu(world.guest, program)
    _WORLDS.clear()  # keep only the newest: scenarios are rebuilt, not kept
    _WORLDS[id(world.machine)] = world
    return vcpu


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


# -- the scenarios ---------------------------------------------------------------------------
def status_read(vendor: str = "vmx", backend: str = "memory") -> Vcpu:
    """The chapter's first hop: IN from 0x1F7 through Xen, the ioreq slot, qemu-dm, back."""
    return _run(dm_machine(backend, vendor), status_read_program())


def read_sector(lba: int = 0, style: str = "insw", irq: bool = False, backend: str = "memory",
                vendor: str = "vmx") -> Vcpu:
    """Read one sector through emulated IDE (polled or interrupt-driven, in ``style``)."""
    return _run(dm_machine(backend, vendor), read_sector_program(lba, style, irq))


def vga_text(text: str = "Hello from the HVM guest", vendor: str = "vmx") -> Vcpu:
    """Write a line on the text screen: MMIO into the VGA window, the writes buffered."""
    return _run(dm_machine(vendor=vendor), vga_text_program(text))


def vga_mode13h(vendor: str = "vmx") -> Vcpu:
    """Set mode 13h through the VGA ports, load a palette, draw a picture."""
    return _run(dm_machine(vendor=vendor), draw_scene())
