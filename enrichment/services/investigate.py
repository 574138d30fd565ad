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
from enrichment.domain.model import Account, Assessment, UserEvidence
from enrichment.domain.scoring import assess
from enrichment.ports import QueryEngine
from enrichment.services.gather import gather_evidence, gather_scope


def investigate(
    engine: QueryEngine, accounts: Sequence[Account], at: datetime, settings: Settings
) -> tuple[tuple[UserEvidence, Assessment], ...]:
    """
    Every account's evidence (with its identity context and, when it has suspects, their scope) and
    its assessment. Raises what `gather_evidence` raises; a failed scope question is said in the scope.
    """
    first = gather_evidence(engine, accounts, at, settings)
    assessments = [assess(evidence, settings) for evidence in first]
    scoped = gather_scope(engine, first, [a.suspect_ips for a in assessments])
    return tuple(
        (evidence, assess(evidence, settings) if evidence.scope is not None and evidence.scope.records else assessment)
        for evidence, assessment in zip(scoped, assessments, strict=True)
    )
