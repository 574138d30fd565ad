"""
What the suspect sessions did: acts that only an attacker does with a stolen session.

A person does make inbox rules, forward mail and consent to apps, from their own laptop. These rules
read only the activity `attribution` ties to a suspect address, token or session, so the user's own
look-alikes never count, and they fire on what attackers do to keep access and hide it (Microsoft's
token-theft and BEC playbooks): a rule that moves or deletes mail, forwarding to another domain, the
mailbox read in bulk by a script, consent to an application the user never used.

They are decided after every other rule, because "suspect" means implicated by those. Acts, not
networks: no explanation of an address waives them.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.identifiers import GUID
from common.times import utc_text
from enrichment.domain import networks
from enrichment.domain.activity import ActKind, GraphFamily
from enrichment.domain.attribution import attacker_forwarding, attacker_rules
from enrichment.domain.model import Column, Signal
from enrichment.domain.picture import Picture
from enrichment.domain.signals.rule import NOTHING, Check, rule
from enrichment.domain.signals.wording import listing

#: Graph mail-read requests, or mail items in MailItemsAccessed, from one scripted client that make "bulk".
MASS_MAIL_REQUESTS = 20
MASS_MAIL_ITEMS = 50
#: Rule operations that leave a rule in place (a removal hides nothing).
_RULE_KEEPING = ("new-inboxrule", "set-inboxrule", "enable-inboxrule", "updateinboxrules")
_CONSENT = ("consent to application", "add delegated permission grant", "add app role assignment to service principal")


def _found(check: Check, lead: str, found: Sequence[tuple[str, str]]) -> Signal | None:
    if not found:
        return None
    return check.hit(f"{lead}: {listing([text for text, _ in found])}.", [ip for _, ip in found if ip])


def _where(ip: str, session_id: str) -> str:
    return f"from {ip or 'an unrecorded address'}" + (f" (session {session_id})" if session_id else "")


@rule(
    weight=30,
    covered_by=NOTHING,
    reads={Column.IP_ADDRESS},
    reason="an inbox rule that moves or deletes mail, made from a stolen session, hides the attacker's conversation",
    after_others=True,
)
def inbox_rule_hides_mail(p: Picture, check: Check) -> Signal | None:
    """An inbox rule made or changed from a suspect session that moves mail out of sight or deletes it."""
    found = []
    for session in check.sessions:
        for found_rule, act in session.rules():
            if found_rule.hides_mail and found_rule.operation.lower() in _RULE_KEEPING:
                what = f"moves mail to {found_rule.move_to!r}" if found_rule.move_to else "deletes mail"
                when = utc_text(found_rule.time)
                text = f"{found_rule.operation} {found_rule.name!r} at {when} {_where(act.ip, session.session_id)} {what}"
                found.append((text, act.ip))
    return _found(check, "inbox rule(s) hiding mail, made by a suspect session", found)


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _outside(address: str, home: str) -> bool:
    """Whether `address` is in a domain other than `home` (its subdomains count as home)."""
    domain = _domain(address)
    return bool(home) and domain != home and not domain.endswith("." + home)


@rule(
    weight=35,
    covered_by=NOTHING,
    reads={Column.IP_ADDRESS},
    reason="forwarding to another domain from a stolen session exfiltrates every new message",
    after_others=True,
)
def mail_forwarded_outside(p: Picture, check: Check) -> Signal | None:
    """Forwarding, on the mailbox or by an inbox rule, to another domain, set from a suspect session."""
    sessions = check.sessions
    home = _domain(p.evidence.account.upn) if "@" in p.evidence.account.upn else ""
    found = []
    for forward, act in attacker_forwarding(sessions):
        if _outside(forward.address, home or _domain(forward.mailbox)):
            where = act.ip or "an unrecorded address"
            found.append((f"mailbox forwarding to {forward.address} at {utc_text(forward.time)} from {where}", act.ip))
    for found_rule, act in attacker_rules(sessions):
        if found_rule.operation.lower() not in _RULE_KEEPING:
            continue
        outside = [a for a in found_rule.forward_to if _outside(a, home or _domain(found_rule.mailbox))]
        if outside:
            where = act.ip or "an unrecorded address"
            when = utc_text(found_rule.time)
            found.append((f"rule {found_rule.name!r} forwarding to {', '.join(outside)} at {when} from {where}", act.ip))
    return _found(check, f"mail forwarded outside {home or 'the mailbox domain'} by a suspect session", found)


@rule(
    weight=25,
    covered_by=NOTHING,
    reads={Column.IP_ADDRESS},
    reason="people read mail in a client; a script reading the mailbox in bulk is collection",
    after_others=True,
)
def mass_mail_access_scripted(p: Picture, check: Check) -> Signal | None:
    """The mailbox read in bulk by a scripting client (Graph mail requests, or MailItemsAccessed items) from a suspect session."""
    found = []
    for session in check.sessions:
        for act in session.acts:
            record = act.record
            family = networks.scripted_client(record.client)
            if family is None:
                continue
            where = _where(act.ip, session.session_id)
            if record.kind is ActKind.GRAPH and record.operation == GraphFamily.MAIL_READ and record.count >= MASS_MAIL_REQUESTS:
                found.append((f"{record.count:,} Graph mail reads by {family} {where}", act.ip))
            elif (
                record.kind is ActKind.MAILBOX
                and record.operation.lower() == "mailitemsaccessed"
                and record.items >= MASS_MAIL_ITEMS
            ):
                found.append((f"{record.items:,} mail items accessed by {family} {where}", act.ip))
    return _found(check, "the mailbox read in bulk by a script", found)


@rule(
    weight=30,
    covered_by=NOTHING,
    reads={Column.IP_ADDRESS},
    reason="consent to an application from a stolen session gives the attacker access that outlives it",
    after_others=True,
)
def consent_to_unknown_app(p: Picture, check: Check) -> Signal | None:
    """Consent to an application, from a suspect address, for an app the user is not known to use."""
    sessions = check.sessions
    attacker_ips = {a.ip for x in sessions for a in x.acts}
    known = p.reference.app_ids | {s.app_id for s in p.rows if s.ip not in attacker_ips}
    found = []
    for session in sessions:
        for change, act in session.changes():
            if change.operation.lower() not in _CONSENT:
                continue
            app_ids = {g.lower() for g in GUID.findall(f"{change.target_id} {change.detail}")}
            if app_ids & known:
                continue
            name = change.target or change.target_id or "an application"
            found.append((f"{change.operation} {name!r} at {utc_text(change.time)} from {act.ip}", act.ip))
    return _found(check, "consent from a suspect session to an application the user never used", found)
