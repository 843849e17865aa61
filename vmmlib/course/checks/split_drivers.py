"""Checks for chapter 03, "Split drivers" (solutions/03-split-drivers-exercises.ipynb).

* q1 ``should_notify(old, new, event)``: the notify rule of RING_PUSH_*_AND_CHECK_NOTIFY
  (io/ring.h, hardware-facts.md §5.2): notify iff ``event`` lies in (old, new], computed with
  unsigned 32-bit subtraction. Cases: the window's edges (event == old, old + 1, new,
  new + 1), no progress (old == new), indices that wrap past 2**32 − 1, a full ring's batch,
  distances of 2**31 and more (where a signed compare goes wrong), and a seeded random part.
* q2 ``blkif_requests(op, sector, count, buffer)``: the requests blkfront puts in the ring for
  ``count`` sectors at a sector-aligned guest buffer (``blkfront.chunks`` then
  ``blkif.segments_for_buffer`` for each piece, hardware-facts.md §6, §7.2): one segment per
  4 KiB page touched with an inclusive sector range 0 … 7, at most 11 segments per request,
  each request's first disk sector, and the grants' access (read-only for a disk WRITE,
  writable for a disk READ). Buffers at every sector offset of a page, one sector to 512,
  exactly 11 pages, 11 pages and one sector, 12 pages touched by 11 pages' worth of bytes.
* q3 ``grant_status(op, caller, dom, ref, write, domains)``: the GNTST_* status Xen returns
  when domain ``caller`` maps (GNTTABOP_map_grant_ref, host mapping) or copies
  (GNTTABOP_copy, to or from one of its own frames) grant ``ref`` of domain ``dom``
  (grant_table.h, common/grant_table.c, hardware-facts.md §7.2), as ``GrantTables`` answers
  on a machine built from ``domains``: a domain that does not exist, no grant table, refs at
  and past the table's end, every grant type, the wrong grantee, a read-only grant written,
  GTF_sub_page (copy-only), a frame that is not the granter's RAM, and the checks' order.
* q4 ``count_notifications(start, ops)``: the events each end sends over a run of ring
  operations (hardware-facts.md §5.2, §5.3), from real ``FrontRing``/``BackRing`` objects on
  a blkif ring of 32 slots whose indices start at ``start``: the first push notifies, later
  ones only once the consumer re-armed its event index with a final check, which re-arms it
  only when it finds no work; indices started near 2**32 wrap in the run.
"""

from __future__ import annotations

import random

import numpy as np

from vmmlib.guest.blkfront import OPERATIONS, chunks
from vmmlib.hw.memory import MIB, PAGE_SIZE
from vmmlib.xen.blkif import (
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    RING_ENTRY_SIZE,
    SECTOR_SIZE,
    segments_for_buffer,
)
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
from vmmlib.xen.ring import RING_IDX_MASK, BackRing, FrontRing, SharedRing, should_notify

from . import Case, Chapter, Question

SEED = 2006
M32 = RING_IDX_MASK + 1  # 2**32: ring indices are free-running u32 counters

# --- q1: the notify rule ----------------------------------------------------------------------
WINDOW = ("notify iff the event index lies in the window (old, new] of the indices just "
          "published: old itself is excluded, new is included")
NO_PROGRESS = ("no index was published (old == new): the window (old, new] is empty, so there "
               "is never a notification")
WRAP = ("the indices wrap past 2**32 - 1 to 0: compute (new - event) and (new - old) modulo "
        "2**32 (unsigned 32-bit subtraction) and compare those")
UNSIGNED = ("RING_IDX is an UNSIGNED 32-bit integer: a distance of 2**31 or more is still a "
            "positive distance, not a negative signed int32")

#: (old, new, event, rule, what)
Q1_PLAN: tuple[tuple[int, int, int, str, str], ...] = (
    (0, 1, 1, WINDOW, "the first request after SHARED_RING_INIT (req_event = 1)"),
    (1, 2, 1, WINDOW, "event == old"),
    (5, 9, 5, WINDOW, "event == old, a batch of 4"),
    (5, 9, 9, WINDOW, "event == new"),
    (5, 9, 10, WINDOW, "event == new + 1"),
    (5, 9, 6, WINDOW, "event == old + 1"),
    (5, 9, 7, WINDOW, "event inside the batch"),
    (5, 9, 4, WINDOW, "event behind old (the consumer has not asked again)"),
    (100, 132, 101, WINDOW, "a full ring's batch of 32, event at its start"),
    (100, 132, 132, WINDOW, "a full ring's batch of 32, event at its end"),
    (100, 132, 133, WINDOW, "a full ring's batch of 32, event just after it"),
    (7, 7, 7, NO_PROGRESS, "no progress, event == old == new"),
    (7, 7, 8, NO_PROGRESS, "no progress, event == new + 1"),
    (7, 7, 6, NO_PROGRESS, "no progress, event behind"),
    (0xFFFFFFFF, 0xFFFFFFFF, 0, NO_PROGRESS, "no progress at the top of the index space"),
    (0xFFFFFFFE, 0x1, 0xFFFFFFFF, WRAP, "across the wrap, hardware-facts' example"),
    (0xFFFFFFFE, 0x1, 0x0, WRAP, "across the wrap, event at 0"),
    (0xFFFFFFFE, 0x1, 0x1, WRAP, "across the wrap, event == new"),
    (0xFFFFFFFE, 0x1, 0x2, WRAP, "across the wrap, event == new + 1"),
    (0xFFFFFFFE, 0x1, 0xFFFFFFFE, WRAP, "across the wrap, event == old"),
    (0xFFFFFFFF, 0x0, 0x0, WRAP, "new is exactly 0 after the wrap, event == new"),
    (0xFFFFFFFF, 0x0, 0xFFFFFFFF, WRAP, "new is exactly 0 after the wrap, event == old"),
    (0xFFFFFFF0, 0x10, 0xFFFFFFF8, WRAP, "a batch of 32 across the wrap, event before 0"),
    (0xFFFFFFF0, 0x10, 0x8, WRAP, "a batch of 32 across the wrap, event after 0"),
    (0xFFFFFFF0, 0x10, 0x11, WRAP, "a batch of 32 across the wrap, event == new + 1"),
    (0xFFFFFFF0, 0x10, 0xFFFFFFEF, WRAP, "a batch of 32 across the wrap, event behind old"),
    (0x10, 0x20, 0xFFFFFFF8, WRAP, "an event index left behind before the wrap"),
    (0x7FFFFFF0, 0x80000010, 0x80000000, WRAP, "a batch across 2**31"),
    (0x7FFFFFF0, 0x80000010, 0x7FFFFFF0, WRAP, "a batch across 2**31, event == old"),
    (0, 0x80000005, 10, UNSIGNED, "a distance above 2**31"),
    (0, 0x80000000, 0x7FFFFFFF, UNSIGNED, "a distance of exactly 2**31"),
    (0xFFFFFFFF, 0x7FFFFFFF, 0x3FFFFFFF, UNSIGNED, "a distance of 2**31 across the wrap"),
    (0x10, 0x90000010, 0x90000011, UNSIGNED, "a distance above 2**31, event == new + 1"),
)


def _random_pushes() -> list[tuple[int, int, int, str, str]]:
    rng = random.Random(SEED + 10)
    found = []
    for n in range(24):
        old = rng.choice((rng.randrange(M32), M32 - rng.randrange(1, 40)))
        batch, ahead = rng.randrange(0, 33), rng.randrange(-3, 37)
        new, event = (old + batch) % M32, (old + ahead) % M32
        crosses = old + max(batch, ahead) >= M32
        rule = WRAP if crosses else NO_PROGRESS if batch == 0 else WINDOW
        found.append((old, new, event, rule, f"a random push #{n + 1}"))
    return found


def notify_cases() -> list[Case]:
    return [Case(f"old {old:#x}, new {new:#x}, event {event:#x} ({what})", (old, new, event),
                 rule)
            for old, new, event, rule, what in Q1_PLAN + tuple(_random_pushes())]


def reference_notify(old: int, new: int, event: int) -> bool:
    return should_notify(old, new, event)


def notify_hint(case: Case, expected: object, got: object) -> str | None:
    if type(got) is not bool:
        return f"return True or False (a bool), not {got!r}"
    old, new, event = case.inputs
    if (new - event < 0 or new - old < 0) and got == (new - event < new - old):
        return ("here new - event or new - old is negative in Python, whose integers never "
                "wrap: RING_IDX subtraction is unsigned 32-bit, take it modulo 2**32")
    return None


Q1 = Question(
    label="q1", function="should_notify", cases=notify_cases, reference=reference_notify,
    withholds=(should_notify,), hint=notify_hint,
)

# --- q2: the requests blkfront builds for a buffer --------------------------------------------
BUFFER = 0x100000  # where the chapter's scenarios put the I/O buffer
REQUEST_KEYS = ("readonly", "sector_number", "segments")
SHAPE = ('return a list of requests, each a dict with exactly the keys "sector_number", '
         '"readonly" and "segments" (a list of [gfn, first_sect, last_sect])')
PAGES = ("one segment per 4 KiB page the buffer touches: [gfn, first_sect, last_sect], gfn the "
         "page's address >> 12, and the INCLUSIVE range of 512-byte sectors used in that page "
         "(0 … 7)")
SPLIT = ("a request holds at most 11 segments (BLKIF_MAX_SEGMENTS_PER_REQUEST): blkfront puts "
         "the buffer's first 11 pages in one request, then starts the next request where that "
         "one ended")
ACCESS = ("a disk WRITE needs the back end only to read the pages: grant them read-only "
          "(readonly True); a disk READ needs them writable (readonly False)")
GFN = ("a segment names its page by guest frame number: the page's guest-physical address "
       ">> 12 (not a byte address)")
FIRST_SECT = ("first_sect is the first sector used in the page: (address & 0xFFF) // 512 in the "
              "buffer's first page, 0 in every page after it")
LAST_SECT = ("last_sect is INCLUSIVE: the last sector used in the page, 7 for a page used to its "
             "end, never 8 (a segment moves (last_sect - first_sect + 1) * 512 bytes)")
SECTOR = ("each request's sector_number is the first disk sector it moves: the previous "
          "request's sector_number plus the sectors that request moved")

#: (op, first disk sector, sectors, buffer address, rule, what)
Q2_PLAN: tuple[tuple[str, int, int, int, str, str], ...] = (
    ("read", 0, 1, BUFFER, PAGES, "one sector at the start of a page"),
    ("read", 7, 1, BUFFER + 0xE00, PAGES, "one sector, the last of its page"),
    ("read", 100, 8, BUFFER, PAGES, "one whole page"),
    ("read", 100, 8, BUFFER + 0x200, PAGES, "a page's worth, one sector into a page"),
    ("read", 3, 2, BUFFER + 0xC00, PAGES, "sectors 6 and 7 of a page"),
    ("read", 3, 3, BUFFER + 0xE00, PAGES, "three sectors across a page boundary"),
    ("read", 40, 7, BUFFER + 0x200, PAGES, "from sector 1 to the end of the page"),
    ("read", 0, 9, 0x0, PAGES, "nine sectors at guest address 0"),
    ("read", 77, 16, 0x1_0000_3A00, PAGES, "a buffer above 4 GiB"),
    ("write", 0, 1, BUFFER, ACCESS, "a one-sector write"),
    ("write", 100, 8, BUFFER + 0x200, ACCESS, "a page's worth of write across two pages"),
    ("write", 2**32, 24, 0x7000, ACCESS, "a write of three pages at sector 2**32"),
    ("read", 0, 81, BUFFER + 0x200, SPLIT, "81 sectors touching exactly 11 pages"),
    ("read", 1000, 88, BUFFER, SPLIT, "exactly 11 whole pages: one request"),
    ("read", 1000, 89, BUFFER, SPLIT, "11 pages and one sector: two requests"),
    ("write", 1000, 89, BUFFER + 0x800, SPLIT, "a write of 89 sectors touching 12 pages"),
    ("read", 5, 88, BUFFER + 0x200, SPLIT, "11 pages' worth of bytes touching 12 pages"),
    ("read", 5, 88, BUFFER + 0xE00, SPLIT, "11 pages' worth from the last sector of a page"),
    ("read", 0, 176, BUFFER, SPLIT, "two full requests"),
    ("write", 64, 256, BUFFER + 0x600, SPLIT, "128 KiB touching 33 pages"),
    ("read", 2048, 512, BUFFER + 0x400, SPLIT, "256 KiB touching 65 pages"),
)


def _random_buffers() -> list[tuple[str, int, int, int, str, str]]:
    rng = random.Random(SEED + 20)
    found = []
    for n in range(14):
        op = rng.choice(("read", "write"))
        count = rng.choice((rng.randrange(1, 17), rng.randrange(17, 300)))
        buffer = BUFFER + rng.randrange(256) * PAGE_SIZE + rng.randrange(8) * SECTOR_SIZE
        found.append((op, rng.randrange(2**30), count, buffer, SPLIT if count > 80 else PAGES,
                      f"a random transfer #{n + 1}"))
    return found


def request_cases() -> list[Case]:
    return [Case(f"{op} {count} sector{'s' * (count != 1)} from sector {sector} at "
                 f"{buffer:#x} ({what})",
                 (op, sector, count, buffer), rule)
            for op, sector, count, buffer, rule, what in Q2_PLAN + tuple(_random_buffers())]


def reference_requests(op: str, sector: int, count: int, buffer: int) -> list[dict]:
    """blkfront_io's requests: chunks() of the buffer, segments_for_buffer() of each chunk."""
    requests, at = [], sector
    for addr, nbytes in chunks(buffer, count * SECTOR_SIZE):
        segments = segments_for_buffer(addr, nbytes, OPERATIONS[op])
        requests.append({"sector_number": at, "readonly": segments[0].readonly,
                         "segments": [[s.gfn, s.first_sect, s.last_sect] for s in segments]})
        at += nbytes // SECTOR_SIZE
    return requests


def _is_request(request: object) -> bool:
    return (type(request) is dict and sorted(request) == list(REQUEST_KEYS)
            and type(request["segments"]) is list)


def requests_hint(case: Case, expected: object, got: object) -> str | None:
    """Name the first thing the requests got wrong: the split, the access, a segment's field,
    a request's first sector."""
    if type(got) is not list or not all(_is_request(r) for r in got):
        return SHAPE
    assert isinstance(expected, list)
    if len(got) != len(expected) or any(
            len(r["segments"]) > BLKIF_MAX_SEGMENTS_PER_REQUEST for r in got):
        return SPLIT
    for want, have in zip(expected, got, strict=True):
        if have["readonly"] != want["readonly"]:
            return ACCESS
        if len(have["segments"]) != len(want["segments"]):
            return PAGES
        for w, h in zip(want["segments"], have["segments"], strict=True):
            if type(h) is not list or len(h) != 3:
                return "each segment is a list of three ints: [gfn, first_sect, last_sect]"
            for index, rule in enumerate((GFN, FIRST_SECT, LAST_SECT)):
                if h[index] != w[index]:
                    return rule
        if have["sector_number"] != want["sector_number"]:
            return SECTOR
    return None


Q2 = Question(
    label="q2", function="blkif_requests", cases=request_cases, reference=reference_requests,
    withholds=(segments_for_buffer, chunks), hint=requests_hint,
)

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

# --- q4: count the notifications ---------------------------------------------------------------
KEYS4 = ("back", "front")
SHAPE4 = ('return a dict {"front": events the front end sent, "back": events the back end '
          'sent}, two ints')
FIRST = ("SHARED_RING_INIT sets req_event = rsp_event = start + 1: the first push of each end "
         "notifies; after that an end's push notifies only if the other end's event index lies "
         "in the window (old, new] the push published")
REARM = ("the consumer asks for the next event only with its final check: "
         "RING_FINAL_CHECK_FOR_REQUESTS sets req_event = req_cons + 1, "
         "RING_FINAL_CHECK_FOR_RESPONSES rsp_event = rsp_cons + 1 — when it finds no work")
WORK = ("a final check that finds unconsumed work changes no event index: the consumer is "
        "awake and goes on working (only with no work does it set event = cons + 1)")
ONLY_CHECKS = ("taking requests or collecting responses moves only the consumer's own index: "
               "the event indices change only in a final check")
SIDES = ("send pushes requests and reads req_event, answer pushes responses and reads "
         "rsp_event; the back end's check sets req_event, the front end's rsp_event")
WRAP4 = ("the indices are free-running u32 counters started at `start`: they wrap past "
         "2**32 - 1, so the notify rule's subtractions are modulo 2**32")
OPS = ("send", "take", "answer", "collect", "back_check", "front_check")
NEAR_TOP = 2**32 - 2

#: (start, ops, rule, what)
Q4_PLAN: tuple[tuple[int, tuple, str, str], ...] = (
    (0, (("send", 1),), FIRST, "one request"),
    (0, (("send", 1), ("send", 1)), FIRST, "a second push before the back end looks"),
    (0, (("send", 1), ("send", 1), ("send", 1), ("send", 1)), FIRST, "four pushes, no check"),
    (0, (("send", 1), ("take",), ("send", 1)), ONLY_CHECKS, "a take does not re-arm"),
    (0, (("send", 1), ("take",), ("back_check",), ("send", 1)), REARM,
     "the back end re-arms, then a request"),
    (0, (("send", 1), ("take",), ("back_check",), ("send", 5)), REARM,
     "the back end re-arms, then a batch of five"),
    (0, (("send", 1), ("take",), ("send", 1), ("back_check",), ("send", 1)), WORK,
     "the check finds work: no re-arm"),
    (0, (("send", 2), ("take",), ("send", 1), ("back_check",), ("take",), ("back_check",),
         ("send", 1)), WORK, "work, then none: the second check re-arms"),
    (0, (("back_check",), ("send", 1), ("send", 1)), REARM, "a check on an empty ring"),
    (0, (("send", 3), ("take",), ("back_check",), ("back_check",), ("send", 1), ("send", 1)),
     REARM, "two checks in a row"),
    (0, (("send", 3), ("take",), ("answer", 3)), FIRST, "three answers in one push"),
    (0, (("send", 2), ("take",), ("answer", 1), ("answer", 1)), FIRST,
     "two answers, two pushes, no check"),
    (0, (("send", 2), ("take",), ("answer", 1), ("collect",), ("answer", 1)), ONLY_CHECKS,
     "a collect does not re-arm"),
    (0, (("send", 2), ("take",), ("answer", 1), ("collect",), ("front_check",),
         ("answer", 1)), REARM, "the front end re-arms, then an answer"),
    (0, (("send", 3), ("take",), ("answer", 1), ("answer", 1), ("front_check",),
         ("collect",), ("answer", 1)), WORK, "the front end's check finds responses"),
    (0, (("send", 2), ("take",), ("front_check",), ("answer", 2)), SIDES,
     "the front end re-arms before any answer"),
    (0, (("send", 1), ("take",), ("front_check",), ("send", 1)), SIDES,
     "the front end's check does not re-arm req_event"),
    (0, (("send", 2), ("take",), ("answer", 1), ("back_check",), ("answer", 1)), SIDES,
     "the back end's check does not re-arm rsp_event"),
    (0, (("send", 4), ("take",), ("answer", 4), ("back_check",), ("collect",),
         ("front_check",), ("send", 4), ("take",), ("answer", 4), ("back_check",),
         ("collect",), ("front_check",)), REARM, "two round trips as blkfront and blkback"),
    (0, (("send", 32), ("take",), ("answer", 32), ("collect",), ("front_check",),
         ("back_check",), ("send", 32), ("take",), ("answer", 32)), REARM,
     "two full rings"),
    (NEAR_TOP, (("send", 1), ("take",), ("back_check",), ("send", 3)), WRAP4,
     "a re-arm just before the wrap"),
    (NEAR_TOP, (("send", 3), ("take",), ("back_check",), ("send", 1), ("send", 1)), WRAP4,
     "a re-arm just after the wrap"),
    (NEAR_TOP, (("send", 2), ("take",), ("answer", 2), ("collect",), ("front_check",),
         ("back_check",), ("send", 2), ("take",), ("answer", 2)), WRAP4,
     "both ends across the wrap"),
    (2**32 - 1, (("back_check",), ("send", 1), ("take",), ("back_check",), ("send", 1)),
     WRAP4, "event index 0 after the wrap"),
    (2**32 - 1, (("send", 1),), WRAP4, "started at 2**32 - 1: req_event is 0"),
    (0x7FFFFFFE, (("send", 3), ("take",), ("back_check",), ("send", 2)), WRAP4,
     "indices across 2**31"),
)


def _random_runs() -> list[tuple[int, tuple, str, str]]:
    """Legal runs: the front end never has more than 32 requests outstanding, the back end
    answers only requests it took."""
    rng = random.Random(SEED + 40)
    found = []
    for n in range(16):
        start = rng.choice((0, NEAR_TOP - rng.randrange(30), rng.randrange(M32)))
        sent = taken = answered = collected = 0
        ops: list[tuple] = []
        length = rng.randrange(6, 24)
        while len(ops) < length:
            name = rng.choice(OPS)
            if name == "send" and sent - collected < 32:
                k = rng.randrange(1, 33 - (sent - collected))
                ops.append(("send", k))
                sent += k
            elif name == "answer" and taken > answered:
                k = rng.randrange(1, taken - answered + 1)
                ops.append(("answer", k))
                answered += k
            elif name == "take":
                ops.append(("take",))
                taken = sent
            elif name == "collect":
                ops.append(("collect",))
                collected = answered
            elif name in ("back_check", "front_check"):
                ops.append((name,))
        found.append((start, tuple(ops), WRAP4 if start > NEAR_TOP - 60 else REARM,
                      f"random run #{n + 1}"))
    return found


def _show_op(op: tuple) -> str:
    return op[0] if len(op) == 1 else f"{op[0]} {op[1]}"


def notification_cases() -> list[Case]:
    return [Case(f"start {start:#x}: {', '.join(_show_op(op) for op in ops)} ({what})",
                 (start, [list(op) for op in ops]), rule)
            for start, ops, rule, what in Q4_PLAN + tuple(_random_runs())]


def notification_arguments(start: int, ops: list) -> tuple:
    return start, [tuple(op) for op in ops]


def reference_notifications(start: int, ops: list) -> dict:
    """Drive a real blkif ring (one page, 32 slots) through ``ops``; count each push that
    says to notify."""
    sring = SharedRing(np.zeros(PAGE_SIZE, np.uint8), RING_ENTRY_SIZE)
    sring.init(start)
    front, back = FrontRing(sring, start), BackRing(sring, start)
    sent = {"front": 0, "back": 0}
    for name, *count in ops:
        if name == "send":
            for _ in range(count[0]):
                front.put_request(bytes(RING_ENTRY_SIZE))
            sent["front"] += int(front.push_requests_and_check_notify())
        elif name == "answer":
            for _ in range(count[0]):
                back.put_response(bytes(16))
            sent["back"] += int(back.push_responses_and_check_notify())
        elif name == "take":
            back.take_requests()
        elif name == "collect":
            front.take_responses()
        elif name == "back_check":
            back.final_check_for_requests()
        elif name == "front_check":
            front.final_check_for_responses()
        else:
            raise ValueError(f"no ring operation {name!r}")
    return sent


def notification_hint(case: Case, expected: object, got: object) -> str | None:
    if type(got) is not dict or sorted(got) != list(KEYS4) or not all(
            type(v) is int for v in got.values()):
        return SHAPE4
    assert isinstance(expected, dict)
    for end, other in (("front", "back"), ("back", "front")):
        if got[end] != expected[end]:
            more = "more" if got[end] > expected[end] else "fewer"
            return (f"you count {more} events sent by the {end} end than it sends (the "
                    f"{other} end's event index decides). " + case.rule)
    return None


Q4 = Question(
    label="q4", function="count_notifications", cases=notification_cases,
    build=notification_arguments, reference=reference_notifications,
    withholds=(FrontRing.push_requests_steps, BackRing.push_responses_steps,
               FrontRing.final_check_for_responses_steps,
               BackRing.final_check_for_requests_steps),
    hint=notification_hint,
)

CHAPTER = Chapter(__name__, (Q1, Q2, Q3, Q4))

check_should_notify = Q1.check
check_blkif_requests = Q2.check
check_grant_status = Q3.check
check_count_notifications = Q4.check
