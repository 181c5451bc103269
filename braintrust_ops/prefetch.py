"""Fetch the next item of a slow iterator while the caller works on the current one.

``backup_logs`` alternates between waiting for a BTQL page (the server's work and the transfer) and
writing it (our CPU); running the two side by side hides most of the wait. At most one item is
fetched ahead, so memory holds two pages, not the whole result.
"""

import contextvars
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _NextItem:
    """One ``next(iterator)`` running in its own thread; ``result()`` waits for it.

    The thread is a daemon: a command stopped by SIGTERM exits at once instead of waiting for a
    request in flight to time out. It runs in a copy of the caller's context, so log lines keep the
    fields bound with structlog's contextvars.
    """

    def __init__(self, iterator: Iterator[T]):
        self._ready = threading.Event()
        self._item: object = _END
        self._error: BaseException | None = None
        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._fetch, iterator), name="prefetch", daemon=True
        )
        thread.start()

    def _fetch(self, iterator: Iterator[T]) -> None:
        try:
            self._item = next(iterator, _END)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self._error = exc
        finally:
            self._ready.set()

    def result(self) -> object:
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._item


def prefetched(iterator: Iterator[T]) -> Iterator[T]:
    """The items of ``iterator`` in order; an exception it raises reaches the caller at the same point."""
    pending = _NextItem(iterator)
    while (item := pending.result()) is not _END:
        pending = _NextItem(iterator)
        yield item  # type: ignore[misc]
