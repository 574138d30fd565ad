"""
The replay score: explanations first, then signals, then one number and a verdict.

`assess` is the whole decision for one user and is pure: no clock (the incident time is
`evidence.at`), no I/O, no environment; the same evidence and settings give the same `Assessment`
whatever order the rows arrived in. The points come from the signal rules (`signals.CATALOGUE`,
collected from their declarations); the score is their sum capped at 100, so adding evidence never
lowers it.
"""

from __future__ import annotations

from collections import defaultdict

from common.settings import Settings
from enrichment.domain import coverage
from enrichment.domain.explanations import READS, explain
from enrichment.domain.model import Assessment, Signal, UserEvidence, Verdict
from enrichment.domain.picture import picture
from enrichment.domain.signals import CATALOGUE, RULES, WEIGHTS, Cover, detect, tuned

__all__ = ["CATALOGUE", "MAX_SCORE", "WEIGHTS", "assess", "score_of", "verdict_for"]

MAX_SCORE = 100


def score_of(signals: tuple[Signal, ...]) -> int:
    """The sum of the signals' points, capped at `MAX_SCORE`."""
    return min(MAX_SCORE, sum(s.weight for s in signals))


def verdict_for(score: int, settings: Settings, *, unknown: int = 0) -> Verdict:
    """
    The verdict the thresholds in settings give a score.

    `unknown` is the most the signals that could not be evaluated might have added: a score that is
    benign only because evidence is missing is `INSUFFICIENT_EVIDENCE`, never `BENIGN`.
    """
    if score >= settings.threshold_likely:
        return Verdict.REPLAY_LIKELY
    if score >= settings.threshold_suspicious:
        return Verdict.SUSPICIOUS
    if min(MAX_SCORE, score + unknown) >= settings.threshold_suspicious:
        return Verdict.INSUFFICIENT_EVIDENCE
    return Verdict.BENIGN


def _suspects(signals: tuple[Signal, ...]) -> tuple[str, ...]:
    """
    IPs implicated by signals, heaviest first.

    Signals already leave out the IPs their explanations cover, so an IP listed here is one that
    some signal still holds against, explained or not: a python client from a travel IP stays suspect.
    """
    weight: dict[str, int] = defaultdict(int)
    for signal in signals:
        for ip in signal.ips:
            weight[ip] += signal.weight
    return tuple(sorted(weight, key=lambda ip: (-weight[ip], ip)))


def assess(evidence: UserEvidence, settings: Settings) -> Assessment:
    """
    Score how likely a token replay is for one user, with every reason for and against.

    Rules and explanations that read a column absent from the user's tables are not run, and what
    the evidence could not give is listed (`Assessment.gaps`, see `enrichment.domain.coverage`).
    """
    view = picture(evidence)
    rules = tuned(settings.signal_weights) if settings.signal_weights else RULES
    absent = coverage.absent_columns(evidence)
    found_gaps = coverage.gaps(evidence, rules)
    explanations = explain(view, settings, frozenset(k for k, reads in READS.items() if reads & absent))
    signals = detect(view, Cover.of(explanations), rules, frozenset(r.id for r in rules if r.needs & absent))
    score = score_of(signals)
    return Assessment(
        score=score,
        verdict=verdict_for(score, settings, unknown=coverage.unknown_weight(found_gaps, rules)),
        signals=signals,
        explanations=explanations,
        suspect_ips=_suspects(signals),
        gaps=found_gaps,
    )
