"""push_to_datasets: the second half of the nightly job. A thin command over ``services.datasets``."""

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.locks import command_lock
from braintrust_ops.management.base import OpsCommand, recorded_options
from braintrust_ops.services.datasets import PushReport, datasets_push
from braintrust_ops.services.runs import run_recorded
from braintrust_ops.stopping import stop_on_signals


class Command(OpsCommand):
    help = (
        "Insert every tagged log into each Braintrust dataset whose description subscribes to one of its tags "
        '([[relevant_tags: ["tag", ...]]]), exactly once.'
    )
    required_settings = ("braintrust_api_key", "braintrust_project_id")
    interrupted_advice = (
        "The batch in flight was abandoned and the ledger holds only confirmed rows; run push_to_datasets "
        "again to send the rest (inserts upsert by id, so nothing is duplicated)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dataset",
            action="append",
            metavar="NAME_OR_ID",
            help="Push only to this dataset (repeatable).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report per dataset what would be inserted; write nothing."
        )
        parser.add_argument(
            "--reconcile",
            action="store_true",
            help="Read each subscribed dataset once and repair the ledger from the rows this app inserted.",
        )

    def handle(self, *args, **opts):
        self.verbosity = opts["verbosity"]
        config = self.load_config()
        braintrust = BraintrustClient.from_config(config)
        try:
            with stop_on_signals():
                if opts["dry_run"]:
                    report = datasets_push(
                        config=config, braintrust=braintrust, run=None, dataset_filter=opts["dataset"], dry_run=True
                    )
                else:
                    report = run_recorded(
                        command="push_to_datasets",
                        options=recorded_options(opts, ("dataset", "reconcile")),
                        config=config,
                        lock=command_lock("push_to_datasets"),
                        job=lambda run: datasets_push(
                            config=config,
                            braintrust=braintrust,
                            run=run,
                            dataset_filter=opts["dataset"],
                            reconcile=opts["reconcile"],
                        ),
                    )
        finally:
            braintrust.close()
        self.print_report(report)

    def print_report(self, report: PushReport) -> None:
        for line in report.skipped_malformed:
            self.stderr.write(self.style.WARNING(f"Skipped dataset with a malformed marker: {line}"))
        for line in report.unknown_tags:
            self.stderr.write(
                self.style.WARNING(f"Dataset subscribes to a tag that is not taggable (never matches): {line}")
            )
        if not report.subscribed:
            self.say(f"No subscribed datasets among {report.datasets_listed} listed. Nothing to push.")
            return
        prefix = "[dry run] " if report.dry_run else ""
        if report.reconciled:
            self.say(f"Ledger repaired from the datasets: {report.reconciled} rows")
        for item in report.datasets:
            line = (
                f"{prefix}{item.dataset_name}: matched {item.matched}, already present {item.already_present}, "
                + (
                    f"would insert {item.to_insert}"
                    if report.dry_run
                    else f"inserted {item.inserted}, failed {item.failed}"
                )
                + (
                    f"; {'would take out' if report.dry_run else 'taken out'} after a person's correction: "
                    f"{item.removed}"
                    if item.removed
                    else ""
                )
                + (f" (refused by the dataset: {item.refused})" if item.refused else "")
                + (f"; given up after repeated refusals: {item.given_up}" if item.given_up else "")
                + (f"; too large for any request, given up at once: {item.too_large}" if item.too_large else "")
            )
            self.say(line, style=self.style.ERROR if item.error else None)
        self._print_too_large(report)
        drifted = [item for item in report.datasets if item.no_longer_matching]
        if drifted:
            self.say(
                f"{prefix}Rows already in a dataset whose log was labelled again and no longer matches its "
                "subscription (datasets are append-only: left as they are, for a person to decide): "
                + ", ".join(f"{item.dataset_name} {item.no_longer_matching}" for item in drifted)
            )
        if not report.dry_run:
            self.say(
                f"Inserted {report.inserted} rows into {_count(report.subscribed, 'dataset')} in "
                f"{_count(report.requests, 'request')}; "
                f"elapsed {report.elapsed_seconds:.1f}s",
                style=self.style.SUCCESS if not (report.failed or self.failed_run) else self.style.WARNING,
            )

    def _print_too_large(self, report: PushReport) -> None:
        if not report.too_large:
            return
        self.stderr.write(
            self.style.WARNING(
                f"Rows too large for any insert request, given up at once: {report.too_large} (not a failure of the "
                "run; their ids and why: the run's refused logs in the admin, or -v 2). Add such a row to its dataset "
                "by hand in Braintrust if it matters; one under the braintrust SDK's 6 MB cap goes in after raising "
                "BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES and deleting its ledger row (admin: Dataset insertions)."
            )
        )
        if self.verbosity > 1:
            for line in report.refused_logs:
                self.stderr.write(f"  too large {line}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
