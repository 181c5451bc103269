"""What to check when every request fails alike: the settings a tagging request is built from.

Anthropic words these refusals itself (a ``max_tokens`` over the model's limit names ``max_tokens``; a
model without strict tool use names ``strict``; an unknown model names the model), so the setting the
error speaks of comes first; an error that names none of them gets all three.
"""

from braintrust_ops.conf import OpsConfig, env_name


def _model(config: OpsConfig) -> str:
    return f"{env_name('TAGGING_MODEL')} (now {config.tagging_model})"


def _max_tokens(config: OpsConfig) -> str:
    return f"{env_name('CLAUDE_MAX_OUTPUT_TOKENS')} (now {config.claude_max_output_tokens})"


def _strict(config: OpsConfig) -> str:
    now = "true" if config.claude_strict_tools else "false"
    return f"{env_name('CLAUDE_STRICT_TOOLS')} (now {now}; false for a model without strict tool use)"


def settings_to_check(error: str, config: OpsConfig) -> str:
    """The settings behind ``error``, with their values, as a phrase: "X (now ...) and Y (now ...)"."""
    lowered = error.lower()
    if "max_tokens" in lowered:
        named = [_max_tokens(config), _model(config)]
    elif "strict" in lowered:
        named = [_strict(config), _model(config)]
    elif "model" in lowered:
        named = [_model(config)]
    else:
        named = [_model(config), _max_tokens(config), _strict(config)]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
