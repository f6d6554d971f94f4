"""A quiet host while timing: the load average before a timed block and how busy the CPUs were during it.

- :func:`load_average` is ``os.getloadavg()`` (a 1-minute average: it lags, so a busy minute
  before a timing still shows in it).
- :class:`CpuMeter` reads ``/proc/stat`` before and after a timed block and gives the fraction of
  all CPUs that were busy during it (the timing process's own thread included): the direct
  answer to "was anything else running". ``None`` where ``/proc/stat`` does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_STAT = Path("/proc/stat")


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs, or None without /proc/stat."""
    try:
        fields = _STAT.read_text().splitlines()[0].split()
    except OSError:
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)          # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """Context manager: ``busy`` is the fraction of all CPUs busy during the block (None if unknown)."""

    def __init__(self) -> None:
        self.busy: float | None = None
        self.load_before: list[float] | None = None
        self._start: tuple[int, int] | None = None

    def __enter__(self) -> "CpuMeter":
        self.load_before = load_average()
        self._start = _cpu_ticks()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = _cpu_ticks()
        if self._start is not None and end is not None and end[1] > self._start[1]:
            self.busy = round((end[0] - self._start[0]) / (end[1] - self._start[1]), 4)

    def record(self) -> dict[str, Any]:
        """Columns for a results row: the load average before the block and the busy fraction during it."""
        return {"load_avg_1m": self.load_before[0] if self.load_before else None,
                "cpu_busy_fraction": self.busy, "cpu_count": os.cpu_count()}

