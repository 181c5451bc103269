"""The settings a wrong setup's error points at, with their values, in one phrase."""

from hypothesis import given

from braintrust_ops.conf import OpsConfig
from braintrust_ops.setup_advice import settings_to_check
from braintrust_ops.tests.strategies import text

CONFIG = OpsConfig(tagging_model="claude-haiku-4-5", claude_max_output_tokens=200, claude_strict_tools=True)
MODEL = "BRAINTRUST_OPS_TAGGING_MODEL (now claude-haiku-4-5)"
MAX_TOKENS = "BRAINTRUST_OPS_CLAUDE_MAX_OUTPUT_TOKENS (now 200)"
STRICT = "BRAINTRUST_OPS_CLAUDE_STRICT_TOOLS (now true; false for a model without strict tool use)"


def test_a_max_tokens_error_names_the_max_tokens_setting_first():
    error = (
        "HTTP 400 (invalid_request_error): max_tokens: 100000 > 64000, which is the maximum allowed number of "
        "output tokens for claude-haiku-4-5-20251001"
    )
    assert settings_to_check(error, CONFIG) == f"{MAX_TOKENS} and {MODEL}"
    assert settings_to_check("Claude's reply was cut off at max_tokens", CONFIG) == f"{MAX_TOKENS} and {MODEL}"


def test_a_strict_tools_error_names_the_strict_setting_first():
    error = "HTTP 400 (invalid_request_error): tools.0.custom.strict: Extra inputs are not permitted"
    assert settings_to_check(error, CONFIG) == f"{STRICT} and {MODEL}"


def test_a_model_error_names_the_model_setting():
    assert settings_to_check("HTTP 404 (not_found_error): model: claude-nope", CONFIG) == MODEL


def test_an_error_naming_no_setting_names_all_three():
    assert settings_to_check("HTTP 400 (invalid_request_error): sandbox fault", CONFIG) == (
        f"{MODEL}, {MAX_TOKENS} and {STRICT}"
    )


@given(error=text)
def test_any_error_gets_one_line_naming_the_model_setting(error):
    advice = settings_to_check(error, CONFIG)
    assert MODEL in advice and "\n" not in advice
