"""The IDE device as a state machine, drawn from the model's own transition table.

``plot_ide_states()`` draws every edge of ``vmmlib.devices.ata.TRANSITIONS`` (nothing is drawn
by hand: the states, the edges and their labels all come from the table) with each state's
status register value (``STATE_STATUS``). Edges between the same two states share one arrow
whose label lists their events; the SRST edges, which leave every state, are thin and dashed
with one label. Given a device's ``history`` (``IdeController.history``: the transitions it
really took), the edges it walked are drawn thick in the highlight colour with how often.
``ide_state_data()`` computes what is drawn, without drawing (``fig.vmm_data`` holds it too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch

from ..devices.ata import SRST_SET, STATE_STATUS, STATES, TRANSITIONS, Transition
from ..errors import ConfigError
from .figure import _figure
from .palette import GREY, LIGHT_GREY, OKABE_ITO, ROLES

#: Where each state sits (data coordinates): the command path runs left to right.
POSITIONS = {
    "idle": (0.0, 0.0),
    "busy": (4.2, 0.0),
    "drq_in": (8.4, 2.2),
    "drq_out": (8.4, -2.2),
    "error": (4.2, -3.4),
    "reset": (0.0, 3.2),
}
#: How far an arrow bows (matplotlib's arc3 ``rad``) when two arrows join the same states,
#: and for the long arrows that would cross a node if drawn straight.
PAIR_BOW, AROUND_BOW = 0.28, 0.3
ANY_STATE = (2.1, 4.4)  # where the "from every state" marker of the SRST edges sits
STATUS_BITS = ((0x80, "BSY"), (0x40, "DRDY"), (0x20, "DF"), (0x10, "DSC"), (0x08, "DRQ"),
               (0x01, "ERR"))
TAKEN = OKABE_ITO["vermillion"]


@dataclass(frozen=True)
class Edge:
    """One arrow: from ``state`` to ``next``, standing for ``events`` (in table order)."""

    state: str
    next: str
    events: tuple[str, ...]
    taken: int = 0  # how many times a history walked it

    @property
    def reset(self) -> bool:
        return self.events == (SRST_SET,)


def status_text(status: int) -> str:
    """``0x58 DRDY DSC DRQ``: a status value and the bits set in it."""
    names = [name for bit, name in STATUS_BITS if status & bit]
    return f"{status:#04x} {' '.join(names)}".rstrip()


def ide_state_data(transitions: Sequence[Transition] = TRANSITIONS,
                   history: Iterable[tuple] | None = None) -> list[Edge]:
    """The arrows of the diagram: one per (state, next) pair of ``transitions``, with the
    times ``history`` (rows of ``IdeController.history``: time, unit, state, event, next)
    walked any of its events."""
    walked: Counter = Counter()
    for row in history or ():
        _, _, state, event, nxt = row
        walked[(state, event, nxt)] += 1
    grouped: dict[tuple[str, str], list[str]] = {}
    for t in transitions:
        if t.state not in POSITIONS or t.next not in POSITIONS:
            raise ConfigError(f"transition {t} names a state the diagram does not place")
        grouped.setdefault((t.state, t.next), []).append(t.event)
    return [Edge(s, n, tuple(events), sum(walked[(s, e, n)] for e in events))
            for (s, n), events in grouped.items()]


def _curve_point(a: tuple[float, float], b: tuple[float, float], rad: float, t: float
                 ) -> tuple[float, float]:
    """The point at ``t`` of matplotlib's arc3 curve from a to b (a quadratic Bezier whose
    control point is the middle of a-b moved by ``rad`` times its length, to the right)."""
    (x1, y1), (x2, y2) = a, b
    cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
    u = 1 - t
    return (u * u * x1 + 2 * u * t * cx + t * t * x2, u * u * y1 + 2 * u * t * cy + t * t * y2)


def _crosses_a_node(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Does the straight line from a to b pass through another state's ellipse?"""
    for x, y in POSITIONS.values():
        if (x, y) in (a, b):
            continue
        for i in range(1, 20):
            px, py = a[0] + (b[0] - a[0]) * i / 20, a[1] + (b[1] - a[1]) * i / 20
            if ((px - x) / 1.1) ** 2 + ((py - y) / 0.6) ** 2 < 1:
                return True
    return False


class _Labels:
    """Places edge labels on their curves where they overlap no node and no other label
    (boxes estimated in data units for 7-point text on this figure's scale)."""

    CHAR_W, LINE_H = 0.085, 0.24

    def __init__(self) -> None:
        self.boxes = [(x - 1.0, y - 0.5, x + 1.0, y + 0.5) for x, y in POSITIONS.values()]

    def _box(self, x: float, y: float, text: str) -> tuple[float, float, float, float]:
        lines = text.split("\n")
        w = max(len(line) for line in lines) * self.CHAR_W / 2 + 0.08
        h = len(lines) * self.LINE_H / 2 + 0.05
        return x - w, y - h, x + w, y + h

    def place(self, candidates: list[tuple[float, float]], text: str) -> tuple[float, float]:
        for x, y in candidates:
            box = self._box(x, y, text)
            if not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3]
                       for o in self.boxes):
                self.boxes.append(box)
                return x, y
        x, y = candidates[0]
        self.boxes.append(self._box(x, y, text))
        return x, y


def _text_at(ax, x: float, y: float, text: str, colour: str, edge: str) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=7, color=colour, zorder=5,
            linespacing=1.1, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                   "edgecolor": edge, "linewidth": 0.5})


def plot_ide_states(transitions: Sequence[Transition] = TRANSITIONS,
                    history: Iterable[tuple] | None = None,
                    title: str = "The IDE device's protocol: states, events, status") -> Figure:
    """The state machine of ``transitions`` (the model's ``TRANSITIONS``), with ``history``'s
    path highlighted when given. Events sharing an arrow are listed one per line; when SRST
    leads to reset from every state, those edges start at one "every state" marker."""
    history = list(history or ())
    edges = ide_state_data(transitions, history)
    fig = _figure(11, 6.6)
    ax = fig.add_subplot()
    nodes = {}
    for state in STATES:
        x, y = POSITIONS[state]
        node = Ellipse((x, y), 2.0, 1.0, facecolor="white", edgecolor=ROLES["text"],
                       linewidth=1.2, zorder=3)
        ax.add_patch(node)
        nodes[state] = node
        ax.text(x, y + 0.14, state, ha="center", va="center", fontsize=10, weight="bold",
                zorder=4)
        ax.text(x, y - 0.2, status_text(STATE_STATUS[state]), ha="center", va="center",
                fontsize=7, family="monospace", zorder=4)
    pairs = {(e.state, e.next) for e in edges}
    labels = _Labels()
    resets = [e for e in edges if SRST_SET in e.events]
    grouped = {e.state for e in resets} == set(STATES) and all(e.next == "reset" for e in resets)
    if grouped:  # one marker for "from every state", as state diagrams write it
        taken = sum(e.taken for e in resets)
        colour = TAKEN if taken else GREY
        ax.text(*ANY_STATE, "every state", ha="center", va="center", fontsize=7.5,
                style="italic", color=colour, zorder=4,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": colour,
                      "linestyle": "--", "linewidth": 0.8})
        ax.add_patch(FancyArrowPatch(ANY_STATE, POSITIONS["reset"], patchB=nodes["reset"],
                                     shrinkA=22, arrowstyle="-|>", mutation_scale=12,
                                     color=colour, linewidth=2.4 if taken else 0.9,
                                     linestyle="--", zorder=2))
        label = SRST_SET + (f" (x{taken})" if taken else "")
        x, y = labels.place([_curve_point(ANY_STATE, POSITIONS["reset"], 0, t) for t in
                             (0.5, 0.35, 0.65)], label)
        _text_at(ax, x, y, label, colour, TAKEN if taken else LIGHT_GREY)
    for edge in edges:
        events = tuple(e for e in edge.events if not (grouped and e == SRST_SET))
        if not events:
            continue  # drawn as the "every state" marker
        if events != edge.events:  # the rest of an arrow that also carried SRST set
            edge = Edge(edge.state, edge.next, events,
                        sum(1 for row in history if (row[2], row[3], row[4]) in
                            {(edge.state, e, edge.next) for e in events}))
        a, b = POSITIONS[edge.state], POSITIONS[edge.next]
        colour = TAKEN if edge.taken else ROLES["text"]
        width = 2.4 if edge.taken else 1.0
        style = "--" if edge.reset else "-"
        label = ",\n".join(edge.events) + (f" (x{edge.taken})" if edge.taken else "")
        if edge.state == edge.next:  # a loop above the node (below for a node at the bottom)
            x, y = a
            up = -1 if y < 0 else 1
            start, end = (x - 0.5, y + up * 0.4), (x + 0.5, y + up * 0.4)
            ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={-1.5 * up}",
                                         arrowstyle="-|>", mutation_scale=11, color=colour,
                                         linewidth=width, linestyle=style, zorder=2))
            spots = [(x, y + up * (1.15 + 0.12 * label.count("\n")))]
        else:
            if (edge.next, edge.state) in pairs:
                rad = PAIR_BOW
            elif _crosses_a_node(a, b):
                rad = AROUND_BOW
            else:
                rad = 0.0
            ax.add_patch(FancyArrowPatch(a, b, patchA=nodes[edge.state],
                                         patchB=nodes[edge.next],
                                         connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                         mutation_scale=12, color=colour, linewidth=width,
                                         linestyle=style, zorder=2))
            spots = [_curve_point(a, b, rad, t) for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.25, 0.75)]
        lx, ly = labels.place(spots, label)
        _text_at(ax, lx, ly, label, colour, TAKEN if edge.taken else LIGHT_GREY)
    ax.set_xlim(-1.8, 11.2)
    ax.set_ylim(-5.0, 5.0)
    ax.set_aspect("equal")
    ax.axis("off")
    walked = sum(e.taken for e in edges)
    ax.set_title(title + (f"\n(thick, in colour: the {walked} transitions of the run)"
                          if walked else ""))
    fig.vmm_data = edges
    return fig


__all__ = ["Edge", "POSITIONS", "ide_state_data", "plot_ide_states", "status_text"]
