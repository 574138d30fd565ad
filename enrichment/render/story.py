"""
The brief: what an analyst reads first, the same in the comment, the card, the text and the report.

One sentence tells the story (which session was lifted, where it was born, where and when it was
used, for which apps, how many sign-ins); the incident's own addresses are answered one by one; the
next steps follow Microsoft's token-theft playbook for a replay (revoke, reset the password, remove
the attacker's methods and devices, review mailbox rules and consents, block the address), or
propose the Sentinel classification and reason to close with for a benign result.

Pure: plain text values from the evidence and the assessment, never escaped here (every renderer
escapes for its own medium). What this module cannot know is passed in as `Context`: the incident's
addresses, where an approval waits and until when, and the identity of the person (display name now;
`Identity.facts` is the place for department, manager, roles and risk when those are gathered).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from enrichment.domain.evidence import ip_timeline
from enrichment.domain.model import Assessment, Explanation, Gap, SignIn, UserEvidence, Verdict
from enrichment.render.asn_names import asn_label, asn_name

#: Sentinel's incident classifications and reasons (Microsoft.SecurityInsights incidents API).
TRUE_POSITIVE = ("TruePositive", "SuspiciousActivity")
BENIGN_POSITIVE = ("BenignPositive", "SuspiciousButExpected")
FALSE_POSITIVE = ("FalsePositive", "IncorrectAlertLogic")
UNDETERMINED = ("Undetermined", "")

EXPLANATION_TEXT = {
    "corporate_network": "corporate network",
    "corporate_vpn": "corporate VPN",
    "trusted_asn": "network the organisation trusts",
    "named_location": "trusted named location",
    "microsoft_network": "Microsoft's own network",
    "mobile_carrier": "the user's mobile carrier",
    "dual_stack": "IPv6 twin of a known address",
    "travel": "travel record",
    "privacy_relay": "a privacy relay the user's own device used",
    "security_service_edge": "the organisation's security service edge",
    "new_device": "where the user set up a new device",
    "device_continuity": "the user's own device",
}

#: Apps named in the story sentence; the rest are counted.
STORY_APPS = 2


def verdict_text(verdict: str) -> str:
    """The verdict as people say it; a verdict this module does not know is shown as its value."""
    known = verdict in Verdict.__members__.values()
    return Verdict(verdict).words.capitalize() if known else verdict.replace("_", " ").capitalize()


def explanation_text(kind: str) -> str:
    return EXPLANATION_TEXT.get(kind, kind.replace("_", " "))


_BARE_ASN = re.compile(r"\bAS(\d{1,10})(?=[,);]|$)")


def name_asns(text: str) -> str:
    """'(AS8220, ES)' -> '(AS8220 COLT Technology Services Group Limited, ES)': a bare AS number in a sentence gets its name."""

    def named(match: re.Match[str]) -> str:
        name = asn_name(int(match.group(1)))
        return f"AS{match.group(1)} {name}" if name else match.group(0)

    return _BARE_ASN.sub(named, text)


_SETTING = re.compile(r"\s*\((?:REPLAY_[A-Z_]+(?:,\s*)?)+\)")


def explanation_phrases(ip: str, explanations: Sequence[Explanation]) -> str:
    """
    Why an address is explained, without repeating it: each reason's facts joined by '; ', without
    the setting names the details cite ("is inside the corporate network 203.0.113.0/24; ...").
    """
    phrases = []
    for explanation in explanations:
        detail = _SETTING.sub("", explanation.detail).strip().rstrip(".").strip()
        if detail.startswith(ip + " "):
            detail = detail[len(ip) + 1 :]
        detail = detail.replace(ip, "it")
        phrases.append(name_asns(detail))
    return "; ".join(dict.fromkeys(phrases))


def utc(moment: datetime) -> str:
    """'2026-06-15 09:37 UTC': to the minute, with the zone."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def clock(moment: datetime, day: datetime) -> str:
    """'09:37' on `day`, '06-14 21:05' on another day: short, never ambiguous inside one brief."""
    return moment.strftime("%H:%M") if moment.date() == day.date() else moment.strftime("%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the account is, as far as it is known: the display name, then any further facts as (label, value)."""

    display_name: str = ""
    facts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Approval:
    """
    Where the containment approval waits: the Teams card until `deadline`, or why no card was posted,
    or the request of an earlier run for the same plan (`earlier`, its id), still waiting or decided.
    """

    deadline: datetime | None = None
    problem: str = ""
    earlier: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """What the brief cannot learn from the evidence: the incident's addresses, the approval, the person."""

    incident_ips: tuple[str, ...] = ()
    approval: Approval | None = None
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class LiftedSession:
    """A session of the user's that was used from a suspect address: where it was born and where it went."""

    session_id: str
    born_at: datetime
    born_ip: str
    born_place: str
    born_client: str
    used_ips: tuple[str, ...]
    used_place: str
    first_use: datetime
    last_use: datetime
    signins: int
    apps: tuple[str, ...]
    token_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Classification:
    """The Sentinel classification the evidence supports, with the reason value and a sentence why."""

    classification: str
    reason: str
    why: str

    @property
    def label(self) -> str:
        return f"{self.classification} ({self.reason})" if self.reason else self.classification


@dataclass(frozen=True, slots=True)
class Brief:
    """The first things an analyst reads about one account, as plain text."""

    user: str
    name: str  # display name when known, else the UPN
    verdict: str
    score: int
    points: int
    headline: str
    story: str
    why: str
    incident_lines: tuple[str, ...]
    next_steps: tuple[str, ...]
    classification: Classification
    sessions: tuple[LiftedSession, ...] = ()
    suspect_ips: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = field(default=())


def place(ip: str, rows: Sequence[SignIn]) -> str:
    """'New York, US (AS14061 DigitalOcean, LLC)': where an address is, from its rows."""
    mine = [r for r in rows if r.ip == ip]
    city = next((r.city for r in mine if r.city), "")
    country = next((r.country for r in mine if r.country), "")
    asn = next((r.asn for r in mine if r.asn is not None), None)
    where = ", ".join(p for p in (city, country) if p)
    network = asn_label(asn)
    if where and network:
        return f"{where} ({network})"
    return where or network or ip


def _client(row: SignIn) -> str:
    """'Edge on Windows10', else the app: what the session was opened in."""
    browser = row.browser.split(" ")[0] if row.browser else ""
    if browser and row.operating_system:
        return f"{browser} on {row.operating_system}"
    return browser or row.app or row.client_app or "an unnamed client"


def _named(values: Sequence[str], limit: int = STORY_APPS) -> str:
    shown = list(values[:limit])
    if len(values) > limit:
        shown.append(f"{len(values) - limit} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _apps(rows: Iterable[SignIn]) -> tuple[str, ...]:
    volume: Counter[str] = Counter()
    for row in rows:
        volume[row.app or row.app_id or "an unnamed app"] += row.count
    return tuple(app for app, _ in volume.most_common())


def lifted_sessions(evidence: UserEvidence, assessment: Assessment) -> tuple[LiftedSession, ...]:
    """
    Sessions used from a suspect address that were also used from one that is not: the stolen ones.

    Born: the session's earliest successful sign-in from a non-suspect address (interactive first).
    Used: every successful sign-in of the session from suspect addresses. Most used first.
    """
    suspects = set(assessment.suspect_ips)
    rows = [r for r in evidence.signins if r.succeeded and r.session_id]
    by_session: dict[str, list[SignIn]] = {}
    for row in rows:
        by_session.setdefault(row.session_id, []).append(row)
    found = []
    for session_id, mine in by_session.items():
        used = [r for r in mine if r.ip in suspects]
        home = [r for r in mine if r.ip not in suspects]
        if not used or not home:
            continue
        born = min(home, key=lambda r: (not r.interactive, r.first, r.ip))
        used_ips = tuple(sorted({r.ip for r in used}, key=lambda ip: -sum(r.count for r in used if r.ip == ip)))
        found.append(
            LiftedSession(
                session_id=session_id,
                born_at=born.first,
                born_ip=born.ip,
                born_place=place(born.ip, evidence.signins),
                born_client=_client(born),
                used_ips=used_ips,
                used_place=place(used_ips[0], evidence.signins),
                first_use=min(r.first for r in used),
                last_use=max(r.last for r in used),
                signins=sum(r.count for r in used),
                apps=_apps(used),
                token_ids=tuple(sorted({t for r in used for t in r.token_ids})),
            )
        )
    return tuple(sorted(found, key=lambda s: (-s.signins, s.first_use, s.session_id)))


def _story(evidence: UserEvidence, assessment: Assessment, sessions: Sequence[LiftedSession]) -> str:
    day = evidence.at
    rows = [r for r in evidence.signins if r.succeeded]
    if sessions:
        s = sessions[0]
        also = f" ({len(s.used_ips) - 1} more address(es) too)" if len(s.used_ips) > 1 else ""
        more = f" {len(sessions) - 1} more session(s) were used the same way." if len(sessions) > 1 else ""
        return (
            f"The session opened in {s.born_client} at {s.born_place} at {clock(s.born_at, day)} UTC was used from "
            f"{s.used_place}{also} at {clock(s.first_use, day)}: {s.signins} sign-in(s) to {_named(s.apps)} "
            f"until {clock(s.last_use, day)} UTC.{more}"
        )
    if assessment.suspect_ips:
        ip = assessment.suspect_ips[0]
        used = [r for r in rows if r.ip == ip]
        others = len(assessment.suspect_ips) - 1
        tail = f" {others} more suspect address(es) are listed below." if others else ""
        if not used:
            return f"Only failed sign-ins came from {place(ip, evidence.signins)}; no token was used there.{tail}"
        return (
            f"{sum(r.count for r in used)} sign-in(s) from {place(ip, evidence.signins)} to {_named(_apps(used))} between "
            f"{clock(min(r.first for r in used), day)} and {clock(max(r.last for r in used), day)} UTC, in no session the "
            f"user opened elsewhere.{tail}"
        )
    total = sum(r.count for r in evidence.signins)
    if not total:
        return f"No sign-in of the user between {utc(evidence.window.start)} and {utc(evidence.window.end)}."
    addresses = len({r.ip for r in evidence.signins})
    kinds = Counter(explanation_text(e.kind.value) for e in _first_per_ip(assessment.explanations))
    if kinds:
        covered = ", ".join(f"{kind} ({count})" for kind, count in kinds.most_common())
        return f"{total} sign-in(s) from {addresses} address(es); the unfamiliar ones are explained: {covered}."
    return f"{total} sign-in(s) from {addresses} address(es), all on networks the user is known on."


def _first_per_ip(explanations: Iterable[Explanation]) -> list[Explanation]:
    seen: dict[str, Explanation] = {}
    for explanation in explanations:
        seen.setdefault(explanation.ip, explanation)
    return list(seen.values())


def _incident_lines(evidence: UserEvidence, assessment: Assessment, ips: Sequence[str]) -> tuple[str, ...]:
    activity = {a.ip: a for a in ip_timeline(evidence.signins)}
    explained: dict[str, list[Explanation]] = {}
    for explanation in assessment.explanations:
        explained.setdefault(explanation.ip, []).append(explanation)
    known = evidence.baseline.known("ips")
    lines = []
    for ip in ips:
        seen = activity.get(ip)
        if seen is None:
            lines.append(
                f"The incident's address {ip} is not in this user's sign-ins between {utc(evidence.window.start)} "
                f"and {utc(evidence.window.end)}."
            )
            continue
        counted = f"{seen.total} sign-in(s)" + (f", {seen.failures} failed" if seen.failures else "")
        where = place(ip, evidence.signins)
        if ip in assessment.suspect_ips:
            reasons = explained.get(ip)
            cover = (
                "partly explained (" + ", ".join(explanation_text(e.kind.value) for e in reasons) + ") but still suspect"
                if reasons
                else "no benign explanation"
            )
            lines.append(f"The incident's address {ip} ({where}) is suspect: {counted}, {cover}.")
        elif ip in explained:
            kinds = ", ".join(dict.fromkeys(explanation_text(e.kind.value) for e in explained[ip]))
            lines.append(
                f"The incident's address {ip} ({where}) is explained by {kinds}: {explanation_phrases(ip, explained[ip])}."
            )
        elif ip in known:
            lines.append(f"The incident's address {ip} ({where}) is one of the user's own: seen in the baseline, {counted}.")
        else:
            lines.append(f"The incident's address {ip} ({where}) raised no signal: {counted}.")
    return tuple(lines)


def _classification(verdict: str, assessment: Assessment) -> Classification:
    if verdict == Verdict.REPLAY_LIKELY.value:
        return Classification(*TRUE_POSITIVE, "a session of the user's was used from an address the user never was at")
    if verdict == Verdict.BENIGN.value:
        kinds = sorted({explanation_text(e.kind.value) for e in assessment.explanations})
        if kinds:
            return Classification(*BENIGN_POSITIVE, "the unusual sign-ins are the user's own: " + ", ".join(kinds))
        return Classification(*FALSE_POSITIVE, "no sign-in of the user in the window is unusual for them")
    return Classification(*UNDETERMINED, "classify once the user has confirmed or denied the sign-ins")


def _security_changes(evidence: UserEvidence, suspects: Sequence[str]) -> str:
    changes = [e for e in evidence.security_events if e.actor_ip in suspects]
    if not changes:
        return "none is recorded from the suspect addresses in AuditLogs"
    listed = "; ".join(f"{e.operation} at {utc(e.time)} from {e.actor_ip}" for e in changes[:3])
    more = f"; and {len(changes) - 3} more" if len(changes) > 3 else ""
    return f"AuditLogs records {listed}{more}"


def _next_steps(
    brief_verdict: str, evidence: UserEvidence, assessment: Assessment, context: Context, name: str
) -> tuple[str, ...]:
    suspects = assessment.suspect_ips
    ips = ", ".join(suspects[:5]) + (f" and {len(suspects) - 5} more" if len(suspects) > 5 else "")
    since = min((r.first for r in evidence.signins if r.ip in suspects), default=evidence.window.start)
    if brief_verdict == Verdict.REPLAY_LIKELY.value:
        approval = context.approval
        if approval is not None and approval.deadline is not None:
            first = (
                f"Approve or reject containment on the Teams card by {utc(approval.deadline)}: approving revokes "
                f"{name}'s sessions (refresh tokens and session cookies)."
            )
        elif approval is not None and approval.earlier:
            first = (
                f"Containment of {name} was already requested by an earlier run of this playbook (request "
                f"{approval.earlier}): that Teams card and its records on this incident hold the decision, or wait for it; "
                "no second card was posted for the same actions."
            )
        elif approval is not None and approval.problem:
            first = f"No approval card was posted ({approval.problem}): revoke {name}'s sessions by hand (Entra admin center > Users > Revoke sessions)."
        else:
            first = f"Revoke {name}'s sessions (Entra admin center > Users > Revoke sessions, or Graph revokeSignInSessions)."
        return (
            first,
            "Reset the password: a phishing proxy that lifts the session also captures it.",
            f"Remove MFA methods and devices the attacker registered ({_security_changes(evidence, suspects)}).",
            f"Review the mailbox's inbox rules and forwarding, and app consents granted since {utc(since)}.",
            f"Block {ips} (a blocked Conditional Access named location, or the firewall)."
            if suspects
            else "Block the suspect addresses.",
            "Classify the incident True positive (Suspicious activity) when done.",
        )
    if brief_verdict == Verdict.SUSPICIOUS.value:
        where = place(suspects[0], evidence.signins) if suspects else "the suspect addresses"
        return (
            f"Ask {name}, by phone or chat rather than mail, whether they signed in from {where} around {utc(since)}.",
            "Run the pivot query below to see every sign-in of those addresses and sessions in both tables.",
            "If they did not: treat it as a token replay (revoke sessions, reset the password, remove added methods and devices).",
        )
    if brief_verdict == Verdict.BENIGN.value:
        verdict = _classification(brief_verdict, assessment)
        return (f"Close the incident as {verdict.label}: {verdict.why}.",)
    return (_incomplete_step(assessment.gaps),)


def _incomplete_step(gaps: Sequence[Gap]) -> str:
    """
    The one next step of an incomplete assessment, short enough to read in a card: which tables could
    not give what (tables with the same problem named together), and how many checks that left out.
    The checks themselves are listed where the coverage is shown, not here.
    """
    if not gaps:
        return "Find out why the evidence is incomplete (see the warnings), then run the playbook again."
    tables_by_problem: dict[str, list[str]] = {}
    for gap in gaps:
        tables_by_problem.setdefault(gap.what, []).append(gap.table)
    problems = "; ".join(f"{', '.join(tables)}: {what}" for what, tables in tables_by_problem.items())
    unevaluated = len({name for gap in gaps for name in (*gap.signals, *gap.explanations)})
    left_out = f" {unevaluated} checks could not run (listed under missing evidence)." if unevaluated else ""
    return f"Find out why the evidence is incomplete ({problems}), then run the playbook again.{left_out}"


def brief(evidence: UserEvidence, assessment: Assessment, context: Context | None = None) -> Brief:
    """The brief of one account: headline, story, the incident's addresses, next steps, classification."""
    context = context or Context()
    identity = context.identity or Identity()
    user = evidence.account.key
    name = identity.display_name or user
    verdict = assessment.verdict.value
    points = sum(s.weight for s in assessment.signals)
    capped = f" ({points} points found)" if points > assessment.score else ""
    headline = f"{verdict_text(verdict)}: score {assessment.score}/100{capped}"
    sessions = lifted_sessions(evidence, assessment)
    story = _story(evidence, assessment, sessions)
    if sessions:
        s = sessions[0]
        why = f"{name}'s session from {s.born_place} was used from {s.used_place} ({s.signins} sign-ins)."
    elif assessment.suspect_ips:
        ip = assessment.suspect_ips[0]
        why = f"{name}: sign-ins from {place(ip, evidence.signins)} that no benign explanation covers."
    elif assessment.verdict is Verdict.INSUFFICIENT_EVIDENCE:
        missing = ", ".join(gap.table for gap in assessment.gaps) or "the evidence"
        why = f"{name}: nothing points to a token replay in what could be read, but {missing} could not be read whole."
    else:
        why = f"{name}: nothing points to a token replay."
    return Brief(
        user=user,
        name=name,
        verdict=verdict,
        score=assessment.score,
        points=points,
        headline=headline,
        story=story,
        why=why,
        incident_lines=_incident_lines(evidence, assessment, context.incident_ips),
        next_steps=_next_steps(verdict, evidence, assessment, context, name),
        classification=_classification(verdict, assessment),
        sessions=sessions,
        suspect_ips=assessment.suspect_ips,
        facts=identity.facts,
    )
