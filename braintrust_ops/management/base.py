"""What every braintrust_ops command shares: config checked before any request, app errors turned
into CommandError (one line, a non-zero exit), a stopped run's exit status, Sentry around the run (a
client where the host has a DSN but none, a failed run's exception sent), and parsers for options."""

import argparse
from datetime import UTC, datetime

from django.apps import apps
from django.core import checks
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.dateparse import parse_datetime

from braintrust_ops.conf import OpsConfig, load_config
from braintrust_ops.db_errors import database_failure
from braintrust_ops.exceptions import BraintrustOpsError, CommandLocked
from braintrust_ops.monitoring import command_sentry, report_failure
from braintrust_ops.services.runs import RunFailed
from braintrust_ops.shards import Shard, parse_shard
from braintrust_ops.stopping import Interrupted


def iso_time(value: str) -> datetime:
    """argparse type for --since/--until: ISO 8601; a time without a zone is taken as UTC."""
    moment = parse_datetime(value.strip().replace("Z", "+00:00"))
    if moment is None:
        raise ValueError(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


iso_time.__name__ = "ISO 8601 time"


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


positive_int.__name__ = "positive integer"


def shard_option(value: str) -> Shard:
    try:
        return parse_shard(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def figure(value: float | None, interval=None) -> str:
    """0.83 [0.61-0.94]; "n/a" without a count to measure it on."""
    if value is None:
        return "n/a"
    return f"{value:.2f}" + (f" [{interval[0]:.2f}-{interval[1]:.2f}]" if interval else "")


def agreement_line(row: dict, *, labeller: bool = True) -> str:
    """One tag's figures of Claude against people (``agreement.TagAgreement.as_dict``), for a person."""
    # Imported here: printable is light, but keeps this module's imports to what every command needs.
    from braintrust_ops.printable import printable

    who = (
        f" ({printable(row['model'])}, prompt {printable(row['prompt_version'])}, {row['reviewed']} reviewed)"
        if labeller
        else ""
    )
    return (
        f"{printable(row['tag'])}{who}: precision {figure(row['precision'], row['precision_95'])} of "
        f"{row['true_positives'] + row['false_positives']}, recall {figure(row['recall'], row['recall_95'])} of "
        f"{row['true_positives'] + row['false_negatives']}, F1 {figure(row['f1'])}"
    )


def recorded_options(opts: dict, keys: tuple[str, ...]) -> dict:
    """The options a run record keeps: the ones given, as JSON can hold them (times as ISO text, any
    other parsed value, such as a shard, as its text)."""
    given = {key: value for key in keys if (value := opts.get(key))}
    return {key: _recordable(value) for key, value in given.items()}


def _recordable(value):
    if isinstance(value, (str, int, float, bool, list)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class OpsCommand(BaseCommand):
    # Not the host's system checks: in Sefaria-Project they import its models, which connect to MongoDB at
    # import (sso/adapters.py -> sefaria/model -> sefaria/system/database.py), so a CronJob pod without
    # MongoDB would wait, then fail, before this app ran (../shared/reference/sefaria-host.md). The host's
    # deploy runs `manage.py check` for the host; each command here checks only this app's models.
    requires_system_checks: list[str] = []
    #: settings this command cannot start without (OpsConfig field names)
    required_settings: tuple[str, ...] = ()
    #: what a person should know when a run of this command was interrupted
    interrupted_advice = "The run is recorded as interrupted; what finished is kept. Run the command again to finish."
    #: set while the report of a run that failed or was stopped is printed: it must not end in a success line
    failed_run = False

    def execute(self, *args, **options):
        self.check(app_configs=[apps.get_app_config("braintrust_ops")], tags=[checks.Tags.models])
        with command_sentry():
            try:
                return super().execute(*args, **options)
            except RunFailed as exc:
                self.report_failure(exc, options)
                self.failed_run = True
                self.print_report(exc.report)
                raise CommandError(str(exc)) from None
            except Interrupted as exc:
                # Not sent as an exception (its check-in says "error"): Kubernetes stopped the pod (a deadline,
                # an eviction), the code did not fail, and the next run finishes what is left.
                if exc.report is not None:
                    self.failed_run = True
                    self.print_report(exc.report)
                # 130 for SIGINT, 143 for SIGTERM, as a shell reports a process a signal ended; one line, no traceback.
                raise CommandError(f"{exc}. {self.interrupted_advice}", returncode=exc.exit_code) from None
            except CommandLocked as exc:
                # Another run holds the lock: that run is the night's, and it reports for itself.
                raise CommandError(str(exc)) from exc
            except BraintrustOpsError as exc:
                self.report_failure(exc, options)
                raise CommandError(str(exc)) from exc
            except CommandError as exc:
                # A command's own CommandError is a wrong option, told to whoever typed it; one made from an
                # app error (backup_logs adds advice to a service's error) is a failed run.
                if isinstance(exc.__cause__, BraintrustOpsError):
                    self.report_failure(exc.__cause__, options)
                raise
            except DatabaseError as exc:
                # A database the command cannot use (no tables, locked, read-only, unreachable): one line saying
                # what to do, not the driver's traceback. Sent to Sentry as any failed run is.
                self.report_failure(exc, options)
                raise CommandError(database_failure(exc)) from exc
            except Exception as exc:
                self.report_failure(exc, options)
                raise

    def report_failure(self, error: BaseException, options: dict) -> None:
        """Send a failed run's exception to Sentry (``monitoring.report_failure``)."""
        shard = options.get("shard")
        report_failure(error, command=self.__module__.rsplit(".", 1)[-1], shard=str(shard) if shard else None)

    def print_report(self, report) -> None:
        """Print the service's report for a person."""

    def load_config(self) -> OpsConfig:
        return load_config().require(*self.required_settings)

    def say(self, message: str = "", *, style=None) -> None:
        self.stdout.write(style(message) if style else message)
