"""The one HTTP session every Braintrust call goes through, and its one retry layer.

Why the retries live in ``Session.send`` and not on the ``HTTPAdapter``: requests reads a reply's
body after urllib3 has handed the response back (``preload_content=False``), so a ``Retry`` mounted on
the adapter never sees a body cut off mid-way, and a second loop around it for that case multiplies
the attempts (36 requests for one BTQL page in an earlier version). Here one loop, driven by urllib3's
own ``Retry`` (its counters and exponential backoff; ``Retry-After`` is read by our
``_BudgetedRetry.get_retry_after``, which takes fractions and dates), covers connection
errors, time-outs, 5xx, a cut-off or garbled body, and 429, and knows the real number of attempts.
The braintrust SDK's own retry loop is off (``BraintrustOpenApiClient(enable_sdk_retries=False)``;
an injected session owns retries: ``braintrust/api/_transport.py``, ``Transport.__init__``).

A 429 is not counted against the retry count: a rate limit is the service working as designed, and
BTQL allows about 20 requests a minute on some plans (SPEC.md). It waits for ``Retry-After`` when
the server gives one, otherwise backs off exponentially, within a total wait budget per request.
"""

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import IncompleteRead, InvalidHeader, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import RequestHistory, Retry

if TYPE_CHECKING:
    # For the annotations only: urllib3 2.x names the response type Retry takes BaseHTTPResponse
    # (urllib3/response.py); 1.26, which Sefaria pins, has no such name, only HTTPResponse.
    from urllib3 import BaseHTTPResponse

RATE_LIMITED = 429
# Worth another attempt: time-outs and the server's own failures. 429 is handled apart (a time budget).
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
# The longest single backoff between two attempts when the server names none.
MAX_BACKOFF_SECONDS = 60
# 429s are bounded by a wait budget; this bounds them too when the waits are zero (a 0 s backoff).
MAX_RATE_LIMITED_ATTEMPTS = 100


class GarbledBody(ProtocolError):
    """A 2xx reply that says it is JSON but is not: a proxy's error page, or a body cut short in a way
    the framing did not show. A read error for ``Retry``, so it is retried like a dropped connection."""


class GarbledReply(requests.exceptions.RequestException):
    """GarbledBody, still so after the last attempt: raised as a requests error, like the others."""


@dataclass(frozen=True)
class Attempts:
    """How the last request on this thread went: what a failure message reports."""

    count: int = 0
    #: seconds spent waiting out 429s
    rate_limited_seconds: float = 0.0
    #: the wait that would have passed the rate-limit budget (the server's Retry-After, or the next
    #: backoff); 0 when the budget did not run out
    refused_wait: float = 0.0


class _BudgetedRetry(Retry):
    """urllib3's Retry, where 429s draw on a wait budget in seconds instead of the retry count."""

    # The longest exponential backoff. urllib3 1.26 reads it from this class attribute, 2.x from the
    # instance's ``backoff_max``, a constructor argument 1.26 does not take (``Retry.get_backoff_time``
    # in urllib3/util/retry.py of each), so both are set here and the argument is never passed.
    DEFAULT_BACKOFF_MAX = MAX_BACKOFF_SECONDS

    def __init__(self, *args, rate_limit_budget: float = 300.0, rate_limited_seconds: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.backoff_max = MAX_BACKOFF_SECONDS
        self.rate_limit_budget = rate_limit_budget
        self.rate_limited_seconds = rate_limited_seconds

    def new(self, **kwargs):
        kwargs.setdefault("rate_limit_budget", self.rate_limit_budget)
        kwargs.setdefault("rate_limited_seconds", self.rate_limited_seconds)
        return super().new(**kwargs)

    def get_retry_after(self, response: "BaseHTTPResponse") -> float | None:
        """Retry-After in seconds, fractions included; None when there is none or it makes no sense.

        urllib3 takes only whole seconds or an HTTP-date and raises InvalidHeader for anything else, a
        ``1.5`` included (``Retry.parse_retry_after``: ``^\\s*[0-9]+\\s*$``, else ``parsedate_tz``, urllib3
        1.26 and 2.x alike), which would escape this loop as a traceback. RFC 9110 says delay-seconds is
        an integer, but a server sending ``1.5`` means one and a half seconds. ``inf`` stays infinite
        (over any budget: refused at once); NaN or a value neither a number nor a date counts as none."""
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                return super().get_retry_after(response)  # an HTTP-date
            except InvalidHeader:
                return None
        return None if math.isnan(seconds) else max(seconds, 0.0)

    def sleep_for_retry(self, response: "BaseHTTPResponse") -> bool:
        """A 5xx's Retry-After, at most MAX_BACKOFF_SECONDS: it draws on no budget, so it is bounded here
        (urllib3 caps it at 6 hours, and 1.26 and older 2.x releases not at all)."""
        retry_after = self.get_retry_after(response)
        if retry_after is None:
            return False
        time.sleep(min(retry_after, MAX_BACKOFF_SECONDS))
        return True

    def rate_limit_wait(self, response: "BaseHTTPResponse") -> float:
        """Seconds to wait before the next attempt after this 429: the server's Retry-After, or an
        exponential backoff over the 429s of this request so far."""
        retry_after = self.get_retry_after(response)
        if retry_after is not None:
            return retry_after
        return min(self.backoff_factor * (2 ** min(self._rate_limited_attempts(), 30)), self.backoff_max)

    def _rate_limited_attempts(self) -> int:
        return sum(1 for entry in self.history if entry.status == RATE_LIMITED)

    def after_rate_limit(self, method: str, url: str, wait: float) -> "_BudgetedRetry":
        """The state after waiting ``wait`` seconds for a 429; MaxRetryError when over the budget."""
        over_budget = self.rate_limited_seconds + wait > self.rate_limit_budget
        if over_budget or self._rate_limited_attempts() + 1 >= MAX_RATE_LIMITED_ATTEMPTS:
            # No pool to name, as in urllib3's own Retry.increment, whose _pool defaults to None: the
            # annotation says ConnectionPool, the code (and urllib3's own ignore there) says None is fine.
            reason = urllib3.exceptions.ResponseError(f"too many 429s; next wait {wait:.0f}s")
            raise MaxRetryError(None, url, reason)  # type: ignore[arg-type]
        return self.new(
            history=self.history + (RequestHistory(method, url, None, RATE_LIMITED, None),),
            rate_limited_seconds=self.rate_limited_seconds + wait,
        )


def _urllib3_error(exc: requests.RequestException) -> Exception:
    """The urllib3 error behind a requests one, so Retry can tell a connect error from a read error."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.HTTPError):
        return cause
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimeoutError(None, None, str(exc))  # type: ignore[arg-type]  # no pool, as in after_rate_limit
    # A dropped connection or a body cut short: a read error (the request may have reached the server).
    return ProtocolError(str(exc))


def _check_whole_body(response: requests.Response) -> None:
    """A body shorter than its Content-Length was cut off: the same error on urllib3 1.26 as on 2.x.

    urllib3 2.x raises it while the body is read (``HTTPResponse(enforce_content_length=True)``, the default
    since 2.0); 1.26, which Sefaria pins, defaults to False and hands back the short body as if whole
    (urllib3/response.py of each, ``HTTPResponse.__init__`` and ``read``). Both count the bytes still owed in
    ``length_remaining`` (None without a Content-Length, 0 for HEAD, 204 and 304), so after the read it is
    checked here as 2.x checks it, and raised as requests raises 2.x's (``Response.iter_content``:
    ``ProtocolError`` becomes ``ChunkedEncodingError``)."""
    remaining = getattr(response.raw, "length_remaining", None)
    if remaining is not None and remaining > 0:
        error = IncompleteRead(response.raw.tell(), remaining)
        raise requests.exceptions.ChunkedEncodingError(ProtocolError(f"Connection broken: {error!r}", error))


def _parse_body(response: requests.Response) -> None:
    """Parse a 2xx reply once, here, and hand that parse to every reader: ``response.json()`` returns it,
    for the SDK and for BTQL alike (a page of megabytes is parsed once, not checked and then parsed).

    Every Braintrust endpoint this app calls answers JSON, so a 2xx reply that is not (a proxy's HTML page,
    a body cut short in a way the framing did not show) is a transient fault: GarbledBody. The json
    module, not orjson: orjson turns integers beyond 64 bits into floats and refuses lone surrogate
    escapes ("\\ud83d", half an emoji, which chat text holds). A value nested past the parser's depth
    is not garbled: the reader meets it again and decides (``BraintrustClient.btql``)."""
    if response.status_code >= 300:
        return
    try:
        value = json.loads(response.content)
    except RecursionError:
        return
    except ValueError as exc:
        raise GarbledBody(f"the {len(response.content)}-byte reply is not JSON ({exc})") from None
    # The parse replaces this one response's json method on purpose, so every reader gets it; mypy
    # rightly flags assigning to a method, which is the point here.
    response.json = lambda **kwargs: value  # type: ignore[method-assign]


class RetryingSession(requests.Session):
    """A session whose every request has the configured time-out and the retry policy above.

    ``last_attempts()`` tells the calling thread how its last request went, for the error message.
    """

    def __init__(self, *, timeout: float, max_retries: int, backoff_seconds: float, rate_limit_budget: float):
        super().__init__()
        self.timeout = timeout
        self._policy = _BudgetedRetry(
            # One count for every kind of failure but 429, so a request makes at most max_retries + 1 attempts.
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            # A redirect hop is a send too: it draws on total like a retry (``send``).
            redirect=max_retries,
            backoff_factor=backoff_seconds,
            status_forcelist=RETRY_STATUSES,
            # Every request this app sends is safe to repeat: BTQL is a read, dataset inserts upsert by id.
            allowed_methods=None,
            respect_retry_after_header=True,
            rate_limit_budget=rate_limit_budget,
        )
        self._local = threading.local()
        # The adapter never retries: this session's loop is the only layer.
        adapter = HTTPAdapter(max_retries=Retry(0, read=False), pool_connections=4, pool_maxsize=16)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def last_attempts(self) -> Attempts:
        return getattr(self._local, "attempts", Attempts())

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, read_timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """Every request gets the session's time-out; ``read_timeout`` gives one route a longer wait for its
        answer (BTQL's), the connect time-out staying the session's."""
        kwargs["timeout"] = self.timeout if read_timeout is None else (self.timeout, read_timeout)
        return super().request(method, url, *args, **kwargs)

    def send(self, request, **kwargs):
        """One logical request: at most ``max_retries + 1`` sends, redirect hops included, and
        ``last_attempts()`` counts every one of them.

        Redirects are followed here, one hop a turn of this loop, not by ``requests.Session.send``: it follows
        them by calling ``self.send`` again for each hop (requests 2.32 and 2.34 ``sessions.py``,
        ``SessionRedirectMixin.resolve_redirects``: ``resp = self.send(req, ..., allow_redirects=False)``), which
        nested this loop in itself (12 sends for max_retries=2, reported as 3 attempts). With
        ``allow_redirects=False`` requests still prepares the next hop's request as it would have sent it
        (``Session.send`` sets ``Response.next`` from ``resolve_redirects(..., yield_requests=True)``: method,
        body, auth and cookies rebuilt), so the hop is requests' own; its count is urllib3's: a redirect
        draws on ``total`` like a retry (``Retry.increment``). Braintrust's API documents no redirect
        (reference/braintrust-openapi.json has no 3xx), but its SDK follows them (a plain ``session.request``,
        ``braintrust/api/_transport.py``), so a deployment behind one keeps working."""
        follow = kwargs.pop("allow_redirects", True)
        retry = self._policy.new()
        count = 0
        hops: list[requests.Response] = []
        while True:
            method, url = request.method, request.url
            count += 1
            try:
                response = super().send(request, allow_redirects=False, **kwargs)
                hop = response.next if follow else None
                if hop is None:
                    _ = response.content  # read the whole body here: a body cut off mid-way fails inside the loop
                    _check_whole_body(response)
                    _parse_body(response)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                retry = self._next_or_raise(retry, count, exc, method=method, url=url, error=_urllib3_error(exc))
                retry.sleep()
                continue
            except GarbledBody as exc:
                retry = self._next_or_raise(retry, count, exc, method=method, url=url, error=exc)
                retry.sleep()
                continue
            if hop is not None:
                try:
                    retry = retry.increment(method, url, response=response.raw)
                except MaxRetryError:
                    self._finish(response, count, retry)
                    raise requests.TooManyRedirects(
                        f"still redirected after {count} sends",
                        response=response,
                        request=request,
                    ) from None
                hops.append(response)
                request = hop
                continue
            response.history = hops
            status = response.status_code
            if status == RATE_LIMITED:
                wait = retry.rate_limit_wait(response.raw)
                try:
                    retry = retry.after_rate_limit(method, url, wait)
                except MaxRetryError:
                    return self._finish(response, count, retry, refused_wait=wait)
                time.sleep(wait)
                continue
            if status in RETRY_STATUSES:
                try:
                    retry = retry.increment(method, url, response=response.raw)
                except MaxRetryError:
                    return self._finish(response, count, retry)
                retry.sleep(response.raw)
                continue
            return self._finish(response, count, retry)

    def _next_or_raise(self, retry: _BudgetedRetry, count: int, exc: Exception, *, method: str, url: str, error):
        try:
            return retry.increment(method, url, error=error)
        except MaxRetryError:
            self._local.attempts = Attempts(count=count, rate_limited_seconds=retry.rate_limited_seconds)
            if isinstance(exc, GarbledBody):
                raise GarbledReply(str(exc)) from None
            raise exc from None

    def _finish(self, response: requests.Response, count: int, retry: _BudgetedRetry, *, refused_wait: float = 0.0):
        self._local.attempts = Attempts(
            count=count,
            rate_limited_seconds=retry.rate_limited_seconds,
            refused_wait=refused_wait,
        )
        return response


def build_session(
    *, timeout: float, max_retries: int, backoff_seconds: float, rate_limit_budget: float = 300.0
) -> RetryingSession:
    return RetryingSession(
        timeout=timeout, max_retries=max_retries, backoff_seconds=backoff_seconds, rate_limit_budget=rate_limit_budget
    )
