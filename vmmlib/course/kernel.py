"""The grader's side of a grading kernel: nbval's ``RunningKernel``, started in the sandbox.

Runs in the grader's pytest process (never in the sandbox) and differs from nbval's kernel in
four ways:

* the kernel is started with :func:`vmmlib.course.sandbox.kernel_command` through a kernel spec
  of its own, over ZMQ ``ipc`` sockets in a private folder (the only one bound into the
  sandbox), with ipykernel's message-based interrupt (signals cannot cross the sandbox's new
  session);
* every wait for a message also watches the kernel process: a kernel that dies (a segfault,
  the CPU-time limit) raises :class:`KernelDied` with the signal's name at once, instead of
  nbval waiting for the cell timeout;
* what the kernel sends is capped here, where the student cannot change it: the IOPub socket
  refuses any single message over ``MAX_MESSAGE`` bytes (ZMQ drops it before it is read), and
  a cell's output beyond ``Limits.output`` is cut, with a note, so a kernel printing without
  end cannot fill the grader's memory;
* a kernel interrupted at the cell timeout that does not even acknowledge the interrupt (its
  main thread holds the GIL in C code, so ipykernel's control thread cannot run) is killed at
  once (``hung``), instead of nbval waiting for outputs that never come;
* before the kernel is stopped, the peak memory of everything in its sandbox is read from
  ``/proc``, so the tests can show that the limits hold.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
from jupyter_client import BlockingKernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbval.kernel import RunningKernel

from .checks import EMISSION_METADATA
from .sandbox import MAX_MESSAGE, TOKEN_VARIABLE, Limits, kernel_command
from .withheld import PACKAGE_DIR

POLL = 0.2  # seconds between checks that the kernel still lives
INTERRUPT_GRACE = 1.0  # seconds an interrupted kernel has to acknowledge before it is killed


class KernelDied(RuntimeError):
    """The kernel process ended while a cell was running; ``how`` says how."""

    def __init__(self, how: str) -> None:
        super().__init__(f"the kernel died: {how}")
        self.how = how


def describe_exit(code: int | None, limits: Limits) -> str:
    """A kernel's end as the student reads it: the signal's name, or the exit code."""
    if code is None:
        return "it stopped"
    number = -code if code < 0 else code - 128 if code > 128 else None
    try:
        name = signal.Signals(number).name if number else None
    except ValueError:
        name = None
    if name is None:
        return f"it exited with code {code}"
    if name == "SIGXCPU":
        return f"crashed: {name} (it used up its CPU-time limit of {limits.cpu_seconds} s)"
    return f"crashed: {name}"


class CappedClient(BlockingKernelClient):
    """A kernel client whose IOPub socket refuses messages over ``MAX_MESSAGE`` bytes."""

    def _create_connected_socket(self, channel: str, identity: bytes | None = None
                                 ) -> zmq.Socket:
        if channel != "iopub":
            return super()._create_connected_socket(channel, identity)
        sock = self.context.socket(zmq.SUB)
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)  # before connecting, so it applies
        # ZMQ drops the connection of a peer that sends a message over the limit (and then
        # reconnects): the monitor tells the grader that output was refused
        self.refusals = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(self._make_url("iopub"))
        return sock

    def refused(self) -> bool:
        """Has the kernel sent a message over the limit since the last call?"""
        monitor = getattr(self, "refusals", None)
        found = False
        try:
            while monitor is not None and not monitor.closed and monitor.poll(0):
                monitor.recv_multipart()
                found = True
        except zmq.ZMQError:  # the channel was closed with the kernel
            pass
        return found


class _OneSpec(KernelSpecManager):
    """A kernel spec manager that knows one kernel: the sandboxed one."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


@dataclass
class CellOutput:
    """What the grader kept of the cell that ran last."""

    cut: bool = False
    refused: bool = False  # a message over MAX_MESSAGE was dropped
    error: str = ""
    stray: int = 0  # characters of output outside the check's emission
    emitted: int = 0


def _size(content: dict[str, Any], kind: str) -> int:
    if kind == "stream":
        return len(content.get("text") or "")
    if kind == "error":
        return sum(len(str(line)) for line in content.get("traceback") or ()) + len(
            str(content.get("evalue", "")))
    data = content.get("data")
    return sum(len(str(value)) for value in data.values()) if isinstance(data, dict) else 0


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def peak_memory_kib(root: int) -> int:
    """The largest peak resident size (VmHWM) of ``root`` and its descendants, in KiB."""
    peak = 0
    for pid in _descendants(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return peak


class SandboxedKernel(RunningKernel):
    """nbval's RunningKernel for one graded notebook (see the module doc)."""

    def __init__(self, scratch: Path, package_copy: Path, limits: Limits, *, sandbox: bool,
                 startup_timeout: float) -> None:
        self.limits = limits
        self.cell = CellOutput()
        self.peak_kib = 0
        self.hung = False
        self.folder = Path(tempfile.mkdtemp(prefix="k", dir=scratch))
        self.folder.chmod(0o755)
        ipc = self.folder / "ipc"
        ipc.mkdir()
        argv = kernel_command(ipc, PACKAGE_DIR, package_copy, limits, sandbox=sandbox)
        spec = KernelSpec(argv=argv, display_name="vmmlib grading kernel", language="python",
                          interrupt_mode="message", env={}, metadata={})
        self.km = KernelManager(
            kernel_name="vmmlib-grading", kernel_spec_manager=_OneSpec(spec),
            transport="ipc", ip=str(ipc / "kernel"), connection_file=str(ipc / "kernel.json"),
            client_class=f"{__name__}.CappedClient", transport_encryption="disabled",
        )
        self._pid = 0
        self._log = open(self.folder / "kernel.log", "wb")  # closed by cleanup()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               TOKEN_VARIABLE: os.environ.get(TOKEN_VARIABLE, "")}
        self.km.start_kernel(stdout=self._log, stderr=self._log, cwd=str(self.folder), env=env)
        self._pid = self.km.provisioner.process.pid
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
            self._ensure_iopub_up()
        except (RuntimeError, Empty) as error:
            self.cleanup()
            raise RuntimeError(f"the grading kernel did not start ({error}); its log ends:\n"
                               f"{self.log_tail()}") from None

    # -- waiting, with an eye on the process ---------------------------------------------
    def exit_description(self) -> str:
        process = getattr(self.km.provisioner, "process", None) if hasattr(self, "km") else None
        return describe_exit(process.poll() if process is not None else None, self.limits)

    def _wait(self, get: Callable[..., dict], timeout: float | None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.hung:
                raise KernelDied("killed: it did not answer the interrupt at the cell timeout")
            left = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
            try:
                return get(timeout=left)
            except Empty:
                if not self.is_alive():
                    raise KernelDied(self.exit_description()) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def get_message(self, stream: str, timeout: float | None = None) -> dict:
        if stream == "shell":
            return self._wait(self.kc.get_shell_msg, timeout)
        if stream != "iopub":
            raise ValueError(f"invalid stream {stream!r}")
        try:
            return self._capped(self._wait(self.kc.get_iopub_msg, timeout))
        finally:
            if not self.hung and self.kc.refused():
                self.cell.refused = True

    def interrupt(self) -> None:
        """ipykernel's message interrupt; a kernel that does not answer it is killed."""
        if not self.is_alive():
            return
        super().interrupt()
        control = getattr(self.km, "_control_socket", None)
        if control is not None and control.poll(int(INTERRUPT_GRACE * 1000)):
            control.recv_multipart()  # the interrupt_reply: the kernel is responsive
            return
        self.hung = True
        self.stop()

    def execute_cell_input(self, cell_input: str, allow_stdin: bool | None = None) -> str:
        self.cell = CellOutput()
        return super().execute_cell_input(cell_input, allow_stdin=allow_stdin)

    # -- the output cap ------------------------------------------------------------------
    def _capped(self, msg: dict) -> dict:
        kind, content = msg.get("msg_type"), msg.get("content")
        if kind not in ("stream", "display_data", "execute_result", "update_display_data",
                        "error") or not isinstance(content, dict):
            return msg
        size = _size(content, kind)
        metadata = content.get("metadata")
        emission = kind == "display_data" and isinstance(metadata, dict) and isinstance(
            metadata.get(EMISSION_METADATA), dict)
        used = self.cell.emitted if emission else self.cell.stray
        if emission:
            self.cell.emitted += size
        else:
            self.cell.stray += size
        if kind == "error":
            self.cell.error = f"{content.get('ename')}: {content.get('evalue')}"[:500]
        if used + size <= self.limits.output:
            return msg
        note = "" if self.cell.cut else (
            f"\n[output cut: the cell printed more than {self.limits.output} characters]\n")
        self.cell.cut = True
        if kind == "stream":
            content["text"] = note
        elif kind == "error":
            content["evalue"] = str(content.get("evalue", ""))[:500]
            content["traceback"] = [note]
        else:
            content["data"] = {"text/plain": note}
        return msg

    # -- the end -------------------------------------------------------------------------
    def log_tail(self, lines: int = 15) -> str:
        try:
            self._log.flush()
            text = (self.folder / "kernel.log").read_text(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self._pid:
            self.peak_kib = max(self.peak_kib, peak_memory_kib(self._pid))
        super().stop()

    def cleanup(self) -> None:
        """Stop the kernel if it still runs and remove its folder (ipc sockets, log)."""
        if hasattr(self, "km"):
            try:
                if self.km.is_alive():
                    self.stop()
                else:
                    self.kc.stop_channels()
                    self.km.cleanup_resources()
                    del self.km
            except Exception:  # a kernel half started or half stopped: kill what is left
                self._kill_tree()
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _kill_tree(self) -> None:
        if not self._pid:
            return
        for pid in reversed(_descendants(self._pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
