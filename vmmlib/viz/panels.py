"""State panels: what a stepping widget shows beside its log, built from three small sections.

A scenario's render function takes the object the Stepper steps and returns a ``Panel``::

    from vmmlib.viz.panels import Panel, key_value, register_table, text_block
    from vmmlib.viz.text import wire_text

    def serial_panel(vcpu):
        uart = uart_of(vcpu)
        return Panel(
            register_table("COM1 registers", uart.registers()),
            text_block("on the wire", wire_text(uart.output)),
            key_value("vCPU", {"RIP": f"{vcpu.rip:#x}", "steps": vcpu.steps}),
        )

The Stepper renders the panel at the previous step too, and **highlights every value the last
step changed** (a text that grew has only its new tail highlighted). Sections:

* ``register_table(title, registers, columns=2)`` — byte registers by name: value in hex and
  bits 7…0 (in two nibbles); other values as text. ``columns`` puts the table side by side.
* ``key_value(title, mapping)`` — one line per key: short facts ("kind: MMIO"); a value too
  long for its place wraps at its spaces.
* ``text_block(title, text)`` — a monospace block (a wire, a screen row, a bit pattern).

Values are turned into text when the section is made, so a panel is a snapshot. ``Panel.html
(previous)`` draws it (``previous``: the panel of the step before, or None), ``Panel.text()``
gives its plain text (what tests read), ``Panel.values()`` what is compared. A panel wider than
its place wraps its sections. ``render_state`` is the Stepper's default panel (each vCPU, and
every device with ``registers()``, with a serial port's wire); ``vcpu_section`` and
``device_sections`` are its parts. Plain Python: no matplotlib, no ipywidgets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .palette import ROLES
from .text import wire_text

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

FONT = "font-family:monospace;font-size:11px;line-height:1.35"
_TITLE = "font-weight:bold;font-size:11px;margin:0 0 2px 0;font-family:sans-serif"
_CELL = "padding:0 6px 0 0;text-align:left;white-space:pre;vertical-align:top"
_WRAP = "padding:0 6px 0 0;text-align:left;white-space:pre-wrap;vertical-align:top"
_MARK = f"background:{ROLES['highlight']};font-weight:bold"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _mark(text: str, changed: bool) -> str:
    body = html.escape(text)
    return f'<span style="{_MARK}">{body}</span>' if changed else body


class Section:
    """One titled part of a panel: an ordered mapping of names to display strings."""

    kind = "section"

    def __init__(self, title: str, items: Mapping[str, str]) -> None:
        if not isinstance(title, str):
            raise ConfigError(f"a panel section's title is a string, not {title!r}")
        self.title = title
        self.items = dict(items)

    def values(self) -> dict[tuple[str, str], str]:
        """What the Stepper compares between steps: (section title, name) -> text."""
        return {(self.title, name): value for name, value in self.items.items()}

    def _changed(self, previous: Mapping[tuple[str, str], str] | None, name: str) -> bool:
        if previous is None:
            return False
        return previous.get((self.title, name)) != self.items[name]

    def html(self, previous: Mapping[tuple[str, str], str] | None = None) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def _head(self) -> str:
        return f'<div style="{_TITLE}">{html.escape(self.title)}</div>' if self.title else ""


class KeyValue(Section):
    """``key: value`` lines (see ``key_value``)."""

    kind = "key_value"

    def html(self, previous=None) -> str:
        rows = "".join(
            "<tr>"
            + (f'<td style="{_CELL};color:#555">{html.escape(k)}</td>' if k else "")
            + f'<td style="{_WRAP}"{"" if k else " colspan=2"}>'
            f"{_mark(v, self._changed(previous, k))}</td></tr>"
            for k, v in self.items.items()
        )
        table = f'<table style="border-collapse:collapse;{FONT}">{rows}</table>'
        return self._head() + table

    def text(self) -> str:
        lines = [f"{k}: {v}" if k else v for k, v in self.items.items()]
        return "\n".join([self.title, *lines] if self.title else lines)


class RegisterTable(Section):
    """Registers: name, hex, bits (see ``register_table``)."""

    kind = "register_table"

    def __init__(self, title: str, items: Mapping[str, str], bits: Mapping[str, str],
                 columns: int) -> None:
        super().__init__(title, items)
        self.bits = dict(bits)
        self.columns = columns

    def html(self, previous=None) -> str:
        names = list(self.items)
        per_column = -(-len(names) // self.columns) if names else 0
        groups = [names[i : i + per_column] for i in range(0, len(names), per_column or 1)]
        rows = []
        for r in range(per_column):
            cells = []
            for g, group in enumerate(groups):
                gap = "padding-left:14px;" if g else ""
                if r >= len(group):
                    cells.append(f'<td style="{_CELL}"></td>' * 3)
                    continue
                name = group[r]
                changed = self._changed(previous, name)
                cells.append(
                    f'<td style="{_CELL};{gap}color:#555">{html.escape(name)}</td>'
                    f'<td style="{_CELL}">{_mark(self.items[name], changed)}</td>'
                    f'<td style="{_CELL};color:#555">{_mark(self.bits.get(name, ""), changed)}</td>'
                )
            rows.append("<tr>" + "".join(cells) + "</tr>")
        table = f'<table style="border-collapse:collapse;{FONT}">{"".join(rows)}</table>'
        return self._head() + table

    def text(self) -> str:
        lines = [f"{k} {v} {self.bits.get(k, '')}".rstrip() for k, v in self.items.items()]
        return "\n".join([self.title, *lines] if self.title else lines)


class TextBlock(Section):
    """A monospace block (see ``text_block``)."""

    kind = "text_block"

    def __init__(self, title: str, body: str) -> None:
        super().__init__(title, {"": body})

    @property
    def body(self) -> str:
        return self.items[""]

    def html(self, previous=None) -> str:
        body = self.body
        old = None if previous is None else previous.get((self.title, ""))
        if old is None or old == body:
            shown = html.escape(body) if body else '<span style="color:#777">(empty)</span>'
        elif body.startswith(old):  # it grew: mark the new tail only
            shown = html.escape(old) + _mark(body[len(old) :], True)
        else:
            shown = _mark(body, True)
        block = f'<div style="{FONT};white-space:pre">{shown}</div>'
        return self._head() + block

    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.title else self.body


def key_value(title: str, mapping: Mapping[str, Any]) -> KeyValue:
    """A section of ``name: value`` lines; values are shown with ``str()``."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"key_value takes a mapping of name -> value, not {mapping!r}")
    return KeyValue(title, {str(k): _text(v) for k, v in mapping.items()})


def register_table(title: str, registers: Mapping[str, Any], columns: int = 2) -> RegisterTable:
    """A table of registers: a byte value shows as ``0x60`` with its bits ``0110 0000``;
    a wider integer in hex; anything else as text. Made for ``Uart16550.registers()``."""
    if not isinstance(registers, Mapping):
        raise ConfigError(
            f"register_table takes a mapping of name -> value, not {registers!r}"
        )
    if not isinstance(columns, int) or columns < 1:
        raise ConfigError(f"columns must be a positive integer, not {columns!r}")
    items, bits = {}, {}
    for name, value in registers.items():
        name = str(name)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= 0xFF:
                b = f"{value:08b}"
                items[name], bits[name] = f"0x{value:02X}", f"{b[:4]} {b[4:]}"
            else:
                items[name] = f"{value:#x}"
        else:
            items[name] = _text(value)
    return RegisterTable(title, items, bits, columns)


def text_block(title: str, text: str) -> TextBlock:
    """A monospace block of ``text`` (kept as it is: newlines break lines, no wrapping)."""
    if not isinstance(text, str):
        raise ConfigError(f"text_block takes a string, not {type(text).__name__}")
    return TextBlock(title, text)


class Panel:
    """A state panel: sections side by side (wrapping when the place is narrow)."""

    def __init__(self, *sections: Section) -> None:
        for s in sections:
            if not isinstance(s, Section):
                raise ConfigError(
                    "a Panel holds sections made by key_value, register_table or text_block, "
                    f"not {type(s).__name__}"
                )
        self.sections = sections

    def values(self) -> dict[tuple[str, str], str]:
        """Every (section title, name) -> text, for comparing two steps."""
        out: dict[tuple[str, str], str] = {}
        for s in self.sections:
            out.update(s.values())
        return out

    def changed(self, previous: Panel | None) -> list[tuple[str, str]]:
        """The (section, name) pairs whose text differs from ``previous`` (all new ones too)."""
        if previous is None:
            return []
        old = previous.values()
        return [key for key, value in self.values().items() if old.get(key) != value]

    def html(self, previous: Panel | None = None) -> str:
        """The panel as HTML; what changed since ``previous`` is highlighted."""
        old = None if previous is None else previous.values()
        cells = "".join(
            f'<div style="margin:0 16px 6px 0">{s.html(old)}</div>' for s in self.sections
        )
        return f'<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{cells}</div>'

    def text(self) -> str:
        """The panel as plain text, section after section."""
        return "\n".join(s.text() for s in self.sections)


# ---------------------------------------------------------------------------------------------
# the default state panel: vCPUs and the devices that have registers()
# ---------------------------------------------------------------------------------------------
def render_registers(
    registers: Mapping[str, Any], title: str | None = None, columns: int = 1
) -> str:
    """An HTML table of registers: name, value in hex, and the bits of byte-wide values
    (``vmmlib.viz.panels.register_table`` drawn on its own, without highlighting)."""
    return register_table(title or "", registers, columns).html()


def _vcpus_of(obj: Any) -> list[Any]:
    if hasattr(obj, "rip") and hasattr(obj, "domain"):
        return [obj]
    found = getattr(obj, "vcpus", None) or ([obj.vcpu] if hasattr(obj, "vcpu") else [])
    return list(found)


def vcpu_section(vcpu: Any) -> Any:
    """A vCPU as a panel section: RIP, RAX, steps taken and whether it runs."""
    state = "crashed" if vcpu.crashed else "done" if vcpu.done else "running"
    return key_value(
        f"vCPU {vcpu.name}",
        {"RIP": f"{vcpu.rip:#x}", "RAX": f"{vcpu.rax:#x}", "steps": vcpu.steps, "state": state},
    )


def device_sections(obj: Any) -> list[Any]:
    """Every device with ``registers()`` on the domains' buses and the machine's port bus,
    as register tables; a serial port also shows what reached its wire."""
    sections: list[Any] = []
    seen: set[int] = set()
    for vcpu in _vcpus_of(obj):
        dom = vcpu.domain
        for bus in (dom.ports, dom.mmio, dom.machine.ports):
            for region in bus.regions:
                dev = region.device
                if id(dev) in seen or not callable(getattr(dev, "registers", None)):
                    continue
                seen.add(id(dev))
                sections.append(register_table(f"{region.name} registers", dev.registers()))
                wire = getattr(dev, "output", None)
                if isinstance(wire, bytes):  # a serial port: what reached the wire so far
                    sections.append(text_block(f"{region.name} wire", wire_text(wire)))
    return sections


def render_state(obj: Any) -> Panel | str:
    """The default state panel: each vCPU and every device that has ``registers()`` (on the
    domains' emulated buses and the machine's port bus), with a serial port's wire."""
    vcpus = _vcpus_of(obj)
    if not vcpus:
        return f"<pre>{html.escape(_ADDRESS.sub('', repr(obj)))}</pre>"
    return Panel(*(vcpu_section(v) for v in vcpus), *device_sections(obj))


__all__ = [
    "KeyValue",
    "Panel",
    "RegisterTable",
    "Section",
    "TextBlock",
    "device_sections",
    "key_value",
    "register_table",
    "render_registers",
    "render_state",
    "text_block",
    "vcpu_section",
]
