"""A round-robin scheduler: several vCPUs share one physical CPU, a quantum at a time.

Each vCPU runs up to ``quantum`` operations, then the next one gets the CPU. This is how two
guests end up interleaved in front of one device (chapter 05). Deterministic: the order is
the order of the list, and a finished vCPU simply drops out.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .vcpu import Vcpu


class RoundRobin:
    """Run ``vcpus`` in turn, ``quantum`` guest operations each; ``step()`` runs one operation."""

    def __init__(self, vcpus: Sequence[Vcpu], quantum: int = 1) -> None:
        if not vcpus:
            raise ConfigError("the scheduler needs at least one vCPU")
        if not isinstance(quantum, int) or quantum < 1:
            raise ConfigError(f"the quantum is a positive number of operations, not {quantum!r}")
        machines = {id(v.machine) for v in vcpus}
        if len(machines) != 1:
            raise ConfigError("all vCPUs must run on the same machine")
        self.vcpus = list(vcpus)
        self.quantum = quantum
        self.machine = vcpus[0].machine
        self._current = 0
        self._used = 0

    @property
    def done(self) -> bool:
        return all(v.done for v in self.vcpus)

    @property
    def current(self) -> Vcpu:
        """The vCPU that runs the next operation."""
        return self.vcpus[self._current]

    def _next(self) -> None:
        self._current = (self._current + 1) % len(self.vcpus)
        self._used = 0

    def step(self) -> bool:
        """Run one operation of the current vCPU; False once every vCPU has finished."""
        for _ in range(len(self.vcpus)):
            if not self.current.done:
                break
            self._next()
        else:
            return False
        self.current.step()
        self._used += 1
        if self._used >= self.quantum or self.current.done:
            self._next()
        return not self.done

    def run(self, max_steps: int = 1_000_000) -> int:
        """Step until every vCPU has finished (or ``max_steps``); returns the steps taken."""
        n = 0
        while n < max_steps and self.step():
            n += 1
        return n
