"""Interactive mode: the queue sent to Claude now, a few calls at a time (``dispatch``)."""

import time

import structlog

from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.services.tagging.dispatch import Dispatcher, Tally
from braintrust_ops.services.tagging.queue import queue_jobs
from braintrust_ops.services.tagging.state import TaggingRun

logger = structlog.get_logger(__name__)


def queue_send(run: TaggingRun) -> None:
    """Send the run's queue, within its budget; the results are stored as they come (``run.tally``)."""
    jobs = queue_jobs(run)
    claude = run.new_claude()
    progress = _Progress(interactive=run.interactive)
    config = run.config
    dispatcher = Dispatcher(
        call=run.call(claude),
        run=run.record,
        concurrency=run.options.concurrency or config.tagging_concurrency,
        max_attempts=config.tagging_max_attempts,
        breaker=OutageBreaker(threshold=config.claude_outage_threshold),
        stop=run.stop,
        grace_seconds=config.shutdown_grace_seconds,
        progress=progress,
        tally=run.tally,
    )
    try:
        run.tally = dispatcher.run_queue(jobs)
        if run.tally.stopped_early:
            for _ in jobs:  # count the rest of the queue, so the report says what stays queued
                pass
    finally:
        # Close the database cursor behind the job queue now, while the connection is open; left to the
        # garbage collector it fails after Django has closed the connection and hides the real error.
        jobs.close()
        progress.close()
        run.report.rate_limited = claude.limiter.refused
        claude.close()


class _Progress:
    """A tqdm bar for a person at a terminal; a structured event every few seconds for the CronJob."""

    def __init__(self, *, interactive: bool, total: int | None = None, interval: float = 5.0):
        self.interval = interval
        self._bar = None
        self._last = time.monotonic()
        if interactive:
            from tqdm import tqdm

            self._bar = tqdm(unit="log", desc="tagging", total=total)

    def step(self, tally: Tally) -> None:
        if self._bar is not None:
            self._bar.update(1)
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            logger.info("tagging_progress", sent=tally.sent, tagged=tally.tagged, failed=tally.failed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
