"""Stop a run when the service is down, instead of spending every log's attempts on it.

Claude can be overloaded (529) for hours. A run that goes on through an outage sends thousands of
requests that cannot succeed; worse, an earlier version counted each such failure against the log, so
after a few nights the logs were out of attempts and never tagged. Here only consecutive *service*
failures (connection errors, time-outs, 5xx, 529, and 429s left after the retries) count, and a log's
own faults (a 400 on its content, an unusable reply) reset nothing and trip nothing.
"""

from dataclasses import dataclass


@dataclass
class OutageBreaker:
    """Opens after ``threshold`` service failures in a row; any success closes the streak."""

    threshold: int
    in_a_row: int = 0
    #: the last service failure's message
    reason: str = ""

    @property
    def open(self) -> bool:
        return self.in_a_row >= self.threshold

    def service_failure(self, reason: str) -> None:
        self.in_a_row += 1
        self.reason = reason

    def success(self) -> None:
        if not self.open:
            self.in_a_row = 0
