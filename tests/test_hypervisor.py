"""Facts about Xen's hypercall interface that the PV path relies on."""

from vmmlib.xen.hypercalls import (
    ENOSYS,
    CONSOLEIO_read,
    CONSOLEIO_write,
    HYPERVISOR_console_io,
)


def test_console_io_hypercall_numbers():
    # xen/include/public/xen.h: __HYPERVISOR_console_io 18, CONSOLEIO_write 0, CONSOLEIO_read 1
    assert HYPERVISOR_console_io == 18
    assert (CONSOLEIO_write, CONSOLEIO_read) == (0, 1)


def test_unknown_hypercalls_return_minus_enosys():
    # Xen returns -ENOSYS (38 on Linux/x86 errno numbering, as Xen's public errno.h) for an
    # unknown hypercall number
    assert ENOSYS == 38
