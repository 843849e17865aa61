"""Grant tables, pinned to Xen's public header and to the checks of common/grant_table.c.

Sources: xen-project/xen eabc4d60 ``xen/include/public/grant_table.h`` (grant_entry_v1,
GTF_*, GNTMAP_*, GNTCOPY_*, GNTTABOP_*, GNTST_* — note GNTST_bad_gntref is -3 and
GNTST_permission_denied -8 —, GNTTAB_NR_RESERVED_ENTRIES, the entry ordering rules, the
revocation compare-and-swap); ``xen/include/public/xen.h`` (DOMID_SELF 0x7FF0);
xen-project/xen fcbbd0fa ``xen/common/grant_table.c`` (which check returns which status, and
in which order, for map, unmap and copy); Linux drivers/xen/grant-table.c (the guest side).
Struct sizes and offsets derived with gcc 12 (x86-64): grant_entry_v1 8 (flags 0, domid 2,
frame 4); gnttab_map_grant_ref 32 (host_addr 0, flags 8, ref 12, dom 16, status 18, handle 20,
dev_bus_addr 24); gnttab_unmap_grant_ref 24 (host_addr 0, dev_bus_addr 8, handle 16, status
20); gnttab_copy 40 (source 0 {u 0, domid 8, offset 10}, dest 16, len 32, flags 34, status 36).
"""

from __future__ import annotations

import hashlib

import pytest

from vmmlib import MIB, ConfigError, Machine
from vmmlib.xen import grant_table as G
from vmmlib.xen.grant_ops import GNTPIN_hstw_inc, GrantTables
from vmmlib.xen.grant_table import (
    DOMID_SELF,
    GNTCOPY_dest_gref,
    GNTCOPY_source_gref,
    GNTMAP_device_map,
    GNTMAP_host_map,
    GNTMAP_readonly,
    GrantCopy,
    GTF_permit_access,
    GTF_reading,
    GTF_readonly,
    GTF_writing,
    GuestGrants,
)

TABLE_GFN, DATA_GFN, OTHER_GFN = 0x10, 0x20, 0x21
HOST = 0x7F000000  # where the back end asks for the mapping


class World:
    def __init__(self, max_maptrack: int | None = None):
        self.m = Machine(64 * MIB)
        self.dom0 = self.m.add_domain("dom0", 8 * MIB, kind="pv", privileged=True)
        self.domU = self.m.add_domain("domU", 8 * MIB)
        self.other = self.m.add_domain("other", 8 * MIB)
        self.gt = GrantTables(self.m) if max_maptrack is None else GrantTables(self.m,
                                                                               max_maptrack)
        self.table = self.gt.setup(self.domU, [TABLE_GFN])
        self.guest = GuestGrants(self.table)

    def grant(self, readonly=False, gfn=DATA_GFN, to=None):
        return self.guest.grant((to or self.dom0).domid, gfn, readonly)

    def map(self, ref, flags=GNTMAP_host_map, grantee=None, dom=None):
        return self.gt.map_grant_ref(grantee or self.dom0,
                                     self.domU.domid if dom is None else dom, ref, flags, HOST)

    def flags(self, ref):
        return self.table.entry(ref).flags


@pytest.fixture
def w():
    return World()


def test_constants_from_the_header():
    assert (G.GTF_invalid, G.GTF_permit_access, G.GTF_accept_transfer, G.GTF_transitive,
            G.GTF_type_mask) == (0, 1, 2, 3, 3)
    assert (G.GTF_readonly, G.GTF_reading, G.GTF_writing, G.GTF_PWT, G.GTF_PCD, G.GTF_PAT,
            G.GTF_sub_page) == (4, 8, 16, 32, 64, 128, 256)
    assert (G.GNTMAP_device_map, G.GNTMAP_host_map, G.GNTMAP_readonly,
            G.GNTMAP_application_map, G.GNTMAP_contains_pte) == (1, 2, 4, 8, 16)
    assert (G.GNTCOPY_source_gref, G.GNTCOPY_dest_gref) == (1, 2)
    assert (G.GNTTABOP_map_grant_ref, G.GNTTABOP_unmap_grant_ref, G.GNTTABOP_setup_table,
            G.GNTTABOP_copy) == (0, 1, 2, 5)
    assert [G.GNTST_okay, G.GNTST_general_error, G.GNTST_bad_domain, G.GNTST_bad_gntref,
            G.GNTST_bad_handle, G.GNTST_bad_virt_addr, G.GNTST_bad_dev_addr,
            G.GNTST_no_device_space, G.GNTST_permission_denied, G.GNTST_bad_page,
            G.GNTST_bad_copy_arg, G.GNTST_address_too_big, G.GNTST_eagain] == list(
                range(0, -13, -1))
    assert sorted(G.GNTST_NAMES) == list(range(-12, 1))
    assert (G.GNTTAB_NR_RESERVED_ENTRIES, G.GNTTAB_RESERVED_CONSOLE,
            G.GNTTAB_RESERVED_XENSTORE) == (8, 0, 1)
    assert (G.GRANT_ENTRY_SIZE, G.ENTRIES_PER_FRAME, G.DOMID_SELF) == (8, 512, 0x7FF0)
    assert G.MAX_GRANT_FRAMES == 64


def test_hypercall_struct_layouts():
    raw = G.MAP_GRANT_REF.pack(0x0807060504030201, 0x1B1A1918, 0x2B2A2928, 0x3938, -2,
                               0x4B4A4948, 0x5756555453525150)
    assert len(raw) == 32 and raw[8] == 0x18 and raw[12] == 0x28 and raw[16] == 0x38
    assert raw[18:20] == b"\xfe\xff" and raw[20] == 0x48 and raw[24] == 0x50
    raw = G.UNMAP_GRANT_REF.pack(1, 2, 3, -4)
    assert len(raw) == 24 and raw[8] == 2 and raw[16] == 3 and raw[20:22] == b"\xfc\xff"
    op = GrantCopy(0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88)
    raw = op.pack(status=-10)
    assert len(raw) == 40 and GrantCopy.unpack(raw) == op
    assert [raw[i] for i in (0, 8, 10, 16, 24, 26, 32, 34)] == [0x11, 0x22, 0x33, 0x44, 0x55,
                                                                0x66, 0x77, 0x88]
    assert raw[36:38] == b"\xf6\xff"


def test_an_entry_is_eight_bytes_in_the_granters_memory(w):
    ref = w.guest.grant(0x1234, 0x89ABCDEF, readonly=True)
    at = (TABLE_GFN << 12) + ref * 8
    assert w.domU.read_ram(at, 2) == GTF_permit_access | GTF_readonly
    assert w.domU.read_ram(at + 2, 2) == 0x1234
    assert w.domU.read_ram(at + 4, 4) == 0x89ABCDEF
    assert ref == G.GNTTAB_NR_RESERVED_ENTRIES  # refs 0-7 are the toolstack's


def test_a_valid_entry_is_made_in_the_documented_order(w):
    ref = w.guest.claim_ref()
    steps = w.guest.grant_access_steps(ref, w.dom0.domid, DATA_GFN, False)
    seen = []
    for step in steps:
        seen.append(step)
        if step != "flags = 0x1":  # not valid until flags are written last
            assert w.map(ref).status == G.GNTST_general_error
            assert w.flags(ref) == 0  # a refused map leaves the entry alone
    assert seen == ["domid = 0", "frame = 0x20", "wmb", "flags = 0x1"]
    assert w.map(ref).status == G.GNTST_okay


def test_map_gives_the_granters_frame_and_sets_reading_writing(w):
    ref = w.grant()
    r = w.map(ref)
    mfn = w.domU.gfn_to_mfn(DATA_GFN)
    assert r == (G.GNTST_okay, 0, mfn << 12)
    assert w.flags(ref) == GTF_permit_access | GTF_reading | GTF_writing
    page = w.gt.mapped_page(w.dom0, r.handle)
    page[100] = 0x5A
    assert w.domU.read_ram((DATA_GFN << 12) + 100, 1) == 0x5A
    assert w.gt.pin(w.domU.domid, ref) == GNTPIN_hstw_inc == 1  # one writable host mapping


def test_a_read_only_map_cannot_write(w):
    ref = w.grant(readonly=True)
    r = w.map(ref, GNTMAP_host_map | GNTMAP_readonly)
    assert r.status == G.GNTST_okay
    assert w.flags(ref) == GTF_permit_access | GTF_readonly | GTF_reading
    page = w.gt.mapped_page(w.dom0, r.handle)
    with pytest.raises(ValueError):
        page[0] = 1
    assert w.domU.read_ram(DATA_GFN << 12, 1) == 0


def test_unmap_clears_the_flags_and_the_mapping(w):
    ref = w.grant()
    r = w.map(ref)
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, host_addr=HOST) == G.GNTST_okay
    assert w.flags(ref) == GTF_permit_access and w.gt.pin(w.domU.domid, ref) == 0
    assert w.gt.mapped_page(w.dom0, r.handle) is None
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, host_addr=HOST) == G.GNTST_bad_handle
    assert w.gt.unmap_grant_ref(w.dom0, 12345) == G.GNTST_bad_handle


def test_unmap_addresses_as_xen_checks_them(w):
    ref = w.grant()
    r = w.gt.map_grant_ref(w.dom0, w.domU.domid, ref, GNTMAP_host_map | GNTMAP_device_map,
                           HOST)
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, HOST, r.dev_bus_addr + 4096) == \
        G.GNTST_general_error  # the bus address is not this grant's
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, HOST + 4096) == G.GNTST_general_error
    assert w.gt.unmap_grant_ref(w.dom0, r.handle) == G.GNTST_okay  # zero addresses: ignored
    assert w.gt.mapped_page(w.dom0, r.handle) is not None
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, HOST) == G.GNTST_okay  # host part only
    assert w.flags(ref) & GTF_writing  # the device mapping still writes
    assert w.gt.unmap_grant_ref(w.dom0, r.handle, 0, r.dev_bus_addr) == G.GNTST_okay
    assert w.flags(ref) == GTF_permit_access and w.gt.mapped_page(w.dom0, r.handle) is None


def test_read_and_write_mappings_of_one_grant(w):
    ref = w.grant()
    ro = w.map(ref, GNTMAP_host_map | GNTMAP_readonly)
    assert w.flags(ref) == GTF_permit_access | GTF_reading
    rw = w.map(ref)
    assert w.flags(ref) == GTF_permit_access | GTF_reading | GTF_writing
    assert ro.handle != rw.handle and w.gt.pin(w.domU.domid, ref) == 0x101
    w.gt.unmap_grant_ref(w.dom0, rw.handle, HOST)
    assert w.flags(ref) == GTF_permit_access | GTF_reading  # the last writer went
    w.gt.unmap_grant_ref(w.dom0, ro.handle, HOST)
    assert w.flags(ref) == GTF_permit_access


def test_each_refused_map_and_its_status(w):
    ok = w.grant()
    ro = w.grant(readonly=True)
    elsewhere = w.grant(to=w.other)
    not_ram = w.grant(gfn=(8 * MIB >> 12) + 5)
    last = w.table.nr_entries - 1
    cases = [
        (w.map(ok, 0), G.GNTST_bad_gntref),  # neither host nor device mapping
        (w.map(ok, GNTMAP_readonly), G.GNTST_bad_gntref),
        (w.map(ok, GNTMAP_device_map, grantee=w.other), G.GNTST_general_error),  # HVM grantee
        (w.map(ok, dom=77), G.GNTST_bad_domain),
        (w.map(ok, dom=w.other.domid), G.GNTST_bad_gntref),  # it has no grant table
        (w.map(w.table.nr_entries), G.GNTST_bad_gntref),  # beyond the table
        (w.map(2**32 - 1), G.GNTST_bad_gntref),
        (w.map(last), G.GNTST_general_error),  # inside the table but never granted
        (w.map(3), G.GNTST_general_error),  # a reserved entry, unused
        (w.map(elsewhere), G.GNTST_general_error),  # granted to another domain
        (w.map(ok, grantee=w.other), G.GNTST_general_error),  # the wrong grantee asks
        (w.map(ro), G.GNTST_general_error),  # a read-only grant mapped writable
        (w.map(not_ram), G.GNTST_bad_page),  # the granted frame is not RAM
    ]
    for (status, handle, addr), expect in cases:
        assert (status, handle, addr) == (expect, None, 0)
    assert w.flags(not_ram) == GTF_permit_access  # the flags Xen set are cleared again
    assert w.flags(ro) == GTF_permit_access | GTF_readonly
    assert w.map(ro, GNTMAP_host_map | GNTMAP_readonly).status == G.GNTST_okay


def test_checks_come_in_xens_order(w):
    assert w.map(2**32 - 1, 0, dom=77).status == G.GNTST_bad_gntref  # flags first
    assert w.map(2**32 - 1, dom=77).status == G.GNTST_bad_domain  # then the domain
    v = World(max_maptrack=1)
    ref = v.grant()
    assert v.map(ref).status == G.GNTST_okay
    assert v.map(2**32 - 1).status == G.GNTST_no_device_space  # then the maptrack
    assert v.map(ref, dom=77).status == G.GNTST_bad_domain


def test_other_grant_types_and_sub_page_grants_are_not_mappable(w):
    ref = w.grant()
    for flags in (G.GTF_accept_transfer, G.GTF_transitive, GTF_permit_access | G.GTF_sub_page):
        w.table.write(ref, "flags", flags)
        assert w.map(ref).status == G.GNTST_general_error
    op = GrantCopy(ref, w.domU.domid, 0, 0x100, DOMID_SELF, 0, 8, GNTCOPY_source_gref)
    assert w.gt.copy(w.dom0, op) == G.GNTST_okay  # a v1 copy ignores GTF_sub_page


def test_an_mmio_page_is_not_ram():
    w = World()
    w.domU.emulate_mmio(0x30000, 16, _Sink(), "sink")
    ref = w.grant(gfn=0x30)
    assert w.map(ref).status == G.GNTST_bad_page


class _Sink:
    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        pass


def test_the_active_entry_shadows_later_changes_to_the_entry(w):
    ref = w.grant()
    first = w.map(ref)
    w.table.write(ref, "frame", OTHER_GFN)  # the granter rewrites a mapped entry
    w.table.write(ref, "domid", w.other.domid)
    second = w.map(ref)
    assert second.status == G.GNTST_okay and second.dev_bus_addr == first.dev_bus_addr
    assert w.map(ref, grantee=w.other).status == G.GNTST_general_error  # pinned by dom0
    for r in (first, second):
        w.gt.unmap_grant_ref(w.dom0, r.handle, HOST)
    w.table.write(ref, "domid", w.dom0.domid)
    assert w.map(ref).dev_bus_addr == w.domU.gfn_to_mfn(OTHER_GFN) << 12


def test_pin_counters_refuse_to_overflow(w):
    ref = w.grant()
    for _ in range(128):
        assert w.map(ref, GNTMAP_host_map | GNTMAP_readonly).status == G.GNTST_okay
    assert w.gt.pin(w.domU.domid, ref) == 128 << 8
    assert w.map(ref, GNTMAP_host_map | GNTMAP_readonly).status == G.GNTST_general_error


def test_maptrack_handles_are_reused():
    w = World(max_maptrack=2)
    ref = w.grant()
    a, b = w.map(ref), w.map(ref)
    assert (a.handle, b.handle) == (0, 1) and w.map(ref).status == G.GNTST_no_device_space
    w.gt.unmap_grant_ref(w.dom0, a.handle, HOST)
    assert w.map(ref).handle == 0


def test_revoking_waits_for_the_last_unmap(w):
    ref = w.grant()
    r = w.map(ref)
    assert w.guest.end_access(ref) is False
    assert w.flags(ref) == GTF_permit_access | GTF_reading | GTF_writing
    w.gt.unmap_grant_ref(w.dom0, r.handle, HOST)
    assert w.guest.end_access(ref) is True and w.flags(ref) == 0
    assert w.map(ref).status == G.GNTST_general_error  # revoked: invalid
    w.guest.release_ref(ref)


def test_revocation_compare_and_swap_loses_to_a_racing_map(w):
    ref = w.grant()
    steps = w.guest.end_access_steps(ref)
    assert next(steps) == "flags = 0x1"  # not in use: about to swap flags to 0
    r = w.map(ref)  # ... but Xen maps it first
    assert next(steps) == "cmpxchg flags 0x1 → 0: changed"
    assert next(steps) == "still in use"
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value is False
    assert w.gt.mapped_page(w.dom0, r.handle) is not None and w.flags(ref) & GTF_reading


def test_guest_grant_references():
    w = World()
    refs = [w.guest.claim_ref() for _ in range(w.table.nr_entries)]
    assert refs[:2] == [8, 9] and refs[-9:] == [511] + [None] * 8
    w.guest.release_ref(9)
    assert w.guest.claim_ref() == 9
    for bad in (3, 512, 9.0):
        with pytest.raises(ConfigError):
            w.guest.release_ref(bad)
    assert w.grant() is None


def digest(dom) -> str:
    return hashlib.sha256(b"".join(dom.machine.memory.read_bytes(dom.machine_base + a, 4096)
                                   for a in range(0, 64 * 4096, 4096))).hexdigest()


def test_copy_moves_exactly_the_bytes_asked(w):
    ref = w.grant(readonly=True)
    w.m.memory.page(w.domU.gfn_to_mfn(DATA_GFN))[:] = 0xAB
    own = 0x40
    op = GrantCopy(ref, w.domU.domid, 512, own, DOMID_SELF, 1024, 1536, GNTCOPY_source_gref)
    before_u = digest(w.domU)
    assert w.gt.copy(w.dom0, op) == G.GNTST_okay
    page = w.m.memory.page(w.dom0.gfn_to_mfn(own))
    assert (page[1024:2560] == 0xAB).all() and not page[:1024].any() and not page[2560:].any()
    assert digest(w.domU) == before_u
    assert w.flags(ref) == GTF_permit_access | GTF_readonly  # the copy's pin is gone
    assert w.gt.pin(w.domU.domid, ref) == 0


def test_copy_into_a_writable_grant_and_out_of_a_mapped_one(w):
    ref = w.grant()
    w.m.memory.page(w.dom0.gfn_to_mfn(0x40))[:8] = 7
    op = GrantCopy(0x40, DOMID_SELF, 0, ref, w.domU.domid, 4088, 8, GNTCOPY_dest_gref)
    assert w.gt.copy(w.dom0, op) == G.GNTST_okay
    assert w.domU.read_ram((DATA_GFN << 12) + 4088, 8) == 0x0707070707070707
    r = w.map(ref, GNTMAP_host_map | GNTMAP_readonly)
    assert w.gt.copy(w.dom0, op) == G.GNTST_okay  # a write copy of a read-mapped grant
    assert w.flags(ref) == GTF_permit_access | GTF_reading  # the map's flags stay
    assert w.gt.pin(w.domU.domid, ref) == 1 << 8
    w.gt.unmap_grant_ref(w.dom0, r.handle, HOST)
    both = GrantCopy(ref, w.domU.domid, 4088, ref, w.domU.domid, 0, 8,
                     GNTCOPY_source_gref | GNTCOPY_dest_gref)
    assert w.gt.copy(w.dom0, both) == G.GNTST_okay
    assert w.domU.read_ram(DATA_GFN << 12, 8) == 0x0707070707070707
    assert w.flags(ref) == GTF_permit_access


def test_each_refused_copy_and_its_status(w):
    rw, ro = w.grant(), w.grant(readonly=True)
    not_ram = w.grant(gfn=(8 * MIB >> 12) + 1)
    u, src, dst = w.domU.domid, GNTCOPY_source_gref, GNTCOPY_dest_gref
    cases = [
        (GrantCopy(rw, u, 0, 0x40, DOMID_SELF, 0, 8, 0), G.GNTST_permission_denied),
        (GrantCopy(0x40, DOMID_SELF, 0, rw, u, 0, 8, 0), G.GNTST_permission_denied),
        (GrantCopy(rw, 77, 0, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_domain),
        (GrantCopy(0x40, DOMID_SELF, 0, rw, 77, 0, 8, dst), G.GNTST_bad_domain),
        (GrantCopy(rw, w.other.domid, 0, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_gntref),
        (GrantCopy(512, u, 0, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_gntref),
        (GrantCopy(100, u, 0, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_general_error),
        (GrantCopy(0x40, DOMID_SELF, 0, ro, u, 0, 8, dst), G.GNTST_general_error),
        (GrantCopy(not_ram, u, 0, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_page),
        (GrantCopy(rw, u, 0, 1 << 40, DOMID_SELF, 0, 8, src), G.GNTST_bad_page),
        (GrantCopy(rw, u, 4089, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_copy_arg),
        (GrantCopy(rw, u, 0, 0x40, DOMID_SELF, 4089, 8, src), G.GNTST_bad_copy_arg),
        (GrantCopy(rw, u, 0, 0x40, DOMID_SELF, 0, 4097, src), G.GNTST_bad_copy_arg),
        (GrantCopy(512, u, 4096, 0x40, DOMID_SELF, 0, 8, src), G.GNTST_bad_gntref),  # order
    ]
    before = digest(w.dom0), digest(w.domU)
    for op, expect in cases:
        assert w.gt.copy(w.dom0, op) == expect, op
    assert (digest(w.dom0), digest(w.domU)) == before
    for ref in (rw, ro, not_ram):
        assert w.flags(ref) & (GTF_reading | GTF_writing) == 0
        assert w.gt.pin(u, ref) == 0
    assert w.gt.copy(w.dom0, GrantCopy(rw, u, 0, 0x40, DOMID_SELF, 0, 4096, src)) == 0
    assert w.gt.copy(w.dom0, GrantCopy(rw, u, 4096, 0x40, DOMID_SELF, 0, 0, src)) == 0


def test_arguments_that_are_not_c_fields_are_config_errors(w):
    for args in ((w.domU.domid, -1, GNTMAP_host_map), (w.domU.domid, 2**32, GNTMAP_host_map),
                 (1 << 16, 8, GNTMAP_host_map), (w.domU.domid, 8, "host")):
        with pytest.raises(ConfigError):
            w.gt.map_grant_ref(w.dom0, *args)
    with pytest.raises(ConfigError):
        w.gt.unmap_grant_ref(w.dom0, -1)
    with pytest.raises(ConfigError):
        w.gt.copy(w.dom0, GrantCopy(8, 1, 0, 0, 0, 0, 1 << 16, 1))
    with pytest.raises(ConfigError):
        w.gt.copy(w.dom0, (8, 1, 0, 0, 0, 0, 8, 1))


def test_table_setup_errors():
    w = World()
    for gfns in ([], [0x11, 0x11], [8 * MIB >> 12], list(range(0x100, 0x141)), [0.5]):
        with pytest.raises(ConfigError):
            w.gt.setup(w.other, gfns)
    with pytest.raises(ConfigError):
        w.gt.setup(w.domU, [0x11])
    with pytest.raises(ConfigError):
        GrantTables(w.m, max_maptrack=0)
    t = w.gt.setup(w.other, [0x11, 0x12])
    assert t.nr_entries == 1024 and w.gt.table(w.other.domid) is t
    with pytest.raises(ConfigError):
        t.entry(1024)


def test_setup_clears_the_table_frames():
    m = Machine(16 * MIB)
    dom = m.add_domain("guest", 4 * MIB)
    dom.write_ram(0x10000, 8, 0x1122334455667701)
    t = GrantTables(m).setup(dom, [0x10])
    assert t.entry(0) == (0, 0, 0)
