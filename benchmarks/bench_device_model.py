"""Chapter 02's numbers: what reading through emulated IDE costs, per transfer style and backend.

* ``exits_per_4k_<style>`` / ``ioreqs_per_4k_<style>``: reading 4 KiB (8 sectors, one READ
  SECTORS command, the polling xv6 driver) with REP INSW / REP INSL into a buffer, or one word
  / one dword at a time;
* ``virtual_ms_per_mib_<backend>``: the virtual time to read 1 MiB (one READ SECTORS EXT of 2048
  sectors, REP INSW) through each backend the thread names;
* ``wall_s_read_1mib``: the wall time of that 1 MiB read (the chapter's heaviest cell).
Every run checks the bytes the guest got against the disk's content.
"""

from __future__ import annotations

import time

from vmmlib import Vcpu
from vmmlib.guest.ide import ide_read
from vmmlib.scenarios import device_model as ch02

STYLES = ("insw", "insl", "inw", "inl")


def read(world, lba: int, count: int, style: str) -> Vcpu:
    buffer = ch02.SECTOR_BUFFER if style.startswith("ins") else None
    vcpu = Vcpu(world.guest, ide_read(lba, count, style=style, buffer=buffer))
    vcpu.run(10_000_000)
    assert vcpu.crashed is None and vcpu.result == ch02.disk_content()[
        lba * 512 : (lba + count) * 512
    ], "the guest read the wrong bytes"
    return vcpu


def main() -> None:
    for style in STYLES:
        vcpu = read(ch02.dm_machine(), 16, 8, style)
        trace = vcpu.machine.trace
        print(f"exits_per_4k_{style}: {sum(trace.count().values())} exits")
        print(f"ioreqs_per_4k_{style}: {len(trace.events('ioreq'))} ioreqs")
    wall = 0.0
    for backend in ch02.BACKENDS:
        world = ch02.dm_machine(backend)
        t0 = time.perf_counter()
        vcpu = read(world, 0, 2048, "insw")
        wall = max(wall, time.perf_counter() - t0)
        name = backend.replace(" ", "_")
        print(f"virtual_ms_per_mib_{name}: {vcpu.machine.clock.now / 1e6:.1f} ms")
    print(f"wall_s_read_1mib: {wall:.2f} s")


if __name__ == "__main__":
    main()
