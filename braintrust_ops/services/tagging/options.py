"""What a person asks of a tag_logs run: its command line, as the service reads it."""

from dataclasses import dataclass
from datetime import datetime

from braintrust_ops.shards import Shard


@dataclass(frozen=True)
class TaggingOptions:
    since: datetime | None = None
    until: datetime | None = None
    hours: int | None = None
    retag: bool = False
    dry_run: bool = False
    limit: int | None = None
    concurrency: int | None = None
    shard: Shard | None = None
    #: send the queue as Message Batches (half the price; a later run, or --wait, collects the results)
    batch: bool = False
    #: minutes to wait for this run's batches to end and collect them (batch mode)
    wait_minutes: float | None = None
    #: label again, oldest first, the logs labelled under another taggable tag set
    retag_stale: bool = False
