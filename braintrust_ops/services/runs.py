"""One lifecycle for every command run: open the record, do the job, judge it by the command's one
success rule, finish the record exactly once.

Commands parse arguments, call ``run_recorded`` with the service's job, and print its report; they
neither open nor finish records. A job returns a report with ``as_counters()`` and ``problem(config)``
(the command's success rule: "" when the job did its work, else what went wrong and what to do).
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from django.utils import timezone

from braintrust_ops import locks
from braintrust_ops.conf import OpsConfig, secret_values
from braintrust_ops.exceptions import BraintrustOpsError
from braintrust_ops.models import CommandRun
from braintrust_ops.monitoring import cron_monitor
from braintrust_ops.redaction import redact
from braintrust_ops.stopping import Interrupted

ABANDONED = "Abandoned: the process ended without finishing (killed, evicted or out of memory); a later run took over."


class Report(Protocol):
    def as_counters(self) -> dict: ...

    def problem(self, config: OpsConfig) -> str: ...


R = TypeVar("R", bound=Report)


class RunFailed(BraintrustOpsError):
    """The job ran but did not do its work; ``report`` says what it did, the message what went wrong."""

    def __init__(self, message: str, *, report: Report):
        super().__init__(message)
        self.report = report


def _is_alive(run: CommandRun) -> bool:
    """Whether the process of a run recorded as running still holds its liveness key. A run recorded
    before the key existed has none: the lock its command took proves it dead, as it always did."""
    return run.lock_key is not None and locks.is_alive(run.lock_key)


def run_start(*, command: str, options: dict, lock_key: int | None = None) -> CommandRun:
    """Record a new run, and mark as abandoned the runs of this command still recorded as running whose
    process is gone (killed, evicted, out of memory). A live one, a shard run beside this one, stays."""
    now = timezone.now()
    running = CommandRun.objects.filter(command=command, outcome=CommandRun.Outcome.RUNNING)
    dead = [run.pk for run in running if not _is_alive(run)]
    if dead:
        CommandRun.objects.filter(pk__in=dead, outcome=CommandRun.Outcome.RUNNING).update(
            outcome=CommandRun.Outcome.FAILED, finished_at=now, error=ABANDONED
        )
    return CommandRun.objects.create(command=command, options=options, started_at=now, lock_key=lock_key)


def run_finish(run: CommandRun, *, outcome: str, counters: dict | None = None, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.outcome = outcome
    if counters is not None:
        run.counters = counters
    run.error = redact(error, secret_values())
    run.save()


def run_recorded(
    *,
    command: str,
    options: dict,
    config: OpsConfig,
    lock: AbstractContextManager,
    job: Callable[[CommandRun], R],
) -> R:
    """Run ``job`` under ``lock`` with a run record, finished once: succeeded, failed (the success rule,
    or an error escaping the job) or interrupted. Raises RunFailed when the rule says the job failed."""
    # The liveness key is held before the record exists, so a new run never looks dead to another. The
    # check-in comes after the lock: a run refused because another holds it is not a failed night.
    with (
        lock,
        locks.run_liveness() as key,
        cron_monitor(command, shard=options.get("shard"), schedule=config.cron_schedule),
    ):
        run = run_start(command=command, options=options, lock_key=key)
        try:
            report = job(run)
        except Interrupted as exc:
            run_finish(run, outcome=CommandRun.Outcome.INTERRUPTED, counters=_partial(exc), error=str(exc))
            raise
        except BaseException as exc:
            run_finish(run, outcome=CommandRun.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        problem = report.problem(config)
        outcome = CommandRun.Outcome.FAILED if problem else CommandRun.Outcome.SUCCEEDED
        run_finish(run, outcome=outcome, counters=report.as_counters(), error=problem)
        if problem:
            raise RunFailed(problem, report=report)
        return report


def _partial(exc: Interrupted) -> dict | None:
    """The counters of what an interrupted job finished, when it handed its report over."""
    return exc.report.as_counters() if exc.report is not None else None
