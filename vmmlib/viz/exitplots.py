"""The pictures of VM exits: exits over virtual time, and exit counts of several scenarios.

``plot_exits_over_time`` stacks the exits of one trace per time bin by exit reason, with a
tick row per other event (emulate, hypercall, direct io, shadow-fill, inject) below.
``plot_exit_counts`` compares scenarios side by side: exits by reason, and virtual time.
``exit_histogram`` and ``exit_counts`` compute what is drawn (``ExitHistogram``,
``ExitCounts``) without drawing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..trace import Trace
from .figure import _figure
from .palette import ROLES, event_colour, exit_colour


@dataclass
class ExitHistogram:
    """Exits per time bin and per exit reason."""

    edges_ns: np.ndarray  # bin edges, len = bins + 1
    counts: dict[str, np.ndarray]  # exit reason -> exits per bin
    events: dict[str, np.ndarray]  # other event kind -> times (ns)

    @property
    def bin_ns(self) -> int:
        return int(self.edges_ns[1] - self.edges_ns[0])


def _nice(x: float) -> int:
    """The smallest 1, 2 or 5 × 10^k (integer, ≥ 1) that is at least ``x``."""
    if x <= 1:
        return 1
    k = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * k >= x:
            return int(m * k)
    return int(10 * k)  # pragma: no cover - the loop always returns


def _reasons(counters: Iterable[Counter]) -> list[str]:
    """Exit reasons, most frequent first (ties by name), so stacks are stable."""
    total: Counter = Counter()
    for c in counters:
        total.update(c)
    return sorted(total, key=lambda r: (-total[r], str(r)))


#: Event kinds shown under the exits by default (those that occur in the trace).
DEFAULT_EVENTS = ("emulate", "hypercall", "io", "shadow-fill", "inject")


def exit_histogram(
    trace: Trace, bin_ns: int | None = None, events: Iterable[str] | None = None
) -> ExitHistogram:
    """Bin the exits of ``trace`` by virtual time (default: about 40 bins of a round width).

    ``events``: the other event kinds whose times to collect; None = those of
    ``DEFAULT_EVENTS`` that occur in the trace.
    """
    if not isinstance(trace, Trace):
        raise ConfigError(f"expected a Trace, not {type(trace).__name__}")
    if bin_ns is not None and (not isinstance(bin_ns, int) or bin_ns <= 0):
        raise ConfigError(f"bin_ns must be a positive number of nanoseconds, not {bin_ns!r}")
    t_end = max((e.time for e in trace), default=0)
    width = bin_ns or _nice(max(t_end, 1) / 40)
    nbins = max(1, math.ceil(t_end / width))
    if t_end and t_end % width == 0:
        nbins += 1  # an event exactly on the last edge gets a bin of its own
    edges = np.arange(nbins + 1, dtype=np.int64) * width
    exits = trace.events("exit")
    by_reason: dict[str, list[int]] = {}
    for e in exits:
        by_reason.setdefault(str(e.fields.get("reason")), []).append(e.time)
    order = _reasons([Counter({r: len(t) for r, t in by_reason.items()})])
    counts = {r: np.histogram(by_reason[r], bins=edges)[0] for r in order}
    if events is None:
        present = {e.kind for e in trace}
        events = [k for k in DEFAULT_EVENTS if k in present]
    kinds = {k: np.array([e.time for e in trace.events(k)], dtype=np.int64) for k in events}
    return ExitHistogram(edges, counts, kinds)


def plot_exits_over_time(
    trace: Trace,
    bin_ns: int | None = None,
    events: Iterable[str] | None = None,
    title: str = "VM exits over virtual time",
) -> Figure:
    """Exits per time bin, stacked by exit reason; below, a tick per event of ``events``.

    ``events`` defaults to the kinds of ``DEFAULT_EVENTS`` (emulate, hypercall, direct io,
    shadow-fill, inject) that occur in the trace; ``events=()`` shows the exits alone. The
    x axis is virtual time in µs.
    """
    hist = exit_histogram(trace, bin_ns, None if events is None else tuple(events))
    fig = _figure(10, 5.2 if hist.events else 4.0)
    if hist.events:
        ax, ax_ev = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        ax, ax_ev = fig.subplots(1, 1), None
    left = hist.edges_ns[:-1] / 1000
    width = hist.bin_ns / 1000
    bottom = np.zeros(len(left))
    for reason, counts in hist.counts.items():
        ax.bar(
            left,
            counts,
            width=width,
            bottom=bottom,
            align="edge",
            color=exit_colour(reason),
            edgecolor="white",
            linewidth=0.5,
            label=f"{reason} ({int(counts.sum())})",
        )
        bottom += counts
    if not hist.counts:
        ax.text(
            0.5,
            0.5,
            "no exits in this trace",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=11,
            color=ROLES["machine"],
        )
    else:
        ax.legend(
            title="exit reason (count)",
            fontsize=8.5,
            title_fontsize=8.5,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
    ax.set_ylabel(f"exits per {width:g} µs")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlim(0, hist.edges_ns[-1] / 1000)
    ax.set_title(
        f"{sum(int(c.sum()) for c in hist.counts.values())} exits in "
        f"{max((e.time for e in trace), default=0) / 1000:,.1f} µs",
        fontsize=10,
        loc="left",
    )
    bottom_ax = ax
    if ax_ev is not None:
        kinds = list(hist.events)
        ax_ev.eventplot(
            [hist.events[k] / 1000 for k in kinds],
            lineoffsets=range(len(kinds)),
            linelengths=0.7,
            colors=[event_colour(k) for k in kinds],
            linewidths=1.6,
        )
        ax_ev.set_yticks(
            range(len(kinds)), [f"{k} ({len(hist.events[k])})" for k in kinds], fontsize=8.5
        )
        ax_ev.set_ylim(-0.6, len(kinds) - 0.4)
        ax_ev.set_ylabel("events", fontsize=9)
        ax_ev.tick_params(axis="y", length=0)
        bottom_ax = ax_ev
    bottom_ax.set_xlabel("virtual time (µs)")
    for a in fig.axes:
        a.spines["top"].set_visible(False)
        a.spines["right"].set_visible(False)
    fig.suptitle(title, fontsize=12)
    fig.vmm_data = hist
    return fig


@dataclass
class ExitCounts:
    """Per scenario: exits by reason, and the virtual time of the last event."""

    names: list[str]
    counts: dict[str, dict[str, int]]  # scenario -> reason -> exits
    time_ns: dict[str, int]  # scenario -> virtual time of its last event
    reasons: list[str]
    hypercalls: dict[str, int]  # scenario -> hypercalls served (a PV one makes no exit)

    def total(self, name: str) -> int:
        return sum(self.counts[name].values())


def exit_counts(traces: Mapping[str, Trace]) -> ExitCounts:
    """Count the exits (by reason) and the virtual time of each named trace."""
    if not isinstance(traces, Mapping) or not traces:
        raise ConfigError("plot_exit_counts needs a non-empty dict of name -> Trace")
    for name, trace in traces.items():
        if not isinstance(trace, Trace):
            raise ConfigError(f"{name!r}: expected a Trace, not {type(trace).__name__}")
    counts = {str(n): {str(r): c for r, c in t.count("exit").items()} for n, t in traces.items()}
    times = {str(n): max((e.time for e in t), default=0) for n, t in traces.items()}
    calls = {str(n): len(t.events("hypercall")) for n, t in traces.items()}
    reasons = _reasons(Counter(c) for c in counts.values())
    return ExitCounts(list(counts), counts, times, reasons, calls)


def _label_bars(ax, xs, tops, labels: list[str]) -> None:
    """Write ``labels`` just above the bars whose tops are at ``tops``."""
    for xi, top, label in zip(xs, tops, labels, strict=True):
        ax.annotate(
            label,
            (xi, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )


def plot_exit_counts(
    traces: Mapping[str, Trace], title: str = "Exits and virtual time per scenario"
) -> Figure:
    """Bars comparing scenarios: exits (stacked by reason) and total virtual time (µs)."""
    data = exit_counts(traces)
    fig = _figure(10, 4.4)
    ax_n, ax_t = fig.subplots(1, 2)
    x = np.arange(len(data.names))
    bottom = np.zeros(len(x))
    for reason in data.reasons:
        heights = np.array([data.counts[n].get(reason, 0) for n in data.names])
        ax_n.bar(x, heights, bottom=bottom, color=exit_colour(reason), label=reason, width=0.6)
        bottom += heights
    labels = []
    for n in data.names:
        calls = data.hypercalls[n]
        note = f"\n({calls} hypercall{'s' if calls != 1 else ''})" if calls else ""
        labels.append(f"{data.total(n):,}{note}")
    _label_bars(ax_n, x, bottom, labels)
    ax_n.set_ylabel("VM exits")
    ax_n.set_title("exits, by exit reason", fontsize=10, loc="left")
    ax_n.set_ylim(0, max(1.0, bottom.max()) * 1.22)
    ax_n.yaxis.get_major_locator().set_params(integer=True)
    if data.reasons:
        ax_n.legend(fontsize=8, frameon=False, loc="upper right")

    times = np.array([data.time_ns[n] / 1000 for n in data.names])
    ax_t.bar(x, times, color=ROLES["ram"], width=0.6)
    _label_bars(ax_t, x, times, [f"{t:,.1f} µs" for t in times])
    ax_t.set_ylabel("virtual time (µs)")
    ax_t.set_title("virtual time until the last event", fontsize=10, loc="left")
    ax_t.set_ylim(0, max(1.0, times.max()) * 1.18)
    for a in (ax_n, ax_t):
        a.set_xticks(x, data.names, fontsize=9)
        a.set_xlabel("scenario")
        a.spines["top"].set_visible(False)
        a.spines["right"].set_visible(False)
    fig.suptitle(title, fontsize=12)
    fig.vmm_data = data
    return fig


__all__ = [
    "ExitCounts",
    "ExitHistogram",
    "exit_counts",
    "exit_histogram",
    "plot_exit_counts",
    "plot_exits_over_time",
]
