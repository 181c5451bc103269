"""The dry run's price against what the same queue then costs: never below it, and close to it.

The sandbox bills each request as Anthropic does, but by its own count (``fake_claude.message_reply``):
four characters a token of the system prompt, the log's text and the tools' JSON, and of the reply's
content as JSON; it does not bill Anthropic's tool use system prompt. The estimate counts that prompt
(588 tokens a request for claude-haiku-4-5, Anthropic's table), text at 3.5 bytes of UTF-8 a token
(Anthropic's glossary: 14% more than the sandbox's four characters for English, and twice as many for
Hebrew, whose letters take two bytes), and each reply with the three longest tags. The tolerance is the
tool use prompt plus 35% of the bill; measured here: $0.0455 expected against $0.0200 billed
interactively, of which $0.0194 is the tool use prompt and the rest 31% of the bill.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from braintrust_ops.cost_estimate import tool_system_prompt_tokens
from braintrust_ops.models import CommandRun
from braintrust_ops.tests.management.commands.test_tag_logs_batch import batch_settings  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

PRICED = re.compile(r"about \$([\d.]+) at the (?:standard|batch) price, at most \$([\d.]+) if every reply")
INPUT_PRICE = Decimal("1.00") / 1_000_000  # claude-haiku-4-5's list price a token, the default setting
TEXTS = [
    "Is it permitted to cook on Shabbat? " * 40,
    "Please translate Genesis 1:1 into French, and say which Rashi commentary explains it.",
    "מה ההלכה לגבי בישול בשבת? " * 30,
    "What's the weather in Jerusalem?",
    "Where does the Talmud discuss kosher slaughter? Give the source. " * 15,
    "Hi",
]


@pytest.fixture
def varied_queue(small_project):
    """Thirty logs of every length and two scripts, on top of small_project's three."""
    created = datetime.now(UTC) - timedelta(hours=1)
    for number in range(30):
        text = TEXTS[number % len(TEXTS)]
        small_project.state.add_log(input=f"{text} ({number})", output=text[::-1][:500], created=created)
    return small_project


def _estimate(stdout: str) -> tuple[Decimal, Decimal]:
    expected, bound = PRICED.search(stdout).groups()
    return Decimal(expected), Decimal(bound)


def _tolerance(actual: Decimal, logs: int, discount: Decimal = Decimal(1)) -> Decimal:
    """What the estimate may add to the sandbox's bill: the tool use prompt it does not bill, and 35%."""
    return tool_system_prompt_tokens("claude-haiku-4-5") * logs * INPUT_PRICE * discount + actual * Decimal("0.35")


def test_the_dry_runs_price_is_never_below_what_the_run_costs_and_close_to_it(varied_queue, run_command):
    expected, bound = _estimate(run_command("tag_logs", "--dry-run").stdout)
    run_command("tag_logs")
    counters = CommandRun.objects.get().counters
    actual = Decimal(counters["estimated_cost_usd"])  # the tokens the sandbox billed, at the list price
    assert counters["sent"] == 33
    assert actual <= expected <= bound
    assert expected - actual <= _tolerance(actual, 33), (expected, actual)


@pytest.mark.usefixtures("batch_settings")
def test_the_dry_runs_batch_price_is_never_below_what_the_batches_cost_and_close_to_it(varied_queue, run_command):
    expected, bound = _estimate(run_command("tag_logs", "--dry-run", "--batch").stdout)
    run_command("tag_logs", "--batch", "--wait", "1")
    counters = CommandRun.objects.get().counters
    actual = Decimal(counters["estimated_cost_usd"])
    assert counters["batch_requests_submitted"] == 33 and counters["batch_input_tokens"] > 0
    assert actual <= expected <= bound
    assert expected - actual <= _tolerance(actual, 33, Decimal("0.5")), (expected, actual)
