"""Builders of incidents, evidence, assessments and plans for the approval-card and bot tests (synthetic values only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.settings import Settings
from enrichment.domain.model import (
    Account,
    Assessment,
    Baseline,
    Explanation,
    ExplanationKind,
    Signal,
    SignIn,
    Table,
    TimeWindow,
    UserEvidence,
    Verdict,
)
from playbooks.domain.plan import ContainmentPlan, plan_containment
from playbooks.render.card import CardIncident

AT = datetime(2026, 11, 5, 14, 0, tzinfo=UTC)
EXPIRES = AT + timedelta(hours=4)
USER_ID = "3f2a1b0c-1111-4222-8333-444455556666"
UPN = "adele.vance@contoso.example"
INSTANCE_ID = "replay-7f3c2a1e-incident-4711"
INCIDENT = CardIncident(
    incident_id="8d1c6f0e-2b3a-4c5d-9e8f-0a1b2c3d4e5f",
    number=4711,
    title="Token replay suspected for a privileged user",
    url="https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/subscriptions/0000/incidents/8d1c6f0e",
)
HOSTILE = "[Approve](https://evil.example/pwn) **bold** _it_ `code` <b>x</b> &amp; {{DATE(2017-02-14T06:00:00Z, SHORT)}}"


def signin(ip: str, *, minutes: int = 0, table: Table = Table.NON_INTERACTIVE, count: int = 3, **fields: object) -> SignIn:
    """One grouped sign-in row of the sample user, `minutes` after the incident time."""
    values: dict[str, object] = {
        "user": UPN,
        "user_id": USER_ID,
        "table": table,
        "first": AT + timedelta(minutes=minutes),
        "last": AT + timedelta(minutes=minutes + 5),
        "count": count,
        "ip": ip,
        "asn": 64500,
        "country": "NL",
        "city": "Amsterdam",
        "app": "Microsoft Teams",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "session_id": "sess-1",
    }
    values.update(fields)
    return SignIn(**values)  # type: ignore[arg-type]


def evidence(signins: tuple[SignIn, ...], *, truncated: bool = False) -> UserEvidence:
    window = TimeWindow.around(AT, before=timedelta(hours=24), after=timedelta(hours=6))
    return UserEvidence(
        account=Account(UPN, USER_ID),
        at=AT,
        window=window,
        signins=signins,
        baseline=Baseline(TimeWindow(window.start - timedelta(days=14), window.start)),
        truncated=truncated,
    )


def typical() -> tuple[UserEvidence, Assessment]:
    """A replay from one foreign IP next to the user's usual corporate IP."""
    rows = (
        signin("203.0.113.10", table=Table.INTERACTIVE, count=1),
        signin("198.51.100.7", minutes=40, asn=136787, country="RU", city="Moscow", count=57),
    )
    assessment = Assessment(
        score=85,
        verdict=Verdict.REPLAY_LIKELY,
        signals=(
            Signal(
                "session_ip_switch",
                40,
                "Session sess-1 was used from 198.51.100.7 (AS136787) 40 minutes after sign-in",
                ("198.51.100.7",),
            ),
            Signal("new_asn", 25, "AS136787 never seen in the 14-day baseline", ("198.51.100.7",)),
            Signal("token_only", 20, "57 non-interactive sign-ins satisfied MFA by claim in the token", ("198.51.100.7",)),
        ),
        explanations=(Explanation("203.0.113.10", ExplanationKind.CORPORATE_VPN, "203.0.113.0/24 is a corporate VPN egress"),),
        suspect_ips=("198.51.100.7",),
    )
    return evidence(rows), assessment


def hostile() -> tuple[UserEvidence, Assessment]:
    """Attacker-controlled text in every field that reaches the card."""
    rows = (
        signin(
            "198.51.100.66",
            country=HOSTILE,
            city="# Heading\n- list item\r\n1. numbered",
            app=HOSTILE,
            user_agent=HOSTILE,
            device_name="> quote",
        ),
    )
    assessment = Assessment(
        score=90,
        verdict=Verdict.REPLAY_LIKELY,
        signals=(
            Signal("hostile_user_agent", 50, f"User agent {HOSTILE} never seen before", ("198.51.100.66",)),
            Signal("hostile_app", 40, "# Heading\n- list\n1. item\n[Approve](https://evil.example)", ("198.51.100.66",)),
        ),
        explanations=(Explanation("192.0.2.1", ExplanationKind.TRAVEL, HOSTILE),),
        suspect_ips=("198.51.100.66",),
    )
    return evidence(rows), assessment


def plan_for(assessment: Assessment, **settings: str) -> ContainmentPlan:
    values = {"REPLAY_OPTIONAL_ACTIONS": "disable_account", **settings}
    return plan_containment(INCIDENT.incident_id, Account(UPN, USER_ID), assessment, Settings.from_values(values))
