"""The picture of the 64 K I/O port space: which ports exit to the hypervisor.

``plot_port_space`` draws the VMX I/O bitmaps A and B (or the SVM IOPM) as one band of
intercepted and direct ports, and above it the devices that answer: emulated by the
hypervisor, machine devices passed through or trapped, and labelled PC devices. A zoom panel
shows the legacy ports below 0x400 (COM1 at 0x3F8, Xen's direct ports 0x80 and 0xED).
``port_space_data`` computes what is drawn (``PortSpaceData``) without drawing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from ..cpu.iobitmap import SvmIopm, VmxIoBitmaps
from ..errors import ConfigError
from ..hw.pcmap import Span
from ..xen.domain import Domain
from .figure import LABEL_FONT, _axes_width_pt, _figure, _hex, _mark_zoom, _runs, _stagger
from .palette import ROLES

PORTS = 0x10000
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}


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


#: What a span's colour says (one colour per meaning; the labels name the devices).
_OWNER_ROLE = {
    "emulated": "emulated",
    "passthrough": "passthrough",
    "machine": "machine",
    "device": "pc_device",
}


def _span_colour(span: PortSpan) -> str:
    return ROLES[_OWNER_ROLE[span.owner]]


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

    owners = {s.owner for s in data.spans}
    direct = "direct: no exit" + (" (a device passed through)" if "passthrough" in owners else "")
    handles = [
        Patch(color=ROLES["intercepted"], label="intercepted: the access exits"),
        Patch(color=ROLES["direct"], label=direct),
    ]
    for owner, label in (
        ("emulated", "device emulated by the hypervisor"),
        ("machine", "machine device, not assigned"),
        ("device", "PC device (the PC's port map)"),
    ):
        if owner in owners:
            handles.append(Patch(color=_span_colour(PortSpan(0, 0, "", owner)), label=label))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize=8.5,
        frameon=False,
    )
    n_exit = int(data.intercepted.sum())
    fig.suptitle(
        f"{data.title}: {n_exit:,} ports intercepted, {PORTS - n_exit:,} direct",
        fontsize=12,
    )
    fig.vmm_data = data
    return fig


__all__ = ["PortSpaceData", "PortSpan", "plot_port_space", "port_space_data"]
