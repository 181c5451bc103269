"""The one HTTP session every Braintrust call goes through: a default time-out and bounded retries."""

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A Retry-After longer than this is not worth holding a nightly job for; the run fails and says so.
MAX_RETRY_AFTER_SECONDS = 120


class _BoundedRetry(Retry):
    """urllib3's Retry, but a server's Retry-After is capped so one reply cannot stall the job for hours."""

    def get_retry_after(self, response):
        retry_after = super().get_retry_after(response)
        return None if retry_after is None else min(retry_after, MAX_RETRY_AFTER_SECONDS)


class _TimeoutSession(requests.Session):
    """A session whose every request has the configured time-out, whoever builds the request."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs["timeout"] = self.timeout
        return super().request(method, url, **kwargs)


def build_session(*, timeout: float, max_retries: int, backoff_seconds: float) -> requests.Session:
    retry = _BoundedRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=backoff_seconds,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        # Every POST this app sends is safe to repeat: BTQL is a read, dataset inserts upsert by id.
        allowed_methods=None,
        respect_retry_after_header=True,
        # Hand the last error response back instead of raising, so the caller can say what it was.
        raise_on_status=False,
    )
    session = _TimeoutSession(timeout)
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
