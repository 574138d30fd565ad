"""
The identity context and the footholds audits as (label, value) facts for the brief's "Who" slot
(`enrichment.render.story.Identity.facts`), which the comment, the report and the card render.

Plain text only: every value may carry attacker-chosen text (a device or method name), and each
renderer escapes it its own way. A facet nobody could answer is said with its reason, never left out.
"""

from __future__ import annotations

from common.times import utc_text
from enrichment.domain.identity import Answer, Facet, IdentityContext
from enrichment.render.story import Identity
from playbooks.domain.footholds import AccountFacts

_FACET_LABELS = {Facet.PROFILE: "Profile", Facet.ROLES: "Directory roles", Facet.RISK: "Entra ID risk"}


def _source(answer: Answer | None) -> str:
    return f" ({answer.source})" if answer is not None and answer.source else ""


def _risk(context: IdentityContext) -> str:
    level = context.risk_level or "none"
    state = f", {context.risk_state}" if context.risk_state and context.risk_state != "none" else ""
    if not context.risk_detections:
        return f"{level}{state}; no recent detection"
    shown = "; ".join(
        f"{d.kind} {d.level or 'hidden'} at {utc_text(d.detected_at)}" + (f" from {d.ip}" if d.ip else "")
        for d in context.risk_detections[:3]
    )
    more = f"; and {len(context.risk_detections) - 3} more" if len(context.risk_detections) > 3 else ""
    return f"{level}{state}; detections: {shown}{more}"


def identity_facts(facts: AccountFacts) -> tuple[tuple[str, str], ...]:
    """Role and manager, directory roles, Entra ID risk, MFA methods and devices: each answered, or why not."""
    context = facts.identity
    out: list[tuple[str, str]] = []
    for facet in Facet:
        answer = context.answer(facet)
        if answer is None or not answer.answered:
            problem = answer.problem if answer is not None else "not asked"
            out.append((_FACET_LABELS[facet], f"could not be read: {problem}"))
            continue
        if facet is Facet.PROFILE:
            job = ", ".join(p for p in (context.job_title, context.department) if p)
            if job:
                out.append(("Job", f"{job}{_source(answer)}"))
            if context.manager:
                out.append(("Manager", f"{context.manager}{_source(answer)}"))
        elif facet is Facet.ROLES:
            roles = ", ".join(context.privileged_roles) or "none privileged"
            out.append(("Directory roles", f"{roles}{_source(answer)}"))
        else:
            out.append(("Entra ID risk", f"{_risk(context)}{_source(answer)}"))
    if facts.mfa is not None:
        out.append(("MFA methods", facts.mfa.summary()))
    if facts.devices is not None:
        out.append(("Devices", facts.devices.summary()))
    out += [("Not read", problem) for problem in facts.problems]
    return tuple(out)


def identity_of(facts: AccountFacts, display_name: str = "") -> Identity:
    """The brief's Identity: Graph's or the workspace's display name (else the incident's), and the facts."""
    return Identity(display_name=facts.identity.display_name or display_name, facts=identity_facts(facts))
