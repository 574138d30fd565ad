"""
The incident comment: evidence and verdicts rendered as HTML for Sentinel's comment pane.

Pure rendering. Every record is a comment of its own and is never rewritten (the Defender portal
never shows an edit): the enrichment of one run, with a section per account, most severe first; the
"no account" and failure notices; and one comment per state change of an approval. Inside a
section the summary comes first (verdict, score, strongest signals in plain English, suspect IPs with
their explanation or the lack of one), then the per-IP timeline as a small table, then the baseline;
warnings about truncated or partial data are shown near the top.

Two rules hold whatever the input:

* **Size.** The result is at most `max_chars` characters. Whole rows and whole sections are dropped,
  most detailed first, each drop announced ("12 more IPs not shown"); nothing is ever cut inside a
  tag or an entity, and long values are clipped before they are escaped.
* **Escaping.** Every value that came from a sign-in row, an incident or an entity is escaped with
  `html.escape(quote=True)`; only this module's own tag literals reach the output unescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from common.times import utc_text
from enrichment.domain.model import Assessment, UserEvidence, Verdict
from enrichment.queries.kql import InvalidQueryInput
from enrichment.queries.pivots import Pivot, pivot
from enrichment.render.html import ADDRESS_ROWS, CELL_CHARS, account_fragments, attribution, esc
from enrichment.render.story import Context, brief, verdict_text
from playbooks.domain.approval import ApprovalRecord
from playbooks.domain.approval import AttemptLine as ApprovalAttemptLine
from playbooks.domain.incident import SentinelIncident, entity_summary
from playbooks.domain.plan import plan_remarks
from playbooks.domain.workflow import Phase

#: The address list is a summary, not an export: beyond this many entries the comment says how many more.
TIMELINE_ROWS = ADDRESS_ROWS

__all__ = [
    "CELL_CHARS",
    "TIMELINE_ROWS",
    "AccountReport",
    "approval_comment",
    "enrichment_comment",
    "esc",
    "failure_comment",
    "no_account_comment",
]


def _time(moment: datetime | None) -> str:
    return "" if moment is None else utc_text(moment)


@dataclass(frozen=True, slots=True)
class AccountReport:
    """One account's evidence and the assessment made from it."""

    evidence: UserEvidence
    assessment: Assessment
    context: Context | None = None  # the incident's addresses, the approval, the person (see `story.Context`)
    tenant_id: str = ""  # names the tenant in the Log Analytics link when known


# -- the size-bounded assembly ----------------------------------------------------------------


@dataclass
class _Part:
    """
    A piece of the comment in reading order. A plain part is `head` alone; a group is `head`, as
    many `items` as fit, then `tail`, with a note for the items left out. Parts are admitted by
    `priority` (0 first) and dropped whole, with their children, when they do not fit.
    """

    priority: int
    head: str
    items: list[str] = field(default_factory=list)
    tail: str = ""
    noun: str = ""
    parent: int | None = None
    extra: int = 0  # items left out before assembly (a table's own row limit), counted in the note
    note_open: str = "<p><i>"
    note_close: str = "</i></p>"


def _note(part: _Part, omitted: int) -> str:
    return f"{part.note_open}{omitted} more {part.noun} not shown (comment size limit).{part.note_close}"


def _final_note(omitted: int, max_chars: int) -> str:
    return f"<p><i>{omitted} more section(s) not shown to stay within {max_chars} characters.</i></p>"


def _assemble(parts: Sequence[_Part], max_chars: int) -> str:
    """Admit parts by priority within `max_chars`, then emit the admitted ones in reading order."""
    reserve = len(_final_note(len(parts), max_chars))
    remaining = max_chars - reserve
    chosen: dict[int, str] = {}
    dropped = 0
    for index in sorted(range(len(parts)), key=lambda i: (parts[i].priority, i)):
        part = parts[index]
        if part.parent is not None and part.parent not in chosen:
            dropped += 1
            continue
        if not part.items:
            text = part.head + part.tail
            if len(text) <= remaining:
                chosen[index] = text
                remaining -= len(text)
            else:
                dropped += 1
            continue
        frame = len(part.head) + len(part.tail) + len(_note(part, len(part.items) + part.extra))
        if frame > remaining:
            dropped += 1
            continue
        budget = remaining - frame
        taken: list[str] = []
        for item in part.items:
            if len(item) > budget:
                break
            taken.append(item)
            budget -= len(item)
        if not taken:
            # A table head with no row is noise; the whole group counts as not shown.
            dropped += 1
            continue
        omitted = len(part.items) - len(taken) + part.extra
        text = part.head + "".join(taken) + part.tail + (_note(part, omitted) if omitted else "")
        chosen[index] = text
        remaining -= len(text)
    body = "".join(chosen[i] for i in sorted(chosen))
    if dropped:
        body += _final_note(dropped, max_chars)
    return body


# -- the enrichment comment ---------------------------------------------------------------------


def _link(incident: SentinelIncident) -> str:
    """A link to the incident: the Defender portal's when the incident offers one (already checked to be plain https)."""
    if not incident.link:
        return ""
    where = "the Defender portal" if incident.provider_url else "the Azure portal"
    return f' <a href="{esc(incident.link, 1000)}">Open the incident in {where}</a>.'


def _header(incident: SentinelIncident, generated_at: datetime, subtitle: str) -> str:
    title = f" {esc(incident.title, 160)}" if incident.title else ""
    return (
        f"<h3>Token replay enrichment: incident {esc(incident.label, 60)}{title}</h3>"
        f"<p>{subtitle} Generated {esc(_time(generated_at))}; incident time {esc(_time(incident.at))}.{_link(incident)}</p>"
    )


def _overview_row(report: AccountReport) -> str:
    a = report.assessment
    return (
        f"<tr><td>{esc(report.evidence.account.key)}</td><td><b>{esc(verdict_text(a.verdict.value))}</b></td>"
        f"<td>{a.score}/100</td><td>{esc(', '.join(a.suspect_ips[:5]) or 'none')}"
        f"{esc(f' +{len(a.suspect_ips) - 5}') if len(a.suspect_ips) > 5 else ''}</td></tr>"
    )


def account_pivot(report: AccountReport, incident: SentinelIncident) -> tuple[Pivot | None, str]:
    """The account's pivot (query and links), or why there is none."""
    lifted = [s.session_id for s in brief(report.evidence, report.assessment).sessions]
    try:
        found = pivot(
            report.evidence.account,
            report.evidence.window,
            session_ids=lifted,
            ips=report.assessment.suspect_ips,
            workspace_resource_id=incident.resource_id.split("/providers/Microsoft.SecurityInsights/")[0],
            tenant_id=report.tenant_id,
        )
    except InvalidQueryInput as error:
        return None, f"no pivot query could be built: {error}"
    return found, ""


def _account_parts(report: AccountReport, incident: SentinelIncident, parts: list[_Part]) -> None:
    summary = brief(report.evidence, report.assessment, report.context)
    found, problem = account_pivot(report, incident)
    fragments = account_fragments(report.evidence, report.assessment, summary, found)
    parent = len(parts)
    for number, fragment in enumerate(fragments):
        parts.append(
            _Part(
                fragment.priority,
                fragment.head,
                list(fragment.items),
                fragment.tail,
                fragment.noun,
                None if number == 0 else parent,
                fragment.extra,
            )
        )
    if problem:
        parts.append(_Part(2, f"<p><i>{esc(problem, 300)}</i></p>", parent=parent))


def enrichment_comment(
    incident: SentinelIncident,
    reports: Sequence[AccountReport],
    *,
    max_chars: int,
    generated_at: datetime,
    warnings: Sequence[str] = (),
    tuning: Sequence[str] = (),
    lead: str = "",
) -> str:
    """
    The comment for an enriched incident, every account in one comment, within `max_chars`.

    `tuning` names the scoring settings this deployment changed from the defaults (thresholds,
    signal weights), so whoever reads a score knows it was not the stock one. `lead` is said first,
    under the header (a follow-up run says why it wrote a second comment).
    """
    ordered = sorted(reports, key=lambda r: (-r.assessment.verdict.concern, -r.assessment.score, r.evidence.account.key))
    counts = {v: sum(1 for r in reports if r.assessment.verdict is v) for v in Verdict}
    subtitle = esc(
        f"{len(reports)} account(s): {counts[Verdict.REPLAY_LIKELY]} replay likely, "
        f"{counts[Verdict.SUSPICIOUS]} suspicious, "
        + (f"{counts[Verdict.INSUFFICIENT_EVIDENCE]} insufficient evidence, " if counts[Verdict.INSUFFICIENT_EVIDENCE] else "")
        + f"{counts[Verdict.BENIGN]} benign."
    )
    parts = [_Part(0, _header(incident, generated_at, subtitle))]
    if lead:
        parts.append(_Part(0, f"<p><b>{esc(lead, 600)}</b></p>"))
    if tuning:
        parts.append(_Part(0, "<p><b>Scoring tuned for this tenant</b>: " + esc("; ".join(tuning), 600) + ".</p>"))
    unresolved = [f"account entity without an Entra identity, not assessed: {u}" for u in incident.unresolved]
    shared = [*warnings, *unresolved]
    if shared:
        parts.append(_Part(0, "<p><b>Warnings</b>:</p><ul>", [f"<li>{esc(w, 300)}</li>" for w in shared], "</ul>", "warnings"))
    if len(ordered) > 1:
        parts.append(
            _Part(
                0,
                "<table><tr><th>Account</th><th>Verdict</th><th>Score</th><th>Suspect IPs</th></tr>",
                [_overview_row(r) for r in ordered],
                "</table>",
                "accounts",
            )
        )
    for report in ordered:
        _account_parts(report, incident, parts)
    parts.append(_Part(0, attribution()))
    return _bounded(_assemble(parts, max_chars), incident, generated_at, max_chars)


def _bounded(text: str, incident: SentinelIncident, generated_at: datetime, max_chars: int) -> str:
    """The last guard: if even the required parts overflow, a short comment that says so."""
    if len(text) <= max_chars:
        return text
    fallback = _header(incident, generated_at, "The enrichment is too large for a comment of this size; see the function's logs.")
    return fallback if len(fallback) <= max_chars else "<p>Token replay enrichment: too large for a comment of this size.</p>"


# -- notices: no account, failure -----------------------------------------------------------------


def no_account_comment(
    incident: SentinelIncident, *, max_chars: int, generated_at: datetime, warnings: Sequence[str] = ()
) -> str:
    """The comment for an incident that names no Entra account: what it did contain, what to do."""
    found = entity_summary(incident.entity_kinds)
    parts = [
        _Part(
            0,
            _header(incident, generated_at, "No account to assess.")
            + f"<p>The incident names no Entra ID account (entities: {esc(found, 300)}), so no sign-in was queried. "
            "If a user is involved, map the Account entity (aadUserId, or accountName and upnSuffix) in the "
            "analytics rule's entity mapping and run the playbook again.</p>",
        )
    ]
    if warnings:
        parts.append(_Part(0, "<p><b>Warnings</b>:</p><ul>", [f"<li>{esc(w, 300)}</li>" for w in warnings], "</ul>", "warnings"))
    if incident.unresolved:
        parts.append(
            _Part(
                0,
                "<p>Account entities without an Entra identity (no aadUserId or UPN):</p><ul>",
                [f"<li>{esc(u)}</li>" for u in incident.unresolved],
                "</ul>",
                "accounts",
            )
        )
    return _bounded(_assemble(parts, max_chars), incident, generated_at, max_chars)


def failure_comment(
    incident: SentinelIncident,
    *,
    what: str,
    error: str,
    hint: str,
    max_chars: int,
    generated_at: datetime,
) -> str:
    """The comment for an enrichment that failed after its retries: what failed and what to check."""
    check = hint or "check the Function App's logs for this incident and run the playbook again"
    parts = [
        _Part(
            0,
            _header(incident, generated_at, "<b>The enrichment failed.</b>")
            + f"<p><b>What failed</b>: {esc(what, 200)}: {esc(error, 600)}</p>"
            + f"<p><b>What to check</b>: {esc(check, 600)}</p>"
            + "<p>No verdict was reached and nothing was changed on the incident. Running the playbook again "
            "writes the enrichment as a new comment.</p>",
        )
    ]
    return _bounded(_assemble(parts, max_chars), incident, generated_at, max_chars)


# -- the approval records (one comment per state change of an account's containment request) ------

_RESULT_TEXT = {"succeeded": "done", "failed": "FAILED", "skipped": "skipped"}


def _approval_state(record: ApprovalRecord) -> str:
    user = esc(record.target.key, 200)
    deadline = esc(_time(record.expires_at))
    if record.phase == Phase.NOT_POSTED:
        return (
            f"<p><b>The approval card for {user} could not be posted to Teams</b>: {esc(record.problem, 600)}. "
            "Nothing was changed; contain the account by hand if needed, or fix the bot settings and run the playbook again.</p>"
        )
    if record.phase == Phase.PENDING:
        return (
            f"<p><b>Containment of {user} awaits approval in Teams</b> (requested {esc(_time(record.requested_at))}; "
            f"decide by {deadline}). Nothing is changed until an authorised approver decides.</p>"
        )
    if record.phase == Phase.REFUSED:
        return (
            f"<p><b>A click on the containment of {user} was refused</b>; nothing was changed, and the request stays "
            f"open for the approvers until {deadline}.</p>"
        )
    if record.phase == Phase.RESULT:
        return f"<p><b>Containment of {user}</b>: the result of one approved action.</p>"
    if record.phase == Phase.EXPIRED:
        return (
            f"<p><b>No decision on the containment of {user} by {deadline}</b>: the request expired and nothing was done. "
            "Contain the account by hand if it is still needed.</p>"
        )
    who = esc(record.decided_by.label if record.decided_by else "an unidentified person", 300)
    verb = "Approved" if record.approved else "Rejected"
    if not record.approved:
        follow = " Nothing was changed."
    elif not record.results:
        follow = " Containment runs now; each action's result is recorded as a comment of its own."
    else:
        follow = ""
    return f"<p><b>{verb}</b> by {who} at {esc(_time(record.decided_at))} (containment of {user}).{follow}</p>"


def _attempt_item(attempt: ApprovalAttemptLine) -> str:
    tried = "approve" if attempt.approve else "reject"
    return (
        f"<li>{esc(_time(attempt.at))}: {esc(attempt.person.label, 300)} tried to {tried} and was refused: "
        f"{esc(attempt.reason, 300)}</li>"
    )


def approval_comment(incident: SentinelIncident, record: ApprovalRecord, *, max_chars: int, generated_at: datetime) -> str:
    """
    The comment for one state change of an account's containment request: what happened (pending,
    a refused click, the decision, one action's outcome with Graph's request id, the deadline passing),
    what containment learnt (notes), and the refused clicks so far, each with the person and the time.
    Written once; the next state change is a new comment.
    """
    head = (
        f"<h3>Token replay containment: incident {esc(incident.label, 60)}</h3>"
        f"<p>Recorded {esc(_time(generated_at))}. Plan {esc(record.plan.digest[:12])}.{_link(incident)}</p>"
    )
    parts = [_Part(0, head + _approval_state(record))]
    if record.phase not in (Phase.REFUSED, Phase.RESULT):
        actions = [f"<li>{esc(a.description, 300)}</li>" for a in record.plan.actions]
        actions += [f"<li>{esc(remark, 1200)}</li>" for remark in plan_remarks(record.plan)]
        parts.append(_Part(1, "<p><b>Proposed actions</b>:</p><ul>", actions, "</ul>", "actions"))
    if record.results:
        rows = [
            f"<tr><td>{esc(r.kind.value)}</td><td>{_RESULT_TEXT.get(r.status.value, esc(r.status.value))}</td>"
            f"<td>{esc(r.detail, 600)}</td><td>{esc(r.request_id, 60)}</td></tr>"
            for r in record.results
        ]
        head_row = "<p><b>Results</b>:</p><table><tr><th>action</th><th>outcome</th><th>detail</th><th>Graph request id</th></tr>"
        parts.append(_Part(0, head_row, rows, "</table>", "results"))
    if record.notes:
        parts.append(_Part(1, "<p><b>Notes</b>:</p><ul>", [f"<li>{esc(n, 1200)}</li>" for n in record.notes], "</ul>", "notes"))
    if record.attempts:
        items = [_attempt_item(a) for a in record.attempts]
        parts.append(_Part(1, "<p><b>Refused attempts</b>:</p><ul>", items, "</ul>", "attempts"))
    return _bounded(_assemble(parts, max_chars), incident, generated_at, max_chars)
