"""Batch mode, and the Message Batches every run settles: earlier runs' batches collected, the queue
submitted as new ones (half the price), and, with --wait, collected before the run ends
(``batches``). Batches left open are settled in either mode, so switching modes strands no log.
"""

import structlog

from braintrust_ops.clients.claude import tool_params
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.exceptions import TransientServiceError
from braintrust_ops.services.tagging.batches import BatchSpec, batches_settle, batches_submit, batches_wait
from braintrust_ops.services.tagging.queue import queue_jobs
from braintrust_ops.services.tagging.setup_check import suspects_judge
from braintrust_ops.services.tagging.state import TaggingRun
from braintrust_ops.tagging_prompt import PROMPT_VERSION

logger = structlog.get_logger(__name__)


def earlier_batches_settle(run: TaggingRun, client: BatchClient) -> None:
    """Collect the batches earlier runs left open. The batch API failing must not stop tonight's tagging:
    the run goes on, then fails saying why."""
    try:
        batches_settle(
            client,
            shard=run.shard,
            run=run.record,
            max_attempts=run.config.tagging_max_attempts,
            tally=run.tally,
            counts=run.batches,
        )
    except TransientServiceError as exc:
        logger.warning("batches_not_settled", error=str(exc))
        run.report.batch_problem = (
            f"Message Batches left open by earlier runs could not be settled: {exc} Their logs stay with them; "
            "the rest of the run went on, and the next run tries again."
        )
    batch_faults_judge(run)


def queue_submit(run: TaggingRun, client: BatchClient) -> None:
    """The queue, within the run's budget, submitted as Message Batches; with --wait, collected too."""
    jobs = queue_jobs(run)
    config, tool = run.config, run.tool()
    spec = BatchSpec(
        model=config.tagging_model,
        prompt_version=PROMPT_VERSION,
        tagset=run.tagset,
        allowed=run.allowed,
        # The very request an interactive call sends.
        params=lambda job: tool_params(
            model=config.tagging_model,
            max_tokens=config.claude_max_output_tokens,
            system=run.system_prompt,
            user_text=job.user_text,
            tool=tool,
        ),
        max_bytes=config.claude_batch_max_bytes,
    )
    try:
        run.batches.add(batches_submit(jobs, client=client, spec=spec, shard=run.shard, run=run.record))
    finally:
        jobs.close()
    if run.options.wait_minutes:
        batches_wait(
            client,
            minutes=run.options.wait_minutes,
            poll_seconds=config.claude_batch_poll_seconds,
            shard=run.shard,
            run=run.record,
            max_attempts=config.tagging_max_attempts,
            tally=run.tally,
            counts=run.batches,
        )
        batch_faults_judge(run)


def batch_faults_judge(run: TaggingRun) -> None:
    """Batch results failing alike, in a row: one setup check decides whose fault they are (setup_check)."""
    if not run.tally.suspects or run.claude_factory is None:
        return
    claude = run.new_claude()
    try:
        suspects_judge(run.tally, run.call(claude))
    finally:
        claude.close()
