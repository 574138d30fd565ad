"""
Investigate: gather the evidence, decide, follow the suspects, decide again.

The read side in four questions per incident time, whatever the number of accounts: evidence, baseline
and context side by side (`gather_evidence`), the assessment of each account, then one scope question
for the suspect sessions all of them implicate (`gather_scope`), and the final assessment, which also
weighs what those sessions did. Both the laptop triage and the Function App's enrichment run this.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from common.settings import Settings
from enrichment.domain.model import Account, Assessment, UserEvidence, Verdict
from enrichment.domain.scoring import assess
from enrichment.ports import QueryEngine
from enrichment.services.gather import gather_at_times, gather_evidence, gather_scope


def investigate(
    engine: QueryEngine, accounts: Sequence[Account], at: datetime, settings: Settings
) -> tuple[tuple[UserEvidence, Assessment], ...]:
    """
    Every account's evidence (with its identity context and, when it has suspects, their scope) and
    its assessment. Raises what `gather_evidence` raises; a failed scope question is said in the scope.
    """
    return _followed(engine, gather_evidence(engine, accounts, at, settings), settings)


def investigate_at_times(
    engine: QueryEngine, requests: Sequence[tuple[Account, datetime]], settings: Settings
) -> tuple[tuple[UserEvidence, Assessment], ...]:
    """
    `investigate` for several (account, incident time) pairs, in the order `gather_at_times` answers
    them: one scope question per distinct incident time, for the accounts asked about at that time.
    """
    gathered = gather_at_times(engine, requests, settings)
    by_time: dict[datetime, list[int]] = {}
    for index, evidence in enumerate(gathered):
        by_time.setdefault(evidence.at, []).append(index)
    answered: dict[int, tuple[UserEvidence, Assessment]] = {}
    for indexes in by_time.values():
        followed = _followed(engine, [gathered[i] for i in indexes], settings)
        answered.update(zip(indexes, followed, strict=True))
    return tuple(answered[i] for i in range(len(gathered)))


def _followed(
    engine: QueryEngine, first: Sequence[UserEvidence], settings: Settings
) -> tuple[tuple[UserEvidence, Assessment], ...]:
    """
    Assess, ask the scope of the suspects of one incident time, and assess again what gained activity.

    Only an account the sign-ins already make at least suspicious is followed: what a session did
    corroborates a suspicion, it never creates one. A single weak signal on the user's own carrier
    would otherwise turn the user's own inbox rule, made from that address, into the attacker's.
    """
    assessments = [assess(evidence, settings) for evidence in first]
    scoped = gather_scope(engine, first, [followed_addresses(a) for a in assessments])
    return tuple(
        (evidence, assess(evidence, settings) if evidence.scope is not None and evidence.scope.records else assessment)
        for evidence, assessment in zip(scoped, assessments, strict=True)
    )


def followed_addresses(assessment: Assessment) -> tuple[str, ...]:
    """
    The suspect addresses whose sessions the scope question follows: none for a benign account, since
    what a session did corroborates a suspicion and never creates one (see `_followed`).
    """
    return () if assessment.verdict is Verdict.BENIGN else assessment.suspect_ips
