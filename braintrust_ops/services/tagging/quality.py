"""The labeller's quality as people see it: Claude's labels against the reviewed logs' (``agreement``)."""

from braintrust_ops.agreement import Judged, TagAgreement, tag_agreement
from braintrust_ops.models import TaggedLog


def agreement_measure(tags: list[str]) -> list[TagAgreement]:
    """Per model, prompt version and taggable tag, over every stored log a person reviewed and Claude labelled."""
    reviewed = (
        TaggedLog.objects.filter(status=TaggedLog.Status.TAGGED, human_tags__isnull=False)
        .prefetch_related("tags")
        .only("model", "prompt_version", "human_tags")
    )
    judged = (
        Judged(
            model=log.model,
            prompt_version=log.prompt_version,
            claude=frozenset(log.tag_names),
            person=frozenset(log.human_tags or []),
        )
        for log in reviewed.iterator(chunk_size=1000)
    )
    return [
        row for row in tag_agreement(judged, tags) if row.true_positives or row.false_positives or row.false_negatives
    ]
