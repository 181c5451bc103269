"""Where an incremental tag_logs run starts, derived from every successful run of the project, whatever
shard layout it ran under, so that changing the layout (unsharded to N shards, N to M, back) skips no log.

A successful incremental run records its watermark, the greatest ``_xact_id`` it saw (OpenAPI
``ProjectLogsEvent._xact_id``: "monotonically increasing over time"), and it covered the logs of its shard
(every log, unsharded). A watermark belongs to the logs its run covered, not to a shard's name: a run of
another layout asks for what was ingested after the watermarks of the runs that covered *its* logs.

Which runs covered a log depends only on its shard under each layout that ran. A log's shard of N is
``hash mod N`` (``shards.shard_of``), so its shards under the counts N1..Nk and this run's M are fixed by
``hash mod lcm(N1..Nk, M)``, and every residue occurs (the Chinese remainder theorem; the hash is 64
bits). So this run's logs fall into classes, the residues r with ``r mod M`` = its index; a class was
covered by the unsharded runs and, for each count N, by the runs of shard ``r mod N``/N.

A class starts after the watermark of the run before last among the runs that covered it: one run of
overlap, because nothing documented says rows become visible to BTQL in ``_xact_id`` order (the SDK's own
reads ask for ``brainstore_realtime``: indexing can lag ingestion). The run starts at the lowest start of
its classes, so no class is asked from later than its own. A class no watermarked run covered (a shard
that never succeeded) is read as a first run reads, by ``created``; when other classes of the same run
have watermarks, the one query must serve both, so it reads the whole retention by ``created`` (a
widening that costs reads, never a log; stored logs are left as they are).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from braintrust_ops.models import CommandRun
from braintrust_ops.shards import Shard, parse_shard

logger = structlog.get_logger(__name__)

#: Past this many classes (shard counts with no common factor, e.g. 7, 9, 11, 13, 16), a run reads the
#: whole retention instead of working out each class's start.
MAX_CLASSES = 10_000
UNSHARDED = ""


def xact_key(xact_id: str) -> tuple[int, str]:
    """Sort key of an ``_xact_id``: a decimal number in a string (OpenAPI: "monotonically increasing");
    compared as a number, whatever its length."""
    # Equivalent mutant: lstrip("XX0XX") strips no digit but 0, as lstrip("0") does.
    return (len(xact_id.lstrip("0")), xact_id.lstrip("0"))


def newer_xact(first: str | None, second: str | None) -> str | None:
    candidates = [xact for xact in (first, second) if xact]
    return max(candidates, key=xact_key, default=None)


@dataclass
class _Marks:
    """What the successful runs of one shard (or the unsharded runs) recorded."""

    #: their two greatest distinct watermarks, greatest first (the overlap needs the run before last)
    xacts: list[str] = field(default_factory=list)
    #: the newest log `created` they saw (runs from before the watermark existed have only this)
    newest_created: datetime | None = None

    # Equivalent mutants: keeping three ([:3]) changes nothing read (only the top two are), nor does
    # `>=` for `>` (an equal time replaces itself).
    def add(self, xact: str, created: datetime | None) -> None:
        if xact and xact not in self.xacts:
            self.xacts = sorted([*self.xacts, xact], key=xact_key, reverse=True)[:2]
        if created is not None and (self.newest_created is None or created > self.newest_created):
            self.newest_created = created


def _history() -> dict[str, _Marks]:
    """The marks of the project's successful tag_logs runs (``marks_of``)."""
    runs = CommandRun.objects.filter(command="tag_logs", outcome=CommandRun.Outcome.SUCCEEDED)
    return marks_of(runs.values_list("options", "xact_watermark", "high_water_mark").iterator())


def marks_of(runs: Iterable[tuple[object, str, datetime | None]]) -> dict[str, _Marks]:
    """Each shard's marks from its runs' (options, watermark, newest created), keyed by the shard's text
    ("I/N"), the unsharded runs' by ``UNSHARDED``."""
    marks: dict[str, _Marks] = {}
    for options, xact, created in runs:
        key = _shard_key(options)
        if key is not None:
            marks.setdefault(key, _Marks()).add(xact, created)
    return marks


def _shard_key(options: object) -> str | None:
    """The shard a recorded run covered; None when its record cannot say (it then covers nothing here,
    which can only make a start earlier)."""
    text = options.get("shard") if isinstance(options, dict) else None
    if text is None:
        return UNSHARDED
    try:
        return str(parse_shard(str(text)))
    except ValueError:
        return None


@dataclass(frozen=True)
class Start:
    """Where a run starts: the logs created since ``since`` and, when given, ingested after ``after_xact_id``."""

    since: datetime
    after_xact_id: str | None = None


def run_start(
    shard: Shard | None, *, now: datetime, default_hours: int, overlap_hours: int, lookback_days: int
) -> Start:
    """Where the next incremental run of ``shard`` (None: unsharded) starts; see the module's docstring."""
    return start_from(
        _history(),
        shard,
        now=now,
        default_hours=default_hours,
        overlap_hours=overlap_hours,
        lookback_days=lookback_days,
    )


def start_from(
    marks: dict[str, _Marks],
    shard: Shard | None,
    *,
    now: datetime,
    default_hours: int,
    overlap_hours: int,
    lookback_days: int,
) -> Start:
    """``run_start`` given the runs' marks (``marks_of``)."""
    classes = _classes(shard, counts={parse_shard(key).count for key in marks if key != UNSHARDED})
    if classes is None:
        logger.warning("tagging_window_widened", reason="too many shard layouts to tell each log's watermark")
        return Start(since=now - timedelta(days=lookback_days))
    starts = [_class_start([marks[key] for key in keys if key in marks]) for keys in classes]
    watermarks = [xact for xact, _ in starts if xact is not None]
    if len(watermarks) == len(starts):
        # `created` within the retention keeps the query range-filtered: older logs would be pruned anyway.
        return Start(since=now - timedelta(days=lookback_days), after_xact_id=min(watermarks, key=xact_key))
    # Some class has no watermark: it is read by `created`, as a first run (or one from before watermarks).
    since = min(
        _created_start(created, now=now, default_hours=default_hours, overlap_hours=overlap_hours)
        for xact, created in starts
        if xact is None
    )
    if watermarks:
        logger.warning("tagging_window_widened", reason="some of this run's logs were never covered by a watermark")
        since = min(since, now - timedelta(days=lookback_days))
    return Start(since=since)


def _classes(shard: Shard | None, *, counts: set[int]) -> list[list[str]] | None:
    """For each class of this run's logs, the keys of the shards (and the unsharded runs) that covered it."""
    index, count = (shard.index, shard.count) if shard else (0, 1)
    modulus = math.lcm(count, *counts)
    # Equivalent mutant: `/` for `//`, since count divides the lcm.
    if modulus // count > MAX_CLASSES:
        return None
    ordered = sorted(counts)
    return [[UNSHARDED, *(f"{r % n}/{n}" for n in ordered)] for r in range(index, modulus, count)]


def _class_start(marks: Iterable[_Marks]) -> tuple[str | None, datetime | None]:
    """(the watermark of the run before last that covered the class, or the only one; the newest created)."""
    marks = list(marks)
    xacts = sorted({xact for mark in marks for xact in mark.xacts}, key=xact_key, reverse=True)
    created = max((mark.newest_created for mark in marks if mark.newest_created), default=None)
    return (xacts[1] if len(xacts) > 1 else xacts[0] if xacts else None), created


def _created_start(created: datetime | None, *, now: datetime, default_hours: int, overlap_hours: int) -> datetime:
    """A class without a watermark: a first run takes ``default_hours`` back; after a run from before the
    watermark existed, that run's newest log minus ``overlap_hours``, as it used to."""
    if created is None:
        return now - timedelta(hours=default_hours)
    return min(created - timedelta(hours=overlap_hours), now - timedelta(hours=overlap_hours))
