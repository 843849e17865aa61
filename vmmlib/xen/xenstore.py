"""xenstore, as far as split drivers need it: a tree of small strings, and watches on it.

Front and back end find each other through xenstore: the toolstack writes where each device's
back end lives (``backend/vbd/<domid>/<devid>``) and front end (``device/vbd/<devid>`` under the
guest's home), the front end writes its ``ring-ref`` and ``event-channel`` and moves its
``state`` along XenbusState (Initialising 1, InitWait 2, Initialised 3, Connected 4, Closing 5,
Closed 6), and the back end, which *watches* the front end's directory, maps the ring, binds
the channel and says Connected. Source: xen/include/public/io/xenbus.h (XenbusState),
xen/include/public/io/blkif.h (the ring-ref / event-channel keys), docs/misc/xenstore.txt.

What the model leaves out: xenstore's own ring and event channel (xenbus traffic): a write is
in the store, and its watches fired, at once. Paths are absolute (``/local/domain/<id>/...``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError

XenbusStateInitialising, XenbusStateInitWait, XenbusStateInitialised = 1, 2, 3
XenbusStateConnected, XenbusStateClosing, XenbusStateClosed = 4, 5, 6


def home(domid: int) -> str:
    """A domain's home directory in the store."""
    return f"/local/domain/{domid}"


class XenStore:
    """Paths to string values, with watches that fire on every write below their path."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._watches: list[tuple[str, Callable[[str, str], None]]] = []

    def write(self, path: str, value: object) -> None:
        """Store ``str(value)`` at ``path`` and fire the watches above it."""
        if not isinstance(path, str) or not path.startswith("/") or "//" in path:
            raise ConfigError(f"a xenstore path is absolute, like /local/domain/1, not {path!r}")
        text = str(value)
        self.values[path] = text
        for prefix, callback in list(self._watches):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                callback(path, text)

    def read(self, path: str) -> str | None:
        """The value at ``path``, or None."""
        return self.values.get(path)

    def watch(self, prefix: str, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(path, value)`` after every write at or below ``prefix``."""
        self._watches.append((prefix, callback))


__all__ = ["XenStore", "XenbusStateConnected", "XenbusStateInitialised", "home"]
