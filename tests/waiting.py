"""Waiting for a condition with a deadline, never for a guessed number of seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float = 30.0, what: str = "the condition") -> T:
    """Poll `condition` until it returns something truthy (which is returned); fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)  # a poll interval, not a wait for something to have happened


class Lines:
    """Collects a subprocess stream's lines on a thread, so a test can wait for a line and still read all."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def count(self, needle: str) -> int:
        return self.text.count(needle)

    def close(self, timeout: float = 30.0) -> str:
        """Wait for the stream to end (the process exited) and return everything it said."""
        self._thread.join(timeout)
        return self.text


class FakeClock:
    """Time that passes only when the code under test sleeps (a monotonic clock and its sleep in one): rate
    limits, back-off and outage pauses become exact and instant."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
