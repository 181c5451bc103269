"""How well Claude's labels agree with people's, per tag: precision, recall and F1, with the counts behind
them and 95% Wilson score intervals, for each model and prompt version that labelled reviewed logs.

For a tag, over the logs a person reviewed and Claude labelled: a true positive is a log both gave the
tag, a false positive one only Claude gave it, a false negative one only the person gave it. Precision is
TP / (TP + FP), recall TP / (TP + FN); each is a proportion of its own trials, so its interval is the
Wilson score interval for that proportion (Wilson 1927; recommended over the normal approximation for
small counts and proportions near 0 or 1 by Brown, Cai and DasGupta 2001, "Interval Estimation for a
Binomial Proportion").
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

#: The normal quantile for a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``trials``; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = (z / (1 + z2 / trials)) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Mathematically the interval holds p (and is exactly [0, ...] at p = 0); rounding can put a bound a hair
    # past it, so the bounds are held to p and to [0, 1].
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


@dataclass(frozen=True)
class TagAgreement:
    tag: str
    model: str
    prompt_version: str
    #: reviewed logs Claude labelled with this model and prompt version
    reviewed: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float | None:
        both = 2 * self.true_positives + self.false_positives + self.false_negatives
        return _ratio(2 * self.true_positives, both)

    @property
    def precision_interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall_interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.true_positives, self.true_positives + self.false_negatives)

    def as_dict(self) -> dict:
        return {
            "tag": self.tag,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "reviewed": self.reviewed,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "precision": self.precision,
            "precision_95": self.precision_interval,
            "recall": self.recall,
            "recall_95": self.recall_interval,
            "f1": self.f1,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Judged:
    """One reviewed log: who labelled it how."""

    model: str
    prompt_version: str
    claude: frozenset[str]
    person: frozenset[str]


def tag_agreement(logs: Iterable[Judged], tags: Iterable[str]) -> list[TagAgreement]:
    """Per (model, prompt version) and tag, Claude against people, in that order of keys."""
    wanted = sorted(set(tags))
    reviewed: dict[tuple[str, str], int] = defaultdict(int)
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for log in logs:
        key = (log.model, log.prompt_version)
        reviewed[key] += 1
        for tag in wanted:
            claude, person = tag in log.claude, tag in log.person
            if claude or person:
                counts[(*key, tag)][0 if claude and person else 1 if claude else 2] += 1
    return [
        TagAgreement(tag, model, version, reviewed[(model, version)], *counts[(model, version, tag)])
        for model, version in sorted(reviewed)
        for tag in wanted
    ]
