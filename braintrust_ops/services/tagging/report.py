"""What a tag_logs run did, in counts: the command prints it, the run record stores it, tests read it."""

from dataclasses import asdict, dataclass, field
from datetime import datetime

from braintrust_ops.conf import OpsConfig
from braintrust_ops.setup_advice import settings_to_check


@dataclass
class TaggingReport:
    window_start: datetime | None = None
    window_end: datetime | None = None
    #: the default window: logs ingested after this _xact_id (the last successful run's watermark)
    after_xact_id: str = ""
    taggable_tags: int = 0
    #: marked tags left out, "name: why" (a name too long to store, a control character)
    refused_tags: list[str] = field(default_factory=list)
    #: "I/N" when the run took one shard of the logs
    shard: str = ""
    fetched: int = 0
    #: logs of the window left to the other shards' runs
    other_shards: int = 0
    without_id: int = 0
    duplicates: int = 0
    #: rows that cannot be stored (an over-long id, JSON nested too deep, one the database refused)
    refused: int = 0
    #: "id: why" of the refused rows (the first MAX_REFUSED_LISTED), for the run record and the admin
    refused_logs: list[str] = field(default_factory=list)
    new_logs: int = 0
    already_tagged: int = 0
    #: people's labels read from the logs this run (reviews): differing from Claude's, and agreeing with it
    human_corrections: int = 0
    human_confirmations: int = 0
    #: logs of earlier runs still to tag (pending, or failed with attempts left) that this run queued
    backlog: int = 0
    to_send: int = 0
    #: this run's Claude calls, and the results it collected from earlier runs' Message Batches
    sent: int = 0
    #: of ``sent`` and ``service_failures``, those collected from batches (not sent by this run)
    collected: int = 0
    collected_service_failures: int = 0
    tagged: int = 0
    no_tag_applied: int = 0
    #: logs whose own request or reply failed (a 400 on its content, an unusable reply): one attempt used
    failed: int = 0
    #: of those, how many the next run retries
    will_retry: int = 0
    #: calls the service failed after its retries (5xx, 529, time-outs, 429s): no attempt used
    service_failures: int = 0
    #: logs failed alike, with a short harmless request too, or not judged before the run stopped: the run's
    #: setup's fault (a model without strict tool use, a max_tokens the model refuses), so no attempt used
    setup_failures: int = 0
    #: the error a wrong setup gave every request ("" when none was found): the run stopped sending
    setup_error: str = ""
    #: queued logs not sent because the run stopped (an outage, a signal): they stay as they were
    not_sent: int = 0
    #: logs at the attempt limit, never sent again (all of them, not only this run's)
    given_up: int = 0
    over_budget: int = 0
    dropped_tags: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: 429s the shared rate limiter saw (every attempt counts)
    rate_limited: int = 0
    #: the queue's input tokens, estimated (cost_estimate): its logs, and each request's system prompt, tool
    #: definition and Anthropic's tool use system prompt
    estimated_input_tokens: int = 0
    #: the dry run's: the output tokens expected (a reply of the most, and longest, tags a log), and at most
    #: (every reply running to max_tokens)
    estimated_output_tokens: int = 0
    estimated_output_tokens_max: int = 0
    #: the dry run's estimate of the queue's price (expected output), and its bound; a real run's price of the
    #: tokens Anthropic billed
    estimated_cost_usd: str = "0.00"
    estimated_cost_max_usd: str = "0.00"
    per_tag: dict[str, int] = field(default_factory=dict)
    #: the taggable tag set this run labels with (provenance.tagset_fingerprint)
    tagset_fingerprint: str = ""
    #: stored labels made under another tag set (or before sets were recorded): --retag-stale redoes them
    stale_tagged: int = 0
    #: of those, the ones whose relabelling failed on its own TAGGING_MAX_ATTEMPTS times: they keep their label
    stale_given_up: int = 0
    batch_mode: bool = False
    batches_submitted: int = 0
    batch_requests_submitted: int = 0
    batches_collected: int = 0
    #: this shard's batches still processing (or not yet confirmed) when the run ended
    batches_open: int = 0
    batches_recovered: int = 0
    batches_abandoned: int = 0
    #: collected batch results by type: succeeded, errored, expired, canceled, unreadable
    batch_outcomes: dict[str, int] = field(default_factory=dict)
    #: of input_tokens and output_tokens, those of batch results (billed at the batch price)
    batch_input_tokens: int = 0
    batch_output_tokens: int = 0
    #: why the open batches could not be settled this run (the rest of the run went on)
    batch_problem: str = ""
    #: why the run stopped sending early: Claude looked down
    outage: str = ""
    #: write-back (BRAINTRUST_OPS_WRITE_BACK): labels added to their source logs' tags in Braintrust
    write_back: bool = False
    written_back: int = 0
    #: labels with nothing to change on the source log (no tag, or the same tags as written before)
    write_back_unchanged: int = 0
    write_back_requests: int = 0
    #: writes Braintrust refused on their own (their errors are on the tagged logs, in the admin)
    write_back_refused: int = 0
    #: labels still to write when the run ended (the dry run's: those it would write besides this run's own)
    write_back_pending: int = 0
    #: why the writing stopped before every label was written
    write_back_problem: str = ""
    #: Claude against people's labels, per model, prompt version and tag (agreement.TagAgreement.as_dict)
    agreement: list[dict] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    dry_run: bool = False

    @property
    def failure_rate(self) -> float:
        return (self.failed + self.service_failures + self.setup_failures) / self.sent if self.sent else 0.0

    def as_counters(self) -> dict:
        counters = asdict(self)
        for key in ("window_start", "window_end"):
            counters[key] = counters[key].isoformat() if counters[key] else None
        return counters

    def problem(self, config: OpsConfig) -> str:
        """tag_logs' success rule: "" when it did its work, else what went wrong and what happens next."""
        parts = (self._tagging_problem(config), self.batch_problem, self._write_back_problem())
        return " ".join(part for part in parts if part)

    def _write_back_problem(self) -> str:
        if not self.write_back_problem:
            return ""
        return (
            f"Writing labels back to Braintrust's logs stopped: {self.write_back_problem.rstrip('.')}. "
            f"{self.write_back_pending} labels stay to be written (they are stored here); the next run writes them."
        )

    def _tagging_problem(self, config: OpsConfig) -> str:
        if self.setup_error:
            return (
                f"Anthropic answered every log with the same error, and a short harmless request too: "
                f"{self.setup_error.rstrip('.')}. The run's setup is at fault, not the logs: it stopped sending, no "
                f"attempt was used, and the {self.setup_failures + self.not_sent} logs not tagged stay queued. Check "
                f"{settings_to_check(self.setup_error, config)}, then run tag_logs again."
            )
        if self.outage:
            return (
                f"Anthropic looks unavailable: {self.outage}. Stopped sending after {self.sent - self.collected} of "
                f"{self.to_send} logs; the {self.not_sent + self.service_failures - self.collected_service_failures} "
                "not tagged stay queued, no attempt used, "
                "and the next run sends them. Check status.anthropic.com."
            )
        if not self.sent or self.failure_rate <= config.tagging_failure_threshold:
            return ""
        parts = []
        if self.service_failures:
            why = "Anthropic kept failing"
            if self.batch_outcomes.get("expired") or self.batch_outcomes.get("canceled"):
                why = "Anthropic failed them, or their Message Batch expired or was canceled"
            if self.batch_outcomes.get("unreadable"):
                why = "Anthropic failed them, or their Message Batch results could not be read"
            parts.append(f"{self.service_failures} because {why} (no attempt used: the next run sends them)")
        if self.setup_failures:
            parts.append(
                f"{self.setup_failures} with the same error, whose cause could not be told (no attempt used: the "
                "next run sends them)"
            )
        if self.failed:
            retry = f"{self.will_retry} will be retried by the next run" if self.will_retry else "none will be retried"
            gave_up = self.failed - self.will_retry
            parts.append(
                f"{self.failed} on their own (a refused request or an unusable reply): {retry}"
                + (f", {gave_up} reached the attempt limit and will not be" if gave_up else "")
            )
        failures = self.failed + self.service_failures + self.setup_failures
        return (
            f"{failures} of {self.sent} logs failed to tag ({self.failure_rate:.0%}, above "
            f"the {config.tagging_failure_threshold:.0%} threshold): " + "; ".join(parts) + ". See their errors in "
            "the admin (Tagged logs)."
        )
