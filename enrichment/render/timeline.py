"""
The timeline picture: one row per address, time across the evidence window, as inline SVG.

Marks: a filled circle per group of interactive sign-ins, a bar per group of non-interactive ones
(token refreshes), a cross for failures; suspect rows are shaded and labelled in bold; security-info
and device registrations from AuditLogs are dashed vertical lines with a diamond, and the incident
time is a solid line. Every mark carries a `<title>` (a tooltip in a browser, no script needed).

The SVG scales to its container (`viewBox`, width 100%), so it never scrolls sideways, and it prints
in black and grey as well as in colour (shapes, not only colours, tell the kinds apart). Everything
drawn that came from a sign-in row or an audit record is XML-escaped.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from common.text import safe_text
from enrichment.domain.evidence import ip_timeline
from enrichment.domain.model import Assessment, SignIn, UserEvidence
from enrichment.render.asn_names import asn_name

WIDTH = 1000
LABEL = 250  # px for the address labels on the left
ROW = 22
TOP = 34  # room for the axis labels and event markers
#: Rows drawn; further addresses are counted under the picture.
MAX_ROWS = 30

_SUSPECT_FILL = "#fde2e1"
_INTERACTIVE = "#1f5fbf"
_NON_INTERACTIVE = "#6b7f99"
_FAILURE = "#b3261e"
_EVENT = "#7a3db8"


def _x(moment: datetime, start: datetime, span: float) -> float:
    offset = (moment - start).total_seconds()
    return LABEL + max(0.0, min(1.0, offset / span)) * (WIDTH - LABEL - 10)


# Characters XML 1.0 does not allow at all (a browser refuses the whole SVG): replaced, not escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _e(value: object, limit: int = 200) -> str:
    text = safe_text(_NOT_XML.sub("?", str(value)))  # controls shown as "?", then bidi and invisible ones dropped
    return html.escape(text[:limit] + ("\u2026" if len(text) > limit else ""), quote=True)


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    hours = (end - start).total_seconds() / 3600
    step = next((h for h in (1, 2, 3, 6, 12, 24, 48) if hours / h <= 8), 96)
    first = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first += timedelta(hours=(-first.hour) % step)
    ticks = []
    moment = first
    while moment <= end:
        ticks.append(moment)
        moment += timedelta(hours=step)
    return ticks


def _mark(signin: SignIn, x: float, y: float) -> str:
    when = signin.first.strftime("%Y-%m-%d %H:%M")
    tip = _e(
        f"{when} UTC: {signin.count} {'interactive' if signin.interactive else 'non-interactive'} sign-in(s), "
        f"{signin.app or signin.app_id or 'app unknown'}" + ("" if signin.succeeded else f", failed ({signin.result_type})"),
        300,
    )
    if not signin.succeeded:
        return (
            f'<g class="failure"><title>{tip}</title><path d="M{x - 4:.1f},{y - 4:.1f} l8,8 m0,-8 l-8,8" '
            f'stroke="{_FAILURE}" stroke-width="2"/></g>'
        )
    if signin.interactive:
        return (
            f'<circle class="interactive" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{_INTERACTIVE}"><title>{tip}</title></circle>'
        )
    return (
        f'<rect class="non-interactive" x="{x - 1.5:.1f}" y="{y - 6:.1f}" width="3" height="12" '
        f'fill="{_NON_INTERACTIVE}"><title>{tip}</title></rect>'
    )


def timeline_svg(evidence: UserEvidence, assessment: Assessment) -> str:
    """The picture of one account's window (an empty-state sentence in SVG when there is no sign-in)."""
    start, end = evidence.window.start, evidence.window.end
    span = max((end - start).total_seconds(), 1.0)
    suspects = set(assessment.suspect_ips)
    activities = sorted(ip_timeline(evidence.signins), key=lambda a: (a.ip not in suspects, a.first, a.ip))
    shown = activities[:MAX_ROWS]
    height = TOP + ROW * max(len(shown), 1) + 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-label="Sign-ins per address over the evidence window" font-family="sans-serif" font-size="11">'
    ]
    bottom = TOP + ROW * max(len(shown), 1)
    for tick in _ticks(start, end):
        x = _x(tick, start, span)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#444">{tick:%m-%d %H:%M}</text>')
    parts.append(f'<text x="{LABEL}" y="{height - 2}" fill="#444">UTC</text>')
    for index, activity in enumerate(shown):
        y = TOP + ROW * index + ROW / 2
        suspect = activity.ip in suspects
        if suspect:
            parts.append(
                f'<rect class="suspect-row" x="0" y="{y - ROW / 2:.1f}" width="{WIDTH}" height="{ROW}" fill="{_SUSPECT_FILL}"/>'
            )
        network = asn_name(activity.asn)
        label = activity.ip + (f" {network}" if network else "")
        weight = ' font-weight="bold"' if suspect else ""
        parts.append(
            f'<text x="4" y="{y + 4:.1f}"{weight}><title>{_e(label, 300)}</title>{_e(label, 38)}'
            + (" (suspect)" if suspect else "")
            + "</text>"
        )
        parts.append(f'<line x1="{LABEL}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="#eee"/>')
        for signin in evidence.signins:
            if signin.ip == activity.ip:
                parts.append(_mark(signin, _x(signin.first, start, span), y))
    if not shown:
        parts.append(f'<text x="{LABEL}" y="{TOP + 14}">No sign-in in the window.</text>')
    for event in evidence.security_events:
        x = _x(event.time, start, span)
        tip = _e(
            f"{event.time:%Y-%m-%d %H:%M} UTC: {event.operation} ({event.result}) by {event.actor or 'unknown'} from {event.actor_ip or 'unknown address'}",
            400,
        )
        parts.append(
            f'<g class="security-event"><title>{tip}</title>'
            f'<line x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{bottom}" stroke="{_EVENT}" stroke-dasharray="4 3"/>'
            f'<path d="M{x:.1f},{TOP - 16} l5,5 l-5,5 l-5,-5 z" fill="{_EVENT}"/></g>'
        )
    at = _x(evidence.at, start, span)
    parts.append(
        f'<g class="incident-time"><title>incident time {evidence.at:%Y-%m-%d %H:%M} UTC</title>'
        f'<line x1="{at:.1f}" y1="{TOP - 20}" x2="{at:.1f}" y2="{bottom}" stroke="#000" stroke-width="1.5"/>'
        f'<text x="{at + 3:.1f}" y="{TOP - 22}">incident</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)


def legend(evidence: UserEvidence) -> str:
    """The key under the picture, as HTML, with the count of addresses not drawn."""
    rows = len(ip_timeline(evidence.signins))
    more = f" {rows - MAX_ROWS} more address(es) are not drawn." if rows > MAX_ROWS else ""
    return (
        '<p class="legend"><span style="color:#1f5fbf">●</span> interactive sign-in · '
        '<span style="color:#6b7f99">▮</span> non-interactive (token refresh) · '
        '<span style="color:#b3261e">✕</span> failed · <span style="color:#7a3db8">◆</span> MFA or device change (AuditLogs) · '
        f"shaded rows are suspect · the black line is the incident time.{more}</p>"
    )
