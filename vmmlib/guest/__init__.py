"""Guest kernels' drivers, written as generators in the style of xv6's drivers.

Each function is a piece of a guest kernel: it yields operations (``vmmlib.cpu.ops``) to its
vCPU and gets the results back. Compose them with ``yield from``.
"""
