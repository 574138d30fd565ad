"""
One account's enrichment as HTML fragments: shared by the incident comment and the offline report.

Laid out for Sentinel's comment pane (480 px, no CSS of ours survives there): the brief first (verdict,
the story, the incident's addresses, next steps, suggested classification), then the evidence as
lists, never a wide table: each address is a stacked entry of at most four short lines, so nothing
scrolls sideways. Times are labelled UTC; every AS is named; the score shows the points found when
it is capped.

Each fragment has a priority so the comment can drop detail (lowest priority first) to stay within
its size limit; the report keeps everything. Escaping: every value from a sign-in row, the incident,
an AS name or a setting goes through `esc` (`html.escape(quote=True)`, clipped without cutting an
entity); only this module's tag literals reach the output unescaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from common.text import safe_text
from enrichment.domain.evidence import IpActivity, ip_timeline
from enrichment.domain.model import Assessment, Baseline, Explanation, TableBaseline, UserEvidence, Verdict
from enrichment.queries.pivots import Pivot
from enrichment.render.asn_names import ATTRIBUTION, ATTRIBUTION_URL, asn_label
from enrichment.render.story import Brief, clock, explanation_phrases, explanation_text, name_asns, utc

#: Longest value shown in a cell or line; longer values (user agents) are clipped with an ellipsis.
CELL_CHARS = 120
#: The address list is a summary, not an export.
ADDRESS_ROWS = 40
#: UniqueTokenIdentifiers listed per lifted session; the pivot query lists them all.
TOKEN_IDS_SHOWN = 6


def esc(value: object, limit: int = CELL_CHARS) -> str:
    """
    `value` escaped for HTML, at most `limit` characters of OUTPUT.

    Control, bidi and invisible characters are removed first (`common.text.safe_text`): escaping
    does not stop NUL, ESC or a right-to-left override from changing what the analyst reads.
    Characters are escaped one by one and whole escapes are kept, so a clip never cuts an entity
    in half and a value of quotes (six characters each once escaped) cannot outgrow its budget.
    """
    text = "" if value is None else safe_text(value)
    escaped = html.escape(text, quote=True)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for char in text:
        piece = html.escape(char, quote=True)
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + "\u2026"


@dataclass(frozen=True, slots=True)
class Fragment:
    """
    A piece of an account's section: `head`, then as many `items` as fit, then `tail`, with a note
    naming `noun` for the items left out (`extra` were left out before, e.g. a list's own cap).
    Lower `priority` is kept first.
    """

    priority: int
    head: str
    items: tuple[str, ...] = ()
    tail: str = ""
    noun: str = ""
    extra: int = 0


def _heading(evidence: UserEvidence, brief: Brief) -> str:
    who = esc(brief.name, 160)
    upn = f" <small>({esc(brief.user, 160)})</small>" if brief.name != brief.user else ""
    return f"<h4>{who}{upn}</h4><p><b>{esc(brief.headline, 200)}</b></p><p>{esc(brief.story, 800)}</p>"


def _steps(brief: Brief) -> str:
    steps = "".join(f"<li>{esc(step, 600)}</li>" for step in brief.next_steps)
    classification = (
        f"<p><b>Suggested classification</b>: {esc(brief.classification.label, 80)}: {esc(brief.classification.why, 300)}.</p>"
    )
    return f"<p><b>Next steps</b>:</p><ol>{steps}</ol>{classification}"


def _warnings(evidence: UserEvidence) -> list[str]:
    truncated = (
        ["the evidence was truncated at the row cap: the sign-ins farthest from the incident time are missing"]
        if evidence.truncated
        else []
    )
    return [*truncated, *evidence.warnings]


def _status(activity: IpActivity, assessment: Assessment, by_ip: dict[str, list[Explanation]]) -> str:
    reasons = by_ip.get(activity.ip, [])
    if activity.ip in assessment.suspect_ips:
        if reasons:
            kinds = ", ".join(dict.fromkeys(explanation_text(e.kind.value) for e in reasons))
            return f"<b>suspect</b> (partly explained: {esc(kinds, 200)}; a signal still holds)"
        return "<b>suspect</b>: no benign explanation"
    if reasons:
        return "explained: " + esc(explanation_phrases(activity.ip, reasons), 400)
    return "no signal"


def _address_item(activity: IpActivity, assessment: Assessment, by_ip: dict[str, list[Explanation]], day: object) -> str:
    where = ", ".join([*activity.cities[:1], *activity.countries[:2]]) or "location unknown"
    network = asn_label(activity.asn) or "AS unknown"
    counts = f"{activity.interactive} interactive, {activity.non_interactive} non-interactive"
    if activity.failures:
        counts += f", {activity.failures} failed"
    span = f"{clock(activity.first, day)} to {clock(activity.last, day)} UTC"  # type: ignore[arg-type]
    apps = ", ".join(activity.apps[:3]) + (f" and {len(activity.apps) - 3} more" if len(activity.apps) > 3 else "")
    return (
        f"<li><b>{esc(activity.ip, 45)}</b>: {_status(activity, assessment, by_ip)}<br>"
        f"{esc(where, 80)} · {esc(network, 100)}<br>"
        f"{counts} · {esc(span)}<br>"
        f"Apps: {esc(apps or 'none named', 160)}</li>"
    )


def _table_line(part: TableBaseline | None, name: str) -> str:
    if part is None:
        return f"<li>{esc(name)}: no sign-ins</li>"
    asns = ", ".join(asn_label(a) for a in sorted(part.asns)[:6]) or "none"
    more = f" and {len(part.asns) - 6} more" if len(part.asns) > 6 else ""
    countries = ", ".join(sorted(part.countries)[:8]) or "none"
    return (
        f"<li>{esc(name)}: {part.events} sign-ins on {part.days_active} day(s) from {part.distinct_ips} address(es); "
        f"networks {esc(asns, 600)}{more}; countries {esc(countries)}</li>"
    )


def _baseline(baseline: Baseline) -> str:
    days = (baseline.window.end - baseline.window.start).days
    head = (
        f"<p><b>Baseline</b> ({days} days before the window, {esc(utc(baseline.window.start))} to "
        f"{esc(utc(baseline.window.end))}):</p>"
    )
    if baseline.empty:
        return head + "<ul><li>no sign-ins in the baseline: the user's usual addresses, networks and apps are unknown</li></ul>"
    return (
        head
        + "<ul>"
        + _table_line(baseline.interactive, "interactive")
        + _table_line(baseline.non_interactive, "non-interactive")
        + "</ul>"
    )


def _sessions(brief: Brief) -> list[str]:
    items = []
    for session in brief.sessions:
        tokens = ", ".join(session.token_ids[:TOKEN_IDS_SHOWN]) or "none recorded"
        more = f" and {len(session.token_ids) - TOKEN_IDS_SHOWN} more" if len(session.token_ids) > TOKEN_IDS_SHOWN else ""
        items.append(
            f"<li>SessionId <code>{esc(session.session_id, 80)}</code>: born at {esc(session.born_ip, 45)} "
            f"({esc(session.born_place, 160)}), used from {esc(', '.join(session.used_ips), 200)}.<br>"
            f"UniqueTokenIdentifiers of its suspect sign-ins: <code>{esc(tokens, 400)}</code>{more}</li>"
        )
    return items


def _pivot(pivot: Pivot) -> str:
    links = [
        (pivot.log_analytics, "Open in Log Analytics"),
        (pivot.advanced_hunting, "Open in Defender advanced hunting"),
        (pivot.entra_signins, "The user's Entra sign-in logs"),
    ]
    shown = " · ".join(f'<a href="{esc(url, 20000)}">{text}</a>' for url, text in links if url)
    query = "<br>".join(esc(line, 2000) for line in pivot.query.splitlines())
    return (
        "<p><b>Pivot</b>: the sign-ins of the lifted sessions and suspect addresses in both tables"
        + (f": {shown}" if shown else "")
        + f".</p><p><code>{query}</code></p>"
    )


def attribution() -> str:
    """The credit the AS-name data's licence asks for."""
    return f'<p><small><a href="{ATTRIBUTION_URL}">{esc(ATTRIBUTION)}</a></small></p>'


def account_fragments(evidence: UserEvidence, assessment: Assessment, brief: Brief, pivot: Pivot | None = None) -> list[Fragment]:
    """One account's section in reading order; the first fragment is the heading the others belong to."""
    fragments = [Fragment(1, _heading(evidence, brief))]
    if brief.incident_lines:
        items = tuple(f"<li>{esc(line, 500)}</li>" for line in brief.incident_lines)
        fragments.append(Fragment(1, "<p><b>The incident's addresses</b>:</p><ul>", items, "</ul>", "addresses"))
    if brief.facts:
        items = tuple(f"<li>{esc(label, 60)}: {esc(value, 300)}</li>" for label, value in brief.facts)
        fragments.append(Fragment(1, "<p><b>Who</b>:</p><ul>", items, "</ul>", "facts"))
    fragments.append(Fragment(1, _steps(brief)))
    warnings = _warnings(evidence)
    if warnings:
        items = tuple(f"<li>{esc(w, 300)}</li>" for w in warnings)
        fragments.append(Fragment(1, "<p><b>Data warnings</b>:</p><ul>", items, "</ul>", "warnings"))
    if assessment.gaps:
        items = tuple(f"<li>{esc(gap.sentence(), 600)}</li>" for gap in assessment.gaps)
        fragments.append(Fragment(1, "<p><b>Missing evidence</b>:</p><ul>", items, "</ul>", "gaps"))
    signals = sorted(assessment.signals, key=lambda s: -s.weight)
    if signals:
        items = tuple(f"<li>{esc(name_asns(s.detail), 500)} <i>(+{s.weight})</i></li>" for s in signals)
        fragments.append(
            Fragment(2, f"<p><b>Evidence</b> ({len(signals)} signal(s), strongest first):</p><ul>", items, "</ul>", "signals")
        )
    elif assessment.verdict is Verdict.INSUFFICIENT_EVIDENCE:
        fragments.append(Fragment(2, "<p>No replay signal in the evidence that could be read.</p>"))
    else:
        fragments.append(Fragment(2, "<p>No replay signal in the window.</p>"))
    timeline = ip_timeline(evidence.signins)
    if timeline:
        by_ip: dict[str, list[Explanation]] = {}
        for explanation in assessment.explanations:
            by_ip.setdefault(explanation.ip, []).append(explanation)
        suspects = set(assessment.suspect_ips)
        ordered = sorted(timeline, key=lambda t: (t.ip not in suspects, -t.total, t.first, t.ip))
        items = tuple(_address_item(t, assessment, by_ip, evidence.at) for t in ordered[:ADDRESS_ROWS])
        head = "<p><b>Addresses</b> (suspect first, then by volume; times UTC):</p><ul>"
        fragments.append(Fragment(3, head, items, "</ul>", "addresses", extra=max(len(ordered) - ADDRESS_ROWS, 0)))
    sessions = _sessions(brief)
    if sessions:
        fragments.append(Fragment(2, "<p><b>Lifted sessions</b>:</p><ul>", tuple(sessions), "</ul>", "sessions"))
    if pivot is not None:
        fragments.append(Fragment(2, _pivot(pivot)))
    fragments.append(Fragment(3, _baseline(evidence.baseline)))
    return fragments


def account_html(evidence: UserEvidence, assessment: Assessment, brief: Brief, pivot: Pivot | None = None) -> str:
    """The whole section, nothing dropped (the offline report)."""
    return "".join(f.head + "".join(f.items) + f.tail for f in account_fragments(evidence, assessment, brief, pivot))
