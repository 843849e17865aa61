"""Chapter 03's ring pictures: the shared ring as a circle of slots with its eight indices, the
lost wake-up as two timelines, and notifications against queue depth.

``plot_ring(state, title)`` draws a ``vmmlib.scenarios.ring_demo.RingState``: the 32 slots
clockwise from the top (slot = index & 31), each coloured by what it holds — free, a request
written but not pushed yet, a request waiting, a request the back end is serving, a response
written, a response waiting — with the message's id and sector or status (decoded from the
page's bytes). An index sits on the edge *before* the slot it names (the next slot to fill or
to read), so what lies between a consumer's marker and its producer's is exactly what one end
has still to read. Every index is labelled with its free-running value in hex: started near
2**32 they show the wrap (0xFFFFFFFF, then 0x00000000) while the slots go on round. Labels of
the shared page's four indices are black, the front end's private ones blue, the back end's
reddish purple. ``ring_panel(burst)`` is the same state as a text panel for a ``Stepper``
(so that it highlights what each step changed). ``fig.vmm_data`` holds what was drawn.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, Wedge

from ..errors import ConfigError
from ..scenarios.ring_world import SLOT_STATES, RingState
from .figure import _figure
from .palette import GREY, LIGHT_GREY, OKABE_ITO, ROLES
from .panels import Panel, key_value, text_block
from .ring_geometry import (
    KEY_TITLE,
    LABEL_X,
    OWNER_COLOURS,
    R_IN,
    R_OUT,
    SLOT_COLOURS,
    SLOT_NAMES,
    TOUCHED,
    edge_angle,
    index_labels,
    key_rows,
)
from .ring_svg import ring_svg

FONT = 7.5


def _draw_slots(ax, state: RingState) -> None:
    step = 360.0 / state.size
    for view in state.slots:
        top = edge_angle(view.slot, state.size)
        private = view.state.endswith("private")
        touched = view.slot == state.touched
        ax.add_patch(Wedge((0, 0), R_OUT, top - step, top, width=R_OUT - R_IN,
                           facecolor=SLOT_COLOURS[view.state], alpha=0.55 if private else 1.0,
                           hatch="///" if private else None,
                           edgecolor=ROLES["text"] if touched else GREY,
                           linewidth=2.2 if touched else 0.6, zorder=3 if touched else 2))
        mid = math.radians(top - step / 2)
        ax.text(0.49 * math.cos(mid), 0.49 * math.sin(mid), str(view.slot), fontsize=6,
                color=GREY, ha="center", va="center")
        if view.label:
            deg = top - step / 2
            rot = deg if -90 <= deg <= 90 else deg + 180
            r = (R_OUT + R_IN) / 2
            ax.text(r * math.cos(mid), r * math.sin(mid), view.label, fontsize=6.2,
                    rotation=rot, rotation_mode="anchor", ha="center", va="center", zorder=4)


def _draw_indices(ax, state: RingState) -> list[dict]:
    drawn = []
    for label in index_labels(state):
        rad = math.radians(label.angle)
        solid = label.owner == "shared"
        tip = (R_OUT * 1.02 * math.cos(rad), R_OUT * 1.02 * math.sin(rad))
        ax.plot([R_IN * math.cos(rad), R_OUT * math.cos(rad)],
                [R_IN * math.sin(rad), R_OUT * math.sin(rad)], color=label.colour, lw=1.6,
                solid_capstyle="butt", zorder=5)
        ax.plot([tip[0], label.side * (LABEL_X - 0.03)], [tip[1], label.y], color=label.colour,
                lw=0.8, ls="-" if solid else "--", zorder=5)
        ax.text(label.side * LABEL_X, label.y, label.text, fontsize=FONT, color=label.colour,
                ha="left" if label.side > 0 else "right", va="center", family="monospace",
                fontweight="bold" if solid else "normal")
        drawn.append({"name": label.name, "value": label.value, "slot": label.slot,
                      "side": label.side, "y": label.y, "owner": label.owner})
    return drawn


def _draw_key(ax, beside: bool, touched: bool) -> None:
    """The key, drawn by hand (a legend box costs a third of the picture's drawing time)."""
    x0, dy = (1.02, 0.05) if beside else (0.0, 0.06)
    y = 0.5 + 5.5 * dy
    ax.text(x0, y + dy, KEY_TITLE, transform=ax.transAxes, fontsize=8,
            fontweight="bold", va="center", clip_on=False)
    for text, what in key_rows(touched):
        box = (x0, y - dy * 0.3)
        if what in SLOT_COLOURS:
            private = what.endswith("private")
            ax.add_patch(Rectangle(box, 0.08, dy * 0.6, transform=ax.transAxes, clip_on=False,
                                   facecolor=SLOT_COLOURS[what], edgecolor=GREY, lw=0.6,
                                   hatch="///" if private else None,
                                   alpha=0.55 if private else 1.0))
        elif what == TOUCHED:
            ax.add_patch(Rectangle(box, 0.08, dy * 0.6, transform=ax.transAxes, clip_on=False,
                                   facecolor="none", edgecolor=ROLES["text"], lw=2.0))
        else:
            ax.plot([x0, x0 + 0.08], [y, y], transform=ax.transAxes, clip_on=False,
                    color=OWNER_COLOURS[what], lw=1.6, ls="-" if what == "shared" else "--")
        ax.text(x0 + 0.1, y, text, transform=ax.transAxes, fontsize=7.5, va="center",
                clip_on=False)
        y -= dy


def plot_ring(state: RingState, title: str, ax: Any = None,
              size: tuple[float, float] = (9, 5)) -> Figure:
    """The ring picture of ``state`` (see the module docstring), on ``ax`` or a new figure of
    ``size`` inches; the legend sits right of the circle."""
    if not isinstance(state, RingState):
        raise ConfigError(f"plot_ring draws a RingState (ring_demo.ring_state), not "
                          f"{type(state).__name__}")
    if not isinstance(title, str) or not title:
        raise ConfigError("every picture has a title: give plot_ring one")
    if ax is None:  # fixed places (a constrained layout would draw every text twice)
        fig = _figure(*size)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.0, 0.0, 0.79, 0.93))
        key = fig.add_axes((0.79, 0.1, 0.21, 0.8))
        key.axis("off")
    else:
        fig, key = ax.figure, None
    _draw_slots(ax, state)
    drawn = _draw_indices(ax, state)
    ax.text(0, 0.06, f"{state.size} slots", ha="center", va="center", fontsize=8)
    ax.text(0, -0.08, "slot = index & 31", ha="center", va="center", fontsize=6.5, color=GREY)
    ax.set_xlim(-2.06, 2.06)
    ax.set_ylim(-1.22, 1.22)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    _draw_key(key or ax, key is None, state.touched is not None)
    fig.vmm_data = {"state": state, "indices": drawn,
                    "slots": {s: state.count(s) for s in SLOT_STATES}}
    return fig


def _last_step(trace: Any) -> str:
    """What the last step did, by its actor and kind (the event channel's row is named by the
    step that sent it)."""
    if not len(trace):
        return "nothing yet"
    last = trace[len(trace) - 1]
    if last.actor == "xen" and len(trace) > 1:
        last = trace[len(trace) - 2]
    return f"{last.actor} {last.kind}"


def ring_picture(burst: Any) -> str:
    """The Stepper's picture for a ring scenario: the ring after the last step as SVG
    (``vmmlib.viz.ring_svg``: a millisecond per step), titled with what that step did; for a
    stacked Stepper (``Stepper(ring_burst, render=ring_picture, stacked=True, log_lines=5)``)."""
    ring = getattr(burst, "ring", None)
    if not isinstance(ring, RingState):
        raise ConfigError(f"ring_picture shows a scenario with .ring (a RingState), not "
                          f"{type(burst).__name__}")
    return ring_svg(ring, f"after the last step: {_last_step(burst.trace)}")


def ring_panel(burst: Any) -> Panel:
    """The Stepper's state panel for a ring scenario (``ring_burst``, ``lost_wakeup``): what
    the last step did, the shared page's four indices, each end's two private ones (each with
    the slot it names), the slots in use as the page's bytes decode, and the events sent. A
    text panel, so the Stepper highlights what the step changed; ``plot_ring`` draws the
    same state as a picture."""
    ring = getattr(burst, "ring", None)
    if not isinstance(ring, RingState):
        raise ConfigError(f"ring_panel shows a scenario with .ring (a RingState), not "
                          f"{type(burst).__name__}")
    trace = burst.trace
    done = _last_step(trace)

    def named(names: tuple[str, ...]) -> dict[str, str]:
        return {n: f"{getattr(ring, n):#010x} (slot {ring.slot_of(getattr(ring, n)):>2})"
                for n in names}

    used = [f"slot {v.slot:>2}  {SLOT_NAMES[v.state]:<29} {v.label}"
            for v in ring.slots if v.state != "free"]
    events = sum(1 for e in trace.events("evtchn"))
    return Panel(
        key_value("last step", {"did": done}),
        key_value("shared page", named(RingState.SHARED)),
        key_value("front end (private)", named(RingState.PRIVATE[:2])),
        key_value("back end (private)", named(RingState.PRIVATE[2:])),
        text_block(f"slots in use ({len(used)} of {ring.size})", "\n".join(used) or "(none)"),
        key_value("events", {"sent": events}),
    )


# -- the lost wake-up ---------------------------------------------------------------------------
COLUMNS = {"front": 0.04, "back": 0.53}  # where each end's column starts (axes fraction)
FATAL, RESCUE = OKABE_ITO["vermillion"], OKABE_ITO["bluish_green"]


def _outcome(run: Any) -> str:
    asleep = "the back end asleep" if not run.runnable("back") else "the back end awake"
    return (f"{run.stuck} request{'s' if run.stuck != 1 else ''} stuck, {asleep}, "
            f"{run.notifications} event{'s' if run.notifications != 1 else ''} sent")


def _draw_timeline(ax, run: Any, rows: int) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(rows + 0.6, -1.4)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.axvline(0.5, color=LIGHT_GREY, lw=0.8)
    for side, x in COLUMNS.items():
        ax.text(x, -0.9, f"{side} end ({'guest' if side == 'front' else 'dom0'})",
                fontsize=8, fontweight="bold", color=OWNER_COLOURS[side], va="center")
    for i, (actor, kind, what) in enumerate(run.rows):
        mark = {run.fatal: FATAL, run.rescue: RESCUE}.get(i)
        left = COLUMNS[actor] - 0.03
        if mark is not None:
            ax.axhspan(i - 0.45, i + 0.45, xmin=left, xmax=left + 0.48, color=mark, alpha=0.25,
                       lw=0)
        quiet = what in ("wmb", "rmb", "mb")
        doomed = run.stuck and actor == "back" and kind == "sleep"  # asleep on a request
        ax.text(0.0, i, str(i), fontsize=6, color=GREY, va="center", ha="left")
        ax.text(COLUMNS[actor], i, what, fontsize=6.8, va="center",
                color=GREY if quiet else FATAL if doomed else (
                    OKABE_ITO["orange"] if kind == "notify" else ROLES["text"]),
                fontweight="bold" if kind in ("sleep", "notify") or mark else "normal")
        if mark is not None:
            note = ("the re-check finds the request" if mark == RESCUE
                    else "stale req_event: no event sent" if run.final_check
                    else "the lost wake-up: stale req_event, no event")
            ax.text(COLUMNS["back" if actor == "front" else "front"], i,
                    f"◀ {note}" if actor == "front" else f"{note} ▶", fontsize=6.5,
                    color=mark, va="center", fontweight="bold")
    ax.set_xlabel(_outcome(run), fontsize=8)


def plot_interleaving(a: Any, b: Any = None, title: str = "The lost wake-up") -> Figure:
    """The steps of one or two ``lost_wakeup`` runs as two timelines (front end | back end),
    one row per step, the fatal moment (the front end's push reading a req_event the back end
    was about to move) and the re-check that rescues it marked; the outcome below each."""
    runs = [r for r in (a, b) if r is not None]
    if not runs or not all(hasattr(r, "rows") and hasattr(r, "final_check") for r in runs):
        raise ConfigError("plot_interleaving draws lost_wakeup() runs (Interleaving)")
    if not isinstance(title, str) or not title:
        raise ConfigError("every picture has a title: give plot_interleaving one")
    rows = max(len(r.rows) for r in runs)
    fig = _figure(4.6 * len(runs), min(7.2, max(3.2, 1.3 + 0.17 * rows)))
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, run in zip(axes, runs, strict=True):
        _draw_timeline(ax, run, rows)
        ax.set_title("with RING_FINAL_CHECK_FOR_REQUESTS" if run.final_check
                     else "without the final check (no re-check)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.vmm_data = [{"final_check": r.final_check, "rows": r.rows, "fatal": r.fatal,
                     "rescue": r.rescue, "stuck": r.stuck, "notifications": r.notifications}
                    for r in runs]
    return fig


# -- batching against notifications --------------------------------------------------------------
def _fraction(v: float) -> str:
    """1/8 for 0.125, 2 for 2.0, else two decimals."""
    if v >= 1:
        return f"{v:g}"
    inverse = 1 / v
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{v:.2f}"


def plot_notifications(rows: list[dict], title: str) -> Figure:
    """``notification_sweep`` rows: events per request each way against queue depth (log2
    axis), and virtual time per request split into what the events cost and the rest."""
    need = {"depth", "front_to_back", "back_to_front", "requests", "ns_per_request",
            "notify_ns_per_request"}
    if not rows or not all(isinstance(r, dict) and need <= set(r) for r in rows):
        raise ConfigError("plot_notifications draws the rows of notification_sweep()")
    if not isinstance(title, str) or not title:
        raise ConfigError("every picture has a title: give plot_notifications one")
    depth = [r["depth"] for r in rows]
    fig = _figure(9, 4)
    left, right = fig.subplots(1, 2)
    styles = (("front_to_back", "front → back (req_event)", "front", "o-", 7),
              ("back_to_front", "back → front (rsp_event)", "back", "o:", 11))
    for key, label, colour, style, size in styles:  # the two often coincide: hollow rings
        left.plot(depth, [r[key] / r["requests"] for r in rows], style, label=label,
                  color=OWNER_COLOURS[colour], markersize=size,
                  markerfacecolor=OWNER_COLOURS[colour] if size < 10 else "none", zorder=3)
    both = [(r["front_to_back"] + r["back_to_front"]) / r["requests"] for r in rows]
    left.plot(depth, both, "s--", color=ROLES["text"], label="both ways")
    left.set_xscale("log", base=2)
    left.set_yscale("log", base=2)
    left.set_xlabel("queue depth: requests pushed per batch")
    left.set_ylabel("notifications per request")
    left.set_title("events sent", fontsize=9)
    left.legend(fontsize=7.5, frameon=False)
    notify = [r["notify_ns_per_request"] / 1000 for r in rows]
    rest = [(r["ns_per_request"] - r["notify_ns_per_request"]) / 1000 for r in rows]
    x = range(len(rows))
    right.bar(x, rest, color=OKABE_ITO["sky_blue"], label="ring, blkback, grant map + unmap")
    right.bar(x, notify, bottom=rest, color=OKABE_ITO["orange"],
              label="events: hypercall + waking the other end")
    right.set_xticks(list(x), [str(d) for d in depth])
    right.set_xlabel("queue depth: requests pushed per batch")
    right.set_ylabel("virtual time per request (µs, estimates)")
    right.set_title("virtual time", fontsize=9)
    right.legend(fontsize=7.5, frameon=False)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.set_xticks(depth, [str(d) for d in depth])
    values = sorted({v for r in rows for v in (r["front_to_back"] / r["requests"],
                                               r["back_to_front"] / r["requests"])} | set(both))
    left.set_yticks([v for v in values if v > 0], [_fraction(v) for v in values if v > 0])
    left.minorticks_off()
    fig.suptitle(title, fontsize=10)
    fig.vmm_data = rows
    return fig


__all__ = [
    "SLOT_COLOURS", "SLOT_NAMES", "plot_interleaving", "plot_notifications", "plot_ring",
    "ring_panel",
]
