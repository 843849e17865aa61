"""The picture of a domain's guest-physical memory map, and what its shadow page table maps.

``plot_memory_map`` draws RAM, MMIO ranges and holes over the whole guest-physical space
(where a narrow MMIO window is called out by a label), then zooms on a window (by default the
first megabyte) with a row telling for each 4 KiB page whether the shadow page table maps it
or an access exits with #PF. ``memory_map_data`` computes what is drawn (``MemoryMapData``)
without drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from ..errors import ConfigError
from ..hw.memory import MIB, PAGE_SHIFT, PAGE_SIZE
from ..xen.domain import Domain
from .figure import LABEL_FONT, _axes_width_pt, _figure, _hex, _mark_zoom, _runs, _stagger
from .palette import ROLES

KIB = 1 << 10


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


__all__ = ["MemSpan", "MemoryMapData", "memory_map_data", "plot_memory_map"]
