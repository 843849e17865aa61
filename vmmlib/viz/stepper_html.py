"""The HTML a ``Stepper`` shows, as plain Python (no ipywidgets): the event log's lines with the
newest highlighted, and the text of an HTML fragment or a figure read back (what tests and
``Stepper.state_text()`` read). Also useful on their own in a notebook."""

from __future__ import annotations

import html
import re
from typing import Any

from ..errors import ConfigError
from ..trace import Trace
from .palette import ROLES
from .panels import FONT
from .text import log_line, log_widths

_TAG = re.compile(r"<[^>]+>")
_LOG = f"{FONT};margin:0;white-space:pre"


def html_to_text(markup: str) -> str:
    """The plain text of an HTML fragment: rows and line breaks become newlines."""
    markup = re.sub(r"</(tr|div|p|caption|h\d)>|<br\s*/?>", "\n", markup)
    markup = re.sub(r"</t[dh]>", " ", markup)
    text = html.unescape(_TAG.sub("", markup))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def render_trace_tail(
    trace: Trace,
    stop: int | None = None,
    n: int = 12,
    new_from: int | None = None,
    widths: tuple[int, int, int] | None = None,
) -> str:
    """HTML of the trace's events up to ``stop`` as log lines: the last ``n``, with
    ``new_from`` … highlighted (all new events are shown, however many). ``widths``: the
    columns of ``vmmlib.viz.text.log_widths`` (default: those of the lines shown)."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"render_trace_tail needs a Trace, not {type(trace).__name__}")
    stop = len(trace) if stop is None else stop
    if not 0 <= stop <= len(trace):
        raise ConfigError(f"stop {stop} is outside the trace (0-{len(trace)})")
    new_from = stop if new_from is None else max(0, min(new_from, stop))
    start = max(0, min(stop - n, new_from))
    events = [trace[i] for i in range(start, stop)]
    widths = widths or log_widths(events)
    out = [f'<div style="{_LOG}">']
    if start:
        out.append(f'<div style="color:#777">… {start:,} earlier event(s)</div>')
    if not events:
        out.append('<div style="color:#777">(nothing has run yet: press step)</div>')
    highlight = f"background:{ROLES['highlight']};font-weight:bold"
    for i, event in enumerate(events, start):
        style = f' style="{highlight}"' if i >= new_from else ""
        out.append(f"<div{style}>{html.escape(log_line(event, widths))}</div>")
    out.append("</div>")
    return "".join(out)


def _figure_text(fig: Any) -> str:
    """The words of a figure: its titles, axis labels and texts (not the tick labels)."""
    texts = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
    for ax in fig.axes:
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        texts += [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
    return "\n".join(t for t in texts if t)
