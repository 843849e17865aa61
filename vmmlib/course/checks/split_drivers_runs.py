"""Chapter 03's q4 (see :mod:`vmmlib.course.checks.split_drivers`): the events each end of a
blkif ring sends over a run of ring operations, counted on real ``FrontRing``/``BackRing``
objects (xen/include/public/io/ring.h; hardware-facts.md §5.2, §5.3)."""

from __future__ import annotations

import random

import numpy as np

from vmmlib.hw.memory import PAGE_SIZE
from vmmlib.xen.blkif import RING_ENTRY_SIZE
from vmmlib.xen.ring import RING_IDX_MASK, BackRing, FrontRing, SharedRing

from . import Case, Question

SEED = 2006
M32 = RING_IDX_MASK + 1

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
