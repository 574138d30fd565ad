"""
The attacker's footholds: MFA methods, devices and inbox rules that outlive a session revocation.

Pure judgements over what Graph lists and what the evidence recorded (AuditLogs registrations from
suspect addresses, the mailbox audit of the scope question). The enrichment runs them before the
approval card is posted, so the approver sees what looks like the attacker's; containment runs
them again when it acts, because the attacker may have added more while the card waited.

A finding always says why. Deleting is proposed only for what the evidence ties to the attacker
(registered from a suspect address, a rule the mailbox audit attributes to a suspect session);
what is merely recent is listed for review, never deleted on that ground alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from common.times import utc_text
from enrichment.domain.identity import IdentityContext
from enrichment.domain.model import SecurityEvent, TimeWindow, UserEvidence
from playbooks.domain.directory import AuthMethod, MessageRule, RegisteredDevice

#: AuditLogs operations that add a method (see enrichment.queries.kql.SECURITY_OPERATIONS for all we read).
REGISTRATION_OPERATIONS = frozenset(
    {"user registered security info", "user registered all required security info", "admin registered security info"}
)
#: AuditLogs operations that register or join a device, or make the user its owner or user.
DEVICE_OPERATIONS = frozenset({"register device", "add registered owner to device", "add registered users to device"})
#: How far a method's or device's creation time and its AuditLogs event may be apart and still be the same event.
MATCH_TOLERANCE = timedelta(minutes=10)


def describe_method(method: AuthMethod) -> str:
    return f"{method.kind} method {method.label!r}" if method.label else f"{method.kind} method {method.id}"


def describe_device(device: RegisteredDevice) -> str:
    system = f", {device.operating_system}" if device.operating_system else ""
    return f"device {device.name!r} ({device.id}{system})" if device.name else f"device {device.id}{system}"


def suspicious_window(evidence: UserEvidence, suspect_ips: Collection[str], now: datetime) -> TimeWindow:
    """
    From the first sign-in from a suspect IP (or the evidence window's start) until now.

    It runs to `now`, not to the end of the evidence window, because the attacker may register a
    method while the approval is pending.
    """
    firsts = [s.first for s in evidence.signins if s.ip in suspect_ips]
    start = min(firsts) if firsts else evidence.window.start
    return TimeWindow(start, max(now, evidence.window.end, start))


def _from_suspects(events: Iterable[SecurityEvent], suspect_ips: Collection[str]) -> list[SecurityEvent]:
    return [e for e in events if e.actor_ip and e.actor_ip in suspect_ips and e.result.lower() in ("success", "")]


# -- MFA methods ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodFinding:
    """A method that looks like the attacker's, with every reason that says so."""

    method: AuthMethod
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MfaAudit:
    """
    The MFA audit's verdict on each method.

    `unmatched` are registrations from a suspect IP that no listed method could be tied to (phone,
    e-mail and OATH methods carry no creation time): an analyst must look at them, nothing is
    deleted on their account. `suspect_changes` are the other security-info changes from suspect IPs.
    """

    window: TimeWindow
    methods: tuple[AuthMethod, ...]
    flagged: tuple[MethodFinding, ...]
    unmatched: tuple[SecurityEvent, ...] = ()
    suspect_changes: tuple[SecurityEvent, ...] = ()

    def summary(self) -> str:
        parts = [f"{len(self.methods)} method(s) registered"]
        if self.flagged:
            parts.append(
                f"{len(self.flagged)} flagged: "
                + "; ".join(f"{describe_method(f.method)} ({', '.join(f.reasons)})" for f in self.flagged)
            )
        else:
            parts.append(
                f"none registered between {utc_text(self.window.start)} and {utc_text(self.window.end)} or from a suspect IP"
            )
        parts.extend(
            f"review: {e.operation} from suspect IP {e.actor_ip} at {utc_text(e.time)} matches no listed method"
            for e in self.unmatched
        )
        parts.extend(f"review: {e.operation} from suspect IP {e.actor_ip} at {utc_text(e.time)}" for e in self.suspect_changes)
        return "; ".join(parts)


def audit_methods(
    methods: Iterable[AuthMethod],
    events: Iterable[SecurityEvent],
    *,
    window: TimeWindow,
    suspect_ips: Collection[str],
    tolerance: timedelta = MATCH_TOLERANCE,
) -> MfaAudit:
    """
    Flag methods added during the suspicious window or registered from a suspect IP (pure).

    A method is tied to an AuditLogs registration when its createdDateTime is within `tolerance`
    of the event. The password is never flagged: it is not a registration and cannot be deleted.
    Device events are the device audit's, not this one's.
    """
    listed = tuple(methods)
    changes = [e for e in _from_suspects(events, suspect_ips) if e.operation.lower() not in DEVICE_OPERATIONS]
    registrations = [e for e in changes if e.operation.lower() in REGISTRATION_OPERATIONS]
    matched: set[SecurityEvent] = set()
    flagged: list[MethodFinding] = []
    for method in listed:
        created = method.created_at
        if method.kind == "password" or created is None:
            continue
        reasons: list[str] = []
        if window.contains(created):
            reasons.append(f"registered {utc_text(created)}, inside the suspicious window")
        for event in registrations:
            if abs(created - event.time) <= tolerance:
                matched.add(event)
                reasons.append(f"registered from suspect IP {event.actor_ip} at {utc_text(event.time)}")
        if reasons:
            flagged.append(MethodFinding(method, tuple(dict.fromkeys(reasons))))
    unmatched = tuple(e for e in registrations if e not in matched)
    others = tuple(e for e in changes if e.operation.lower() not in REGISTRATION_OPERATIONS)
    return MfaAudit(window, listed, tuple(flagged), unmatched, others)


# -- devices ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceFinding:
    """A device and why it is listed: tied to a suspect address (`attacker`) or only recent (review)."""

    device: RegisteredDevice
    reason: str
    attacker: bool


@dataclass(frozen=True, slots=True)
class DeviceAudit:
    """
    The user's registered devices judged against the window and the suspect addresses.

    `flagged` are the devices an AuditLogs registration from a suspect address names (same display
    name, registration time within the tolerance when Graph gives one): containment may delete
    those. `review` are devices registered inside the window with nothing tying them to a suspect
    address. `unmatched` are device events from suspect addresses no listed device answers (already
    deleted, or renamed).
    """

    window: TimeWindow
    devices: tuple[RegisteredDevice, ...]
    flagged: tuple[DeviceFinding, ...]
    review: tuple[DeviceFinding, ...] = ()
    unmatched: tuple[SecurityEvent, ...] = ()

    def summary(self) -> str:
        parts = [f"{len(self.devices)} device(s) registered"]
        if self.flagged:
            parts.append(
                f"{len(self.flagged)} from a suspect address: "
                + "; ".join(f"{describe_device(f.device)} ({f.reason})" for f in self.flagged)
            )
        else:
            parts.append("none registered from a suspect address")
        parts.extend(f"review: {describe_device(f.device)} ({f.reason})" for f in self.review)
        parts.extend(
            f"review: {e.operation} {e.detail!r} from suspect IP {e.actor_ip} at {utc_text(e.time)} matches no listed device"
            for e in self.unmatched
        )
        return "; ".join(parts)


def audit_devices(
    devices: Iterable[RegisteredDevice],
    events: Iterable[SecurityEvent],
    *,
    window: TimeWindow,
    suspect_ips: Collection[str],
    tolerance: timedelta = MATCH_TOLERANCE,
) -> DeviceAudit:
    """
    Tie the user's devices to AuditLogs device registrations from suspect addresses (pure).

    AuditLogs names the device by its display name (the event's target); a name alone is weak
    evidence, so when Graph gives the registration time it must also fall within `tolerance` of
    the event.
    """
    listed = tuple(devices)
    registrations = [e for e in _from_suspects(events, suspect_ips) if e.operation.lower() in DEVICE_OPERATIONS]
    matched: set[SecurityEvent] = set()
    flagged: list[DeviceFinding] = []
    review: list[DeviceFinding] = []
    for device in listed:
        name = device.name.strip().lower()
        ties = [
            e
            for e in registrations
            if name
            and e.detail.strip().lower() == name
            and (device.registered_at is None or abs(device.registered_at - e.time) <= tolerance)
        ]
        matched.update(ties)
        if ties:
            first = min(ties, key=lambda e: e.time)
            flagged.append(
                DeviceFinding(
                    device, f"{first.operation.lower()} from suspect IP {first.actor_ip} at {utc_text(first.time)}", True
                )
            )
        elif device.registered_at is not None and window.contains(device.registered_at):
            review.append(
                DeviceFinding(device, f"registered {utc_text(device.registered_at)}, inside the suspicious window", False)
            )
    unmatched = tuple(e for e in registrations if e not in matched)
    return DeviceAudit(window, listed, tuple(flagged), tuple(review), unmatched)


# -- inbox rules --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttackerInboxRule:
    """
    An inbox rule the mailbox audit attributes to a suspect session or address (issue 13's scope
    evidence): which mailbox, the rule's name, when and from where it was created or changed.
    """

    mailbox: str
    name: str
    at: datetime
    ip: str
    operation: str = "New-InboxRule"


@dataclass(frozen=True, slots=True)
class AttackerForwarding:
    """Forwarding set on the mailbox from a suspect session or address (Set-Mailbox ForwardingSmtpAddress)."""

    mailbox: str
    address: str
    at: datetime
    ip: str


@dataclass(frozen=True, slots=True)
class RuleFinding:
    rule: MessageRule
    evidence: AttackerInboxRule

    @property
    def reason(self) -> str:
        e = self.evidence
        return f"{e.operation} from suspect IP {e.ip} at {utc_text(e.at)}"


@dataclass(frozen=True, slots=True)
class RuleAudit:
    """
    The inbox's rules against the rules the evidence attributes to the attacker.

    `flagged` are listed rules with the attacker's rule name; `gone` are attacker rules no listed
    rule carries any more (removed already, or renamed: the mailbox audit names what to look for).
    Every other rule is the user's own and is never touched.
    """

    rules: tuple[MessageRule, ...]
    flagged: tuple[RuleFinding, ...]
    gone: tuple[AttackerInboxRule, ...] = ()

    def summary(self) -> str:
        parts = [f"{len(self.rules)} inbox rule(s)"]
        if self.flagged:
            parts.append(
                f"{len(self.flagged)} made by the attacker: "
                + "; ".join(f"rule {f.rule.name!r} ({f.reason})" for f in self.flagged)
            )
        else:
            parts.append("none made from a suspect session")
        parts.extend(
            f"rule {g.name!r} ({g.operation} from {g.ip} at {utc_text(g.at)}) is no longer in the inbox" for g in self.gone
        )
        return "; ".join(parts)


def _rule_key(name: str) -> str:
    return " ".join(name.split()).lower()


def audit_inbox_rules(rules: Iterable[MessageRule], attacker: Iterable[AttackerInboxRule]) -> RuleAudit:
    """
    Match the inbox's rules to the attacker's by name (case and spacing aside), the only key the
    mailbox audit and Graph share: OfficeActivity records the rule's name, not its Graph id.
    """
    listed = tuple(rules)
    evidence = tuple(attacker)
    by_name = {_rule_key(e.name): e for e in sorted(evidence, key=lambda e: e.at)}
    flagged = tuple(RuleFinding(rule, by_name[_rule_key(rule.name)]) for rule in listed if _rule_key(rule.name) in by_name)
    present = {_rule_key(rule.name) for rule in listed}
    gone = tuple(e for key, e in by_name.items() if key not in present)
    return RuleAudit(listed, flagged, gone)


#: Characters PowerShell reads as a single quote (ASCII and the typographic ones).
_POWERSHELL_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")


def _powershell_literal(value: str) -> str:
    """A PowerShell single-quoted string: nothing inside is expanded; a quote is doubled."""
    cleaned = "".join(c + c if c in _POWERSHELL_QUOTES else c for c in value if c.isprintable())
    return f"'{cleaned}'"


def forwarding_removal(forwarding: AttackerForwarding) -> str:
    """
    The Exchange Online command that removes forwarding: Graph v1.0 cannot write a mailbox's
    ForwardingSmtpAddress (it is Set-Mailbox only), so it is a step for a person with Exchange rights.
    """
    return (
        f"Set-Mailbox -Identity {_powershell_literal(forwarding.mailbox)} -ForwardingSmtpAddress $null "
        "-ForwardingAddress $null -DeliverToMailboxAndForward $false"
    )


def forwarding_step(forwarding: AttackerForwarding) -> str:
    """The step by hand for forwarding the attacker set, with its exact command."""
    return (
        f"remove the forwarding to {forwarding.address} set from {forwarding.ip} at {utc_text(forwarding.at)} "
        f"(Graph cannot): {forwarding_removal(forwarding)}"
    )


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """The identity context and the footholds audits of one account, or why each could not be read."""

    identity: IdentityContext
    mfa: MfaAudit | None = None
    devices: DeviceAudit | None = None
    problems: tuple[str, ...] = ()
