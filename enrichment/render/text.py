"""
`triage --format text`: the brief and the evidence for a terminal, as a person reads them.

The same content as the comment, in the same order: the headline (with the points found when the
score is capped), the story, the incident's addresses, the next steps and the suggested
classification, then every signal (or the heaviest and "and N more"), every address with suspects
marked, the lifted sessions and the baseline. Times are to the minute with their zone. Terminal
control characters in sign-in values are replaced, so a hostile user agent cannot rewrite the screen.
"""

from __future__ import annotations

import re

from enrichment.domain.evidence import ip_timeline
from enrichment.domain.model import Assessment, Explanation, TableBaseline, UserEvidence
from enrichment.render.asn_names import ATTRIBUTION, asn_label
from enrichment.render.story import Brief, explanation_phrases, name_asns, utc

#: Signals listed before "and N more".
TEXT_SIGNALS = 12
#: Addresses listed before "and N more".
TEXT_ADDRESSES = 30

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(value: object) -> str:
    """One line of text with control, escape and bidi characters replaced by '?'."""
    return _CONTROL.sub("?", str(value).replace("\n", " "))


def _baseline_line(name: str, part: TableBaseline | None) -> str:
    if part is None:
        return f"  {name}: no sign-ins"
    networks = ", ".join(asn_label(a) for a in sorted(part.asns)[:4]) or "none"
    more = f" and {len(part.asns) - 4} more" if len(part.asns) > 4 else ""
    return (
        f"  {name}: {part.events} sign-ins on {part.days_active} day(s) from {part.distinct_ips} address(es); "
        f"networks {networks}{more}; countries {', '.join(sorted(part.countries)[:8]) or 'none'}"
    )


def text_report(evidence: UserEvidence, assessment: Assessment, brief: Brief) -> str:
    """One account as text (see the module docstring)."""
    who = clean(brief.name) + (f" ({clean(brief.user)})" if brief.name != brief.user else "")
    lines = [f"{brief.headline.upper()} for {who}", f"  {clean(brief.story)}"]
    lines.extend(f"  {clean(line)}" for line in brief.incident_lines)
    lines.append("Next steps:")
    lines.extend(f"  {number}. {clean(step)}" for number, step in enumerate(brief.next_steps, start=1))
    lines.append(f"Suggested classification: {brief.classification.label}: {clean(brief.classification.why)}.")
    lines.append(
        f"Window {utc(evidence.window.start)} to {utc(evidence.window.end)}: {sum(s.count for s in evidence.signins)} sign-ins"
    )
    if evidence.truncated:
        lines.append("WARNING: the evidence was truncated at the row cap")
    lines.extend(f"WARNING: {w}" for w in evidence.warnings)
    lines.extend(f"MISSING EVIDENCE: {clean(gap.sentence())}" for gap in assessment.gaps)
    signals = sorted(assessment.signals, key=lambda s: -s.weight)
    lines.append("")
    lines.append(f"Signals ({len(signals)}):" if signals else "Signals: none in the window")
    lines.extend(f"  +{s.weight:<3} {clean(name_asns(s.detail))}" for s in signals[:TEXT_SIGNALS])
    if len(signals) > TEXT_SIGNALS:
        lines.append(f"  and {len(signals) - TEXT_SIGNALS} more")
    by_ip: dict[str, list[Explanation]] = {}
    for explanation in assessment.explanations:
        by_ip.setdefault(explanation.ip, []).append(explanation)
    suspects = set(assessment.suspect_ips)
    timeline = sorted(ip_timeline(evidence.signins), key=lambda t: (t.ip not in suspects, -t.total, t.first, t.ip))
    lines.append("")
    lines.append("Addresses (* suspect; times UTC):")
    for activity in timeline[:TEXT_ADDRESSES]:
        mark = "*" if activity.ip in suspects else " "
        where = ", ".join([*activity.cities[:1], *activity.countries[:2]]) or "location unknown"
        failed = f", {activity.failures} failed" if activity.failures else ""
        lines.append(
            f" {mark} {clean(activity.ip)}  {clean(where)}  {clean(asn_label(activity.asn) or 'AS unknown')}  "
            f"{activity.interactive} interactive, {activity.non_interactive} non-interactive{failed}  "
            f"{activity.first:%Y-%m-%d %H:%M} to {activity.last:%Y-%m-%d %H:%M} UTC"
        )
        reasons = by_ip.get(activity.ip)
        if reasons:
            state = "partly explained, still suspect" if activity.ip in suspects else "explained"
            lines.append(f"      {state}: {clean(explanation_phrases(activity.ip, reasons))}")
    if len(timeline) > TEXT_ADDRESSES:
        lines.append(f"   and {len(timeline) - TEXT_ADDRESSES} more")
    for session in brief.sessions:
        lines.append("")
        lines.append(
            f"Lifted session {clean(session.session_id)}: born at {clean(session.born_ip)} ({clean(session.born_place)})"
        )
        lines.append(
            f"  used from {clean(', '.join(session.used_ips))}; UniqueTokenIdentifiers: {clean(', '.join(session.token_ids))}"
        )
    baseline = evidence.baseline
    lines.append("")
    lines.append(f"Baseline ({(baseline.window.end - baseline.window.start).days} days before the window):")
    lines.append(_baseline_line("SigninLogs", baseline.interactive))
    lines.append(_baseline_line("AADNonInteractiveUserSignInLogs", baseline.non_interactive))
    for event in evidence.security_events:
        lines.append(
            f"Security info: {utc(event.time)} {clean(event.operation)} by {clean(event.actor or 'unknown')} "
            f"from {clean(event.actor_ip or 'unknown address')}"
        )
    lines.append(ATTRIBUTION)
    return "\n".join(lines)
