"""The dry run: the same window and the same queue as a real run, priced, and nothing written anywhere."""

import heapq

from braintrust_ops.services.tagging.cost import estimate_cost, fixed_tokens
from braintrust_ops.services.tagging.fetch import fetch_counts, rows_not_stored
from braintrust_ops.services.tagging.queue import count_own, given_up, jobs, own
from braintrust_ops.services.tagging.state import TaggingRun


def queue_price(run: TaggingRun) -> None:
    """What the run would send, and what it would cost, into the report."""
    report = run.report
    # In the real run's order (by log time), so --limit and the budget pick the same logs.
    new_rows = sorted(rows_not_stored(run), key=lambda row: row.logged_at)
    candidates = heapq.merge(
        own(run.queued.iterator(chunk_size=500), run.shard), new_rows, key=lambda row: row.logged_at
    )
    report.backlog = count_own(run.queued.values_list("log_id", flat=True), run.shard)
    for _ in jobs(candidates, fixed_tokens=fixed_tokens(run), config=run.config, options=run.options, report=report):
        pass
    estimate_cost(run)
    fetch_counts(run)
    report.given_up = given_up(run.config, run.shard)
