"""Virtual time: the only clock the simulator knows.

Nothing in vmmlib reads the wall clock, so every run of a scenario produces the same times.
"""

from __future__ import annotations

from .errors import ConfigError


class Clock:
    """A nanosecond counter advanced explicitly by whoever models the cost of an action."""

    __slots__ = ("now",)

    def __init__(self, now: int = 0) -> None:
        self.now = now

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
