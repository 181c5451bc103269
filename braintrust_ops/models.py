"""State that used to live in one JSON-lines file on shared storage.

A row per log (its label and how it was obtained), a ledger row per (log, dataset) insertion, and a
record per command run. Each tagging result and each confirmed insert batch is committed as it
arrives, so a crash loses only the calls in flight.
"""

from django.db import models
from django.db.models import Q


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class CommandRun(TimestampedModel):
    """One run of a management command: what it was asked, how it ended, and its counters."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Stopped by SIGTERM or SIGINT: what finished was kept; the next run does the rest.
        INTERRUPTED = "interrupted", "Interrupted"

    command = models.CharField(max_length=64, db_index=True)
    options = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING, db_index=True)
    counters = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # tag_logs: the window it covered and the newest log `created` it saw.
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    high_water_mark = models.DateTimeField(null=True, blank=True)
    # tag_logs: the greatest `_xact_id` (ingestion order) it saw; the next run asks for what was ingested
    # after it. Blank on runs from before the watermark existed (they used high_water_mark).
    xact_watermark = models.CharField(max_length=32, blank=True)
    # The key of the lock the run's process holds while it is alive (locks.run_liveness): a later run
    # marks this one abandoned only when nobody holds it any more.
    lock_key = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["command", "outcome", "-started_at"])]

    def __str__(self):
        return f"{self.command} {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"

    @property
    def duration(self):
        """How long the run took (None while it runs)."""
        return self.finished_at - self.started_at if self.finished_at else None


class TagBatch(TimestampedModel):
    """A Message Batch of tagging requests (``tag_logs --batch``): one request per log, at half the price.

    Stored before it is submitted, so a crash between Anthropic accepting it and this row learning its
    id loses nothing: the next run finds it by listing the account's batches (``SUBMITTING``). Its logs
    point at it while it is open, so no other run sends them; collecting its results releases them.
    """

    class State(models.TextChoices):
        #: stored; Anthropic's acceptance not yet recorded
        SUBMITTING = "submitting", "Submitting"
        #: accepted by Anthropic (batch_id known): processing, or ended and waiting to be collected
        OPEN = "open", "Open"
        #: every result stored; its logs released
        COLLECTED = "collected", "Collected"
        #: never accepted, or lost: its logs released to the queue, no attempt used
        ABANDONED = "abandoned", "Abandoned"

    batch_id = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SUBMITTING, db_index=True)
    # "I/N" when a sharded run submitted it: each shard of that count collects its own; a run of another
    # layout takes it over (services.tagging.batches._unsettled).
    shard = models.CharField(max_length=16, blank=True)
    request_count = models.PositiveIntegerField()
    # What the requests were built with: the results are stored with this provenance and validated
    # against these tags, whatever the tag list says by the time they come back.
    model = models.CharField(max_length=100)
    prompt_version = models.CharField(max_length=32)
    tagset_fingerprint = models.CharField(max_length=32)
    allowed_tags = models.JSONField(default=list)
    submitted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField(null=True, blank=True)
    # When a retrieve first answered 404, unless a later one found it: the batch is given up only when it
    # is still not found NOT_FOUND_GRACE later (services.tagging.batches), as such a 404 can pass.
    not_found_since = models.DateTimeField(null=True, blank=True)
    # Results by type when collected: succeeded, errored, expired, canceled, unreadable.
    outcomes = models.JSONField(default=dict, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    run = models.ForeignKey(CommandRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="tag_batches")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["batch_id"], condition=~Q(batch_id=""), name="tag_batch_id_once"),
            models.CheckConstraint(
                condition=Q(state__in=["submitting", "abandoned"]) | ~Q(batch_id=""),
                name="tag_batch_accepted_has_id",
            ),
        ]

    def __str__(self):
        return f"{self.batch_id or '(not yet accepted)'} {self.state} ({self.request_count} requests)"


class TaggedLog(TimestampedModel):
    """A root span (one chatbot turn) fetched from Braintrust and the tags Claude gave it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        TAGGED = "tagged", "Tagged"
        FAILED = "failed", "Failed"

    log_id = models.CharField(max_length=255, unique=True)
    root_span_id = models.CharField(max_length=255, blank=True)
    logged_at = models.DateTimeField(db_index=True, help_text="The log's `created` time in Braintrust.")
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    # Relabellings of the current label that failed on their own (--retag, --retag-stale): --retag-stale tries
    # a stale label at most TAGGING_MAX_ATTEMPTS times, then it keeps its label. A new label starts at 0.
    relabel_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    model = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=32, blank=True)
    # Which taggable tag set (names and meanings, provenance.tagset_fingerprint) the label was chosen
    # from: a label made under another set is stale. Blank on labels from before it was recorded.
    tagset_fingerprint = models.CharField(max_length=32, blank=True, db_index=True)
    # The open Message Batch holding this log's request, and the request's custom_id in it.
    batch = models.ForeignKey(TagBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    custom_id = models.CharField(max_length=64, blank=True, db_index=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    tagged_at = models.DateTimeField(null=True, blank=True)
    # Tags Claude proposed that were not in the allowed list: kept for review, never pushed.
    rejected_tags = models.JSONField(default=list, blank=True)
    # Write-back (BRAINTRUST_OPS_WRITE_BACK): the ledger of what this app wrote to the source log's tags in
    # Braintrust. ``written_tags`` are the tags it added there and holds (null: never written); a label
    # newer than ``written_at`` is still to write. A write Braintrust refused on its own keeps its error
    # here and is not sent again until the log is labelled again.
    written_tags = models.JSONField(null=True, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    write_error = models.TextField(blank=True)
    # Reviews: the taggable tags the source log carried when last read (or as this app's writes left them;
    # null until first read). A later read that finds others means a person changed them in Braintrust.
    source_tags = models.JSONField(null=True, blank=True)
    # A person's label (null: none), which wins over Claude's: datasets follow it and no run changes it.
    # ``tags`` keep Claude's label, so the two can be compared.
    human_tags = models.JSONField(null=True, blank=True)
    # What the person changed against Claude's label: {"added": [...], "removed": [...]}.
    human_changes = models.JSONField(default=dict, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # From the log's metadata (REVIEWED_BY_KEY) when the reviewer put their name there; Braintrust's row does
    # not say who changed its tags (its audit trail does).
    reviewed_by = models.CharField(max_length=255, blank=True)
    last_run = models.ForeignKey(
        CommandRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="tagged_logs"
    )

    class Meta:
        ordering = ["-logged_at"]
        constraints = [
            # A tagged row always says when and by which model it was labelled.
            models.CheckConstraint(
                condition=~Q(status="tagged") | (Q(tagged_at__isnull=False) & ~Q(model="")),
                name="tagged_log_tagged_has_provenance",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(last_error=""),
                name="tagged_log_failed_has_error",
            ),
        ]

    def __str__(self):
        return f"{self.log_id} ({self.status})"

    @property
    def tag_names(self) -> list[str]:
        return [tag.name for tag in self.tags.all()]


class LogTag(models.Model):
    """One tag on one log. A table rather than a JSON list: a tag is a string by construction,
    and "which logs carry tag X" is an indexed query on every database."""

    tagged_log = models.ForeignKey(TaggedLog, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=255, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tagged_log", "name"], name="log_tag_unique")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class DatasetInsertion(TimestampedModel):
    """The ledger: this log was confirmed inserted into this dataset (never sent there again), or the
    dataset refused this one row (too large, or its content) and it is retried up to the attempt limit.

    Keyed by the Braintrust log id rather than only the foreign key, so pruning old log content
    (retention) keeps the ledger and exactly-once holds forever.
    """

    class Status(models.TextChoices):
        INSERTED = "inserted", "Inserted"
        FAILED = "failed", "Failed"
        # Taken out of the dataset (``_object_delete``) after a person's correction removed the tag it
        # subscribes to; put back, exactly once again, if a later correction adds one.
        REMOVED = "removed", "Removed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INSERTED, db_index=True)
    attempts = models.PositiveIntegerField(default=1)
    last_error = models.TextField(blank=True)
    log_id = models.CharField(max_length=255)
    tagged_log = models.ForeignKey(
        TaggedLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="insertions"
    )
    dataset_id = models.CharField(max_length=64, db_index=True)
    dataset_name = models.CharField(max_length=255, blank=True)
    row_id = models.CharField(max_length=255, blank=True)
    run = models.ForeignKey(CommandRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="insertions")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["log_id", "dataset_id"], name="dataset_insertion_once"),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(last_error=""), name="dataset_insertion_failed_has_error"
            ),
            models.CheckConstraint(
                condition=~Q(status="inserted") | ~Q(row_id=""), name="dataset_insertion_inserted_has_row"
            ),
        ]

    def __str__(self):
        return f"{self.log_id} -> {self.dataset_name or self.dataset_id}"
