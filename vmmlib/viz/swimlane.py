"""Swimlane diagrams: who does what, and who waits for whom, against virtual time.

One lane per actor of the trace — the guest's vCPU, the CPU, Xen, dom0 and its software
(qemu-dm, blkback), a disk backend, the wire — in the order a request travels. Each event is a
mark in its actor's lane at its virtual time; a thin line joins each event to the next, so a
request is a path that goes down the lanes and comes back up. A grey bar in the guest's lane
marks each stretch its vCPU spends out of the guest (from the exit to its return): that is
the guest waiting for everyone below. ``plot_swimlanes`` draws it from any trace: every
chapter uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from ..errors import ConfigError
from ..trace import Trace
from .figure import _figure
from .palette import GREY, OKABE_ITO, event_colour

#: The lanes every chapter shares, top to bottom, and the trace actors drawn in each. A
#: guest's own actor (its domain's name) goes in the first lane.
LANES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("guest vCPU", ()),
    ("CPU", ("cpu",)),
    ("Xen", ("xen",)),
    ("dom0 / qemu-dm", ("dom0", "qemu-dm")),
    ("dom0 / blkback", ("blkback",)),
    ("disk backend", ("disk",)),
    ("wire", ("wire",)),
)
LANE_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["reddish_purple"],
                OKABE_ITO["bluish_green"], OKABE_ITO["bluish_green"], OKABE_ITO["orange"],
                OKABE_ITO["sky_blue"])


@dataclass
class SwimlaneData:
    """What a swimlane figure shows: lane names and (time ns, lane index, kind) per event."""

    lanes: list[str]
    points: list[tuple[int, int, str]]

    def lane_of(self, kind: str) -> list[str]:
        return sorted({self.lanes[i] for _, i, k in self.points if k == kind})


def swimlane_data(trace: Trace, start: int = 0, stop: int | None = None) -> SwimlaneData:
    """The events ``start`` … ``stop - 1`` of ``trace`` placed in lanes (empty lanes dropped)."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"swimlanes are drawn from a Trace, not {type(trace).__name__}")
    known = {actor: i for i, (_, actors) in enumerate(LANES) for actor in actors}
    events = list(trace)[start:stop]
    placed = [(e.time, known.get(e.actor, 0), e.kind) for e in events]
    used = sorted({i for _, i, _ in placed})
    index = {lane: n for n, lane in enumerate(used)}
    return SwimlaneData([LANES[i][0] for i in used], [(t, index[i], k) for t, i, k in placed])


def plot_swimlanes(
    trace: Trace,
    start: int = 0,
    stop: int | None = None,
    title: str = "Who does what, in virtual time",
    label_kinds: Sequence[str] | None = None,
) -> Figure:
    """A swimlane diagram of the trace's events ``start`` … ``stop - 1``.

    ``label_kinds``: the event kinds to write next to their marks (default: each kind once,
    at its first occurrence, so the picture stays readable).
    """
    data = swimlane_data(trace, start, stop)
    if not data.points:
        raise ConfigError("no events to draw")
    height = 1.2 + 0.55 * len(data.lanes)
    fig = _figure(11, height)
    ax = fig.add_subplot()
    t0 = data.points[0][0]
    xs = [(t - t0) / 1000 for t, _, _ in data.points]  # µs since the first event
    ys = [len(data.lanes) - 1 - lane for _, lane, _ in data.points]
    ax.plot(xs, ys, color=GREY, linewidth=0.8, zorder=1)
    by_kind: dict[str, tuple[list[float], list[int]]] = {}
    for x, y, (_, _, kind) in zip(xs, ys, data.points, strict=True):
        kx, ky = by_kind.setdefault(kind, ([], []))
        kx.append(x)
        ky.append(y)
    for kind, (kx, ky) in by_kind.items():  # one collection per kind: fast for long traces
        ax.scatter(kx, ky, s=28, color=event_colour(kind), edgecolors="black", linewidths=0.4,
                   zorder=3)
    labelled: set[str] = set()
    previous, stack = None, 0
    for x, y, (_, _, kind) in zip(xs, ys, data.points, strict=True):
        show = kind in label_kinds if label_kinds is not None else kind not in labelled
        if show:
            stack = stack + 1 if previous == (x, y) else 0  # marks at one spot: labels stack
            ax.annotate(kind, (x, y), xytext=(4, 5 + 9 * stack), textcoords="offset points",
                        fontsize=7)
            labelled.add(kind)
            previous = (x, y)
    guest_row = len(data.lanes) - 1 if data.lanes[0] == LANES[0][0] else None
    for begin, end in _outside_guest(data) if guest_row is not None else ():
        ax.plot([(begin - t0) / 1000, (end - t0) / 1000], [guest_row, guest_row], color=GREY,
                linewidth=5, alpha=0.35, solid_capstyle="butt", zorder=2)
    for i, name in enumerate(data.lanes):
        y = len(data.lanes) - 1 - i
        colour = LANE_COLOURS[[lane for lane, _ in LANES].index(name)]
        ax.axhspan(y - 0.4, y + 0.4, color=colour, alpha=0.08, zorder=0)
    ax.set_yticks(range(len(data.lanes)), list(reversed(data.lanes)))
    ax.set_ylim(-0.6, len(data.lanes) - 0.4)
    ax.set_xlabel("virtual time since the first event (µs)")
    ax.set_title(title)
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    fig.vmm_data = data
    return fig


def _outside_guest(data: SwimlaneData) -> list[tuple[int, int]]:
    """(exit time, return time) of each stretch the vCPU spent out of the guest."""
    spans, left = [], None
    for t, lane, kind in data.points:
        if kind in ("exit", "trap") and left is None:
            left = t
        elif left is not None and (lane == 0 or kind == "entry"):
            spans.append((left, t))
            left = None
    return spans
