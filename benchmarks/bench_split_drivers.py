"""Chapter 03's numbers: the thread's last question, and how fast the simulator moves a ring.

* ``<path>_<figure>_per_mib_<backend>``: reading 1 MiB from sector 0 on each path — chapter
  02's emulated IDE in an HVM guest (one READ SECTORS EXT, REP INSW), blkfront in a PV guest,
  blkfront in an HVM guest — with the disk in memory (no latency: what the paths themselves
  cost) and on a local disk: exits, the guest's hypercalls, events sent, and virtual time;
* ``ring_requests_per_wall_s``: blkif requests the simulator serves per second of wall time
  (a PV guest reading a 4 MiB disk eight times over, 44 KiB per request), and the same as
  simulated MiB per wall second; ``ring_requests_per_cpu_s`` counts the process's CPU time
  instead (the figure to compare on a shared machine).
Every read is checked against the disk's content.
"""

from __future__ import annotations

import time

from vmmlib import Vcpu
from vmmlib.guest.blkfront import blkfront_io
from vmmlib.scenarios import split_drivers as ch03
from vmmlib.scenarios.device_model import DISK_SECTORS, disk_content

SHORT = {ch03.PATHS[0]: "emulated_ide", ch03.PATHS[1]: "blkfront_pv", ch03.PATHS[2]: "blkfront_hvm"}


def paths() -> None:
    for backend in ("memory", "local disk"):
        name = backend.replace(" ", "_")
        for cost in ch03.compare_paths(2048, backend):
            path = SHORT[cost.path]
            print(f"{path}_exits_per_mib_{name}: {cost.per_mib(cost.exits):.0f} exits")
            print(f"{path}_hypercalls_per_mib_{name}: {cost.per_mib(cost.hypercalls):.0f} "
                  "hypercalls")
            print(f"{path}_events_per_mib_{name}: {cost.per_mib(cost.events):.0f} events")
            print(f"{path}_virtual_ms_per_mib_{name}: {cost.per_mib(cost.virtual_ns) / 1e6:.2f} ms")


def ring_throughput(rounds: int = 8) -> None:
    world = ch03.split_machine("pv")
    expected = disk_content()

    def program():
        yield from ch03.connect_program(world.machine, world.guest, world.front)
        for _ in range(rounds):
            statuses = yield from blkfront_io(world.front, "read", 0, DISK_SECTORS, ch03.BUFFER)
            assert set(statuses) == {0}
        return world.front.issued

    vcpu = Vcpu(world.guest, program())
    t0, c0 = time.perf_counter(), time.process_time()
    vcpu.run(50_000_000)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert vcpu.crashed is None, vcpu.crashed
    assert world.guest.read_bytes(ch03.BUFFER, DISK_SECTORS * 512) == expected
    mib = rounds * DISK_SECTORS * 512 / (1 << 20)
    print(f"ring_requests_per_wall_s: {vcpu.result / wall:.0f} requests/s")
    print(f"ring_requests_per_cpu_s: {vcpu.result / cpu:.0f} requests/s")
    print(f"ring_mib_per_wall_s: {mib / wall:.1f} MiB/s")


def main() -> None:
    ring_throughput()
    paths()


if __name__ == "__main__":
    main()
