"""
The Teams approval card: pure functions from the assessment and the containment plan to Adaptive Card JSON.

Everything shown that came from a sign-in row, the incident or Graph is attacker-influenced (a user
agent, an app or city name, an incident title naming entities), and Teams renders TextBlock and
FactSet text as Markdown: every such value goes in a TextRun of a RichTextBlock instead, which is
never Markdown (see "Elements"). `escape_markdown` remains for callers that must put a value in
Markdown text. Teams drops a card
over 28 KB, so the builders cap every list and value and shrink the card until it fits, whatever the
incident. The buttons' `data` is the contract with the bot (`ActionData`): it names the waiting
orchestration and binds the click to the plan's digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.errors import InputError
from common.identifiers import is_guid
from common.text import safe_text
from common.times import iso_z, utc_text
from common.urls import https_url
from enrichment.domain.evidence import IpActivity, ip_timeline
from enrichment.domain.model import Assessment, Explanation, Signal, UserEvidence
from enrichment.render.asn_names import ATTRIBUTION, asn_label
from enrichment.render.story import Brief, Context, brief, explanation_phrases, explanation_text, name_asns
from playbooks.domain.plan import ActionKind, ActionResult, ActionStatus, ContainmentPlan, Decision, plan_remarks

Card = dict[str, Any]

#: Universal Actions (Action.Execute) need schema 1.5.
SCHEMA_VERSION = "1.5"
#: Teams does not send a card bigger than this ("The card is not sent if its size exceeds 28 KB").
TEAMS_CARD_LIMIT = 28 * 1024
#: What the builders aim under, leaving room for the activity envelope around the attachment.
CARD_BUDGET = 26 * 1024

APPROVE = "approve"
REJECT = "reject"
VERBS = (APPROVE, REJECT)

#: Marks button data as ours, versioned, so the bot can tell our clicks from anything else.
DATA_MARKER = "replay_approval"
DATA_VERSION = 1

_ACTION_TITLES = {
    ActionKind.REVOKE_SESSIONS: "Revoke sessions",
    ActionKind.AUDIT_MFA_METHODS: "Audit MFA methods",
    ActionKind.CONFIRM_COMPROMISED: "Confirm compromised",
    ActionKind.DISABLE_ACCOUNT: "Disable account",
    ActionKind.DELETE_FLAGGED_METHODS: "Delete flagged MFA methods",
    ActionKind.REQUIRE_PASSWORD_CHANGE: "Require a password change",
    ActionKind.DELETE_ATTACKER_DEVICES: "Delete the attacker's devices",
    ActionKind.REMOVE_INBOX_RULES: "Remove the attacker's inbox rules",
}
_STATUS_MARKS = {ActionStatus.SUCCEEDED: "✔", ActionStatus.FAILED: "✖", ActionStatus.SKIPPED: "–"}


# --------------------------------------------------------------------------------------------------
# Escaping


# Line breaks of every kind become spaces: a value must never start a Markdown block of its own.
_BREAKS = re.compile(r"\r\n|[\r\n\t\v\f\x85\u2028\u2029]")
# CommonMark punctuation that starts or ends inline syntax (emphasis, code, links, autolinks, HTML,
# entities, strikethrough, tables) and the braces of the Adaptive Cards {{DATE()}} / {{TIME()}} functions.
_INLINE = re.compile(r"([\\`*_\[\]<>#|~{}&])")
# Block syntax that only matters at the start of a line: list bullets, ordered-list numbers, quotes.
_LEADING_BULLET = re.compile(r"^([-+])")
_LEADING_NUMBER = re.compile(r"^(\d{1,9})([.)])")


def clean_text(value: object, limit: int | None = None) -> str:
    """One line of visible text: breaks to spaces, hidden characters dropped (`safe_text`), cut to `limit` (at a word boundary when one is near) with an ellipsis."""
    text = safe_text(_BREAKS.sub(" ", str(value)))
    text = re.sub(r" {2,}", " ", text).strip()
    if limit is not None and len(text) > limit:
        # Cut at a word boundary when one is near, so no word is shown cut in half.
        cut = text[: max(limit - 1, 0)]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"
    return text


def escape_markdown(value: object, limit: int | None = None) -> str:
    """
    `value` as literal text inside Teams Markdown (TextBlock, FactSet).

    CommonMark backslash escapes neutralise inline syntax (`[x](url)` links, `**`, `_`, backticks,
    `<`, `>`, entities); the value is flattened to one line and its leading `-`, `+`, `1.` or `#` is
    escaped so it cannot open a list, quote or heading. Cutting happens before escaping so an escape
    is never split.
    """
    text = clean_text(value, limit)
    text = _INLINE.sub(r"\\\1", text)
    text = _LEADING_BULLET.sub(r"\\\1", text)
    return _LEADING_NUMBER.sub(r"\1\\\2", text)


def card_size(card: Mapping[str, Any]) -> int:
    """Bytes on the wire, measured the way the connector client serialises (ASCII JSON, escaped non-ASCII)."""
    return len(json.dumps(card, separators=(",", ":"), ensure_ascii=True).encode("ascii"))


# --------------------------------------------------------------------------------------------------
# The incident and the button data


@dataclass(frozen=True, slots=True)
class CardIncident:
    """What the card says about the incident; `incident_id` is the id the plan is bound to."""

    incident_id: str
    number: int | None = None
    title: str = ""
    url: str = ""


_DIGEST = re.compile(r"^[0-9a-f]{32}$")
# Durable Functions instance ids may not contain / \ # ? or control characters; ours are shorter still.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,99}$")
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,199}$")
_UPN_LIMIT = 256


@dataclass(frozen=True, slots=True)
class ActionData:
    """
    What each button carries back to the bot: which orchestration waits, for which plan, on which incident.

    The header fields (number, URL, UPN) let the bot answer with a short card without looking
    anything up, so the click is acknowledged within Teams' few seconds.
    """

    incident_id: str
    plan_digest: str
    instance_id: str
    user_object_id: str
    user_upn: str
    expires_at: datetime
    incident_number: int | None = None
    incident_url: str = ""

    def to_data(self, verb: str) -> dict[str, Any]:
        """The JSON object put on a button; `verb` is repeated so the Action.Submit fallback carries it too."""
        return {
            DATA_MARKER: DATA_VERSION,
            "verb": verb,
            "incident_id": self.incident_id,
            "incident_number": self.incident_number,
            "incident_url": self.incident_url,
            "user_object_id": self.user_object_id,
            "user_upn": self.user_upn,
            "plan_digest": self.plan_digest,
            "instance_id": self.instance_id,
            "expires_at": iso_z(self.expires_at),
        }

    @classmethod
    def for_plan(cls, incident: CardIncident, plan: ContainmentPlan, *, instance_id: str, expires_at: datetime) -> ActionData:
        """The data for a plan's card; refuses values the bot would later refuse, so a bad card is never posted."""
        data = cls(
            incident_id=plan.incident_id,
            plan_digest=plan.digest,
            instance_id=instance_id,
            user_object_id=plan.account.object_id.lower(),
            user_upn=plan.account.upn,
            expires_at=expires_at,
            incident_number=incident.number,
            incident_url=https_url(incident.url),
        )
        parse_action_data(data.to_data(APPROVE))
        return data


def is_approval_data(value: object) -> bool:
    """Whether a click's data claims to be ours (anything else is not an approval click at all)."""
    return isinstance(value, Mapping) and DATA_MARKER in value


def _string(data: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        problems.append(f"{key}: missing or not a string")
        return ""
    return value


def parse_action_data(data: Mapping[str, Any]) -> tuple[str, ActionData]:
    """
    The verb and the data of one click, or `InputError` naming every bad field.

    Teams hands the data back as the card had it, but a message with a `value` can be crafted, so
    every field is checked for type and form before anything acts on it.
    """
    problems: list[str] = []
    if data.get(DATA_MARKER) != DATA_VERSION:
        problems.append(f"{DATA_MARKER}: not an approval card of version {DATA_VERSION}")
    verb = _string(data, "verb", problems)
    if isinstance(data.get("verb"), str) and verb not in VERBS:
        problems.append(f"verb: must be one of {', '.join(VERBS)}")
    incident_id = _string(data, "incident_id", problems)
    if isinstance(data.get("incident_id"), str) and not _INCIDENT_ID.match(incident_id):
        problems.append("incident_id: not an incident id")
    digest = _string(data, "plan_digest", problems)
    if isinstance(data.get("plan_digest"), str) and not _DIGEST.match(digest):
        problems.append("plan_digest: not a plan digest")
    instance_id = _string(data, "instance_id", problems)
    if isinstance(data.get("instance_id"), str) and not _INSTANCE_ID.match(instance_id):
        problems.append("instance_id: not an orchestration instance id")
    object_id = _string(data, "user_object_id", problems)
    if object_id and not is_guid(object_id):
        problems.append("user_object_id: not a GUID")
    upn = _string(data, "user_upn", problems)
    if len(upn) > _UPN_LIMIT:
        problems.append("user_upn: too long")
    if "user_object_id" in data and "user_upn" in data and not object_id and not upn:
        problems.append("user_object_id/user_upn: one is required")
    url = data.get("incident_url", "")
    if not isinstance(url, str) or (url and https_url(url) != url):
        problems.append("incident_url: not an https URL")
    number = data.get("incident_number")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool) or number < 0):
        problems.append("incident_number: not a non-negative integer")
    expires_text = _string(data, "expires_at", problems)
    expires_at: datetime | None = None
    if isinstance(data.get("expires_at"), str) and not expires_text:
        problems.append("expires_at: empty")
    if expires_text:
        try:
            expires_at = datetime.fromisoformat(expires_text)
        except ValueError:
            problems.append("expires_at: not an ISO 8601 time")
        else:
            if expires_at.tzinfo is None:
                problems.append("expires_at: has no time zone")
    if problems or expires_at is None:
        raise InputError("approval card data refused: " + "; ".join(problems))
    return verb, ActionData(
        incident_id=incident_id,
        plan_digest=digest,
        instance_id=instance_id,
        user_object_id=object_id.lower(),
        user_upn=upn,
        expires_at=expires_at,
        incident_number=number,
        incident_url=str(url),
    )


# --------------------------------------------------------------------------------------------------
# Elements
#
# Untrusted text (anything from a sign-in row, the incident, Graph or an AS registry) only ever goes
# into a TextRun of a RichTextBlock: TextRuns are not Markdown, so nothing needs a backslash that some
# Teams clients would show literally. It is still flattened to one visible line (`clean_text`) and a
# "{{" in it is broken with a zero-width space, because the renderers expand {{DATE()}} / {{TIME()}}
# in every text element, runs included. Our own words go in TextBlocks.


def _plain(value: object, limit: int | None = None) -> str:
    """Untrusted text for a TextRun: one visible line, cut to `limit`, with no {{DATE()}} / {{TIME()}} call left."""
    return clean_text(value, limit).replace("{{", "{\u200b{")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: str | dict[str, Any], **style: Any) -> dict[str, Any]:
    """A RichTextBlock; plain strings are runs of text that is already `_plain` or our own."""
    return {"type": "RichTextBlock", "inlines": [_run(r) if isinstance(r, str) else r for r in runs], **style}


def _text(text: str, **style: Any) -> dict[str, Any]:
    """A TextBlock for OUR OWN words only (Teams reads TextBlock text as Markdown)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _heading(text: str) -> dict[str, Any]:
    return _text(text, weight="Bolder", spacing="Medium")


def _fact(title: str, value: str, **style: Any) -> dict[str, Any]:
    """'Title: value' as one rich line: our title in bold, the (untrusted, already plain) value as a run."""
    return _rich(_run(f"{title}: ", weight="Bolder"), value, spacing="Small", **style)


def _container(items: list[dict[str, Any]], style: str = "default") -> dict[str, Any]:
    return {"type": "Container", "style": style, "items": items}


def _local_time(moment: datetime) -> str:
    """The moment in the VIEWER's time zone (Adaptive Cards' DATE()/TIME() functions), with UTC beside it."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{DATE({stamp}, SHORT)}}}} {{{{TIME({stamp})}}}} your time ({utc_text(moment)})"


def _incident_line(number: int | None, title: str, limit: int) -> dict[str, Any]:
    label = f"Incident {number}" if number is not None else "Incident"
    if not clean_text(title):
        return _rich(label)
    return _rich(f"{label}: ", _plain(title, limit))


def _sentence(text: str, limit: int) -> str:
    """A reason as the start of a sentence (reasons are written lower-case, to follow a colon)."""
    plain = _plain(text, limit)
    return plain[:1].upper() + plain[1:]


def _who(decision: Decision, name: str = "") -> str:
    """The decider as people know them: UPN, else display name, else object id (plain text)."""
    return _plain(decision.decided_by_upn or clean_text(name) or decision.decided_by_object_id or "unknown", 120)


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]], summary: str) -> Card:
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": SCHEMA_VERSION,
        "fallbackText": summary,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _buttons(data: ActionData) -> list[dict[str, Any]]:
    """
    Approve and Reject as Action.Execute (Universal Actions), each falling back to Action.Submit.

    Both neutral (no positive/destructive colour to steer the click); the title of the one that
    changes the tenant says what it does.
    """
    titles = ((APPROVE, "Approve: revoke sessions"), (REJECT, "Reject: change nothing"))
    buttons = []
    for verb, title in titles:
        payload = data.to_data(verb)
        buttons.append(
            {
                "type": "Action.Execute",
                "title": title,
                "verb": verb,
                "data": payload,
                "fallback": {"type": "Action.Submit", "title": title, "data": payload},
            }
        )
    return buttons


def _open_incident(url: str) -> list[dict[str, Any]]:
    safe = https_url(url)
    return [{"type": "Action.OpenUrl", "title": "Open incident", "url": safe}] if safe else []


# --------------------------------------------------------------------------------------------------
# The full card


@dataclass(frozen=True, slots=True)
class _Limits:
    signals: int
    ips: int
    explained: int
    text: int
    evidence: bool = True


# Each step shows less; the last drops the evidence sections and keeps what a decision needs.
_STEPS = (
    _Limits(signals=6, ips=8, explained=6, text=300),
    _Limits(signals=4, ips=5, explained=4, text=200),
    _Limits(signals=3, ips=3, explained=2, text=120),
    _Limits(signals=2, ips=2, explained=1, text=80),
    _Limits(signals=0, ips=0, explained=0, text=60, evidence=False),
)


def _more(count: int, noun: str) -> list[dict[str, Any]]:
    if count <= 0:
        return []
    return [_text(f"… and {count} more {noun} (see the incident comment)", isSubtle=True, spacing="None")]


def _signal_lines(signals: Sequence[Signal], limits: _Limits) -> list[dict[str, Any]]:
    if not signals:
        return [_text("No replay signal in the window.")]
    shown = sorted(signals, key=lambda s: -s.weight)[: limits.signals]
    lines = [_rich("• ", _plain(name_asns(s.detail), limits.text), f" (+{s.weight})", spacing="Small") for s in shown]
    return lines + _more(len(signals) - len(shown), "signals")


def _ip_line(ip: str, activity: IpActivity | None, explanations: Sequence[Explanation], limits: _Limits) -> str:
    parts = [_plain(ip, 60)]
    if activity is not None:
        where = ", ".join([*activity.cities[:1], *activity.countries[:2]])
        if where:
            parts.append(_plain(where, 60))
        if activity.asn is not None:
            parts.append(_plain(asn_label(activity.asn), 80))
        parts.append(f"{activity.total} sign-ins")
    if explanations:
        kinds = ", ".join(dict.fromkeys(explanation_text(e.kind.value) for e in explanations))
        parts.append(f"partly explained ({_plain(kinds, limits.text)}), a signal still holds")
    else:
        parts.append("no benign explanation")
    return " · ".join(parts)


_EXPLAINED = "explained"


def _ip_lines(evidence: UserEvidence, assessment: Assessment, limits: _Limits) -> list[dict[str, Any]]:
    activities = {a.ip: a for a in ip_timeline(evidence.signins)}
    by_ip: dict[str, list[Explanation]] = {}
    for explanation in assessment.explanations:
        by_ip.setdefault(explanation.ip, []).append(explanation)
    lines: list[dict[str, Any]] = []
    suspects = assessment.suspect_ips
    for ip in suspects[: limits.ips]:
        lines.append(_rich("• ", _ip_line(ip, activities.get(ip), by_ip.get(ip, []), limits), spacing="Small"))
    if not suspects:
        lines.append(_text("No suspect address."))
    lines += _more(len(suspects) - limits.ips, "suspect addresses")
    explained = [ip for ip in by_ip if ip not in suspects]
    if explained and limits.explained:
        hidden = [
            _rich(
                _run("• " + _plain(ip, 60), weight="Bolder"),
                ": " + _plain(explanation_phrases(ip, by_ip[ip]), limits.text),
                spacing="Small",
            )
            for ip in explained[: limits.explained]
        ]
        hidden += _more(len(explained) - limits.explained, "explained addresses")
        lines.append(
            {
                "type": "ActionSet",
                "actions": [
                    {
                        "type": "Action.ToggleVisibility",
                        "title": f"Show the {len(explained)} explained address(es)",
                        "targetElements": [_EXPLAINED],
                    }
                ],
            }
        )
        lines.append({**_container(hidden), "id": _EXPLAINED, "isVisible": False})
    return lines


def _action_lines(plan: ContainmentPlan) -> list[dict[str, Any]]:
    lines = []
    for action in plan.actions:
        mark = "Changes the tenant" if action.destructive else "Read-only"
        lines.append(_rich(_run(f"• {mark}: ", weight="Bolder"), _plain(action.description, 300), spacing="Small"))
    if not plan.actions:
        lines.append(_rich("Nothing is proposed: ", _plain(plan.reason, 300)))
    lines += [_rich(_run(_plain(remark, 600), isSubtle=True), spacing="Small") for remark in plan_remarks(plan)]
    return lines


def _result_lines(results: Sequence[ActionResult], limit: int) -> list[dict[str, Any]]:
    lines = []
    for result in results:
        color = {ActionStatus.SUCCEEDED: "Good", ActionStatus.FAILED: "Attention"}.get(result.status, "Default")
        runs: list[str | dict[str, Any]] = [
            _run(f"{_STATUS_MARKS[result.status]} {_ACTION_TITLES[result.kind]}: {result.status.value}", color=color)
        ]
        if clean_text(result.detail):
            runs.append(_run(f". {_plain(result.detail, limit)}", color=color))
        if clean_text(result.request_id):
            runs.append(_run(f" (request id {_plain(result.request_id, 80)})", color=color))
        lines.append(_rich(*runs, spacing="Small"))
    return lines


def _state_section(
    decision: Decision | None, results: Sequence[ActionResult] | None, expired: bool, decided_by_name: str, limit: int
) -> dict[str, Any] | None:
    """What happened to the request, for every state after the buttons are gone (None while pending)."""
    if decision is None:
        if not expired:
            return None
        items = [_text("Expired: nobody decided in time. Nothing was changed.", weight="Bolder")]
        return {**_container(items, "warning"), "id": _STATE}
    verb = "Approved" if decision.approved else "Rejected"
    items = [_rich(_run(f"{verb} by {_who(decision, decided_by_name)} at {utc_text(decision.decided_at)}", weight="Bolder"))]
    if not decision.approved:
        items.append(_text("Nothing was changed."))
        style = "warning"
    elif results is None:
        items.append(_text("Containment is running; this card will show each action's outcome."))
        style = "accent"
    else:
        items += _result_lines(results, limit) or [_text("No action was run.")]
        style = "attention" if any(r.status is ActionStatus.FAILED for r in results) else "good"
    return {**_container(items, style), "id": _STATE}


# Element ids, so a posted card can be refreshed from its own JSON (`refreshed_card`).
_HEADER = "header"
_HEADLINE = "headline"
_FACTS = "facts"
_DEADLINE = "deadline"
_EVIDENCE = "evidence"
_STATE = "state"
_PENDING_HEADLINE = "Token replay suspected: approve containment?"
_DONE_HEADLINE = "Token replay suspected: containment request"
_EVIDENCE_DROPPED = "The evidence is too large for a Teams card: see the incident comment."


def _pending_card(
    incident: CardIncident,
    evidence: UserEvidence,
    assessment: Assessment,
    plan: ContainmentPlan,
    *,
    data: ActionData,
    limits: _Limits,
    summary: Brief,
) -> Card:
    user = plan.account.upn or plan.account.object_id
    suspect_signins = sum(s.count for s in evidence.signins if s.ip in assessment.suspect_ips)
    total = sum(s.count for s in evidence.signins)
    who = _plain(summary.name, 120) + (f" ({_plain(user, 120)})" if summary.name != user else "")
    body: list[dict[str, Any]] = [
        {
            **_container(
                [
                    _text(_PENDING_HEADLINE, weight="Bolder", size="Medium", id=_HEADLINE),
                    _incident_line(incident.number, incident.title, limits.text),
                ],
                "attention",
            ),
            "id": _HEADER,
        },
        _rich(_run(_plain(summary.why, max(limits.text, 160)), weight="Bolder")),
        {
            **_container(
                [
                    _fact("User", who),
                    _fact("Verdict", _plain(summary.headline, 120)),
                    _fact("Sign-ins", f"{total} in the window, {suspect_signins} of them from suspect addresses"),
                    _fact("Window", f"{utc_text(evidence.window.start)} to {utc_text(evidence.window.end)}"),
                    _text(f"**Decide by**: {_local_time(data.expires_at)}", id=_DEADLINE, spacing="Small"),
                ]
            ),
            "id": _FACTS,
        },
    ]
    if summary.facts:
        body.append(
            _container(
                [
                    _heading("Who"),
                    *(
                        _rich(_run(f"{_plain(label, 60)}: ", weight="Bolder"), _plain(value, limits.text))
                        for label, value in summary.facts
                    ),
                ]
            )
        )
    if evidence.truncated or evidence.warnings:
        body.append(
            _text("The evidence is incomplete (row cap or partial query result): see the incident comment.", color="Warning")
        )
    if assessment.gaps:
        missing = "; ".join(f"{gap.table}: {gap.what}" for gap in assessment.gaps)
        body.append(_text(f"Missing evidence: {escape_markdown(missing, 400)}. See the incident comment.", color="Warning"))
    if limits.evidence:
        sections = [_heading("Why"), *_signal_lines(assessment.signals, limits)]
        sections += [_heading("Suspect addresses"), *_ip_lines(evidence, assessment, limits)]
    else:
        sections = [_text(_EVIDENCE_DROPPED, isSubtle=True)]
    body.append({**_container(sections), "id": _EVIDENCE})
    body += [_heading("Proposed actions"), *_action_lines(plan)]
    body.append(
        _text(
            "After approval: reset the password, remove MFA methods and devices the attacker added, review inbox rules "
            "and app consents (the incident comment lists the steps).",
            isSubtle=True,
        )
    )
    body.append(_text(ATTRIBUTION, isSubtle=True, size="Small"))
    actions = _buttons(data) + _open_incident(incident.url)
    return _card(body, actions, f"Token replay suspected for {clean_text(user, 120)}: containment approval")


def refreshed_card(
    card: Mapping[str, Any],
    *,
    decision: Decision | None = None,
    results: Sequence[ActionResult] | None = None,
    expired: bool = False,
    decided_by_name: str = "",
) -> Card:
    """
    A posted approval card in its state after the request: who decided and when, then each action's
    outcome once `results` are known; or expired. The buttons and the deadline go.

    Works from the card's own JSON, so the orchestration can refresh the card it posted without the
    evidence; if the outcome makes the card too big, the evidence section gives way.
    """
    refreshed: Card = json.loads(json.dumps(card))
    for element in _walk_elements(refreshed["body"]):
        if element.get("id") == _HEADER:
            element["style"] = "emphasis"
        elif element.get("id") == _HEADLINE:
            element["text"] = _DONE_HEADLINE
        elif element.get("id") == _FACTS:
            element["items"] = [i for i in element.get("items", []) if i.get("id") != _DEADLINE]
    body = [e for e in refreshed["body"] if e.get("id") != _STATE]
    refreshed["actions"] = [a for a in refreshed.get("actions", []) if a.get("type") == "Action.OpenUrl"]
    if not refreshed["actions"]:
        del refreshed["actions"]
    for limit in (300, 120, 60):
        state = _state_section(decision, results, expired, decided_by_name, limit)
        refreshed["body"] = body + ([state] if state is not None else [])
        if card_size(refreshed) <= CARD_BUDGET:
            return refreshed
        body = [
            {**_container([_text(_EVIDENCE_DROPPED, isSubtle=True)]), "id": _EVIDENCE} if e.get("id") == _EVIDENCE else e
            for e in body
        ]
    return refreshed


def _walk_elements(elements: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for element in elements:
        if isinstance(element, dict):
            yield element
            yield from _walk_elements(element.get("items", ()))


def card_for(
    incident: CardIncident,
    evidence: UserEvidence,
    assessment: Assessment,
    plan: ContainmentPlan,
    *,
    instance_id: str,
    expires_at: datetime,
    decision: Decision | None = None,
    results: Sequence[ActionResult] | None = None,
    expired: bool = False,
    decided_by_name: str = "",
    context: Context | None = None,
) -> Card:
    """
    The approval card for one user's plan, in the state given.

    Pending (no decision, not expired): a one-line why naming the person (`context.identity`), the
    facts, the evidence (explained addresses behind a toggle), the proposed actions and the
    Approve/Reject buttons. Otherwise the same card as `refreshed_card` makes it. The pending card is
    shrunk step by step (fewer signals and addresses, shorter values, then no evidence) until it is
    under `CARD_BUDGET` bytes, so Teams never drops it.
    """
    data = ActionData.for_plan(incident, plan, instance_id=instance_id, expires_at=expires_at)
    summary = brief(evidence, assessment, context)
    card: Card = {}
    for limits in _STEPS:
        card = _pending_card(incident, evidence, assessment, plan, data=data, limits=limits, summary=summary)
        if card_size(card) <= CARD_BUDGET:
            break
    if decision is None and not expired:
        return card
    return refreshed_card(card, decision=decision, results=results, expired=expired, decided_by_name=decided_by_name)


# --------------------------------------------------------------------------------------------------
# Short cards the bot answers a click with


def _short_card(data: ActionData, style: str, lines: list[dict[str, Any]], summary: str) -> Card:
    header = _container(
        [
            _text("Token replay containment request", weight="Bolder"),
            _incident_line(data.incident_number, "", 0),
            _fact("User", _plain(data.user_upn or data.user_object_id, 120)),
        ],
        "emphasis",
    )
    return _card([header, _container(lines, style)], _open_incident(data.incident_url), summary)


def handed_over_card(data: ActionData, decision: Decision) -> Card:
    """
    The clicker's answer when their decision was handed to the request but the request had not yet
    said which decision stands (another approver's may have arrived first): no claim either way.
    """
    verb = "approval" if decision.approved else "rejection"
    lines = [
        _text(f"Your {verb} was handed to the request at {utc_text(decision.decided_at)}", weight="Bolder"),
        _text("The request takes the first decision it receives; this card will show the decision that stands."),
    ]
    return _short_card(data, "accent", lines, f"Your {verb} was handed over")


def recorded_card(data: ActionData, decision: Decision, *, name: str = "") -> Card:
    """The clicker's answer when the request recorded their decision as the one that stands."""
    verb = "Approved" if decision.approved else "Rejected"
    follow = (
        "Containment is running; the card will show each action's outcome." if decision.approved else "Nothing will be changed."
    )
    lines = [_rich(_run(f"{verb} by {_who(decision, name)} at {utc_text(decision.decided_at)}", weight="Bolder")), _text(follow)]
    return _short_card(data, "good" if decision.approved else "warning", lines, f"{verb}: decision recorded")


def already_decided_card(data: ActionData, decision: Decision, *, name: str = "") -> Card:
    """The answer to a click on a request someone already decided: who, what and when; the click changed nothing."""
    verb = "approved" if decision.approved else "rejected"
    lines = [
        _rich(_run(f"Already {verb} by {_who(decision, name)} at {utc_text(decision.decided_at)}", weight="Bolder")),
        _text("Your click changed nothing."),
    ]
    return _short_card(data, "warning", lines, f"Already {verb}")


def refused_card(data: ActionData, clicker: str, reason: str) -> Card:
    """The answer to someone who may not decide; the request stays open for those who may."""
    lines = [
        _rich(_run(f"{_plain(clicker or 'You', 120)} may not decide on this containment", weight="Bolder", color="Attention")),
        _rich(f"{_sentence(reason, 300)}. Nothing was changed."),
    ]
    return _short_card(data, "attention", lines, "Not authorised")


def expired_card(data: ActionData, *, expired_at: datetime | None = None) -> Card:
    """The answer to a click after the request's deadline (the orchestration's, when known, else the card's)."""
    lines = [
        _text(f"This request expired at {utc_text(expired_at or data.expires_at)}", weight="Bolder"),
        _text("Nothing was changed. Contain the account by hand if it is still needed."),
    ]
    return _short_card(data, "warning", lines, "Request expired")


def stale_card(data: ActionData, reason: str) -> Card:
    """The answer to a click on a card that no longer matches a waiting request (replaced plan, finished run)."""
    lines = [
        _text("This card no longer matches a waiting request", weight="Bolder"),
        _rich(f"{_sentence(reason, 300)}. Nothing was changed."),
    ]
    return _short_card(data, "warning", lines, "Request no longer open")
