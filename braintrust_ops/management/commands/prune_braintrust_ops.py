"""prune_braintrust_ops: the retention step of the nightly job. A thin command over ``services.retention``."""

from contextlib import ExitStack, contextmanager

from django.utils import timezone

from braintrust_ops.locks import command_lock
from braintrust_ops.management.base import OpsCommand, positive_int
from braintrust_ops.services.retention import tagged_logs_prune
from braintrust_ops.services.runs import run_recorded
from braintrust_ops.stopping import stop_on_signals


class Command(OpsCommand):
    help = (
        "Delete tagged logs (users' chat text) whose log time is older than the retention period "
        "(BRAINTRUST_OPS_RETENTION_DAYS, default 30). The insertion ledger keeps their ids, so exactly-once holds. "
        "Logs never labelled (pending, failed with attempts left, in an open batch) are kept, however old."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=positive_int, help="Keep this many days instead of the configured retention."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, **opts):
        config = self.load_config()
        days = opts["days"] or config.retention_days
        max_attempts = config.tagging_max_attempts
        if opts["dry_run"]:
            report = tagged_logs_prune(retention_days=days, now=timezone.now(), max_attempts=max_attempts, dry_run=True)
            self.say(
                f"[dry run] Would delete {report.deleted} tagged logs older than {report.cutoff:%Y-%m-%d %H:%M} UTC"
                f"{_kept(report.kept_never_labelled, 'would keep')}."
            )
            return
        # Not while a run is tagging or pushing: they may be holding the rows this deletes.
        with stop_on_signals():
            report = run_recorded(
                command="prune_braintrust_ops",
                options={"days": days},
                config=config,
                lock=_all_locks("prune_braintrust_ops", "tag_logs", "push_to_datasets"),
                job=lambda run: tagged_logs_prune(retention_days=days, now=timezone.now(), max_attempts=max_attempts),
            )
        kept = _kept(report.kept_never_labelled, "kept")
        self.say(
            f"Deleted {report.deleted} tagged logs older than {report.cutoff:%Y-%m-%d %H:%M} UTC "
            f"(retention {days} days); the insertion ledger keeps their ids{kept}.",
            style=self.style.SUCCESS,
        )


def _kept(count: int, verb: str) -> str:
    if not count:
        return ""
    return (
        f"; {verb} {count} never labelled (pending, failed with attempts left, or in an open Message Batch): "
        "tag_logs still labels them"
    )


@contextmanager
def _all_locks(*names: str):
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(command_lock(name))
        yield
