"""The orchestrator replayed from Durable history: which activity comes next, and how each path ends."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from enrichment.domain.model import Account, Verdict
from playbooks.domain import codec
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.plan import ContainmentPlan
from playbooks.domain.workflow import (
    AccountSummary,
    CommentWritten,
    Enriched,
    EnrichmentSummary,
    EntitiesFound,
    Failure,
    Labelled,
    Notice,
    activity_result,
)
from playbooks.functions.orchestrator import (
    ACTIVITY_ENRICH,
    ACTIVITY_ENTITIES,
    ACTIVITY_LABELS,
    ACTIVITY_NOTICE,
    ENRICH,
    ENTITIES,
    LABELS,
    NOTICE,
)
from tests.app.durable_history import History, run

ALICE = Account("alice@contoso.com", "")
INCIDENT_REF = SentinelIncident(
    subscription_id="d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    resource_group="soc-rg",
    workspace_name="soc-ws",
    name="73e01a99-5cd7-4139-a149-9f2736ff2ab5",
    number=84,
    title="Token replay",
    severity="Medium",
    at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
    accounts=(ALICE,),
)
#: The orchestration input, as the HTTP starter encodes it.
INCIDENT: dict[str, Any] = codec.encode(INCIDENT_REF)
COMMENT = CommentWritten("c0ffee00-0000-4000-8000-000000000001", True, 1200)


def _summary(verdict: str, score: int, needs_approval: bool) -> EnrichmentSummary:
    plan = ContainmentPlan(INCIDENT_REF.name, ALICE, (), needs_approval, "r")
    account = AccountSummary(ALICE, Verdict(verdict), score, (), (), plan)
    return EnrichmentSummary(Verdict(verdict), (account,), 0)


def _enriched(verdict: str, score: int, needs_approval: bool) -> dict[str, Any]:
    return activity_result(Enriched(_summary(verdict, score, needs_approval), COMMENT))


STEPS = {step.name: step for step in (ENTITIES, ENRICH, LABELS, NOTICE)}


def _last_action(state: dict[str, Any]) -> tuple[str, Any]:
    """The activity the orchestrator scheduled last, and its input decoded as that activity decodes it."""
    action = state["actions"][-1][-1]
    name = action["functionName"]
    return name, codec.decode(STEPS[name].input_type, json.loads(action["input"]))


class TestPaths:
    def test_first_step_is_the_enrichment(self) -> None:
        """With accounts known, the first episode schedules enrich_incident with the incident."""
        name, payload = _last_action(run(History(INCIDENT)))

        assert name == ACTIVITY_ENRICH
        assert payload.incident == INCIDENT_REF

    def test_benign_result_labels_and_ends(self) -> None:
        """Benign: label the incident benign, then end with the outcome, no approval."""
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _enriched("benign", 10, False))

        name, payload = _last_action(run(history))
        assert (name, payload.verdict) == (ACTIVITY_LABELS, Verdict.BENIGN)

        state = run(history.completed(ACTIVITY_LABELS, activity_result(Labelled(True))))
        assert state["isDone"]
        output = state["output"]
        assert (output["outcome"], output["verdict"], output["labels"], output["incident"]) == (
            "enriched",
            "benign",
            "updated",
            84,
        )

    def test_replay_result_carries_the_plan_for_approval(self) -> None:
        """Replay likely: labelled likely, and the output keeps each account's plan for the approval step."""
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _enriched("replay_likely", 92, True))

        name, payload = _last_action(run(history))
        assert (name, payload.verdict) == (ACTIVITY_LABELS, Verdict.REPLAY_LIKELY)

        state = run(history.completed(ACTIVITY_LABELS, activity_result(Labelled(False))))
        assert state["isDone"]
        assert state["output"]["labels"] == "unchanged"
        assert state["output"]["accounts"][0]["plan"]["needs_approval"] is True

    def test_enrichment_failure_writes_the_failure_comment_and_ends(self) -> None:
        """A failure value from the enrichment becomes the failure notice, with its hint, then the end."""
        failure = Failure(
            "query the sign-in logs", "Log Analytics: forbidden (HTTP 403)", "grant Log Analytics Reader", "Log Analytics", 403
        )
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, activity_result(failure))

        name, payload = _last_action(run(history))
        assert (name, payload.notice, payload.failure.hint) == (ACTIVITY_NOTICE, Notice.FAILURE, "grant Log Analytics Reader")

        state = run(history.completed(ACTIVITY_NOTICE, activity_result(COMMENT)))
        assert state["isDone"]
        assert (state["output"]["outcome"], state["output"]["failure"]["status"], state["output"]["comment_written"]) == (
            "failed",
            403,
            True,
        )

    def test_an_activity_that_raises_is_handled_like_a_failure(self) -> None:
        """An exception in the activity (TaskFailed) is caught: failure comment, clean end, no retry loop."""
        history = History(INCIDENT).failed(ACTIVITY_ENRICH, "ValueError: unexpected")

        name, payload = _last_action(run(history))
        assert (name, payload.notice) == (ACTIVITY_NOTICE, Notice.FAILURE)
        assert "ValueError: unexpected" in payload.failure.error

        state = run(history.completed(ACTIVITY_NOTICE, activity_result(COMMENT)))
        assert (state["isDone"], state["output"]["outcome"]) == (True, "failed")

    def test_a_failed_failure_comment_still_ends(self) -> None:
        """Even when the failure comment cannot be written either, the orchestration ends (no poison loop)."""
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, activity_result(Failure("x", "y"))).failed(ACTIVITY_NOTICE, "403")

        state = run(history)

        assert (state["isDone"], state["output"]["outcome"], state["output"]["comment_written"]) == (True, "failed", False)

    def test_no_account_writes_the_notice_and_ends(self) -> None:
        """An incident naming nobody: the no-account comment, then the end; no query is run."""
        history = History(codec.encode(dataclasses.replace(INCIDENT_REF, accounts=())))

        name, payload = _last_action(run(history))
        assert (name, payload.notice) == (ACTIVITY_NOTICE, Notice.NO_ACCOUNT)

        state = run(history.completed(ACTIVITY_NOTICE, activity_result(COMMENT)))
        assert (state["isDone"], state["output"]["outcome"]) == (True, "no_account")
        assert [a["functionName"] for episode in state["actions"] for a in episode] == [ACTIVITY_NOTICE]

    def test_unknown_entities_are_read_first(self) -> None:
        """A trigger without entities: read them from Sentinel, then enrich the accounts found."""
        history = History(codec.encode(dataclasses.replace(INCIDENT_REF, accounts=None)))

        name, _payload = _last_action(run(history))
        assert name == ACTIVITY_ENTITIES

        found = Account("", "2046feea-040d-4a46-9e2b-91c2941bfa70")
        history.completed(ACTIVITY_ENTITIES, activity_result(EntitiesFound(dataclasses.replace(INCIDENT_REF, accounts=(found,)))))
        name, payload = _last_action(run(history))
        assert name == ACTIVITY_ENRICH
        assert payload.incident.accounts == (found,)

    def test_entities_failure_is_reported(self) -> None:
        """Entities that cannot be read end in the failure comment, not in an empty enrichment."""
        failure = Failure("read the incident's entities from Sentinel", "403", "grant Responder")
        history = History(codec.encode(dataclasses.replace(INCIDENT_REF, accounts=None))).completed(
            ACTIVITY_ENTITIES, activity_result(failure)
        )

        name, payload = _last_action(run(history))

        assert (name, payload.failure.what) == (ACTIVITY_NOTICE, "read the incident's entities from Sentinel")


class TestDeterminism:
    def test_replaying_the_same_history_gives_the_same_actions(self) -> None:
        """Two replays of one history produce identical state: no clock, no randomness, no I/O."""
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _enriched("suspicious", 55, False))

        assert run(history) == run(history)

    @pytest.mark.parametrize("replays", [1, 3])
    def test_one_summary_log_line_on_completion(self, replays: int) -> None:
        """The orchestrator logs its outcome once, when it completes, not on every replay."""
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _enriched("benign", 5, False))
        with capture_logs() as logs:
            for _ in range(replays):
                run(history)
        assert [entry for entry in logs if entry["event"] == "incident_orchestrated"] == []

        with capture_logs() as logs:
            run(history.completed(ACTIVITY_LABELS, activity_result(Labelled(True))))
        lines = [entry for entry in logs if entry["event"] == "incident_orchestrated"]
        assert [(line["incident"], line["outcome"], line["verdict"]) for line in lines] == [(84, "enriched", "benign")]
