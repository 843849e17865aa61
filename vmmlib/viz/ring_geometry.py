"""Where the parts of chapter 03's ring picture go: one layout for both of its renderers.

``plot_ring`` (matplotlib, ``vmmlib.viz.ring``) and ``ring_svg`` (plain SVG for the stepping
widget, ``vmmlib.viz.ring_svg``) draw the same picture of a ``RingState``: the slots clockwise
from the top as a ring of wedges (slot = index & 31), coloured by what they hold, and each of
the eight indices as a tick on the edge *before* the slot it names, with a label outside the
circle — left or right by the side of the circle the tick is on, moved apart so that no two
labels overlap. Coordinates are the picture's own: the ring is centred on (0, 0) with outer
radius 1. Plain Python (no matplotlib).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..scenarios.ring_world import SLOT_STATES, RingState
from .palette import OKABE_ITO, ROLES

R_OUT, R_IN = 1.0, 0.56  # the ring of slots
LABEL_X, LABEL_GAP = 1.18, 0.125  # index label columns, their least vertical distance
LABEL_LIMIT = 1.18  # labels stay within y = ±1.18
SLOT_COLOURS = {
    "free": "#FFFFFF",
    "request-private": OKABE_ITO["sky_blue"],
    "request": OKABE_ITO["sky_blue"],
    "serving": OKABE_ITO["orange"],
    "response-private": OKABE_ITO["bluish_green"],
    "response": OKABE_ITO["bluish_green"],
}
SLOT_NAMES = {
    "free": "free",
    "request-private": "request written (not pushed)",
    "request": "request waiting",
    "serving": "request being served",
    "response-private": "response written (not pushed)",
    "response": "response waiting",
}
OWNER_COLOURS = {"shared": ROLES["text"], "front": OKABE_ITO["blue"],
                 "back": OKABE_ITO["reddish_purple"]}
OWNERS = {"req_prod": "shared", "req_event": "shared", "rsp_prod": "shared",
          "rsp_event": "shared", "req_prod_pvt": "front", "rsp_cons": "front",
          "rsp_prod_pvt": "back", "req_cons": "back"}
OWNER_NAMES = {"shared": "shared page's index", "front": "front end's private index",
               "back": "back end's private index"}
KEY_TITLE = "slots and indices"
TOUCHED = "touched"  # the key's row for the slot the last step used


def key_rows(touched: bool) -> list[tuple[str, str]]:
    """The key's rows, top to bottom: (text, what) — ``what`` a slot state (a box in its
    colour), an index owner (a line in its colour) or ``TOUCHED`` (an outlined box)."""
    rows = [(SLOT_NAMES[s], s) for s in SLOT_STATES]
    rows += [(OWNER_NAMES[o], o) for o in OWNER_COLOURS]
    return rows + [("slot the last step used", TOUCHED)] if touched else rows


def edge_angle(slot: int, size: int) -> float:
    """Degrees (counter-clockwise from +x) of the edge before ``slot``; slots run clockwise
    from the top."""
    return 90.0 - 360.0 * slot / size


def spread(wanted: list[float], gap: float, low: float, high: float) -> list[float]:
    """Move sorted y positions apart to at least ``gap``, inside [low, high]."""
    ys = list(wanted)
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    overflow = ys[-1] - high if ys else 0
    if overflow > 0:
        ys[-1] -= overflow
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    return [max(y, low) for y in ys]


@dataclass(frozen=True)
class IndexLabel:
    """One index as drawn: its tick at ``angle`` (degrees), its label at (side * LABEL_X, y)."""

    name: str
    value: int
    slot: int
    angle: float
    side: int  # +1 right of the circle, -1 left
    y: float
    owner: str  # "shared", "front" or "back"

    @property
    def text(self) -> str:
        return f"{self.name} 0x{self.value:08X}"

    @property
    def colour(self) -> str:
        return OWNER_COLOURS[self.owner]


def index_labels(state: RingState) -> list[IndexLabel]:
    """The eight indices of ``state``, each with its tick and its label's place."""
    placed: dict[int, list[tuple[float, str, int]]] = {1: [], -1: []}
    for name, value in state.indices().items():
        rad = math.radians(edge_angle(state.slot_of(value), state.size))
        x = math.cos(rad)
        side = 1 if x > 1e-9 or (abs(x) <= 1e-9 and math.sin(rad) > 0) else -1
        placed[side].append((math.sin(rad) * 1.1, name, value))
    labels = []
    for side, wanted in placed.items():
        wanted.sort(key=lambda t: (t[0], t[1]))
        ys = spread([y for y, _, _ in wanted], LABEL_GAP, -LABEL_LIMIT, LABEL_LIMIT)
        for y, (_, name, value) in zip(ys, wanted, strict=True):
            slot = state.slot_of(value)
            labels.append(IndexLabel(name, value, slot, edge_angle(slot, state.size), side, y,
                                     OWNERS[name]))
    return labels
