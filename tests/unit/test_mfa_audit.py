"""The pure MFA audit: which registered methods look like the attacker's persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from enrichment.domain.model import Account, Baseline, SecurityEvent, SignIn, Table, TimeWindow, UserEvidence
from playbooks.adapters.graph import AuthMethod
from playbooks.services.containment import audit_methods, suspicious_window

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
