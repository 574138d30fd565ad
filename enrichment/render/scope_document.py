"""
The triage document's `identity` and `activity` fields: who the account is, and what the suspect sessions did.

Plain JSON types, raw values: every string from a log row (rule names, folders, addresses, subjects,
request paths, user agents) is attacker-controlled and is escaped by whoever shows it. Field names are
a contract (`triage`, `result.json`, and containment reads `activity.sessions[*].inbox_rules` and
`forwarding`): extend, never rename.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from common.times import iso_z
from enrichment.domain.attribution import Act, SuspectSession, attribute
from enrichment.domain.identity import IdentityContext
from enrichment.domain.model import UserEvidence
from enrichment.domain.optional_tables import gaps

Document = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_z(moment)


def identity_document(identity: IdentityContext) -> Document:
    """The identity context with, per facet, the source that answered or why none could."""
    return {
        "display_name": identity.display_name,
        "department": identity.department,
        "job_title": identity.job_title,
        "manager": identity.manager,
        "privileged_roles": list(identity.privileged_roles),
        "risk_level": identity.risk_level,
        "risk_state": identity.risk_state,
        "risk_detections": [
            {"kind": d.kind, "level": d.level, "detected_at": _iso(d.detected_at), "ip": d.ip, "state": d.state}
            for d in identity.risk_detections
        ],
        "answers": [{"facet": a.facet.value, "source": a.source, "problem": a.problem} for a in identity.answers],
    }


def _act(act: Act) -> Document:
    r = act.record
    return {
        "kind": r.kind.value,
        "source": r.source,
        "operation": r.operation,
        "method": r.method,
        "ip": act.ip,
        "tie": act.tie.value,
        "count": r.count,
        "items": r.items,
        "bytes": r.bytes,
        "failures": r.failures,
        "first": _iso(r.first),
        "last": _iso(r.last),
        "client": r.client,
        "app_id": r.app_id,
        "token_id": r.token_id,
        "samples": list(r.samples),
    }


def _session(session: SuspectSession) -> Document:
    return {
        "session_id": session.session_id,
        "ips": list(session.ips),
        "first": _iso(session.first),
        "last": _iso(session.last),
        "acts": [_act(a) for a in session.acts],
        "inbox_rules": [
            {
                "operation": rule.operation,
                "name": rule.name,
                "identity": rule.identity,
                "mailbox": rule.mailbox,
                "time": _iso(rule.time),
                "ip": act.ip,
                "tie": act.tie.value,
                "move_to": rule.move_to,
                "delete": rule.delete,
                "forward_to": list(rule.forward_to),
                "mark_read": rule.mark_read,
                "stop_processing": rule.stop_processing,
                "conditions": dict(rule.conditions),
            }
            for rule, act in session.rules()
        ],
        "forwarding": [
            {
                "mailbox": f.mailbox,
                "address": f.address,
                "time": _iso(f.time),
                "ip": act.ip,
                "deliver_and_forward": f.deliver_and_forward,
            }
            for f, act in session.forwarding()
        ],
        "directory": [
            {"operation": c.operation, "time": _iso(c.time), "target": c.target, "target_id": c.target_id, "ip": act.ip}
            for c, act in session.changes()
        ],
    }


def activity_document(evidence: UserEvidence, suspects: Iterable[str]) -> Document:
    """
    What the suspect sessions did, per session, with the tables that could (or could not) see it.

    `asked` is false when there was no suspect to follow; `not_seen` names each missing source and
    what it hides, so an empty list of sessions never reads as "nothing happened" when it was unseen.
    """
    scope = evidence.scope
    if scope is None or not scope.asked:
        return {"asked": False, "coverage": [], "not_seen": [], "problems": [], "sessions": []}
    start, end = _iso(evidence.window.start) or "", _iso(evidence.window.end) or ""
    return {
        "asked": True,
        "coverage": [{"table": c.table, "collected": c.collected, "rows": c.rows, "problem": c.problem} for c in scope.coverage],
        "not_seen": list(gaps(scope.coverage, start, end)),
        "problems": list(scope.problems),
        "sessions": [_session(s) for s in attribute(evidence, suspects)],
    }
