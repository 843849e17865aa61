"""x86 page-table entries and a guest's page table.

A page-table entry (PTE) holds a frame number in bits 51:12 and flags below: P (present,
bit 0), R/W (writable, bit 1), U/S (user, bit 2). The same format serves the guest's own
tables (virtual → guest-physical) and the *shadow* tables a hypervisor builds for the CPU to
walk (virtual → machine); ``vmmlib.xen.shadow`` decides what a fault on a shadow entry means.

The table here is one level (virtual page number → PTE) with the real x86 PTE bits; real
tables have 2-5 levels, which changes the walk but not the decisions built on it.
Source: Intel SDM vol. 3A "Paging" (PTE format); hardware-facts.md §1.4 for the #PF error code.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..hw.memory import PAGE_SHIFT
from .exits import pf_error_code
from .operands import ADDRESS_LIMIT

PTE_PRESENT = 1 << 0
PTE_WRITABLE = 1 << 1
PTE_USER = 1 << 2
PTE_FRAME_MASK = ((1 << 52) - 1) & ~((1 << PAGE_SHIFT) - 1)


def make_pte(gfn: int, present: bool = True, writable: bool = True, user: bool = False) -> int:
    """An x86 page-table entry: frame in bits 51:12, P bit 0, R/W bit 1, U/S bit 2."""
    return (gfn << PAGE_SHIFT) | present | writable << 1 | user << 2


#: Physical addresses have at most 52 bits on x86-64 (MAXPHYADDR).
PHYS_LIMIT = 1 << 52


class PageTable:
    """A guest's page table: virtual page number → 64-bit PTE (absent = all-zero entry).

    A hypervisor that shadows this table must hear of every change (Xen write-protects the
    guest's page-table pages and traps the writes): ``watchers`` are called with the virtual
    page number of each entry that changes.
    """

    def __init__(self) -> None:
        self.entries: dict[int, int] = {}
        self.watchers: list = []

    def map(
        self, vaddr: int, gpa: int, present: bool = True, writable: bool = True, user: bool = False
    ) -> None:
        """Map the page containing ``vaddr`` to the guest-physical page containing ``gpa``."""
        for what, addr, limit in (("virtual", vaddr, ADDRESS_LIMIT), ("physical", gpa, PHYS_LIMIT)):
            if addr.__class__ is not int or not 0 <= addr < limit:
                raise ConfigError(f"{what} address {addr!r} is outside 0-{limit - 1:#x}")
        for flag in (present, writable, user):
            if flag.__class__ is not bool:
                raise ConfigError(f"PTE flags are True or False, not {flag!r}")
        if vaddr & 0xFFF or gpa & 0xFFF:
            raise ConfigError(f"map {vaddr:#x} -> {gpa:#x}: addresses must be 4 KiB aligned")
        self._set(vaddr >> PAGE_SHIFT, make_pte(gpa >> PAGE_SHIFT, present, writable, user))

    def unmap(self, vaddr: int) -> None:
        """Clear the entry of the page containing ``vaddr`` (a not-present PTE)."""
        if vaddr.__class__ is not int or not 0 <= vaddr < ADDRESS_LIMIT:
            raise ConfigError(f"virtual address {vaddr!r} is outside 0-{ADDRESS_LIMIT - 1:#x}")
        self._set(vaddr >> PAGE_SHIFT, 0)

    def _set(self, vpn: int, pte: int) -> None:
        if pte:
            self.entries[vpn] = pte
        else:
            self.entries.pop(vpn, None)
        for watcher in self.watchers:
            watcher(vpn)

    def pte(self, vaddr: int) -> int:
        """The PTE for ``vaddr`` (0 if none was ever written)."""
        return self.entries.get(vaddr >> PAGE_SHIFT, 0)

    def translate(self, vaddr: int, write: bool = False, user: bool = False) -> int | None:
        """The guest-physical address of ``vaddr``, or None if the access would #PF."""
        pte = self.pte(vaddr)
        if not pte & PTE_PRESENT or (write and not pte & PTE_WRITABLE):
            return None
        if user and not pte & PTE_USER:
            return None
        return (pte & PTE_FRAME_MASK) | (vaddr & 0xFFF)

    def error_code(self, vaddr: int, write: bool = False, user: bool = False) -> int:
        """The #PF error code the guest would see for this access."""
        return pf_error_code(bool(self.pte(vaddr) & PTE_PRESENT), write, user)
