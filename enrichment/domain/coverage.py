"""
Evidence coverage: which tables and columns the evidence could give, and what that leaves unevaluated.

Missing evidence is not innocence. The engines say what they could not give: a table with no rows
at all for the window, a 204 or a partial answer (`QueryOutcome.complete`), columns an export does
not have (`QueryOutcome.missing_columns`). `Sources` holds that for one incident; `Sources.coverage`
turns it into one user's `Coverage` (per table: read whole or not, the user's rows, absent columns).

From a coverage, `absent_columns` says which columns must not be read at all for this user (a rule
that reads "no DeviceDetail" as "no device" would accuse every user of an export without the
column), and `gaps` says, per table, what was missing and which signals and explanations it left
unevaluated, so the score can say whether the missing evidence could have changed the verdict.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from common.times import utc_text
from enrichment.domain import explanations
from enrichment.domain.model import (
    AUDIT_LOGS,
    KEY_COLUMNS,
    SOURCES,
    Column,
    Coverage,
    ExplanationKind,
    Gap,
    QueryOutcome,
    SecurityEvent,
    SignIn,
    Table,
    TableCoverage,
    TimeWindow,
    UserEvidence,
)
from enrichment.domain.signals import RULES, Rule

SIGNIN_TABLES: tuple[str, ...] = (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value)


def columns_of(table: str) -> frozenset[Column]:
    """The columns the product reads from `table`."""
    return frozenset(c for c in Column if table in c.tables)


@dataclass(frozen=True, slots=True)
class Sources:
    """What the engines said about the tables for one incident, before the evidence is split per user."""

    #: Tables holding at least one row (anyone's) in the evidence window.
    present: frozenset[str]
    #: Table -> why what came back from it may not be all of it (a 204, a partial result).
    incomplete: Mapping[str, str] = field(default_factory=dict)
    #: Table -> the columns the product reads that the data does not have.
    missing_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, answers: Iterable[tuple[QueryOutcome, Sequence[str]]], present: Iterable[str]) -> Sources:
        """From each query's outcome and the tables it reads, and the tables seen holding rows in the window."""
        incomplete: dict[str, str] = {}
        missing: dict[str, set[str]] = {}
        for outcome, tables in answers:
            for table in tables:
                if not outcome.complete:
                    incomplete.setdefault(table, outcome.warnings[0] if outcome.warnings else "a query came back incomplete")
                read = {c.value for c in columns_of(table)}
                missing.setdefault(table, set()).update(c for c in outcome.missing_columns.get(table, ()) if c in read)
        return cls(
            present=frozenset(present),
            incomplete=incomplete,
            missing_columns={table: tuple(sorted(columns)) for table, columns in missing.items() if columns},
        )

    def cut(self, tables: Iterable[str], why: str) -> Sources:
        """The same sources with `tables` also incomplete for `why` (one user's evidence cut at the row cap)."""
        return replace(self, incomplete={**dict.fromkeys(tables, why), **self.incomplete})

    def coverage(self, window: TimeWindow, signins: Sequence[SignIn], security_events: Sequence[SecurityEvent]) -> Coverage:
        """One user's coverage: every table, whether it was read whole, the user's rows from it, absent columns."""
        rows = dict.fromkeys(SOURCES, 0)
        for s in signins:
            rows[s.table.value] += s.count
        rows[AUDIT_LOGS] = len(security_events)
        tables = []
        for table in SOURCES:
            missing = self.missing_columns.get(table, ())
            key_missing = sorted(c for c in missing if c in KEY_COLUMNS)
            if table in self.incomplete:
                read, problem = False, self.incomplete[table]
            elif key_missing:
                read, problem = False, f"key column(s) {', '.join(key_missing)} absent"
            elif table not in self.present:
                read, problem = False, f"no rows between {utc_text(window.start)} and {utc_text(window.end)}"
            else:
                read, problem = True, ""
            tables.append(TableCoverage(table, read, rows[table], missing, problem))
        return Coverage(tuple(tables))


def _holds_users_rows(evidence: UserEvidence, table: str) -> bool:
    """Whether the user's evidence or baseline has rows from `table` (the audit table always counts)."""
    if table == AUDIT_LOGS:
        return True
    base = evidence.baseline
    part = base.interactive if table == Table.INTERACTIVE.value else base.non_interactive
    return (part is not None and part.events > 0) or any(s.table.value == table for s in evidence.signins)


def absent_columns(evidence: UserEvidence) -> frozenset[Column]:
    """
    Columns absent from a table this user's evidence or baseline comes from: nothing may read them,
    because their emptiness on the user's rows is not a fact about the user.
    """
    absent: set[Column] = set()
    for t in evidence.coverage.tables:
        if t.missing_columns and _holds_users_rows(evidence, t.table):
            absent.update(c for c in columns_of(t.table) if c.value in t.missing_columns)
    return frozenset(absent)


def gaps(evidence: UserEvidence, rules: Sequence[Rule] = RULES) -> tuple[Gap, ...]:
    """Per table with something missing: what was missing, and the signals and explanations it left unevaluated."""
    found = []
    for t in evidence.coverage.tables:
        if not t.read:
            unknown, what = columns_of(t.table), f"not read: {t.problem}"
        elif t.missing_columns and _holds_users_rows(evidence, t.table):
            unknown = frozenset(c for c in columns_of(t.table) if c.value in t.missing_columns)
            what = f"column(s) {', '.join(t.missing_columns)} absent"
        else:
            continue
        signals = tuple(r.id for r in rules if r.needs & unknown)
        kinds = tuple(k for k in ExplanationKind if explanations.READS[k] & unknown)
        found.append(Gap(t.table, what, signals, kinds))
    return tuple(found)


def unknown_weight(found: Iterable[Gap], rules: Sequence[Rule] = RULES) -> int:
    """The most the signals the gaps left unevaluated could have added to the score (with the rules' weights)."""
    unevaluated = {signal for gap in found for signal in gap.signals}
    return sum(r.weight for r in rules if r.id in unevaluated)
