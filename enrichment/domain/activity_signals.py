"""
Signals from what the suspect sessions did: acts that only an attacker does with a stolen session.

A person does make inbox rules, forward mail and consent to apps, from their own laptop. These rules
read only the activity `attribution` ties to a suspect address, token or session, so the user's own
look-alikes never count, and they fire on what attackers do to keep access and hide it (Microsoft's
token-theft and BEC playbooks): a rule that moves or deletes mail, forwarding to another domain, the
mailbox read in bulk by a script, consent to an application the user never used.

They are decided after every other signal, because "suspect" means implicated by those. Their weights
sit in `signals.CATALOGUE` with the others. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from enrichment.domain import networks
from enrichment.domain.activity import ActKind, GraphFamily
from enrichment.domain.attribution import SuspectSession, attacker_forwarding, attacker_rules, attribute
from enrichment.domain.model import Signal
from enrichment.domain.picture import Picture, utc_text
from enrichment.domain.signals import CATALOGUE

#: Graph mail-read requests, or mail items in MailItemsAccessed, from one scripted client that make "bulk".
MASS_MAIL_REQUESTS = 20
MASS_MAIL_ITEMS = 50
#: Rule operations that leave a rule in place (a removal hides nothing).
_RULE_KEEPING = ("new-inboxrule", "set-inboxrule", "enable-inboxrule", "updateinboxrules")
_CONSENT = ("consent to application", "add delegated permission grant", "add app role assignment to service principal")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_LISTED = 3


def _signal(signal_id: str, detail: str, ips: Sequence[str]) -> Signal:
    return Signal(signal_id, CATALOGUE[signal_id].weight, detail, tuple(sorted(set(ips))))


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    more = len(items) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _where(ip: str, session_id: str) -> str:
    return f"from {ip or 'an unrecorded address'}" + (f" (session {session_id})" if session_id else "")


def inbox_rule_hides_mail(p: Picture, sessions: Sequence[SuspectSession]) -> Signal | None:
    """An inbox rule made or changed from a suspect session that moves mail out of sight or deletes it."""
    found = []
    for session in sessions:
        for rule, act in session.rules():
            if rule.hides_mail and rule.operation.lower() in _RULE_KEEPING:
                what = f"moves mail to {rule.move_to!r}" if rule.move_to else "deletes mail"
                found.append(
                    (
                        f"{rule.operation} {rule.name!r} at {utc_text(rule.time)} {_where(act.ip, session.session_id)} {what}",
                        act.ip,
                    )
                )
    if not found:
        return None
    detail = f"inbox rule(s) hiding mail, made by a suspect session: {_listing([text for text, _ in found])}."
    return _signal("inbox_rule_hides_mail", detail, [ip for _, ip in found if ip])


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _outside(address: str, home: str) -> bool:
    """Whether `address` is in a domain other than `home` (its subdomains count as home)."""
    domain = _domain(address)
    return bool(home) and domain != home and not domain.endswith("." + home)


def mail_forwarded_outside(p: Picture, sessions: Sequence[SuspectSession]) -> Signal | None:
    """Forwarding, on the mailbox or by an inbox rule, to another domain, set from a suspect session."""
    home = _domain(p.evidence.account.upn) if "@" in p.evidence.account.upn else ""
    found = []
    for forward, act in attacker_forwarding(sessions):
        if _outside(forward.address, home or _domain(forward.mailbox)):
            found.append(
                (
                    f"mailbox forwarding to {forward.address} at {utc_text(forward.time)} from {act.ip or 'an unrecorded address'}",
                    act.ip,
                )
            )
    for rule, act in attacker_rules(sessions):
        if rule.operation.lower() not in _RULE_KEEPING:
            continue
        outside = [a for a in rule.forward_to if _outside(a, home or _domain(rule.mailbox))]
        if outside:
            found.append(
                (
                    f"rule {rule.name!r} forwarding to {', '.join(outside)} at {utc_text(rule.time)} from {act.ip or 'an unrecorded address'}",
                    act.ip,
                )
            )
    if not found:
        return None
    detail = f"mail forwarded outside {home or 'the mailbox domain'} by a suspect session: {_listing([t for t, _ in found])}."
    return _signal("mail_forwarded_outside", detail, [ip for _, ip in found if ip])


def mass_mail_access_scripted(p: Picture, sessions: Sequence[SuspectSession]) -> Signal | None:
    """The mailbox read in bulk by a scripting client (Graph mail requests, or MailItemsAccessed items) from a suspect session."""
    found = []
    for session in sessions:
        for act in session.acts:
            record = act.record
            family = networks.scripted_client(record.client)
            if family is None:
                continue
            if record.kind is ActKind.GRAPH and record.operation == GraphFamily.MAIL_READ and record.count >= MASS_MAIL_REQUESTS:
                found.append((f"{record.count:,} Graph mail reads by {family} {_where(act.ip, session.session_id)}", act.ip))
            elif (
                record.kind is ActKind.MAILBOX
                and record.operation.lower() == "mailitemsaccessed"
                and record.items >= MASS_MAIL_ITEMS
            ):
                found.append((f"{record.items:,} mail items accessed by {family} {_where(act.ip, session.session_id)}", act.ip))
    if not found:
        return None
    detail = f"the mailbox read in bulk by a script: {_listing([t for t, _ in found])}."
    return _signal("mass_mail_access_scripted", detail, [ip for _, ip in found if ip])


def consent_to_unknown_app(p: Picture, sessions: Sequence[SuspectSession]) -> Signal | None:
    """Consent to an application, from a suspect address, for an app the user is not known to use."""
    known = p.reference.app_ids | {s.app_id for s in p.rows if s.ip not in {a.ip for x in sessions for a in x.acts}}
    found = []
    for session in sessions:
        for change, act in session.changes():
            if change.operation.lower() not in _CONSENT:
                continue
            app_ids = {g.lower() for g in _GUID.findall(f"{change.target_id} {change.detail}")}
            if app_ids & known:
                continue
            name = change.target or change.target_id or "an application"
            found.append((f"{change.operation} {name!r} at {utc_text(change.time)} from {act.ip}", act.ip))
    if not found:
        return None
    detail = f"consent from a suspect session to an application the user never used: {_listing([t for t, _ in found])}."
    return _signal("consent_to_unknown_app", detail, [ip for _, ip in found if ip])


#: The activity rules, in report order.
DETECTORS: tuple[Callable[[Picture, Sequence[SuspectSession]], Signal | None], ...] = (
    inbox_rule_hides_mail,
    mail_forwarded_outside,
    mass_mail_access_scripted,
    consent_to_unknown_app,
)


def detect_activity(p: Picture, suspects: frozenset[str]) -> tuple[Signal, ...]:
    """Every activity signal that fires for the sessions the suspects account for."""
    sessions = attribute(p.evidence, suspects)
    if not sessions:
        return ()
    return tuple(signal for detector in DETECTORS if (signal := detector(p, sessions)) is not None)
