"""Pictures of a serial driver at work: how often it polls the UART for each character.

``uart_polls`` reads a trace like a logic analyser on COM1's ports: every LSR read the
hypervisor emulated, every THR write (a write to offset 0 with LCR.DLAB = 0), and whether the
write came after a poll that still read THRE = 0, i.e. the driver gave up waiting and, with the
FIFOs off, overwrote the byte still waiting in THR. ``plot_polls_per_character`` draws the LSR
polls before each character for one or more runs side by side, marks the bytes that were lost,
and shows the polls of the final wait for the transmitter to empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from ..devices.uart16550 import COM1_BASE, FCR, FCR_ENABLE_FIFO, LCR, LCR_DLAB, LSR, LSR_THRE, THR
from ..errors import ConfigError
from ..trace import Trace
from .figure import _figure
from .palette import GUEST_COLOURS, ROLES
from .text import wire_text


@dataclass
class UartPolls:
    """What a driver did on one UART, from the trace: one entry per THR write."""

    chars: list[int] = field(default_factory=list)  # the bytes written to THR, in order
    polls: list[int] = field(default_factory=list)  # LSR reads just before each write
    gave_up: list[bool] = field(default_factory=list)  # the last of them read THRE = 0
    lost: list[bool] = field(default_factory=list)  # overwritten in THR by the next write
    times: list[int] = field(default_factory=list)  # virtual time of each write (ns)
    final_polls: int = 0  # LSR reads after the last write (waiting for the line to empty)

    @property
    def sent(self) -> bytes:
        """The bytes that were not overwritten in THR (what reaches the wire, FIFOs off)."""
        return bytes(c for c, lost in zip(self.chars, self.lost, strict=True) if not lost)


def uart_polls(trace: Trace, base: int = COM1_BASE) -> UartPolls:
    """The driver's LSR polls and THR writes on the UART at ``base``, from the hypervisor's
    ``emulate`` events (a trapped UART; direct accesses carry no values)."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"uart_polls needs a Trace, not {type(trace).__name__}")
    out = UartPolls()
    dlab = fifo = False
    polls, thre = 0, True
    for event in trace.events("emulate"):
        f = event.fields
        port = f.get("port")
        if not isinstance(port, int) or not base <= port < base + 8:
            continue
        offset, is_in, value = port - base, f["dir"] == "in", f["value"]
        if is_in and offset == LSR:
            polls += 1
            thre = bool(value & LSR_THRE)
            continue
        if not is_in and offset == THR and not dlab:
            gave_up = polls > 0 and not thre
            if gave_up and not fifo and out.chars:
                out.lost[-1] = True  # the byte waiting in THR is replaced
            out.chars.append(value)
            out.polls.append(polls)
            out.gave_up.append(gave_up)
            out.lost.append(False)
            out.times.append(event.time)
            polls, thre = 0, False
            continue
        if not is_in and offset == LCR:
            dlab = bool(value & LCR_DLAB)
        elif not is_in and offset == FCR:
            fifo = bool(value & FCR_ENABLE_FIFO)
        polls = 0  # any other access: not part of a wait for THRE
    out.final_polls = polls if out.chars else 0
    return out


def plot_polls_per_character(
    runs: Mapping[str, Trace],
    base: int = COM1_BASE,
    bound: tuple[int, str] | None = None,
    title: str = "LSR polls before each character",
) -> Figure:
    """For each run (name -> trace), bars of the LSR polls before each character (log scale),
    lost characters hatched, and the polls of the final wait. ``bound``: (polls, label) of a
    driver's limit, drawn as a dashed line (xv6: (128, "xv6 gives up after 128 polls"))."""
    if not isinstance(runs, Mapping) or not runs:
        raise ConfigError("plot_polls_per_character needs a non-empty dict of name -> Trace")
    if len(runs) > len(GUEST_COLOURS):
        raise ConfigError(f"at most {len(GUEST_COLOURS)} runs fit in one picture")
    data = {str(name): uart_polls(trace, base) for name, trace in runs.items()}
    longest = max(len(d.chars) for d in data.values())
    if not longest:
        raise ConfigError("no THR writes in these traces: nothing to plot")
    fig = _figure(10, 3.9)
    ax = fig.subplots(1, 1)
    n = len(data)
    width = 0.8 / n
    x = np.arange(longest + 1)  # one slot per character, then the final wait
    tallest = 1
    for i, (name, d) in enumerate(data.items()):
        colour = GUEST_COLOURS[i]
        heights = d.polls + [d.final_polls]
        tallest = max(tallest, *heights)
        xs = x[: len(heights)] - 0.4 + width * (i + 0.5)
        bars = ax.bar(xs[:-1], d.polls, width=width, color=colour, label=name)
        for bar, lost in zip(bars, d.lost, strict=True):
            if lost:
                bar.set_hatch("///")
                bar.set_edgecolor("white")
        ax.bar(xs[-1], d.final_polls, width=width, color=colour, alpha=0.55)
        for xi, h in zip(xs, heights, strict=True):
            ax.annotate(f"{h:,}", (xi, max(h, 1)), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7.5)
    if bound is not None:
        polls, label = bound
        ax.axhline(polls, color=ROLES["text"], linestyle="--", linewidth=0.9)
        ax.annotate(label, (-0.45, polls), xytext=(0, 3), textcoords="offset points",
                    ha="left", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(0.5, tallest * 4)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else ""))
    first = max(data.values(), key=lambda d: len(d.chars))
    labels = [wire_text(bytes([c])) for c in first.chars] + ["wait for\nTEMT"]
    ax.set_xticks(x, labels, fontsize=9)
    ax.set_xlabel("character written to THR (then the final wait for the line to empty)")
    ax.set_ylabel("LSR polls (each one a VM exit)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=GUEST_COLOURS[i], label=name) for i, name in enumerate(data)]
    if any(any(d.lost) for d in data.values()):
        handles.append(Patch(facecolor=ROLES["machine"], hatch="///", edgecolor="white",
                             label="overwritten in THR before it was sent: lost"))
    ax.legend(handles=handles, fontsize=8.5, frameon=False, loc="upper left")
    sent = " · ".join(f"{wire_text(d.sent)} ({name})" for name, d in data.items())
    ax.set_title(f"what reached the wire: {sent}", fontsize=9.5, loc="left")
    fig.suptitle(title, fontsize=12)
    fig.vmm_data = data
    return fig


__all__ = ["UartPolls", "plot_polls_per_character", "uart_polls"]
