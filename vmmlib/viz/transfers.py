"""Chapter 02's cost pictures: what a transfer through the device model costs.

* ``plot_transfer_styles(found)`` — exits and ioreqs to read one sector in each transfer
  style (``vmmlib.scenarios.device_model.read_styles``): a REP INSW is one ioreq for the whole
  sector, a loop of INs one per word;
* ``plot_backends(found)`` — the virtual time a read takes through each disk backend
  (``read_backends``): the first sector, each further sector, and a MiB;
* ``plot_buffered_ring(runs)`` — the same guest with and without the buffered ioreq ring:
  exits, synchronous ioreqs, buffered writes, and the time the vCPU spent blocked.

Each returns the matplotlib Figure, with what it plotted as ``fig.vmm_data``.
"""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from ..errors import ConfigError
from .figure import _figure
from .palette import GUEST_COLOURS, OKABE_ITO

STYLE_NAMES = {
    "insw": "REP INSW\n(2 bytes x 256)",
    "insl": "REP INSL\n(4 bytes x 128)",
    "inw": "IN AX x 256",
    "inl": "IN EAX x 128",
}


def _need(found: Mapping, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(found, Mapping) or not found:
        raise ConfigError(f"{what} needs a non-empty mapping, not {found!r}")
    for name, row in found.items():
        missing = [k for k in keys if k not in row]
        if missing:
            raise ConfigError(f"{what}: {name!r} has no {', '.join(missing)}")


def _label_bars(ax, bars, texts: list[str]) -> None:
    for bar, text in zip(bars, texts, strict=True):
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8)


def plot_transfer_styles(found: Mapping[str, Mapping[str, int]],
                         title: str = "Reading one sector: exits and ioreqs per style"
                         ) -> Figure:
    """Bars of exits and ioreqs per sector for each style of ``found`` (log scale)."""
    _need(found, ("exits", "ioreqs"), "plot_transfer_styles")
    styles = list(found)
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    width = 0.38
    xs = range(len(styles))
    for i, (key, colour) in enumerate((("exits", OKABE_ITO["vermillion"]),
                                       ("ioreqs", OKABE_ITO["reddish_purple"]))):
        values = [found[s][key] for s in styles]
        bars = ax.bar([x + (i - 0.5) * width for x in xs], values, width, color=colour,
                      label=f"{key} (each one a trip to dom0)" if key == "ioreqs" else key)
        _label_bars(ax, bars, [str(v) for v in values])
    ax.set_xticks(list(xs), [STYLE_NAMES.get(s, s) for s in styles], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(1, max(found[s]["exits"] for s in styles) * 3)
    ax.set_ylabel("per sector (log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    fig.vmm_data = {s: dict(found[s]) for s in styles}
    return fig


def plot_backends(found: Mapping[str, Mapping[str, int]],
                  title: str = "Reading through each disk backend (virtual time)") -> Figure:
    """Two panels: per sector (the first, and each further one: log scale, µs) and per MiB
    (ms, estimated from the read as first + 2047 x steady)."""
    _need(found, ("first_ns", "steady_ns", "per_mib_ns"), "plot_backends")
    kinds = list(found)
    fig = _figure(10, 3.8)
    left, right = fig.subplots(1, 2, width_ratios=(1.25, 1))
    ys = range(len(kinds))
    height = 0.38
    for i, (key, colour, label) in enumerate(
            (("first_ns", GUEST_COLOURS[0], "first sector (command, request, first access)"),
             ("steady_ns", GUEST_COLOURS[1], "each further sector"))):
        values = [found[k][key] / 1000 for k in kinds]
        bars = left.barh([y + (i - 0.5) * height for y in ys], values, height, color=colour,
                         label=label)
        for bar, v in zip(bars, values, strict=True):
            left.annotate(f"{v:,.1f}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                          xytext=(3, 0), textcoords="offset points", va="center", fontsize=7.5)
    left.set_yticks(list(ys), kinds)
    left.invert_yaxis()
    left.set_xscale("log")
    left.set_xlim(right=max(found[k]["first_ns"] for k in kinds) / 1000 * 60)
    left.set_xlabel("virtual time per sector (µs, log scale)")
    left.set_title("per sector", fontsize=10)
    left.legend(fontsize=7.5, loc="upper right")
    mib = [found[k]["per_mib_ns"] / 1e6 for k in kinds]
    bars = right.barh(list(ys), mib, 0.6, color=GUEST_COLOURS[2])
    for bar, v in zip(bars, mib, strict=True):
        right.annotate(f"{v:,.1f} ms", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                       xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.set_yticks(list(ys), kinds)
    right.invert_yaxis()
    right.set_xlim(0, max(mib) * 1.3)
    right.set_xlabel("virtual time per MiB (ms, estimated)")
    right.set_title("per MiB", fontsize=10)
    fig.suptitle(title)
    fig.vmm_data = {k: dict(found[k]) for k in kinds}
    return fig


def plot_buffered_ring(runs: Mapping[str, Mapping[str, int]],
                       title: str = "Writes into the VGA window: with and without the "
                                    "buffered ring") -> Figure:
    """For each run (``{"exits", "ioreqs", "buffered", "stall_ns"}``): the counts side by side
    and, on the right, the time the vCPU was blocked on its ioreq slot."""
    _need(runs, ("exits", "ioreqs", "buffered", "stall_ns"), "plot_buffered_ring")
    names = list(runs)
    fig = _figure(10, 3.6)
    left, right = fig.subplots(1, 2, width_ratios=(1.6, 1))
    keys = (("exits", "exits"), ("ioreqs", "synchronous ioreqs"),
            ("buffered", "writes into the buffered ring"))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [runs[name][k] for k, _ in keys]
        bars = left.bar([x + (i - (len(names) - 1) / 2) * width for x in range(len(keys))],
                        values, width, color=GUEST_COLOURS[i % len(GUEST_COLOURS)], label=name)
        _label_bars(left, bars, [str(v) for v in values])
    left.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
    left.set_ylabel("count")
    left.set_ylim(0, max(max(runs[n][k] for k, _ in keys) for n in names) * 1.4 + 1)
    left.legend(fontsize=8, loc="upper center", ncols=len(names))
    left.set_title("what the writes cost", fontsize=10)
    stall = [runs[n]["stall_ns"] / 1000 for n in names]
    bars = right.bar(range(len(names)), stall, 0.6,
                     color=[GUEST_COLOURS[i % len(GUEST_COLOURS)] for i in range(len(names))])
    _label_bars(right, bars, [f"{v:,.0f} µs" for v in stall])
    right.set_xticks(range(len(names)), names, fontsize=8)
    right.set_ylabel("vCPU blocked on its slot (µs)")
    right.set_ylim(0, max(stall) * 1.25 + 1)
    right.set_title("how long the guest waited", fontsize=10)
    fig.suptitle(title)
    fig.vmm_data = {n: dict(runs[n]) for n in names}
    return fig


__all__ = ["STYLE_NAMES", "plot_backends", "plot_buffered_ring", "plot_transfer_styles"]
