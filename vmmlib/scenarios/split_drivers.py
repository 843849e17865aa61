"""Chapter 03's scenarios: a guest's disk through the split drivers, blkfront to blkback.

``split_machine()`` builds the thread's picture of a paravirtual device: a 512 MiB PC running
Xen, dom0 (PV, the control domain, machine memory 0-256 MiB) with the block back end and the
real disk (one of chapter 02's backends), and a guest (PV, or HVM with PV drivers) whose
blkfront shares a ring page and an event channel with it. The toolstack's part is done here:
the guest gets a one-frame grant table, and blkback watches the guest's xenstore directory so
that it connects once the front end has published its ring-ref and event-channel.

The guest kernel's memory, as the scenarios lay it out (guest-physical, identity-mapped):

=============  ==================================================================
0x10000        the shared ring page (blkif: 32 slots of 112 bytes after a 64-byte header)
0x11000        the grant table's frame (512 v1 entries; refs 0-7 reserved)
0x12000        scratch for hypercall arguments
0x100000       the I/O buffer (up to 1 MiB)
top page       shared_info
=============  ==================================================================

``compare_paths`` reads the same bytes three ways — chapter 02's emulated IDE in an HVM guest,
blkfront in a PV guest, blkfront in an HVM guest — and counts what each costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cpu.ops import Guest
from ..devices.disk import DiskBackend
from ..errors import ConfigError
from ..guest.blkfront import Blkfront, blkfront_connect, blkfront_io
from ..guest.ide import ide_read
from ..guest.xen_events import shared_info_address
from ..hw.memory import MIB, PAGE_SHIFT
from ..trace import Trace
from ..xen.blkback import Blkback, Vbd
from ..xen.dom0 import Dom0Kernel
from ..xen.domain import Domain
from ..xen.machine import Machine
from ..xen.vcpu import Vcpu
from ..xen.xenstore import XenbusStateInitialised, home
from .device_model import DISK_SECTORS, SECTOR_BUFFER, dm_machine, make_backend

DOM0_RAM = 256 * MIB
GUEST_RAM = 128 * MIB  # (the rest of the 512 MiB machine: room for another guest)
RING, GRANT_FRAME, SCRATCH = 0x10000, 0x11000, 0x12000
BUFFER = SECTOR_BUFFER
VDEV = 768  # xvda / hda's device number (major 3, minor 0), as xl names the first disk
KINDS = ("pv", "hvm")


@dataclass
class SplitWorld:
    """What a chapter-03 scenario built."""

    machine: Machine
    dom0: Domain
    guest: Domain
    blkback: Blkback
    disk: DiskBackend
    front: Blkfront

    @property
    def vbd(self) -> Vbd | None:
        """The back end's side of the guest's disk, once connected."""
        return self.blkback.vbds.get(self.guest.domid)


def frontend_dir(guest: Domain) -> str:
    return f"{home(guest.domid)}/device/vbd/{VDEV}"


def split_machine(kind: str = "pv", backend: str | DiskBackend = "memory",
                  vendor: str = "vmx", start: int = 0) -> SplitWorld:
    """dom0 with blkback and a disk; one guest (``kind`` "pv" or "hvm") with blkfront.
    ``start`` ≠ 0 starts the ring's indices there (to watch them wrap past 2**32)."""
    machine = Machine(512 * MIB)
    dom0 = machine.add_domain("dom0", DOM0_RAM, base=0, kind="pv", privileged=True)
    blkback = Blkback(Dom0Kernel(dom0), machine.grant_tables)
    disk = make_backend(backend) if isinstance(backend, str) else backend
    guest, front = add_guest(machine, blkback, disk, kind, vendor=vendor, start=start)
    return SplitWorld(machine, dom0, guest, blkback, disk, front)


def add_guest(machine: Machine, blkback: Blkback, disk: DiskBackend, kind: str = "pv",
              name: str | None = None, vendor: str = "vmx", start: int = 0,
              ram: int = GUEST_RAM) -> tuple[Domain, Blkfront]:
    """The toolstack's part for one more guest with a virtual disk on ``disk``: the domain,
    its grant table, its blkfront (not yet connected), blkback's watch on its xenstore
    directory."""
    if kind not in KINDS:
        raise ConfigError(f"the guest is one of {KINDS}, not {kind!r}")
    guest = machine.add_domain(name or f"{kind}-guest", ram, kind=kind, vendor=vendor)
    machine.grant_tables.setup(guest, [GRANT_FRAME >> PAGE_SHIFT])
    front = Blkfront(ring=RING, grant_frames=(GRANT_FRAME,), scratch=SCRATCH,
                     shared_info=shared_info_address(ram), hvm=kind == "hvm",
                     trace=machine.trace, now=lambda: machine.clock.now,
                     backend_domid=blkback.dom0.domain.domid, start=start)
    where = frontend_dir(guest)

    def frontend_changed(path: str, value: str) -> None:  # blkback's xenbus watch
        store = machine.xenstore
        if (path == f"{where}/state" and value == str(XenbusStateInitialised)
                and guest.domid not in blkback.vbds):
            blkback.connect(guest, int(store.read(f"{where}/ring-ref") or -1),
                            int(store.read(f"{where}/event-channel") or -1), disk)

    machine.xenstore.watch(where, frontend_changed)
    return guest, front


def publish(machine: Machine, guest: Domain, ring_ref: int, port: int) -> None:
    """The front end's xenbus writes (talk_to_blkback): ring-ref, event-channel, state."""
    store, where = machine.xenstore, frontend_dir(guest)
    store.write(f"{where}/ring-ref", ring_ref)
    store.write(f"{where}/event-channel", port)
    store.write(f"{where}/state", XenbusStateInitialised)


# -- the guest programs --------------------------------------------------------------------------
def connect_program(machine: Machine, guest: Domain, front: Blkfront) -> Guest:
    """blkfront's probe: set up the ring and the channel, publish them (blkback connects)."""
    ring_ref, port = yield from blkfront_connect(front)
    publish(machine, guest, ring_ref, port)
    return ring_ref, port


def io_program(world: SplitWorld, op: str = "read", sector: int = 0, count: int = 8,
               buffer: int = BUFFER) -> Guest:
    """Connect blkfront, then read (or write) ``count`` sectors at ``sector``."""
    yield from connect_program(world.machine, world.guest, world.front)
    return (yield from blkfront_io(world.front, op, sector, count, buffer))


# -- the scenarios -------------------------------------------------------------------------------
def split_read(kind: str = "pv", sector: int = 0, count: int = 8, backend: str = "memory",
               vendor: str = "vmx", start: int = 0) -> Vcpu:
    """A guest reads ``count`` sectors through blkfront and blkback (a vCPU, not yet run)."""
    world = split_machine(kind, backend, vendor, start)
    vcpu = Vcpu(world.guest, io_program(world, "read", sector, count))
    _WORLDS.clear()
    _WORLDS[id(world.machine)] = world
    return vcpu


_WORLDS: dict[int, SplitWorld] = {}


def split_world_of(vcpu: Vcpu) -> SplitWorld:
    """The world ``split_read`` built for ``vcpu``."""
    return _WORLDS[id(vcpu.machine)]


# -- chapter 02's path against the split drivers -----------------------------------------------
PATHS = ("emulated IDE (HVM)", "blkfront (PV guest)", "blkfront (HVM guest)")


@dataclass
class PathCost:
    """What reading the same bytes cost on one path."""

    path: str
    nbytes: int
    exits: int
    hypercalls: int
    events: int
    ioreqs: int
    virtual_ns: int

    def per_mib(self, value: int) -> float:
        return value * MIB / self.nbytes


def count_costs(path: str, nbytes: int, trace: Trace, elapsed: int) -> PathCost:
    """Count exits, hypercalls (the guest's: VMCALL exits or PV hypercall rows), events sent
    and ioreqs in a trace."""
    rows = trace.events()
    exits = sum(1 for e in rows if e.kind == "exit")
    hypercalls = sum(1 for e in rows if e.kind == "hypercall" and e.actor == "xen")
    events = sum(1 for e in rows if e.kind == "evtchn")
    ioreqs = sum(1 for e in rows if e.actor == "xen" and e.kind == "ioreq")
    return PathCost(path, nbytes, exits, hypercalls, events, ioreqs, elapsed)


def compare_paths(sectors: int = 64, backend: str = "memory") -> list[PathCost]:
    """Read ``sectors`` sectors from sector 0 on each of the three paths (REP INSW for the
    emulated disk, a sector at a time as xv6 does) and count what each cost."""
    if sectors.__class__ is not int or not 1 <= sectors <= min(DISK_SECTORS, 2048):
        raise ConfigError(f"read 1 … 2048 sectors, not {sectors!r}")
    nbytes = sectors * 512
    out = []
    world = dm_machine(backend)
    vcpu = Vcpu(world.guest, ide_read(0, sectors, style="insw", buffer=BUFFER))
    vcpu.run(50_000_000)
    _check_done(vcpu)
    out.append(count_costs(PATHS[0], nbytes, world.machine.trace, world.machine.clock.now))
    for kind, path in (("pv", PATHS[1]), ("hvm", PATHS[2])):
        vcpu = split_read(kind, 0, sectors, backend)
        vcpu.run()
        _check_done(vcpu)
        machine = vcpu.machine
        out.append(count_costs(path, nbytes, machine.trace, machine.clock.now))
    return out


def _check_done(vcpu: Vcpu) -> None:
    if vcpu.crashed is not None or not vcpu.done:
        raise ConfigError(f"the read did not finish: {vcpu.crashed or 'still running'}")


__all__ = [
    "BUFFER", "PATHS", "PathCost", "SplitWorld", "add_guest", "compare_paths", "connect_program",
    "count_costs", "io_program", "publish", "split_machine", "split_read", "split_world_of",
]
