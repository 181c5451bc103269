"""Sentry as the host sets it up, for tests: a transport that keeps what would be sent, and a client
started the way Sefaria starts its own.

``init_sentry_like_sefaria`` and ``sefaria_before_send`` are this repository's code, written to behave
as Sefaria-Project's ``init_sentry`` in ``sefaria/settings_utils.py`` does (master 4c0ecc1e): error
tracking only, a DjangoIntegration, ``sample_rate`` from Sefaria's remote config (0.01 when it says
nothing), no tracing or profiling, no PII, 10 breadcrumbs, and a ``before_send`` that keeps exception
events only, and of those neither the expected HTTP ones (404, permission denied, suspicious operation)
nor any carrying a ``status_code`` below 500. Sefaria calls it from gunicorn's post_fork and its own
runserver only, never in a ``manage.py`` CronJob; a test that calls it plays a web process, or a host
whose settings start Sentry.

Nothing leaves the machine: the transports here record envelopes, and DSN points at 127.0.0.1's port
9 (discard), where nothing listens.
"""

from typing import Any

import sentry_sdk
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport

DSN = "http://public@127.0.0.1:9/1"
# Sefaria's default when its remote config has no sample rate.
SEFARIA_SAMPLE_RATE = 0.01
_EXPECTED_HTTP_ERRORS = (Http404, PermissionDenied, SuspiciousOperation)


class CapturingTransport(Transport):
    """Keeps every envelope the client hands it, instead of sending it."""

    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes: list = []
        self.closed = False

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def kill(self):
        self.closed = True

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [item.payload.json for envelope in self.envelopes for item in envelope.items if item.type == kind]

    @property
    def check_ins(self) -> list[dict[str, Any]]:
        return self.items("check_in")

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.items("event")

    def statuses(self) -> list[tuple[str, str]]:
        return [(item["monitor_slug"], item["status"]) for item in self.check_ins]

    def text(self) -> str:
        """Everything recorded, as the bytes that would have gone out (for looking for a secret)."""
        return "\n".join(envelope.serialize().decode("utf-8", "replace") for envelope in self.envelopes)


def sefaria_before_send(event: dict, hint: dict) -> dict | None:
    """Keep what Sefaria's ``before_send`` keeps: an exception event, unless the exception is an expected
    HTTP one or says it is a client error (``status_code`` under 500). Messages and check-ins go."""
    if "exception" not in event:
        return None
    exc_info = hint.get("exc_info")
    if not exc_info:
        return event
    error = exc_info[1]
    if isinstance(error, _EXPECTED_HTTP_ERRORS):
        return None
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status < 500:
        return None
    return event


def init_sentry_like_sefaria(
    *,
    dsn: str = DSN,
    release: str = "unknown",
    environment: str = "unknown",
    sample_rate: float = SEFARIA_SAMPLE_RATE,
    transport: Transport | None = None,
) -> None:
    """Start the process's client as Sefaria's ``init_sentry`` does; ``transport`` keeps it on this machine."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration()],
        sample_rate=sample_rate,
        traces_sample_rate=0.0,
        profiles_sample_rate=0.0,
        send_default_pii=False,
        before_send=sefaria_before_send,
        max_breadcrumbs=10,
        transport=transport,
    )


def reset_sentry() -> None:
    """Close the process's client, if any, and leave none: the next test finds Sentry as a CronJob does."""
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close()
    sentry_sdk.Scope.get_global_scope().set_client(None)  # sentry_sdk.get_global_scope() is newer than 2.0.0
