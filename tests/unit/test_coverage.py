"""Evidence coverage: absent columns are never read as facts, and missing evidence never makes a user benign."""

from __future__ import annotations

from dataclasses import replace

from common.settings import Settings
from enrichment.domain.coverage import Sources, absent_columns, gaps
from enrichment.domain.explanations import READS
from enrichment.domain.model import (
    AUDIT_LOGS,
    Column,
    Coverage,
    ExplanationKind,
    QueryOutcome,
    Table,
    TableCoverage,
    UserEvidence,
    Verdict,
)
from enrichment.domain.picture import picture
from enrichment.domain.scoring import assess
from enrichment.domain.signals import CATALOGUE
from tests.unit.factories import (
    ATTACKER,
    HOME,
    LAPTOP,
    MICROSOFT,
    baseline,
    evidence,
    ordinary_day,
    registered,
    signin,
)

INTERACTIVE, NON_INTERACTIVE = Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value
SIGNIN_TABLES = (INTERACTIVE, NON_INTERACTIVE)
STRIPPED = ("AutonomousSystemNumber", "DeviceDetail", "SessionId")


def covered(ev: UserEvidence, *, missing: tuple[str, ...] = (), unread: dict[str, str] | None = None) -> UserEvidence:
    """`ev` as gathered from tables that all hold rows, the non-interactive one without `missing` columns."""
    sources = Sources(
        present=frozenset({INTERACTIVE, NON_INTERACTIVE, AUDIT_LOGS}) - set(unread or {}),
        incomplete=unread or {},
        missing_columns={NON_INTERACTIVE: missing} if missing else {},
    )
    return replace(ev, coverage=sources.coverage(ev.window, ev.signins, ev.security_events))


class TestSources:
    def test_every_table_is_reported_with_the_users_rows(self) -> None:
        """Coverage lists the three tables in order, each read, with the user's sign-ins and audit events counted."""
        ev = covered(evidence(*ordinary_day(), security=(registered(10, HOME[0]),)))
        assert [(t.table, t.read, t.rows) for t in ev.coverage.tables] == [
            (INTERACTIVE, True, 1),
            (NON_INTERACTIVE, True, 36),
            (AUDIT_LOGS, True, 1),
        ]

    def test_a_table_without_rows_in_the_window_is_not_read(self) -> None:
        """A table holding nothing for the window (an export of another week, a table not exported) says so."""
        ev = evidence(*ordinary_day())
        found = Sources(present=frozenset({INTERACTIVE})).coverage(ev.window, ev.signins, ())
        non_interactive = found.table(NON_INTERACTIVE)
        assert non_interactive is not None
        assert not non_interactive.read
        assert non_interactive.problem == "no rows between 2026-03-09 14:00 UTC and 2026-03-10 20:00 UTC"

    def test_incomplete_answers_and_absent_columns_come_from_the_query_outcomes(self) -> None:
        """A 204 marks the tables its query reads; only columns the product reads are kept as missing."""
        no_data = QueryOutcome((), ("evidence query: workspace returned no data (204)",), complete=False)
        export = QueryOutcome((), missing_columns={NON_INTERACTIVE: ("DeviceDetail", "_BilledSize")})
        found = Sources.of([(no_data, SIGNIN_TABLES), (export, SIGNIN_TABLES)], present=())
        assert found.incomplete == dict.fromkeys(SIGNIN_TABLES, "evidence query: workspace returned no data (204)")
        assert found.missing_columns == {NON_INTERACTIVE: ("DeviceDetail",)}

    def test_a_table_without_a_key_column_is_not_read(self) -> None:
        """Without IPAddress no row can be placed on a network: the table counts as not read."""
        ev = evidence(*ordinary_day())
        sources = Sources(present=frozenset({INTERACTIVE, NON_INTERACTIVE}), missing_columns={NON_INTERACTIVE: ("IPAddress",)})
        table = sources.coverage(ev.window, ev.signins, ()).table(NON_INTERACTIVE)
        assert table is not None
        assert (table.read, table.problem) == (False, "key column(s) IPAddress absent")


class TestAbsentColumns:
    def test_absence_only_matters_in_a_table_the_user_has_rows_in(self) -> None:
        """A column missing from the non-interactive export says nothing about a user seen only interactively."""
        only_interactive = replace(evidence(ordinary_day()[0]), baseline=replace(baseline(), non_interactive=None))
        assert absent_columns(covered(only_interactive, missing=STRIPPED)) == frozenset()
        assert absent_columns(covered(evidence(*ordinary_day()), missing=STRIPPED)) == {
            Column.ASN,
            Column.DEVICE,
            Column.SESSION_ID,
        }

    def test_a_rule_needs_the_columns_of_the_explanations_that_can_waive_it(self) -> None:
        """An IP a rule would accuse might be explained: the explanations' columns are part of what the rule rests on."""
        assert READS[ExplanationKind.MICROSOFT_NETWORK] <= CATALOGUE["new_app"].needs
        assert Column.DEVICE in CATALOGUE["non_interactive_unknown_network"].needs
        assert Column.DEVICE not in CATALOGUE["scripted_client"].needs


class TestAbsentIsNotEmpty:
    def test_no_device_column_is_not_an_unknown_device(self) -> None:
        """A primary refresh token on a row whose table has no DeviceDetail is not "a device the user never had"."""
        prt = signin(HOME, 30, incoming_token_type="primaryRefreshToken", device_id="")
        ev = evidence(*ordinary_day(), prt)
        assert "prt_unknown_device" in {s.id for s in assess(covered(ev), Settings()).signals}
        assert "prt_unknown_device" not in {s.id for s in assess(covered(ev, missing=("DeviceDetail",)), Settings()).signals}

    def test_no_device_column_lifts_no_session(self) -> None:
        """The laptop's session seen in a table without DeviceDetail elsewhere is not a session lifted off the device."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        laptop = signin(HOME, -60, table=Table.INTERACTIVE, device_id=LAPTOP, session_id="s-laptop", count=1)
        elsewhere = signin(ATTACKER, 30, session_id="s-laptop", user_agent="python-requests/2.31")
        ev = evidence(laptop, elsewhere, history=history)
        assert "session_left_device" in {s.id for s in assess(covered(ev), Settings()).signals}
        assert picture(covered(ev)).lifted == {"s-laptop": frozenset({ATTACKER[0]})}
        assert picture(covered(ev, missing=("DeviceDetail",))).lifted == {}
        blind = assess(covered(ev, missing=("DeviceDetail",)), Settings())
        assert "session_left_device" not in {s.id for s in blind.signals}
        assert "session_left_device" in blind.gaps[0].signals

    def test_no_device_column_does_not_make_an_attacker_a_microsoft_service(self) -> None:
        """'No device, no user agent' on Azure is a service only when the device column exists to say so."""
        service = signin(MICROSOFT, 30, user_agent="", device_id="", session_id="")
        ev = evidence(*ordinary_day(), service)
        kinds = {e.kind for e in assess(covered(ev), Settings()).explanations}
        assert ExplanationKind.MICROSOFT_NETWORK in kinds
        blind = assess(covered(ev, missing=("DeviceDetail",)), Settings())
        assert ExplanationKind.MICROSOFT_NETWORK not in {e.kind for e in blind.explanations}
        assert ExplanationKind.MICROSOFT_NETWORK in blind.gaps[0].explanations


class TestVerdict:
    def test_absent_columns_give_insufficient_evidence_never_benign(self) -> None:
        """An ordinary day read from an export without DeviceDetail, SessionId and ASN is not called benign."""
        result = assess(covered(evidence(*ordinary_day()), missing=STRIPPED), Settings())
        assert result.verdict is Verdict.INSUFFICIENT_EVIDENCE
        (gap,) = result.gaps
        assert (gap.table, gap.what) == (NON_INTERACTIVE, "column(s) AutonomousSystemNumber, DeviceDetail, SessionId absent")
        assert "session_ip_switch" in gap.signals
        assert "scripted_client" not in gap.signals

    def test_the_same_day_with_every_column_is_benign(self) -> None:
        """With the columns present nothing is missing: the ordinary day stays benign with no gap."""
        result = assess(covered(evidence(*ordinary_day())), Settings())
        assert (result.verdict, result.gaps) == (Verdict.BENIGN, ())

    def test_a_user_without_sign_ins_while_the_tables_hold_data_is_benign(self) -> None:
        """No sign-ins is a result when the tables do hold rows for the window."""
        result = assess(covered(evidence(history=baseline())), Settings())
        assert (result.verdict, result.score, result.gaps) == (Verdict.BENIGN, 0, ())

    def test_a_user_without_sign_ins_in_empty_tables_is_insufficient_evidence(self) -> None:
        """No rows at all in the sign-in tables for the window is missing evidence, not innocence."""
        ev = evidence(history=baseline())
        empty = replace(ev, coverage=Sources(present=frozenset()).coverage(ev.window, (), ()))
        result = assess(empty, Settings())
        assert result.verdict is Verdict.INSUFFICIENT_EVIDENCE
        assert [g.table for g in result.gaps] == [INTERACTIVE, NON_INTERACTIVE, AUDIT_LOGS]

    def test_a_partial_answer_keeps_the_replay_it_shows(self) -> None:
        """Evidence that came back still counts: a replay in a partial answer stays replay_likely, the gap listed."""
        attack = evidence(*ordinary_day(), signin(ATTACKER, 10, session_id="session-home", user_agent="curl/8.4"))
        partial = dict.fromkeys(SIGNIN_TABLES, "evidence query: partial result from Log Analytics")
        result = assess(covered(attack, unread=partial), Settings())
        assert result.verdict is Verdict.REPLAY_LIKELY
        assert [g.table for g in result.gaps] == list(SIGNIN_TABLES)

    def test_a_gap_that_could_not_change_the_verdict_leaves_it_benign(self) -> None:
        """AuditLogs unread can add at most its two rules' points: below the suspicious threshold a clean day stays benign."""
        result = assess(covered(evidence(*ordinary_day()), unread={AUDIT_LOGS: "context query: partial result"}), Settings())
        assert result.verdict is Verdict.BENIGN
        (gap,) = result.gaps
        assert set(gap.signals) == {"security_info_from_suspect_ip", "security_info_changed"}

    def test_evidence_built_without_coverage_assumes_nothing_missing(self) -> None:
        """Hand-built evidence (no coverage) is scored as before: nothing is known to be missing."""
        ev = evidence(*ordinary_day())
        assert ev.coverage == Coverage()
        assert assess(ev, Settings()).gaps == ()
        assert gaps(ev) == ()


def test_table_coverage_names_the_problem_for_people() -> None:
    """A table that could not be read carries the sentence the comment and the text show."""
    ev = evidence(*ordinary_day())
    found = Sources(present=frozenset({INTERACTIVE, NON_INTERACTIVE})).coverage(ev.window, ev.signins, ())
    assert found.table(AUDIT_LOGS) == TableCoverage(
        AUDIT_LOGS, read=False, rows=0, problem="no rows between 2026-03-09 14:00 UTC and 2026-03-10 20:00 UTC"
    )
