"""
Which optional workspace tables the product reads, what each lets it see, and how to switch it on.

Beyond the sign-in tables, the scope of a compromise and the identity context come from tables a
workspace may or may not hold: they exist only once someone turns on a diagnostic setting or a data
connector. A table that is not there is not "nothing happened": every answer built on it says which
table was missing and what therefore could not be seen, and the README lists the switch for each.

Pure values, no I/O: the queries report which tables answered (a count per table, or no row at all
for a table the workspace does not have), and this module turns that into sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogTable:
    """
    One optional table: `hides` says what cannot be seen without it (finishing "X is not collected: ..."),
    `switch_on` names the diagnostic setting or connector that fills it.
    """

    name: str
    hides: str
    switch_on: str


GRAPH_ACTIVITY = "MicrosoftGraphActivityLogs"
OFFICE_ACTIVITY = "OfficeActivity"
CLOUD_APP_EVENTS = "CloudAppEvents"
AUDIT_LOGS = "AuditLogs"
IDENTITY_INFO = "IdentityInfo"
RISKY_USERS = "AADRiskyUsers"
RISK_EVENTS = "AADUserRiskEvents"

#: Every optional table, by name.
TABLES: Mapping[str, LogTable] = {
    table.name: table
    for table in (
        LogTable(
            GRAPH_ACTIVITY,
            "Graph use by the stolen token cannot be seen",
            "Entra ID diagnostic setting, category MicrosoftGraphActivityLogs (needs Entra ID P1 or P2)",
        ),
        LogTable(
            OFFICE_ACTIVITY,
            "inbox rules, forwarding, mail access, sent mail and file downloads cannot be seen",
            "Microsoft Sentinel data connector Microsoft 365 (formerly Office 365): Exchange, SharePoint and Teams",
        ),
        LogTable(
            CLOUD_APP_EVENTS,
            "inbox rules, forwarding, mail access, sent mail and file downloads cannot be seen",
            "Microsoft Defender XDR data connector, CloudAppEvents (Defender for Cloud Apps with its Microsoft 365 app connector)",
        ),
        LogTable(
            AUDIT_LOGS,
            "consents, new application credentials and role assignments cannot be seen",
            "Entra ID diagnostic setting, category AuditLogs",
        ),
        LogTable(
            IDENTITY_INFO,
            "the account's profile and directory roles cannot be read from the workspace",
            "Microsoft Sentinel UEBA (Entity behavior analytics, with Entra ID as a source)",
        ),
        LogTable(
            RISKY_USERS,
            "the account's Entra ID Protection risk level and state cannot be read from the workspace",
            "Entra ID diagnostic setting, category RiskyUsers (needs Entra ID P2)",
        ),
        LogTable(
            RISK_EVENTS,
            "the account's recent risk detections cannot be read from the workspace",
            "Entra ID diagnostic setting, category UserRiskEvents (needs Entra ID P2)",
        ),
    )
}

#: Microsoft 365 audit comes from either table; one of them is enough.
MAILBOX_AUDIT = (OFFICE_ACTIVITY, CLOUD_APP_EVENTS)


@dataclass(frozen=True, slots=True)
class TableAnswer:
    """
    Whether a table answered: `collected` when the workspace (or export folder) has it, `rows` its
    rows in the window for the whole tenant (None when unknown), `problem` when it could not be asked.
    """

    table: str
    collected: bool
    rows: int | None = None
    problem: str = ""

    @property
    def usable(self) -> bool:
        """The table is there and holds rows in the window: silence in it means nothing happened."""
        return self.collected and not self.problem and bool(self.rows)


def gap(coverage: TableAnswer, start: str, end: str) -> str:
    """Why a table cannot vouch for the window, as a sentence; empty when it can."""
    hides = TABLES[coverage.table].hides if coverage.table in TABLES else "its events cannot be seen"
    if coverage.problem:
        return f"{coverage.table} could not be read ({coverage.problem}): {hides}"
    if not coverage.collected:
        return f"{coverage.table} is not collected: {hides}"
    if not coverage.rows:
        return f"{coverage.table} holds no rows between {start} and {end}: {hides}"
    return ""


def gaps(coverage: Iterable[TableAnswer], start: str, end: str) -> tuple[str, ...]:
    """
    What could not be seen, one sentence per missing source.

    The two Microsoft 365 audit tables stand in for each other: when one is usable the other's
    absence hides nothing, and when neither is, one sentence names both.
    """
    by_table = {c.table: c for c in coverage}
    out: list[str] = []
    audit = [by_table[t] for t in MAILBOX_AUDIT if t in by_table]
    if audit and not any(c.usable for c in audit):
        reasons = "; ".join(gap(c, start, end).split(":", 1)[0] for c in audit)
        out.append(f"Microsoft 365 audit is missing ({reasons}): {TABLES[OFFICE_ACTIVITY].hides}")
    for c in by_table.values():
        if c.table in MAILBOX_AUDIT:
            continue
        sentence = gap(c, start, end)
        if sentence:
            out.append(sentence)
    return tuple(out)
