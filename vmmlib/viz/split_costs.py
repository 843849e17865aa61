"""Chapter 03's pictures of the split drivers: what a path costs, and one request's journey.

* ``plot_paths(costs)`` — section 6, the thread's last question: reading the same bytes via
  chapter 02's emulated IDE, blkfront in a PV guest and blkfront in an HVM guest
  (``vmmlib.scenarios.split_drivers.compare_paths``). Four panels side by side — exits,
  hypercalls, events, virtual time — each per MiB read, log scale, the number on each bar.
* ``plot_journey(trace)`` — section 4: one request of ``split_read`` on chapter 01's swimlanes
  (guest vCPU, CPU, Xen, dom0, blkback, disk), each step named where it happens: the grant
  entries written, the request in its ring slot, req_prod published, the event to dom0, the
  back end's copy and grant map, the disk, the response, the event back, the upcall, and
  blkfront's completion.

Each returns the matplotlib Figure, with what it plotted as ``fig.vmm_data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from ..errors import ConfigError
from ..scenarios.split_drivers import PathCost
from ..trace import Event, Trace
from .figure import _figure
from .palette import GUEST_COLOURS
from .swimlane import plot_swimlanes

DOM0_KERNEL = "dom0 kernel"
#: the panels of ``plot_paths``: (PathCost field, panel title, y label, scale, unit)
PANELS = (
    ("exits", "VM exits", "exits per MiB", 1, ""),
    ("hypercalls", "hypercalls", "hypercalls per MiB", 1, ""),
    ("events", "event-channel sends", "events per MiB", 1, ""),
    ("virtual_ns", "virtual time", "virtual time per MiB (ms)", 1e-6, " ms"),
)


def _number(v: float, unit: str) -> str:
    if unit:  # three significant digits: 0.169 ms against 0.174 ms
        return f"{v:,.3g}{unit}" if v < 1000 else f"{v:,.0f}{unit}"
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def paths_data(costs: Sequence[PathCost]) -> dict[str, dict[str, float]]:
    """Per path: each panel's value per MiB (virtual time in ns)."""
    if (not isinstance(costs, Sequence) or not costs
            or not all(isinstance(c, PathCost) for c in costs)):
        raise ConfigError("plot_paths needs a non-empty list of PathCost (compare_paths())")
    if len({c.path for c in costs}) != len(costs):
        raise ConfigError("each path once")
    return {c.path: {key: c.per_mib(getattr(c, key)) for key, *_ in PANELS} for c in costs}


def plot_paths(costs: Sequence[PathCost],
               title: str = "Reading 1 MiB: emulated IDE against blkfront in a PV and an HVM "
                            "guest") -> Figure:
    """Four panels — exits, hypercalls, events, virtual time, each per MiB — with one bar per
    path (log scale; a zero is written where its bar would be)."""
    data = paths_data(costs)
    paths = list(data)
    fig = _figure(11, 3.9)
    axes = fig.subplots(1, len(PANELS))
    colours = [GUEST_COLOURS[i % len(GUEST_COLOURS)] for i in range(len(paths))]
    for ax, (key, name, ylabel, scale, unit) in zip(axes, PANELS, strict=True):
        values = [data[p][key] * scale for p in paths]
        bars = ax.bar(range(len(paths)), [v if v > 0 else 0 for v in values], 0.7,
                      color=colours)
        positive = [v for v in values if v > 0]
        ax.set_yscale("log")
        low = min(positive) / 4 if positive else 0.1
        high = max(positive) * 8 if positive else 10
        ax.set_ylim(low, high)
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(_number(v, unit), (bar.get_x() + bar.get_width() / 2, max(v, low)),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8)
        ax.set_xticks(range(len(paths)), [p.replace(" (", "\n(") for p in paths], fontsize=7.5)
        ax.set_ylabel(ylabel + " (log scale)", fontsize=8.5)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
    sizes = sorted({c.nbytes for c in costs})
    read = " / ".join(f"{n / 2**20:g} MiB" for n in sizes)
    fig.suptitle(f"{title}\n(counted over a read of {read}, connecting included, scaled to 1 MiB)",
                 fontsize=11)
    fig.vmm_data = data
    return fig


# -- one request's journey ----------------------------------------------------------------------
@dataclass
class JourneyStep:
    """One named step of a request's journey: the trace event it is, and its label."""

    index: int  # in the trace
    event: Event
    label: str


def _label(e: Event) -> str | None:
    """What the journey calls this event (None: not a step)."""
    f = e.fields
    if e.actor == "blkfront":
        return {"request": f"request in ring slot {f.get('slot')}", "push": "publish req_prod",
                "response": "completion (blkfront)"}.get(e.kind)
    if e.actor == "xen":
        if e.kind == "evtchn" and f.get("op") == "send":
            return f"event {f.get('domain')} → {f.get('remote')}"
        if e.kind == "upcall":
            return f"upcall ({f.get('via', 'callback')})"
        if e.kind == "block":
            return "guest sleeps"
        return None
    if e.actor == "dom0" and e.kind == "upcall":
        return "dom0's upcall"
    if e.actor == "blkback":
        return {"take": "copy request", "grant-map": "map grant", "response": "response"}.get(
            e.kind)
    if e.actor == "disk":
        return {"access": f"disk {f.get('op', 'access')}", "done": "disk done"}.get(e.kind)
    if e.actor == "cpu" and e.kind == "exit":
        reason = str(f.get("reason"))
        return f"{reason} (#PF)" if reason in ("EXCEPTION_NMI", "EXCP_PF") else reason
    return None


def journey_steps(trace: Trace, nth: int = 0) -> tuple[int, int, list[JourneyStep]]:
    """The ``nth`` request blkfront queued in ``trace``: (start, stop) of its events — from
    the grant entries it wrote to blkfront's completion — and its named steps."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"a journey is read from a Trace, not {type(trace).__name__}")
    events = list(trace)
    queued = [i for i, e in enumerate(events) if e.actor == "blkfront" and e.kind == "request"]
    if nth.__class__ is not int or not 0 <= nth < len(queued):
        raise ConfigError(f"the trace has {len(queued)} blkfront requests; no request {nth}")
    at = queued[nth]
    rid = events[at].fields["id"]
    guest = events[at - 1].actor if at else ""
    start = at - 1  # the slot's store; before it, the grant entries (blkfront's _queue)
    while start > 0 and events[start - 1].actor == guest and events[start - 1].kind == "store":
        start -= 1
    done = next((i for i in range(at + 1, len(events)) if events[i].actor == "blkfront"
                 and events[i].kind == "response" and events[i].fields["id"] == rid), None)
    if done is None:
        raise ConfigError(f"request {nth} (id {rid}) was never completed in this trace")
    steps = [JourneyStep(start, events[start], "grant (domid, frame, flags)")] if start < at - 1 \
        else []
    steps += [JourneyStep(i, events[i], label) for i in range(at, done + 1)
              if events[i].fields.get("id", rid) == rid  # (not another request's step)
              and (label := _label(events[i])) is not None]
    return start, done + 1, steps


def plot_journey(trace: Trace, title: str = "One request's journey: blkfront to blkback and "
                                            "back", nth: int = 0) -> Figure:
    """The swimlanes of the ``nth`` request's events, each step of its journey named."""
    start, stop, steps = journey_steps(trace, nth)
    fig = plot_swimlanes(trace, start, stop, title, label_kinds=())
    data = fig.vmm_data
    ax = fig.axes[0]
    nlanes = len(data.lanes)
    t0 = data.points[0][0]
    span = max((data.points[-1][0] - t0) / 1000, 1e-3)
    last_x: dict[int, float] = {}
    stack: dict[int, int] = {}
    for step in steps:
        time, lane, _ = data.points[step.index - start]
        x, y = (time - t0) / 1000, nlanes - 1 - lane
        close = y in last_x and x - last_x[y] < span * 0.09
        stack[y] = stack.get(y, 0) + 1 if close else 0
        last_x[y] = x
        ax.annotate(step.label, (x, y), xytext=(3, 6 + 8 * stack[y]),
                    textcoords="offset points", fontsize=7)
    if not any(e.actor == "qemu-dm" for e in list(trace)[start:stop]):
        # (the shared lane is dom0's kernel here: chapter 03 has no device model)
        ax.set_yticks(ax.get_yticks(), [DOM0_KERNEL if t.get_text() == "dom0 / qemu-dm"
                                        else t.get_text() for t in ax.get_yticklabels()])
    ax.set_ylim(-0.6, nlanes - 0.4 + 0.35)
    fig.set_figheight(max(fig.get_figheight(), 1.6 + 0.7 * nlanes))
    fig.vmm_data = data
    fig.vmm_steps = [(s.event.time, s.event.actor, s.event.kind, s.label) for s in steps]
    return fig


__all__ = ["JourneyStep", "PANELS", "journey_steps", "paths_data", "plot_journey", "plot_paths"]
