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

q3 is declared in :mod:`.split_drivers_grants`, q4 in :mod:`.split_drivers_runs`; the chapter
(``CHAPTER``) and the check cells' functions are here.
"""

from __future__ import annotations

import random

from vmmlib.guest.blkfront import OPERATIONS, chunks
from vmmlib.hw.memory import PAGE_SIZE
from vmmlib.xen.blkif import (
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    SECTOR_SIZE,
    segments_for_buffer,
)
from vmmlib.xen.ring import RING_IDX_MASK, should_notify

from . import Case, Chapter, Question
from .split_drivers_grants import Q3  # q3 and q4 have their own modules
from .split_drivers_runs import Q4

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

# --- the chapter ------------------------------------------------------------------------------

CHAPTER = Chapter(__name__, (Q1, Q2, Q3, Q4))

check_should_notify = Q1.check
check_blkif_requests = Q2.check
check_grant_status = Q3.check
check_count_notifications = Q4.check
