"""One tag_logs run's shared state: what every stage reads, and the counts they leave for the report.

A stage takes the run and reads top to bottom; it does not take ten keyword arguments. The fields a stage
sets for a later one (the tally, the batch counts, what settling earlier batches collected) live here too,
so the order of the stages is the only thing ``run.logs_tag`` says.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from anthropic.types import ToolParam
from django.db.models import QuerySet

from braintrust_ops.clients.braintrust import BraintrustClient, LogPages
from braintrust_ops.clients.claude import ClaudeClient
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.models import CommandRun
from braintrust_ops.rate_limiter import RateLimiter
from braintrust_ops.services.log_sync import FetchCounts, LogWindow
from braintrust_ops.services.tagging.batches import BatchCounts
from braintrust_ops.services.tagging.dispatch import Call, Tally
from braintrust_ops.services.tagging.options import TaggingOptions
from braintrust_ops.services.tagging.report import TaggingReport
from braintrust_ops.shards import Shard
from braintrust_ops.stopping import StopRequest
from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import build_tool


@dataclass
class TaggingRun:
    options: TaggingOptions
    config: OpsConfig
    braintrust: BraintrustClient
    claude_factory: Callable[..., ClaudeClient] | None
    batch_factory: Callable[[], BatchClient] | None
    #: the run record; None only for a dry run, which writes nothing anywhere
    record: CommandRun | None
    stop: StopRequest
    interactive: bool
    report: TaggingReport
    started: float
    tags: list[TaggableTag]
    tagset: str
    system_prompt: str
    now: datetime
    window: LogWindow
    pages: LogPages
    #: the stored logs the run sends, oldest first (queue.queue_queryset)
    queued: QuerySet
    counts: FetchCounts = field(default_factory=FetchCounts)
    tally: Tally = field(default_factory=Tally)
    batches: BatchCounts = field(default_factory=BatchCounts)
    #: the tally's (sent, service failures) after settling earlier runs' batches, before this run sent anything
    collected: tuple[int, int] = (0, 0)

    @property
    def shard(self) -> Shard | None:
        return self.options.shard

    @property
    def allowed(self) -> list[str]:
        return [tag.name for tag in self.tags]

    def tool(self) -> ToolParam:
        return build_tool(self.tags, strict=self.config.claude_strict_tools)

    def new_claude(self) -> ClaudeClient:
        """A Claude client with its own pace for the run's calls, and its own stop, which the dispatcher sets
        to end calls between attempts."""
        if self.claude_factory is None:
            raise RuntimeError("this run has no Claude client factory")
        return self.claude_factory(limiter=RateLimiter(), stop=threading.Event())

    def call(self, claude: ClaudeClient) -> Call:
        """What each of the run's requests to Claude carries besides its log."""
        return Call(
            claude=claude,
            system_prompt=self.system_prompt,
            tool=self.tool(),
            allowed=self.allowed,
            tagset=self.tagset,
        )

    def clock_out(self) -> None:
        self.report.elapsed_seconds = round(time.monotonic() - self.started, 3)
