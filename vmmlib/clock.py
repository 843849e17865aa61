"""Virtual time: the only clock the simulator knows, and the alarms set on it.

Nothing in vmmlib reads the wall clock, so every run of a scenario produces the same times.

Besides the time itself, the clock keeps **alarms**: things that happen at a moment in virtual
time without anyone asking — dom0 getting scheduled after an event channel fired, a disk
finishing a transfer and raising its interrupt. ``call_at(t, action)`` sets one; alarms fire
in time order (and in the order they were set, for equal times) when time reaches them:
``fire_due()`` runs those whose time has come (the vCPU calls it between operations), and
``run_until(ready)`` — what a blocked or halted vCPU does — moves time from alarm to alarm
until ``ready()`` holds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count

from .errors import ConfigError

#: The most alarms ``run_until`` fires before it gives up (a livelock guard).
MAX_ALARMS = 1_000_000


class Clock:
    """A nanosecond counter advanced explicitly by whoever models the cost of an action."""

    __slots__ = ("now", "alarms", "_seq")

    def __init__(self, now: int = 0) -> None:
        self.now = now
        #: (time, sequence number, action) in a heap: the next alarm is ``alarms[0]``
        self.alarms: list[tuple[int, int, Callable[[], object]]] = []
        self._seq = count()

    def advance(self, ns: int) -> int:
        """Move time forward by ``ns`` nanoseconds and return the new time."""
        if ns < 0:
            raise ConfigError("virtual time cannot go backwards")
        self.now += ns
        return self.now

    def advance_to(self, t: int) -> int:
        """Move time forward to ``t`` (no-op if it is already later)."""
        if t > self.now:
            self.now = t
        return self.now

    # -- alarms ----------------------------------------------------------------------------
    def call_at(self, t: int, action: Callable[[], object]) -> None:
        """Run ``action()`` when virtual time reaches ``t`` (at once, if it already has)."""
        if t.__class__ is not int:
            raise ConfigError(f"an alarm is set for a whole number of ns, not {t!r}")
        if not callable(action):
            raise ConfigError(f"an alarm needs something to call, not {action!r}")
        heapq.heappush(self.alarms, (max(t, self.now), next(self._seq), action))

    def next_alarm(self) -> int | None:
        """When the next alarm is due, or None."""
        return self.alarms[0][0] if self.alarms else None

    def fire_due(self) -> int:
        """Run every alarm whose time has come (and those they set for now); returns how many."""
        fired = 0
        alarms = self.alarms
        while alarms and alarms[0][0] <= self.now:
            _, _, action = heapq.heappop(alarms)
            action()
            fired += 1
            if fired > MAX_ALARMS:
                raise ConfigError("alarms keep setting alarms for now: a livelock in the model")
        return fired

    def run_until(self, ready: Callable[[], bool], limit: int = MAX_ALARMS) -> bool:
        """Move time from alarm to alarm, firing each, until ``ready()``; False if the alarms
        ran out first (nothing will ever make it ready) or ``limit`` alarms did not do it."""
        fired = 0
        while not ready():
            if not self.alarms or fired >= limit:
                return False
            self.now = max(self.now, self.alarms[0][0])
            fired += self.fire_due()
        return True
