"""
The triage document: the JSON contract of `python -m enrichment triage` and of `result.json`.

Pure rendering of evidence and assessment into plain JSON types (the text form for a person is
`enrichment.render.text`, the HTML report `enrichment.render.report`). Field names here are a
contract that outside checks call: extend, never rename.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from common.times import iso_z
from enrichment.domain import coverage
from enrichment.domain.evidence import IpActivity, SessionActivity, ip_timeline, sessions
from enrichment.domain.model import Assessment, Baseline, Table, TableBaseline, UserEvidence
from enrichment.render.scope_document import activity_document, identity_document

Document = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_z(moment)


def _timeline_entry(activity: IpActivity) -> Document:
    return {
        "ip": activity.ip,
        "first": _iso(activity.first),
        "last": _iso(activity.last),
        "count": {Table.INTERACTIVE.value: activity.interactive, Table.NON_INTERACTIVE.value: activity.non_interactive},
        "failures": activity.failures,
        "asn": activity.asn,
        "countries": list(activity.countries),
        "cities": list(activity.cities),
        "apps": list(activity.apps),
        "resources": list(activity.resources),
        "user_agents": list(activity.user_agents),
        "device_ids": list(activity.device_ids),
        "session_ids": list(activity.session_ids),
    }


def _session_entry(session: SessionActivity) -> Document:
    return {
        "session_id": session.session_id,
        "first": _iso(session.first),
        "last": _iso(session.last),
        "ips": list(session.ips),
        "asns": list(session.asns),
        "countries": list(session.countries),
        "tables": [t.value for t in session.tables],
        "interactive_ips": list(session.interactive_ips),
        "events": session.events,
    }


def _sorted(values: Iterable[object]) -> list[Any]:
    return sorted(values, key=str)


def _table_baseline(part: TableBaseline | None) -> Document | None:
    if part is None:
        return None
    return {
        "events": part.events,
        "days_active": part.days_active,
        "first": _iso(part.first),
        "last": _iso(part.last),
        "distinct_ips": part.distinct_ips,
        "ips": _sorted(part.ips),
        "asns": sorted(part.asns),
        "countries": _sorted(part.countries),
        "apps": _sorted(part.app_ids),
        "resources": _sorted(part.resources),
        "user_agents": _sorted(part.user_agents),
        "device_ids": _sorted(part.device_ids),
        "compliant_device_ids": _sorted(part.compliant_device_ids),
        "hours": sorted(part.hours),
        "auth_protocols": _sorted(part.auth_protocols),
    }


def _baseline(baseline: Baseline) -> Document:
    return {
        "window": {"start": _iso(baseline.window.start), "end": _iso(baseline.window.end)},
        "days": (baseline.window.end - baseline.window.start).days,
        Table.INTERACTIVE.value: _table_baseline(baseline.interactive),
        Table.NON_INTERACTIVE.value: _table_baseline(baseline.non_interactive),
        "daily": [
            {
                "day": _iso(d.day),
                "table": d.table.value,
                "events": d.events,
                "distinct_ips": d.distinct_ips,
                "distinct_apps": d.distinct_apps,
                "distinct_asns": d.distinct_asns,
            }
            for d in baseline.daily
        ],
    }


def coverage_fields(evidence: UserEvidence, assessment: Assessment | None) -> list[Document]:
    """
    Per table: read whole or not (and why not), the user's rows from it, the columns it lacks, and
    the signals and explanations its gap left unevaluated.
    """
    gaps = {g.table: g for g in (assessment.gaps if assessment is not None else coverage.gaps(evidence))}
    entries = []
    for table in evidence.coverage.tables:
        gap = gaps.get(table.table)
        entries.append(
            {
                "table": table.table,
                "read": table.read,
                "rows": table.rows,
                "missing_columns": list(table.missing_columns),
                "gap": gap.what if gap is not None else None,
                "signals_not_evaluated": list(gap.signals) if gap is not None else [],
                "explanations_not_evaluated": [k.value for k in gap.explanations] if gap is not None else [],
            }
        )
    return entries


def assessment_fields(assessment: Assessment) -> Document:
    return {
        "score": assessment.score,
        "verdict": assessment.verdict.value,
        "signals": [{"id": s.id, "weight": s.weight, "detail": s.detail, "ips": list(s.ips)} for s in assessment.signals],
        "explanations": [{"ip": e.ip, "kind": e.kind.value, "detail": e.detail} for e in assessment.explanations],
        "suspect_ips": list(assessment.suspect_ips),
    }


def triage_document(evidence: UserEvidence, assessment: Assessment | None) -> Document:
    """The per-user document; without an assessment it carries the evidence alone."""
    document: Document = {
        "user": evidence.account.upn or evidence.account.object_id,
        "user_id": evidence.account.object_id or None,
        "at": _iso(evidence.at),
        "window": {"start": _iso(evidence.window.start), "end": _iso(evidence.window.end)},
        "truncated": evidence.truncated,
        "warnings": list(evidence.warnings),
        "coverage": coverage_fields(evidence, assessment),
    }
    if assessment is not None:
        document.update(assessment_fields(assessment))
    document.update(
        {
            "signins": sum(s.count for s in evidence.signins),
            "timeline": [_timeline_entry(a) for a in ip_timeline(evidence.signins)],
            "sessions": [_session_entry(s) for s in sessions(evidence.signins)],
            "baseline": _baseline(evidence.baseline),
            "security_events": [
                {
                    "time": _iso(e.time),
                    "operation": e.operation,
                    "result": e.result,
                    "actor": e.actor,
                    "actor_ip": e.actor_ip,
                    "target": e.target,
                }
                for e in evidence.security_events
            ],
            "travel": [{"country": t.country, "start": _iso(t.start), "end": _iso(t.end)} for t in evidence.travel],
            "identity": identity_document(evidence.identity),
            "activity": activity_document(evidence, assessment.suspect_ips if assessment is not None else ()),
        }
    )
    return document
