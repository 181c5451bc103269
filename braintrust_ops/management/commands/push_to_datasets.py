"""push_to_datasets: the second half of the nightly job. A thin command over ``services.datasets``."""

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.exceptions import RemoteServiceError
from braintrust_ops.locks import command_lock
from braintrust_ops.management.base import OpsCommand, recorded_options
from braintrust_ops.services.datasets import PushReport, datasets_push
from braintrust_ops.services.runs import recorded_run, run_finish


class Command(OpsCommand):
    help = (
        "Insert every tagged log into each Braintrust dataset whose description subscribes to one of its tags "
        '([[relevant_tags: ["tag", ...]]]), exactly once.'
    )
    required_settings = ("braintrust_api_key", "braintrust_project_id")

    def add_arguments(self, parser):
        parser.add_argument(
            "--dataset",
            action="append",
            metavar="NAME_OR_ID",
            help="Push only to this dataset (repeatable).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report per dataset what would be inserted; write nothing.")
        parser.add_argument(
            "--reconcile",
            action="store_true",
            help="Read each subscribed dataset once and repair the ledger from the rows this app inserted.",
        )

    def handle(self, *args, **opts):
        config = self.load_config()
        braintrust = BraintrustClient.from_config(config)
        try:
            if opts["dry_run"]:
                report = datasets_push(
                    config=config, braintrust=braintrust, run=None, dataset_filter=opts["dataset"], dry_run=True
                )
                self._print(report)
                return
            options = recorded_options(opts, ("dataset", "reconcile"))
            with command_lock("push_to_datasets"), recorded_run(command="push_to_datasets", options=options) as run:
                report = datasets_push(
                    config=config,
                    braintrust=braintrust,
                    run=run,
                    dataset_filter=opts["dataset"],
                    reconcile=opts["reconcile"],
                )
                self._print(report)
                problem = self._problem(report, config.push_failure_threshold)
                run_finish(run, succeeded=not problem, counters=report.as_counters(), error=problem)
                if problem:
                    raise RemoteServiceError(problem, service="Braintrust")
        finally:
            braintrust.close()

    @staticmethod
    def _problem(report: PushReport, threshold: float) -> str:
        failed = report.failed_datasets
        if failed:
            names = ", ".join(item.dataset_name for item in failed)
            return (
                f"{len(failed)} dataset(s) failed: {names} ({failed[0].error}). "
                "What was confirmed is recorded; run push_to_datasets again to send the rest."
            )
        if report.failure_rate > threshold:
            return (
                f"{report.failed} rows failed ({report.failure_rate:.0%}, above the {threshold:.0%} threshold): "
                f"{report.refused} refused by their dataset on their own, recorded in the ledger (admin: Dataset "
                "insertions, status failed) and retried by the next runs up to BRAINTRUST_OPS_PUSH_MAX_ATTEMPTS."
            )
        return ""

    def _print(self, report: PushReport) -> None:
        for line in report.skipped_malformed:
            self.stderr.write(self.style.WARNING(f"Skipped dataset with a malformed marker: {line}"))
        for line in report.unknown_tags:
            self.stderr.write(self.style.WARNING(f"Dataset subscribes to a tag that is not taggable (never matches): {line}"))
        if not report.subscribed:
            self.say(f"No subscribed datasets among {report.datasets_listed} listed. Nothing to push.")
            return
        prefix = "[dry run] " if report.dry_run else ""
        if report.reconciled:
            self.say(f"Ledger repaired from the datasets: {report.reconciled} rows")
        for item in report.datasets:
            line = (
                f"{prefix}{item.dataset_name}: matched {item.matched}, already present {item.already_present}, "
                + (f"would insert {item.to_insert}" if report.dry_run else f"inserted {item.inserted}, failed {item.failed}")
                + (f" (refused by the dataset: {item.refused})" if item.refused else "")
                + (f"; given up after repeated refusals: {item.given_up}" if item.given_up else "")
            )
            self.say(line, style=self.style.ERROR if item.error else None)
        if not report.dry_run:
            self.say(
                f"Inserted {report.inserted} rows into {_count(report.subscribed, 'dataset')} in "
                f"{_count(report.requests, 'request')}; "
                f"elapsed {report.elapsed_seconds:.1f}s",
                style=self.style.SUCCESS if not report.failed else self.style.WARNING,
            )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
