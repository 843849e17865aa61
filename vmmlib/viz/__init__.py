"""The teaching layer: plots of address spaces and exits, a stepping widget, and text.

``from vmmlib.viz import plot_port_space, Stepper`` works, but nothing heavy is imported
until a name is used: matplotlib is loaded with the picture modules (``vmmlib.viz.portspace``,
``vmmlib.viz.memorymap``, ``vmmlib.viz.exitplots``, ``vmmlib.viz.serial``,
``vmmlib.viz.screen``, ``vmmlib.viz.swimlane``, chapter 02's ``vmmlib.viz.state_diagram`` and
``vmmlib.viz.transfers``, chapter 03's ``vmmlib.viz.split_costs`` and ``vmmlib.viz.ring``
(the ring picture, the lost wake-up's timelines, notifications per request), and their shared
``vmmlib.viz.figure``), ipywidgets with
``vmmlib.viz.stepper`` (and the chapters' state panels, ``vmmlib.viz.intercepts``), and
``import vmmlib`` never loads either. Plain Python: ``vmmlib.viz.palette`` (the colours),
``vmmlib.viz.text`` (trace logs, wire text, bit fields), ``vmmlib.viz.panels`` (the
sections a state panel is made of), chapter 02's ``vmmlib.viz.device_model`` (recorded runs
stepped hop by hop, the ioreq-slot panel) and ``vmmlib.viz.readback`` (read-back tables),
chapter 03's ``vmmlib.viz.ring_geometry`` (the ring picture's layout) and
``vmmlib.viz.ring_svg`` (the ring as SVG, for its stepper).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "portspace": ("plot_port_space", "port_space_data"),
    "memorymap": ("plot_memory_map", "memory_map_data"),
    "exitplots": ("plot_exits_over_time", "plot_exit_counts", "exit_histogram", "exit_counts"),
    "screen": ("plot_screen", "screen_data"),
    "serial": ("plot_polls_per_character", "uart_polls"),
    "stepper": (
        "Stepper",
        "render_registers",
        "render_state",
        "render_trace_tail",
        "render_last_exit",
        "html_to_text",
    ),
    "swimlane": ("plot_swimlanes", "swimlane_data", "LANES"),
    "state_diagram": ("plot_ide_states", "ide_state_data"),
    "transfers": ("plot_transfer_styles", "plot_backends", "plot_buffered_ring"),
    "split_costs": ("plot_paths", "plot_journey", "paths_data", "journey_steps"),
    "ring": ("plot_ring", "ring_panel", "ring_picture", "plot_interleaving", "plot_notifications"),
    "ring_svg": ("ring_svg",),
    "device_model": ("record", "Recording", "RecordedSteps", "ioreq_panel"),
    "readback": ("readback_table", "ReadbackTable"),
    "intercepts": ("serial_panel", "mmio_panel"),
    "panels": ("Panel", "key_value", "register_table", "text_block", "vcpu_section"),
    "text": (
        "trace_log",
        "wire_text",
        "bit_fields",
        "VMX_IO_QUALIFICATION",
        "SVM_IOIO_EXITINFO1",
        "PF_ERROR_CODE",
    ),
    "palette": ("ROLES", "OKABE_ITO", "device_colour", "exit_colour", "event_colour"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
