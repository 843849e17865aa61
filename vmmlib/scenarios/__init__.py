"""Ready-made, deterministic worlds the notebooks step through: one module per chapter.

* :mod:`vmmlib.scenarios.intercepts` — chapter 01 (trapped port I/O, MMIO, hypercalls).

Each scenario function builds a fresh machine and returns what a ``Stepper`` steps (usually a
vCPU); calling it twice gives two identical worlds.
"""
