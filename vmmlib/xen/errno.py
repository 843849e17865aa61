"""The error numbers hypercalls return, negated (xen/include/public/errno.h: Linux's x86 values).

A hypercall answers 0 or a positive result, or ``-errno``: -EPERM when the policy refuses,
-ESRCH for a domain that does not exist, -EFAULT for a buffer that is not guest memory, -E2BIG /
-EINVAL for an argument out of range, -ENOSPC when no event channel is free, -ENOSYS for an
unknown hypercall or command.
"""

EPERM = 1
ESRCH = 3
E2BIG = 7
EFAULT = 14
EINVAL = 22
ENOSPC = 28
ENOSYS = 38

__all__ = ["E2BIG", "EFAULT", "EINVAL", "ENOSPC", "ENOSYS", "EPERM", "ESRCH"]
