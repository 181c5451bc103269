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

from braintrust_ops.conf import SECRET_KEYS, OpsConfig, load_config
from braintrust_ops.exceptions import BraintrustOpsError, ConfigurationError
from braintrust_ops.models import CommandRun
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


def _secrets() -> list[str]:
    try:
        config = load_config()
    except ConfigurationError:  # reported by the command itself; here it only means no secrets to hide
        return []
    return [value for key in SECRET_KEYS if (value := getattr(config, key.lower()))]


def run_start(*, command: str, options: dict, is_alive: Callable[[CommandRun], bool] | None = None) -> CommandRun:
    """Record a new run, and mark as abandoned the runs of this command still recorded as running whose
    process is gone. ``is_alive`` tells; without it, the caller's lock proves no other run is alive."""
    now = timezone.now()
    running = CommandRun.objects.filter(command=command, outcome=CommandRun.Outcome.RUNNING)
    dead = [run.pk for run in running if is_alive is None or not is_alive(run)]
    if dead:
        CommandRun.objects.filter(pk__in=dead, outcome=CommandRun.Outcome.RUNNING).update(
            outcome=CommandRun.Outcome.FAILED, finished_at=now, error=ABANDONED
        )
    return CommandRun.objects.create(command=command, options=options, started_at=now)


def run_finish(run: CommandRun, *, outcome: str, counters: dict | None = None, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.outcome = outcome
    if counters is not None:
        run.counters = counters
    run.error = redact(error, _secrets())
    run.save()


def run_recorded(
    *,
    command: str,
    options: dict,
    config: OpsConfig,
    lock: AbstractContextManager,
    job: Callable[[CommandRun], R],
    is_alive: Callable[[CommandRun], bool] | None = None,
) -> R:
    """Run ``job`` under ``lock`` with a run record, finished once: succeeded, failed (the success rule,
    or an error escaping the job) or interrupted. Raises RunFailed when the rule says the job failed."""
    with lock:
        run = run_start(command=command, options=options, is_alive=is_alive)
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
    report = getattr(exc, "report", None)
    return report.as_counters() if report is not None else None
