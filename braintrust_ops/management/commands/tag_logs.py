"""tag_logs: the first half of the nightly job. A thin command: options in, ``services.tagging`` does the work."""

import sys

from django.core.management.base import CommandError

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.clients.claude import ClaudeClient
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.locks import tag_logs_lock
from braintrust_ops.management.base import (
    OpsCommand,
    agreement_line,
    iso_time,
    positive_int,
    recorded_options,
    shard_option,
)
from braintrust_ops.printable import printable
from braintrust_ops.services.runs import run_recorded
from braintrust_ops.services.tagging import TaggingOptions, TaggingReport, logs_tag
from braintrust_ops.stopping import stop_on_signals

# What the run record keeps of the command line.
RECORDED_OPTIONS = (
    "hours",
    "since",
    "until",
    "retag",
    "retag_stale",
    "limit",
    "concurrency",
    "push",
    "shard",
    "batch",
    "wait",
)


class Command(OpsCommand):
    help = (
        "Fetch the project's chatbot logs (root spans) from Braintrust and have Claude label each with 0-3 "
        "of the project's dataset-tagging tags. By default it takes every log Braintrust ingested since the last "
        "successful run (by _xact_id, so a log flushed late is not missed), or the last 24 hours on a first run."
    )
    required_settings = ("braintrust_api_key", "braintrust_project_id", "anthropic_api_key")

    def add_arguments(self, parser):
        window = parser.add_mutually_exclusive_group()
        window.add_argument(
            "--hours",
            type=positive_int,
            help="Backfill: the logs created in the last N hours (the backlog of earlier runs is sent too; this "
            "does not limit it: use --limit).",
        )
        window.add_argument(
            "--since", type=iso_time, help="Backfill: the logs created since this time (ISO 8601, UTC if no zone)."
        )
        parser.add_argument(
            "--until", type=iso_time, help="Backfill: created before this time (ISO 8601; default now)."
        )
        parser.add_argument(
            "--retag",
            action="store_true",
            help="Label the window's logs again, even if tagged (with --hours or --since).",
        )
        parser.add_argument(
            "--retag-stale",
            action="store_true",
            help="Label again, oldest first and within the run's budget and the retention, the logs labelled under "
            "another set of taggable tags (a tag added, reworded or retired since).",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Send the queue as Anthropic Message Batches: half the price, results within 24 hours (most within "
            "one). A later run collects them, or this one with --wait. BRAINTRUST_OPS_TAGGING_BATCH=true makes it "
            "the default.",
        )
        parser.add_argument(
            "--wait",
            type=positive_int,
            metavar="MINUTES",
            help="With --batch: wait up to MINUTES for the run's batches to end, and collect their results.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be sent to Claude; call nothing, write nothing."
        )
        parser.add_argument("--limit", type=positive_int, help="Send at most N logs to Claude in this run.")
        parser.add_argument("--concurrency", type=positive_int, help="Parallel Claude calls (default from settings).")
        parser.add_argument(
            "--push", action="store_true", help="Run push_to_datasets right after a successful tagging run."
        )
        parser.add_argument(
            "--shard",
            type=shard_option,
            metavar="I/N",
            help="Take only the logs whose id hashes to shard I of N (0 <= I < N), for N runs side by side "
            "on one PostgreSQL, e.g. a Kubernetes Indexed Job: --shard $(JOB_COMPLETION_INDEX)/4. "
            "Run push_to_datasets once after every shard finished (--push is refused here).",
        )

    def handle(self, *args, **opts):
        self.verbosity = opts["verbosity"]
        if opts["wait"] and not opts["batch"]:
            raise CommandError("--wait goes with --batch: it waits for the run's Message Batches to end.")
        if opts["shard"] is not None and opts["push"]:
            raise CommandError(
                "--push cannot be combined with --shard: the shards would race to push. Run push_to_datasets "
                "once after every shard has finished."
            )
        config = self.load_config()
        self.project_id = config.braintrust_project_id
        options = TaggingOptions(
            since=opts["since"],
            until=opts["until"],
            hours=opts["hours"],
            retag=opts["retag"],
            dry_run=opts["dry_run"],
            limit=opts["limit"],
            concurrency=opts["concurrency"],
            shard=opts["shard"],
            batch=opts["batch"],
            wait_minutes=opts["wait"],
            retag_stale=opts["retag_stale"],
        )
        braintrust = BraintrustClient.from_config(config)
        try:
            with stop_on_signals() as stop:
                if options.dry_run:
                    report = logs_tag(
                        options=options, config=config, braintrust=braintrust, claude_factory=None, run=None
                    )
                else:
                    report = run_recorded(
                        command="tag_logs",
                        options=recorded_options(opts, RECORDED_OPTIONS),
                        config=config,
                        lock=tag_logs_lock(options.shard),
                        job=lambda run: logs_tag(
                            options=options,
                            config=config,
                            braintrust=braintrust,
                            claude_factory=lambda **kw: ClaudeClient.from_config(config, **kw),
                            batch_factory=lambda: BatchClient.from_config(config),
                            run=run,
                            stop=stop,
                            interactive=sys.stderr.isatty() and opts["verbosity"] > 0,
                        ),
                    )
        finally:
            braintrust.close()
        self.print_report(report)
        if opts["push"] and not options.dry_run:
            from django.core.management import call_command

            call_command("push_to_datasets", stdout=self.stdout, stderr=self.stderr, verbosity=opts["verbosity"])

    def print_report(self, report: TaggingReport) -> None:
        for line in report.refused_tags:
            self.stderr.write(self.style.WARNING(f"Tag left out of tagging: {line}. Rename it in Braintrust."))
        if not report.taggable_tags:
            self.say(
                f"No taggable tags in project {self.project_id}: no project tag has 'dataset-tagging' in its "
                "description (or BRAINTRUST_PROJECT_ID names another project). Nothing to do."
            )
            return
        prefix = "[dry run] " if report.dry_run else ""
        if report.after_xact_id:
            self.say(
                f"{prefix}Window: logs ingested since the last successful run (_xact_id after {report.after_xact_id}), "
                f"created since {report.window_start:%Y-%m-%d %H:%M:%S} UTC"
            )
        else:
            self.say(
                f"{prefix}Window: {report.window_start:%Y-%m-%d %H:%M:%S} to {report.window_end:%Y-%m-%d %H:%M:%S} UTC"
            )
        if report.shard:
            self.say(f"{prefix}Shard {report.shard}: {report.other_shards} logs of the window left to the other shards")
        self.say(
            f"{prefix}Logs fetched: {report.fetched} (without id: {report.without_id}, "
            f"duplicates: {report.duplicates}), "
            f"already tagged: {report.already_tagged}"
        )
        if report.human_corrections or report.human_confirmations:
            self.say(
                f"{prefix}People's labels read from the logs: {report.human_corrections} corrections, "
                f"{report.human_confirmations} confirming Claude's (they win over Claude's; push_to_datasets follows)"
            )
        if report.refused:
            self.stderr.write(
                self.style.WARNING(
                    f"{prefix}Refused {report.refused} logs that cannot be stored (their ids and why: the run's "
                    "refused logs in the admin, and the log_refused and log_unstorable events); the rest were stored."
                )
            )
            if self.verbosity > 1:
                for line in report.refused_logs:
                    self.stderr.write(f"  refused {line}")
        if report.stale_tagged:
            self.say(
                f"{prefix}Labelled under another set of taggable tags: {report.stale_tagged}"
                + ("" if report.dry_run else " (tag_logs --retag-stale labels them again)")
                + (
                    f"; {report.stale_given_up} of them reached the attempt limit relabelling and keep their label"
                    if report.stale_given_up
                    else ""
                )
            )
        if report.dry_run:
            how = "in Message Batches" if report.batch_mode else "to Claude"
            price = "at the batch price" if report.batch_mode else "at the standard price"
            self.say(
                f"{prefix}Would send {report.to_send} logs {how} ({report.new_logs} new from the window, up to "
                f"{report.backlog} from the backlog of earlier runs), about {report.estimated_input_tokens} input "
                f"tokens (system prompt, tool definition and Anthropic's tool use prompt included) and "
                f"{report.estimated_output_tokens} output tokens, about ${report.estimated_cost_usd} {price}, at most "
                f"${report.estimated_cost_max_usd} if every reply ran to max_tokens "
                f"({report.estimated_output_tokens_max} output tokens)"
                + (f"; {report.over_budget} over the run's limit or budget" if report.over_budget else "")
            )
            if report.given_up:
                self.say(f"{prefix}Given up (at the attempt limit, never sent again): {report.given_up}")
            self._print_agreement(report, prefix)
            if report.write_back:
                self.say(
                    f"{prefix}Would write the labels it makes back to their logs in Braintrust, and "
                    f"{report.write_back_pending} labels stored earlier and not yet written"
                )
            return
        if report.backlog:
            self.say(f"Backlog of earlier runs in the queue: {report.backlog}")
        self._print_batches(report)
        what = "Sent to Claude"
        if report.batch_mode:
            what = "Batch results stored"
        elif report.batches_collected:
            what = "Sent to Claude or collected from batches"
        self.say(
            f"{what}: {report.sent}; tagged: {report.tagged}; no tag applied: {report.no_tag_applied}; "
            f"failed: {report.failed}"
            + (f" ({report.will_retry} will be retried)" if report.failed else "")
            + (f"; Anthropic failing, no attempt used: {report.service_failures}" if report.service_failures else "")
            + (
                f"; failed alike, the run's setup, no attempt used: {report.setup_failures}"
                if report.setup_failures
                else ""
            )
        )
        if report.not_sent:
            self.say(f"Not sent, because the run stopped early; they stay queued: {report.not_sent}")
        if report.given_up:
            self.say(f"Given up (at the attempt limit, never sent again): {report.given_up}")
        if report.over_budget:
            self.say(f"Over the run's limit or budget, left pending for the next run: {report.over_budget}")
        if report.per_tag:
            self.say("Per tag: " + ", ".join(f"{printable(name)} {count}" for name, count in report.per_tag.items()))
        if report.dropped_tags:
            self.say(f"Tags proposed by Claude outside the allowed list, dropped: {report.dropped_tags}")
        self.say(
            f"Tokens: {report.input_tokens} in, {report.output_tokens} out (about ${report.estimated_cost_usd}); "
            f"elapsed {report.elapsed_seconds:.1f}s"
        )
        self._print_write_back(report)
        self._print_agreement(report)
        if self.failed_run:
            return  # the run failed or was stopped: its one-line error follows, not a success line
        style = self.style.SUCCESS if not report.failed else self.style.WARNING
        self.say("Tagging finished.", style=style)

    def _print_agreement(self, report: TaggingReport, prefix: str = "") -> None:
        if not report.agreement:
            return
        self.say(
            f"{prefix}Claude against people's labels (the reviewed logs; 95% Wilson intervals, counts behind each):"
        )
        for row in report.agreement:
            self.say(f"{prefix}  {agreement_line(row)}")

    def _print_write_back(self, report: TaggingReport) -> None:
        if not report.write_back:
            return
        self.say(
            f"Labels written back to their logs in Braintrust: {report.written_back} in "
            f"{report.write_back_requests} requests"
            + (f"; {report.write_back_unchanged} with nothing to change" if report.write_back_unchanged else "")
            + (f"; {report.write_back_pending} still to write" if report.write_back_pending else "")
        )
        if report.write_back_refused:
            self.stderr.write(
                self.style.WARNING(
                    f"Braintrust refused {report.write_back_refused} label writes on their own (their errors: the "
                    "tagged logs' write error in the admin); they are sent again once the log is labelled again."
                )
            )

    def _print_batches(self, report: TaggingReport) -> None:
        if report.batches_recovered or report.batches_abandoned:
            self.say(
                f"Batches of earlier runs: {report.batches_recovered} found again after a crash, "
                f"{report.batches_abandoned} abandoned (their logs are queued again)"
            )
        if report.batches_collected:
            outcomes = ", ".join(f"{kind} {count}" for kind, count in report.batch_outcomes.items())
            self.say(f"Batches collected: {report.batches_collected} ({outcomes})")
        if report.batch_mode:
            self.say(
                f"Submitted {report.batch_requests_submitted} logs in {report.batches_submitted} Message Batches; "
                f"batches still processing: {report.batches_open} (a later run collects them, or --wait)"
            )
