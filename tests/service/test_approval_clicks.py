"""The approval click decisions with hand-written ports: who waits for whom when several approvers click at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from common.settings import Settings
from enrichment.domain.model import Account
from playbooks.adapters.graph import DirectoryUser, Reply
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.plan import ContainmentPlan
from playbooks.domain.workflow import ApprovalDecision
from playbooks.render.card import ActionData, CardIncident
from playbooks.services.approval_clicks import ApprovalClicks, Click
from tests.adapters.test_teams_bot import FakeOrchestrations
from tests.fakes.botframework_server import CHANNEL_ID, TENANT_ID
from tests.unit import card_samples as s

GROUP = "bbbbbbbb-0000-4000-8000-000000000001"
SLOW_APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
QUICK_APPROVER = "aaaaaaaa-0000-4000-8000-000000000002"
SETTINGS = Settings.from_values(
    {"REPLAY_TENANT_ID": TENANT_ID, "REPLAY_TEAMS_CHANNEL_ID": CHANNEL_ID, "REPLAY_APPROVER_GROUP_ID": GROUP}
)
UPNS = {SLOW_APPROVER: "slow@contoso.example", QUICK_APPROVER: "quick@contoso.example"}


class GatedDirectory:
    """The directory as a port fake: every clicker is an approver, but `SLOW_APPROVER`'s look-ups wait for `release`."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.asked: list[tuple[str, str]] = []

    async def _gate(self, user_id: str) -> None:
        if user_id == SLOW_APPROVER:
            self.entered.set()
            await self.release.wait()

    async def is_member_of(self, group_id: str, user_id: str) -> Reply[bool]:
        self.asked.append(("member", user_id))
        await self._gate(user_id)
        return Reply(True, "req-member")

    async def identify(self, user_id: str) -> Reply[DirectoryUser]:
        self.asked.append(("user", user_id))
        await self._gate(user_id)
        return Reply(DirectoryUser(user_id, UPNS.get(user_id, f"{user_id[:8]}@contoso.example"), None), "req-user")


def _request(incident_id: str, instance_id: str, orchestrations: FakeOrchestrations) -> ActionData:
    """A waiting approval request on its own incident, and the data its card's buttons carry."""
    plan = ContainmentPlan(incident_id, Account(s.UPN, s.USER_ID), s.plan_for(s.typical()[1]).actions, True, "score 85")
    orchestrations.waiting(instance_id, ApprovalRequest.for_plan(plan, s.AT))
    return ActionData.for_plan(CardIncident(incident_id, 1), plan, instance_id=instance_id, expires_at=s.EXPIRES)


def _click(data: ActionData, clicker: str) -> Click:
    return Click(data, True, clicker, clicker[:8], TENANT_ID, f"{CHANNEL_ID};messageid=1")


async def test_clicks_on_different_requests_do_not_queue_behind_each_other() -> None:
    """While one incident's approver waits on a slow directory, another incident's approver is answered and recorded."""
    directory = GatedDirectory()
    orchestrations = FakeOrchestrations()
    clicks = ApprovalClicks(SETTINGS, directory, clock=lambda: s.AT + timedelta(minutes=30), lookup_budget=30)
    first = _request("11111111-0000-4000-8000-000000000001", "incident-1:approval:0:20261105T140000", orchestrations)
    second = _request("22222222-0000-4000-8000-000000000002", "incident-2:approval:0:20261105T140000", orchestrations)

    slow = asyncio.create_task(clicks.click(_click(first, SLOW_APPROVER), orchestrations))
    async with asyncio.timeout(10):  # a guard against a hang, not a measurement
        await directory.entered.wait()
        answer = await clicks.click(_click(second, QUICK_APPROVER), orchestrations)

    assert answer.card is not None
    assert [instance for instance, _ in orchestrations.raised] == [second.instance_id]
    assert not slow.done()
    directory.release.set()
    async with asyncio.timeout(10):
        await slow
    assert [instance for instance, _ in orchestrations.raised] == [second.instance_id, first.instance_id]


async def test_clicks_on_one_request_are_decided_one_at_a_time() -> None:
    """A second click on the same request waits for the first to be recorded and is told who decided; one event."""
    directory = GatedDirectory()
    orchestrations = FakeOrchestrations()
    clicks = ApprovalClicks(SETTINGS, directory, clock=lambda: s.AT + timedelta(minutes=30), lookup_budget=30)
    data = _request("11111111-0000-4000-8000-000000000001", "incident-1:approval:0:20261105T140000", orchestrations)

    slow = asyncio.create_task(clicks.click(_click(data, SLOW_APPROVER), orchestrations))
    async with asyncio.timeout(10):
        await directory.entered.wait()
        waiting = asyncio.create_task(clicks.click(_click(data, QUICK_APPROVER), orchestrations))
        await asyncio.sleep(0)  # let the second click reach the request's lock
        assert not waiting.done()
        directory.release.set()
        first_answer, second_answer = await slow, await waiting

    assert len(orchestrations.raised) == 1
    assert orchestrations.raised[0][1].decided_by_object_id == SLOW_APPROVER
    assert first_answer.card is not None
    assert second_answer.card is not None
    assert "Already approved" in str(second_answer.card)


def test_only_the_most_recent_requests_are_remembered() -> None:
    """The per-request state is bounded: beyond `remembered` requests the oldest idle ones are forgotten."""
    clicks = ApprovalClicks(SETTINGS, GatedDirectory(), clock=lambda: s.AT, remembered=3)
    for number in range(10):
        clicks._request(f"incident-{number}:approval:0:20261105T140000")

    assert list(clicks._requests) == [f"incident-{n}:approval:0:20261105T140000" for n in (7, 8, 9)]


class SilentOrchestrations(FakeOrchestrations):
    """An orchestration that has not yet published the decision it received (it is busy, or slow to replay)."""

    async def raise_decision(self, instance_id: str, decision: ApprovalDecision) -> None:
        self.raised.append((instance_id, decision))


async def test_a_decision_not_yet_confirmed_is_never_claimed() -> None:
    """Until the orchestration publishes the decision that stands, the clicker is told it was handed over, not that it stands."""
    directory = GatedDirectory()
    directory.release.set()
    orchestrations = SilentOrchestrations()
    clicks = ApprovalClicks(SETTINGS, directory, clock=lambda: s.AT + timedelta(minutes=30), confirm_budget=0.0)
    data = _request("11111111-0000-4000-8000-000000000001", "incident-1:approval:0:20261105T140000", orchestrations)

    answer = await clicks.click(_click(data, QUICK_APPROVER), orchestrations)

    text = str(answer.card)
    assert "Your approval was handed to the request" in text
    assert "will show the decision that stands" in text
    assert "Approved by" not in text
    assert len(orchestrations.raised) == 1


async def test_a_refused_clicker_is_looked_up_once_per_request() -> None:
    """The same outsider clicking again: no second directory look-up and no second refusal event."""
    directory = GatedDirectory()
    directory.release.set()
    orchestrations = FakeOrchestrations()
    settings = Settings.from_values(
        {"REPLAY_TENANT_ID": TENANT_ID, "REPLAY_TEAMS_CHANNEL_ID": CHANNEL_ID, "REPLAY_APPROVER_OBJECT_IDS": SLOW_APPROVER}
    )
    clicks = ApprovalClicks(settings, directory, clock=lambda: s.AT + timedelta(minutes=30))
    data = _request("11111111-0000-4000-8000-000000000001", "incident-1:approval:0:20261105T140000", orchestrations)
    outsider = "cccccccc-0000-4000-8000-000000000003"

    for _ in range(5):
        await clicks.click(_click(data, outsider), orchestrations)

    assert directory.asked == [("user", outsider)]
    assert [attempt.person_upn for _, attempt in orchestrations.attempts] == ["cccccccc@contoso.example"]
