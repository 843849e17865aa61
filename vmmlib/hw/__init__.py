"""The physical PC: buses, machine memory, the PC's port and memory maps."""
