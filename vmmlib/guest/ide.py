"""A guest kernel's IDE disk driver, in the style of xv6's ``ide.c``, and its boot loader's
polling ``readsect`` (``bootmain.c``).

xv6 waits for the disk with ``idewait``: poll the status register until BSY is clear and DRDY
set, then check DF and ERR. It starts a request by writing the task file (sector count, LBA
7:0, 15:8, 23:16, 0xE0 | drive << 4 | LBA 27:24) and the command, and moves each 512-byte
sector with 128 ``insl`` / ``outsl`` (hardware-facts.md §9.2). Here the data can move in four
styles, to compare what each costs a hypervisor: one REP INSL (``"insl"``), one REP INSW
(``"insw"``), 128 single 4-byte INs (``"inl"``) or 256 single 2-byte INs (``"inw"``); writes
likewise (``"outsl"``, ``"outsw"``, ``"outl"``, ``"outw"``). Above LBA 2**28 - 1, or for 256
sectors and more, the driver switches to the LBA48 commands and writes each task-file register
twice, high-order byte first, as SeaBIOS's ``send_cmd`` does.

**The waiting point.** Every place where the driver waits for the disk to finish something
(the next sector is ready, a written sector is stored) calls ``wait(base)``, a generator that
returns the status register. ``ide_poll`` (the default) spins on the status register;
an interrupt-driven kernel passes a function that sleeps until IRQ 14 and then reads the status
(which acknowledges the interrupt). Only the wait for the first DRQ of a write is always polled:
the disk raises no interrupt for it.

Register offsets, bits and commands come from the device model (``vmmlib.devices.ata``): one
definition of the ATA registers for both sides.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cpu.ops import Guest, Hlt, In, Ins, Out, Outs
from ..devices.ata import (
    CMD_FLUSH_CACHE,
    CMD_IDENTIFY,
    CMD_READ_SECTORS,
    CMD_READ_SECTORS_EXT,
    CMD_WRITE_SECTORS,
    CMD_WRITE_SECTORS_EXT,
    DEV_DEV1,
    PRIMARY,
    REG_DATA,
    REG_DEVICE,
    REG_LBAH,
    REG_LBAL,
    REG_LBAM,
    REG_NSECT,
    REG_STATUS,
    SECTOR_SIZE,
    ST_BSY,
    ST_DF,
    ST_DRDY,
    ST_ERR,
)
from ..errors import ConfigError
from .pic import IRQ_VECTOR_BASE, pic_eoi

IDE_BASE, IDE_CTRL, IDE_IRQ = PRIMARY
IDE_VECTOR = IRQ_VECTOR_BASE + IDE_IRQ  # xv6: T_IRQ0 + IRQ_IDE
READ_STYLES = ("insl", "insw", "inl", "inw")
WRITE_STYLES = ("outsl", "outsw", "outl", "outw")
Wait = Callable[[int], Guest]


def ide_wait(base: int = IDE_BASE, checkerr: bool = False) -> Guest:
    """xv6 ``idewait``: poll until (status & (BSY|DRDY)) == DRDY; -1 if checking errors and DF
    or ERR is set, else 0."""
    while True:
        status = yield In(base + REG_STATUS, 1)
        if status & (ST_BSY | ST_DRDY) == ST_DRDY:
            break
    if checkerr and status & (ST_DF | ST_ERR):
        return -1
    return 0


def ide_wait_irq(base: int = IDE_BASE) -> Guest:
    """The interrupt-driven wait (xv6's sleep in ``iderw`` until ``ideintr``): halt until
    the disk's IRQ 14 arrives, then read the status register, which acknowledges it."""
    while True:
        vector = yield Hlt()
        if vector == IDE_VECTOR:
            break
    yield from pic_eoi(IDE_IRQ)
    return (yield In(base + REG_STATUS, 1))


def ide_poll(base: int = IDE_BASE) -> Guest:
    """The polled waiting point: spin on the status register until the disk is not busy and
    ready (or reports an error); returns the status."""
    while True:
        status = yield In(base + REG_STATUS, 1)
        if not status & ST_BSY and status & (ST_DRDY | ST_ERR):
            return status


def ide_init(base: int = IDE_BASE) -> Guest:
    """xv6 ``ideinit`` (without the PIC/IOAPIC set-up): wait for the disk, then probe disk 1 by
    selecting it and polling its status up to 1000 times. Returns ``havedisk1``."""
    yield from ide_wait(base)
    yield Out(base + REG_DEVICE, 1, 0xE0 | DEV_DEV1)
    present = False
    for _ in range(1000):
        if (yield In(base + REG_STATUS, 1)) != 0:
            present = True
            break
    yield Out(base + REG_DEVICE, 1, 0xE0)  # back to disk 0
    return present


def uses_lba48(lba: int, count: int) -> bool:
    """SeaBIOS's rule: 256 sectors or more, or a request reaching LBA 2**28."""
    return count >= 1 << 8 or lba + count >= 1 << 28


def ide_command(
    lba: int, count: int, command: int, drive: int = 0, base: int = IDE_BASE, ctrl: int = IDE_CTRL
) -> Guest:
    """xv6 ``idestart``'s register writes: wait, enable interrupts (0 to device control), the
    task file, the command. ``count`` is 1-65536 (256 or 65536 are written as 0)."""
    if not 1 <= count <= 1 << 16 or lba < 0 or lba + count > 1 << 48 or drive not in (0, 1):
        raise ConfigError(f"cannot address {count} sectors at LBA {lba} on drive {drive}")
    yield from ide_wait(base)
    yield Out(ctrl, 1, 0)  # nIEN = 0: generate interrupts
    if command in (CMD_READ_SECTORS_EXT, CMD_WRITE_SECTORS_EXT):
        for reg, value in ((REG_NSECT, count >> 8), (REG_LBAL, lba >> 24),
                           (REG_LBAM, lba >> 32), (REG_LBAH, lba >> 40)):
            yield Out(base + reg, 1, value & 0xFF)  # the high-order bytes first
        device = 0x40 | drive << 4
    else:
        device = 0xE0 | drive << 4 | (lba >> 24 & 0x0F)
    yield Out(base + REG_NSECT, 1, count & 0xFF)
    yield Out(base + REG_LBAL, 1, lba & 0xFF)
    yield Out(base + REG_LBAM, 1, lba >> 8 & 0xFF)
    yield Out(base + REG_LBAH, 1, lba >> 16 & 0xFF)
    yield Out(base + REG_DEVICE, 1, device)
    yield Out(base + REG_STATUS, 1, command)


def read_sector_data(
    style: str = "insl", base: int = IDE_BASE, buffer: int | None = None
) -> Guest:
    """Move one sector from the data port in ``style``; returns its 512 bytes. With
    ``buffer`` (a guest address) a REP INS stores the sector in guest memory there, as a real
    kernel's does into its buffer cache (then Xen sends it to qemu-dm as one ioreq)."""
    if style not in READ_STYLES:
        raise ConfigError(f"read style {style!r} is not one of {READ_STYLES}")
    size = 4 if style in ("insl", "inl") else 2
    n = SECTOR_SIZE // size
    if style.startswith("ins"):
        values = yield Ins(base + REG_DATA, size, n, addr=buffer)
    else:
        values = []
        for _ in range(n):
            values.append((yield In(base + REG_DATA, size)))
    return b"".join(v.to_bytes(size, "little") for v in values)


def write_sector_data(data: bytes, style: str = "outsl", base: int = IDE_BASE) -> Guest:
    """Move one sector (512 bytes) to the data port in ``style``."""
    if style not in WRITE_STYLES:
        raise ConfigError(f"write style {style!r} is not one of {WRITE_STYLES}")
    size = 4 if style in ("outsl", "outl") else 2
    values = [int.from_bytes(data[i : i + size], "little") for i in range(0, SECTOR_SIZE, size)]
    if style.startswith("outs"):
        yield Outs(base + REG_DATA, size, values)
    else:
        for v in values:
            yield Out(base + REG_DATA, size, v)


def ide_read(
    lba: int,
    count: int = 1,
    drive: int = 0,
    *,
    style: str = "insl",
    wait: Wait = ide_poll,
    base: int = IDE_BASE,
    ctrl: int = IDE_CTRL,
    buffer: int | None = None,
) -> Guest:
    """Read ``count`` sectors at ``lba``; returns their bytes, or None if the disk reported an
    error (ERR or DF, e.g. IDNF for an address beyond the disk). With ``buffer`` (a guest
    address), a REP style stores sector i at ``buffer + 512 * i``."""
    command = CMD_READ_SECTORS_EXT if uses_lba48(lba, count) else CMD_READ_SECTORS
    yield from ide_command(lba, count, command, drive, base, ctrl)
    data = bytearray()
    for i in range(count):
        status = yield from wait(base)
        if status & (ST_DF | ST_ERR):
            return None
        at = None if buffer is None else buffer + i * SECTOR_SIZE
        data += yield from read_sector_data(style, base, at)
    return bytes(data)


def ide_write(
    lba: int,
    data: bytes,
    drive: int = 0,
    *,
    style: str = "outsl",
    wait: Wait = ide_poll,
    base: int = IDE_BASE,
    ctrl: int = IDE_CTRL,
) -> Guest:
    """Write whole sectors at ``lba``; returns True, or False if the disk reported an error."""
    if not data or len(data) % SECTOR_SIZE:
        raise ConfigError(f"the driver writes whole 512-byte sectors, not {len(data)} bytes")
    count = len(data) // SECTOR_SIZE
    command = CMD_WRITE_SECTORS_EXT if uses_lba48(lba, count) else CMD_WRITE_SECTORS
    yield from ide_command(lba, count, command, drive, base, ctrl)
    status = yield from ide_poll(base)  # the first DRQ comes without an interrupt
    for i in range(count):
        if status & (ST_DF | ST_ERR):
            return False
        yield from write_sector_data(data[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE], style, base)
        status = yield from wait(base)  # stored: DRQ for the next one, or done
    return not status & (ST_DF | ST_ERR)


def ide_flush(
    drive: int = 0, *, wait: Wait = ide_poll, base: int = IDE_BASE, ctrl: int = IDE_CTRL
) -> Guest:
    """FLUSH CACHE: returns True once the disk says every written sector is durable."""
    yield from ide_wait(base)
    yield Out(ctrl, 1, 0)
    yield Out(base + REG_DEVICE, 1, 0xE0 | drive << 4)
    yield Out(base + REG_STATUS, 1, CMD_FLUSH_CACHE)
    status = yield from wait(base)
    return not status & (ST_DF | ST_ERR)


def ide_identify(
    drive: int = 0, *, wait: Wait = ide_poll, base: int = IDE_BASE, ctrl: int = IDE_CTRL
) -> Guest:
    """IDENTIFY DEVICE: returns the 256 words, or None if the command was aborted."""
    yield from ide_wait(base)
    yield Out(ctrl, 1, 0)
    yield Out(base + REG_DEVICE, 1, 0xE0 | drive << 4)
    yield Out(base + REG_STATUS, 1, CMD_IDENTIFY)
    status = yield from wait(base)
    if status & (ST_DF | ST_ERR):
        return None
    return (yield Ins(base + REG_DATA, 2, 256))


# -- the xv6 boot loader ---------------------------------------------------------------------
def boot_waitdisk(base: int = IDE_BASE) -> Guest:
    """bootmain.c ``waitdisk``: poll until (status & 0xC0) == 0x40 (DRDY and not BSY)."""
    while (yield In(base + REG_STATUS, 1)) & 0xC0 != 0x40:
        pass


def boot_readsect(offset: int, base: int = IDE_BASE) -> Guest:
    """bootmain.c ``readsect``: READ SECTORS of one sector at LBA ``offset``, polled, data
    moved with one ``insl`` of 128 dwords. Returns the 512 bytes."""
    yield from boot_waitdisk(base)
    yield Out(base + REG_NSECT, 1, 1)
    yield Out(base + REG_LBAL, 1, offset & 0xFF)
    yield Out(base + REG_LBAM, 1, offset >> 8 & 0xFF)
    yield Out(base + REG_LBAH, 1, offset >> 16 & 0xFF)
    yield Out(base + REG_DEVICE, 1, (offset >> 24 | 0xE0) & 0xFF)
    yield Out(base + REG_STATUS, 1, CMD_READ_SECTORS)
    yield from boot_waitdisk(base)
    values = yield Ins(base + REG_DATA, 4, SECTOR_SIZE // 4)
    return b"".join(v.to_bytes(4, "little") for v in values)


def boot_readseg(count: int, offset: int, base: int = IDE_BASE) -> Guest:
    """bootmain.c ``readseg``: the ``count`` bytes at byte ``offset`` of the kernel, which
    starts at sector 1; whole sectors are read, so the result starts at the sector boundary
    below ``offset`` (as the boot loader "might copy more than asked")."""
    first = offset // SECTOR_SIZE + 1
    last = (offset + count - 1) // SECTOR_SIZE + 1
    data = bytearray()
    for sector in range(first, last + 1):
        data += yield from boot_readsect(sector, base)
    return bytes(data)
