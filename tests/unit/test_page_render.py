"""The incident comment and the offline report rendered in headless Chromium at 480 and 1200 px (screenshots in tests/card/out/)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from enrichment.render.report import ReportSection, report_html
from enrichment.render.story import Context, brief
from playbooks.render.comment import AccountReport, enrichment_comment
from tests.unit import card_samples as s
from tests.unit.test_comment import HOSTILE as COMMENT_HOSTILE
from tests.unit.test_comment import NOW, _incident, _report

pytestmark = pytest.mark.slow

CARD_DIR = Path(__file__).resolve().parents[1] / "card"
OUT_DIR = CARD_DIR / "out"
WIDTHS = [480, 1200]
# Sentinel's comment pane shows the comment's HTML in its own page: no CSS of ours, its default font.
PANE = "<!doctype html><html><head><meta charset='utf-8'></head><body style='margin:0;font:14px sans-serif'>{}</body></html>"


def _pages() -> dict[str, str]:
    evidence, assessment = s.typical()
    hostile_evidence, hostile_assessment = s.hostile()
    sections = [
        ReportSection(evidence, assessment, brief(evidence, assessment, Context(incident_ips=("198.51.100.7",)))),
        ReportSection(hostile_evidence, hostile_assessment, brief(hostile_evidence, hostile_assessment)),
    ]
    return {
        "comment": PANE.format(
            enrichment_comment(
                _incident(), [_report(ips=30), AccountReport(evidence, assessment)], max_chars=30_000, generated_at=NOW
            )
        ),
        "comment_hostile": PANE.format(
            enrichment_comment(
                _incident(title=COMMENT_HOSTILE), [_report(hostile=COMMENT_HOSTILE)], max_chars=30_000, generated_at=NOW
            )
        ),
        "report": report_html("Token replay triage", sections, generated_at=s.AT),
    }


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """Every page rendered once per width, in one browser."""
    chromium = shutil.which("chromium")
    node = shutil.which("node")
    if chromium is None or node is None or not (CARD_DIR / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail(
            "the renderer is not set up: run `bash scripts/setup.sh --dev` (installs chromium and tests/card/node_modules)"
        )
    pages = [{"name": name, "html": html, "widths": WIDTHS} for name, html in _pages().items()]
    done = subprocess.run(
        [node, str(CARD_DIR / "page.mjs")],
        input=json.dumps({"chromium": chromium, "outDir": str(OUT_DIR), "pages": pages}),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    output["by_key"] = {(r["name"], r["width"]): r for r in output["results"]}
    return output


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["comment", "comment_hostile", "report"])
def test_no_horizontal_scroll(rendered: dict[str, Any], name: str, width: int) -> None:
    """The page is never wider than the viewport: no sideways scrolling in the 480 px pane or on a desktop."""
    result = rendered["by_key"][(name, width)]
    assert result["scrollWidth"] <= result["clientWidth"], (name, width)
    assert result["pageErrors"] == []
    assert result["console"] == []


def test_nothing_was_loaded_and_no_script_ran(rendered: dict[str, Any]) -> None:
    """The pages are self-contained: no request left the page, and no script element exists."""
    assert rendered["blockedRequests"] == []
    assert all(r["scripts"] == 0 for r in rendered["results"])


def test_hostile_values_are_shown_as_text(rendered: dict[str, Any]) -> None:
    """A hostile title and sign-in values appear as characters, never as markup or a link."""
    result = rendered["by_key"][("comment_hostile", 480)]
    assert "<script>alert('x')</script>" in result["text"]
    assert all(link.startswith("https://") for link in result["links"])
    report = rendered["by_key"][("report", 1200)]
    assert "[Approve](https://evil.example/pwn)" in report["text"]
    assert not [link for link in report["links"] if "evil.example" in (link or "")]


def test_the_brief_comes_first_and_screenshots_are_kept(rendered: dict[str, Any]) -> None:
    """The story and next steps precede the evidence; a PNG of each page is written for a person to look at."""
    text = rendered["by_key"][("report", 1200)]["text"]
    assert text.index("The session opened in") < text.index("Next steps") < text.index("Evidence")
    for result in rendered["results"]:
        assert Path(result["screenshot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
