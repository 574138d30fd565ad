"""
Which activity was the attacker's: the scope records tied to the suspect sessions, and nothing else.

The lifted session is shared by definition: the victim keeps using it while the attacker replays it
(in the real capture the victim's own inbox rules and the attacker's carry the same AADSessionId). So a
session id alone never accuses; a record is the attacker's when

1. it came from a suspect address (`Tie.ADDRESS`), or
2. it carries the token of a sign-in made from a suspect address (`Tie.TOKEN`: Graph's
   `SignInActivityId` and the audit's `UniqueTokenId` are the sign-in's `UniqueTokenIdentifier`), or
3. it recorded no address at all and belongs to a lifted session (`Tie.SESSION`, the weakest).

A record from any other address is the user's own, whatever its session. Records are grouped under
the suspect session they belong to (the token's sign-in, the audit's session, or the only suspect
session seen at that address), else under their address. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from enrichment.domain.activity import ActivityRecord, ActKind, DirectoryChange, Forwarding, InboxRule, Tie
from enrichment.domain.model import SignIn, UserEvidence


@dataclass(frozen=True, slots=True)
class Act:
    """One summarised activity of a suspect session: the record, how it was tied, and the address it implicates."""

    record: ActivityRecord
    tie: Tie
    ip: str  # the record's address, or the suspect sign-in's when only its token or session tied it


@dataclass(frozen=True, slots=True)
class SuspectSession:
    """What one suspect session (or, when no session is known, one suspect address) did."""

    session_id: str
    ips: tuple[str, ...]
    acts: tuple[Act, ...]

    @property
    def first(self) -> datetime:
        return min(a.record.first for a in self.acts)

    @property
    def last(self) -> datetime:
        return max(a.record.last for a in self.acts)

    def rules(self) -> tuple[tuple[InboxRule, Act], ...]:
        """Every inbox rule change, with the act that carried it (its address and tie)."""
        return tuple((rule, act) for act in self.acts for rule in act.record.rules)

    def forwarding(self) -> tuple[tuple[Forwarding, Act], ...]:
        return tuple((forward, act) for act in self.acts for forward in act.record.forwarding)

    def changes(self) -> tuple[tuple[DirectoryChange, Act], ...]:
        return tuple((change, act) for act in self.acts for change in act.record.changes)


#: AuditLogs registrations from a suspect address, already read by the context question, shown with the session's acts.
_REGISTRATION_WORDS = ("register", "registered")


def _suspect_signins(evidence: UserEvidence, suspects: frozenset[str]) -> list[SignIn]:
    return [s for s in evidence.signins if s.ip in suspects]


def tied_identifiers(evidence: UserEvidence, suspects: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(token ids, session ids) of the sign-ins made from the suspect addresses: what the scope question follows."""
    found = _suspect_signins(evidence, frozenset(suspects))
    return (
        frozenset(t for s in found for t in s.token_ids if t),
        frozenset(s.session_id for s in found if s.session_id),
    )


def _mine(evidence: UserEvidence, record: ActivityRecord) -> bool:
    names = {evidence.account.upn.lower(), evidence.account.object_id.lower()} - {""}
    return record.user in names


def _registrations(evidence: UserEvidence, suspects: frozenset[str]) -> list[ActivityRecord]:
    """Devices and methods registered from a suspect address (the context question's AuditLogs rows), as records."""
    out = []
    for event in evidence.security_events:
        if event.actor_ip in suspects and any(w in event.operation.lower() for w in _REGISTRATION_WORDS):
            change = DirectoryChange(event.operation, event.time, target=event.detail)
            out.append(
                ActivityRecord(
                    kind=ActKind.DIRECTORY,
                    source="AuditLogs",
                    user=event.actor or evidence.account.key.lower(),
                    ip=event.actor_ip,
                    operation=event.operation,
                    count=1,
                    first=event.time,
                    last=event.time,
                    changes=(change,),
                )
            )
    return out


def attribute(evidence: UserEvidence, suspects: Iterable[str]) -> tuple[SuspectSession, ...]:
    """
    The scope's records the suspects account for, grouped per suspect session (see the module docstring).

    Empty when the scope was not asked or nothing suspect was found; sessions are ordered by their
    first act, acts by time.
    """
    suspect_set = frozenset(suspects)
    if evidence.scope is None or not suspect_set:
        return ()
    signins = _suspect_signins(evidence, suspect_set)
    token_owner = {t: s for s in sorted(signins, key=lambda s: s.first) for t in s.token_ids if t}
    lifted = {s.session_id for s in signins if s.session_id}
    sessions_at: dict[str, set[str]] = defaultdict(set)
    for s in signins:
        if s.session_id:
            sessions_at[s.ip].add(s.session_id)

    groups: dict[tuple[str, str], list[Act]] = defaultdict(list)
    records = [r for r in evidence.scope.records if _mine(evidence, r)]
    for record in (*records, *_registrations(evidence, suspect_set)):
        owner = token_owner.get(record.token_id) if record.token_id else None
        if record.ip and record.ip in suspect_set:
            act = Act(record, Tie.ADDRESS, record.ip)
        elif owner is not None:
            act = Act(record, Tie.TOKEN, owner.ip)
        elif not record.ip and record.session_id in lifted:
            ips = sorted(s.ip for s in signins if s.session_id == record.session_id)
            act = Act(record, Tie.SESSION, ips[0] if ips else "")
        else:
            continue  # the user's own activity (another address), or nothing that ties it to a suspect
        session = _session_of(record, owner, lifted, sessions_at.get(act.ip, set()))
        groups[(session, "" if session else act.ip)].append(act)

    found = []
    for (session, _), acts in groups.items():
        ordered = tuple(sorted(_merged(acts), key=lambda a: (a.record.first, a.record.kind.value, a.record.operation, a.ip)))
        found.append(SuspectSession(session, tuple(sorted({a.ip for a in acts if a.ip})), ordered))
    return tuple(sorted(found, key=lambda s: (s.first, s.session_id, s.ips)))


#: Ties from the strongest to the weakest: a merged act keeps the strongest of its parts.
_TIE_STRENGTH = (Tie.ADDRESS, Tie.TOKEN, Tie.SESSION)
#: Samples a merged act keeps (each part kept a few already).
_MERGED_SAMPLES = 20


def _merged(acts: Sequence[Act]) -> list[Act]:
    """
    One act per thing done, however many tokens did it: the query summarises per token (every refresh
    brings a new one), a person wants "86 Graph mail reads", not eighty rows of one or two.
    """
    by_key: dict[tuple[str, ...], list[Act]] = defaultdict(list)
    for act in acts:
        r = act.record
        by_key[(r.kind.value, r.source, r.operation, r.method, act.ip, r.client, r.app_id)].append(act)
    out = []
    for parts in by_key.values():
        if len(parts) == 1:
            out.append(parts[0])
            continue
        records = [p.record for p in parts]
        tokens = {r.token_id for r in records}
        sessions = {r.session_id for r in records}
        merged = replace(
            records[0],
            count=sum(r.count for r in records),
            items=sum(r.items for r in records),
            bytes=sum(r.bytes for r in records),
            failures=sum(r.failures for r in records),
            first=min(r.first for r in records),
            last=max(r.last for r in records),
            token_id=tokens.pop() if len(tokens) == 1 else "",
            session_id=sessions.pop() if len(sessions) == 1 else "",
            samples=tuple(sorted({s for r in records for s in r.samples}))[:_MERGED_SAMPLES],
            rules=tuple(sorted((x for r in records for x in r.rules), key=lambda x: (x.time, x.name))),
            forwarding=tuple(sorted((x for r in records for x in r.forwarding), key=lambda x: (x.time, x.address))),
            changes=tuple(sorted((x for r in records for x in r.changes), key=lambda x: (x.time, x.target))),
        )
        tie = min((p.tie for p in parts), key=_TIE_STRENGTH.index)
        out.append(Act(merged, tie, parts[0].ip))
    return out


def _session_of(record: ActivityRecord, owner: SignIn | None, lifted: set[str], at_address: set[str]) -> str:
    """The suspect session a tied record belongs to: the audit's own, the token's sign-in's, or the only one at its address."""
    if record.session_id and record.session_id in lifted:
        return record.session_id
    if owner is not None and owner.session_id:
        return owner.session_id
    if len(at_address) == 1:
        return next(iter(at_address))
    return ""


def attacker_rules(sessions: Sequence[SuspectSession]) -> tuple[tuple[InboxRule, Act], ...]:
    """Every inbox rule change the suspect sessions made, oldest first: what containment looks for in the mailbox."""
    return tuple(sorted((pair for s in sessions for pair in s.rules()), key=lambda p: (p[0].time, p[0].name)))


def attacker_forwarding(sessions: Sequence[SuspectSession]) -> tuple[tuple[Forwarding, Act], ...]:
    """Every mailbox forwarding the suspect sessions set, oldest first: removed by hand (Graph cannot write it)."""
    return tuple(sorted((pair for s in sessions for pair in s.forwarding()), key=lambda p: (p[0].time, p[0].address)))
