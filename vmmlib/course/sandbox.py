"""The sandbox every grading kernel runs in: bubblewrap (``bwrap``) plus resource limits.

A kernel is started as ``python -I -S -c LIMITS ... bwrap ... -- python -m ipykernel_launcher``:
the small launcher sets the resource limits (inherited by bwrap and the kernel) and execs
bwrap, which gives the kernel

* its own user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``), uid and gid
  65534 with no capabilities and no further user namespaces (the user namespace maps 65534 to
  the grader's own uid outside: the kernel holds none of that user's capabilities, and all it
  can write is its tmpfs and its socket folder), a new session, and death with its parent:
  when the grader stops the kernel (or dies), everything the student started goes with it,
  since the PID namespace ends with its first process;
* a file system of its own: the system's ``/usr`` and the Python installation read-only, the
  virtual environment read-only, the vmmlib package read-only (a copy with the question's
  reference functions withheld, :mod:`vmmlib.course.withheld`, mounted over the real one), a
  private empty ``/tmp`` (a size-capped tmpfs, also the working directory), ``/proc`` of its
  own PID namespace and a minimal ``/dev`` (its ``/dev/shm`` size-capped too); the rest of
  the course (solutions, exercises, tests), the submissions, the grader's output and other
  kernels do not exist in there;
* no network: with ``--unshare-net`` only a loopback of its own exists, so the kernel talks
  to nbval over ZMQ ``ipc`` sockets in one folder bound into the sandbox (and nothing else);
* a minimal environment (``--clearenv``, then only what is listed in :func:`kernel_env`);
* limits: address space (default 1 GiB; a numpy + ipykernel kernel peaks near 300 MB with
  ``MALLOC_ARENA_MAX=2``), CPU time, file size, no core files. The cap on captured output is
  enforced outside, by the grader (:mod:`vmmlib.course.kernel`).

``python -m vmmlib.course preflight`` tells an instructor whether this works on their machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

MIB = 1 << 20
#: The largest message the grader reads from a kernel's IOPub (bytes); ZMQ drops larger ones
#: unread (see vmmlib.course.kernel). An honest kernel sends at most 32 KiB at once.
MAX_MESSAGE = 4 * MIB
SANDBOX_UID = 65534  # "nobody"
#: Marks the processes of one grading run, so that its runner can find and kill what is left.
TOKEN_VARIABLE = "VMMLIB_NBVAL_RUN"
WORKDIR = "/tmp/work"  # the kernel's working directory (and HOME)

INSTALL_HINT = """\
Grading runs every student's code in a bubblewrap sandbox, and bubblewrap is not usable here:
{problem}
Install it with your system's package manager:
    Debian, Ubuntu:   sudo apt-get install bubblewrap
    Fedora, RHEL:     sudo dnf install bubblewrap
    Arch:             sudo pacman -S bubblewrap
It needs unprivileged user namespaces (on by default on most distributions; on Ubuntu 24.04
and later allow them with `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`).
To grade without a sandbox anyway (only work you trust: student code then runs with your
rights and can read the solutions), pass --unsafe-no-sandbox (make grade UNSAFE_NO_SANDBOX=1)."""

# Executed with `python -I -S -c`: set the limits, then exec the rest of argv. A limit this
# system does not support is left alone (only without the sandbox, e.g. on macOS).
_LAUNCHER = """\
import json, os, resource, sys
for name, (soft, hard) in json.loads(sys.argv[1]).items():
    try:
        which = getattr(resource, name)
        ceiling = resource.getrlimit(which)[1]  # never above what this shell may have
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (soft, hard))
    except (AttributeError, ValueError, OSError):
        if sys.argv[2].endswith("bwrap"):
            raise
os.execvp(sys.argv[2], sys.argv[2:])
"""


@dataclass(frozen=True)
class Limits:
    """What one grading kernel may use."""

    memory: int = 1024 * MIB  # address space, bytes
    cpu_seconds: int = 120  # CPU time of the whole kernel, all cells
    output: int = 1 * MIB  # captured output kept per cell (enforced by the grader)
    file_size: int = 64 * MIB  # largest file the kernel may write
    tmp_size: int = 64 * MIB  # its private /tmp

    def rlimits(self) -> dict[str, tuple[int, int]]:
        return {
            "RLIMIT_AS": (self.memory, self.memory),
            # SIGXCPU at the soft limit (reported as a crash), SIGKILL a little later
            "RLIMIT_CPU": (self.cpu_seconds, self.cpu_seconds + 5),
            "RLIMIT_FSIZE": (self.file_size, self.file_size),
            "RLIMIT_CORE": (0, 0),
        }


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def kernel_env(root: str, output_cap: int, pythonpath: str | None = None) -> dict[str, str]:
    """The kernel's whole environment; ``root`` is its private temporary folder."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": f"{root}/work",
        "TMPDIR": root,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "IPYTHONDIR": f"{root}/ipython",
        "JUPYTER_CONFIG_DIR": f"{root}/jupyter",
        "JUPYTER_DATA_DIR": f"{root}/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{root}/jupyter",
        "MPLCONFIGDIR": f"{root}/matplotlib",
        "MPLBACKEND": "agg",
        "MALLOC_ARENA_MAX": "2",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "VMMLIB_GRADING": "1",
        "VMMLIB_OUTPUT_CAP": str(output_cap),
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def _system_binds() -> list[str]:
    """/usr read-only, and /bin, /lib, /lib64, /sbin as the host has them (links or dirs)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib32", "/lib64", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _python_binds(package_dir: Path, package_copy: Path) -> list[str]:
    """The interpreter and the virtual environment read-only (where they really are, plus a
    link where they are named through one), then the (stubbed) vmmlib package over its home."""
    args: list[str] = []
    reals = {prefix: os.path.realpath(prefix) for prefix in (sys.base_prefix, sys.prefix)}
    outside_usr = [r for r in sorted(set(reals.values())) if not (r + "/").startswith("/usr/")]
    for real in outside_usr:
        if not any(real.startswith(other + "/") for other in outside_usr):
            args += ["--ro-bind", real, real]
    for prefix, real in reals.items():
        if os.path.abspath(prefix) != real:
            args += ["--symlink", real, os.path.abspath(prefix)]
    return args + ["--ro-bind", str(package_copy), str(package_dir)]


def bwrap_args(ipc_dir: Path, package_dir: Path, package_copy: Path, env: dict[str, str],
               limits: Limits) -> list[str]:
    """bwrap's options for one kernel (the command follows ``--``)."""
    args = [
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
        "--new-session", "--die-with-parent", "--hostname", "grading",
        "--clearenv",
    ]
    for key, value in env.items():
        args += ["--setenv", key, value]
    # the private /tmp first: the binds that follow go on top of it, so a course (and its
    # virtual environment) cloned under /tmp is still there inside the sandbox
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.tmp_size), "--tmpfs", "/dev/shm",  # tmpfs is memory too
             "--size", str(limits.tmp_size), "--tmpfs", "/tmp"]
    args += _system_binds() + _python_binds(package_dir, package_copy)
    args += ["--dir", WORKDIR, "--chdir", WORKDIR, "--bind", str(ipc_dir), str(ipc_dir)]
    return args


def _kernel(python: str) -> list[str]:
    return [python, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.enabled=False",
            "--IPKernelApp.outstream_class=vmmlib.course.capped_stream.CappedOutStream"]


def kernel_command(ipc_dir: Path, package_dir: Path, package_copy: Path, limits: Limits, *,
                   sandbox: bool = True) -> list[str]:
    """The kernel spec's argv; ``{connection_file}`` is filled in by jupyter_client.

    Without ``sandbox`` (``--unsafe-no-sandbox``) the kernel gets the same limits, environment
    and withheld functions (the stubbed copy first on PYTHONPATH), in a private folder next
    to ``ipc_dir``, and nothing else: it can read and write whatever the grader can."""
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(limits.rlimits())]
    if not sandbox:
        root = ipc_dir.parent / "tmp"
        (root / "work").mkdir(parents=True, exist_ok=True)
        env = kernel_env(str(root), limits.output, pythonpath=str(package_copy.parent))
        env[TOKEN_VARIABLE] = os.environ.get(TOKEN_VARIABLE, "")
        return launcher + ["env", "-i", *(f"{k}={v}" for k, v in env.items()),
                           *_kernel(sys.executable)]
    bwrap = find_bwrap()
    if bwrap is None:
        raise ConfigError(INSTALL_HINT.format(problem="bwrap is not installed"))
    env = kernel_env("/tmp", limits.output)
    return launcher + [bwrap, *bwrap_args(ipc_dir, package_dir, package_copy, env, limits),
                       "--", *_kernel(sys.executable)]


def preflight() -> str:
    """Start a sandboxed Python once; return what is wrong ('' when grading can be sandboxed)."""
    bwrap = find_bwrap()
    if bwrap is None:
        return "bwrap is not installed"
    package = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="vmmlib-preflight-") as ipc:
        args = [bwrap, *bwrap_args(Path(ipc), package, package, kernel_env("/tmp", 0),
                                   Limits()),
                "--", sys.executable, "-c", "import os, vmmlib; print(os.getuid())"]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap could not run: {error}"
    if done.returncode != 0 or done.stdout.strip() != str(SANDBOX_UID):
        return f"a test sandbox failed (exit code {done.returncode}): {done.stderr.strip()}"
    return ""


def require_sandbox() -> None:
    """ConfigError with install instructions unless sandboxed grading works here."""
    problem = preflight()
    if problem:
        raise ConfigError(INSTALL_HINT.format(problem=problem))
