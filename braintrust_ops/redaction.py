"""Keep API keys out of every log line, whatever path a value took to get there.

Importable without Django, so a host project's logging configuration can use it.
"""

from collections.abc import Iterable, MutableMapping
from typing import Any

REDACTED = "[redacted]"
# Shorter values would redact ordinary words; real keys are far longer.
MIN_SECRET_LENGTH = 8


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Return ``value`` with each secret replaced, looking inside strings, dicts, lists and tuples."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item, secrets) for item in value)
    if isinstance(value, BaseException):
        return redact(str(value), secrets)
    return value


class SecretRedactor:
    """A structlog processor that redacts the given secrets from every field of an event."""

    def __init__(self, secrets: Iterable[str | None]):
        self.secrets = tuple(
            sorted(
                {secret for secret in secrets if secret and len(secret) >= MIN_SECRET_LENGTH},
                key=len,
                reverse=True,
            )
        )

    # structlog's EventDict, spelled out so this module needs no structlog.
    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event_dict
        return redact(event_dict, self.secrets)
