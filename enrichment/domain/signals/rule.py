"""
What a signal rule is: one declaration that carries its id, weight, coverage and reason.

A rule is declared once, with the `rule` decorator on the function that looks for it:

    @rule(
        weight=35,
        covered_by=EVERY_EXPLANATION,
        reads=NETWORK | {Column.SESSION_ID},
        reason="one Entra session used from another AS is ...",
    )
    def session_ip_switch(p: Picture, check: Check) -> Signal | None: ...

The function's name is the signal's stable id; the decorator turns the function into a `Rule`
value holding it, the points, the explanations that can waive it for an IP, the source columns it
reads and why it weighs what it does. Nothing else names those facts: the detector asks its
`Check` whether an IP is covered and builds its hit with `check.hit(...)`, and the catalogue
(`signals.CATALOGUE`) is collected from the declarations, as detection-rule libraries collect their
rules. A rule whose columns are absent from the evidence is not run (it would read the absence as
a fact) and is reported as not evaluated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from enrichment.domain import explanations
from enrichment.domain.attribution import SuspectSession, attribute
from enrichment.domain.model import KEY_COLUMNS, Column, Explanation, ExplanationKind, Signal, Table
from enrichment.domain.picture import Picture

#: Every benign explanation: for network novelty, any of them says who is behind the IP.
EVERY_EXPLANATION = frozenset(ExplanationKind)
#: Explanations by which the organisation itself vouches for the traffic: its networks, its VPN, the
#: ASNs and named locations it trusts, its managed device. They say who is behind the IP, not only where.
ORGANISATION = frozenset(
    {
        ExplanationKind.CORPORATE_NETWORK,
        ExplanationKind.CORPORATE_VPN,
        ExplanationKind.TRUSTED_ASN,
        ExplanationKind.NAMED_LOCATION,
        ExplanationKind.DEVICE_CONTINUITY,
    }
)
#: Where the user set up a new device: its first address, its first device-less or unregistered sign-ins,
#: the apps a new phone opens for the first time.
NEW_DEVICE = frozenset({ExplanationKind.NEW_DEVICE})
#: A privacy relay or the organisation's SSE used by the user's own device: anonymising-looking, not anonymous.
RELAY_OR_SSE = frozenset({ExplanationKind.PRIVACY_RELAY, ExplanationKind.SECURITY_SERVICE_EDGE})
#: A Microsoft service acting for the user has no device, binds no session and calls services the
#: user never opened: the explanation accounts for exactly those absences.
MICROSOFT_SERVICE = frozenset({ExplanationKind.MICROSOFT_NETWORK})
#: Travel shifts the hours a person is awake, and nothing else.
TRAVEL = frozenset({ExplanationKind.TRAVEL})
#: No explanation of the network accounts for the evidence.
NOTHING: frozenset[ExplanationKind] = frozenset()

#: What tells a network the user is known on from a new one (`Picture.unfamiliar`, the reference's
#: networks): rules about "new for the user" read these.
NETWORK = frozenset({Column.IP_ADDRESS, Column.ASN, Column.LOCATION})
#: The directory's record of security-info and device registrations (AuditLogs).
AUDIT = frozenset({Column.AUDIT_OPERATION, Column.AUDIT_INITIATED_BY, Column.AUDIT_TARGETS})

Detector = Callable[[Picture, "Check"], Signal | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """
    A signal's declaration and the function that looks for it.

    `after_others` rules are decided once every other rule has run, because their evidence is "an IP
    the other signals implicate" (`Check.suspects`).
    """

    id: str
    weight: int
    covered_by: frozenset[ExplanationKind]
    reads: frozenset[Column]
    reason: str
    detector: Detector = field(repr=False, compare=False)
    after_others: bool = False

    def __post_init__(self) -> None:
        if self.weight <= 0 or not self.reason or not self.reads:
            msg = f"signal rule {self.id}: a rule needs a positive weight, the columns it reads and a reason"
            raise ValueError(msg)

    @property
    def needs(self) -> frozenset[Column]:
        """
        Every column the rule's verdict rests on: its own, the key columns of a sign-in table it reads,
        and those of the explanations that can waive it (an IP it would accuse might be explained).
        """
        needed = set(self.reads)
        if any(Table.INTERACTIVE.value in column.tables for column in self.reads):
            needed |= KEY_COLUMNS
        for kind in self.covered_by:
            needed |= explanations.READS[kind]
        return frozenset(needed)

    def evaluate(
        self,
        p: Picture,
        cover: Cover,
        suspects: frozenset[str] = frozenset(),
        sessions: tuple[SuspectSession, ...] | None = None,
    ) -> Signal | None:
        """
        Run the rule on one user's picture.

        `sessions` is `attribute(p.evidence, suspects)` when the caller already has it (`detect`
        computes it once for all `after_others` rules); otherwise an `after_others` rule computes it here.
        """
        if sessions is None:
            sessions = attribute(p.evidence, suspects) if self.after_others and suspects else ()
        return self.detector(p, Check(self, cover, suspects, sessions))


def rule(
    *,
    weight: int,
    covered_by: frozenset[ExplanationKind],
    reads: Iterable[Column],
    reason: str,
    after_others: bool = False,
) -> Callable[[Detector], Rule]:
    """Declare the decorated function as the rule of the signal named after it."""

    def declare(detector: Detector) -> Rule:
        return Rule(detector.__name__, weight, frozenset(covered_by), frozenset(reads), reason, detector, after_others)

    return declare


@dataclass(frozen=True, slots=True)
class Cover:
    """The explanations found per IP, asked per rule: an explanation covers what it explains and no more."""

    kinds: Mapping[str, frozenset[ExplanationKind]] = field(default_factory=dict)

    @classmethod
    def of(cls, explanations: Iterable[Explanation]) -> Cover:
        found: dict[str, set[ExplanationKind]] = defaultdict(set)
        for explanation in explanations:
            found[explanation.ip].add(explanation.kind)
        return cls({ip: frozenset(kinds) for ip, kinds in found.items()})

    def covers(self, declared: Rule, ip: str) -> bool:
        kinds = self.kinds.get(ip)
        return kinds is not None and not kinds.isdisjoint(declared.covered_by)


@dataclass(frozen=True, slots=True)
class Check:
    """
    What a detector is handed besides the picture: its own rule, the cover and, after the others, the
    suspects and the suspect sessions `attribution` ties to them.
    """

    rule: Rule
    cover: Cover
    suspects: frozenset[str] = frozenset()
    sessions: tuple[SuspectSession, ...] = ()

    def covers(self, ip: str) -> bool:
        """Whether an explanation of `ip` accounts for this rule's evidence there."""
        return self.cover.covers(self.rule, ip)

    def uncovered(self, ips: Iterable[str]) -> frozenset[str]:
        """The addresses of `ips` no explanation waives this rule for."""
        return frozenset(ip for ip in ips if not self.covers(ip))

    def hit(self, detail: str, ips: Iterable[str] = ()) -> Signal:
        """The signal this rule fires: its id and weight, the sentence, the implicated IPs (sorted, once each)."""
        return Signal(self.rule.id, self.rule.weight, detail, tuple(sorted(set(ips))))
