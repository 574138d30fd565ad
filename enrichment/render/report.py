"""
The offline report: the comment's content for a browser or a printer, plus a timeline picture per account.

One self-contained HTML file (`triage --format html`, `playbooks run` writes `report.html`): inline CSS
and SVG, no script, no font or image from the network (a Content-Security-Policy says so to the
browser), readable at 480 px and printed. Every value from the evidence is escaped by the fragments
it is made of (`enrichment.render.html`, `enrichment.render.timeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from enrichment.domain.model import Assessment, UserEvidence
from enrichment.queries.pivots import Pivot
from enrichment.render.html import account_html, attribution, esc
from enrichment.render.story import Brief, utc
from enrichment.render.timeline import legend, timeline_svg

_STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; padding: 12px;
       max-width: 1100px; color: #1b1b1b; overflow-wrap: anywhere; }
h1 { font-size: 1.3em; margin: 0 0 4px; } h4 { font-size: 1.15em; margin: 18px 0 4px; }
section { border-top: 2px solid #ccc; margin-top: 16px; }
code { font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; word-break: break-all; }
a { overflow-wrap: anywhere; word-break: break-all; }
ul, ol { padding-left: 22px; } li { margin: 3px 0; }
.picture { margin: 10px 0; } .picture svg { display: block; width: 100%; height: auto; max-width: 100%; }
.legend { font-size: 12px; color: #444; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  section { break-before: page; border: 0; } section:first-of-type { break-before: auto; }
  .picture, li { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True, slots=True)
class ReportSection:
    """One account: what was gathered, what was decided, its brief and its pivot."""

    evidence: UserEvidence
    assessment: Assessment
    brief: Brief
    pivot: Pivot | None = None


def report_html(title: str, sections: Sequence[ReportSection], *, generated_at: datetime, notes: Sequence[str] = ()) -> str:
    """The whole report as one HTML document."""
    body = [f"<h1>{esc(title, 300)}</h1><p>Generated {esc(utc(generated_at))}.</p>"]
    if notes:
        body.append("<ul>" + "".join(f"<li>{esc(n, 400)}</li>" for n in notes) + "</ul>")
    for section in sections:
        picture = timeline_svg(section.evidence, section.assessment)
        content = account_html(section.evidence, section.assessment, section.brief, section.pivot)
        # The picture goes right after the brief: before the evidence lists it explains.
        split = content.find("<p><b>Evidence</b>")
        split = split if split >= 0 else content.find("<p>No replay signal")
        head, tail = (content[:split], content[split:]) if split >= 0 else (content, "")
        body.append(f'<section>{head}<div class="picture">{picture}</div>{legend(section.evidence)}{tail}</section>')
    if not sections:
        body.append("<p>No account was assessed.</p>")
    body.append(attribution())
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title, 200)}</title><style>{_STYLE}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
