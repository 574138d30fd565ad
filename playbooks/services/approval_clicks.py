"""
An approval click in, at most one event out, and the clicker told the decision that stands.

The Teams bot (`playbooks.adapters.teams_bot`) authenticates the request and reads the click; this
service decides what it means. It gathers the facts: the request and any decision from the
orchestration's custom status, and the clicker's UPN and approver-group membership from the
directory (in parallel, within a time budget so Teams gets its answer in its few seconds). It
applies `playbooks.domain.authorization.authorise`, raises the `ApprovalAttempt` event for a refused
click and the `ApprovalDecision` event for an authorised one, and answers with a short card.

One decision, across app instances: the orchestration is the single decider (it takes the first
decision it receives and publishes it). After raising a decision this service reads back what the
orchestration published, for up to `confirm_budget` seconds, and tells the clicker the decision
that stands: theirs ("Approved by you"), someone else's that arrived first ("Already approved by
..., your click changed nothing"), or, when the request has not said yet, that the decision was
handed over and the card will show the one that stands. It never claims a decision it has not seen
recorded.

Clicks on one request are handled one at a time (a lock per request): a second click waits for the
first and is answered from what the first learnt. Clicks on different requests never wait for each
other, whatever the directory's latency. Per request the worker keeps the decision that stands and
each clicker's directory facts (for `facts_ttl`), so repeated refused clicks cost no further
look-ups and raise one `ApprovalAttempt` per person, verb and reason; this is kept for the most
recent `remembered` requests.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from common.errors import TransientUpstreamError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from playbooks.adapters.graph import DirectoryUser, Reply
from playbooks.domain.approval import ApprovalState, BotView
from playbooks.domain.authorization import AlreadyDecided, Attempt, Authorised, Expired, Refused, audit_line, authorise
from playbooks.domain.codec import iso
from playbooks.domain.workflow import ApprovalAttempt, ApprovalDecision
from playbooks.render.card import (
    ActionData,
    Card,
    already_decided_card,
    expired_card,
    handed_over_card,
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

    async def identify(self, user_id: str) -> Reply[DirectoryUser]: ...


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


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the directory said about one clicker: their UPN ('' when unknown) and group membership (None when unknown)."""

    upn: str
    in_group: bool | None
    at: datetime


@dataclass(slots=True)
class _Request:
    """
    What the worker knows about one approval request: its lock, the decision that stands (once the
    orchestration published it), each clicker's directory facts, and the refusals already reported.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    decided: ApprovalDecision | None = None
    facts: dict[str, _Facts] = field(default_factory=dict)
    reported: set[tuple[str, bool, str]] = field(default_factory=set)


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
        confirm_budget: float = 2.0,
        confirm_interval: float = 0.25,
        facts_ttl: timedelta = timedelta(minutes=5),
        remembered: int = REMEMBERED_REQUESTS,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._clock = clock
        self.lookup_budget = lookup_budget
        self.confirm_budget = confirm_budget
        self._confirm_interval = confirm_interval
        self._facts_ttl = facts_ttl
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

    async def _facts(self, request: _Request, clicker_id: str, now: datetime) -> _Facts:
        """
        The clicker's UPN and approver-group membership, asked in parallel within the lookup budget
        and kept for this request (`facts_ttl`): a person clicking again costs no further look-up.
        Membership is not asked when no group is configured or the person is allow-listed.
        """
        known = request.facts.get(clicker_id)
        if known is not None and now - known.at < self._facts_ttl:
            return known
        group = self._settings.approver_group_id
        ask_group = bool(group) and clicker_id not in self._settings.approver_object_ids
        upn_task = asyncio.ensure_future(self._directory.identify(clicker_id))
        group_task = asyncio.ensure_future(self._directory.is_member_of(group, clicker_id)) if ask_group else None
        tasks = [t for t in (upn_task, group_task) if t is not None]
        done, pending = await asyncio.wait(tasks, timeout=self.lookup_budget)
        for task in pending:
            task.cancel()
        if pending:
            _log.warning("bot.directory_slow", clicker=clicker_id, budget=self.lookup_budget)
        facts = _Facts(
            upn=_answer(upn_task, done, clicker_id, lambda user: user.upn) or "",
            in_group=_answer(group_task, done, clicker_id, bool) if group_task is not None else None,
            at=now,
        )
        request.facts[clicker_id] = facts
        return facts

    async def _decide(self, click: Click, request: _Request, orchestrations: Orchestrations) -> ClickAnswer:
        data, clicker = click.data, click.clicker_object_id
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=clicker)
        if request.decided is not None:
            log.info("bot.click_after_decision")
            return self._standing(data, request.decided, clicker, click.approve)
        try:
            state = await orchestrations.approval_state(data.instance_id)
        except UpstreamError as error:
            log.error("bot.state_unavailable", error=str(error))
            return ClickAnswer(error=ClickError(503, "ServiceUnavailable", "the request's state cannot be read now; try again"))
        if state.request is None or state.phase is BotView.CLOSED:
            return ClickAnswer(stale_card(data, state.detail or "the request is closed"))
        if state.phase is BotView.EXPIRED:
            return ClickAnswer(expired_card(data, expired_at=state.request.expires_at(self._settings)))
        if state.phase is BotView.DECIDED and state.decision is not None:
            request.decided = ApprovalDecision.of(state.decision, state.decided_by_name)
            return self._standing(data, request.decided, clicker, click.approve)

        now = self._clock()
        facts = await self._facts(request, clicker, now) if clicker else _Facts("", None, now)
        attempt = Attempt(
            incident_id=data.incident_id,
            target_object_id=data.user_object_id,
            plan_digest=data.plan_digest,
            approve=click.approve,
            person_object_id=clicker,
            person_upn=facts.upn,
            at=now,
            in_approver_group=facts.in_group,
            target_upn=data.user_upn,
        )
        outcome = authorise(state.request, attempt, decided=None, settings=self._settings, now=now)
        log.info("approval.audit", line=audit_line(state.request, attempt, outcome), outcome=type(outcome).__name__)
        match outcome:
            case Expired(expired_at):
                return ClickAnswer(expired_card(data, expired_at=expired_at))
            case Refused(reason):
                refusal = ApprovalAttempt(clicker, click.clicker_name, click.approve, now, reason, facts.upn)
                await self._report_refusal(data.instance_id, refusal, request, orchestrations)
                return ClickAnswer(refused_card(data, click.clicker_name, reason))
            case Authorised(decision):
                decided = ApprovalDecision.of(decision, click.clicker_name)
                return await self._record(data, decided, request, orchestrations)
            case AlreadyDecided(decision):  # not reached: the state's decision is handled above
                return ClickAnswer(already_decided_card(data, decision, name=state.decided_by_name))
        msg = f"unexpected authorisation outcome {outcome!r}"
        raise AssertionError(msg)

    def _standing(self, data: ActionData, decided: ApprovalDecision, clicker: str, approve: bool) -> ClickAnswer:
        """The answer once the decision that stands is known: the clicker's own (Teams retrying), or someone else's."""
        if decided.decided_by_object_id == clicker and decided.approved == approve:
            return ClickAnswer(recorded_card(data, decided.decision, name=decided.decided_by_name))
        return ClickAnswer(already_decided_card(data, decided.decision, name=decided.decided_by_name))

    async def _report_refusal(
        self, instance_id: str, attempt: ApprovalAttempt, request: _Request, orchestrations: Orchestrations
    ) -> None:
        """
        Hand a refused click to the waiting orchestration, which records it on the incident: once
        per person, verb and reason for this request (a person clicking again is the same attempt).

        The clicker's answer does not depend on it, so a failure to deliver is logged (with the
        audit facts, so the log still holds the attempt) rather than turned into an error for them.
        """
        key = (attempt.person_object_id, attempt.approve, attempt.reason)
        if key in request.reported:
            return
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
            return
        request.reported.add(key)

    async def _record(
        self, data: ActionData, decided: ApprovalDecision, request: _Request, orchestrations: Orchestrations
    ) -> ClickAnswer:
        """Hand the decision to the orchestration, then tell the clicker the decision that stands."""
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=decided.decided_by_object_id)
        try:
            await orchestrations.raise_decision(data.instance_id, decided)
        except TransientUpstreamError as error:
            log.error("bot.decision_not_delivered", error=str(error))
            return ClickAnswer(error=ClickError(503, "ServiceUnavailable", "the decision could not be recorded; try again"))
        except UpstreamError as error:
            log.warning("bot.decision_not_delivered", error=str(error))
            return ClickAnswer(stale_card(data, "the request is no longer waiting for a decision"))
        standing = await self._confirmed(data.instance_id, orchestrations)
        if standing is None:
            log.info("bot.decision_handed_over", approved=decided.approved)
            return ClickAnswer(handed_over_card(data, decided.decision))
        request.decided = standing
        log.info("bot.decision_stands", approved=standing.approved, theirs=standing == decided)
        return self._standing(data, standing, decided.decided_by_object_id, decided.approved)

    async def _confirmed(self, instance_id: str, orchestrations: Orchestrations) -> ApprovalDecision | None:
        """The decision the orchestration published as standing, read back within `confirm_budget`; None if it has not said."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.confirm_budget
        while True:
            try:
                state = await orchestrations.approval_state(instance_id)
            except UpstreamError:
                state = None
            if state is not None and state.phase is BotView.DECIDED and state.decision is not None:
                return ApprovalDecision.of(state.decision, state.decided_by_name)
            if loop.time() + self._confirm_interval > deadline:
                return None
            await asyncio.sleep(self._confirm_interval)


def _answer(task: asyncio.Future[Reply[Any]] | None, done: set[Any], clicker: str, read: Callable[[Any], Any]) -> Any:
    """A directory answer that came in time, or None (logged) when it failed or did not come."""
    if task is None or task not in done:
        return None
    error = task.exception()
    if error is None:
        return read(task.result().value)
    if isinstance(error, UpstreamError):
        _log.warning("bot.directory_failed", clicker=clicker, error=str(error))
        return None
    raise error
