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
    ApprovalInput,
    CommentWritten,
    EarlierRequest,
    Enriched,
    EnrichmentSummary,
    EntitiesFound,
    Failure,
    FollowUp,
    IncidentRunInput,
    IncidentRunResult,
    IncidentRunStatus,
    Labelled,
    LabelState,
    Record,
    RunEnd,
    RunFailed,
    activity_result,
    run_result_of,
)
from playbooks.functions.orchestrator import (
    ACTIVITY_COMMENT,
    ACTIVITY_ENRICH,
    ACTIVITY_ENTITIES,
    ACTIVITY_LABELS,
    COMMENT,
    ENRICH,
    ENTITIES,
    LABELS,
)
from playbooks.functions.steps import TransientStepError
from tests.app.durable_history import History, OrchestrationFailed, atomic_actions, run

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
COMMENT_WRITTEN = CommentWritten("c0ffee00-0000-4000-8000-000000000001", True, 1200)
HTML = "<h3>Token replay enrichment: incident #84</h3>"
STEPS = {step.name: step for step in (ENTITIES, ENRICH, LABELS, COMMENT)}


def _summary(verdict: str, score: int, needs_approval: bool) -> EnrichmentSummary:
    plan = ContainmentPlan(INCIDENT_REF.name, ALICE, (), needs_approval, "r")
    account = AccountSummary(ALICE, Verdict(verdict), score, (), (), plan)
    return EnrichmentSummary(Verdict(verdict), (account,), 0)


def _enriched(verdict: str, score: int, needs_approval: bool) -> dict[str, Any]:
    """The enrichment, its comment written as this run's record."""
    return activity_result(Enriched(_summary(verdict, score, needs_approval), COMMENT_WRITTEN))


def _unwritten(failure: Failure) -> dict[str, Any]:
    """The enrichment whose comment write failed: the failure, and the comment when it is worth writing again."""
    html = HTML if failure.transient else ""
    return activity_result(Enriched(_summary("replay_likely", 92, True), None, (), failure, html))


def _last_action(state: dict[str, Any]) -> tuple[str, Any]:
    """The activity the orchestrator scheduled last, and its input decoded as that activity decodes it."""
    action = atomic_actions(state)[-1]
    name = action["functionName"]
    return name, codec.decode(STEPS[name].input_type, json.loads(action["input"]))


def _enriched_and_written(verdict: str, score: int, needs_approval: bool) -> History:
    """The history up to the enrichment, its comment written."""
    return History(INCIDENT).completed(ACTIVITY_ENRICH, _enriched(verdict, score, needs_approval))


def _failed_run(history: History) -> IncidentRunResult:
    """The run that ended Failed: its result, read back from the error Durable keeps as its output."""
    with pytest.raises(OrchestrationFailed) as failed:
        run(history)
    result = run_result_of(failed.value.error)
    assert result is not None
    assert result.outcome is RunEnd.FAILED
    return result


class TestFollowUp:
    def test_a_follow_up_passes_its_alerts_and_earlier_requests_to_the_enrichment_and_publishes_what_it_covers(self) -> None:
        """The run input's follow-up reaches enrich_incident; the custom status says the alerts, then, enriched, the requests."""
        earlier = EarlierRequest("incident-x:approval:0:20260301T090000", "d" * 32)
        given = IncidentRunInput(INCIDENT_REF, ("a", "b"), FollowUp(("b",), ("incident-x",)), (earlier,))
        start = run(History(codec.encode(given)))

        name, payload = _last_action(start)
        assert (name, payload.follow_up, payload.earlier_requests) == (ACTIVITY_ENRICH, given.follow_up, (earlier,))
        assert codec.decode(IncidentRunStatus, start["customStatus"]) == IncidentRunStatus(("a", "b"))

        plan = ContainmentPlan(INCIDENT_REF.name, ALICE, (), True, "r")
        at = INCIDENT_REF.at
        card = ApprovalInput(INCIDENT_REF, plan, "incident-test:approval:0:x", at, at, {"type": "AdaptiveCard"})
        unposted = dataclasses.replace(card, instance_id="incident-test:approval:1:x", card=None, problem="no object id")
        enriched = activity_result(Enriched(_summary("replay_likely", 92, True), COMMENT_WRITTEN, (card, unposted)))
        state = run(History(codec.encode(given)).completed(ACTIVITY_ENRICH, enriched))

        published = codec.decode(IncidentRunStatus, state["customStatus"])
        assert published == IncidentRunStatus(("a", "b"), True, (EarlierRequest(card.instance_id, plan.digest),))


class TestPaths:
    def test_first_step_is_the_enrichment(self) -> None:
        """With accounts known, the first episode schedules enrich_incident with the incident and this run."""
        name, payload = _last_action(run(History(INCIDENT)))

        assert name == ACTIVITY_ENRICH
        assert payload.incident == INCIDENT_REF
        assert payload.run.instance_id == "incident-test"

    def test_a_comment_whose_write_failed_transiently_is_written_again_before_the_labels(self) -> None:
        """The enrichment answered its comment unwritten (409): the same text is written as this run's record, then the labels."""
        failure = Failure("write the incident comment", "Sentinel: conflict (HTTP 409)", "later", "Sentinel", 409, True)
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _unwritten(failure))

        name, payload = _last_action(run(history))
        assert (name, payload.record, payload.html) == (ACTIVITY_COMMENT, Record.ENRICHMENT, HTML)

        name, payload = _last_action(run(history.completed(ACTIVITY_COMMENT, activity_result(COMMENT_WRITTEN))))
        assert (name, payload.verdict) == (ACTIVITY_LABELS, Verdict.REPLAY_LIKELY)

    def test_benign_result_labels_and_ends(self) -> None:
        """Benign: label the incident benign, then end with the outcome, no approval."""
        state = run(_enriched_and_written("benign", 10, False).completed(ACTIVITY_LABELS, activity_result(Labelled(True))))

        assert state["isDone"]
        output = codec.decode(IncidentRunResult, state["output"])
        assert (output.outcome, output.verdict, output.labels, output.incident, output.comment_written) == (
            RunEnd.ENRICHED,
            Verdict.BENIGN,
            LabelState.UPDATED,
            84,
            True,
        )

    def test_replay_result_carries_the_plan_for_approval(self) -> None:
        """Replay likely: labelled likely, and the output keeps each account's plan for the approval step."""
        history = _enriched_and_written("replay_likely", 92, True)

        name, payload = _last_action(run(history))
        assert (name, payload.verdict) == (ACTIVITY_LABELS, Verdict.REPLAY_LIKELY)

        state = run(history.completed(ACTIVITY_LABELS, activity_result(Labelled(False))))
        assert state["isDone"]
        output = codec.decode(IncidentRunResult, state["output"])
        assert output.labels is LabelState.UNCHANGED
        assert output.accounts[0].plan.needs_approval is True

    def test_enrichment_failure_writes_the_failure_comment_and_ends_failed(self) -> None:
        """A failure value from the enrichment becomes the failure notice, with its hint; the run ends Failed."""
        failure = Failure(
            "query the sign-in logs", "Log Analytics: forbidden (HTTP 403)", "grant Log Analytics Reader", "Log Analytics", 403
        )
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, activity_result(failure))

        name, payload = _last_action(run(history))
        assert (name, payload.record, payload.failure.hint) == (ACTIVITY_COMMENT, Record.FAILURE, "grant Log Analytics Reader")

        result = _failed_run(history.completed(ACTIVITY_COMMENT, activity_result(COMMENT_WRITTEN)))
        assert (result.failure.status, result.comment_written) == (403, True)

    def test_an_activity_that_raises_on_every_attempt_is_handled_like_a_failure(self) -> None:
        """An exception in the activity (TaskFailed after its retries) is caught: failure comment, then the run ends Failed."""
        history = History(INCIDENT).failed(ACTIVITY_ENRICH, "ValueError: unexpected")

        name, payload = _last_action(run(history))
        assert (name, payload.record) == (ACTIVITY_COMMENT, Record.FAILURE)
        assert "ValueError: unexpected" in payload.failure.error

        assert _failed_run(history.completed(ACTIVITY_COMMENT, activity_result(COMMENT_WRITTEN))).comment_written is True

    def test_a_transient_failure_that_outlasts_the_retries_keeps_its_hint(self) -> None:
        """After Durable's last retry the orchestrator reads the activity's own Failure (what, hint, transient) back."""
        failure = Failure("query the sign-in logs", "Log Analytics: throttled (HTTP 429)", "wait", "Log Analytics", 429, True)
        history = History(INCIDENT).failed(
            ACTIVITY_ENRICH, f"Activity function 'enrich_incident' failed: {TransientStepError(failure)}"
        )

        _name, payload = _last_action(run(history))

        assert payload.failure == failure

    def test_a_retry_in_progress_schedules_nothing_else(self) -> None:
        """While Durable is still retrying a failed attempt, the orchestrator waits: no failure notice yet."""
        history = History(INCIDENT).failed(ACTIVITY_ENRICH, "TimeoutError", attempts=2)

        state = run(history)

        assert not state["isDone"]
        assert [name for name, _ in [_last_action(state)]] == [ACTIVITY_ENRICH]

    def test_a_failed_failure_comment_still_ends(self) -> None:
        """Even when the failure comment cannot be written either, the orchestration ends (Failed, no poison loop)."""
        history = (
            History(INCIDENT)
            .completed(ACTIVITY_ENRICH, activity_result(Failure("x", "y")))
            .completed(ACTIVITY_COMMENT, activity_result(Failure("write the incident comment", "403")))
        )

        assert _failed_run(history).comment_written is False

    def test_an_enrichment_comment_that_cannot_be_written_ends_failed_with_the_enrichment(self) -> None:
        """The enrichment is never replaced by a failure notice: the run ends Failed with the enrichment in its output."""
        failure = Failure("write the incident comment", "Sentinel: conflict (HTTP 409)", "run it again", "Sentinel", 409, True)
        history = History(INCIDENT).completed(ACTIVITY_ENRICH, _unwritten(failure))

        result = _failed_run(history.completed(ACTIVITY_COMMENT, activity_result(failure)))

        assert (result.verdict, result.accounts[0].score, result.failure, result.comment_written) == (
            Verdict.REPLAY_LIKELY,
            92,
            failure,
            False,
        )

    def test_a_comment_refused_for_good_ends_failed_without_another_write(self) -> None:
        """A refusal (403) is not written again: the run ends Failed at once, the enrichment in its output, no notice."""
        failure = Failure("write the incident comment", "Sentinel: forbidden (HTTP 403)", "grant Responder", "Sentinel", 403)

        result = _failed_run(History(INCIDENT).completed(ACTIVITY_ENRICH, _unwritten(failure)))

        assert (result.failure, result.verdict, result.comment_written) == (failure, Verdict.REPLAY_LIKELY, False)

    def test_labels_that_cannot_be_written_end_failed_after_the_comment(self) -> None:
        """A label write that fails for good: the comment is on the incident, and the run ends Failed saying so."""
        failure = Failure("update the incident's labels", "Sentinel: 503", "later", "Sentinel", 503, True)
        history = _enriched_and_written("suspicious", 55, False).completed(ACTIVITY_LABELS, activity_result(failure))

        result = _failed_run(history)

        assert (result.labels, result.failure, result.comment_written, result.verdict) == (
            LabelState.FAILED,
            failure,
            True,
            Verdict.SUSPICIOUS,
        )

    def test_no_account_writes_the_notice_and_ends(self) -> None:
        """An incident naming nobody: the no-account record, then the end; no query is run."""
        history = History(codec.encode(dataclasses.replace(INCIDENT_REF, accounts=())))

        name, payload = _last_action(run(history))
        assert (name, payload.record) == (ACTIVITY_COMMENT, Record.NO_ACCOUNT)

        state = run(history.completed(ACTIVITY_COMMENT, activity_result(COMMENT_WRITTEN)))
        assert codec.decode(IncidentRunResult, state["output"]).outcome is RunEnd.NO_ACCOUNT
        assert [a["functionName"] for a in atomic_actions(state)] == [ACTIVITY_COMMENT]

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

        assert (name, payload.failure.what) == (ACTIVITY_COMMENT, "read the incident's entities from Sentinel")


class TestRecords:
    def test_each_record_of_a_run_is_named_after_the_run(self) -> None:
        """The enrichment and a failure notice of one run are written under that run, with the orchestration's time."""
        enrichment = _last_action(run(History(INCIDENT)))[1]
        notice = _last_action(run(History(INCIDENT).completed(ACTIVITY_ENRICH, activity_result(Failure("x", "y")))))[1]

        assert enrichment.run == notice.run
        assert enrichment.run.started_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        assert notice.written_at == enrichment.requested_at == enrichment.run.started_at

    def test_run_failed_carries_the_whole_result(self) -> None:
        """The error text of a Failed run reads back as the run's result, enrichment included."""
        result = IncidentRunResult(84, INCIDENT_REF.name, RunEnd.FAILED, Verdict.BENIGN, failure=Failure("x", "y"))

        assert run_result_of(f"Orchestrator function 'incident_orchestrator' failed: {RunFailed(result)}") == result
        assert run_result_of(codec.encode(result)) == result
        assert run_result_of("something else") is None


class TestDeterminism:
    def test_replaying_the_same_history_gives_the_same_actions(self) -> None:
        """Two replays of one history produce identical state: no clock, no randomness, no I/O."""
        history = _enriched_and_written("suspicious", 55, False)

        assert run(history) == run(history)

    @pytest.mark.parametrize("replays", [1, 3])
    def test_one_summary_log_line_on_completion(self, replays: int) -> None:
        """The orchestrator logs its outcome once, when it completes, not on every replay."""
        history = _enriched_and_written("benign", 5, False)
        with capture_logs() as logs:
            for _ in range(replays):
                run(history)
        assert [entry for entry in logs if entry["event"] == "incident_orchestrated"] == []

        with capture_logs() as logs:
            run(history.completed(ACTIVITY_LABELS, activity_result(Labelled(True))))
        lines = [entry for entry in logs if entry["event"] == "incident_orchestrated"]
        assert [(line["incident"], line["outcome"], line["verdict"]) for line in lines] == [(84, "enriched", "benign")]
