"""Stand-in for the host's ``init_sentry``: errors only, events without an exception dropped, 1% sampled.

The behaviour lives once, in the app's test helpers (``braintrust_ops/tests/sentry_host.py``), which the
app's own Sentry tests use as the host; the stand-in host calls it from gunicorn only, as Sefaria does.
"""

from braintrust_ops.tests.sentry_host import init_sentry_like_sefaria


def init_sentry(sentry_dsn, sentry_code_version, sentry_environment):
    init_sentry_like_sefaria(dsn=sentry_dsn, release=sentry_code_version, environment=sentry_environment)
