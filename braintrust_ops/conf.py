"""The app's settings: one place that knows every knob, its default, and what a bad value looks like.

The host project provides ``settings.BRAINTRUST_OPS``, a dict of raw values (strings from the
environment in this stand-in project). ``load_config()`` parses and validates it; commands call it
before any network request so a missing key fails fast with the variable's name and never its value.
"""

import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from braintrust_ops.exceptions import ConfigurationError
from braintrust_ops.redaction import redact

# Settings that keep the names the services' SDKs use; every other key is read from the environment
# as BRAINTRUST_OPS_<KEY> by the stand-in settings.
STANDARD_ENV_NAMES = frozenset(
    {"BRAINTRUST_API_KEY", "BRAINTRUST_PROJECT_ID", "BRAINTRUST_API_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}
)
SECRET_KEYS = ("BRAINTRUST_API_KEY", "ANTHROPIC_API_KEY")


def env_name(key: str) -> str:
    return key if key in STANDARD_ENV_NAMES else f"BRAINTRUST_OPS_{key}"


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``settings.BRAINTRUST_OPS`` as the environment states it: the services' own names, then every
    ``BRAINTRUST_OPS_<KEY>``. Settings modules call it (``BRAINTRUST_OPS = settings_from_environment()``),
    so a CronJob configures the app with plain environment variables and the names live here alone.
    Values stay raw strings; ``load_config`` parses and validates them."""
    values = {name: environ[name] for name in sorted(STANDARD_ENV_NAMES) if environ.get(name)}
    values.update(
        {
            name.removeprefix("BRAINTRUST_OPS_"): value
            for name, value in environ.items()
            if name.startswith("BRAINTRUST_OPS_") and value
        }
    )
    return values


@dataclass(frozen=True)
class OpsConfig:
    """Parsed settings. Field names match the ``BRAINTRUST_OPS`` keys in lower case."""

    # Out of the repr: a traceback's frame locals (Sentry records them by default) or a debug line that
    # shows a config must not show a key.
    braintrust_api_key: str | None = field(default=None, repr=False)
    braintrust_project_id: str | None = None
    braintrust_api_url: str = "https://api.braintrust.dev"
    anthropic_api_key: str | None = field(default=None, repr=False)
    # None lets the anthropic SDK use its own default (https://api.anthropic.com).
    anthropic_base_url: str | None = None

    # HTTP to Braintrust: per-request timeout; retries on connection errors, cut-off bodies and 5xx.
    http_timeout_seconds: float = 30.0
    http_max_retries: int = 5
    http_backoff_seconds: float = 0.5
    # A 429 does not use up retries: it waits (Retry-After, or an exponential backoff) within this budget
    # per request. BTQL allows about 20 requests a minute on some plans (SPEC.md).
    http_rate_limit_budget_seconds: float = 300.0
    btql_page_size: int = 1000
    # The page size follows the bytes of the pages seen, so memory is bounded whatever a row weighs.
    btql_page_bytes: int = 8 * 2**20

    # Claude: the SDK retries 429/5xx/529 itself, honouring retry-after.
    tagging_model: str = "claude-haiku-4-5"
    claude_timeout_seconds: float = 60.0
    claude_max_retries: int = 4
    claude_max_output_tokens: int = 200
    # Strict tool use makes Claude's arguments follow the schema; turn it off for a model without it.
    claude_strict_tools: bool = True
    # US dollars per million tokens, for the run report's cost estimate (claude-haiku-4-5 list price).
    claude_input_price_per_mtok: Decimal = Decimal("1.00")
    claude_output_price_per_mtok: Decimal = Decimal("5.00")

    # tag_logs sends its queue as Message Batches (as --batch does): half the price, results a later run
    # (or --wait) collects. Anthropic bills batches at 50% of the standard price (its pricing page).
    tagging_batch: bool = False
    claude_batch_discount: Decimal = Decimal("0.5")
    # One batch's body is built in memory to be sent: this bounds the CronJob's memory, under the API's 256 MB.
    claude_batch_max_bytes: int = 64 * 2**20
    # How often --wait asks whether the run's batches have ended.
    claude_batch_poll_seconds: float = 30.0

    tagging_concurrency: int = 8
    # Claude calls failing in a row, after the SDK's retries, that mean an outage: the run stops sending.
    claude_outage_threshold: int = 10
    # After SIGTERM or SIGINT (or an outage), how long calls in flight get to finish. Under Kubernetes'
    # default 30 s terminationGracePeriodSeconds, with room to record the run.
    shutdown_grace_seconds: float = 20.0
    tagging_max_attempts: int = 3
    tagging_text_limit: int = 4000
    tagging_default_hours: int = 24
    tagging_overlap_hours: int = 1
    tagging_failure_threshold: float = 0.10
    # Per-run budget: what is over it stays pending for the next run.
    tagging_max_logs_per_run: int = 5000
    tagging_max_input_tokens_per_run: int = 5_000_000

    push_batch_size: int = 200
    # Bytes of one insert request's JSON body. The braintrust SDK caps its requests at 6 MB
    # (DEFAULT_MAX_REQUEST_SIZE in braintrust/logger.py); stay under it with room for headers.
    push_max_request_bytes: int = 5 * 2**20
    # A row the dataset refuses on its own (too large, or its content) is tried this many runs, then left.
    push_max_attempts: int = 3
    push_failure_threshold: float = 0.10

    # tag_logs adds each label to its source log's tags in Braintrust, where people read and filter the
    # logs (a merge: nothing else on the log changes). Off unless asked for.
    write_back: bool = False
    # The project tag a person adds to a log in Braintrust to say its tags are right as they stand
    # (braintrust_ops.reviews). Not a taggable tag: Claude never proposes it.
    reviewed_tag: str = "reviewed"

    backup_days: int = 7
    backup_dir: str = "/tmp"

    # Days of tagged-log content (users' chat text) kept by prune_braintrust_ops.
    retention_days: int = 30

    # The schedule of the CronJob running the command, for its Sentry Cron monitor. The Helm templates
    # pass their own, so a schedule changed in the chart's values moves the monitor with it; unset, the
    # monitor expects the default schedules (monitoring.SCHEDULES).
    cron_schedule: str | None = None

    def require(self, *names: str) -> "OpsConfig":
        """Raise ConfigurationError naming the first required setting that is missing."""
        for name in names:
            if not getattr(self, name):
                raise _not_set(name)
        return self

    def required(self, name: str) -> str:
        """A text setting the caller cannot do without (a key, the project): its value, or the error
        ``require`` raises. Commands require theirs first; this gives the code below them a str."""
        value = getattr(self, name)
        if not value or not isinstance(value, str):
            raise _not_set(name)
        return value

    @property
    def project_id(self) -> str:
        """``braintrust_project_id``, which every service queries by."""
        return self.required("braintrust_project_id")


def _not_set(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"{env_name(name.upper())} is not set. Set it in the environment "
        f"(or settings.BRAINTRUST_OPS['{name.upper()}']) and run the command again."
    )


_POSITIVE = {
    "claude_batch_max_bytes",
    "claude_batch_poll_seconds",
    "http_timeout_seconds",
    "claude_timeout_seconds",
    "claude_max_output_tokens",
    "tagging_concurrency",
    "claude_outage_threshold",
    "tagging_max_attempts",
    "tagging_text_limit",
    "tagging_default_hours",
    "push_batch_size",
    "push_max_request_bytes",
    "push_max_attempts",
    "btql_page_bytes",
    "backup_days",
    "retention_days",
    "btql_page_size",
    # A budget of nothing sends nothing, night after night, while every run "succeeds".
    "tagging_max_logs_per_run",
    "tagging_max_input_tokens_per_run",
}
SettingValue = bool | int | float | Decimal | str
_KIND_NAMES = {int: "a whole number", float: "a number", Decimal: "a number", bool: "true or false"}
_FRACTIONS = {"tagging_failure_threshold", "push_failure_threshold", "claude_batch_discount"}


def _parse(field_name: str, kind: type, raw: object) -> SettingValue:
    what = env_name(field_name.upper())
    try:
        value = _convert(kind, raw)
    except (ValueError, InvalidOperation):
        # The value is not echoed: the same path parses secrets.
        raise ConfigurationError(f"{what} must be {_KIND_NAMES.get(kind, 'text')}; fix its value.") from None
    # nan and inf parse as floats and Decimals; no setting means either (and a Decimal nan cannot be compared).
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        raise ConfigurationError(f"{what} must be a finite number, not {raw!s:.10}; fix its value.")
    # bool is an int too, and a switch has no range.
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        _check_range(field_name, value, what)
    return value


def _convert(kind: type, raw: object) -> SettingValue:
    if kind is bool:
        text = str(raw).strip().lower()
        if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(text)
        return text in ("1", "true", "yes", "on")
    if kind is int:
        return int(str(raw).strip())
    if kind is float:
        return float(str(raw).strip())
    if kind is Decimal:
        return Decimal(str(raw).strip())
    return str(raw).strip()


def _check_range(field_name: str, value: int | float | Decimal, what: str) -> None:
    if value < 0 or (field_name in _POSITIVE and value == 0):
        raise ConfigurationError(
            f"{what} must be a {'positive' if field_name in _POSITIVE else 'non-negative'} number."
        )
    if field_name in _FRACTIONS and not 0 <= value <= 1:
        raise ConfigurationError(f"{what} must be a fraction between 0 and 1 (e.g. 0.1 for 10%).")


def _validate_project_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        # The canonical form is what goes into BTQL, so nothing user-typed reaches the query.
        return str(uuid.UUID(value))
    except ValueError:
        raise ConfigurationError(
            "BRAINTRUST_PROJECT_ID must be a project UUID (Braintrust > project > Configuration shows it)."
        ) from None


# Five fields (minute hour day month weekday) of digits, *, /, -, and ,: what Kubernetes and Sentry share.
_CRON_SCHEDULE = re.compile(r"[0-9*/,-]+(?: [0-9*/,-]+){4}")


def _validate_cron_schedule(value: str | None) -> str | None:
    if value is None:
        return None
    schedule = " ".join(value.split())
    if not _CRON_SCHEDULE.fullmatch(schedule):
        raise ConfigurationError(
            f"BRAINTRUST_OPS_CRON_SCHEDULE must be a five-field cron schedule like '0 2 * * *', not {value!r}."
        )
    return schedule


# Each SDK joins its paths, which start with /v1 (braintrust/api/_generated: "/v1/project/{project_id}";
# anthropic/resources/messages: "/v1/messages"), to the base URL as given: a base URL ending in /v1 makes
# every request go to /v1/v1/..., a 404 that reads as an unknown project. The braintrust SDK reads the same
# BRAINTRUST_API_URL and strips nothing from it (braintrust/api/_routing.py, EndpointRouter.base_url; it
# normalises only a proxy's /v1/proxy), so neither does this app: it says what is wrong instead.
_VERSION_SUFFIX = "/v1"
_EXAMPLE_URLS = {"BRAINTRUST_API_URL": "https://api.braintrust.dev", "ANTHROPIC_BASE_URL": "https://api.anthropic.com"}


def _validate_url(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{env_name(key)} must be an http(s) URL.")
    value = value.rstrip("/")
    if value.lower().endswith(_VERSION_SUFFIX):
        raise ConfigurationError(
            f"{env_name(key)} must be the API's base URL without /v1 (e.g. {_EXAMPLE_URLS[key]}): the /v1/... "
            "paths are added to it, as the SDKs do. Remove the trailing /v1."
        )
    return value


def load_config() -> OpsConfig:
    raw = dict(getattr(settings, "BRAINTRUST_OPS", {}) or {})
    known = {field.name.upper(): field for field in fields(OpsConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigurationError(f"Unknown braintrust_ops setting(s): {', '.join(env_name(k) for k in unknown)}.")
    # Any: each value was parsed to its field's type by _parse, which mypy cannot follow through the loop.
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        field = known[key]
        kind = field.type if isinstance(field.type, type) else str
        values[field.name] = _parse(field.name, kind, value)
    values["braintrust_project_id"] = _validate_project_id(values.get("braintrust_project_id"))
    values["cron_schedule"] = _validate_cron_schedule(values.get("cron_schedule"))
    for key in ("BRAINTRUST_API_URL", "ANTHROPIC_BASE_URL"):
        name = key.lower()
        if name in values:
            values[name] = _validate_url(key, values[name])
    return OpsConfig(**values)


def secret_values() -> list[str]:
    """The configured API keys (``SECRET_KEYS``), longest first, for redaction: a key that holds another is
    replaced whole. Settings too broken to load hold no key to hide here; the command reports them."""
    try:
        config = load_config()
    except ConfigurationError:
        return []
    values = [value for key in SECRET_KEYS if (value := getattr(config, key.lower()))]
    return sorted(values, key=len, reverse=True)


def without_secrets(text: str) -> str:
    """``text`` with every configured key redacted (in any form it may be wrapped in): what is stored,
    printed or raised of an error that quotes a service's reply."""
    return redact(text, secret_values())
