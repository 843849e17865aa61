"""Chapter 03's ring picture as inline SVG: what the stepping widget redraws at every step.

The same picture as ``plot_ring`` (``vmmlib.viz.ring``), from the same layout
(``vmmlib.viz.ring_geometry``): the 32 slots as wedges clockwise from the top, coloured by what
they hold (a request or response written but not yet pushed is paler), each occupied slot
labelled with its message as the page's bytes decode, the slot the last step used outlined,
and the eight indices as ticks with their free-running values in hex. Written as an SVG
string, it costs a millisecond where a matplotlib PNG costs a third of a second, so a step of
the widget stays within the course's 50 ms (DESIGN.md "Tests and budgets"); the browser scales
it to the cell. Plain Python: no matplotlib.
"""

from __future__ import annotations

import html
import math

from ..errors import ConfigError
from ..scenarios.ring_world import RingState
from .palette import GREY, ROLES
from .ring_geometry import (
    KEY_TITLE,
    LABEL_X,
    OWNER_COLOURS,
    R_IN,
    R_OUT,
    SLOT_COLOURS,
    TOUCHED,
    edge_angle,
    index_labels,
    key_rows,
)

WIDTH, HEIGHT = 860, 400  # px
SCALE = 150  # px per unit of the layout (outer radius 1)
CX, CY = 330, 212  # the ring's centre
FONT = "font-family:monospace"


def _xy(r: float, degrees: float) -> tuple[float, float]:
    rad = math.radians(degrees)
    return CX + SCALE * r * math.cos(rad), CY - SCALE * r * math.sin(rad)


def _text(x: float, y: float, text: str, size: float, style: str = "", anchor: str = "middle",
          rotate: float | None = None) -> str:
    turn = f' transform="rotate({rotate:.1f} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'dominant-baseline="central" style="{style}"{turn}>{html.escape(text)}</text>')


def _wedge(top: float, step: float, fill: str, stroke: str, width: float,
           opacity: float) -> str:
    """An annular sector from ``top`` clockwise by ``step`` degrees."""
    a, b = top, top - step
    x1, y1 = _xy(R_OUT, a)
    x2, y2 = _xy(R_OUT, b)
    x3, y3 = _xy(R_IN, b)
    x4, y4 = _xy(R_IN, a)
    ro, ri = SCALE * R_OUT, SCALE * R_IN
    path = (f"M{x1:.1f},{y1:.1f} A{ro},{ro} 0 0,1 {x2:.1f},{y2:.1f} L{x3:.1f},{y3:.1f} "
            f"A{ri},{ri} 0 0,0 {x4:.1f},{y4:.1f} Z")
    return (f'<path d="{path}" fill="{fill}" fill-opacity="{opacity}" stroke="{stroke}" '
            f'stroke-width="{width}"/>')


def _slots(state: RingState) -> list[str]:
    step = 360.0 / state.size
    parts, outlined = [], []
    for view in state.slots:
        top = edge_angle(view.slot, state.size)
        touched = view.slot == state.touched
        wedge = _wedge(top, step, SLOT_COLOURS[view.state], ROLES["text"] if touched else GREY,
                       2.4 if touched else 0.7, 0.5 if view.state.endswith("private") else 1.0)
        (outlined if touched else parts).append(wedge)  # the outline drawn last, on top
        mid = top - step / 2
        parts.append(_text(*_xy(0.49, mid), str(view.slot), 8, f"fill:{GREY}"))
        if view.label:
            turn = -mid if -90 <= mid <= 90 else -(mid + 180)
            parts.append(_text(*_xy((R_OUT + R_IN) / 2, mid), view.label, 8.5, rotate=turn))
    return parts + outlined


def _indices(state: RingState) -> list[str]:
    parts = []
    for label in index_labels(state):
        x0, y0 = _xy(R_IN, label.angle)
        x1, y1 = _xy(R_OUT, label.angle)
        tx, ty = _xy(R_OUT * 1.02, label.angle)
        lx, ly = CX + SCALE * label.side * (LABEL_X - 0.03), CY - SCALE * label.y
        dash = "" if label.owner == "shared" else ' stroke-dasharray="4,3"'
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                     f'stroke="{label.colour}" stroke-width="2"/>')
        parts.append(f'<line x1="{tx:.1f}" y1="{ty:.1f}" x2="{lx:.1f}" y2="{ly:.1f}" '
                     f'stroke="{label.colour}" stroke-width="0.9"{dash}/>')
        weight = "font-weight:bold;" if label.owner == "shared" else ""
        parts.append(_text(CX + SCALE * label.side * LABEL_X, ly, label.text, 10,
                           f"{FONT};{weight}fill:{label.colour}",
                           "start" if label.side > 0 else "end"))
    return parts


def _key(touched: bool) -> list[str]:
    x, y, dy = 680, 92, 20
    parts = [_text(x, y, KEY_TITLE, 11, "font-weight:bold", "start")]
    for text, what in key_rows(touched):
        y += dy
        if what in SLOT_COLOURS:
            opacity = 0.5 if what.endswith("private") else 1.0
            parts.append(f'<rect x="{x}" y="{y - 6}" width="18" height="12" '
                         f'fill="{SLOT_COLOURS[what]}" fill-opacity="{opacity}" stroke="{GREY}" '
                         'stroke-width="0.7"/>')
        elif what == TOUCHED:
            parts.append(f'<rect x="{x}" y="{y - 6}" width="18" height="12" fill="none" '
                         f'stroke="{ROLES["text"]}" stroke-width="2.4"/>')
        else:
            dash = "" if what == "shared" else ' stroke-dasharray="4,3"'
            parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" '
                         f'stroke="{OWNER_COLOURS[what]}" stroke-width="2"{dash}/>')
        parts.append(_text(x + 24, y, text, 10, anchor="start"))
    return parts


def ring_svg(state: RingState, title: str) -> str:
    """The ring picture of ``state`` as an HTML fragment holding one SVG (see the module)."""
    if not isinstance(state, RingState):
        raise ConfigError(f"ring_svg draws a RingState (ring_demo.ring_state), not "
                          f"{type(state).__name__}")
    if not isinstance(title, str) or not title:
        raise ConfigError("every picture has a title: give ring_svg one")
    body = [_text(WIDTH / 2, 14, title, 13)]
    body += _slots(state)
    body.append(_text(CX, CY - 9, f"{state.size} slots", 11))
    body.append(_text(CX, CY + 12, "slot = index & 31", 9, f"fill:{GREY}"))
    body += _indices(state)
    body += _key(state.touched is not None)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" style="max-width:100%;height:auto;font-family:sans-serif" '
            f'role="img"><title>{html.escape(title)}</title>' + "".join(body) + "</svg>")
