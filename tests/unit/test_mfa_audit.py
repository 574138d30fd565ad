"""The pure audits of the attacker's footholds: MFA methods, devices, inbox rules and forwarding."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from enrichment.domain.model import Account, Baseline, SecurityEvent, SignIn, Table, TimeWindow, UserEvidence
from playbooks.domain.directory import AuthMethod, MessageRule, RegisteredDevice
from playbooks.domain.footholds import (
    AttackerForwarding,
    AttackerInboxRule,
    audit_devices,
    audit_inbox_rules,
    audit_methods,
    forwarding_removal,
    suspicious_window,
)

AT = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)
WINDOW = TimeWindow(AT - timedelta(hours=2), AT + timedelta(hours=1))
SUSPECT = "203.0.113.9"
HOME = "198.51.100.7"


def registered(
    at: datetime, ip: str, *, operation: str = "User registered security info", result: str = "success"
) -> SecurityEvent:
    return SecurityEvent(at, operation, result, "victim@contoso.com", ip, "victim@contoso.com")


class TestFlags:
    def test_method_registered_from_the_suspect_ip_is_flagged_and_the_old_one_is_not(self) -> None:
        """An Authenticator added minutes after a suspect-IP registration is flagged; last year's is not."""
        new = AuthMethod("m-new", "microsoftAuthenticator", "Attacker phone", AT + timedelta(minutes=3))
        old = AuthMethod("m-old", "microsoftAuthenticator", "My iPhone", AT - timedelta(days=400))
        result = audit_methods([old, new], [registered(AT, SUSPECT)], window=WINDOW, suspect_ips={SUSPECT})
        assert [f.method.id for f in result.flagged] == ["m-new"]
        assert result.flagged[0].reasons == (
            "registered 2026-06-15 16:03 UTC, inside the suspicious window",
            f"registered from suspect IP {SUSPECT} at 2026-06-15 16:00 UTC",
        )
        assert result.unmatched == ()

    def test_suspect_ip_registration_outside_the_window_still_flags_its_method(self) -> None:
        """The suspect IP alone is enough, even before the suspicious window starts."""
        early = WINDOW.start - timedelta(hours=5)
        method = AuthMethod("f1", "fido2", "YubiKey", early + timedelta(minutes=2))
        result = audit_methods([method], [registered(early, SUSPECT)], window=WINDOW, suspect_ips={SUSPECT})
        assert result.flagged[0].reasons == (f"registered from suspect IP {SUSPECT} at 2026-06-15 09:00 UTC",)

    def test_method_created_in_the_window_from_a_home_ip_is_flagged_for_the_window_only(self) -> None:
        """Inside the window is suspicious by itself; the home-IP event adds no suspect-IP reason."""
        method = AuthMethod("w1", "windowsHelloForBusiness", "LAPTOP-1", AT)
        result = audit_methods([method], [registered(AT, HOME)], window=WINDOW, suspect_ips={SUSPECT})
        assert result.flagged[0].reasons == ("registered 2026-06-15 16:00 UTC, inside the suspicious window",)

    def test_registration_beyond_the_tolerance_is_not_tied_to_the_method(self) -> None:
        """A suspect registration 30 minutes away from the creation time is a different event."""
        method = AuthMethod("m1", "microsoftAuthenticator", "Phone", WINDOW.start - timedelta(hours=3))
        event = registered(WINDOW.start - timedelta(hours=3, minutes=-30), SUSPECT)
        result = audit_methods([method], [event], window=WINDOW, suspect_ips={SUSPECT})
        assert result.flagged == ()
        assert result.unmatched == (event,)

    def test_password_is_never_flagged(self) -> None:
        """The password method is not a registration and cannot be deleted."""
        password = AuthMethod("pw", "password", "", AT)
        assert audit_methods([password], [registered(AT, SUSPECT)], window=WINDOW, suspect_ips={SUSPECT}).flagged == ()


class TestForReview:
    def test_suspect_registration_with_no_dated_method_is_left_for_review(self) -> None:
        """A phone (no creation time) cannot be tied to the event: reported, never flagged for deletion."""
        phone = AuthMethod("p1", "phone", "+1 206 555 0100", None)
        event = registered(AT, SUSPECT)
        result = audit_methods([phone], [event], window=WINDOW, suspect_ips={SUSPECT})
        assert result.flagged == ()
        assert result.unmatched == (event,)
        assert "review: User registered security info from suspect IP 203.0.113.9" in result.summary()

    def test_failed_registrations_and_other_ips_are_ignored(self) -> None:
        """A failed attempt, or a registration from a non-suspect IP, is not the attacker's persistence."""
        events = [registered(AT, SUSPECT, result="failure"), registered(AT, HOME)]
        result = audit_methods([], events, window=WINDOW, suspect_ips={SUSPECT})
        assert result.unmatched == ()
        assert result.suspect_changes == ()

    def test_other_security_info_changes_from_a_suspect_ip_are_reported(self) -> None:
        """Deleting or changing the default method from a suspect IP is listed for review."""
        change = registered(AT, SUSPECT, operation="User changed default security info")
        result = audit_methods([], [change], window=WINDOW, suspect_ips={SUSPECT})
        assert result.suspect_changes == (change,)
        assert "review: User changed default security info from suspect IP" in result.summary()

    def test_summary_without_findings_says_what_was_checked(self) -> None:
        """A clean audit names the window it checked."""
        result = audit_methods([AuthMethod("pw", "password")], [], window=WINDOW, suspect_ips={SUSPECT})
        assert result.summary() == (
            "1 method(s) registered; none registered between 2026-06-15 14:00 UTC and 2026-06-15 17:00 UTC or from a suspect IP"
        )

    def test_hostile_label_is_kept_raw_in_the_summary(self) -> None:
        """A display name chosen by the attacker stays data; escaping is the renderer's job."""
        method = AuthMethod("m1", "microsoftAuthenticator", "<script>alert(1)</script>", AT)
        result = audit_methods([method], [], window=WINDOW, suspect_ips={SUSPECT})
        assert "microsoftAuthenticator method '<script>alert(1)</script>'" in result.summary()


class TestSuspiciousWindow:
    def evidence(self, *ips: str) -> UserEvidence:
        signins = tuple(
            SignIn("victim@contoso.com", "u1", Table.NON_INTERACTIVE, AT - timedelta(hours=i), AT - timedelta(hours=i), 1, ip)
            for i, ip in enumerate(ips, start=1)
        )
        window = TimeWindow(AT - timedelta(hours=24), AT + timedelta(hours=6))
        return UserEvidence(Account("victim@contoso.com"), AT, window, signins, Baseline(window))

    def test_starts_at_the_first_suspect_sign_in_and_runs_to_now(self) -> None:
        """The window opens with the earliest suspect-IP sign-in and stays open until containment runs."""
        evidence = self.evidence(HOME, SUSPECT, SUSPECT)
        now = AT + timedelta(hours=8)
        assert suspicious_window(evidence, {SUSPECT}, now) == TimeWindow(AT - timedelta(hours=3), now)

    def test_without_suspect_sign_ins_it_is_the_evidence_window(self) -> None:
        """No suspect IP seen: the whole evidence window (to its end, or now if later)."""
        evidence = self.evidence(HOME)
        assert suspicious_window(evidence, {SUSPECT}, AT) == evidence.window

    def test_device_registrations_are_left_to_the_device_audit(self) -> None:
        """A 'Register device' from a suspect IP is not an MFA change: the device audit reports it."""
        event = registered(AT, SUSPECT, operation="Register device")
        assert audit_methods([], [event], window=WINDOW, suspect_ips={SUSPECT}).suspect_changes == ()


DEVICE_AT = AT + timedelta(minutes=5)


def device_event(name: str, at: datetime = DEVICE_AT, ip: str = SUSPECT, operation: str = "Register device") -> SecurityEvent:
    return SecurityEvent(at, operation, "success", "victim@contoso.com", ip, "", name)


class TestDevices:
    def test_the_device_registered_from_the_suspect_ip_is_flagged_by_name_and_time(self) -> None:
        """Same display name and a registration time within ten minutes of the suspect-IP event: the attacker's."""
        attacker = RegisteredDevice("d-1", "DESKTOP-7Q2", registered_at=DEVICE_AT + timedelta(seconds=40))
        own = RegisteredDevice("d-2", "Vic's laptop", registered_at=AT - timedelta(days=200))
        audit = audit_devices([own, attacker], [device_event("DESKTOP-7Q2")], window=WINDOW, suspect_ips={SUSPECT})
        assert [(f.device.id, f.attacker) for f in audit.flagged] == [("d-1", True)]
        assert audit.flagged[0].reason == f"register device from suspect IP {SUSPECT} at 2026-06-15 16:05 UTC"
        assert audit.review == ()
        assert audit.unmatched == ()

    def test_a_name_alone_far_from_the_event_is_not_the_attackers(self) -> None:
        """A same-named device registered a year earlier is not tied to today's suspect-IP event."""
        old = RegisteredDevice("d-3", "DESKTOP-7Q2", registered_at=AT - timedelta(days=365))
        audit = audit_devices([old], [device_event("DESKTOP-7Q2")], window=WINDOW, suspect_ips={SUSPECT})
        assert audit.flagged == ()
        assert [e.detail for e in audit.unmatched] == ["DESKTOP-7Q2"]
        assert "matches no listed device" in audit.summary()

    def test_recent_device_from_a_home_ip_is_for_review_only(self) -> None:
        """Registered inside the window but from the user's own address: listed for review, never deletable."""
        fresh = RegisteredDevice("d-4", "iPhone", registered_at=AT)
        audit = audit_devices([fresh], [device_event("iPhone", ip=HOME)], window=WINDOW, suspect_ips={SUSPECT})
        assert audit.flagged == ()
        assert [(f.device.id, f.attacker) for f in audit.review] == [("d-4", False)]
        assert audit.summary() == (
            "1 device(s) registered; none registered from a suspect address; "
            "review: device 'iPhone' (d-4) (registered 2026-06-15 16:00 UTC, inside the suspicious window)"
        )

    def test_failed_device_events_do_not_count(self) -> None:
        """A failed registration attempt from the suspect IP ties nothing."""
        attempt = SecurityEvent(DEVICE_AT, "Register device", "failure", "victim@contoso.com", SUSPECT, "", "X")
        audit = audit_devices(
            [RegisteredDevice("d-5", "X", registered_at=DEVICE_AT)], [attempt], window=WINDOW, suspect_ips={SUSPECT}
        )
        assert audit.flagged == ()


class TestInboxRules:
    EVIL = AttackerInboxRule("victim@contoso.com", "..", AT, "10.0.0.1")

    def test_only_the_rule_the_mailbox_audit_attributes_to_the_attacker_is_flagged(self) -> None:
        """Matched by name (case and spacing aside); the user's own rules are never flagged."""
        rules = [MessageRule("r1", "Newsletters"), MessageRule("r2", " .. "), MessageRule("r3", "Boss")]
        audit = audit_inbox_rules(rules, [self.EVIL])
        assert [f.rule.id for f in audit.flagged] == ["r2"]
        assert audit.flagged[0].reason == "New-InboxRule from suspect IP 10.0.0.1 at 2026-06-15 16:00 UTC"
        assert audit.gone == ()

    def test_an_attacker_rule_no_longer_in_the_inbox_is_reported_gone(self) -> None:
        """Already removed (or renamed): said plainly, nothing deleted."""
        audit = audit_inbox_rules([MessageRule("r1", "Newsletters")], [self.EVIL])
        assert audit.flagged == ()
        assert audit.gone == (self.EVIL,)
        assert "rule '..' (New-InboxRule from 10.0.0.1 at 2026-06-15 16:00 UTC) is no longer in the inbox" in audit.summary()


class TestForwarding:
    def test_the_command_removes_forwarding_for_the_mailbox(self) -> None:
        """The exact Exchange Online command: both forwarding properties cleared, delivery kept local."""
        forwarding = AttackerForwarding("victim@contoso.com", "drop@evil.example", AT, "10.0.0.1")
        assert forwarding_removal(forwarding) == (
            "Set-Mailbox -Identity 'victim@contoso.com' -ForwardingSmtpAddress $null -ForwardingAddress $null "
            "-DeliverToMailboxAndForward $false"
        )

    @given(st.text(max_size=40))
    def test_no_mailbox_name_escapes_the_quoted_identity(self, mailbox: str) -> None:
        """Every quote PowerShell recognises is doubled and control characters dropped: the argument stays one literal."""
        command = forwarding_removal(AttackerForwarding(mailbox, "x@y", AT, "1.2.3.4"))
        identity = command.removeprefix("Set-Mailbox -Identity ").split(" -ForwardingSmtpAddress")[0]
        inner = identity[1:-1]
        assert identity[0] == identity[-1] == "'"
        quotes = "'\u2018\u2019\u201a\u201b"
        runs = re.findall(f"[{quotes}]+", inner)
        assert all(len(run) % 2 == 0 for run in runs)
        assert all(c.isprintable() for c in command)
