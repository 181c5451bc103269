"""The last nights at a glance, from the run records of tag_logs: what the admin's charts show."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from braintrust_ops.models import CommandRun

NIGHTS = 30


@dataclass
class Nights:
    #: the nights, oldest first (UTC dates)
    days: list[date]
    labelled: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)
    #: tag -> labels given per night
    per_tag: dict[str, list[float | None]] = field(default_factory=dict)
    #: tag -> Claude's precision and recall against people's labels, as the night's last run measured them
    precision: dict[str, list[float | None]] = field(default_factory=dict)
    recall: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.labelled) and not any(self.failures) and not self.precision


def nights_summary(*, nights: int = NIGHTS, now: datetime | None = None) -> Nights:
    """Per night (UTC) of the last ``nights``: the tag_logs runs' counts added up, and the last run's figures."""
    today = (now or timezone.now()).astimezone(UTC).date()
    days = [today - timedelta(days=offset) for offset in range(nights - 1, -1, -1)]
    index = {day: position for position, day in enumerate(days)}
    summary = Nights(days=days, labelled=[0.0] * nights, failures=[0.0] * nights, cost_usd=[0.0] * nights)
    per_tag: dict[str, list[float | None]] = defaultdict(lambda: [None] * nights)
    latest: dict[int, list] = {}
    # By UTC instants, not __date: that follows the host's TIME_ZONE, and nights here are UTC dates.
    runs = CommandRun.objects.filter(
        command="tag_logs", started_at__gte=datetime.combine(days[0], time.min, tzinfo=UTC)
    ).order_by("started_at")
    for run in runs.only("started_at", "counters").iterator(chunk_size=500):
        position = index.get(run.started_at.astimezone(UTC).date())
        if position is None:
            continue
        counters = run.counters or {}
        summary.labelled[position] += _count(counters.get("tagged"))
        summary.failures[position] += sum(
            _count(counters.get(name)) for name in ("failed", "service_failures", "setup_failures")
        )
        summary.cost_usd[position] += _dollars(counters.get("estimated_cost_usd"))
        for tag, count in (counters.get("per_tag") or {}).items():
            per_tag[str(tag)][position] = (per_tag[str(tag)][position] or 0.0) + _count(count)
        if counters.get("agreement"):
            latest[position] = counters["agreement"]
    summary.per_tag = dict(sorted(per_tag.items()))
    precision: dict[str, list[float | None]] = defaultdict(lambda: [None] * nights)
    recall: dict[str, list[float | None]] = defaultdict(lambda: [None] * nights)
    for position, rows in latest.items():
        for row in _most_reviewed_per_tag(rows):
            precision[row["tag"]][position] = row.get("precision")
            recall[row["tag"]][position] = row.get("recall")
    summary.precision, summary.recall = dict(sorted(precision.items())), dict(sorted(recall.items()))
    return summary


def _most_reviewed_per_tag(rows: list) -> list[dict]:
    """For each tag, the figures of the model and prompt version that labelled the most reviewed logs."""
    best: dict[str, dict] = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("tag"), str):
            if row["tag"] not in best or row.get("reviewed", 0) > best[row["tag"]].get("reviewed", 0):
                best[row["tag"]] = row
    return list(best.values())


def _count(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _dollars(value: object) -> float:
    try:
        return float(Decimal(str(value))) if value is not None else 0.0
    except InvalidOperation:
        return 0.0
