"""
Who the suspect account is, before anyone clicks Approve: profile, privileged roles and Entra ID risk.

The approver decides better knowing that the account is the CFO's, holds Global Administrator, or was
already flagged high-risk by Entra ID Protection. The facts come from two places: Log Analytics tables the
workspace may already hold (`IdentityInfo`, `AADRiskyUsers`, `AADUserRiskEvents`), so the same KQL runs on
both engines, and Microsoft Graph where those tables are absent (the Function App only). Each facet records
which source answered it, and a facet nobody could answer is named with the reason, never left blank in
silence: "no risk known" and "risk could not be read" are different statements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class Facet(StrEnum):
    """The independently sourced parts of the identity context."""

    PROFILE = "profile"  # display name, department, job title, manager
    ROLES = "roles"  # privileged directory roles
    RISK = "risk"  # Entra ID Protection user risk and recent detections


@dataclass(frozen=True, slots=True)
class RiskDetection:
    """One Entra ID Protection risk detection of the user (`AADUserRiskEvents` / Graph `riskDetections`)."""

    kind: str  # riskEventType, e.g. "anomalousToken", "unfamiliarFeatures"
    level: str  # "low" | "medium" | "high" | "" when hidden or unknown
    detected_at: datetime
    ip: str = ""
    state: str = ""  # riskState: "atRisk", "confirmedCompromised", "remediated", "dismissed", ...


@dataclass(frozen=True, slots=True)
class Answer:
    """Which source answered a facet (a table name or "Microsoft Graph"), or why none could."""

    facet: Facet
    source: str = ""
    problem: str = ""

    @property
    def answered(self) -> bool:
        return bool(self.source) and not self.problem


@dataclass(frozen=True, slots=True)
class IdentityContext:
    """
    Read-only facts about one account. Empty strings and tuples mean "not known"; `answers` says, per
    facet, whether that is because the source holds nothing (answered, empty) or because no source could
    be read (a problem).
    """

    display_name: str = ""
    department: str = ""
    job_title: str = ""
    manager: str = ""
    privileged_roles: tuple[str, ...] = ()
    risk_level: str = ""  # Entra ID Protection riskLevel: "none" | "low" | "medium" | "high" | "hidden" | ""
    risk_state: str = ""  # riskState
    risk_detections: tuple[RiskDetection, ...] = ()
    answers: tuple[Answer, ...] = ()

    def answer(self, facet: Facet) -> Answer | None:
        return next((a for a in self.answers if a.facet is facet), None)

    @property
    def unanswered(self) -> tuple[Facet, ...]:
        """Facets no source answered (absent, or failed): what the next source should be asked."""
        return tuple(f for f in Facet if (a := self.answer(f)) is None or not a.answered)


_FIELDS: dict[Facet, tuple[str, ...]] = {
    Facet.PROFILE: ("display_name", "department", "job_title", "manager"),
    Facet.ROLES: ("privileged_roles",),
    Facet.RISK: ("risk_level", "risk_state", "risk_detections"),
}


def merged(primary: IdentityContext, fallback: IdentityContext) -> IdentityContext:
    """
    `primary` (the workspace's answer) with each facet it could not answer taken from `fallback` (Graph).

    A facet keeps the primary's values when the primary answered it, even with nothing: an answered empty
    risk means "no risk recorded", which a second source must not overwrite. A facet neither answered keeps
    both problems, so the reader learns why each source failed.
    """
    result = primary
    answers = {a.facet: a for a in primary.answers}
    for facet in primary.unanswered:
        theirs = fallback.answer(facet)
        if theirs is not None and theirs.answered:
            result = replace(result, **{name: getattr(fallback, name) for name in _FIELDS[facet]})
            answers[facet] = theirs
        elif theirs is not None:
            mine = answers.get(facet)
            problems = "; ".join(p for p in ((mine.problem if mine else ""), theirs.problem) if p)
            answers[facet] = Answer(facet, "", problems or "no source answered")
    return replace(result, answers=tuple(answers[f] for f in Facet if f in answers))
