"""The record of each command run: what was asked, how it ended, what it counted."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from braintrust_ops.conf import SECRET_KEYS, load_config
from braintrust_ops.exceptions import ConfigurationError
from braintrust_ops.models import CommandRun
from braintrust_ops.redaction import redact


def _secrets() -> list[str]:
    try:
        config = load_config()
    except ConfigurationError:  # reported by the command itself; here it only means no secrets to hide
        return []
    return [value for key in SECRET_KEYS if (value := getattr(config, key.lower()))]


ABANDONED = "Abandoned: the process ended without finishing (killed, evicted or out of memory); a later run took over."


def run_start(*, command: str, options: dict) -> CommandRun:
    """Record a new run. Called with the command's lock held, so an earlier run of the same command
    still marked running cannot be alive: it was killed, and its record says so from now on."""
    now = timezone.now()
    CommandRun.objects.filter(command=command, outcome=CommandRun.Outcome.RUNNING).update(
        outcome=CommandRun.Outcome.FAILED, finished_at=now, error=ABANDONED
    )
    return CommandRun.objects.create(command=command, options=options, started_at=now)


def run_finish(run: CommandRun, *, succeeded: bool, counters: dict | None = None, error: str = "") -> None:
    run.finished_at = timezone.now()
    run.outcome = CommandRun.Outcome.SUCCEEDED if succeeded else CommandRun.Outcome.FAILED
    if counters is not None:
        run.counters = counters
    run.error = redact(error, _secrets())
    run.save()


@contextmanager
def recorded_run(*, command: str, options: dict) -> Iterator[CommandRun]:
    """Record a run; an exception escaping the block marks it failed with the error, then propagates."""
    run = run_start(command=command, options=options)
    try:
        yield run
    except BaseException as exc:
        run_finish(run, succeeded=False, error=f"{type(exc).__name__}: {exc}")
        raise
