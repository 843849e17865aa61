"""A Xen domain: one virtual machine, its RAM behind a p2m, its emulated devices, its intercepts.

A domain's RAM is a range of machine frames reached through a **p2m** table (guest frame →
machine frame); its emulated devices sit on its own port and MMIO buses; its intercept map says
which ports trap; its shadow table is what the CPU walks for its memory accesses. This is the
thread's picture: the guest thinks its RAM is 0-256 MiB, the machine put it at 256-512 MiB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..cpu.iobitmap import SvmIopm, VmxIoBitmaps
from ..cpu.paging import PageTable
from ..cpu.vmcs import VENDORS
from ..errors import BadAddressError, BadSizeError, ConfigError
from ..hw.bus import Device, MemoryBus, PortBus
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from .evtchn import EventChannels
from .shadow import ShadowTable
from .vpic import VirtualPic

if TYPE_CHECKING:
    from .ioreq_server import IoreqServer
    from .machine import Machine

KINDS = ("hvm", "pv")


class Domain:
    """One virtual machine (a Xen domain; an HVM guest or a paravirtualized one)."""

    def __init__(
        self, machine: Machine, name: str, domid: int, ram: int, base: int, kind: str, vendor: str,
        privileged: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a domain needs a name, not {name!r}")
        for what, value in (("RAM size", ram), ("RAM base", base)):
            if value.__class__ is not int:
                raise ConfigError(f"{name}: the {what} is a whole number of bytes, not {value!r}")
        if privileged.__class__ is not bool:
            raise ConfigError(f"{name}: privileged is True or False, not {privileged!r}")
        if kind not in KINDS:
            raise ConfigError(f"domain kind {kind!r} is not one of {KINDS}")
        if vendor not in VENDORS:
            raise ConfigError(f"vendor {vendor!r} is not one of {VENDORS}")
        if ram <= 0 or base < 0 or ram & PAGE_MASK or base & PAGE_MASK:
            raise ConfigError("domain RAM size and base must be non-negative multiples of 4 KiB")
        if base + ram > machine.memory.size:
            raise BadAddressError(
                f"{name}: RAM {base:#x}-{base + ram - 1:#x} does not fit in the machine's "
                f"{machine.memory.size >> 20} MiB"
            )
        for other in machine.domains:
            if base < other.machine_base + other.ram_size and other.machine_base < base + ram:
                raise ConfigError(f"{name}: RAM overlaps the RAM of {other.name}")
        self.machine = machine
        self.name = name
        self.domid = domid
        self.privileged = privileged  # the control domain (dom0): may use privileged hypercalls
        self.kind = kind
        self.vendor = vendor
        self.ram_size = ram
        self.machine_base = base
        first = base >> PAGE_SHIFT
        self.p2m = np.arange(first, first + (ram >> PAGE_SHIFT), dtype=np.int64)
        self.ports = PortBus(f"{name} emulated ports")
        self.mmio = MemoryBus(f"{name} MMIO")
        self.intercepts: VmxIoBitmaps | SvmIopm = (
            VmxIoBitmaps.xen_default() if vendor == "vmx" else SvmIopm.xen_default()
        )
        self.shadow_table = ShadowTable()
        self._page_table: PageTable | None = None
        # what chapter 02 and 03 add: event channels (shared_info in the top page of RAM),
        # Xen's virtual PIC (HVM), the device model's ioreq server
        self.evtchn = EventChannels(self)
        self.vpic: VirtualPic | None = VirtualPic(self) if kind == "hvm" else None
        self.ioreq_server: IoreqServer | None = None
        #: HVM_PARAM_CALLBACK_IRQ's vector (None: no callback; see vmmlib.xen.upcall)
        self.callback_vector: int | None = None
        if kind == "pv":
            self._direct_map()
        # what the exit handlers reach on every exit, looked up once
        self.clock = machine.clock
        self.record = machine.trace.record
        self.pio_ns = machine.costs.decode_ns + machine.costs.emulate_ns

    def __repr__(self) -> str:
        if not hasattr(self, "ram_size"):  # (refused while being built)
            return "Domain(...)"
        return f"Domain({self.name!r}, {self.kind}, {self.vendor}, {self.ram_size >> 20} MiB)"

    @property
    def page_table(self) -> PageTable | None:
        """The guest's own page table (None: guest paging off, virtual = guest-physical).

        Setting it is the guest loading CR3: the shadow starts empty, and Xen watches the table
        (it write-protects the guest's page-table pages), dropping a shadow entry whenever the
        guest changes the PTE behind it."""
        return self._page_table

    @page_table.setter
    def page_table(self, table: PageTable | None) -> None:
        if table is not None and not isinstance(table, PageTable):
            raise ConfigError(f"{self.name}: a page table is a PageTable or None, not {table!r}")
        if self._page_table is not None:
            self._page_table.watchers.remove(self._pte_changed)
        self._page_table = table
        self.shadow_table.drop_frames(lambda gfn: False)
        if table is not None:
            table.watchers.append(self._pte_changed)
        if self.kind == "pv":
            self._direct_map()

    def _pte_changed(self, vpn: int) -> None:
        self.shadow_table.drop(vpn)
        if self.kind == "pv":
            self._direct_map_page(vpn)

    def _direct_map(self) -> None:
        """A PV guest runs on its own page tables, which Xen validates as the guest writes
        them (direct paging): the CPU's table holds every valid RAM mapping from the start,
        so a PV guest never faults on memory it has mapped. Paging off: all of its RAM."""
        if self._page_table is None:
            self.shadow_table.fill_all(self.p2m)
            for region in self.mmio.regions:  # pages holding MMIO are not RAM
                for vpn in range(region.base >> PAGE_SHIFT, (region.end >> PAGE_SHIFT) + 1):
                    self.shadow_table.drop(vpn)
        else:
            for vpn in list(self._page_table.entries):
                self._direct_map_page(vpn)

    def _direct_map_page(self, vpn: int) -> None:
        vaddr = vpn << PAGE_SHIFT
        table = self._page_table
        gpa = vaddr if table is None else table.translate(vaddr)
        if gpa is not None and self.is_ram(gpa):
            writable = table is None or table.translate(vaddr, True) is not None
            self.shadow_table.fill(vaddr, gpa, self.gfn_to_mfn(gpa >> PAGE_SHIFT), writable)

    @property
    def shadow(self) -> dict[int, int]:
        """The filled shadow entries as virtual page → guest-physical page address."""
        return {vpn: gfn << PAGE_SHIFT for vpn, gfn in self.shadow_table.gfns.items()}

    # -- devices ---------------------------------------------------------------------------
    def emulate_ports(self, base: int, length: int, device: Device, name: str) -> None:
        """Put an emulated device on ports ``base`` …; its ports are intercepted."""
        self._check_device(device, name)
        self.ports.claim(base, length, device, name)
        self.intercepts.intercept(base, base + length - 1)

    def emulate_mmio(self, base: int, length: int, device: Device, name: str) -> None:
        """Put an emulated device at guest-physical ``base`` …; its pages never get a shadow
        (a page holding any part of an MMIO range is not RAM: all of it is emulated)."""
        self._check_device(device, name)
        self.mmio.claim(base, length, device, name)
        self.forget_shadows_of_mmio(base, length)

    def forget_shadows_of_mmio(self, base: int, length: int) -> None:
        """Drop the shadow entries of pages that an MMIO range now covers."""
        self.shadow_table.drop_frames(lambda gfn: not self._page_has_mmio(gfn << PAGE_SHIFT))

    def _check_device(self, device: Device, name: str) -> None:
        if not all(callable(getattr(device, m, None)) for m in ("read", "write")):
            raise ConfigError(f"{self.name}: {name} is not a device (it needs read and write)")
        for dom in self.machine.domains:
            for bus in (dom.ports, dom.mmio):
                for region in bus.regions:
                    if region.device is device:
                        raise ConfigError(
                            f"{self.name}: this {name} object already answers as {region.name} "
                            f"on {bus.name}; give each claim its own device"
                        )

    def assign_ports(self, base: int, length: int) -> None:
        """Give the domain the machine's real device on these ports: no intercept at all."""
        for port in range(base, base + length):
            if self.machine.ports.find(port) is None:
                raise ConfigError(f"no machine device answers port {port:#x}")
        self.intercepts.allow(base, base + length - 1)

    # -- memory ----------------------------------------------------------------------------
    def gfn_to_mfn(self, gfn: int) -> int:
        """Look up the p2m: the machine frame behind guest frame ``gfn``."""
        if not 0 <= gfn < len(self.p2m):
            raise BadAddressError(f"{self.name}: guest frame {gfn:#x} is not RAM")
        return int(self.p2m[gfn])

    def gpa_to_maddr(self, gpa: int) -> int:
        """Guest-physical address → machine address, through the p2m."""
        return (self.gfn_to_mfn(gpa >> PAGE_SHIFT) << PAGE_SHIFT) | (gpa & PAGE_MASK)

    def is_ram(self, gpa: int) -> bool:
        """Is ``gpa`` guest RAM? Not if it is beyond the RAM, or on a page that holds any part
        of an emulated MMIO range (the p2m types whole pages: MMIO or RAM)."""
        return 0 <= gpa < self.ram_size and not self._page_has_mmio(gpa)

    def _page_has_mmio(self, gpa: int) -> bool:
        first = gpa & ~PAGE_MASK
        if self.mmio.overlaps(first, first + PAGE_MASK):
            return True
        server = self.ioreq_server
        return server is not None and any(
            a <= first + PAGE_MASK and first <= b for a, b, _, _ in server.mmio_ranges
        )

    def read_bytes(self, gpa: int, length: int) -> bytes:
        """``length`` bytes of guest RAM at guest-physical ``gpa``, page by page via the p2m."""
        out = bytearray()
        while length:
            n = min(length, PAGE_SIZE - (gpa & PAGE_MASK))
            out += self.machine.memory.read_bytes(self.gpa_to_maddr(gpa), n)
            gpa, length = gpa + n, length - n
        return bytes(out)

    def write_bytes(self, gpa: int, data: bytes) -> None:
        """Store ``data`` in guest RAM at guest-physical ``gpa`` (every page translated first)."""
        pieces, at, left = [], gpa, len(data)
        while left:
            n = min(left, PAGE_SIZE - (at & PAGE_MASK))
            pieces.append((self.gpa_to_maddr(at), n))
            at, left = at + n, left - n
        for maddr, n in pieces:
            self.machine.memory.write_bytes(maddr, data[:n])
            data = data[n:]

    def copy_from_guest(self, vaddr: int, length: int) -> bytes | None:
        """Read ``length`` bytes at guest-virtual ``vaddr`` as Xen's copy_from_guest does:
        through the guest's page table and the p2m, RAM only; None if any byte is not there."""
        out = bytearray()
        for maddr, n in self._guest_pieces(vaddr, length, write=False) or ():
            out += self.machine.memory.read_bytes(maddr, n)
        return bytes(out) if len(out) == length else None

    def copy_to_guest(self, vaddr: int, data: bytes) -> bool:
        """Write ``data`` at guest-virtual ``vaddr`` (copy_to_guest); False, with nothing
        written, if any byte is not writable guest RAM."""
        pieces = self._guest_pieces(vaddr, len(data), write=True)
        if pieces is None:
            return False
        for maddr, n in pieces:
            self.machine.memory.write_bytes(maddr, data[:n])
            data = data[n:]
        return True

    def _guest_pieces(self, vaddr: int, length: int, write: bool) -> list | None:
        if vaddr.__class__ is not int or length.__class__ is not int or length < 0:
            return None
        pieces = []
        while length:
            n = min(length, PAGE_SIZE - (vaddr & PAGE_MASK))
            table = self._page_table
            gpa = vaddr if table is None else table.translate(vaddr, write)
            if gpa is None or not self.is_ram(gpa):
                return None
            pieces.append((self.gpa_to_maddr(gpa), n))
            vaddr, length = vaddr + n, length - n
        return pieces

    def _ram_pieces(self, gpa: int, size: int) -> list[tuple[int, int]]:
        """(machine address, length) of each guest page an access touches, via the p2m.

        Each page is translated on its own, as the MMU does: consecutive guest frames need not
        be consecutive machine frames, and the frame after the last one is not RAM.
        """
        if size not in (1, 2, 4, 8):
            raise BadSizeError(f"a memory access moves 1, 2, 4 or 8 bytes, not {size!r}")
        pieces = []
        while size:
            n = min(size, PAGE_SIZE - (gpa & PAGE_MASK))
            pieces.append((self.gpa_to_maddr(gpa), n))
            gpa, size = gpa + n, size - n
        return pieces

    def read_ram(self, gpa: int, size: int) -> int:
        """Read guest RAM (an access that crosses a page is translated page by page)."""
        mem = self.machine.memory
        data = b"".join(mem.read_bytes(maddr, n) for maddr, n in self._ram_pieces(gpa, size))
        return int.from_bytes(data, "little")

    def write_ram(self, gpa: int, size: int, value: int) -> None:
        """Write guest RAM (an access that crosses a page is translated page by page)."""
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        for maddr, n in self._ram_pieces(gpa, size):  # all translated before any byte moves
            self.machine.memory.write_bytes(maddr, data[:n])
            data = data[n:]
