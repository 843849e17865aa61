"""Chapter 03's q3 (see :mod:`vmmlib.course.checks.split_drivers`): the GNTST_* status Xen
returns when a domain maps or copies a grant, computed by ``GrantTables`` on a machine built
from the cases' domains (xen/include/public/grant_table.h, xen/common/grant_table.c;
hardware-facts.md §7.2)."""

from __future__ import annotations

from vmmlib.hw.memory import MIB, PAGE_SIZE
from vmmlib.xen.blkif import SECTOR_SIZE
from vmmlib.xen.grant_ops import GrantTables
from vmmlib.xen.grant_table import (
    DOMID_SELF,
    ENTRIES_PER_FRAME,
    GNTST_NAMES,
    GNTCOPY_dest_gref,
    GNTCOPY_source_gref,
    GNTMAP_host_map,
    GNTMAP_readonly,
    GrantCopy,
    GTF_accept_transfer,
    GTF_permit_access,
    GTF_reading,
    GTF_readonly,
    GTF_sub_page,
    GTF_transitive,
    GTF_writing,
    entry_permits,
)
from vmmlib.xen.machine import Machine

from . import Case, Question

# --- q3: may this domain use this grant? -----------------------------------------------------
DOM0, GUEST, OTHER, NO_TABLE, BIG_TABLE = 0, 1, 2, 3, 4
#: the domains the cases' machine runs: (RAM pages, grant table frames)
DOMAINS = ((2048, 0), (512, 1), (256, 1), (256, 0), (256, 2))
TABLE_GFN = 0x10  # a grant table's first frame, in its owner's RAM
CALLER_GFN = 0x8  # the caller's own frame a copy reads into or writes from
HOST_ADDR = 0x7F00_0000  # where a map asks for the page (recorded, not used)
RW, RO = GTF_permit_access, GTF_permit_access | GTF_readonly
#: (ref, flags, domid, frame) granted in a domain's table
GRANTS = {
    GUEST: (
        (1, RW, DOM0, 0x30),  # the toolstack's xenstore entry
        (8, RW, DOM0, 0x20), (9, RO, DOM0, 0x21), (10, RW, OTHER, 0x22),
        (11, RW, DOM0, 0x200), (12, RW, DOM0, 0x1FF), (13, GTF_accept_transfer, DOM0, 0x23),
        (14, GTF_transitive, DOM0, 0x24), (15, RW | GTF_sub_page, DOM0, 0x25),
        (16, RO | GTF_sub_page, DOM0, 0x26), (17, 0, DOM0, 0x27),
        (18, RW | GTF_reading | GTF_writing, DOM0, 0x28), (19, RO, OTHER, 0xFFFFFFFF),
        (20, RO, DOM0, 0x1000_0000), (21, RW | 1 << 5 | 1 << 6, DOM0, 0x29),
        (511, RO, DOM0, 0x2A),
    ),
    OTHER: ((8, RW, GUEST, 0x40), (9, GTF_accept_transfer, GUEST, 0x41)),
    BIG_TABLE: ((600, RW, DOM0, 0x50), (1023, 0, 0, 0)),
}
STATUS = ("return Xen's GNTST_* status, an int: 0 okay, -1 general error, -2 bad domain, "
          "-3 bad grant ref, -9 bad page")
BAD_DOMAIN = "no domain has that domid: GNTST_bad_domain (-2), before anything else is looked at"
BAD_REF = ("the ref must be below the number of entries of the granter's grant table (512 per "
           "frame; a domain without a table has none): else GNTST_bad_gntref (-3)")
TYPE = ("the entry's type, flags bits 1:0, must be GTF_permit_access (1); any other type "
        "(invalid 0, accept_transfer 2, transitive 3) is GNTST_general_error (-1)")
SUB_PAGE = ("a GTF_sub_page grant may be copied but never mapped: a map refuses it with "
            "GNTST_general_error (-1)")
GRANTEE = ("the entry's domid must be the domain that asks (the caller): a grant to anyone else "
           "is GNTST_general_error (-1)")
READ_ONLY = ("a GTF_readonly grant can only be read: using it to write (a writable map, a copy "
             "into it) is GNTST_general_error (-1)")
BAD_PAGE = ("last, the granted frame must be RAM of the granting domain (frames 0 … ram_pages "
            "- 1): else GNTST_bad_page (-9)")
OKAY = ("only the type, the domid, GTF_readonly (for a write) and, for a map, GTF_sub_page "
        "decide: other flag bits (GTF_reading/GTF_writing, cache attributes) refuse nothing")

#: (caller, dom, ref, what): each tried as a map and a copy, for reading and for writing
Q3_PLAN: tuple[tuple[int, int, int, str], ...] = (
    (DOM0, GUEST, 8, "a writable grant to dom0"),
    (DOM0, GUEST, 9, "a read-only grant to dom0"),
    (DOM0, GUEST, 1, "a reserved entry the toolstack filled"),
    (DOM0, GUEST, 10, "a grant to another domain"),
    (OTHER, GUEST, 10, "a grant to the caller, domain 2"),
    (OTHER, GUEST, 8, "domain 2 asks for dom0's grant"),
    (DOM0, GUEST, 11, "a frame just past the granter's RAM"),
    (DOM0, GUEST, 12, "the granter's last frame"),
    (DOM0, GUEST, 13, "an accept_transfer entry"),
    (DOM0, GUEST, 14, "a transitive entry"),
    (DOM0, GUEST, 15, "a sub-page grant"),
    (DOM0, GUEST, 16, "a read-only sub-page grant"),
    (DOM0, GUEST, 17, "a revoked entry (flags 0)"),
    (DOM0, GUEST, 18, "GTF_reading and GTF_writing already set"),
    (DOM0, GUEST, 19, "another domain's grant of a frame that is not RAM"),
    (DOM0, GUEST, 20, "a read-only grant of a frame that is not RAM"),
    (DOM0, GUEST, 21, "a grant with cache-attribute bits"),
    (DOM0, GUEST, 100, "an entry never written"),
    (DOM0, GUEST, 511, "the table's last entry"),
    (DOM0, GUEST, 512, "the first ref past a one-frame table"),
    (DOM0, GUEST, 2**32 - 1, "the largest ref"),
    (GUEST, OTHER, 8, "a guest-to-guest grant"),
    (DOM0, OTHER, 8, "dom0 asks for a guest-to-guest grant"),
    (GUEST, OTHER, 9, "a guest-to-guest accept_transfer entry"),
    (DOM0, NO_TABLE, 8, "a domain without a grant table"),
    (DOM0, BIG_TABLE, 600, "a ref in a table's second frame"),
    (DOM0, BIG_TABLE, 1023, "a two-frame table's last entry, never written"),
    (DOM0, BIG_TABLE, 1024, "the first ref past a two-frame table"),
    (DOM0, 5, 8, "a domid no domain has"),
    (DOM0, 0x7FEF, 2**32 - 1, "a domid no domain has, and a ref past any table"),
)


def _entry(dom: int, ref: int) -> tuple[int, int, int]:
    return next(((f, d, fr) for r, f, d, fr in GRANTS.get(dom, ()) if r == ref), (0, 0, 0))


def _rule(op: str, caller: int, dom: int, ref: int, write: bool) -> str:
    """The check of Xen's that decides a case (for its hint), in the order Xen makes them."""
    if dom >= len(DOMAINS):
        return BAD_DOMAIN
    if ref >= DOMAINS[dom][1] * ENTRIES_PER_FRAME:
        return BAD_REF
    flags, domid, frame = _entry(dom, ref)
    if flags & 3 != GTF_permit_access:
        return TYPE
    if op == "map" and flags & GTF_sub_page:
        return SUB_PAGE
    if domid != caller:
        return GRANTEE
    if write and flags & GTF_readonly:
        return READ_ONLY
    return BAD_PAGE if frame >= DOMAINS[dom][0] else OKAY


def grant_cases() -> list[Case]:
    cases = []
    for caller, dom, ref, what in Q3_PLAN:
        for op in ("map", "copy"):
            for write in (False, True):
                use = f"{op} for {'writing' if write else 'reading'}"
                cases.append(Case(f"domain {caller} asks to {use} ref {ref} of domain {dom} "
                                  f"({what})", (op, caller, dom, ref, write),
                                  _rule(op, caller, dom, ref, write)))
    return cases


def grant_domains() -> dict[int, dict]:
    """What the student's function is told about the machine: every domain's RAM size and its
    grant table as the granter's memory holds it (a list of (flags, domid, frame), one per
    ref), or None for a domain without one."""
    found = {}
    for domid, (pages, frames) in enumerate(DOMAINS):
        table = None
        if frames:
            table = [(0, 0, 0)] * (frames * ENTRIES_PER_FRAME)
            for ref, flags, grantee, frame in GRANTS.get(domid, ()):
                table[ref] = (flags, grantee, frame)
        found[domid] = {"ram_pages": pages, "grant_table": table}
    return found


def grant_arguments(op: str, caller: int, dom: int, ref: int, write: bool) -> tuple:
    return op, caller, dom, ref, write, grant_domains()


def _grant_machine() -> tuple[Machine, GrantTables]:
    """A machine running DOMAINS, their tables holding GRANTS (written in Xen's order)."""
    machine = Machine(sum(pages for pages, _ in DOMAINS) * PAGE_SIZE + MIB)
    tables = GrantTables(machine)
    for domid, (pages, frames) in enumerate(DOMAINS):
        domain = machine.add_domain(f"domain {domid}", pages * PAGE_SIZE, kind="pv",
                                    privileged=domid == DOM0)
        if frames:
            table = tables.setup(domain, [TABLE_GFN + i for i in range(frames)])
            for ref, flags, grantee, frame in GRANTS.get(domid, ()):
                table.write(ref, "domid", grantee)
                table.write(ref, "frame", frame)
                table.write(ref, "flags", flags)
    return machine, tables


def reference_grant(op: str, caller: int, dom: int, ref: int, write: bool,
                    domains: dict) -> int:
    """What Xen's grant_table_op answers, on a fresh machine (``domains`` is what the
    student's function is told about it)."""
    machine, tables = _grant_machine()
    asker = machine.domains[caller]
    if op == "map":
        flags = GNTMAP_host_map | (0 if write else GNTMAP_readonly)
        return tables.map_grant_ref(asker, dom, ref, flags, HOST_ADDR).status
    if write:  # one sector from the caller's own frame into the granted page
        copy = GrantCopy(CALLER_GFN, DOMID_SELF, 0, ref, dom, 0, SECTOR_SIZE, GNTCOPY_dest_gref)
    else:
        copy = GrantCopy(ref, dom, 0, CALLER_GFN, DOMID_SELF, 0, SECTOR_SIZE,
                         GNTCOPY_source_gref)
    return tables.copy(asker, copy)


def grant_hint(case: Case, expected: object, got: object) -> str | None:
    if type(got) is not int or got not in GNTST_NAMES:
        return STATUS
    if got == -4 and expected == -3:
        return "GNTST_bad_gntref is -3 in grant_table.h (-4 is GNTST_bad_handle). " + case.rule
    if got == -8 and expected == -1:
        return ("Xen refuses a grant's entry with GNTST_general_error (-1); "
                "GNTST_permission_denied (-8) is for a copy by frame number. " + case.rule)
    if got == -9 and expected == -1:
        return ("Xen checks the entry (its type, domid and GTF_readonly) before it looks at "
                "the frame. " + case.rule)
    return None


Q3 = Question(
    label="q3", function="grant_status", cases=grant_cases, build=grant_arguments,
    reference=reference_grant,
    withholds=(GrantTables.map_grant_ref, GrantTables.copy, GrantTables._pin, entry_permits),
    hint=grant_hint,
)
