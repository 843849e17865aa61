"""Device models: what answers a port or an MMIO address (UART, VGA, IDE, disk backends, ...)."""
