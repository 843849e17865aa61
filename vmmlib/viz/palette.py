"""The one palette every picture uses: Okabe & Ito's eight colour-blind-safe colours.

Okabe M., Ito K. (2008), "Color Universal Design (CUD): how to make figures and
presentations that are friendly to colorblind people" — eight colours that stay distinct
under the common colour-vision deficiencies. Pictures never pick colours themselves: they
ask for a *role* (``ROLES["intercepted"]``), an exit reason (``exit_colour``), a trace event
kind (``event_colour``) or a device (``device_colour``), so the same thing has the same
colour in every chapter.

Plain hex strings only: this module does not import matplotlib.
"""

from __future__ import annotations

import zlib

#: The eight Okabe-Ito colours.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: Neutral greys for "nothing here" (not part of the eight, and not needed to tell hues apart).
GREY = "#999999"
LIGHT_GREY = "#DDDDDD"

_C = OKABE_ITO

#: What each colour means, across the course.
ROLES: dict[str, str] = {
    # address spaces
    "ram": _C["blue"],
    "mmio": _C["orange"],
    "hole": GREY,  # nothing answers: reads float to all ones
    "present": _C["bluish_green"],  # shadow / page-table entry present
    "not_present": LIGHT_GREY,
    # port intercepts
    "intercepted": _C["vermillion"],  # bit = 1: the access exits to the hypervisor
    "direct": _C["bluish_green"],  # bit = 0: the guest reaches the port itself
    "emulated": _C["sky_blue"],  # a device the hypervisor emulates for the domain
    "passthrough": _C["bluish_green"],  # a real device the domain owns: reached directly
    "machine": GREY,  # a real device the domain may not touch
    "pc_device": _C["blue"],  # a device of the PC's port map (a label, not a model)
    # highlighting
    "highlight": "#FBF6C2",  # a pale tint of Okabe-Ito yellow: the newest trace lines
    "zoom": _C["black"],
    "text": _C["black"],
}

#: Exit reasons by what caused them; VMX and SVM names of the same event share a colour.
EXIT_COLOURS: dict[str, str] = {
    "IO_INSTRUCTION": _C["vermillion"],  # VMX basic exit reason 30
    "IOIO": _C["vermillion"],  # SVM exit code 0x7B
    "EXCEPTION_NMI": _C["orange"],  # VMX exit reason 0 (here: #PF under shadow paging)
    "EXCP_PF": _C["orange"],  # SVM exit code 0x4E
    "EPT_VIOLATION": _C["yellow"],
    "NPF": _C["yellow"],
    "VMCALL": _C["reddish_purple"],  # VMX exit reason 18
    "VMMCALL": _C["reddish_purple"],  # SVM exit code 0x81
}

#: Trace event kinds other than exits (see vmmlib/trace.py and the hypervisor's handlers).
EVENT_COLOURS: dict[str, str] = {
    "exit": _C["vermillion"],
    "emulate": _C["sky_blue"],
    "hypercall": _C["reddish_purple"],
    "io": _C["bluish_green"],  # a direct (not intercepted) port access
    "load": _C["blue"],
    "store": _C["blue"],
    "shadow-fill": _C["yellow"],
    "inject": _C["black"],
    "halt": GREY,
    "crash": _C["black"],
    # chapter 02-03: requests to dom0 and back
    "ioreq": _C["reddish_purple"],
    "ioreq-done": _C["reddish_purple"],
    "bufioreq": _C["yellow"],
    "evtchn": _C["orange"],
    "upcall": _C["bluish_green"],
    "take": _C["sky_blue"],
    "request": _C["sky_blue"],  # chapter 03: a blkif request queued / copied
    "push": _C["sky_blue"],  # blkfront publishes req_prod
    "grant-map": _C["yellow"],  # blkback maps a segment's grant
    "response": _C["bluish_green"],  # a blkif response written / taken
    "access": _C["blue"],  # a disk backend's read or write
    "set-irq": _C["vermillion"],
    "irq": _C["vermillion"],
    "block": GREY,
    "entry": _C["bluish_green"],
    "trap": _C["orange"],
}

#: Devices the course names, so COM1 looks the same in every chapter.
DEVICE_COLOURS: dict[str, str] = {
    "COM1": _C["sky_blue"],
    "COM2": _C["blue"],
    "VGA text": _C["orange"],
    "VGA": _C["orange"],
    "IDE primary": _C["reddish_purple"],
    "POST / I/O delay": _C["bluish_green"],
}

#: One colour per run or guest a picture compares side by side (two drivers, two guests
#: sharing a wire), in this order; none is vermillion ("intercepted").
GUEST_COLOURS: tuple[str, ...] = (_C["orange"], _C["blue"], _C["reddish_purple"], _C["sky_blue"])

#: Colours handed out to devices the table above does not name (never vermillion, which
#: means "intercepted", nor yellow, which is too pale for a thin span on white).
_DEVICE_CYCLE = (
    _C["sky_blue"],
    _C["orange"],
    _C["reddish_purple"],
    _C["blue"],
    _C["bluish_green"],
    _C["black"],
)


def device_colour(name: str) -> str:
    """The colour of the device called ``name`` (stable across runs and processes)."""
    if name in DEVICE_COLOURS:
        return DEVICE_COLOURS[name]
    return _DEVICE_CYCLE[zlib.crc32(name.encode()) % len(_DEVICE_CYCLE)]


def exit_colour(reason: str) -> str:
    """The colour of an exit reason (VMX or SVM name); unknown reasons are grey."""
    return EXIT_COLOURS.get(reason, GREY)


def event_colour(kind: str) -> str:
    """The colour of a trace event kind; unknown kinds are grey."""
    return EVENT_COLOURS.get(kind, GREY)


__all__ = [
    "DEVICE_COLOURS",
    "EVENT_COLOURS",
    "EXIT_COLOURS",
    "GREY",
    "GUEST_COLOURS",
    "LIGHT_GREY",
    "OKABE_ITO",
    "ROLES",
    "device_colour",
    "event_colour",
    "exit_colour",
]
