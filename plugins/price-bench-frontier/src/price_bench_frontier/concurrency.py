"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD), within bounds.

:class:`AdaptiveLimit` gates how many requests are in flight. Every success
adds ``increase / level`` (about +1 per full window of successes); an
overload signal (HTTP 429, a timeout) multiplies the level by ``decrease``,
at most once per window: only a request that started after the last
decrease can cause the next one, so a burst of 429s from one window halves
the level once, not once per answer. The level stays within
``[minimum, maximum]``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Permit:
    """Proof of one acquired slot; ``epoch`` is the decrease count when it was granted."""

    epoch: int


class AdaptiveLimit:
    """A counting gate whose size follows AIMD."""

    def __init__(self, initial: int, maximum: int | None = None, *, minimum: int = 1, increase: float = 1.0, decrease: float = 0.5) -> None:
        maximum = initial if maximum is None else maximum
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError(f"need 1 <= minimum ({minimum}) <= concurrency ({initial}) <= max_concurrency ({maximum})")
        if not 0 < decrease < 1 or increase <= 0:
            raise ValueError("need 0 < decrease < 1 and increase > 0")
        self.minimum, self.maximum = minimum, maximum
        self.increase, self.decrease = increase, decrease
        self._level = float(initial)
        self._in_flight = 0
        self._epoch = 0
        self.lowest = self.highest = initial
        self.decreases = 0
        self._cond = threading.Condition()

    @property
    def level(self) -> int:
        """Requests allowed in flight now."""
        with self._cond:
            return self._current()

    def _current(self) -> int:
        return max(self.minimum, min(self.maximum, int(self._level)))

    def acquire(self) -> Permit:
        """Wait for a free slot."""
        with self._cond:
            while self._in_flight >= self._current():
                self._cond.wait()
            self._in_flight += 1
            return Permit(self._epoch)

    def release(self, permit: Permit, outcome: str) -> None:
        """Free the slot; ``outcome`` is "ok" (grow), "overload" (shrink) or "neutral"."""
        with self._cond:
            self._in_flight -= 1
            if outcome == "ok":
                self._level = min(float(self.maximum), self._level + self.increase / max(1.0, self._level))
            elif outcome == "overload" and permit.epoch == self._epoch:
                self._level = max(float(self.minimum), self._level * self.decrease)
                self._epoch += 1
                self.decreases += 1
            level = self._current()
            self.lowest, self.highest = min(self.lowest, level), max(self.highest, level)
            self._cond.notify_all()

    def summary(self) -> dict[str, int]:
        """The current, lowest and highest level and how many times it was cut."""
        with self._cond:
            return {"level": self._current(), "lowest": self.lowest, "highest": self.highest, "maximum": self.maximum, "decreases": self.decreases}
