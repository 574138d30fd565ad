"""
An approval click in, at most one event out, and the clicker told what happened.

The Teams bot (`playbooks.adapters.teams_bot`) authenticates the request and reads the click; this
service decides what it means. It gathers the facts (the request and any decision from the
orchestration's custom status, the clicker's approver-group membership from the directory, within a
time budget so Teams gets its answer in its few seconds), applies
`playbooks.domain.authorization.authorise`, raises the `ApprovalDecision` event for an authorised
click and the `ApprovalAttempt` event for a refused one, and answers with a short card.

Clicks on one request are handled one at a time (a lock per request): a second click waits for the
first to be recorded and is answered "already decided" without a second event. Clicks on different
requests never wait for each other, whatever the directory's latency. What each request has learnt
(the decision it recorded) is kept for the most recent `remembered` requests of the worker.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from common.errors import TransientUpstreamError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from playbooks.adapters.graph import Reply
from playbooks.domain.approval import ApprovalState, BotView
from playbooks.domain.authorization import AlreadyDecided, Attempt, Authorised, Expired, Refused, audit_line, authorise
from playbooks.domain.codec import iso
from playbooks.domain.workflow import ApprovalAttempt, ApprovalDecision
from playbooks.render.card import (
    ActionData,
    Card,
    already_decided_card,
    expired_card,
    recorded_card,
    refused_card,
    stale_card,
)

_log = get_logger("teams")

#: How many requests' locks and recorded decisions a worker keeps.
REMEMBERED_REQUESTS = 1000


class Orchestrations(Protocol):
    """What the bot needs from Durable Functions; `playbooks.adapters.durable_client.DurableOrchestrations` is the real one."""

    async def approval_state(self, instance_id: str) -> ApprovalState: ...

    async def raise_decision(self, instance_id: str, decision: ApprovalDecision) -> None: ...

    async def raise_attempt(self, instance_id: str, attempt: ApprovalAttempt) -> None: ...


class ApproverDirectory(Protocol):
    """What the bot asks the directory about a clicker; `playbooks.adapters.graph.GraphDirectory` is the real one."""

    async def is_member_of(self, group_id: str, user_id: str) -> Reply[bool]: ...


@dataclass(frozen=True, slots=True)
class Click:
    """One click on an approval card, as the bot read it from the (authenticated) activity."""

    data: ActionData
    approve: bool
    clicker_object_id: str
    clicker_name: str
    tenant_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class ClickError:
    """An error for Teams to show on the card (bad data, a failure to record)."""

    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ClickAnswer:
    """The answer to a click: a card, or an error."""

    card: Card | None = None
    error: ClickError | None = None


@dataclass(slots=True)
class _Request:
    """What the worker knows about one approval request: its lock and the decision it recorded."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recorded: ApprovalDecision | None = None


class ApprovalClicks:
    """
    The decisions behind the approval bot.

    `directory` answers approver-group membership within `lookup_budget` seconds (an unanswered
    membership is a refusal); `clock` gives the time of a click.
    """

    def __init__(
        self,
        settings: Settings,
        directory: ApproverDirectory,
        *,
        clock: Callable[[], datetime],
        lookup_budget: float = 3.0,
        remembered: int = REMEMBERED_REQUESTS,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._clock = clock
        self.lookup_budget = lookup_budget
        self._remembered = remembered
        self._requests: OrderedDict[str, _Request] = OrderedDict()

    def _request(self, instance_id: str) -> _Request:
        """The request's state, created on first use; the oldest idle ones are forgotten beyond `remembered`."""
        known = self._requests.get(instance_id)
        if known is None:
            known = self._requests[instance_id] = _Request()
        self._requests.move_to_end(instance_id)
        idle = [key for key, value in self._requests.items() if not value.lock.locked() and key != instance_id]
        for key in idle[: max(0, len(self._requests) - self._remembered)]:
            del self._requests[key]
        return known

    async def click(self, click: Click, orchestrations: Orchestrations) -> ClickAnswer:
        """Check where the click came from, then decide it under the request's own lock."""
        data = click.data
        if not self._settings.tenant_id or click.tenant_id.lower() != self._settings.tenant_id:
            return ClickAnswer(refused_card(data, click.clicker_name, "the click came from another tenant"))
        channel = self._settings.teams_channel_id
        if channel and not click.conversation_id.startswith(channel):
            return ClickAnswer(stale_card(data, "the card was not posted by this playbook in its channel"))
        request = self._request(data.instance_id)
        async with request.lock:
            return await self._decide(click, request, orchestrations)

    async def _in_approver_group(self, clicker_id: str) -> bool | None:
        """
        Whether the clicker is in the approver group: None when not asked (no group, or allow-listed)
        or not answered within the budget, which `authorise` treats as a refusal.
        """
        group = self._settings.approver_group_id
        if not group or clicker_id in self._settings.approver_object_ids:
            return None
        try:
            async with asyncio.timeout(self.lookup_budget):
                return (await self._directory.is_member_of(group, clicker_id)).value
        except TimeoutError:
            _log.warning("bot.directory_slow", clicker=clicker_id, budget=self.lookup_budget)
        except UpstreamError as error:
            _log.warning("bot.directory_failed", clicker=clicker_id, error=str(error))
        return None

    async def _decide(self, click: Click, request: _Request, orchestrations: Orchestrations) -> ClickAnswer:
        data, clicker = click.data, click.clicker_object_id
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=clicker)
        recorded = request.recorded
        if recorded is not None:
            repeat = recorded.decided_by_object_id == clicker and recorded.approved == click.approve
            log.info("bot.click_after_decision", repeat=repeat)
            if repeat:  # Teams retrying a slow invoke, or a double click: the same answer again
                return ClickAnswer(recorded_card(data, recorded.decision, name=recorded.decided_by_name))
            return ClickAnswer(already_decided_card(data, recorded.decision, name=recorded.decided_by_name))
        try:
            state = await orchestrations.approval_state(data.instance_id)
        except UpstreamError as error:
            log.error("bot.state_unavailable", error=str(error))
            return ClickAnswer(error=ClickError(503, "ServiceUnavailable", "the request's state cannot be read now; try again"))
        if state.request is None or state.phase is BotView.CLOSED:
            return ClickAnswer(stale_card(data, state.detail or "the request is closed"))
        if state.phase is BotView.EXPIRED:
            return ClickAnswer(expired_card(data, expired_at=state.request.expires_at(self._settings)))

        in_group = None if state.phase is BotView.DECIDED else await self._in_approver_group(clicker)
        now = self._clock()
        attempt = Attempt(
            incident_id=data.incident_id,
            target_object_id=data.user_object_id,
            plan_digest=data.plan_digest,
            approve=click.approve,
            person_object_id=clicker,
            person_upn="",
            at=now,
            in_approver_group=in_group,
            target_upn=data.user_upn,
        )
        outcome = authorise(state.request, attempt, decided=state.decision, settings=self._settings, now=now)
        log.info("approval.audit", line=audit_line(state.request, attempt, outcome), outcome=type(outcome).__name__)
        match outcome:
            case AlreadyDecided(decision):
                return ClickAnswer(already_decided_card(data, decision, name=state.decided_by_name))
            case Expired(expired_at):
                return ClickAnswer(expired_card(data, expired_at=expired_at))
            case Refused(reason):
                refusal = ApprovalAttempt(clicker, click.clicker_name, click.approve, now, reason)
                await self._report_refusal(data.instance_id, refusal, orchestrations)
                return ClickAnswer(refused_card(data, click.clicker_name, reason))
            case Authorised(decision):
                return await self._record(data, ApprovalDecision.of(decision, click.clicker_name), request, orchestrations)
        msg = f"unexpected authorisation outcome {outcome!r}"
        raise AssertionError(msg)

    async def _report_refusal(self, instance_id: str, attempt: ApprovalAttempt, orchestrations: Orchestrations) -> None:
        """
        Hand a refused click to the waiting orchestration, which writes it on the incident.

        The clicker's answer does not depend on it, so a failure to deliver is logged (with the
        audit facts, so the log still holds the attempt) rather than turned into an error for them.
        """
        try:
            await orchestrations.raise_attempt(instance_id, attempt)
        except UpstreamError as error:
            _log.warning(
                "bot.refusal_not_delivered",
                instance_id=instance_id,
                clicker=attempt.person_object_id,
                at=iso(attempt.at),
                reason=attempt.reason,
                error=str(error),
            )

    async def _record(
        self, data: ActionData, decided: ApprovalDecision, request: _Request, orchestrations: Orchestrations
    ) -> ClickAnswer:
        """Hand the decision to the orchestration, remember it, and answer the clicker."""
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=decided.decided_by_object_id)
        try:
            await orchestrations.raise_decision(data.instance_id, decided)
        except TransientUpstreamError as error:
            log.error("bot.decision_not_delivered", error=str(error))
            return ClickAnswer(error=ClickError(503, "ServiceUnavailable", "the decision could not be recorded; try again"))
        except UpstreamError as error:
            log.warning("bot.decision_not_delivered", error=str(error))
            return ClickAnswer(stale_card(data, "the request is no longer waiting for a decision"))
        request.recorded = decided
        log.info("bot.decision_recorded", approved=decided.approved)
        return ClickAnswer(recorded_card(data, decided.decision, name=decided.decided_by_name))
