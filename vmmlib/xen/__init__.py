"""The hypervisor and dom0's software: domains (p2m), exit handlers, shadow paging, hypercalls,
the scheduler; chapters 02-05 add ioreq, qemu-dm, event channels, grant tables, rings, blkback
and the console mux."""
