"""Xen's grant-table operations: map, unmap and copy a granted frame, with Xen's checks.

``GrantTables`` is the hypervisor's side of HYPERVISOR_grant_table_op for the domains of one
machine: GNTTABOP_map_grant_ref / unmap_grant_ref (the grantee gets the granter's machine
frame, read-only if it asked for GNTMAP_readonly, tracked by a *handle*) and GNTTABOP_copy
(Xen copies bytes between a granted frame and one of the caller's, mapping nothing). Each
failure is the GNTST_* status Xen returns, from the first check that fails in Xen's order —
never a Python exception, whatever the granter wrote in its table. Only arguments the model's
own code could not have put in the C structs (a ref that is not a u32, say) raise ConfigError.

Sources: xen-project/xen ``xen/common/grant_table.c`` (fcbbd0fa: ``_set_status_v1``,
``__gnttab_map_grant_ref``, ``__gnttab_unmap_common`` and ``_complete``,
``__acquire_grant_for_copy``, ``__release_grant_for_copy``, ``gnttab_copy_lock_domain``,
``gnttab_copy_claim_buf``, ``gnttab_copy_buf``; the same checks in today's tree, where older
Xen checked a copy's offsets first), with the GNTPIN_* counters and
gnttab_max_maptrack_frames = 1024 of the newer file. ``host_addr`` is recorded, not written
into a page table, and must be given back to unmap; the model's domains never die, so the
"domain gone" paths are absent.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..hw.memory import PAGE_SHIFT, PAGE_SIZE
from .grant_table import (
    DOMID_SELF,
    GNTCOPY_dest_gref,
    GNTCOPY_source_gref,
    GNTMAP_application_map,
    GNTMAP_contains_pte,
    GNTMAP_device_map,
    GNTMAP_host_map,
    GNTMAP_readonly,
    GNTST_bad_copy_arg,
    GNTST_bad_domain,
    GNTST_bad_gntref,
    GNTST_bad_handle,
    GNTST_bad_page,
    GNTST_general_error,
    GNTST_no_device_space,
    GNTST_okay,
    GNTST_permission_denied,
    GrantCopy,
    GrantTable,
    GTF_permit_access,
    GTF_reading,
    GTF_readonly,
    GTF_sub_page,
    GTF_type_mask,
    GTF_writing,
    MapResult,
    unsigned_field,
)

if TYPE_CHECKING:
    from .domain import Domain
    from .machine import Machine

#: Xen's active-entry pin: four byte-wide counters in one u32
GNTPIN_hstw_inc, GNTPIN_hstr_inc, GNTPIN_devw_inc, GNTPIN_devr_inc = 1, 1 << 8, 1 << 16, 1 << 24
GNTPIN_WRITERS = 0xFF | 0xFF << 16  # hstw_mask | devw_mask
GNTPIN_OVERFLOW = 0x80808080  # a counter about to overflow: refuse another pin
MAX_MAPTRACK_HANDLES = 1024 * (PAGE_SIZE // 16)  # frames × struct grant_mapping per frame
_COPY_BITS = (64, 16, 16, 64, 16, 16, 16, 16)


class _Active:
    """Xen's ``struct active_grant_entry``: the grantee, the frame resolved, the pins."""

    __slots__ = ("domid", "gfn", "mfn", "pin")

    def __init__(self, domid: int, gfn: int, mfn: int) -> None:
        self.domid, self.gfn, self.mfn, self.pin = domid, gfn, mfn, 0


class _Mapping:
    """One maptrack entry (``struct grant_mapping``) of the grantee."""

    __slots__ = ("dom", "ref", "flags", "host_addr", "mfn")

    def __init__(self, dom: int, ref: int, flags: int, host_addr: int, mfn: int) -> None:
        self.dom, self.ref, self.flags, self.host_addr, self.mfn = dom, ref, flags, host_addr, mfn


class GrantTables:
    """Xen's grant-table operations (HYPERVISOR_grant_table_op) for the domains of a machine:
    map / unmap and copy with the checks Xen makes, each failure its GNTST_* status."""

    def __init__(self, machine: Machine, max_maptrack: int = MAX_MAPTRACK_HANDLES) -> None:
        if max_maptrack.__class__ is not int or max_maptrack < 1:
            raise ConfigError(f"max_maptrack is a positive int, not {max_maptrack!r}")
        self.machine = machine
        self.max_maptrack = max_maptrack
        self._tables: dict[int, GrantTable] = {}
        self._active: dict[int, dict[int, _Active]] = {}  # granter domid → ref → active entry
        self._maps: dict[int, dict[int, _Mapping]] = {}  # grantee domid → handle → mapping
        self._fresh: dict[int, int] = {}
        self._freed: dict[int, deque[int]] = {}

    def setup(self, domain: Domain, gfns: list[int] | tuple[int, ...]) -> GrantTable:
        """Give ``domain`` a grant table in its frames ``gfns`` (GNTTABOP_setup_table)."""
        if domain.domid in self._tables:
            raise ConfigError(f"{domain.name} already has a grant table")
        table = self._tables[domain.domid] = GrantTable(domain, gfns)
        return table

    def table(self, domid: int) -> GrantTable | None:
        """The grant table of domain ``domid`` (None if it has none)."""
        return self._tables.get(domid)

    def _domain(self, domid: int) -> Domain | None:
        return next((d for d in self.machine.domains if d.domid == domid), None)

    @staticmethod
    def _frame(dom: Domain, gfn: int) -> int | None:
        """get_paged_frame: the machine frame behind ``gfn`` if it is RAM of ``dom``."""
        return dom.gfn_to_mfn(gfn) if dom.is_ram(gfn << PAGE_SHIFT) else None

    @staticmethod
    def _set_status(table: GrantTable, ref: int, domid: int, readonly: bool, mapping: bool,
                    pinned: bool) -> int:
        """_set_status_v1: check the entry (unless already pinned) and set GTF_reading, and
        GTF_writing for a writable use. A map also refuses a GTF_sub_page entry."""
        flags, entry_domid, _ = table.entry(ref)
        mask = GTF_type_mask | (GTF_sub_page if mapping else 0)
        if not pinned and ((flags & mask) != GTF_permit_access or entry_domid != domid):
            return GNTST_general_error
        new = flags | GTF_reading
        if not readonly:
            if flags & GTF_readonly:
                return GNTST_general_error  # a write pin of a read-only grant
            new |= GTF_writing
        table.cmpxchg_flags(ref, flags, new)  # nobody races us in a single-threaded model
        return GNTST_okay

    def _pin(self, rd: Domain, ref: int, domid: int, readonly: bool, mapping: bool,
             incr: int) -> tuple[int, _Active | None]:
        """The common part of a map and of a copy's claim: bounds-check the ref, check the
        entry unless already pinned compatibly, resolve its frame, add the pin ``incr``."""
        rgt = self._tables.get(rd.domid)
        if rgt is None or ref >= rgt.nr_entries:
            return GNTST_bad_gntref, None
        actives = self._active.setdefault(rd.domid, {})
        act = actives.get(ref)
        if act is not None and (act.domid != domid or act.pin & GNTPIN_OVERFLOW):
            return GNTST_general_error, None  # pinned by another domain, or about to overflow
        if act is None or (not readonly and not act.pin & GNTPIN_WRITERS):
            status = self._set_status(rgt, ref, domid, readonly, mapping, act is not None)
            if status != GNTST_okay:
                return status, None
            if act is None or not mapping:  # a map resolves the frame only on its first pin
                gfn = rgt.entry(ref).frame
                mfn = self._frame(rd, gfn)
                if mfn is None:
                    pin = act.pin if act else 0
                    rgt.clear_flags(ref, (0 if readonly or pin & GNTPIN_WRITERS else GTF_writing)
                                    | (0 if pin else GTF_reading))
                    return GNTST_bad_page, None
                if act is None:
                    act = actives[ref] = _Active(domid, gfn, mfn)
        act.pin += incr
        return GNTST_okay, act

    # -- map and unmap ------------------------------------------------------------------
    def map_grant_ref(self, grantee: Domain, dom: int, ref: int, flags: int,
                      host_addr: int = 0) -> MapResult:
        """GNTTABOP_map_grant_ref: map (dom, ref) for ``grantee``; a handle and the frame's
        bus address, or the status of the first check that fails, in Xen's order."""
        for value, bits, what in ((dom, 16, "dom"), (ref, 32, "ref"), (flags, 32, "flags"),
                                  (host_addr, 64, "host_addr")):
            unsigned_field(value, bits, what)
        readonly = bool(flags & GNTMAP_readonly)
        incr = 0
        if flags & GNTMAP_device_map:
            incr += GNTPIN_devr_inc if readonly else GNTPIN_devw_inc
        if flags & GNTMAP_host_map:
            incr += GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
        rd = self._domain(dom)
        if not incr:
            status, act = GNTST_bad_gntref, None  # neither a host nor a device mapping
        elif grantee.kind == "hvm" and flags & (GNTMAP_device_map | GNTMAP_application_map
                                                | GNTMAP_contains_pte):
            status, act = GNTST_general_error, None  # no device/PTE mapping from an HVM guest
        elif rd is None:
            status, act = GNTST_bad_domain, None
        elif not self._has_handle(grantee.domid):
            status, act = GNTST_no_device_space, None  # the maptrack is exhausted
        else:
            status, act = self._pin(rd, ref, grantee.domid, readonly, True, incr)
        if act is None:
            return MapResult(status, None, 0)
        handle = self._new_handle(grantee.domid, _Mapping(dom, ref, flags, host_addr, act.mfn))
        return MapResult(GNTST_okay, handle, act.mfn << PAGE_SHIFT)

    def _has_handle(self, domid: int) -> bool:
        return self._fresh.get(domid, 0) < self.max_maptrack or bool(self._freed.get(domid))

    def _new_handle(self, domid: int, mapping: _Mapping) -> int:
        """Handles count up from 0; freed ones are reused once fresh ones run out."""
        fresh = self._fresh.get(domid, 0)
        if fresh < self.max_maptrack:
            handle, self._fresh[domid] = fresh, fresh + 1
        else:
            handle = self._freed[domid].popleft()
        self._maps.setdefault(domid, {})[handle] = mapping
        return handle

    def unmap_grant_ref(self, grantee: Domain, handle: int, host_addr: int = 0,
                        dev_bus_addr: int = 0) -> int:
        """GNTTABOP_unmap_grant_ref: undo the host mapping at ``host_addr`` and/or the device
        mapping at ``dev_bus_addr`` of ``handle`` (a zero address is ignored, as in Xen);
        the last pin going clears GTF_writing / GTF_reading in the granter's entry."""
        for value, bits, what in ((handle, 32, "handle"), (host_addr, 64, "host_addr"),
                                  (dev_bus_addr, 64, "dev_bus_addr")):
            unsigned_field(value, bits, what)
        m = self._maps.get(grantee.domid, {}).get(handle)
        if m is None:
            return GNTST_bad_handle
        act = self._active[m.dom][m.ref]
        if dev_bus_addr and dev_bus_addr != act.mfn << PAGE_SHIFT:
            return GNTST_general_error  # the bus address does not match the grant
        if host_addr and m.flags & GNTMAP_host_map and host_addr != m.host_addr:
            return GNTST_general_error  # no such host mapping to replace
        readonly = m.flags & GNTMAP_readonly
        done = m.flags & ((GNTMAP_host_map if host_addr else 0)
                          | (GNTMAP_device_map if dev_bus_addr else 0))
        m.flags &= ~done
        if not m.flags & (GNTMAP_host_map | GNTMAP_device_map):
            del self._maps[grantee.domid][handle]
            self._freed.setdefault(grantee.domid, deque()).append(handle)
        if done & GNTMAP_device_map:
            act.pin -= GNTPIN_devr_inc if readonly else GNTPIN_devw_inc
        if done & GNTMAP_host_map:
            act.pin -= GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
        self._unpin(m.dom, m.ref, bool(done) and not readonly)
        return GNTST_okay

    def _unpin(self, domid: int, ref: int, was_writer: bool) -> None:
        """After a pin went: clear GTF_writing with the last writer, GTF_reading (and forget
        the active entry) with the last pin."""
        actives = self._active[domid]
        clear = GTF_writing if was_writer and not actives[ref].pin & GNTPIN_WRITERS else 0
        if actives[ref].pin == 0:
            clear |= GTF_reading
            del actives[ref]
        self._tables[domid].clear_flags(ref, clear)

    def pin(self, domid: int, ref: int) -> int:
        """Xen's pin word of (domid, ref): 0 if unused, else four byte-wide counters
        (host writers, host readers, device writers, device readers, low to high)."""
        act = self._active.get(domid, {}).get(ref)
        return act.pin if act else 0

    def mapped_page(self, grantee: Domain, handle: int) -> np.ndarray | None:
        """The granter's frame as ``grantee`` sees it through a live mapping: the page
        itself, or a read-only view for GNTMAP_readonly; None for no such mapping."""
        m = self._maps.get(grantee.domid, {}).get(handle)
        if m is None:
            return None
        page = self.machine.memory.page(m.mfn)
        if m.flags & GNTMAP_readonly:
            page = page.view()
            page.flags.writeable = False
        return page

    # -- copy ---------------------------------------------------------------------------
    def copy(self, caller: Domain, op: GrantCopy) -> int:
        """GNTTABOP_copy of one ``op`` for ``caller``: Xen copies ``op.length`` bytes between
        the two frames without mapping anything; the per-copy status."""
        if not isinstance(op, GrantCopy):
            raise ConfigError(f"a grant copy is a GrantCopy, not {op!r}")
        for value, bits, what in zip(op, _COPY_BITS, GrantCopy._fields, strict=True):
            unsigned_field(value, bits, what)
        src_ref, dst_ref = op.flags & GNTCOPY_source_gref, op.flags & GNTCOPY_dest_gref
        doms = []
        for domid, by_ref in ((op.source_domid, src_ref), (op.dest_domid, dst_ref)):
            if domid != DOMID_SELF and not by_ref:
                return GNTST_permission_denied  # copy by frame only of one's own frames
            doms.append(caller if domid == DOMID_SELF else self._domain(domid))
            if doms[-1] is None:
                return GNTST_bad_domain
        status, src = self._claim(caller, doms[0], op.source, src_ref, True)
        if status != GNTST_okay:
            return status
        status, dst = self._claim(caller, doms[1], op.dest, dst_ref, False)
        if status == GNTST_okay:
            if max(op.source_offset, op.dest_offset) + op.length > PAGE_SIZE:
                status = GNTST_bad_copy_arg  # the copy would leave a page
            else:
                mem = self.machine.memory
                data = mem.page(src)[op.source_offset : op.source_offset + op.length].copy()
                mem.page(dst)[op.dest_offset : op.dest_offset + op.length] = data
            self._release(doms[1], op.dest, dst_ref, False)
        self._release(doms[0], op.source, src_ref, True)
        return status

    def _claim(self, caller: Domain, dom: Domain, frame: int, by_ref: int,
               readonly: bool) -> tuple[int, int]:
        """gnttab_copy_claim_buf: (status, machine frame) of one side of a copy."""
        if by_ref:
            status, act = self._pin(dom, frame & 0xFFFF_FFFF, caller.domid, readonly, False,
                                    GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc)
            return status, act.mfn if act else 0
        mfn = self._frame(dom, frame)
        return (GNTST_bad_page, 0) if mfn is None else (GNTST_okay, mfn)

    def _release(self, dom: Domain, frame: int, by_ref: int, readonly: bool) -> None:
        """__release_grant_for_copy: drop the copy's pin, clearing the flags it set."""
        if by_ref:
            ref = frame & 0xFFFF_FFFF
            self._active[dom.domid][ref].pin -= GNTPIN_hstr_inc if readonly else GNTPIN_hstw_inc
            self._unpin(dom.domid, ref, not readonly)
