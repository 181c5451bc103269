"""What one tagging request costs, in tokens, before it is sent: for the dry run's price and the run's budget.

Anthropic bills a tool-use request for everything it sends the model (``usage.input_tokens``): the system
prompt, the messages, the ``tools`` parameter (names, descriptions, schemas), and a system prompt of its
own that enables tool use, whose size it documents per model and per ``tool_choice``; and for what the
model writes (``usage.output_tokens``): here one ``tool_use`` block. Source: Anthropic, "Tool use with
Claude", section Pricing (https://platform.claude.com/docs/en/agents-and-tools/tool-use/overview#pricing),
the table "Tool use system prompt token count", column ``any``, ``tool`` (this app forces its tool).

Text is counted at 3.5 bytes of UTF-8 a token: for English, the 3.5 characters a token of Anthropic's
glossary (https://platform.claude.com/docs/en/about-claude/glossary, "Tokens"); for a script whose
characters take more bytes (Hebrew letters take two), more tokens, where a count of characters would fall
short. It is an estimate, not the tokenizer (each model generation has its own; the run's report gives the
tokens Anthropic billed).
"""

import json
import math
import re
from fractions import Fraction
from typing import Any

from braintrust_ops.tagging_prompt import MAX_TAGS, TOOL_NAME

# A fraction, so the rounding up is exact.
BYTES_PER_TOKEN = Fraction(7, 2)
# The documented tool use system prompt tokens with tool_choice "any" or "tool", by model (aliases; a dated
# id such as claude-haiku-4-5-20251001 is read as its alias).
FORCED_TOOL_SYSTEM_PROMPT_TOKENS = {
    "claude-opus-4-8": 410,
    "claude-opus-4-7": 804,
    "claude-opus-4-6": 589,
    "claude-opus-4-5": 588,
    "claude-opus-4-1": 315,
    "claude-opus-4-0": 315,
    "claude-opus-4": 315,
    "claude-sonnet-4-6": 589,
    "claude-sonnet-4-5": 588,
    "claude-sonnet-4-0": 315,
    "claude-sonnet-4": 315,
    "claude-haiku-4-5": 588,
    "claude-3-5-haiku": 355,
}
#: a model the table does not list (a newer one, a gateway's name) is counted at the table's largest
UNLISTED_MODEL_TOKENS = max(FORCED_TOOL_SYSTEM_PROMPT_TOKENS.values())
_DATE_SUFFIX = re.compile(r"-(\d{8}|latest)$")
# The API's tool_use block id ("toolu_" and 24 characters); the model writes the block, the API bills it.
_TOOL_USE_ID = "toolu_" + "x" * 24


def text_tokens(text: str) -> int:
    """``text``'s tokens, rounded up."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)


def tool_system_prompt_tokens(model: str) -> int:
    """Anthropic's tool use system prompt for a forced tool, for ``model`` (or the largest documented)."""
    return FORCED_TOOL_SYSTEM_PROMPT_TOKENS.get(_DATE_SUFFIX.sub("", model), UNLISTED_MODEL_TOKENS)


def fixed_input_tokens(*, system_prompt: str, tool: Any, model: str) -> int:
    """The input tokens every request of the run carries, whatever its log: the system prompt, the tool's
    definition as sent (its JSON, ``tools`` being a list of it) and Anthropic's tool use system prompt."""
    return (
        text_tokens(system_prompt)
        + text_tokens(json.dumps([tool], ensure_ascii=False))
        + tool_system_prompt_tokens(model)
    )


def expected_output_tokens(tag_names: list[str]) -> int:
    """The tokens of the reply a log is expected to get: one tool_use block of the forced tool, with as many
    tags as a reply may hold, the longest ones (an upper estimate of a 0 to 3 tag answer)."""
    longest = sorted(tag_names, key=lambda name: len(name.encode("utf-8", "surrogatepass")), reverse=True)
    block = {"type": "tool_use", "id": _TOOL_USE_ID, "name": TOOL_NAME, "input": {"tags": longest[:MAX_TAGS]}}
    return text_tokens(json.dumps([block], ensure_ascii=False))
