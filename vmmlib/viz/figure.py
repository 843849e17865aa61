"""What the pictures of ``vmmlib.viz`` share: a figure that Jupyter shows once, hex labels,
runs of flags, labels staggered so they do not overlap, and the outline of a zoomed range.

Every picture (``portspace``, ``memorymap``, ``exitplots``) is built with the
object-oriented API on a figure from ``_figure``, detached from pyplot before it is
returned, so Jupyter shows it exactly once: end the cell with the figure (or ``display`` it).
Colours come from ``vmmlib.viz.palette``. Each figure carries what it plotted as
``fig.vmm_data`` (the ``*_data`` functions compute the same without drawing), so a test or an
exercise can check the numbers rather than the pixels.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .palette import ROLES

LABEL_FONT = 7.5  # points, for span labels


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
