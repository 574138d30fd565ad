"""What a delivery asks for: the alert ids read from the body, the follow-up's id, and the decision over the incident's runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playbooks.domain.deliveries import (
    MAX_ALERT_IDS,
    Duplicate,
    Later,
    RunSeen,
    Start,
    alert_ids,
    decide,
    follow_up_id,
    is_follow_up,
)
from playbooks.domain.workflow import EarlierRequest
from tests.reference import REFERENCE
from tests.unit.test_workflow_contract import INCIDENT

PAYLOADS = REFERENCE / "payloads"
needs_payloads = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="reference payloads not available")
FIRST = "incident-73e01a99-5cd7-4139-a149-9f2736ff2ab5"
CARD = EarlierRequest(f"{FIRST}:approval:0:20260301T090000", "d" * 32)


def _trigger(alerts: Any, key: str = "alerts") -> dict[str, Any]:
    return {"objectSchemaType": "Incident", "object": {"id": "x", "properties": {"title": "t", key: alerts}}}


class TestAlertIds:
    @needs_payloads
    def test_the_alert_entities_of_sentinels_rest_examples_give_their_system_alert_ids(self) -> None:
        """The trigger's alerts have the shape of `GET .../incidents/{id}/alerts` (the REST spec's and a real workspace's answer)."""
        spec = json.loads((PAYLOADS / "rest_api_spec_examples" / "GetAllIncidentAlerts.json").read_text())
        real = json.loads(
            (PAYLOADS / "ibm_resilient_fn_microsoft_sentinel" / "rest_responses_AzureSentinelDemo.json").read_text()
        )
        alerts = spec["responses"]["200"]["body"]["value"] + real["list_incident_alerts_response"]["value"]

        assert alert_ids(_trigger(alerts)) == ("baa8a239-6fde-4ab7-a093-d09f7b75c58c", "ec7cd79e-dd28-5e7b-094d-af3574027758")

    def test_bare_resource_any_key_case_and_the_name_when_there_is_no_system_id(self) -> None:
        """A bare incident resource, `Alerts` spelt as some playbooks do, an alert with only its name: all read, lower-case, sorted."""
        body = _trigger([{"name": "B-2"}, {"properties": {"systemAlertId": "A-1"}}, {"name": "b-2"}], key="Alerts")["object"]

        assert alert_ids(body) == ("a-1", "b-2")

    @pytest.mark.parametrize(
        "alerts",
        [None, [], "A", [None, 3, "x", {"name": ""}, {"name": "../../x"}, {"name": "a" * 200}, {"properties": "y"}]],
        ids=["absent", "empty (Defender portal incidents)", "not a list", "junk"],
    )
    def test_no_usable_alert_gives_no_ids(self, alerts: Any) -> None:
        """Absent, empty or malformed alerts give no ids (the delivery is decided as it always was), never an error."""
        assert alert_ids(_trigger(alerts)) == ()
        assert alert_ids("not an incident") == ()

    def test_at_most_the_cap_is_kept(self) -> None:
        """A body naming thousands of alerts keeps MAX_ALERT_IDS of them (Sentinel groups at most 150 into an incident)."""
        body = _trigger([{"name": f"alert-{n:05d}"} for n in range(5000)])

        assert len(alert_ids(body)) == MAX_ALERT_IDS


class TestFollowUpId:
    def test_the_id_is_the_sha256_of_the_sorted_set(self) -> None:
        """Order and repeats do not change the follow-up's id; another set does."""
        assert follow_up_id(FIRST, ["b", "a", "b"]) == follow_up_id(FIRST, ["a", "b"])
        assert follow_up_id(FIRST, ["a", "b"]) == f"{FIRST}:alerts-" + "7e18f737311b2dc3"  # sha256("a\nb")[:16]
        assert follow_up_id(FIRST, ["a", "b", "c"]) != follow_up_id(FIRST, ["a", "b"])

    def test_only_follow_ups_of_this_incident_are_follow_ups(self) -> None:
        """An approval sub-orchestration of a follow-up (same prefix) and another incident's follow-up are not."""
        target = follow_up_id(FIRST, ["a"])
        assert is_follow_up(FIRST, target)
        assert not is_follow_up(FIRST, f"{target}:approval:0:20260301T090000")
        assert not is_follow_up(FIRST, target.replace(FIRST, "incident-00000000-5cd7-4139-a149-9f2736ff2ab5"))


class TestDecide:
    def test_a_first_run_that_no_longer_counts_runs_again_with_the_follow_ups_requests(self) -> None:
        """Failed or old first run: it runs again with every alert; a follow-up still waiting on a card passes its request on."""
        target = follow_up_id(FIRST, ["a", "b"])
        decision = decide(
            INCIDENT, ("a", "b"), RunSeen(FIRST, None), [RunSeen(target, "running", frozenset({"a", "b"}), True, (CARD,))]
        )

        assert isinstance(decision, Start)
        assert (decision.instance_id, decision.run_input.follow_up, decision.run_input.earlier_requests) == (FIRST, None, (CARD,))

    def test_new_alerts_start_the_follow_up_named_after_every_alert_covered(self) -> None:
        """First run covers a; b arrives: the follow-up for {a, b}, with b as the only new alert."""
        decision = decide(INCIDENT, ("a", "b"), RunSeen(FIRST, "enriched 3 minute(s) ago", frozenset({"a"}), True, (CARD,)))

        assert isinstance(decision, Start)
        assert decision.instance_id == follow_up_id(FIRST, ["a", "b"])
        assert decision.run_input.follow_up is not None
        assert decision.run_input.follow_up.new_alert_ids == ("b",)
        assert decision.run_input.earlier_requests == (CARD,)

    def test_a_pending_follow_up_without_a_published_status_is_a_duplicate_by_its_id(self) -> None:
        """The follow-up was started a moment ago and has said nothing yet: the same set delivered again is its duplicate."""
        target = follow_up_id(FIRST, ["a", "b"])
        decision = decide(
            INCIDENT, ("a", "b"), RunSeen(FIRST, "recent", frozenset({"a"})), [RunSeen(target, "pending", None, False)]
        )

        assert decision == Duplicate(target, "pending")

    def test_a_run_still_enriching_makes_new_alerts_wait(self) -> None:
        """New alerts while a run that counts has not published its approvals: `Later`, naming that run."""
        decision = decide(INCIDENT, ("a", "b"), RunSeen(FIRST, "running", frozenset({"a"}), False))

        assert isinstance(decision, Later)
        assert decision.instance_id == FIRST
