"""Guest page tables with present bits, and the shadow-paging MMIO decision.

In 2006 (before EPT/NPT) a hypervisor ran an HVM guest on *shadow* page tables: the CPU
walks tables the hypervisor builds from the guest's own. To trap MMIO, the hypervisor leaves
the shadow entry of an MMIO page **not present**, so every access to it faults. On such a
#PF the hypervisor walks the *guest's* table to decide what the fault is:

* the guest's own entry is not present (or forbids the access): a real page fault, which
  is injected into the guest;
* the guest maps the address to a guest-physical page inside an emulated MMIO range: MMIO,
  which is emulated (the guest never sees a fault);
* the guest maps it to ordinary RAM: neither — the shadow was merely not filled yet; the
  hypervisor fills it and retries (a "hidden" fault).

The table here is one level (virtual page number → PTE) with the real x86 PTE bits; real
tables have 2-5 levels, which changes the walk but not the decision.
"""

from __future__ import annotations

from enum import Enum

from .bus import MemoryBus
from .errors import ConfigError
from .exits import pf_error_code
from .memory import PAGE_SHIFT

PTE_PRESENT = 1 << 0
PTE_WRITABLE = 1 << 1
PTE_USER = 1 << 2
PTE_FRAME_MASK = ((1 << 52) - 1) & ~((1 << PAGE_SHIFT) - 1)


def make_pte(gfn: int, present: bool = True, writable: bool = True, user: bool = False) -> int:
    """An x86 page-table entry: frame in bits 51:12, P bit 0, R/W bit 1, U/S bit 2."""
    return (gfn << PAGE_SHIFT) | present | writable << 1 | user << 2


class FaultKind(str, Enum):
    """What a not-present shadow entry turned out to be."""

    MMIO = "mmio"  # emulate the access in the hypervisor or device model
    PAGE_FAULT = "page-fault"  # a real #PF: inject it into the guest
    HIDDEN = "neither"  # a hidden fault: fill the shadow entry and retry


class PageTable:
    """A guest's page table: virtual page number → 64-bit PTE (absent = all-zero entry)."""

    def __init__(self) -> None:
        self.entries: dict[int, int] = {}

    def map(
        self, vaddr: int, gpa: int, present: bool = True, writable: bool = True, user: bool = False
    ) -> None:
        """Map the page containing ``vaddr`` to the guest-physical page containing ``gpa``."""
        if vaddr & 0xFFF or gpa & 0xFFF:
            raise ConfigError(f"map {vaddr:#x} -> {gpa:#x}: addresses must be 4 KiB aligned")
        self.entries[vaddr >> PAGE_SHIFT] = make_pte(gpa >> PAGE_SHIFT, present, writable, user)

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


def classify_fault(
    table: PageTable | None, mmio: MemoryBus, vaddr: int, write: bool = False, user: bool = False
) -> FaultKind:
    """Decide, as a shadow-paging hypervisor does, what a #PF on ``vaddr`` is.

    ``table`` is the guest's page table (None = guest paging off: virtual = physical).
    """
    gpa = vaddr if table is None else table.translate(vaddr, write, user)
    if gpa is None:
        return FaultKind.PAGE_FAULT
    if mmio.find(gpa) is not None:
        return FaultKind.MMIO
    return FaultKind.HIDDEN
