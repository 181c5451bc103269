"""Rows the tests need in the database, made the way tag_logs would have stored them."""

from datetime import UTC, datetime

from braintrust_ops.models import LogTag, TaggedLog

LOGGED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def tagged_log(log_id, *tags, status="tagged", **fields):
    log = TaggedLog.objects.create(
        log_id=log_id,
        root_span_id=f"root-{log_id}",
        logged_at=fields.pop("logged_at", LOGGED_AT),
        input=fields.pop("input", {"messages": [{"role": "user", "content": f"question {log_id}"}]}),
        output=fields.pop("output", f"answer {log_id}"),
        metadata=fields.pop("metadata", {"session": "s1"}),
        status=status,
        model="claude-haiku-4-5" if status == "tagged" else "",
        prompt_version="2026-11-24.1" if status == "tagged" else "",
        tagged_at=LOGGED_AT if status == "tagged" else None,
        last_error="boom" if status == "failed" else "",
        **fields,
    )
    LogTag.objects.bulk_create([LogTag(tagged_log=log, name=name) for name in tags])
    return log
