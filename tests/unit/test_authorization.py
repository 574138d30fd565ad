"""Who may decide a containment plan: the rules of playbooks.domain.authorization, one by one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from common.settings import Settings
from enrichment.domain.model import Account, Assessment, Verdict
from playbooks.domain.authorization import (
    AlreadyDecided,
    ApprovalRequest,
    Attempt,
    Authorised,
    Expired,
    Outcome,
    Refused,
    audit_line,
    authorise,
)
from playbooks.domain.plan import Decision, plan_containment

GROUP = "0f0f0f0f-1111-2222-3333-444444444444"
ANALYST = "a1a1a1a1-1111-2222-3333-444444444444"
LISTED = "b2b2b2b2-1111-2222-3333-444444444444"
SUSPECT = "c3c3c3c3-1111-2222-3333-444444444444"
CREATED = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=20)

SETTINGS = Settings.from_values(
    {"REPLAY_APPROVER_GROUP_ID": GROUP, "REPLAY_APPROVER_OBJECT_IDS": LISTED.upper(), "REPLAY_APPROVAL_TIMEOUT_HOURS": "4"}
)
TARGET = Account("victim@contoso.com", SUSPECT)
PLAN_ASSESSMENT = Assessment(91, Verdict.REPLAY_LIKELY, (), (), ("203.0.113.9",))
PLAN = plan_containment("INC-42", TARGET, PLAN_ASSESSMENT, SETTINGS)
REQUEST = ApprovalRequest.for_plan(PLAN, CREATED)


def click(
    person: str = ANALYST, upn: str = "analyst@contoso.com", *, member: bool | None = True, approve: bool = True, **changes: Any
) -> Attempt:
    attempt = Attempt("INC-42", SUSPECT, PLAN.digest, approve, person, upn, NOW, in_approver_group=member)
    return replace(attempt, **changes)


def decide(attempt: Attempt, *, decided: Decision | None = None, settings: Settings = SETTINGS, now: datetime = NOW) -> Outcome:
    return authorise(REQUEST, attempt, decided=decided, settings=settings, now=now)


class TestWhoMayDecide:
    def test_member_of_the_approver_group_is_authorised_with_a_decision_bound_to_the_plan(self) -> None:
        """A group member's approval becomes a Decision bound to this plan's digest, person and time."""
        outcome = decide(click())
        assert outcome == Authorised(Decision(True, PLAN.digest, ANALYST, "analyst@contoso.com", NOW))

    def test_rejection_is_a_decision_too(self) -> None:
        """Rejecting is deciding: an authorised reject is recorded with approved=False."""
        outcome = decide(click(approve=False))
        assert isinstance(outcome, Authorised)
        assert outcome.decision.approved is False

    def test_non_member_is_refused(self) -> None:
        """Graph said the person is not in the approver group, and they are not listed: refused."""
        outcome = decide(click(member=False))
        assert isinstance(outcome, Refused)
        assert "approver group" in outcome.reason

    def test_unknown_membership_is_a_refusal_not_a_pass(self) -> None:
        """When the group membership could not be gathered, the click is refused (fail closed)."""
        outcome = decide(click(member=None))
        assert isinstance(outcome, Refused)
        assert "could not be checked" in outcome.reason

    def test_allow_listed_object_id_is_authorised_whatever_the_group_says(self) -> None:
        """An object id in REPLAY_APPROVER_OBJECT_IDS may decide even when not (or not known to be) in the group."""
        for member in (False, None):
            outcome = decide(click(LISTED.upper(), "lead@contoso.com", member=member))
            assert isinstance(outcome, Authorised)
            assert outcome.decision.decided_by_object_id == LISTED

    def test_allow_list_alone_works_without_a_group(self) -> None:
        """With no group configured, only the allow-list decides; others are refused."""
        settings = Settings.from_values({"REPLAY_APPROVER_OBJECT_IDS": LISTED})
        assert isinstance(decide(click(LISTED, member=None), settings=settings), Authorised)
        assert isinstance(decide(click(ANALYST, member=None), settings=settings), Refused)

    def test_no_configured_approvers_refuses_everyone(self) -> None:
        """Without a group or an allow-list nobody may decide, and the reason names the settings."""
        outcome = decide(click(), settings=Settings())
        assert isinstance(outcome, Refused)
        assert "REPLAY_APPROVER_GROUP_ID" in outcome.reason

    def test_click_without_an_object_id_is_refused(self) -> None:
        """A person who cannot be identified cannot decide, even if the membership flag says yes."""
        outcome = decide(click(" ", member=True))
        assert isinstance(outcome, Refused)
        assert "object id" in outcome.reason


class TestTheSuspectCannotDecide:
    @pytest.mark.parametrize("member", [True, False, None])
    def test_suspect_by_object_id_is_refused_even_as_an_approver(self, member: bool | None) -> None:
        """The target cannot approve or reject their own containment, group member or not."""
        outcome = decide(click(SUSPECT.upper(), "someone@contoso.com", member=member))
        assert outcome == Refused("the suspect user cannot decide their own containment")

    def test_suspect_by_upn_is_refused_even_when_allow_listed(self) -> None:
        """Matching the UPN (case-insensitive) is enough, even for an allow-listed object id."""
        outcome = decide(click(LISTED, "VICTIM@contoso.com"))
        assert outcome == Refused("the suspect user cannot decide their own containment")

    @pytest.mark.parametrize("upn", ["", "   "])
    def test_clicker_whose_upn_is_unknown_is_refused(self, upn: str) -> None:
        """Without the clicker's UPN the suspect cannot be ruled out by name: a refusal, never a pass."""
        outcome = decide(click(LISTED, upn))
        assert isinstance(outcome, Refused)
        assert "UPN could not be checked in the directory" in outcome.reason


class TestBinding:
    @pytest.mark.parametrize(
        "change",
        [{"plan_digest": "0" * 32}, {"incident_id": "INC-43"}, {"target_object_id": ANALYST}],
        ids=["other plan", "other incident", "other user"],
    )
    def test_click_bound_to_another_plan_incident_or_user_is_refused(self, change: dict[str, str]) -> None:
        """A card for a different (incident, user, plan digest) cannot decide this request."""
        outcome = decide(click(**change))
        assert isinstance(outcome, Refused)
        assert "different incident, user or plan" in outcome.reason

    def test_plan_without_object_id_is_bound_by_upn(self) -> None:
        """For an account known only by UPN, the card's UPN (any case) binds the click."""
        account = Account("guest@contoso.com")
        plan = plan_containment("INC-42", account, PLAN_ASSESSMENT, SETTINGS)
        request = ApprovalRequest.for_plan(plan, CREATED)
        attempt = Attempt(
            "INC-42", "", plan.digest, True, ANALYST, "analyst@contoso.com", NOW, True, target_upn="GUEST@contoso.com"
        )
        assert isinstance(authorise(request, attempt, decided=None, settings=SETTINGS, now=NOW), Authorised)
        other = replace(attempt, target_upn="someone@contoso.com")
        assert isinstance(authorise(request, other, decided=None, settings=SETTINGS, now=NOW), Refused)

    def test_binding_ignores_case_of_ids(self) -> None:
        """Object ids and incident ids compare case-insensitively; the digest must be exact."""
        outcome = decide(click(incident_id="inc-42", target_object_id=SUSPECT.upper()))
        assert isinstance(outcome, Authorised)


class TestOnceAndInTime:
    def test_second_click_is_answered_already_decided_and_changes_nothing(self) -> None:
        """After a decision, any later click returns that first decision untouched."""
        first = Decision(True, PLAN.digest, ANALYST, "analyst@contoso.com", NOW)
        outcome = decide(click(LISTED, "lead@contoso.com", approve=False), decided=first, now=NOW + timedelta(minutes=1))
        assert outcome == AlreadyDecided(first)

    def test_already_decided_wins_over_refusal_and_expiry(self) -> None:
        """Even a non-approver clicking after the deadline hears who decided, not a refusal."""
        first = Decision(False, PLAN.digest, LISTED, "lead@contoso.com", NOW)
        outcome = decide(click(member=False), decided=first, now=CREATED + timedelta(hours=9))
        assert outcome == AlreadyDecided(first)

    def test_click_after_the_timeout_is_expired(self) -> None:
        """created_at + REPLAY_APPROVAL_TIMEOUT_HOURS is the deadline, as the orchestration's timer."""
        outcome = decide(click(), now=CREATED + timedelta(hours=4, seconds=1))
        assert outcome == Expired(CREATED + timedelta(hours=4))

    def test_click_at_the_deadline_still_counts(self) -> None:
        """The deadline itself is inside the window."""
        assert isinstance(decide(click(), now=CREATED + timedelta(hours=4)), Authorised)

    def test_expiry_follows_the_setting(self) -> None:
        """A one-hour timeout expires a click that a four-hour one accepts."""
        short = replace(SETTINGS, approval_timeout_hours=1)
        later = CREATED + timedelta(hours=2)
        assert isinstance(decide(click(), settings=short, now=later), Expired)
        assert isinstance(decide(click(), now=later), Authorised)


class TestAuditLine:
    def test_authorised_approval_names_the_person_time_user_and_incident(self) -> None:
        """The recorded sentence says who approved what, when, for which incident."""
        attempt = click()
        line = audit_line(REQUEST, attempt, decide(attempt))
        assert line == (
            f"2026-06-15 16:20:00 UTC: analyst@contoso.com approved containment of victim@contoso.com "
            f"(incident INC-42, plan {PLAN.digest[:12]})."
        )

    def test_refused_attempt_is_recordable_with_the_reason(self) -> None:
        """A refusal is recorded too, with the person, the attempted decision and the reason."""
        attempt = click(SUSPECT, "victim@contoso.com", approve=False)
        line = audit_line(REQUEST, attempt, decide(attempt))
        assert line.startswith("2026-06-15 16:20:00 UTC: victim@contoso.com tried to decide (rejected)")
        assert line.endswith("was refused: the suspect user cannot decide their own containment.")

    def test_late_click_names_who_decided_first_and_when(self) -> None:
        """An already-decided click records the late clicker and the first decider with both times."""
        first = Decision(True, PLAN.digest, ANALYST, "analyst@contoso.com", NOW)
        attempt = click(LISTED, "lead@contoso.com", at=NOW + timedelta(minutes=5))
        line = audit_line(REQUEST, attempt, decide(attempt, decided=first))
        assert "2026-06-15 16:25:00 UTC: lead@contoso.com clicked approved" in line
        assert line.endswith("nothing changed: already approved by analyst@contoso.com at 2026-06-15 16:20:00 UTC.")

    def test_expired_click_names_the_deadline(self) -> None:
        """An expired click records when the request expired."""
        attempt = click(at=CREATED + timedelta(hours=5))
        line = audit_line(REQUEST, attempt, decide(attempt, now=attempt.at))
        assert line.endswith("nothing changed: the request expired at 2026-06-15 20:00:00 UTC.")

    def test_hostile_upn_is_kept_as_data(self) -> None:
        """The line is raw text: markup in a UPN is not escaped here (the comment or card writer does it)."""
        attempt = click(upn="<img src=x onerror=alert(1)>@contoso.com", member=False)
        line = audit_line(REQUEST, attempt, decide(attempt))
        assert "<img src=x onerror=alert(1)>@contoso.com tried to decide" in line

    def test_person_without_upn_is_named_by_object_id(self) -> None:
        """When the directory gave no UPN, the object id identifies the person in the record (and the click is refused)."""
        attempt = click(upn="")
        line = audit_line(REQUEST, attempt, decide(attempt))
        assert f"UTC: {ANALYST} tried to decide (approved)" in line
        assert "UPN could not be checked in the directory" in line

    def test_local_time_input_is_recorded_in_utc(self) -> None:
        """Times are written in UTC whatever zone the caller's datetime carries."""
        plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
        attempt = click()
        line = audit_line(REQUEST, attempt, decide(attempt, now=plus_two))
        assert line.startswith("2026-06-15 16:20:00 UTC:")
