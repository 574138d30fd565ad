"""The approval cards rendered by the official Adaptive Cards JavaScript renderer in headless Chromium (screenshots in tests/card/out/)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.settings import OPTIONAL_ACTIONS, Settings
from enrichment.domain.model import Account
from enrichment.render.story import Context, Identity
from playbooks.domain.footholds import AttackerForwarding
from playbooks.domain.plan import (
    ActionKind,
    ActionResult,
    ActionStatus,
    ContainmentPlan,
    Decision,
    attack_disruption,
    plan_containment,
)
from playbooks.render.card import ActionData, already_decided_card, card_for, expired_card, recorded_card, refused_card
from tests.unit import card_samples as s

pytestmark = pytest.mark.slow

CARD_DIR = Path(__file__).resolve().parents[1] / "card"
OUT_DIR = CARD_DIR / "out"
EVIL = "https://evil.example/pwn"


def _decision() -> Decision:
    plan = s.plan_for(s.typical()[1])
    return Decision(
        True, plan.digest, "aaaaaaaa-0000-4000-8000-000000000001", "alex@contoso.example", s.AT + timedelta(minutes=9)
    )


def _cards() -> dict[str, dict[str, Any]]:
    evidence, assessment = s.typical()
    plan = s.plan_for(assessment)
    hostile_evidence, hostile_assessment = s.hostile()
    hostile_plan = s.plan_for(hostile_assessment)
    common = {"instance_id": s.INSTANCE_ID, "expires_at": s.EXPIRES}
    data = ActionData.for_plan(s.INCIDENT, plan, **common)
    results = (
        ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "all sessions revoked", "5b1e0c7a-req"),
        ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, "3 methods; 1 flagged: phone added from 198.51.100.7"),
        ActionResult(ActionKind.DISABLE_ACCOUNT, ActionStatus.FAILED, "403 Authorization_RequestDenied", "9c2d-req"),
    )
    return {
        "pending": card_for(s.INCIDENT, evidence, assessment, plan, **common),
        "fuller": card_for(s.INCIDENT, hostile_evidence, hostile_assessment, _fuller_plan(), context=_who(), **common),
        "hostile": card_for(s.INCIDENT, hostile_evidence, hostile_assessment, hostile_plan, **common),
        "running": card_for(s.INCIDENT, evidence, assessment, plan, decision=_decision(), **common),
        "outcome": card_for(s.INCIDENT, evidence, assessment, plan, decision=_decision(), results=results, **common),
        "expired": card_for(s.INCIDENT, evidence, assessment, plan, expired=True, **common),
        "recorded": recorded_card(data, _decision(), name="Alex Wilber"),
        "already_decided": already_decided_card(data, _decision(), name="Alex Wilber"),
        "refused": refused_card(
            data, f"[Approve]({EVIL})", "only members of the approver group or the listed approvers may decide"
        ),
        "expired_short": expired_card(data),
        # The control: the same hostile text NOT escaped must become a link, or the checks above prove nothing.
        "control_unescaped": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": f"[Approve]({EVIL})", "wrap": True}],
        },
    }


def _fuller_plan() -> ContainmentPlan:
    """Every optional action, disabling already done by attack disruption, hostile forwarding as a step by hand."""
    forwarding = AttackerForwarding(s.UPN, f"[Approve]({EVIL})@evil.example", s.AT, "198.51.100.66")
    return plan_containment(
        s.INCIDENT.incident_id,
        Account(s.UPN, s.USER_ID),
        s.hostile()[1],
        Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": ",".join(OPTIONAL_ACTIONS)}),
        disruption=attack_disruption("AiTM (attack disruption)"),
        forwarding=[forwarding],
    )


def _who() -> Context:
    """Identity facts whose values carry attacker-chosen names (a device called like a Markdown link)."""
    return Context(
        identity=Identity(
            "Vic Tim",
            (
                ("Job", "Controller, Finance (Microsoft Graph)"),
                ("Devices", f"1 from a suspect address: device '[Approve]({EVIL})'"),
            ),
        )
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """Every card rendered once, in one browser."""
    chromium = shutil.which("chromium")
    node = shutil.which("node")
    if chromium is None or node is None or not (CARD_DIR / "node_modules" / "adaptivecards").is_dir():
        pytest.fail(
            "the card renderer is not set up: run `bash scripts/setup.sh --dev` (installs chromium and tests/card/node_modules)"
        )
    payload = {"chromium": chromium, "outDir": str(OUT_DIR), "cards": [{"name": n, "card": c} for n, c in _cards().items()]}
    done = subprocess.run(
        [node, str(CARD_DIR / "render.mjs")], input=json.dumps(payload), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    output["by_name"] = {r["name"]: r for r in output["results"]}
    return output


def test_renderer_loaded_nothing_from_the_network(rendered: dict[str, Any]) -> None:
    """The page is built from local files only; any request it tried would be listed here."""
    assert rendered["blockedRequests"] == []
    assert rendered["renderer"].startswith("3.")


@pytest.mark.parametrize("name", [n for n in _cards() if n != "control_unescaped"])
def test_card_parses_validates_and_renders_cleanly(rendered: dict[str, Any], name: str) -> None:
    """The official renderer reports no parse or validation event, no warning and no script error for each card."""
    result = rendered["by_name"][name]
    assert result["parseEvents"] == []
    assert result["validationEvents"] == []
    assert result["console"] == []
    assert result["pageErrors"] == []
    assert "Incident 4711" in result["text"]


def test_markdown_processing_is_active_so_the_escaping_check_means_something(rendered: dict[str, Any]) -> None:
    """Unescaped, the hostile text does become a link in this renderer."""
    links = rendered["by_name"]["control_unescaped"]["links"]
    assert {"href": EVIL, "text": "Approve"} in links


def test_fuller_card_says_who_what_revoking_leaves_and_what_to_do_by_hand(rendered: dict[str, Any]) -> None:
    """The Who facts, the access-token caveat, attack disruption and the Set-Mailbox step show as plain text."""
    text = rendered["by_name"]["fuller"]["text"]
    assert "Who" in text
    assert "Controller, Finance (Microsoft Graph)" in text
    assert "access tokens already issued" in text
    assert "already done by Defender's automatic attack disruption" in text
    assert "Set-Mailbox -Identity" in text


@pytest.mark.parametrize("name", ["hostile", "refused", "fuller"])
def test_hostile_link_renders_as_literal_text(rendered: dict[str, Any], name: str) -> None:
    """A sign-in value or name like [Approve](https://evil) shows as those characters, and no element links to it."""
    result = rendered["by_name"][name]
    assert f"[Approve]({EVIL}" in result["text"]
    assert not [link for link in result["links"] if "evil.example" in (link["href"] or "")]
    assert "evil.example" not in "".join(link["href"] or "" for link in result["links"])
    assert 'href="https://evil' not in result["html"]


def test_hostile_markup_stays_text(rendered: dict[str, Any]) -> None:
    """Emphasis, code, HTML tags and date functions from a sign-in value are shown literally."""
    result = rendered["by_name"]["hostile"]
    assert "**bold** _it_ `code` <b>x</b>" in result["text"]
    assert "{{DATE(2017-02-14T06:00:00Z, SHORT)}}" in result["text"].replace("\u200b", "")
    assert "<strong>bold</strong>" not in result["html"]
    assert "<b>x</b>" not in result["html"]
    assert "<h1" not in result["html"]
    assert "<li>" not in result["html"]


def test_only_the_pending_card_offers_approve_and_reject(rendered: dict[str, Any]) -> None:
    """Buttons appear on the pending card; every later state shows none."""
    assert rendered["by_name"]["pending"]["buttons"] == [
        "Show the 1 explained address(es)",
        "Approve: revoke sessions",
        "Reject: change nothing",
        "Open incident",
    ]
    for name in ("running", "outcome", "expired", "recorded", "already_decided", "refused", "expired_short"):
        assert "Approve: revoke sessions" not in rendered["by_name"][name]["buttons"], name


def test_outcome_card_shows_each_result(rendered: dict[str, Any]) -> None:
    """The refreshed card lists who decided and each action's outcome as a person reads it."""
    text = rendered["by_name"]["outcome"]["text"]
    assert "Approved by alex@contoso.example at 2026-11-05 14:09 UTC" in text
    assert "✔ Revoke sessions: succeeded. all sessions revoked (request id 5b1e0c7a-req)" in text
    assert "✖ Disable account: failed. 403 Authorization_RequestDenied (request id 9c2d-req)" in text


def test_screenshots_are_kept(rendered: dict[str, Any]) -> None:
    """A PNG of every card is written under tests/card/out/ for a person to look at."""
    for result in rendered["results"]:
        image = Path(result["screenshot"])
        assert image.parent == OUT_DIR
        header = image.read_bytes()[:8]
        assert header == b"\x89PNG\r\n\x1a\n"
        assert image.stat().st_size > 1000
