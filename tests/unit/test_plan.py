"""The containment plan: which actions are proposed, what others already did, what a person must do."""

from __future__ import annotations

from datetime import UTC, datetime

from common.settings import OPTIONAL_ACTIONS, Settings
from enrichment.domain.model import Account, Assessment, Verdict
from playbooks.domain.footholds import AttackerForwarding
from playbooks.domain.plan import ActionKind, attack_disruption, plan_containment

USER = Account("victim@contoso.com", "11111111-2222-3333-4444-555555555555")
LIKELY = Assessment(92, Verdict.REPLAY_LIKELY, (), (), ("203.0.113.9",))


def settings(actions: str = "") -> Settings:
    return Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": actions} if actions else {})


class TestActions:
    def test_new_actions_are_off_by_default(self) -> None:
        """Without REPLAY_OPTIONAL_ACTIONS only revoke and the audit are proposed."""
        plan = plan_containment("INC-1", USER, LIKELY, settings())
        assert [a.kind for a in plan.actions] == [ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS]

    def test_every_optional_action_is_proposed_in_plan_order_when_enabled(self) -> None:
        """All optional actions on: they follow revoke and audit, in ActionKind order, each destructive."""
        plan = plan_containment("INC-1", USER, LIKELY, settings(",".join(OPTIONAL_ACTIONS)))
        assert [a.kind.value for a in plan.actions] == [
            "revoke_sessions",
            "audit_mfa_methods",
            "confirm_compromised",
            "disable_account",
            "delete_flagged_methods",
            "require_password_change",
            "delete_attacker_devices",
            "remove_inbox_rules",
        ]
        assert [a.destructive for a in plan.actions] == [True, False, True, True, True, True, True, True]

    def test_existing_plans_keep_their_digest(self) -> None:
        """Appending kinds did not change the digest of a plan made of the old ones (approvals in flight stay valid)."""
        plan = plan_containment("INC-1", USER, LIKELY, settings("disable_account"))
        assert plan.digest == "7593b6029abac6eb9432b5000bdfaaa7"  # the digest main computed before the new kinds
        wider = plan_containment("INC-1", USER, LIKELY, settings("disable_account,remove_inbox_rules"))
        assert wider.digest != plan.digest


class TestAttackDisruption:
    def test_the_tag_or_the_title_shows_that_defender_acted(self) -> None:
        """'Attack Disruption' label (any case) or '(attack disruption)' in the title; anything else is not."""
        assert "Attack Disruption" in attack_disruption("AiTM", ["Suspicious", "attack disruption"])
        assert "title" in attack_disruption("BEC financial fraud (attack disruption)")
        assert attack_disruption("Attack disruption playbook test", ["disruption"]) == ""

    def test_disabling_is_marked_done_not_proposed_again(self) -> None:
        """With disruption, disable_account leaves the actions and is listed as already done by Defender."""
        reason = attack_disruption("x (attack disruption)")
        plan = plan_containment("INC-1", USER, LIKELY, settings("disable_account,confirm_compromised"), disruption=reason)
        assert ActionKind.DISABLE_ACCOUNT not in [a.kind for a in plan.actions]
        assert ActionKind.CONFIRM_COMPROMISED in [a.kind for a in plan.actions]
        ((kind, who),) = plan.already_done
        assert kind is ActionKind.DISABLE_ACCOUNT
        assert who.startswith("Defender's automatic attack disruption (")

    def test_no_disruption_no_mark(self) -> None:
        """Without a sign of disruption nothing is marked done."""
        assert plan_containment("INC-1", USER, LIKELY, settings("disable_account")).already_done == ()


class TestManualSteps:
    def test_forwarding_is_a_step_by_hand_with_its_command(self) -> None:
        """Forwarding set from a suspect address cannot be removed through Graph: the plan names the Set-Mailbox command."""
        forwarding = AttackerForwarding(
            "victim@contoso.com", "drop@evil.example", datetime(2026, 6, 15, 16, tzinfo=UTC), "10.0.0.1"
        )
        plan = plan_containment("INC-1", USER, LIKELY, settings(), forwarding=[forwarding])
        (step,) = plan.manual
        assert step.startswith("remove the forwarding to drop@evil.example set from 10.0.0.1 at 2026-06-15 16:00 UTC")
        assert step.endswith(
            "Set-Mailbox -Identity 'victim@contoso.com' -ForwardingSmtpAddress $null -ForwardingAddress $null "
            "-DeliverToMailboxAndForward $false"
        )

    def test_no_containment_no_steps(self) -> None:
        """A benign verdict proposes nothing, not even steps by hand."""
        benign = Assessment(5, Verdict.BENIGN, (), (), ())
        forwarding = AttackerForwarding("v@c", "d@e", datetime(2026, 6, 15, tzinfo=UTC), "1.2.3.4")
        assert plan_containment("INC-1", USER, benign, settings(), forwarding=[forwarding]).manual == ()
