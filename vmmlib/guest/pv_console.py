"""A paravirtualized guest's console: ask Xen to print a whole buffer with one hypercall,
``HYPERVISOR_console_io(CONSOLEIO_write, count, buffer)``: the text goes into the guest's
memory first (one block store), and the hypercall passes its address and length."""

from __future__ import annotations

from ..cpu.ops import Guest, Hypercall, StoreBlock
from ..xen.hypercalls import CONSOLEIO_write, HYPERVISOR_console_io

#: Where the guest keeps the text it hands to Xen (a page of its RAM; paging off).
CONSOLE_BUFFER = 0x8000


def pv_console_write(text: str | bytes, buffer: int = CONSOLE_BUFFER) -> Guest:
    """The paravirtual way: one hypercall hands the whole buffer to the hypervisor; returns
    what Xen answers (0, or a negative errno such as -EPERM)."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    yield StoreBlock(buffer, data)
    return (yield Hypercall(HYPERVISOR_console_io, (CONSOLEIO_write, len(data), buffer)))
