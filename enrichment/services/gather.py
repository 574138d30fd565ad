"""
Gather: three questions per incident, whatever the number of accounts, split into per-user evidence;
then, once the suspects are known, one more (the scope) for all of them.

This is the imperative shell of the read side. It builds the queries from validated values, runs them
side by side on whichever engine it is given (each engine bounds its own concurrency: Log Analytics'
per-identity limit, DuckDB's cursors), and parses the rows; it decides nothing. Partial results and
empty answers travel on as `warnings` so the incident comment can say what is missing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from common.errors import InputError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from enrichment.domain import optional_tables
from enrichment.domain.activity import ActivityRecord, Scope
from enrichment.domain.attribution import tied_identifiers
from enrichment.domain.coverage import SIGNIN_TABLES, Sources
from enrichment.domain.identity import Answer, Facet, IdentityContext
from enrichment.domain.model import AUDIT_LOGS, Account, QueryOutcome, SignIn, TimeWindow, UserEvidence
from enrichment.ports import QueryEngine
from enrichment.queries import kql, rows

T = TypeVar("T")

_log = get_logger("gather")

#: The identity tables the context question reads, and the activity tables the scope question reads.
IDENTITY_TABLES = (optional_tables.IDENTITY_INFO, optional_tables.RISKY_USERS, optional_tables.RISK_EVENTS)
ACTIVITY_TABLES = (
    optional_tables.GRAPH_ACTIVITY,
    optional_tables.OFFICE_ACTIVITY,
    optional_tables.CLOUD_APP_EVENTS,
    optional_tables.AUDIT_LOGS,
)
_IDENTITY_KINDS = ("identity", "risky_user", "risk_events")


def evidence_window(at: datetime, settings: Settings) -> TimeWindow:
    return TimeWindow.around(
        at, before=timedelta(hours=settings.window_before_hours), after=timedelta(hours=settings.window_after_hours)
    )


def baseline_window(window: TimeWindow, settings: Settings) -> TimeWindow:
    """The N days that end where the evidence window starts, so the two never overlap."""
    return TimeWindow(window.start - timedelta(days=settings.baseline_days), window.start)


def _usable(accounts: Sequence[Account]) -> tuple[Account, ...]:
    """Drop duplicates; refuse accounts whose names cannot safely enter a query."""
    seen: dict[tuple[str, str], Account] = {}
    for account in accounts:
        if not account.upn and not account.object_id:
            msg = "an account needs a UPN or an Entra object id"
            raise InputError(msg)
        try:
            upn = kql.validate_upn(account.upn) if account.upn else ""
            object_id = kql.validate_object_id(account.object_id) if account.object_id else ""
        except kql.InvalidQueryInput as error:
            raise InputError(str(error)) from error
        seen.setdefault((upn, object_id), Account(upn, object_id))
    return tuple(seen.values())


def _parse_each(found: Iterable[rows.Row], parse: Callable[[rows.Row], T]) -> tuple[list[T], list[str]]:
    """Parse rows one by one; a malformed row is reported, not fatal, so the rest still counts."""
    parsed: list[T] = []
    problems: list[str] = []
    for row in found:
        try:
            parsed.append(parse(row))
        except (rows.RowError, ValueError) as error:
            problems.append(str(error))
    if problems:
        shown = "; ".join(sorted(set(problems))[:3])
        return parsed, [f"{len(problems)} row(s) could not be read: {shown}"]
    return parsed, []


def _identity(found: Sequence[rows.Row], counts: dict[str, int]) -> tuple[IdentityContext, list[str]]:
    """One account's identity context; rows that cannot be read leave it unanswered, and say why."""
    try:
        return rows.identity_context(found, counts, identity_days=kql.IDENTITY_LOOKBACK.days), []
    except (rows.RowError, ValueError) as error:
        problem = f"the identity context could not be read: {error}"
        return IdentityContext(answers=tuple(Answer(facet, problem=problem) for facet in Facet)), [problem]


def run_side_by_side(engine: QueryEngine, queries: Sequence[kql.Query]) -> list[QueryOutcome]:
    """
    Run `queries` at the same time and return their outcomes in order.

    The engine bounds how many run at once (see `LogAnalyticsEngine`); the log context of the caller
    travels into each thread. When several fail, the first one's error (in query order) is raised.
    """
    if len(queries) <= 1:
        return [engine.run(query) for query in queries]
    with ThreadPoolExecutor(max_workers=len(queries), thread_name_prefix="query") as pool:
        futures = [pool.submit(contextvars.copy_context().run, engine.run, query) for query in queries]
        return [future.result() for future in futures]


def _nearest(signins: Sequence[SignIn], at: datetime, count: int) -> list[SignIn]:
    """The `count` groups nearest `at`; ties broken by the groups' own order, so the cut does not depend on row order."""
    return sorted(signins, key=lambda s: (abs((s.first - at).total_seconds()), *evidence_order(s)))[:count]


def evidence_order(signin: SignIn) -> tuple[datetime, str, str, str, str]:
    """The order of `UserEvidence.signins`: by time, then table, address, session and app (`assess` gets them so)."""
    return (signin.first, signin.table.value, signin.ip, signin.session_id, signin.app_id)


def gather_evidence(
    engine: QueryEngine, accounts: Sequence[Account], at: datetime, settings: Settings
) -> tuple[UserEvidence, ...]:
    """
    Evidence for every account around `at`: one evidence, one baseline and one context query, side by side.

    Each account's evidence is capped on its own (REPLAY_ROW_CAP), so a busy account never pushes
    another's out. Raises `InputError` for an account that cannot be queried and `UpstreamError` when
    an engine gets nothing usable back; a partial answer is evidence with warnings.
    """
    if at.tzinfo is None:
        msg = "the incident time needs a timezone"
        raise InputError(msg)
    wanted = _usable(accounts)
    if not wanted:
        return ()
    window = evidence_window(at, settings)
    before = baseline_window(window, settings)

    evidence, history, context = run_side_by_side(
        engine,
        (
            kql.evidence_query(wanted, window, at, row_cap=settings.row_cap),
            kql.baseline_query(wanted, before),
            kql.context_query(wanted, window, travel_watchlist=settings.travel_watchlist),
        ),
    )

    signins, signin_problems = _parse_each(evidence.rows, rows.signin)
    shared_warnings = [*evidence.warnings, *history.warnings, *context.warnings, *signin_problems]
    # Evidence coverage: which tables held rows in the window, which answers were incomplete, which columns absent.
    answers = [(evidence, SIGNIN_TABLES), (history, SIGNIN_TABLES), (context, (AUDIT_LOGS,))]
    sources = Sources.of(answers, present=rows.present_tables(context.rows) | {s.table.value for s in signins})
    identity_counts = {t: n for t, n in rows.coverage_counts(context.rows).items() if t in IDENTITY_TABLES}

    results = []
    for account in wanted:
        mine = [s for s in signins if rows.belongs_to(account, s.user, s.user_id)]
        truncated = len(mine) > settings.row_cap
        cut: list[str] = []
        if truncated:
            # The query kept one group more than the cap per user to tell that it was cut; keep the nearest.
            mine = _nearest(mine, at, settings.row_cap)
            cut = [
                f"evidence truncated at {settings.row_cap} rows (REPLAY_ROW_CAP): the farthest from the incident time were left out"
            ]
        named = Account(
            account.upn or next((s.user for s in mine if s.user), ""),
            account.object_id or next((s.user_id for s in mine if s.user_id), ""),
        )
        history_rows = [r for r in history.rows if rows.belongs_to(named, *rows.row_user(r))]
        audit_rows = [r for r in context.rows if r.get("Kind") == "audit" and rows.concerns(named, r)]
        travel_rows = [r for r in context.rows if r.get("Kind") == "travel" and rows.concerns(named, r)]
        security, security_problems = _parse_each(audit_rows, rows.security_event)
        travel, travel_problems = _parse_each(travel_rows, rows.travel_record)
        identity_rows = [
            r for r in context.rows if r.get("Kind") in _IDENTITY_KINDS and rows.belongs_to(named, *rows.row_user(r))
        ]
        identity, identity_problems = _identity(identity_rows, identity_counts)
        results.append(
            UserEvidence(
                account=named,
                at=at,
                window=window,
                signins=tuple(sorted(mine, key=evidence_order)),
                baseline=rows.baseline(history_rows, before),
                security_events=tuple(sorted(security, key=lambda e: (e.time, e.operation))),
                travel=tuple(sorted(travel, key=lambda t: (t.start, t.country))),
                truncated=truncated,
                coverage=(sources.cut(SIGNIN_TABLES, cut[0]) if cut else sources).coverage(window, mine, security),
                warnings=tuple(dict.fromkeys([*shared_warnings, *cut, *security_problems, *travel_problems, *identity_problems])),
                identity=identity,
            )
        )
    return tuple(results)


def gather_at_times(
    engine: QueryEngine, requests: Sequence[tuple[Account, datetime]], settings: Settings
) -> tuple[UserEvidence, ...]:
    """
    Evidence for several (account, incident time) pairs: one `gather_evidence` per distinct time, for
    all the accounts asked about at that time. Each distinct pair (accounts compared as the queries
    compare them, case-insensitively) is answered once, in the order first asked.
    """
    wanted = list(dict.fromkeys((_usable([account])[0], at) for account, at in requests))
    by_time: dict[datetime, list[Account]] = {}
    for account, at in wanted:
        by_time.setdefault(at, []).append(account)
    found: dict[tuple[Account, datetime], UserEvidence] = {}
    for at, accounts in by_time.items():
        for asked, evidence in zip(accounts, gather_evidence(engine, accounts, at, settings), strict=True):
            found[(asked, at)] = evidence
    return tuple(found[pair] for pair in wanted)


def _record_order(record: ActivityRecord) -> tuple[str, ...]:
    """A total order of scope records, so the rows' order (which no engine promises) never shows."""
    return (
        record.first.isoformat(),
        record.kind.value,
        record.source,
        record.operation,
        record.ip,
        record.session_id,
        record.token_id,
        record.method,
        record.client,
        record.app_id,
    )


def _queryable(account: Account) -> Account:
    """The account's names a query can carry: a UPN or object id read from an (anonymised) row may not be one."""
    try:
        upn = kql.validate_upn(account.upn) if account.upn else ""
    except kql.InvalidQueryInput:
        upn = ""
    try:
        object_id = kql.validate_object_id(account.object_id) if account.object_id else ""
    except kql.InvalidQueryInput:
        object_id = ""
    return Account(upn, object_id)


@dataclass(frozen=True)
class ScopeRequest:
    """What the scope question is asked about: the followed accounts and what ties a record to their suspects."""

    accounts: tuple[Account, ...]
    window: TimeWindow
    suspect_ips: frozenset[str]
    token_ids: frozenset[str]
    session_ids: frozenset[str]


def scope_request(evidence: Sequence[UserEvidence], suspects: Sequence[Iterable[str]]) -> ScopeRequest | None:
    """
    The scope question's subjects for accounts of one incident time, `suspects[i]` being the addresses
    the assessment of `evidence[i]` implicates; None when no account has any. The suspects' tokens and
    lifted sessions are the ones their sign-ins carried (`tied_identifiers`).
    """
    asked = [(e, s) for e, s in zip(evidence, map(frozenset, suspects), strict=True) if s]
    if not asked:
        return None
    windows = {e.window for e, _ in asked}
    if len(windows) != 1:
        msg = "the scope question is asked for one incident time at a time"
        raise InputError(msg)
    tokens: set[str] = set()
    sessions: set[str] = set()
    for e, s in asked:
        found_tokens, found_sessions = tied_identifiers(e, s)
        tokens |= found_tokens
        sessions |= found_sessions
    return ScopeRequest(
        accounts=tuple(a for a in (_queryable(e.account) for e, _ in asked) if a.upn or a.object_id),
        window=windows.pop(),
        suspect_ips=frozenset(ip for _, s in asked for ip in s),
        token_ids=frozenset(tokens),
        session_ids=frozenset(sessions),
    )


def gather_scope(
    engine: QueryEngine, evidence: Sequence[UserEvidence], suspects: Sequence[Iterable[str]]
) -> tuple[UserEvidence, ...]:
    """
    What the suspect sessions did: one scope question for every account of one incident time that has
    suspects, whatever their number, and the answer split per account (`UserEvidence.scope`).

    `suspects[i]` are the addresses the assessment of `evidence[i]` implicates. An account with none is
    not asked about (`Scope(asked=False)`). A failed scope question does not lose the rest of the
    enrichment: each account's scope says it could not be read, and why.
    """
    wanted = [frozenset(s) for s in suspects]
    request = scope_request(evidence, wanted)
    if request is None:
        return tuple(replace(e, scope=Scope(asked=False)) for e in evidence)
    problems: tuple[str, ...] = ()
    outcome = QueryOutcome(rows=())
    try:
        query = kql.scope_query(
            request.accounts,
            request.window,
            suspect_ips=request.suspect_ips,
            token_ids=request.token_ids,
            session_ids=request.session_ids,
        )
        outcome = engine.run(query)
    except (UpstreamError, InputError, kql.InvalidQueryInput) as error:
        _log.warning("scope_query_failed", error=str(error))
        problems = (f"the scope question could not be asked: {error}",)
    records, record_problems = _parse_each((r for r in outcome.rows if r.get("Kind") != "coverage"), rows.activity_record)
    counts = rows.coverage_counts(outcome.rows)
    table_coverage = () if problems else rows.table_coverage(ACTIVITY_TABLES, counts)
    notes = (*problems, *outcome.warnings, *record_problems)
    out = []
    for e, s in zip(evidence, wanted, strict=True):
        if not s:
            out.append(replace(e, scope=Scope(asked=False)))
            continue
        names = {e.account.upn.lower(), e.account.object_id.lower()} - {""}
        mine = tuple(sorted((r for r in records if r.user in names), key=_record_order))
        told = set(e.warnings)  # the engine's notes on the data travel with every answer; the evidence says them already
        problems_here = tuple(n for n in notes if n not in told)
        out.append(replace(e, scope=Scope(asked=True, coverage=table_coverage, records=mine, problems=problems_here)))
    return tuple(out)
