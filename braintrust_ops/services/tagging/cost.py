"""What a run costs: the dry run's estimate of its queue, and a real run's price of the tokens billed."""

from decimal import Decimal

from braintrust_ops.conf import OpsConfig
from braintrust_ops.cost_estimate import expected_output_tokens, fixed_input_tokens
from braintrust_ops.services.tagging.state import TaggingRun


def fixed_tokens(run: TaggingRun) -> int:
    """The input tokens each of the run's requests carries besides its log (cost_estimate)."""
    return fixed_input_tokens(system_prompt=run.system_prompt, tool=run.tool(), model=run.config.tagging_model)


def price(config: OpsConfig, input_tokens: int, output_tokens: int, *, batch: bool = False) -> Decimal:
    cost = (
        Decimal(input_tokens) * config.claude_input_price_per_mtok
        + Decimal(output_tokens) * config.claude_output_price_per_mtok
    ) / Decimal(1_000_000)
    return cost * config.claude_batch_discount if batch else cost


def estimate_cost(run: TaggingRun) -> None:
    """The dry run's price of its queue: the input estimated, and the output expected of a reply with the most
    and longest tags, or, as an upper bound, every reply running to max_tokens."""
    report, config = run.report, run.config
    expected = min(expected_output_tokens(run.allowed), config.claude_max_output_tokens)
    report.estimated_output_tokens = report.to_send * expected
    report.estimated_output_tokens_max = report.to_send * config.claude_max_output_tokens
    for field_name, output in (
        ("estimated_cost_usd", report.estimated_output_tokens),
        ("estimated_cost_max_usd", report.estimated_output_tokens_max),
    ):
        cost = price(config, report.estimated_input_tokens, output, batch=report.batch_mode)
        setattr(report, field_name, f"{cost:.4f}")


def billed_cost(
    config: OpsConfig, input_tokens: int, output_tokens: int, *, batch_input: int = 0, batch_output: int = 0
) -> str:
    """Dollars for the run's tokens, those of batch results at the batch price."""
    cost = price(config, input_tokens - batch_input, output_tokens - batch_output) + price(
        config, batch_input, batch_output, batch=True
    )
    return f"{cost:.4f}"
