"""How far a long run is: done of total, percent and time left (pure; the log line and the
Prefect progress artifact of a run both read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed_s: float

    @property
    def percent(self) -> float:
        """0-100; a run with nothing to do is 100 % done."""
        if self.total <= 0:
            return 100.0
        return round(min(100.0, 100.0 * self.done / self.total), 1)

    @property
    def seconds_left(self) -> float | None:
        """At the rate so far; None before anything is done."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.total - self.done) * self.elapsed_s / self.done)

    def line(self) -> str:
        """``120 of 300 (40.0%), about 18 s left``."""
        left = self.seconds_left
        eta = "" if left is None or self.done >= self.total else f", about {_duration(left)} left"
        return f"{self.done} of {self.total} ({self.percent:g}%){eta}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
