"""Stand-in for the host's ``init_sentry``: errors only, events without an exception dropped, 1% sampled."""

import sentry_sdk


def before_send(event, hint):
    if "exception" not in event:
        return None  # messages and log records are dropped
    exc_value = (hint.get("exc_info") or (None, None, None))[1]
    status_code = getattr(exc_value, "status_code", None)
    if isinstance(status_code, int) and status_code < 500:
        return None  # a client error is not the server's
    return event


def init_sentry(sentry_dsn, sentry_code_version, sentry_environment):
    sentry_sdk.init(
        dsn=sentry_dsn,
        environment=sentry_environment,
        sample_rate=0.01,
        traces_sample_rate=0.0,
        send_default_pii=False,
        before_send=before_send,
        release=sentry_code_version,
    )
