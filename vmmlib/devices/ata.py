"""ATA facts the IDE controller model is built from: ports, register offsets, bits, command
codes, the IDENTIFY DEVICE page, and the device's protocol as a state-transition table.

Sources (hardware-facts.md §9 and §12): qemu/qemu ``include/hw/ide/internal.h`` (status, error
and device-control bits, command codes) and ``hw/ide/core.c`` at commit 9740b907 (the register
read/write rules, ``ide_identify``, ``ide_set_signature``); ``hw/i386/pc_piix.c`` (0x1F0/0x3F6
IRQ 14, 0x170/0x376 IRQ 15); xv6 ``ide.c``; Linux ``include/linux/ata.h``.
"""

from __future__ import annotations

from typing import NamedTuple

SECTOR_SIZE = 512

# -- the two legacy channels: command block base, control block port, IRQ ------------------
PRIMARY = (0x1F0, 0x3F6, 14)
SECONDARY = (0x170, 0x376, 15)
CHANNELS = {"primary": PRIMARY, "secondary": SECONDARY}
COMMAND_BLOCK_PORTS = 8  # base + 0 … base + 7
CONTROL_BLOCK_PORTS = 1  # alternate status / device control

# -- command block register offsets (reads / writes) ---------------------------------------
REG_DATA = 0
REG_ERROR = REG_FEATURES = 1
REG_NSECT = 2
REG_LBAL = 3  # sector number
REG_LBAM = 4  # cylinder low
REG_LBAH = 5  # cylinder high
REG_DEVICE = 6  # drive/head
REG_STATUS = REG_COMMAND = 7

# -- status bits ---------------------------------------------------------------------------
ST_ERR, ST_IDX, ST_CORR, ST_DRQ = 0x01, 0x02, 0x04, 0x08
ST_DSC, ST_DF, ST_DRDY, ST_BSY = 0x10, 0x20, 0x40, 0x80

# -- error bits ----------------------------------------------------------------------------
ER_AMNF, ER_TK0NF, ER_ABRT, ER_MCR = 0x01, 0x02, 0x04, 0x08
ER_IDNF, ER_MC, ER_UNC, ER_BBK = 0x10, 0x20, 0x40, 0x80
DIAGNOSTIC_PASSED = 0x01  # the error register after a reset: "device 0 passed"

# -- device control (write 0x3F6) and device/head (0x1F6) bits ------------------------------
CTL_NIEN, CTL_SRST, CTL_HOB = 0x02, 0x04, 0x80
DEV_HEAD_MASK, DEV_DEV1, DEV_LBA, DEV_OBSOLETE = 0x0F, 0x10, 0x40, 0xA0

# -- commands ------------------------------------------------------------------------------
CMD_READ_SECTORS, CMD_READ_SECTORS_EXT = 0x20, 0x24
CMD_WRITE_SECTORS, CMD_WRITE_SECTORS_EXT = 0x30, 0x34
CMD_READ_DMA, CMD_READ_DMA_EXT, CMD_WRITE_DMA, CMD_WRITE_DMA_EXT = 0xC8, 0x25, 0xCA, 0x35
CMD_READ_MULTIPLE, CMD_WRITE_MULTIPLE = 0xC4, 0xC5
CMD_PACKET, CMD_IDENTIFY_PACKET = 0xA0, 0xA1
CMD_FLUSH_CACHE, CMD_FLUSH_CACHE_EXT = 0xE7, 0xEA
CMD_IDENTIFY = 0xEC
CMD_SET_FEATURES = 0xEF

READ_COMMANDS = {CMD_READ_SECTORS: False, CMD_READ_SECTORS_EXT: True}  # code -> LBA48
WRITE_COMMANDS = {CMD_WRITE_SECTORS: False, CMD_WRITE_SECTORS_EXT: True}
FLUSH_COMMANDS = (CMD_FLUSH_CACHE, CMD_FLUSH_CACHE_EXT)

# -- CHS geometry reported and accepted (the standard translation for disks > 504 MiB) -------
HEADS, SECTORS_PER_TRACK, MAX_CYLINDERS = 16, 63, 16383
LBA28_LIMIT = (1 << 28) - 1  # IDENTIFY words 60-61 saturate here (QEMU ide_identify_size)

# -- the device's protocol as data -----------------------------------------------------------
IDLE, BUSY, DRQ_IN, DRQ_OUT, ERROR, RESET = "idle", "busy", "drq_in", "drq_out", "error", "reset"
STATES = (IDLE, BUSY, DRQ_IN, DRQ_OUT, ERROR, RESET)

#: The status register each state shows (the model derives status from its state).
STATE_STATUS = {
    IDLE: ST_DRDY | ST_DSC,  # 0x50
    BUSY: ST_BSY | ST_DRDY,  # 0xC0, as QEMU's ide_exec_cmd sets while a command runs
    DRQ_IN: ST_DRDY | ST_DSC | ST_DRQ,  # 0x58
    DRQ_OUT: ST_DRDY | ST_DSC | ST_DRQ,  # 0x58
    ERROR: ST_DRDY | ST_ERR,  # 0x41, QEMU ide_abort_command
    RESET: ST_BSY,  # 0x80
}

DATA_IN_COMMAND = "data-in command"
DATA_OUT_COMMAND = "data-out command"
NON_DATA_COMMAND = "non-data command"
COMMAND_ABORTED = "command aborted"
SECTOR_READY = "sector ready"
SECTOR_DRAINED = "sector read by host"
LAST_SECTOR_DRAINED = "last sector read by host"
SECTOR_FILLED = "sector written by host"
SECTOR_STORED = "sector stored"
COMMAND_DONE = "command completed"
SECTOR_NOT_FOUND = "sector not found"
MEDIA_ERROR = "media error"
SRST_SET = "SRST set"
SRST_CLEARED = "SRST cleared"
RESET_DONE = "reset done"


class Transition(NamedTuple):
    """One edge of the device's state machine: in ``state``, ``event`` leads to ``next``."""

    state: str
    event: str
    next: str
    action: str


_ACCEPT = "BSY; error := 0"
TRANSITIONS: tuple[Transition, ...] = (
    *(
        Transition(s, DATA_IN_COMMAND, BUSY, _ACCEPT + "; ask the backend for the first sector "
                   "(READ SECTORS) or build the IDENTIFY page")
        for s in (IDLE, ERROR)
    ),
    *(
        Transition(s, DATA_OUT_COMMAND, DRQ_OUT, "error := 0; DRQ at once for the first sector "
                   "(WRITE SECTORS), no interrupt")
        for s in (IDLE, ERROR)
    ),
    *(
        Transition(s, NON_DATA_COMMAND, BUSY, _ACCEPT + "; the backend flushes its cache")
        for s in (IDLE, ERROR)
    ),
    *(
        Transition(s, COMMAND_ABORTED, ERROR, "ERR, error := ABRT; interrupt (unknown command, "
                   "IDENTIFY PACKET on an ATA disk, DMA without a bus master)")
        for s in (IDLE, ERROR)
    ),
    Transition(BUSY, SECTOR_READY, DRQ_IN, "sector in the buffer: DRQ; interrupt"),
    Transition(DRQ_IN, SECTOR_DRAINED, BUSY, "count down, next LBA; BSY while the backend "
               "reads the next sector"),
    Transition(DRQ_IN, LAST_SECTOR_DRAINED, IDLE, "DRQ off; no interrupt (the data was the "
               "answer)"),
    Transition(DRQ_OUT, SECTOR_FILLED, BUSY, "BSY while the backend writes the sector"),
    Transition(BUSY, SECTOR_STORED, DRQ_OUT, "count down, next LBA; DRQ for the next sector; "
               "interrupt"),
    Transition(BUSY, COMMAND_DONE, IDLE, "last sector stored or cache flushed; interrupt"),
    Transition(BUSY, SECTOR_NOT_FOUND, ERROR, "address beyond the disk: ERR, error := IDNF; "
               "interrupt"),
    Transition(BUSY, MEDIA_ERROR, ERROR, "the backend failed: ERR, error := UNC (read) or "
               "ABRT (write); interrupt"),
    *(
        Transition(s, SRST_SET, RESET, "BSY; the command in progress is dropped")
        for s in STATES
    ),
    Transition(RESET, SRST_CLEARED, RESET, "the device starts its reset (BSY for RESET_NS)"),
    Transition(RESET, RESET_DONE, IDLE, "registers reset, signature (1, 1, 0, 0), error := "
               "01h (diagnostic passed), DRDY; device 0 selected; no interrupt"),
)

#: (state, event) -> next state: what the model looks every change up in.
NEXT_STATE = {(t.state, t.event): t.next for t in TRANSITIONS}
assert len(NEXT_STATE) == len(TRANSITIONS)


# -- IDENTIFY DEVICE -----------------------------------------------------------------------
def ata_string(text: str, nbytes: int) -> list[int]:
    """An IDENTIFY string field: ASCII padded with spaces, two characters per word, the first
    character in the *high* byte (the byte swap QEMU's padstr does with ``str[i ^ 1]``)."""
    raw = text.encode("ascii")[:nbytes].ljust(nbytes, b" ")
    return [raw[i] << 8 | raw[i + 1] for i in range(0, nbytes, 2)]


def chs_geometry(sectors: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) reported for a disk of ``sectors`` sectors."""
    return min(sectors // (HEADS * SECTORS_PER_TRACK), MAX_CYLINDERS), HEADS, SECTORS_PER_TRACK


def identify_page(
    sectors: int,
    *,
    model: str = "VMMLIB HARDDISK",
    serial: str = "VM00000",
    firmware: str = "1.0",
    write_cache: bool = False,
    rpm: int = 0,
) -> list[int]:
    """The 256 words IDENTIFY DEVICE returns.

    QEMU's ``ide_identify`` (hw/ide/core.c @ 9740b907) sets words 0, 1, 3-6, 10-19 (serial),
    20-22, 23-26 (firmware), 27-46 (model), 47, 48, 49, 51-58, 59, 60-61 (LBA28 capacity,
    saturated at 2**28 - 1 by ``ide_identify_size``), 62-68, 80-88, 93, 100-103 (LBA48
    capacity), and optionally 69, 75-76, 106, 108-111, 169, 217. This page sets the same words
    with QEMU's values except where this model does less: no READ/WRITE MULTIPLE (47, 59 stay
    0), no DMA (49 bit 8, 52, 62, 63, 88 stay 0), no SMART or NOP (bits 0 and 14 of words
    82 and 85 stay 0), the write-cache bits (82 and 85 bit 5) only if the backend has a cache,
    and word 217 carries the backend's rotation rate (0 = not reported)."""
    w = [0] * 256
    cyls, heads, spt = chs_geometry(sectors)
    w[0] = 0x0040  # fixed disk (not removable), ATA device
    w[1], w[3], w[6] = cyls, heads, spt  # default geometry
    w[4], w[5] = 512 * spt, 512  # retired: bytes per track / per sector (QEMU still sets them)
    w[10:20] = ata_string(serial, 20)
    w[20], w[21], w[22] = 3, 512, 4  # retired buffer type and size, ECC bytes (as QEMU)
    w[23:27] = ata_string(firmware, 8)
    w[27:47] = ata_string(model, 40)
    w[48] = 1  # 32-bit (dword) data-port I/O supported
    w[49] = 1 << 11 | 1 << 9  # IORDY, LBA supported (QEMU also sets bit 8, DMA: not modelled)
    w[51] = 0x200  # PIO data transfer cycle timing mode
    w[53] = 0x3  # words 54-58 and 64-70 are valid
    w[54], w[55], w[56] = cyls, heads, spt  # current geometry
    chs = cyls * heads * spt
    w[57], w[58] = chs & 0xFFFF, chs >> 16  # current CHS capacity
    lba28 = min(sectors, LBA28_LIMIT)
    w[60], w[61] = lba28 & 0xFFFF, lba28 >> 16  # LBA28 capacity, saturated
    w[64] = 0x03  # PIO modes 3 and 4
    w[65] = w[66] = w[67] = w[68] = 120  # cycle times (ns)
    w[80] = 0xF0  # major version: bits 4-7 (ATA/ATAPI-4 … -7), the value QEMU sets
    w[81] = 0x16
    w[82] = (1 << 5) if write_cache else 0  # write cache supported
    w[83] = 1 << 14 | 1 << 13 | 1 << 12 | 1 << 10  # valid; FLUSH CACHE EXT, FLUSH CACHE, LBA48
    w[84] = 1 << 14  # valid
    w[85] = (1 << 5) if write_cache else 0  # write cache enabled
    w[86] = 1 << 13 | 1 << 12 | 1 << 10  # the same three enabled
    w[87] = 1 << 14  # valid
    w[93] = 1 | 1 << 14 | 0x2000  # hardware reset result, as QEMU
    for i in range(4):
        w[100 + i] = (sectors >> (16 * i)) & 0xFFFF  # LBA48 capacity
    w[217] = rpm  # nominal media rotation rate (0 = not reported)
    return w
