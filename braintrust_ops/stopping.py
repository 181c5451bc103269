"""Stopping a run well: SIGTERM (how Kubernetes stops a pod) and SIGINT (Ctrl-C).

Kubernetes sends SIGTERM and kills the pod ``terminationGracePeriodSeconds`` later (30 s by default,
SPEC.md). A run stops dispatching at once, lets what is in flight finish within a grace period, keeps
what finished, records itself as interrupted and exits 143 (SIGTERM) or 130 (SIGINT) with one line.

Outside a phase that drains gracefully (``draining()``), a signal interrupts at once: the run is then
blocked in a request or a query, and the database and the files stay consistent through their own
transactions and temporary files.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the conventional exit status of a process ended by a signal: 128 + its number
# Keyed by int: a handler is given the signal's number, and Signals is an IntEnum equal to it.
EXIT_CODES: dict[int, int] = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}
NAMES: dict[int, str] = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}


class Interrupted(BaseException):
    """The run was asked to stop. A BaseException, like KeyboardInterrupt, so no ``except Exception``
    on the way up can swallow it."""

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signum, 1)
        self.detail = detail
        # What the job finished before the stop, when the interrupted service hands its report over
        # (``as_counters()``, as services.runs.Report); the run record and the command print it.
        self.report: Any = None
        super().__init__(f"Interrupted by {NAMES.get(signum, signum)}" + (f": {detail}" if detail else ""))


class StopRequest:
    """Whether a stop was asked for, and by which signal. Shared by the main thread and the workers."""

    def __init__(self):
        self.event = threading.Event()
        self.signum: int | None = None
        self._draining = 0

    def is_set(self) -> bool:
        return self.event.is_set()

    def request(self, signum: int) -> None:
        first = not self.event.is_set()
        self.signum = self.signum or signum
        self.event.set()
        # While draining, the first signal only stops dispatching; a second one stops at once.
        if not (first and self._draining):
            raise Interrupted(signum, "" if first else "stopped at once, without waiting for calls in flight")

    @contextmanager
    def draining(self) -> Iterator[None]:
        """Within this block a signal only sets the event: the caller stops dispatching and drains."""
        self._draining += 1
        try:
            if self.event.is_set():
                raise Interrupted(self.signum or signal.SIGTERM)
            yield
        finally:
            self._draining -= 1

    def interrupted(self, detail: str = "") -> Interrupted:
        return Interrupted(self.signum or signal.SIGTERM, detail)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handle SIGTERM and SIGINT for the block (main thread only; elsewhere, a request nobody signals)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, lambda signum, frame: stop.request(signum)) for signum in EXIT_CODES}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
