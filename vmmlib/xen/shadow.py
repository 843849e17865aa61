"""Shadow paging: the page tables Xen builds for the CPU, and the MMIO decision on a fault.

In 2006 (before EPT/NPT) a hypervisor ran an HVM guest on *shadow* page tables: the CPU walks
tables the hypervisor builds from the guest's own, mapping guest-virtual pages straight to
*machine* frames (guest table, then the p2m). To trap MMIO, the hypervisor gives an MMIO page
no shadow entry, so every access to it faults. On such a #PF the hypervisor walks the
*guest's* table to decide what the fault is:

* the guest's own entry is not present (or forbids the access): a real page fault, which
  is injected into the guest;
* the guest maps the address to a guest-physical page inside an emulated MMIO range: MMIO,
  which is emulated (the guest never sees a fault);
* the guest maps it to ordinary RAM: neither — the shadow was merely not filled yet; the
  hypervisor fills it and retries (a "hidden" fault).

What the model simplifies: from November 2006 Xen's shadow code did not leave MMIO entries
empty but wrote "magic" entries (present, with reserved bits set and the guest frame encoded)
so that an MMIO fault is recognised from its error code without a walk; the decision is the
same. Real shadow tables mirror the guest's multi-level tables; here both are one level.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from ..cpu.paging import PTE_PRESENT, PTE_WRITABLE, PageTable
from ..hw.bus import MemoryBus
from ..hw.memory import PAGE_SHIFT


class FaultKind(str, Enum):
    """What a not-present shadow entry turned out to be."""

    MMIO = "mmio"  # emulate the access in the hypervisor or device model
    PAGE_FAULT = "page-fault"  # a real #PF: inject it into the guest
    HIDDEN = "neither"  # a hidden fault: fill the shadow entry and retry


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


class ShadowTable:
    """The shadow entries of one domain: virtual page → shadow PTE (machine frame + flags).

    ``entries`` is the dict the CPU walks (the control block's ``shadow``); ``gfns`` remembers
    which guest frame each entry came from, so entries can be dropped when that frame changes
    role (an MMIO range is added over it).
    """

    def __init__(self) -> None:
        self.entries: dict[int, int] = {}
        self.gfns: dict[int, int] = {}

    def fill(self, vaddr: int, gpa: int, mfn: int, writable: bool) -> None:
        """Install the entry for ``vaddr``'s page: machine frame ``mfn``, the guest's R/W bit."""
        vpn = vaddr >> PAGE_SHIFT
        self.entries[vpn] = mfn << PAGE_SHIFT | PTE_PRESENT | (PTE_WRITABLE if writable else 0)
        self.gfns[vpn] = gpa >> PAGE_SHIFT

    def fill_all(self, p2m: np.ndarray) -> None:
        """Map virtual page n to guest frame n for every frame of ``p2m``, writable (a PV
        guest's direct map with paging off), in one go."""
        n = len(p2m)
        sptes = (p2m.astype(np.int64) << PAGE_SHIFT | (PTE_PRESENT | PTE_WRITABLE)).tolist()
        self.entries.update(zip(range(n), sptes, strict=True))
        self.gfns.update(zip(range(n), range(n), strict=True))

    def drop(self, vpn: int) -> bool:
        """Drop the entry of virtual page ``vpn`` (INVLPG, or the guest changed its PTE)."""
        self.gfns.pop(vpn, None)
        return self.entries.pop(vpn, None) is not None

    def maps(self, vaddr: int) -> bool:
        """Is there a shadow entry for ``vaddr``'s page?"""
        return vaddr >> PAGE_SHIFT in self.entries

    def guest_frames(self) -> dict[int, int]:
        """virtual page → guest frame of every filled entry (what the notebooks plot)."""
        return dict(self.gfns)

    def drop_frames(self, keep: callable) -> None:
        """Drop every entry whose guest frame ``keep(gfn)`` rejects."""
        for vpn in [v for v, gfn in self.gfns.items() if not keep(gfn)]:
            del self.entries[vpn]
            del self.gfns[vpn]
