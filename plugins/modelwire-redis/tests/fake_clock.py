"""A clock for the limiter's ``clock`` option that moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told: ``clock.advance(0.3)``. Passed as a
    limiter's ``clock``, it makes window tests independent of machine speed."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
