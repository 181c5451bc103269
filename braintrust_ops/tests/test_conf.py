import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from braintrust_ops.conf import OpsConfig, load_config, secret_values, settings_from_environment
from braintrust_ops.exceptions import ConfigurationError
from braintrust_ops.tests.paths import HOST_ROOT

ROOT = HOST_ROOT
FAKE_BT_KEY = "bt-fake-secret-key-for-tests-0001"
FAKE_ANT_KEY = "sk-fake-anthropic-key-for-tests-0002"
PROJECT = "0d4b6f8e-1c2a-4e5b-9f70-123456789abc"


def test_defaults_apply_when_nothing_is_configured(settings):
    settings.BRAINTRUST_OPS = {}
    config = load_config()
    assert config == OpsConfig()
    assert config.braintrust_api_url == "https://api.braintrust.dev"
    assert config.tagging_concurrency == 8


def test_values_are_parsed_from_strings(settings):
    settings.BRAINTRUST_OPS = {
        "BRAINTRUST_PROJECT_ID": PROJECT.upper(),
        "BRAINTRUST_API_URL": "https://api.eu.braintrust.dev/",
        "TAGGING_CONCURRENCY": "16",
        "TAGGING_FAILURE_THRESHOLD": "0.25",
        "CLAUDE_INPUT_PRICE_PER_MTOK": "0.80",
        "CLAUDE_STRICT_TOOLS": "false",
    }
    config = load_config()
    assert config.braintrust_project_id == PROJECT  # canonical form, the one that goes into BTQL
    assert config.braintrust_api_url == "https://api.eu.braintrust.dev"
    assert config.tagging_concurrency == 16
    assert config.tagging_failure_threshold == 0.25
    assert config.claude_input_price_per_mtok == Decimal("0.80")
    assert config.claude_strict_tools is False


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("BRAINTRUST_PROJECT_ID", "my-project", "BRAINTRUST_PROJECT_ID must be a project UUID"),
        ("BRAINTRUST_PROJECT_ID", "'); DROP TABLE logs; --", "BRAINTRUST_PROJECT_ID must be a project UUID"),
        ("TAGGING_CONCURRENCY", "eight", "BRAINTRUST_OPS_TAGGING_CONCURRENCY must be a whole number"),
        ("TAGGING_CONCURRENCY", "0", "BRAINTRUST_OPS_TAGGING_CONCURRENCY must be a positive number"),
        ("HTTP_MAX_RETRIES", "-1", "BRAINTRUST_OPS_HTTP_MAX_RETRIES must be a non-negative number"),
        ("TAGGING_FAILURE_THRESHOLD", "10", "between 0 and 1"),
        ("BRAINTRUST_API_URL", "api.braintrust.dev", "BRAINTRUST_API_URL must be an http"),
        ("CLAUDE_STRICT_TOOLS", "maybe", "BRAINTRUST_OPS_CLAUDE_STRICT_TOOLS must be true or false"),
        ("TAGING_CONCURRENCY", "4", "Unknown braintrust_ops setting(s): BRAINTRUST_OPS_TAGING_CONCURRENCY"),
        ("CRON_SCHEDULE", "nightly", "BRAINTRUST_OPS_CRON_SCHEDULE must be a five-field cron schedule"),
        ("CRON_SCHEDULE", "0 2 * *", "BRAINTRUST_OPS_CRON_SCHEDULE must be a five-field cron schedule"),
    ],
)
def test_malformed_value_is_reported_by_its_variable_name(settings, key, value, message):
    settings.BRAINTRUST_OPS = {key: value}
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config()


def test_a_secret_that_fails_to_parse_is_not_echoed(settings):
    settings.BRAINTRUST_OPS = {"BRAINTRUST_API_URL": FAKE_BT_KEY}
    with pytest.raises(ConfigurationError) as error:
        load_config()
    assert FAKE_BT_KEY not in str(error.value)


@pytest.mark.parametrize(
    "command, present, missing",
    [
        ("tag_logs", {"BRAINTRUST_PROJECT_ID": PROJECT, "ANTHROPIC_API_KEY": FAKE_ANT_KEY}, "BRAINTRUST_API_KEY"),
        ("tag_logs", {"BRAINTRUST_API_KEY": FAKE_BT_KEY, "ANTHROPIC_API_KEY": FAKE_ANT_KEY}, "BRAINTRUST_PROJECT_ID"),
        ("tag_logs", {"BRAINTRUST_API_KEY": FAKE_BT_KEY, "BRAINTRUST_PROJECT_ID": PROJECT}, "ANTHROPIC_API_KEY"),
        ("push_to_datasets", {"BRAINTRUST_PROJECT_ID": PROJECT}, "BRAINTRUST_API_KEY"),
    ],
)
def test_command_stops_before_any_request_naming_the_missing_variable(settings, command, present, missing):
    # An unreachable URL: if the command sent anything, it would fail differently (a connection error).
    settings.BRAINTRUST_OPS = {**present, "BRAINTRUST_API_URL": "http://127.0.0.1:9"}
    with pytest.raises(CommandError, match=f"^{missing} is not set"):
        call_command(command)


def test_missing_setting_exits_1_with_one_line_and_no_secret_in_output():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BRAINTRUST", "ANTHROPIC", "DATABASE_URL"))
    }
    env.update(
        {
            "BRAINTRUST_API_KEY": FAKE_BT_KEY,
            "BRAINTRUST_PROJECT_ID": "not-a-uuid",
            "ANTHROPIC_API_KEY": FAKE_ANT_KEY,
            "DATABASE_URL": "sqlite://:memory:",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "tag_logs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "BRAINTRUST_PROJECT_ID must be a project UUID" in result.stderr
    assert "Traceback" not in result.stderr
    for secret in (FAKE_BT_KEY, FAKE_ANT_KEY):
        assert secret not in result.stdout + result.stderr


def test_settings_from_environment_takes_the_services_names_and_the_prefixed_ones_and_skips_empty_values():
    environ = {
        "BRAINTRUST_API_KEY": "bt-environment-key-for-tests-0001",
        "ANTHROPIC_API_KEY": "",
        "BRAINTRUST_OPS_TAGGING_CONCURRENCY": "4",
        "BRAINTRUST_OPS_CRON_SCHEDULE": "30 3 * * *",
        "BRAINTRUST_OPS_BACKUP_DIR": "",
        "HOME": "/root",
    }
    assert settings_from_environment(environ) == {
        "BRAINTRUST_API_KEY": "bt-environment-key-for-tests-0001",
        "TAGGING_CONCURRENCY": "4",
        "CRON_SCHEDULE": "30 3 * * *",
    }


def test_a_cron_schedule_is_kept_with_its_spacing_made_single(settings):
    settings.BRAINTRUST_OPS = {"CRON_SCHEDULE": " 30  3 * * 1-5 "}
    assert load_config().cron_schedule == "30 3 * * 1-5"


def test_a_configs_repr_shows_no_key():
    """A traceback's frame locals (Sentry records them by default) show a config by its repr."""
    config = OpsConfig(braintrust_api_key="bt-repr-key-for-tests-1", anthropic_api_key="sk-repr-key-for-tests-2")
    assert "key-for-tests" not in repr(config) and "tagging_model" in repr(config)


def test_secret_values_are_the_configured_keys_longest_first(settings):
    settings.BRAINTRUST_OPS = {
        "BRAINTRUST_API_KEY": "bt-short-key-for-tests-1",
        "ANTHROPIC_API_KEY": "sk-a-longer-key-for-tests-2",
    }
    assert secret_values() == ["sk-a-longer-key-for-tests-2", "bt-short-key-for-tests-1"]
    settings.BRAINTRUST_OPS = {"TAGGING_CONCURRENCY": "many"}
    assert secret_values() == []


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("TAGGING_MAX_LOGS_PER_RUN", "0", "BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN must be a positive number"),
        ("TAGGING_MAX_INPUT_TOKENS_PER_RUN", "0", "BRAINTRUST_OPS_TAGGING_MAX_INPUT_TOKENS_PER_RUN must be a positive"),
        ("HTTP_TIMEOUT_SECONDS", "nan", "BRAINTRUST_OPS_HTTP_TIMEOUT_SECONDS must be a finite number"),
        ("CLAUDE_TIMEOUT_SECONDS", "inf", "BRAINTRUST_OPS_CLAUDE_TIMEOUT_SECONDS must be a finite number"),
        ("HTTP_BACKOFF_SECONDS", "1e999", "BRAINTRUST_OPS_HTTP_BACKOFF_SECONDS must be a finite number"),
        ("CLAUDE_INPUT_PRICE_PER_MTOK", "NaN", "BRAINTRUST_OPS_CLAUDE_INPUT_PRICE_PER_MTOK must be a finite number"),
        ("CLAUDE_BATCH_DISCOUNT", "sNaN", "BRAINTRUST_OPS_CLAUDE_BATCH_DISCOUNT must be a finite number"),
        ("CLAUDE_OUTPUT_PRICE_PER_MTOK", "-Infinity", "BRAINTRUST_OPS_CLAUDE_OUTPUT_PRICE_PER_MTOK must be a finite"),
        (
            "BRAINTRUST_API_URL",
            "https://api.braintrust.dev/v1",
            "BRAINTRUST_API_URL must be the API's base URL without /v1",
        ),
        (
            "BRAINTRUST_API_URL",
            "https://api.braintrust.dev/V1/",
            "BRAINTRUST_API_URL must be the API's base URL without /v1",
        ),
        (
            "ANTHROPIC_BASE_URL",
            "https://api.anthropic.com/v1",
            "ANTHROPIC_BASE_URL must be the API's base URL without /v1",
        ),
    ],
)
def test_a_budget_of_nothing_a_non_finite_number_and_a_base_url_with_v1_are_refused_by_name(
    settings, key, value, message
):
    settings.BRAINTRUST_OPS = {key: value}
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_config()


def test_a_base_url_with_v1_fails_tag_logs_naming_the_url_not_the_project(sandbox_env, settings, run_command):
    settings.BRAINTRUST_OPS = {**settings.BRAINTRUST_OPS, "BRAINTRUST_API_URL": f"{sandbox_env.url}/v1"}
    with pytest.raises(CommandError, match="BRAINTRUST_API_URL must be the API's base URL without /v1") as raised:
        run_command("tag_logs")
    assert "BRAINTRUST_PROJECT_ID" not in str(raised.value) and sandbox_env.count("project") == 0


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_setting_fails_a_command_in_one_line_naming_it(sandbox_env, ops_settings, run_command, value):
    ops_settings(CLAUDE_INPUT_PRICE_PER_MTOK=value)
    with pytest.raises(CommandError, match="^BRAINTRUST_OPS_CLAUDE_INPUT_PRICE_PER_MTOK must be a finite number"):
        run_command("tag_logs", "--dry-run")
