"""The grading sandbox itself (vmmlib.course.sandbox), probed with a plain Python inside it.

The same bubblewrap options and limits a grading kernel gets, with a probe instead of the
kernel: what it can see, be and use. (The graded class in test_course_grading.py shows the
same from inside real kernels, against real attacks.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmmlib.course import sandbox
from vmmlib.course.sandbox import MIB, Limits, bwrap_args, kernel_env
from vmmlib.course.withheld import PACKAGE_DIR

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                reason="bubblewrap is not installed (CI installs it)")

PROBE = r"""
import json, os, resource, socket, sys
found = {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
         "root": sorted(os.listdir("/")), "env": sorted(os.environ),
         "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
         "interfaces": [name for _, name in socket.if_nameindex()],
         "limits": {name: resource.getrlimit(getattr(resource, name))
                    for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_CORE")},
         "tmp": sorted(os.listdir("/tmp"))}
for name, path in json.loads(sys.argv[1]).items():
    found[name] = os.path.exists(path)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2)
    found["network"] = True
except OSError:
    found["network"] = False
try:
    open(os.path.join(sys.argv[2], "planted.py"), "w")
    found["package_writable"] = True
except OSError:
    found["package_writable"] = False
import vmmlib
found["vmmlib"] = vmmlib.__file__
print(json.dumps(found))
"""


def probe(tmp_path: Path, limits: Limits, code: str = PROBE, *extra: str):
    ipc = tmp_path / "ipc"
    ipc.mkdir(exist_ok=True)
    env = kernel_env("/tmp", limits.output)
    command = [sys.executable, "-I", "-S", "-c", sandbox._LAUNCHER,
               json.dumps(limits.rlimits()), shutil.which("bwrap"),
               *bwrap_args(ipc, PACKAGE_DIR, PACKAGE_DIR, env, limits),
               "--", sys.executable, "-c", code, *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_kernel_sees_only_what_it_needs_and_is_nobody(tmp_path):
    secret = tmp_path / "submissions" / "bob" / "answer.ipynb"
    secret.parent.mkdir(parents=True)
    secret.write_text("{}")
    places = {"solutions": str(ROOT / "solutions"), "exercises": str(ROOT / "exercises"),
              "tests": str(ROOT / "tests"), "classmate": str(secret), "home": "/root/.bashrc",
              "etc": "/etc/passwd"}
    done = probe(tmp_path, Limits(), PROBE, json.dumps(places), str(PACKAGE_DIR))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["uid"], seen["gid"], seen["cwd"]) == (65534, 65534, "/tmp/work")
    assert not any(seen[name] for name in places), seen
    assert seen["network"] is False and seen["interfaces"] == ["lo"]
    assert seen["package_writable"] is False
    assert seen["vmmlib"] == str(PACKAGE_DIR / "__init__.py")
    assert set(seen["env"]) - {"PWD"} == set(kernel_env("/tmp", 0))  # none of the grader's
    assert len(seen["pids"]) <= 2  # its own PID namespace: bwrap's init and itself
    # a private /tmp: its working folder, and the ways to what is bound into it (the socket
    # folder; the Python environment and the package if they live under /tmp)
    bound = [tmp_path, Path(sys.prefix).resolve(), PACKAGE_DIR]
    assert set(seen["tmp"]) - {"work"} <= {p.parts[2] for p in bound if p.parts[1] == "tmp"}
    assert seen["limits"]["RLIMIT_AS"] == [1024 * MIB] * 2
    assert seen["limits"]["RLIMIT_CORE"] == [0, 0]


def test_the_cpu_time_limit_stops_an_endless_loop(tmp_path):
    done = probe(tmp_path, Limits(cpu_seconds=1), "while True:\n    pass\n")
    assert done.returncode == 128 + 24  # bwrap reports SIGXCPU as 128 + its number


def test_its_temporary_file_systems_are_capped(tmp_path):
    code = ("import os\nfor place in ('/tmp/work', '/dev/shm'):\n"
            "    try:\n        with open(os.path.join(place, 'big'), 'wb') as f:\n"
            "            for _ in range(8):\n                f.write(bytes(1 << 20))\n"
            "        print(place, 'wrote 8 MiB')\n"
            "    except OSError as error:\n        print(place, 'full', error.errno)\n")
    done = probe(tmp_path, Limits(tmp_size=4 * MIB), code)
    assert done.stdout.split("\n")[:2] == ["/tmp/work full 28", "/dev/shm full 28"], done.stderr


def test_the_memory_limit_is_a_memory_error(tmp_path):
    done = probe(tmp_path, Limits(memory=256 * MIB),
                 "try:\n    bytearray(512 << 20)\nexcept MemoryError:\n    print('refused')\n")
    assert done.returncode == 0 and done.stdout.strip() == "refused", done.stderr


def test_the_preflight_says_how_to_install_bubblewrap_when_it_is_missing(monkeypatch):
    assert sandbox.preflight() == ""
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    assert sandbox.preflight() == "bwrap is not installed"
    with pytest.raises(sandbox.ConfigError, match="sudo apt-get install bubblewrap"):
        sandbox.require_sandbox()


def test_a_course_cloned_under_tmp_is_still_there_in_the_sandbox(tmp_path):
    # the kernel's private /tmp is mounted first and the package is bound on top of it: a
    # course under /tmp (here: a copy of the package in pytest's tmp_path) stays visible
    package = tmp_path / "course" / "vmmlib"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    ipc = tmp_path / "ipc"
    ipc.mkdir()
    limits = Limits()
    code = "import os, sys; print(os.path.exists(sys.argv[1] + '/__init__.py'))"
    command = [sys.executable, "-I", "-S", "-c", sandbox._LAUNCHER,
               json.dumps(limits.rlimits()), shutil.which("bwrap"),
               *bwrap_args(ipc, package, package, kernel_env("/tmp", limits.output), limits),
               "--", sys.executable, "-c", code, str(package)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    args = bwrap_args(ipc, package, package, kernel_env("/tmp", 0), limits)
    assert args.index("/tmp") < args.index(str(package))
