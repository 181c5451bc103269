"""A bounded pool of daemon threads for the Claude calls of one run.

Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined when the interpreter exits, so a
run stopped by SIGTERM would still wait for every call in flight to answer or time out (minutes, under
an outage), past Kubernetes' grace period. Daemon threads let the run leave after its own grace period;
a call abandoned that way has stored nothing (only the main thread writes to the database).
"""

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class WorkerPool:
    """``submit(item)``; ``results(timeout)`` yields (item, outcome, error) as calls finish."""

    def __init__(self, work: Callable[[Any], Any], *, workers: int, name: str = "worker"):
        self._work = work
        self._tasks: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self.in_flight = 0
        context = contextvars.copy_context()
        self._threads = [
            threading.Thread(target=context.copy().run, args=(self._loop,), name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while (item := self._tasks.get()) is not _STOP:
            try:
                self._done.put((item, self._work(item), None))
            except BaseException as exc:  # handed to the main thread, which decides
                self._done.put((item, None, exc))

    def submit(self, item: Any) -> None:
        self.in_flight += 1
        self._tasks.put(item)

    def next_result(self, timeout: float) -> tuple[Any, Any, BaseException | None] | None:
        """The next finished call, or None when none finished within ``timeout`` seconds."""
        try:
            result = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        self.in_flight -= 1
        return result

    def drop_queued(self) -> None:
        """Forget the calls not started yet."""
        while True:
            try:
                self._tasks.get_nowait()
            except queue.Empty:
                return
            self.in_flight -= 1

    def close(self) -> None:
        """Let the threads end once their current call returns; never waits for them."""
        self.drop_queued()
        for _ in self._threads:
            self._tasks.put(_STOP)
