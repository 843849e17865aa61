"""What VT-x / AMD-V do: guest operations, intercept maps, exit records, paging, the vCPU.

The CPU layer knows only what the hardware knows: the control block the hypervisor fills in
(``vmcs``). It never imports ``vmmlib.xen``.
"""
