"""The grading kernel's stdout/stderr: sent in small messages, and cut after a cap.

ipykernel sends whatever a cell printed since the last flush as one message, so a cell that
prints 50 MB at once would send one 50 MB message. The grader refuses messages that large
(:mod:`vmmlib.course.kernel` is what enforces the cap, since nothing in the kernel can be
trusted), so an honest student's big debug print would cost the whole cell. This stream, used
in the grading kernel only (``--IPKernelApp.outstream_class``), sends at most ``CHUNK``
characters per message and drops what a cell prints beyond ``VMMLIB_OUTPUT_CAP`` characters,
with one line saying so: the student's code then runs on, and the rest of the notebook with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ipykernel.iostream import OutStream

CHUNK = 32 * 1024


class CappedOutStream(OutStream):
    """An ipykernel OutStream with bounded message sizes and a per-cell output cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cap = int(os.environ.get("VMMLIB_OUTPUT_CAP") or 1 << 20)
        self._sent: dict[str, int] = {}

    def _flush_buffers(self) -> Iterator[tuple[dict, str]]:
        for parent, data in super()._flush_buffers():
            msg_id = str(parent.get("msg_id", ""))
            sent = self._sent.get(msg_id, 0)
            if len(self._sent) > 64:  # keep only recent cells
                self._sent = {msg_id: sent}
            room = max(0, self._cap - sent)
            self._sent[msg_id] = sent + len(data)
            if len(data) > room:
                cut = sent <= self._cap
                data = data[:room]
                if cut:
                    data += (f"\n[output cut: this cell printed more than {self._cap} "
                             "characters]\n")
            for start in range(0, len(data), CHUNK):
                yield parent, data[start:start + CHUNK]
