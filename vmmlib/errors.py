"""One hierarchy for everything that can go wrong in vmmlib.

Two families, kept apart on purpose:

* ``ConfigError`` and its children: the *course author or student* asked for something that
  cannot exist (a port above 0xFFFF, an access of 3 bytes, two devices claiming one range).
  These are raised at once, with a message that says what was wrong.
* ``GuestFault`` and its children: the *guest* did something that real hardware or Xen would
  turn into a fault (a page fault, an IOMMU fault, a hostile ring index). The simulator records
  these in the trace and delivers them to the guest (or to the domain) as hardware would; they
  are exceptions only so that a guest program can ``try``/``except`` them.
"""

from __future__ import annotations


class VmmError(Exception):
    """Base class of every error vmmlib raises."""


class ConfigError(VmmError, ValueError):
    """A configuration or argument that cannot describe real hardware."""


class BadPortError(ConfigError):
    """A port number outside the x86 16-bit I/O space (0x0000-0xFFFF)."""


class BadSizeError(ConfigError):
    """An access size the instruction set cannot express (port I/O: 1, 2 or 4 bytes)."""


class BadAddressError(ConfigError):
    """A physical address outside the memory that exists."""


class OverlapError(ConfigError):
    """Two devices claim overlapping ranges of one address space."""


class GuestProgramError(VmmError):
    """A guest program yielded something that is not an operation."""


class GuestFault(VmmError):
    """A fault that hardware or the hypervisor delivers because of what the guest did."""


class PageFault(GuestFault):
    """x86 #PF (vector 14), as delivered to the guest.

    ``error_code`` uses the architectural bits: 0 P (0 = not present), 1 W/R (1 = write),
    2 U/S (1 = user mode), 3 RSVD, 4 I/D (instruction fetch).
    """

    def __init__(self, address: int, error_code: int):
        self.address = address
        self.error_code = error_code
        super().__init__(f"#PF at {address:#x}, error code {error_code:#x}")


class GeneralProtection(GuestFault):
    """x86 #GP (vector 13), as delivered to the guest: e.g. an access that runs past the
    canonical half of the address space."""

    def __init__(self, address: int, error_code: int = 0):
        self.address = address
        self.error_code = error_code
        super().__init__(f"#GP at {address:#x}, error code {error_code:#x}")


class Halted(GuestFault):
    """The vCPU executed HLT (or blocked in SCHEDOP_block) and nothing is left that could
    ever wake it: the model ends the guest there (a real CPU would sleep forever)."""


class GuestKernelError(VmmError):
    """A guest kernel's driver gave up: e.g. a hypercall it cannot do without answered an
    error (where Linux would fail the device's probe)."""


class DomainCrash(VmmError):
    """Xen crashed the domain (e.g. its device model broke the ioreq protocol, or answered
    with a request no device can take): every vCPU of it stops, with this reason."""
