"""The triage document: the JSON contract and the text a person reads first."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from enrichment.domain.model import (
    Account,
    Assessment,
    Baseline,
    Coverage,
    Explanation,
    ExplanationKind,
    Gap,
    Signal,
    SignIn,
    Table,
    TableBaseline,
    TableCoverage,
    TimeWindow,
    UserEvidence,
    Verdict,
)
from enrichment.render.story import brief
from enrichment.render.text import text_report
from enrichment.render.triage import triage_document

AT = datetime(2026, 6, 15, 12, tzinfo=UTC)
WINDOW = TimeWindow.around(AT, before=timedelta(hours=24), after=timedelta(hours=6))


def _signin(ip: str, table: Table, minutes: int, *, asn: int, session: str, count: int = 1) -> SignIn:
    first = AT - timedelta(minutes=minutes)
    return SignIn(
        user="a@contoso.com",
        user_id="",
        table=table,
        first=first,
        last=first + timedelta(minutes=1),
        count=count,
        ip=ip,
        asn=asn,
        session_id=session,
        country="FR",
    )


EVIDENCE = UserEvidence(
    account=Account("a@contoso.com"),
    at=AT,
    window=WINDOW,
    signins=(
        _signin("192.0.2.1", Table.INTERACTIVE, 120, asn=7922, session="s1"),
        _signin("192.0.2.1", Table.NON_INTERACTIVE, 100, asn=7922, session="s1", count=30),
        _signin("203.0.113.9", Table.NON_INTERACTIVE, 60, asn=136787, session="s1", count=12),
    ),
    baseline=Baseline(
        window=TimeWindow(WINDOW.start - timedelta(days=14), WINDOW.start),
        interactive=TableBaseline(
            Table.INTERACTIVE, events=40, days_active=10, first=None, last=None, distinct_ips=2, asns=frozenset({7922})
        ),
    ),
    truncated=False,
    warnings=("partial result: E_QUERY_RESULT_SET_TOO_LARGE",),
)

ASSESSMENT = Assessment(
    score=85,
    verdict=Verdict.REPLAY_LIKELY,
    signals=(
        Signal(
            "session_ip_drift", 30, "Session s1 was used from 192.0.2.1 (AS7922) and 203.0.113.9 (AS136787)", ("203.0.113.9",)
        ),
        Signal("noninteractive_only_network", 25, "203.0.113.9 only ever refreshed tokens", ("203.0.113.9",)),
        Signal("odd_hours", 5, "Active at 03:00, an hour the user never is", ()),
        Signal("new_app", 10, "Azure CLI is new for the user", ("203.0.113.9",)),
    ),
    explanations=(Explanation("192.0.2.1", ExplanationKind.DEVICE_CONTINUITY, "the user's own compliant device"),),
    suspect_ips=("203.0.113.9",),
)


class TestDocument:
    def test_contract_fields_are_present_and_json(self) -> None:
        """Every field the CLI contract names is there, and the document is plain JSON."""
        document = json.loads(json.dumps(triage_document(EVIDENCE, ASSESSMENT)))

        assert {
            "user",
            "window",
            "timeline",
            "sessions",
            "baseline",
            "truncated",
            "score",
            "verdict",
            "signals",
            "explanations",
            "suspect_ips",
        } <= set(document)
        assert (document["user"], document["verdict"], document["score"], document["suspect_ips"]) == (
            "a@contoso.com",
            "replay_likely",
            85,
            ["203.0.113.9"],
        )
        assert document["explanations"][0] == {
            "ip": "192.0.2.1",
            "kind": "device_continuity",
            "detail": "the user's own compliant device",
        }

    def test_timeline_counts_each_table(self) -> None:
        """The per-IP timeline counts interactive and non-interactive sign-ins separately, weighted by group size."""
        timeline = {e["ip"]: e for e in triage_document(EVIDENCE, ASSESSMENT)["timeline"]}

        assert timeline["192.0.2.1"]["count"] == {"SigninLogs": 1, "AADNonInteractiveUserSignInLogs": 30}
        assert (timeline["203.0.113.9"]["asn"], timeline["203.0.113.9"]["session_ids"]) == (136787, ["s1"])

    def test_session_lists_every_ip(self) -> None:
        """A session used from two IPs shows both, and which one signed in interactively."""
        (session,) = triage_document(EVIDENCE, ASSESSMENT)["sessions"]

        assert (session["ips"], session["interactive_ips"], session["events"]) == (
            ["192.0.2.1", "203.0.113.9"],
            ["192.0.2.1"],
            43,
        )

    def test_without_assessment_only_evidence(self) -> None:
        """Before scoring, the document carries the evidence and no verdict."""
        document = triage_document(EVIDENCE, None)

        assert "verdict" not in document
        assert document["signins"] == 43


GAP = Gap(
    "AADNonInteractiveUserSignInLogs",
    "column(s) DeviceDetail absent",
    ("session_left_device", "prt_unknown_device"),
    (ExplanationKind.MICROSOFT_NETWORK,),
)
COVERED = replace(
    EVIDENCE,
    coverage=Coverage(
        (
            TableCoverage("SigninLogs", read=True, rows=1),
            TableCoverage("AADNonInteractiveUserSignInLogs", read=True, rows=42, missing_columns=("DeviceDetail",)),
            TableCoverage("AuditLogs", read=False, problem="no rows between two times"),
        )
    ),
)


class TestCoverage:
    def test_each_table_says_what_it_gave_and_what_it_left_unevaluated(self) -> None:
        """`coverage`: per table read or not, the user's rows, absent columns, and the signals and explanations not evaluated."""
        assessment = replace(ASSESSMENT, verdict=Verdict.INSUFFICIENT_EVIDENCE, score=0, signals=(), gaps=(GAP,))
        document = json.loads(json.dumps(triage_document(COVERED, assessment)))
        assert document["verdict"] == "insufficient_evidence"
        assert document["coverage"][1] == {
            "table": "AADNonInteractiveUserSignInLogs",
            "read": True,
            "rows": 42,
            "missing_columns": ["DeviceDetail"],
            "gap": "column(s) DeviceDetail absent",
            "signals_not_evaluated": ["session_left_device", "prt_unknown_device"],
            "explanations_not_evaluated": ["microsoft_network"],
        }
        assert document["coverage"][0]["gap"] is None

    def test_the_text_says_what_was_missing(self) -> None:
        """`--format text` leads with Insufficient evidence and lists each gap and what it left unevaluated."""
        assessment = replace(ASSESSMENT, verdict=Verdict.INSUFFICIENT_EVIDENCE, score=0, signals=(), suspect_ips=(), gaps=(GAP,))
        lines = text_report(COVERED, assessment, brief(COVERED, assessment)).splitlines()
        assert lines[0] == "INSUFFICIENT EVIDENCE: SCORE 0/100 for a@contoso.com"
        assert (
            "MISSING EVIDENCE: AADNonInteractiveUserSignInLogs: column(s) DeviceDetail absent; "
            "not evaluated: session_left_device, prt_unknown_device, microsoft_network"
        ) in lines
        assert any("could not be read whole" in line or "evidence is incomplete" in line for line in lines)
