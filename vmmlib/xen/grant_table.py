"""Grant tables (v1): how one domain lets another reach one of its pages.

A *grant reference* is an index into the granting domain's table of 8-byte entries
(``struct grant_entry_v1``: flags u16 @0, domid u16 @2, frame u32 @4; 512 per 4 KiB frame)
that the granter writes in its own memory: "domain ``domid`` may access my frame ``frame``,
read-only if GTF_readonly". The grantee never learns a machine address: it hands (domain, ref)
to Xen, which reads the entry, checks it and maps or copies the frame (``grant_ops``). While a
grant is in use Xen sets GTF_reading / GTF_writing in the entry and keeps a private *active*
entry (who pinned it, the frame it resolved, the pin counts), so a granter that rewrites the
entry afterwards changes nothing until the last unmap.

This module holds the shared ABI — constants, the entry layout, the hypercall argument
layouts — the table in the granter's memory (``GrantTable``) and the granter's side of the
protocol (``GuestGrants``). Sources: xen-project/xen ``xen/include/public/grant_table.h``
(eabc4d60: entry layout, GTF_*, GNTMAP_*, GNTCOPY_*, GNTTABOP_*, GNTST_*,
GNTTAB_NR_RESERVED_ENTRIES, the ordering rules), ``xen/include/public/xen.h`` (DOMID_SELF),
``xen/common/grant_table.c`` (gnttab_max_frames = 64); the guest side as Linux
drivers/xen/grant-table.c (``gnttab_grant_foreign_access_ref``,
``gnttab_end_foreign_access_ref`` for v1). Struct layouts derived with gcc 12 (x86-64).

Modelling choice: the table's frames are frames of the granter's own RAM that it names at
setup (Xen allocates them and the guest maps them into its physmap); Xen reaches them through
the machine frames it resolved then.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import ConfigError
from ..hw.memory import PAGE_SHIFT, PAGE_SIZE
from .ring import Steps, run

if TYPE_CHECKING:
    from .domain import Domain

GTF_invalid, GTF_permit_access, GTF_accept_transfer, GTF_transitive = 0, 1, 2, 3
GTF_type_mask = 3
GTF_readonly, GTF_reading, GTF_writing = 1 << 2, 1 << 3, 1 << 4
GTF_PWT, GTF_PCD, GTF_PAT, GTF_sub_page = 1 << 5, 1 << 6, 1 << 7, 1 << 8

GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly = 1 << 0, 1 << 1, 1 << 2
GNTMAP_application_map, GNTMAP_contains_pte = 1 << 3, 1 << 4
GNTCOPY_source_gref, GNTCOPY_dest_gref = 1 << 0, 1 << 1

GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref, GNTTABOP_setup_table = 0, 1, 2
GNTTABOP_copy = 5

GNTST_okay = 0
GNTST_general_error = -1
GNTST_bad_domain = -2
GNTST_bad_gntref = -3
GNTST_bad_handle = -4
GNTST_bad_virt_addr = -5
GNTST_bad_dev_addr = -6
GNTST_no_device_space = -7
GNTST_permission_denied = -8
GNTST_bad_page = -9
GNTST_bad_copy_arg = -10
GNTST_address_too_big = -11
GNTST_eagain = -12
GNTST_NAMES = {
    0: "okay", -1: "general error", -2: "bad domain", -3: "bad grant ref", -4: "bad handle",
    -5: "bad virtual address", -6: "bad device address", -7: "no device space",
    -8: "permission denied", -9: "bad page", -10: "bad copy argument",
    -11: "address too big", -12: "try again",
}

GNTTAB_NR_RESERVED_ENTRIES = 8  # 0: console, 1: xenstore; the toolstack's
GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE = 0, 1
GRANT_ENTRY_SIZE = 8
ENTRIES_PER_FRAME = PAGE_SIZE // GRANT_ENTRY_SIZE  # 512
DOMID_SELF = 0x7FF0  # xen.h
MAX_GRANT_FRAMES = 64

#: hypercall argument layouts (x86-64, derived): gnttab_map_grant_ref (host_addr, flags, ref,
#: dom, status, handle, dev_bus_addr), gnttab_unmap_grant_ref (host_addr, dev_bus_addr,
#: handle, status), gnttab_copy (source {ref|gmfn, domid, offset}, dest {…}, len, flags, status)
MAP_GRANT_REF = struct.Struct("<QIIHhIQ")  # 32 bytes
UNMAP_GRANT_REF = struct.Struct("<QQIh2x")  # 24 bytes
GNTTAB_COPY = struct.Struct("<QHH4xQHH4xHHh2x")  # 40 bytes


def unsigned_field(value: int, bits: int, what: str) -> int:
    """``value`` if it fits an unsigned ``bits``-bit C field, else ConfigError."""
    if value.__class__ is not int or not 0 <= value < 1 << bits:
        raise ConfigError(f"{what} is an unsigned {bits}-bit field, not {value!r}")
    return value


class GrantEntry(NamedTuple):
    """``struct grant_entry_v1`` as the granter's memory holds it now."""

    flags: int
    domid: int
    frame: int


class MapResult(NamedTuple):
    """The OUT fields of ``struct gnttab_map_grant_ref`` (handle, address only if okay)."""

    status: int
    handle: int | None
    dev_bus_addr: int


class GrantCopy(NamedTuple):
    """The IN fields of one ``struct gnttab_copy``: each side is a grant ref of domain
    ``*_domid`` (with GNTCOPY_*_gref) or a frame of the caller's own (domid DOMID_SELF)."""

    source: int
    source_domid: int
    source_offset: int
    dest: int
    dest_domid: int
    dest_offset: int
    length: int
    flags: int

    def pack(self, status: int = 0) -> bytes:
        """The 40 bytes of the struct, as a caller puts them in its hypercall buffer."""
        return GNTTAB_COPY.pack(*self[:6], self.length, self.flags, status)

    @classmethod
    def unpack(cls, raw: bytes) -> GrantCopy:
        """Read the IN fields back from 40 bytes."""
        return cls(*GNTTAB_COPY.unpack(bytes(raw))[:8])


class GrantTable:
    """The shared part of one domain's grant table (v1): its entries, in frames of the
    owner's RAM, read and written in place by the owner and by Xen."""

    def __init__(self, owner: Domain, gfns: list[int] | tuple[int, ...]) -> None:
        gfns = tuple(gfns)
        if not 1 <= len(gfns) <= MAX_GRANT_FRAMES or len(set(gfns)) != len(gfns):
            raise ConfigError(f"a grant table has 1 … {MAX_GRANT_FRAMES} distinct frames")
        for gfn in gfns:
            if gfn.__class__ is not int or not owner.is_ram(gfn << PAGE_SHIFT):
                raise ConfigError(f"{owner.name}: grant table frame {gfn!r} is not its RAM")
        self.owner = owner
        self.gfns = gfns
        self.mfns = tuple(owner.gfn_to_mfn(gfn) for gfn in gfns)
        self.nr_entries = len(gfns) * ENTRIES_PER_FRAME
        for mfn in self.mfns:
            owner.machine.memory.page(mfn)[:] = 0  # Xen hands out cleared frames

    def _raw(self, ref: int) -> np.ndarray:
        if ref.__class__ is not int or not 0 <= ref < self.nr_entries:
            raise ConfigError(f"grant ref {ref!r} is outside this table (0 … "
                              f"{self.nr_entries - 1})")
        page = self.owner.machine.memory.page(self.mfns[ref // ENTRIES_PER_FRAME])
        at = ref % ENTRIES_PER_FRAME * GRANT_ENTRY_SIZE
        return page[at : at + GRANT_ENTRY_SIZE]

    def entry(self, ref: int) -> GrantEntry:
        """The entry's three fields as the shared memory holds them now."""
        raw = self._raw(ref)
        half = raw.view("<u2")
        return GrantEntry(int(half[0]), int(half[1]), int(raw[4:].view("<u4")[0]))

    def write(self, ref: int, field: str, value: int) -> None:
        """Store one field of an entry (what the granting guest does in its memory)."""
        raw = self._raw(ref)
        if field == "frame":
            raw[4:].view("<u4")[0] = unsigned_field(value, 32, "frame")
        else:
            raw.view("<u2")[("flags", "domid").index(field)] = unsigned_field(value, 16, field)

    def cmpxchg_flags(self, ref: int, expected: int, new: int) -> int:
        """Atomic compare-and-swap of the flags: store ``new`` if they equal ``expected``;
        returns the value found."""
        found = self.entry(ref).flags
        if found == expected:
            self.write(ref, "flags", new)
        return found

    def clear_flags(self, ref: int, bits: int) -> None:
        """Clear flag bits (Xen's gnttab_clear_flags, an atomic and-not)."""
        if bits:
            self.write(ref, "flags", self.entry(ref).flags & ~bits & 0xFFFF)


class GuestGrants:
    """The granting guest's side of its table, as Linux drivers/xen/grant-table.c does it
    for v1: a free list of refs (from GNTTAB_NR_RESERVED_ENTRIES on), granting in the order
    the header prescribes, revoking only an unused entry, with a compare-and-swap."""

    def __init__(self, table: GrantTable) -> None:
        self.table = table
        self._free = deque(range(GNTTAB_NR_RESERVED_ENTRIES, table.nr_entries))

    def claim_ref(self) -> int | None:
        """A free grant reference, or None if the table is full."""
        return self._free.popleft() if self._free else None

    def release_ref(self, ref: int) -> None:
        """Return a revoked reference to the free list."""
        if (ref.__class__ is not int or ref in self._free
                or not GNTTAB_NR_RESERVED_ENTRIES <= ref < self.table.nr_entries):
            raise ConfigError(f"grant ref {ref!r} is not one this guest may release")
        self._free.append(ref)

    def grant_access_steps(self, ref: int, domid: int, gfn: int, readonly: bool) -> Steps[None]:
        """Introduce a valid entry: domid, frame, write barrier, then flags (which make it
        valid, so Xen never sees a valid entry with a half-written domid or frame)."""
        self.table.write(ref, "domid", domid)
        yield f"domid = {domid}"
        self.table.write(ref, "frame", gfn)
        yield f"frame = {gfn:#x}"
        yield "wmb"
        flags = GTF_permit_access | (GTF_readonly if readonly else 0)
        self.table.write(ref, "flags", flags)
        yield f"flags = {flags:#x}"

    def grant_access(self, ref: int, domid: int, gfn: int, readonly: bool) -> None:
        """gnttab_grant_foreign_access_ref: let ``domid`` use frame ``gfn`` through ``ref``."""
        run(self.grant_access_steps(ref, domid, gfn, readonly))

    def grant(self, domid: int, gfn: int, readonly: bool) -> int | None:
        """gnttab_grant_foreign_access: claim a ref and grant it; None if none is free."""
        ref = self.claim_ref()
        if ref is not None:
            self.grant_access(ref, domid, gfn, readonly)
        return ref

    def end_access_steps(self, ref: int) -> Steps[bool]:
        """Revoke an unused entry: read flags; refuse while GTF_reading/GTF_writing are set;
        compare-and-swap them to 0, re-reading if Xen changed them in between."""
        flags = self.table.entry(ref).flags
        yield f"flags = {flags:#x}"
        while not flags & (GTF_reading | GTF_writing):
            found = self.table.cmpxchg_flags(ref, flags, 0)
            yield f"cmpxchg flags {flags:#x} → 0: {'done' if found == flags else 'changed'}"
            if found == flags:
                return True
            flags = found
        yield "still in use"
        return False

    def end_access(self, ref: int) -> bool:
        """gnttab_end_foreign_access_ref: True if revoked, False while still mapped."""
        return run(self.end_access_steps(ref))
