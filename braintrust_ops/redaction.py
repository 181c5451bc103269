"""Keep API keys out of every log line, whatever path a value took to get there.

A server may echo the request's ``Authorization`` or ``x-api-key`` header in an error body, and that
body may reach us as it was sent, inside a JSON string (``\\/`` and ``\\uXXXX`` escapes), as a Python
repr, URL-encoded, or any of these inside another. Each secret is looked for in each of those forms.

Importable without Django, so a host project's logging configuration can use it.
"""

import functools
import json
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# Shorter values would redact ordinary words; real keys are far longer.
MIN_SECRET_LENGTH = 8
# A form of a form: JSON inside a JSON string, a repr of JSON, a URL-encoded JSON value...
_WRAPPING_DEPTH = 2
# Attributes of an SDK's exception that hold what the server answered.
_BODY_ATTRIBUTES = ("message", "body", "response_body", "api_message", "detail", "text", "__notes__")
# OSError's text lives in fields of its own, not in args: ``str()`` reads them, so they are redacted too.
_OS_ERROR_FIELDS = ("strerror", "filename", "filename2")


def _json_forms(text: str) -> set[str]:
    # Equivalent mutant: ensure_ascii=None is falsy, so it writes what ensure_ascii=False does.
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    return forms | {form.replace("/", "\\/") for form in forms}


def _url_forms(text: str) -> set[str]:
    # quote_plus's default safe is "", quote's "/". Equivalent mutant: safe="XXXX" adds a letter, which quote
    # never encodes.
    forms = {quote(text, safe=""), quote_plus(text), quote(text)}
    # Percent-encoding's hex digits in either case (RFC 3986 says uppercase; not every encoder does).
    return forms | {_lower_hex(form) for form in forms}


def _lower_hex(text: str) -> str:
    parts = text.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


def _wrapped(text: str) -> set[str]:
    return {text, repr(text)[1:-1], *_json_forms(text), *_url_forms(text)}


@functools.lru_cache(maxsize=64)
def secret_forms(secrets: tuple[str | None, ...]) -> tuple[str, ...]:
    """Every form of the given secrets a value may carry, longest first (a form that holds another is
    replaced whole). Secrets shorter than MIN_SECRET_LENGTH, and None, are left out."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            continue
        found = {secret}
        for _ in range(_WRAPPING_DEPTH):
            found |= {form for text in found for form in _wrapped(text)}
        forms |= found
    return tuple(sorted(forms, key=len, reverse=True))


def redact(value: Any, secrets: Iterable[str | None]) -> Any:
    """Return ``value`` with each secret (in each form it may take) replaced, looking inside strings,
    dicts, lists and tuples; an exception becomes its redacted text."""
    return _redact(value, secret_forms(tuple(secrets)))


def _redact(value: Any, forms: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _redact(item, forms) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(item, forms) for item in value)
    if isinstance(value, BaseException):
        return _redact(str(value), forms)
    return value


def redact_exception(error: BaseException, secrets: Iterable[str | None]) -> None:
    """Redact, in place, the message and body of ``error`` and of every exception it holds: the ones
    behind it (``__cause__``, ``__context__``) and the ones it was given (requests' ``ConnectionError``
    holds urllib3's ``MaxRetryError`` as an argument, which holds its ``reason`` as an attribute). An
    SDK's error quotes the server's body, and ``str()`` of an error shows its arguments' text, so a
    traceback or a message printed later shows no key either. Exceptions stay exceptions: callers read
    them by type and attribute. An exception group's own message cannot be changed (CPython makes it
    read-only), but the exceptions it holds are redacted like any other."""
    forms = secret_forms(tuple(secrets))
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    # The bound is on the work a pathological tangle can cost; real errors hold a handful.
    while pending and len(seen) < _MAX_EXCEPTIONS:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_redact_keeping_exceptions(arg, forms, pending) for arg in current.args)
        texts = [*vars(current)] + (list(_OS_ERROR_FIELDS) if isinstance(current, OSError) else [])
        for name in texts:
            value = getattr(current, name)
            if name in _BODY_ATTRIBUTES or name in _OS_ERROR_FIELDS:
                redacted = _redact_keeping_exceptions(value, forms, pending)
                if redacted is not value:  # an SDK's response object, say, is left untouched
                    setattr(current, name, redacted)
            else:
                _redact_keeping_exceptions(value, (), pending)  # only to find the exceptions it holds
        pending += [linked for linked in (current.__context__, current.__cause__) if linked is not None]


# Enough for any real error's tangle (an SDK error, the transport's, their causes); a bound, not a budget.
_MAX_EXCEPTIONS = 50


def _redact_keeping_exceptions(value: Any, forms: tuple[str, ...], found: list[BaseException]) -> Any:
    """``value`` redacted as ``_redact`` would, except that an exception inside it is kept as it is and
    added to ``found`` (to be redacted in place), and other objects are left alone."""
    if isinstance(value, BaseException):
        found.append(value)
        return value
    if isinstance(value, str):
        return _redact(value, forms)
    if isinstance(value, dict):
        return {key: _redact_keeping_exceptions(item, forms, found) for key, item in value.items()}
    # Exactly list or tuple: a named tuple's constructor takes fields, not one iterable.
    if type(value) in (list, tuple):
        return type(value)(_redact_keeping_exceptions(item, forms, found) for item in value)
    return value


class SecretRedactor:
    """A structlog processor that redacts the given secrets from every field of an event."""

    def __init__(self, secrets: Iterable[str | None]):
        self.forms = secret_forms(tuple(secrets))

    # structlog's EventDict, spelled out so this module needs no structlog.
    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.forms:
            return event_dict
        return _redact(event_dict, self.forms)
