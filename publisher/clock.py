"""The one answer to "what time is it": the real clock, or `PUBLISHER_NOW` when it is set.

Nothing else in the package reads the wall clock, so a test (or an author previewing a future date) can fix
time for every command, every `run` tick, token expiry and every timestamp written to SQLite. Durations (rate
limits, timeouts) use `time.monotonic`, which is not a time of day and is not governed here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from .errors import PublisherError

ENV = "PUBLISHER_NOW"


def fixed(environ: Mapping[str, str] | None = None) -> datetime | None:
    """The time `PUBLISHER_NOW` fixes (aware; a naive value means UTC), or None when time runs."""
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PublisherError(f"{ENV}={text!r} is not an ISO 8601 time", field=ENV,
                             hint=f"e.g. {ENV}=2026-11-26T08:00:00+08:00, or unset it to use the real clock") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now(environ: Mapping[str, str] | None = None) -> datetime:
    """The current time, aware, in UTC unless `PUBLISHER_NOW` gave another offset."""
    return fixed(environ) or datetime.now(UTC)


def timestamp() -> float:
    """`now()` as POSIX seconds, for token expiry and other epoch arithmetic."""
    return now().timestamp()


def shared_seconds() -> float:
    """The real wall clock as POSIX seconds, never fixed by `PUBLISHER_NOW`: for durations that processes on other
    machines must agree on (the rate shared by SQS workers, fanout.SharedRateLimiter). A fixed time would stop
    them; it is not a time of day anything is dated with."""
    return time.time()


def iso() -> str:
    """`now()` in UTC to the second, the form every timestamp column in SQLite holds."""
    return now().astimezone(UTC).isoformat(timespec="seconds")


def nap(stop: threading.Event, seconds: float, step: float = 0.05) -> bool:
    """Wait up to `seconds`, waking early when `stop` is set (then True). Relative sleeps, not
    `Event.wait(timeout)`: a timed wait computes an absolute deadline, which a clock moved under the process
    (libfaketime in our CI, a VM resumed from suspend) can push years away."""
    for _ in range(max(1, round(seconds / step))):
        if stop.is_set():
            return True
        time.sleep(step)
    return stop.is_set()
