"""Pictures of address spaces and VM exits: one function per picture, each returns a Figure.

* ``plot_port_space`` — the 64 K I/O ports: which ones exit (the VMX I/O bitmaps A and B, or
  the SVM IOPM) and which devices answer them, with a zoom on the legacy ports below 0x400.
* ``plot_memory_map`` — the guest-physical memory map (RAM, MMIO, holes) and which pages the
  shadow page table maps, with a zoom on the first megabyte.
* ``plot_exits_over_time`` — exits over virtual time, stacked by exit reason.
* ``plot_exit_counts`` — exit counts and virtual time of several scenarios side by side.

Every figure is built with the object-oriented API and detached from pyplot before it is
returned, so Jupyter shows it exactly once: end the cell with the figure (or ``display`` it).
Colours come from ``vmmlib.viz.palette``. Each figure carries what it plotted as
``fig.vmm_data`` (the ``*_data`` functions compute the same without drawing), so a test or an
exercise can check the numbers rather than the pixels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator

from ..errors import ConfigError
from ..iobitmap import SvmIopm, VmxIoBitmaps
from ..machine import Domain
from ..memory import MIB, PAGE_SHIFT, PAGE_SIZE
from ..pcmap import Span
from ..trace import Trace
from .palette import ROLES, device_colour, event_colour, exit_colour

PORTS = 0x10000
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}
LABEL_FONT = 7.5  # points, for span labels
KIB = 1 << 10


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    """A new figure with constrained layout, already closed in pyplot (shown once in Jupyter)."""
    fig = plt.figure(figsize=(width, height), layout="constrained", dpi=100)
    plt.close(fig)
    return fig


def _hex(n: int, digits: int = 0) -> str:
    return f"0x{n:0{digits}X}"


def _runs(
    flags: np.ndarray, offset: int = 0
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split a 0/1 array into (start, length) runs of ones and runs of zeros."""
    flags = np.asarray(flags, dtype=bool)
    if flags.size == 0:
        return [], []
    change = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [flags.size]))
    ones, zeros = [], []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        (ones if flags[s] else zeros).append((s + offset, e - s))
    return ones, zeros


def _stagger(
    spans: list[tuple[float, float, str]], xlim: tuple[float, float], axes_width_pt: float
) -> list[tuple[float, str, int]]:
    """Place labels of (first, last, text) spans in levels so that no two overlap.

    Returns (x, horizontal alignment, level) per span. A label starts at its span's left
    edge; one that would run past the right edge of the axes ends at the span's right edge.
    """
    per_pt = (xlim[1] - xlim[0]) / axes_width_pt
    level_ends: list[float] = []
    placed = []
    for first, last, text in spans:
        width = (len(text) * 0.58 * LABEL_FONT + 4) * per_pt
        x, ha, left = first, "left", first
        if first + width > xlim[1]:
            x, ha, left = last, "right", last - width
        for level, end in enumerate(level_ends):
            if left > end:
                level_ends[level] = left + width
                break
        else:
            level_ends.append(left + width)
            level = len(level_ends) - 1
        placed.append((x, ha, level))
    return placed


def _axes_width_pt(fig: Figure, fraction: float) -> float:
    return fig.get_figwidth() * 72 * fraction


# ---------------------------------------------------------------------------------------------
# the port space
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortSpan:
    """Ports ``first`` … ``last`` answered by ``name``.

    ``owner``: ``"emulated"`` (on the domain's emulated bus: the hypervisor answers),
    ``"passthrough"`` (a machine device the domain reaches without an exit), ``"machine"``
    (a machine device whose ports the domain cannot reach directly) or ``"device"`` (a
    label passed in by the caller, e.g. ``vmmlib.pcmap.LEGACY_PORTS``).
    """

    first: int
    last: int
    name: str
    owner: str

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"{self.name} {_hex(self.first, 2)}"
        return f"{self.name} {_hex(self.first, 2)}–{_hex(self.last, 2)}"


@dataclass
class PortSpaceData:
    """What ``plot_port_space`` draws: one intercept flag per port, and the device spans."""

    vendor: str  # "vmx" or "svm"
    intercepted: np.ndarray  # bool[65536]: does a 1-byte IN/OUT at this port exit?
    spans: list[PortSpan] = field(default_factory=list)
    title: str = ""

    def exits(self, port: int) -> bool:
        """Does a 1-byte access to ``port`` exit?"""
        return bool(self.intercepted[port])

    def owner_of(self, port: int) -> list[PortSpan]:
        """The spans that contain ``port``."""
        return [s for s in self.spans if s.first <= port <= s.last]


def _intercept_flags(bitmaps: VmxIoBitmaps | SvmIopm) -> np.ndarray:
    """Per port: does a 1-byte access exit, taking the execution controls into account."""
    if isinstance(bitmaps, VmxIoBitmaps):
        if not bitmaps.use_io_bitmaps:
            return np.full(PORTS, bitmaps.unconditional_io_exiting, dtype=bool)
        return bitmaps.as_array().astype(bool)
    if isinstance(bitmaps, SvmIopm):
        if not bitmaps.ioio_prot:
            return np.zeros(PORTS, dtype=bool)
        return bitmaps.as_array()[:PORTS].astype(bool)
    raise ConfigError(
        f"plot_port_space needs a Domain, VmxIoBitmaps or SvmIopm, not {type(bitmaps).__name__}"
    )


def _as_span(item: Span | PortSpan | tuple) -> PortSpan:
    if isinstance(item, PortSpan):
        return item
    try:
        first, last, name = item[0], item[1], item[2]
    except (TypeError, IndexError):
        raise ConfigError(f"a device span is (first, last, name), not {item!r}") from None
    if not (isinstance(first, int) and isinstance(last, int) and 0 <= first <= last < PORTS):
        raise ConfigError(f"device span {item!r}: ports must satisfy 0 <= first <= last <= 0xFFFF")
    return PortSpan(first, last, str(name), "device")


def port_space_data(
    domain_or_bitmaps: Domain | VmxIoBitmaps | SvmIopm,
    devices: Iterable[Span | PortSpan | tuple] | None = None,
) -> PortSpaceData:
    """The intercept flags and device spans of a domain (or of bare bitmaps).

    For a ``Domain``: its emulated devices (``domain.ports``) and the machine's devices
    (``machine.ports``), the latter marked passthrough when none of their ports exits.
    ``devices`` adds labelled spans, e.g. ``vmmlib.pcmap.LEGACY_PORTS``.
    """
    spans: list[PortSpan] = []
    if isinstance(domain_or_bitmaps, Domain):
        dom = domain_or_bitmaps
        flags = _intercept_flags(dom.intercepts)
        vendor = dom.vendor
        spans += [PortSpan(r.base, r.end, r.name, "emulated") for r in dom.ports.regions]
        for r in dom.machine.ports.regions:
            direct = not flags[r.base : r.end + 1].any()
            spans.append(PortSpan(r.base, r.end, r.name, "passthrough" if direct else "machine"))
        title = f"I/O port space of {dom.name}"
    else:
        flags = _intercept_flags(domain_or_bitmaps)
        vendor = "vmx" if isinstance(domain_or_bitmaps, VmxIoBitmaps) else "svm"
        title = "I/O port space"
    spans += [_as_span(d) for d in devices or ()]
    return PortSpaceData(vendor, flags, spans, title)


def _span_colour(span: PortSpan) -> str:
    if span.owner == "passthrough":
        return ROLES["passthrough"]
    if span.owner == "machine":
        return ROLES["machine"]
    return device_colour(span.name)


def _draw_port_axes(
    ax, data: PortSpaceData, xlim: tuple[int, int], width_pt: float, skip: tuple[int, int]
) -> None:
    """Draw the intercept band and one row per kind of device span on ``ax``.

    Spans are labelled unless they lie inside ``skip`` (the range a zoom panel labels).
    """
    lo, hi = xlim
    rows = []  # (y of the bar, row name)
    y = 0.0
    for owners, name in (
        (("device",), "PC devices"),
        (("passthrough", "machine"), "machine devices"),
        (("emulated",), "emulated by\nthe hypervisor"),
    ):
        spans = sorted(
            (s for s in data.spans if s.owner in owners and s.last >= lo and s.first < hi),
            key=lambda s: (s.first, s.last),
        )
        if not any(s.owner in owners for s in data.spans):
            continue
        bars = [(s.first, s.last - s.first + 1) for s in spans]
        ax.broken_barh(
            bars,
            (y, 0.4),
            facecolors=[_span_colour(s) for s in spans],
            edgecolors=[_span_colour(s) for s in spans],
            linewidth=0.8,
            label=name.replace("\n", " "),
        )
        labelled = [s for s in spans if not (skip[0] <= s.first and s.last < skip[1])]
        texts = [
            s.label + {"passthrough": " (direct)", "machine": " (trapped)"}.get(s.owner, "")
            for s in labelled
        ]
        placed = _stagger(
            [(s.first, s.last + 1, t) for s, t in zip(labelled, texts, strict=True)],
            xlim,
            width_pt,
        )
        levels = max((lvl for _, _, lvl in placed), default=-1) + 1
        for text, (x, ha, lvl) in zip(texts, placed, strict=True):
            top = y + 0.48 + 0.36 * lvl
            if lvl:  # a leader line from the bar up to a raised label
                ax.plot([x, x], [y + 0.4, top + 0.12], color=ROLES["machine"], lw=0.5)
            ax.text(
                x,
                top,
                text,
                ha=ha,
                va="bottom",
                fontsize=LABEL_FONT,
                color=ROLES["text"],
                clip_on=True,
                bbox=_LABEL_BOX,  # leader lines of higher labels pass behind this one
            )
        rows.append((y + 0.2, name))
        y += 0.6 + 0.36 * max(levels, 1)
    # the intercept band
    band_y = y + 0.1
    ones, zeros = _runs(data.intercepted[lo:hi], offset=lo)
    ax.broken_barh(
        ones,
        (band_y, 0.8),
        facecolors=ROLES["intercepted"],
        edgecolors="none",
        label="intercepted (exits)",
    )
    ax.broken_barh(
        zeros,
        (band_y, 0.8),
        facecolors=ROLES["direct"],
        edgecolors=ROLES["direct"],
        linewidth=1.0,
        label="direct (no exit)",
    )
    if data.vendor == "vmx":
        if lo < 0x8000 < hi:
            ax.axvline(0x8000, color="white", linewidth=2.5)
        for first, last, name in ((0x0000, 0x7FFF, "A"), (0x8000, 0xFFFF, "B")):
            a, b = max(first, lo), min(last + 1, hi)
            if b - a > 0.25 * (hi - lo):
                ax.text(
                    (a + b) / 2,
                    band_y + 0.4,
                    f"I/O bitmap {name}: ports {_hex(first, 4)}–{_hex(last, 4)}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none"},
                )
        rows.append((band_y + 0.4, "VMX I/O\nbitmaps"))
    else:
        if hi - lo > 0.25 * PORTS:
            ax.text(
                (lo + hi) / 2,
                band_y + 0.4,
                "SVM I/O permissions map (IOPM)",
                ha="center",
                va="center",
                fontsize=8.5,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none"},
            )
        rows.append((band_y + 0.4, "SVM IOPM"))
    ax.set_ylim(-0.15, band_y + 1.0)
    ax.set_yticks([r[0] for r in rows], [r[1] for r in rows], fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(lo, hi)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _mark_direct_ports(ax, data: PortSpaceData, xlim: tuple[int, int], y: float) -> None:
    """Call out the few direct ports in a zoom (such as Xen's 0x80 and 0xED)."""
    lo, hi = xlim
    _, zeros = _runs(data.intercepted[lo:hi], offset=lo)
    if not zeros or len(zeros) > 6:
        return
    for start, length in zeros:
        text = _hex(start) if length == 1 else f"{_hex(start)}–{_hex(start + length - 1)}"
        ax.annotate(
            f"{text} direct",
            (start + length / 2, y),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=LABEL_FONT,
            color=ROLES["text"],
            arrowprops={
                "arrowstyle": "-|>",
                "color": ROLES["text"],
                "lw": 0.8,
                "shrinkA": 0,
                "shrinkB": 0,
            },
        )


def _mark_zoom(ax, lo: float, hi: float, y0: float, y1: float) -> None:
    """Outline the range a zoom panel below shows."""
    ax.add_patch(
        Rectangle(
            (lo, y0),
            hi - lo,
            y1 - y0,
            fill=False,
            edgecolor=ROLES["zoom"],
            linewidth=1.0,
            zorder=5,
            clip_on=False,
        )
    )


def plot_port_space(
    domain_or_bitmaps: Domain | VmxIoBitmaps | SvmIopm,
    devices: Iterable[Span | PortSpan | tuple] | None = None,
    zoom: tuple[int, int] = (0x0000, 0x0400),
) -> Figure:
    """The 64 K I/O ports: which exit to the hypervisor, and which devices answer where.

    The top panel is the whole port space, the bottom one the ``zoom`` window (by default
    the legacy ports below 0x400, where COM1 at 0x3F8 and Xen's direct ports 0x80 and 0xED
    are). See ``port_space_data`` for what ``devices`` may hold.
    """
    lo, hi = zoom
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= PORTS):
        raise ConfigError(f"zoom {zoom!r} must be (first, end) with 0 <= first < end <= 0x10000")
    data = port_space_data(domain_or_bitmaps, devices)
    fig = _figure(11, 6.2)
    ax_full, ax_zoom = fig.subplots(2, 1, height_ratios=[1, 1.5])
    width_pt = _axes_width_pt(fig, 0.84)

    _draw_port_axes(ax_full, data, (0, PORTS), width_pt, skip=(lo, hi))
    ax_full.set_xticks(
        [0, 0x4000, 0x8000, 0xC000, 0xFFFF], ["0x0000", "0x4000", "0x8000", "0xC000", "0xFFFF"]
    )
    ax_full.xaxis.set_minor_locator(MultipleLocator(0x1000))
    ax_full.set_xlabel("port (all 65,536)")
    ax_full.set_title("whole port space", fontsize=10, loc="left")

    _draw_port_axes(ax_zoom, data, (lo, hi), width_pt, skip=(0, 0))
    step = max(1, (hi - lo) // 16)
    ax_zoom.xaxis.set_major_locator(MultipleLocator(step))
    ax_zoom.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _hex(int(v), 3)))
    ax_zoom.tick_params(axis="x", labelsize=8)
    ax_zoom.set_xlabel(f"port ({_hex(lo, 4)}–{_hex(hi - 1, 4)})")
    ax_zoom.set_title(
        f"zoom (outlined above) on ports {_hex(lo, 4)}–{_hex(hi - 1, 4)}", fontsize=10, loc="left"
    )
    band_top = ax_zoom.get_ylim()[1] - 0.2
    _mark_direct_ports(ax_zoom, data, (lo, hi), band_top)
    ax_zoom.set_ylim(top=ax_zoom.get_ylim()[1] + 0.5)

    y0, y1 = ax_full.get_ylim()
    _mark_zoom(ax_full, lo, hi, y0, y1)

    handles = [
        Patch(color=ROLES["intercepted"], label="intercepted: the access exits"),
        Patch(color=ROLES["direct"], label="direct: no exit"),
    ]
    if any(s.owner == "machine" for s in data.spans):
        handles.append(Patch(color=ROLES["machine"], label="machine device, not assigned"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8.5, frameon=False
    )
    n_exit = int(data.intercepted.sum())
    fig.suptitle(
        f"{data.title}: {n_exit:,} ports intercepted, {PORTS - n_exit:,} direct",
        fontsize=12,
    )
    fig.vmm_data = data
    return fig


# ---------------------------------------------------------------------------------------------
# the guest-physical memory map
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemSpan:
    """Guest-physical ``first`` … ``last``: ``kind`` is "ram", "mmio" or "hole"."""

    first: int
    last: int
    kind: str
    name: str


@dataclass
class MemoryMapData:
    """What ``plot_memory_map`` draws."""

    spans: list[MemSpan]
    end: int  # one past the last address shown
    window: tuple[int, int]  # the zoomed range, [start, end)
    present: np.ndarray  # bool per 4 KiB page of the window: the shadow maps it
    machine_base: int | None  # where the RAM sits in machine memory, if contiguous
    title: str = ""

    def kind_at(self, gpa: int) -> str:
        """ "ram", "mmio" or "hole" for a guest-physical address in the map."""
        for s in self.spans:
            if s.first <= gpa <= s.last:
                return s.kind
        return "hole"

    def page_present(self, gpa: int) -> bool:
        """Does the shadow map the page holding ``gpa`` (which must lie in the window)?"""
        start, end = self.window
        if not start <= gpa < end:
            raise ConfigError(f"{gpa:#x} is outside the window {start:#x}-{end - 1:#x}")
        return bool(self.present[(gpa - start) >> PAGE_SHIFT])


def memory_map_data(domain: Domain, window: tuple[int, int] = (0, MIB)) -> MemoryMapData:
    """RAM, MMIO ranges and holes of ``domain``, and the shadow's present pages in ``window``."""
    if not isinstance(domain, Domain):
        raise ConfigError(f"plot_memory_map needs a Domain, not {type(domain).__name__}")
    start, stop = window
    if start % PAGE_SIZE or stop % PAGE_SIZE or not 0 <= start < stop:
        raise ConfigError(f"window {window!r} must be page-aligned (start, end) with start < end")
    regions = domain.mmio.regions
    end = max([domain.ram_size, stop] + [r.end + 1 for r in regions])
    end = -(-end // PAGE_SIZE) * PAGE_SIZE
    cuts = sorted(
        {0, domain.ram_size, end} | {r.base for r in regions} | {r.end + 1 for r in regions}
    )
    spans: list[MemSpan] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        region = domain.mmio.find(a)
        if region is not None:
            kind, name = "mmio", region.name
        elif a < domain.ram_size:
            kind, name = "ram", "RAM"
        else:
            kind, name = "hole", "hole"
        if spans and spans[-1].kind == kind and spans[-1].name == name and spans[-1].last == a - 1:
            spans[-1] = MemSpan(spans[-1].first, b - 1, kind, name)
        else:
            spans.append(MemSpan(a, b - 1, kind, name))
    mapped = set(domain.shadow.values())
    pages = np.arange(start, stop, PAGE_SIZE)
    present = np.fromiter((int(p) in mapped for p in pages), dtype=bool, count=len(pages))
    p2m = domain.p2m
    contiguous = bool(len(p2m) and np.array_equal(p2m, np.arange(p2m[0], p2m[0] + len(p2m))))
    base = int(p2m[0]) << PAGE_SHIFT if contiguous else None
    title = f"Guest-physical memory of {domain.name} ({_size(domain.ram_size)} RAM)"
    return MemoryMapData(spans, end, (start, stop), present, base, title)


def _size(n: int) -> str:
    """A byte count in the largest binary unit it reaches: 32 KiB, 256 MiB, 15.2 MiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            whole = n % (1 << shift) == 0
            return f"{n >> shift} {unit}" if whole else f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


def _mem_colour(span: MemSpan) -> str:
    return ROLES[span.kind]


def _draw_map_row(
    ax, data: MemoryMapData, lo: int, hi: int, y: float, scale: float, width_pt: float
) -> float:
    """One bar of RAM/MMIO/hole spans between ``lo`` and ``hi`` (x divided by ``scale``).

    Narrow MMIO ranges and holes get a label with a leader line above the bar; returns the
    y of the top of the highest label.
    """
    shown = [s for s in data.spans if s.last >= lo and s.first < hi]
    ax.broken_barh(
        [
            (max(s.first, lo) / scale, (min(s.last + 1, hi) - max(s.first, lo)) / scale)
            for s in shown
        ],
        (y, 0.6),
        facecolors=[_mem_colour(s) for s in shown],
        edgecolors=[_mem_colour(s) for s in shown],
        linewidth=0.8,
    )
    wide = [s for s in shown if (min(s.last + 1, hi) - max(s.first, lo)) > 0.12 * (hi - lo)]
    ram_is_wide = any(s.kind == "ram" for s in wide)
    narrow = [s for s in shown if s not in wide and not (s.kind == "ram" and ram_is_wide)]
    for s in wide:
        a, b = max(s.first, lo), min(s.last + 1, hi)
        text = s.name if s.kind != "ram" else "RAM"
        colour = "white" if s.kind == "ram" else ROLES["text"]
        ax.text(
            (a + b) / 2 / scale, y + 0.3, text, ha="center", va="center", fontsize=8.5, color=colour
        )
    xlim = (lo / scale, hi / scale)
    labels = [
        (
            s.first / scale,
            (s.last + 1) / scale,
            f"{s.name} {_hex(s.first)}–{_hex(s.last)} ({_size(s.last - s.first + 1)})",
        )
        for s in narrow
    ]
    top = y + 0.6
    for (x, ha, lvl), (first, last, text) in zip(
        _stagger(labels, xlim, width_pt), labels, strict=True
    ):
        ax.annotate(
            text,
            ((first + last) / 2, y + 0.6),
            xytext=(x, y + 0.9 + 0.35 * lvl),
            textcoords="data",
            ha=ha,
            va="bottom",
            fontsize=LABEL_FONT,
            arrowprops={"arrowstyle": "-", "color": ROLES["text"], "lw": 0.6},
        )
        top = max(top, y + 1.25 + 0.35 * lvl)
    return top


def plot_memory_map(domain: Domain, window: tuple[int, int] = (0, MIB)) -> Figure:
    """The guest-physical memory map, whole and zoomed on ``window`` (default: first 1 MiB).

    Top: the whole space in MiB, where a 256 MiB RAM dwarfs a 32 KiB MMIO window (which is
    called out by a label). Bottom: the window, with a second row telling for each 4 KiB
    page whether the shadow page table maps it (present) or not (an access exits with #PF;
    MMIO pages never get a shadow entry).
    """
    data = memory_map_data(domain, window)
    start, stop = data.window
    fig = _figure(11, 6.2)
    ax_whole, ax_zoom = fig.subplots(2, 1, height_ratios=[1, 1.35])
    width_pt = _axes_width_pt(fig, 0.84)

    top = _draw_map_row(ax_whole, data, 0, data.end, 0.0, MIB, width_pt)
    ax_whole.set_xlim(0, data.end / MIB)
    ax_whole.set_ylim(-0.2, top + 0.1)
    ax_whole.set_yticks([0.3], ["guest-\nphysical"], fontsize=8)
    ax_whole.set_xlabel("guest-physical address (MiB)")
    note = ""
    if data.machine_base is not None:
        ram = domain.ram_size
        note = (
            f": RAM 0–{_size(ram)} is machine memory "
            f"{data.machine_base / MIB:g}–{(data.machine_base + ram) / MIB:g} MiB (p2m)"
        )
    ax_whole.set_title("whole space" + note, fontsize=10, loc="left")

    span = stop - start
    scale = KIB if span <= 64 * MIB else MIB
    unit = "KiB" if scale == KIB else "MiB"
    top = _draw_map_row(ax_zoom, data, start, stop, 1.0, scale, width_pt)
    present, absent = _runs(data.present)
    page = PAGE_SIZE / scale
    ax_zoom.broken_barh(
        [((start / scale) + s * page, n * page) for s, n in present],
        (0.0, 0.6),
        facecolors=ROLES["present"],
        edgecolors=ROLES["present"],
        linewidth=0.6,
    )
    ax_zoom.broken_barh(
        [((start / scale) + s * page, n * page) for s, n in absent],
        (0.0, 0.6),
        facecolors=ROLES["not_present"],
        edgecolors="none",
    )
    n_present = int(data.present.sum())
    ax_zoom.set_yticks(
        [0.3, 1.3],
        [f"shadow entries\n{n_present} of {len(data.present)}\npages present", "guest-\nphysical"],
        fontsize=8,
    )
    ax_zoom.set_xlim(start / scale, stop / scale)
    ax_zoom.set_ylim(-0.2, top + 0.1)
    ax_zoom.xaxis.set_major_locator(MultipleLocator(span / scale / 8))
    ax_zoom.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{_hex(round(v * scale), 5)}\n{v:g} {unit}")
    )
    ax_zoom.tick_params(axis="x", labelsize=8)
    ax_zoom.set_xlabel("guest-physical address")
    ax_zoom.set_title(
        f"zoom (outlined above) on {_hex(start, 5)}–{_hex(stop - 1, 5)}, one cell per 4 KiB page",
        fontsize=10,
        loc="left",
    )
    for ax in (ax_whole, ax_zoom):
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    _mark_zoom(ax_whole, start / MIB, stop / MIB, -0.1, 0.7)
    kinds = {s.kind for s in data.spans}
    handles = [
        Patch(color=ROLES[kind], label=label)
        for kind, label in (
            ("ram", "RAM"),
            ("mmio", "MMIO (emulated device)"),
            ("hole", "hole (nothing answers)"),
        )
        if kind in kinds
    ] + [
        Patch(color=ROLES["present"], label="shadow entry present"),
        Patch(color=ROLES["not_present"], label="not present: an access exits (#PF)"),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8.5, frameon=False
    )
    fig.suptitle(data.title, fontsize=12)
    fig.vmm_data = data
    return fig


# ---------------------------------------------------------------------------------------------
# exits over time, and exit counts per scenario
# ---------------------------------------------------------------------------------------------
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
    for xi, n in zip(x, data.names, strict=True):
        calls = data.hypercalls[n]
        note = f"\n({calls} hypercall{'s' if calls != 1 else ''})" if calls else ""
        ax_n.annotate(
            f"{data.total(n):,}{note}",
            (xi, bottom[xi]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax_n.set_ylabel("VM exits")
    ax_n.set_title("exits, by exit reason", fontsize=10, loc="left")
    ax_n.set_ylim(0, max(1.0, bottom.max()) * 1.22)
    ax_n.yaxis.get_major_locator().set_params(integer=True)
    if data.reasons:
        ax_n.legend(fontsize=8, frameon=False, loc="upper right")

    times = np.array([data.time_ns[n] / 1000 for n in data.names])
    ax_t.bar(x, times, color=ROLES["ram"], width=0.6)
    for xi, t in zip(x, times, strict=True):
        ax_t.annotate(
            f"{t:,.1f} µs",
            (xi, t),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
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
    "MemSpan",
    "MemoryMapData",
    "PortSpaceData",
    "PortSpan",
    "exit_counts",
    "exit_histogram",
    "memory_map_data",
    "plot_exit_counts",
    "plot_exits_over_time",
    "plot_memory_map",
    "plot_port_space",
    "port_space_data",
]
