"""Checks for chapter 03, "Split drivers" (solutions/03-split-drivers-exercises.ipynb).

* q1 ``should_notify(old, new, event)``: the notify rule of RING_PUSH_*_AND_CHECK_NOTIFY
  (io/ring.h, hardware-facts.md §5.2): notify iff ``event`` lies in (old, new], computed with
  unsigned 32-bit subtraction. Cases: the window's edges (event == old, old + 1, new,
  new + 1), no progress (old == new), indices that wrap past 2**32 − 1, a full ring's batch,
  distances of 2**31 and more (where a signed compare goes wrong), and a seeded random part.
"""

from __future__ import annotations

import random

from vmmlib.xen.ring import RING_IDX_MASK, should_notify

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

CHAPTER = Chapter(__name__, (Q1,))

check_should_notify = Q1.check
