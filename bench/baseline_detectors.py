"""
Two community token-replay detections, as KQL, to compare the product's score against.

Both are from the field survey (section 3), anchored at each incident with `datetime()` literals
over the same evidence window the product reads, instead of `ago()`, so a past incident replays
exactly. They run through the same `QueryEngine` as the product; every value entering the text goes
through `enrichment.queries.kql`'s validators and literals.

* `ip_mismatch` (SignInASNMismatchInteractiveVsNonInteractive, simplified as the brief states it):
  non-interactive sign-ins from an IP the user never used interactively in the window, more than 5.
* `aitm_issuance` (AnomalousTokenIssuanceAfterAiTM, all-pairs form B2): a non-interactive sign-in
  within 10 minutes after an interactive one, from a different IP and a different ASN.

A detector "fires" for an incident when it returns at least one IP; the IPs are what it flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from enrichment.domain.model import TimeWindow
from enrichment.ports import QueryEngine
from enrichment.queries.kql import Query, datetime_literal, string_literal, validate_upn


def _scope(table: str, upn: str, window: TimeWindow) -> str:
    return (
        f"{table}\n"
        f"| where TimeGenerated between ({datetime_literal(window.start)} .. {datetime_literal(window.end)})\n"
        f"| where UserPrincipalName =~ {string_literal(validate_upn(upn))}\n"
        '| where tostring(ResultType) == "0"'
    )


def ip_mismatch_query(upn: str, window: TimeWindow, *, minimum_events: int = 5) -> Query:
    """Non-interactive IPs with more than `minimum_events` sign-ins and no interactive sign-in from the same IP."""
    text = "\n".join(
        (
            "let Interactive = " + _scope("SigninLogs", upn, window),
            "| project Ip = tostring(IPAddress);",
            _scope("AADNonInteractiveUserSignInLogs", upn, window),
            "| extend Ip = tostring(IPAddress)",
            "| join kind=leftanti (Interactive) on Ip",
            "| summarize Events = count() by IPAddress = Ip",
            f"| where Events > {int(minimum_events)}",
        )
    )
    return Query("baseline-ip-mismatch", text)


def aitm_issuance_query(upn: str, window: TimeWindow, *, within_minutes: int = 10) -> Query:
    """Non-interactive sign-ins within `within_minutes` after an interactive one, from another IP and ASN."""
    text = "\n".join(
        (
            "let Interactive = " + _scope("SigninLogs", upn, window),
            "| project ITime = TimeGenerated, IIp = tostring(IPAddress), IAsn = tostring(AutonomousSystemNumber),",
            "    User = tolower(UserPrincipalName);",
            _scope("AADNonInteractiveUserSignInLogs", upn, window),
            "| project NTime = TimeGenerated, NIp = tostring(IPAddress), NAsn = tostring(AutonomousSystemNumber),",
            "    User = tolower(UserPrincipalName)",
            "| join kind=inner (Interactive) on User",
            f"| where NTime between (ITime .. (ITime + {int(within_minutes)}m))",
            "| where NIp != IIp and NAsn != IAsn and isnotempty(NAsn) and isnotempty(IAsn)",
            "| summarize Events = count() by IPAddress = NIp",
        )
    )
    return Query("baseline-aitm-issuance", text)


@dataclass(frozen=True, slots=True)
class Detector:
    """A named baseline detection: how to build its query for one user and window."""

    name: str
    description: str
    query: Callable[[str, TimeWindow], Query]

    def flagged(self, engine: QueryEngine, upn: str, window: TimeWindow) -> tuple[str, ...]:
        """The IPs the detection flags for `upn` in `window` (empty: it did not fire)."""
        outcome = engine.run(self.query(upn, window))
        return tuple(sorted({str(row["IPAddress"]) for row in outcome.rows if row.get("IPAddress")}))


DETECTORS = (
    Detector("B-ip-mismatch", "non-interactive IP never used interactively, > 5 events", ip_mismatch_query),
    Detector("B-aitm-10min", "non-interactive within 10 min of interactive, other IP and ASN", aitm_issuance_query),
)
