"""A paravirtualized guest's console: ask Xen to print the whole buffer with one
``HYPERVISOR_console_io(CONSOLEIO_write, count, buffer)`` hypercall."""

from __future__ import annotations

from ..cpu.ops import Guest, Hypercall
from ..xen.hypercalls import CONSOLEIO_write, HYPERVISOR_console_io


def pv_console_write(text: str | bytes) -> Guest:
    """The paravirtual way: one hypercall hands the whole buffer to the hypervisor."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    return (yield Hypercall(HYPERVISOR_console_io, (CONSOLEIO_write, data)))
