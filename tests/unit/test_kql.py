"""
The query builders: literals mean exactly their input, identifiers are validated, and no input can
change a query's structure.

The KQL itself is checked against Microsoft's language service in test_kql_language_service.py; here
the texts are parsed and run by duckdb-kql, the embedded engine that runs the very same text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import duckdb_kql
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from enrichment.domain.model import Account, Table, TimeWindow
from enrichment.queries import kql
from tests.fakes.workspace_tables import create_schema_tables

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "enrichment" / "schemas"

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(AT, before=timedelta(hours=6), after=timedelta(hours=1))
OBJECT_ID = "0b4f6c2a-1d3e-4f50-8a9b-c0d1e2f3a4b5"
GUEST = "john_contoso.com#EXT#@fabrikam.onmicrosoft.com"

BUILDERS: Mapping[str, Callable[[Sequence[Account]], kql.Query]] = {
    "evidence": lambda accounts: kql.evidence_query(accounts, WINDOW, AT, row_cap=50),
    "baseline": lambda accounts: kql.baseline_query(accounts, WINDOW),
    "context": lambda accounts: kql.context_query(accounts, WINDOW, travel_watchlist="TravelRecords"),
    "scope": lambda accounts: kql.scope_query(
        accounts,
        WINDOW,
        suspect_ips=("203.0.113.9",),
        token_ids=("aBc-123_x",),
        session_ids=("5e5510a1-0000-4000-8000-000000000001",),
    ),
}

#: C0 controls other than tab/newline/return, and DEL: the characters string_literal writes as \uXXXX.
CONTROLS = frozenset(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") | {"\x7f"}
HOSTILE_PIECES = (
    '"',
    "'",
    "\\",
    '\\"',
    "\n",
    "\r",
    "\t",
    "|",
    "//",
    ";",
    "`",
    "```",
    "@",
    "{",
    "}",
    "\u2028",
    "\u0085",
    "\u200b",
    "é",
    "\U0001f600",
    " ",
)


# --- A small scanner that knows where KQL string literals start and end -------------------------

PLACEHOLDER = "⟦literal⟧"
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class UnreadableLiteral(ValueError):
    """A quote opened a literal that does not close on its line, or holds an escape Kusto reads differently."""


def _read_literal(text: str, start: int) -> tuple[str, int]:
    """Decode the quoted literal at `start` as Kusto does; return its value and the index after it."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while True:
        if i >= len(text) or text[i] in "\r\n":
            raise UnreadableLiteral(f"unterminated literal at {start}: {text[start : start + 40]!r}")
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        escape = text[i + 1 : i + 2]
        if escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
            out.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
        elif escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i += 2
        else:
            raise UnreadableLiteral(f"escape {text[i : i + 2]!r} at {i} is not one string_literal writes")


def split_literals(text: str) -> tuple[str, list[str]]:
    """
    The query with every quoted string literal replaced by a placeholder, and the literals' values.

    Two queries with equal skeletons differ only inside string literals; anything an input managed to
    put outside its literal (a pipe, a comment, a second statement) shows up in the skeleton.
    """
    skeleton: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in "\"'":
            value, i = _read_literal(text, i)
            skeleton.append(PLACEHOLDER)
            values.append(value)
        else:
            skeleton.append(text[i])
            i += 1
    return "".join(skeleton), values


class TestScanner:
    """The structural comparison below can fail: it sees a literal that was broken out of."""

    def test_naive_quoting_changes_the_skeleton(self) -> None:
        """Pasting input between quotes lets `" | take 1 //` escape; the skeleton shows it."""
        benign, _ = split_literals('T | where U == "alice@contoso.com"')
        hostile, _ = split_literals('T | where U == "x" | take 1 | where U != "a"')
        assert hostile != benign
        with pytest.raises(UnreadableLiteral):
            split_literals('T | where U == "x" | take 1 //"')

    def test_values_are_decoded(self) -> None:
        """Escapes decode to the characters they stand for, in order."""
        skeleton, values = split_literals(r'print a = "x\"y\\z\n\u0007", b = ' + "'it\\'s'")
        assert skeleton == f"print a = {PLACEHOLDER}, b = {PLACEHOLDER}"
        assert values == ['x"y\\z\n\x07', "it's"]

    def test_unterminated_literal_is_refused(self) -> None:
        """A literal that runs into a line break is not a literal Kusto would accept."""
        with pytest.raises(UnreadableLiteral):
            split_literals('print a = "x\n"')


# --- string_literal ------------------------------------------------------------------------------


@cache
def _connection() -> Any:
    return duckdb_kql.connect()


def _printed(expression: str) -> Any:
    """The value of a KQL scalar expression, as the embedded engine computes it."""
    return duckdb_kql.kql(_connection(), f"print x = {expression}").fetchall()[0][0]


class TestStringLiteral:
    @pytest.mark.parametrize(
        ("value", "literal"),
        [
            ("alice@contoso.com", '"alice@contoso.com"'),
            ("", '""'),
            ('say "hi"', r'"say \"hi\""'),
            ("back\\slash", r'"back\\slash"'),
            ("two\nlines\r\n", r'"two\nlines\r\n"'),
            ("tab\there", r'"tab\there"'),
            ("it's", '"it\'s"'),
            ("a | take 1 // ;", '"a | take 1 // ;"'),
            ("\\u0041", r'"\\u0041"'),
            ("é\u2028😀", '"é\u2028😀"'),
        ],
    )
    def test_escapes_only_what_can_end_the_literal_or_the_line(self, value: str, literal: str) -> None:
        """Quotes, backslashes and line breaks are escaped; everything else is written as itself."""
        assert kql.string_literal(value) == literal

    @pytest.mark.parametrize("value", ['" | take 1 //', "x\n| where true", "a\\", '\\"', "```", "'; .drop table T"])
    def test_injection_attempts_stay_one_literal(self, value: str) -> None:
        """Classic breakouts stay inside one literal: the text outside it is just the placeholder."""
        skeleton, values = split_literals(kql.string_literal(value))
        assert (skeleton, values) == (PLACEHOLDER, [value])
        assert "\n" not in kql.string_literal(value)
        assert "\r" not in kql.string_literal(value)

    @settings(max_examples=100, deadline=None)
    @given(
        values=st.lists(
            st.lists(
                st.one_of(st.sampled_from(HOSTILE_PIECES), st.characters(codec="utf-8", exclude_characters=CONTROLS)),
                max_size=30,
            ).map("".join),
            min_size=1,
            max_size=8,
        )
    )
    @pytest.mark.slow
    def test_round_trips_through_the_embedded_engine(self, values: list[str]) -> None:
        """duckdb-kql reads string_literal(s) back as exactly s, for hostile and arbitrary Unicode text."""
        columns = ", ".join(f"x{index} = {kql.string_literal(value)}" for index, value in enumerate(values))
        assert list(duckdb_kql.kql(_connection(), f"print {columns}").fetchall()[0]) == values

    def test_control_characters_are_refused_or_round_trip(self) -> None:
        """A control character is either refused with InvalidQueryInput or read back exactly by the embedded engine."""
        for char in sorted(CONTROLS):
            value = f"a{char}b"
            try:
                literal = kql.string_literal(value)
            except kql.InvalidQueryInput:
                continue
            assert _printed(literal) == value, f"U+{ord(char):04X}: {literal!r} read back as {_printed(literal)!r}"


# --- datetime_literal ----------------------------------------------------------------------------


class TestDatetimeLiteral:
    def test_utc_with_microseconds(self) -> None:
        """A UTC datetime becomes a datetime() literal with all six fractional digits."""
        moment = datetime(2026, 3, 1, 12, 5, 9, 123456, tzinfo=UTC)
        assert kql.datetime_literal(moment) == "datetime(2026-03-01T12:05:09.123456Z)"

    def test_other_offsets_are_converted_to_utc(self) -> None:
        """An incident time stamped +05:30 is written as the same instant in UTC."""
        moment = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        assert kql.datetime_literal(moment) == "datetime(2026-03-01T06:30:00.000000Z)"

    def test_naive_datetime_is_refused(self) -> None:
        """A time without a zone could mean anything; it is refused rather than guessed."""
        with pytest.raises(kql.InvalidQueryInput, match="timezone-aware"):
            kql.datetime_literal(datetime(2026, 3, 1, 12, 0))

    @settings(max_examples=100, deadline=None)
    @given(
        moment=st.datetimes(
            min_value=datetime(1900, 1, 2),
            max_value=datetime(2199, 12, 30),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
        )
    )
    @pytest.mark.slow
    def test_round_trips_through_the_embedded_engine(self, moment: datetime) -> None:
        """duckdb-kql reads the literal back as the same instant, to the microsecond."""
        assert _printed(kql.datetime_literal(moment)).replace(tzinfo=UTC) == moment


# --- validators ----------------------------------------------------------------------------------


class TestValidateUpn:
    @pytest.mark.parametrize(
        ("upn", "expected"),
        [
            ("alice@contoso.com", "alice@contoso.com"),
            ("Alice.Smith@Contoso.COM", "alice.smith@contoso.com"),
            (GUEST, GUEST.lower()),
            ("John_Contoso.com#EXT#@Fabrikam.onmicrosoft.com", GUEST.lower()),
            ("o'brien@contoso.com", "o'brien@contoso.com"),
            ("first+tag@sub.contoso.co.uk", "first+tag@sub.contoso.co.uk"),
        ],
    )
    def test_accepts_real_upns_lower_cased(self, upn: str, expected: str) -> None:
        """Member and guest (#EXT#) UPNs are accepted and lower-cased, as sign-in rows are matched case-insensitively."""
        assert kql.validate_upn(upn) == expected

    @pytest.mark.parametrize(
        "upn",
        [
            "",
            " ",
            "alice",
            "@contoso.com",
            "alice@",
            "alice@@contoso.com",
            "alice smith@contoso.com",
            " alice@contoso.com",
            'al"ice@contoso.com',
            "al\\ice@contoso.com",
            "al\nice@contoso.com",
            "al\rice@contoso.com",
            "al\tice@contoso.com",
            "al;ice@contoso.com",
            "alice@contoso.com;",
            "alice@contoso.com | take 1",
            'x" or 1==1 //@contoso.com',
            "alice@contoso.com//",
            "alice@contoso..com",
            "al..ice@contoso.com",
            "alice@-contoso.com",
            "alice@contoso.com-",
            "alíce@contoso.com",
            "alice@contoso.com\x00",
            "a" * 114 + "@contoso.com",
        ],
    )
    def test_refuses_anything_else(self, upn: str) -> None:
        """Empty values, spaces, quotes, backslashes, line breaks, `;`, `|`/`//` in the domain and non-ASCII are refused."""
        with pytest.raises(kql.InvalidQueryInput, match="not a user principal name"):
            kql.validate_upn(upn)

    @pytest.mark.parametrize("upn", ["a|b@contoso.com", "a//b@contoso.com", "{x}$y?@contoso.com"])
    def test_admits_pipes_and_slashes_in_the_local_part(self, upn: str) -> None:
        """Entra allows these in a UPN's local part, so the literal (not the validator) must hold them."""
        assert kql.validate_upn(upn) == upn


class TestValidateObjectId:
    def test_accepts_a_guid_lower_cased(self) -> None:
        """Object ids are GUIDs; they are lower-cased because rows are matched case-insensitively."""
        assert kql.validate_object_id(OBJECT_ID.upper()) == OBJECT_ID

    @pytest.mark.parametrize(
        "object_id",
        [
            "",
            "not-a-guid",
            "{" + OBJECT_ID + "}",
            OBJECT_ID.replace("-", ""),
            OBJECT_ID + '" | take 1 //',
            OBJECT_ID[:-1] + "g",
            " " + OBJECT_ID,
        ],
    )
    def test_refuses_anything_else(self, object_id: str) -> None:
        """Braced, hyphen-less, padded or appended values are refused."""
        with pytest.raises(kql.InvalidQueryInput, match="not an Entra object id"):
            kql.validate_object_id(object_id)


class TestValidateWatchlistAlias:
    @pytest.mark.parametrize("alias", ["TravelRecords", "travel_2026-q1", "T", "T" + "x" * 63])
    def test_accepts_aliases(self, alias: str) -> None:
        """Letters, digits, `_` and `-`, starting with a letter, up to 64 characters, returned unchanged."""
        assert kql.validate_watchlist_alias(alias) == alias

    @pytest.mark.parametrize(
        "alias",
        ["", "1Travel", "Travel Records", 'Travel"', "Travel'", "Travel|x", "Travel//", "Travel;", "T\\x", "T" + "x" * 64],
    )
    def test_refuses_anything_else(self, alias: str) -> None:
        """Quotes, spaces, pipes, comment starts, `;` and over-long aliases are refused."""
        with pytest.raises(kql.InvalidQueryInput, match="not a watchlist alias"):
            kql.validate_watchlist_alias(alias)


@pytest.mark.parametrize(
    ("validate", "value"),
    [
        (kql.validate_upn, "alice@contoso.com\n"),
        (kql.validate_object_id, OBJECT_ID + "\n"),
        (kql.validate_watchlist_alias, "TravelRecords\n"),
    ],
    ids=["upn", "object_id", "watchlist_alias"],
)
def test_validators_refuse_a_trailing_newline(validate: Callable[[str], str], value: str) -> None:
    """A value with a trailing line break is refused, not accepted with the break kept."""
    with pytest.raises(kql.InvalidQueryInput):
        validate(value)


# --- the queries ---------------------------------------------------------------------------------

ACCOUNTS = (
    Account("Alice@Contoso.com", OBJECT_ID.upper()),
    Account(GUEST),
    Account(object_id="11111111-2222-3333-4444-555555555555"),
)


class TestQueries:
    @pytest.mark.parametrize("builder", BUILDERS)
    def test_times_are_datetime_literals_never_relative(self, builder: str) -> None:
        """Every time in a query is a datetime() literal of the window or the incident; no ago() or now()."""
        text = BUILDERS[builder](ACCOUNTS).text
        assert "ago(" not in text
        assert "now(" not in text
        found = set(re.findall(r"\bdatetime\([^)]*\)", text))
        expected = {kql.datetime_literal(WINDOW.start), kql.datetime_literal(WINDOW.end)}
        if builder == "evidence":
            expected.add(kql.datetime_literal(AT))
        if builder == "context":
            expected |= {
                kql.datetime_literal(WINDOW.end - kql.IDENTITY_LOOKBACK),
                kql.datetime_literal(WINDOW.end - kql.RISK_LOOKBACK),
            }
        assert found == expected

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_one_query_names_every_account(self, builder: str) -> None:
        """One text covers all accounts (three queries per incident however many users), each value validated."""
        text = BUILDERS[builder](ACCOUNTS).text
        for value in ("alice@contoso.com", GUEST.lower(), OBJECT_ID, "11111111-2222-3333-4444-555555555555"):
            assert kql.string_literal(value) in text
        assert "Alice@Contoso.com" not in text
        assert OBJECT_ID.upper() not in text

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_accounts_that_differ_only_in_case_are_named_once(self, builder: str) -> None:
        """Case variants of one UPN add no second literal."""
        once = BUILDERS[builder]([Account("alice@contoso.com")]).text
        twice = BUILDERS[builder]([Account("alice@contoso.com"), Account("ALICE@contoso.com")]).text
        assert twice == once

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_no_accounts_is_refused(self, builder: str) -> None:
        """A query for nobody is a caller's mistake and says so."""
        with pytest.raises(kql.InvalidQueryInput, match="at least one account"):
            BUILDERS[builder]([])

    @pytest.mark.parametrize(
        "builder",
        [
            "evidence",
            "baseline",
            "context",
        ],
    )
    def test_an_account_with_no_name_is_refused(self, builder: str) -> None:
        """An account with neither UPN nor object id is refused, not turned into an empty `where`."""
        with pytest.raises(kql.InvalidQueryInput, match="at least one account"):
            BUILDERS[builder]([Account()])

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_one_bad_account_refuses_the_whole_query(self, builder: str) -> None:
        """A hostile UPN next to good ones is refused rather than silently dropped."""
        with pytest.raises(kql.InvalidQueryInput):
            BUILDERS[builder]([Account("alice@contoso.com"), Account('x" | take 1 //@contoso.com')])

    def test_bad_watchlist_alias_is_refused(self) -> None:
        """The travel watchlist alias is a setting, and a hostile one never reaches the query."""
        with pytest.raises(kql.InvalidQueryInput, match="not a watchlist alias"):
            kql.context_query(ACCOUNTS, WINDOW, travel_watchlist='x") | take 1 //')

    @pytest.mark.parametrize("cap", [1, 500, 10_000])
    def test_row_cap_is_bound_and_cuts_each_user_at_the_element_after_the_cap(self, cap: int) -> None:
        """The cap is a binding; the body keeps, per user, the groups up to the (cap+1)-th nearest, and no other limit."""
        query = kql.evidence_query(ACCOUNTS, WINDOW, AT, row_cap=cap)
        assert f"let row_cap = long({cap});" in query.text
        assert re.findall(r"\b(?:top|take|limit)\b.*", query.body) == []
        assert "array_sort_asc(Distances)[row_cap]" in query.body
        assert re.search(r"summarize Distances = make_list\(.*Distance.*\) by User$", query.body, re.MULTILINE)

    @pytest.mark.parametrize("cap", [0, -1])
    def test_row_cap_must_be_positive(self, cap: int) -> None:
        """A cap below one would make every result look truncated."""
        with pytest.raises(kql.InvalidQueryInput, match="row_cap"):
            kql.evidence_query(ACCOUNTS, WINDOW, AT, row_cap=cap)


class TestBindings:
    @pytest.mark.parametrize("builder", BUILDERS)
    def test_the_body_is_the_same_whatever_the_values(self, builder: str) -> None:
        """Accounts, windows and caps only change the bindings: one body per question, translated once."""
        other_window = TimeWindow.around(AT + timedelta(days=40), before=timedelta(hours=1), after=timedelta(hours=2))
        one = BUILDERS[builder](ACCOUNTS)
        other = {
            "evidence": kql.evidence_query([Account("x@y.com")], other_window, AT, row_cap=7),
            "baseline": kql.baseline_query([Account(object_id=OBJECT_ID)], other_window),
            "context": kql.context_query([Account("x@y.com")], other_window, travel_watchlist="Other"),
            "scope": kql.scope_query([Account("x@y.com")], other_window, suspect_ips=("192.0.2.1", "192.0.2.2")),
        }[builder]
        assert one.body == other.body == {q.name: q.body for q in kql.QUESTIONS}[builder]
        assert one.declared == other.declared
        assert one.bindings != other.bindings

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_log_analytics_gets_let_lines_then_the_body(self, builder: str) -> None:
        """The text is one `let name = literal;` line per binding followed by the body, unchanged."""
        query = BUILDERS[builder](ACCOUNTS)
        lines = query.text.split("\n")
        assert lines[: len(query.bindings)] == [f"let {b.name} = {b.literal()};" for b in query.bindings]
        assert "\n".join(lines[len(query.bindings) :]) == query.body

    @pytest.mark.parametrize("builder", BUILDERS)
    def test_the_embedded_engine_gets_declarations_and_no_values(self, builder: str) -> None:
        """The declared text names each binding's type and holds none of the values: they are bound by DuckDB."""
        query = BUILDERS[builder](ACCOUNTS)
        first, body = query.declared.split("\n", 1)
        assert body == query.body
        assert first == f"declare query_parameters({', '.join(f'{b.name}:{b.kind}' for b in query.bindings)});"
        for value in ("alice@contoso.com", GUEST.lower(), OBJECT_ID, "2026-03-01"):
            assert value not in query.declared

    def test_binding_names_cannot_be_read_as_columns(self) -> None:
        """Bindings are lower-case snake_case; every table column is PascalCase, so no binding shadows a column."""
        columns = {c["name"].lower() for path in SCHEMA_DIR.glob("*.json") for c in json.loads(path.read_text())["columns"]}
        for question in kql.QUESTIONS:
            for name, _ in question.parameters:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
                assert name not in columns, name

    @pytest.mark.parametrize(
        ("name", "kind", "value", "message"),
        [
            ("Users", "dynamic", ("a",), "snake_case"),
            ("x; drop", "string", "a", "snake_case"),
            ("x", "timespan", "1h", "unknown kind"),
            ("x", "long", True, "needs"),
            ("x", "long", "5", "needs"),
            ("x", "dynamic", ("a", 1), "array of strings"),
            ("x", "string", "bell\x07", "control character"),
            ("x", "datetime", datetime(2026, 1, 1), "timezone-aware"),
        ],
    )
    def test_a_binding_that_cannot_be_written_safely_is_refused(self, name: str, kind: str, value: Any, message: str) -> None:
        """Names, kinds and values are checked when the binding is made, never when the text is sent."""
        with pytest.raises(kql.InvalidQueryInput, match=message):
            kql.Binding(name, kind, value)

    def test_a_question_needs_every_value_and_no_other(self) -> None:
        """Asking a question with a value missing or one it does not read is refused, naming what it needs."""
        with pytest.raises(kql.InvalidQueryInput, match="needs values for upns"):
            kql.BASELINE.ask({"upns": ("a@b.com",)})

    def test_accounts_only_by_upn_bind_an_empty_id_list(self) -> None:
        """No object id gives `object_ids = dynamic([])`, which matches nothing, rather than a `""` that matches blank ids."""
        text = kql.context_query([Account("alice@contoso.com")], WINDOW, travel_watchlist="TravelRecords").text
        assert "let object_ids = dynamic([]);" in text
        assert '""' not in text.split("union", 1)[0]


# --- hostile UPNs cannot change a query's structure ----------------------------------------------

_UPN_CHARS = "abcXYZ019._%+#'!&*=^`{}|~$/?-"
_hostile_local = st.lists(st.one_of(st.sampled_from(_UPN_CHARS), st.sampled_from(HOSTILE_PIECES)), min_size=1, max_size=16)
_domains = st.sampled_from(
    ["contoso.com", "fabrikam.onmicrosoft.com", "x", "-x.com", "a..b", "contoso.com\n", "contoso.com | take 1", "c//d"]
)
_upn_candidates = st.one_of(
    st.builds(lambda local, domain: f"{''.join(local)}@{domain}", _hostile_local, _domains),
    st.text(min_size=1, max_size=24),
)


def _benign(count: int) -> list[str]:
    return [f"user{index}@contoso.com" for index in range(count)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upns=st.lists(_upn_candidates, min_size=1, max_size=3, unique_by=str.lower))
def test_upns_are_refused_or_leave_the_structure_unchanged(upns: list[str]) -> None:
    """Any UPN is refused by every builder, or every query differs from a benign one only inside its literals."""
    accounts = [Account(upn, OBJECT_ID) for upn in upns]
    try:
        lowered = [kql.validate_upn(upn) for upn in upns]
    except kql.InvalidQueryInput:
        for build in BUILDERS.values():
            with pytest.raises(kql.InvalidQueryInput):
                build(accounts)
        return
    benign = _benign(len(upns))
    rename = dict(zip(benign, lowered, strict=True))
    for name, build in BUILDERS.items():
        hostile_skeleton, hostile_values = split_literals(build(accounts).text)
        benign_skeleton, benign_values = split_literals(build([Account(upn, OBJECT_ID) for upn in benign]).text)
        assert hostile_skeleton == benign_skeleton, name
        assert Counter(hostile_values) == Counter(rename.get(value, value) for value in benign_values), name


def _terminals(tree: Any) -> Iterator[Any]:
    """The parse tree's tokens in order (terminal nodes carry `symbol`, rule nodes `children`)."""
    if hasattr(tree, "symbol"):
        yield tree
        return
    for child in tree.children or ():
        yield from _terminals(child)


def _shape(text: str) -> tuple[list[tuple[str, str]], Counter[str]]:
    """duckdb-kql's parse of `text`: token kinds and texts with string literals blanked, and the literal texts."""
    parsed = duckdb_kql.parse(text)
    assert parsed.ok, parsed.diagnostics
    names = parsed.tree.parser.symbolicNames
    tokens, literals = [], Counter[str]()
    for node in _terminals(parsed.tree):
        kind = names[node.symbol.type]
        if kind == "STRINGLITERAL":
            literals[node.getText()] += 1
            tokens.append((kind, ""))
        else:
            tokens.append((kind, node.getText()))
    return tokens, literals


@cache
def _benign_shape(builder: str, count: int) -> tuple[list[tuple[str, str]], Counter[str]]:
    return _shape(BUILDERS[builder]([Account(upn, OBJECT_ID) for upn in _benign(count)]).text)


_valid_hostile_upn = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=_UPN_CHARS, min_size=1, max_size=20),
    st.sampled_from(["contoso.com", "fabrikam.onmicrosoft.com"]),
)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(upns=st.lists(_valid_hostile_upn, min_size=6, max_size=6, unique_by=str.lower))
def test_valid_upns_parse_to_the_benign_tree(upns: list[str]) -> None:
    """UPNs the validator admits (quotes, pipes, slashes...) give duckdb-kql the benign parse, literals aside."""
    assume(all(".." not in upn for upn in upns))
    lowered = [kql.validate_upn(upn) for upn in upns]
    rename = {kql.string_literal(b): kql.string_literal(h) for b, h in zip(_benign(len(upns)), lowered, strict=True)}
    for name, build in BUILDERS.items():
        tokens, literals = _shape(build([Account(upn, OBJECT_ID) for upn in upns]).text)
        benign_tokens, benign_literals = _benign_shape(name, len(upns))
        assert tokens == benign_tokens, name
        assert literals == Counter({rename.get(text, text): n for text, n in benign_literals.items()}), name


# --- the texts run on the embedded engine -----------------------------------------------------------

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "dynamic": "JSON",
    "bool": "BOOLEAN",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
}
HOSTILE_UPN = "O'Brien|x//y@contoso.com"
_TRAVEL_FUNCTION = "function _GetWatchlist(watchlistAlias:string) { Watchlists | where WatchlistAlias == watchlistAlias }"


def _insert(con: Any, table: str, **values: object) -> None:
    columns = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" for _ in values)
    con.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(values.values()))


@pytest.fixture(scope="module")
def workspace() -> Any:
    """An embedded workspace with the fixture's tables: the hostile-looking user, a neighbour and a bystander."""
    con = duckdb_kql.connect()
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        columns = ", ".join(f'"{c["name"]}" {_DUCKDB_TYPES[c["type"]]}' for c in fixture["columns"])
        con.execute(f'CREATE TABLE "{fixture["table"]}" ({columns})')
    naive = AT.replace(tzinfo=None)
    for minutes in range(20):
        _insert(
            con,
            Table.INTERACTIVE.value,
            TimeGenerated=naive - timedelta(minutes=10 * minutes + 3),
            UserPrincipalName=HOSTILE_UPN,
            UserId=OBJECT_ID.upper(),
            IPAddress=f"198.51.100.{minutes}",
        )
    for user, ip in (
        ("bob@contoso.com", "203.0.113.1"),
        ("o'brien@contoso.com", "203.0.113.2"),
        ("mallory@contoso.com", "203.0.113.3"),
    ):
        _insert(
            con,
            Table.NON_INTERACTIVE.value,
            TimeGenerated=naive + timedelta(minutes=30),
            UserPrincipalName=user,
            UserId="11111111-2222-3333-4444-555555555555" if user == "bob@contoso.com" else "",
            IPAddress=ip,
            LocationDetails=json.dumps({"city": "Lagos"}),
        )
    con.execute(
        "CREATE TABLE Watchlists (WatchlistAlias VARCHAR, SearchKey VARCHAR, UserPrincipalName VARCHAR,"
        " Country VARCHAR, StartTime VARCHAR, EndTime VARCHAR)"
    )
    for alias, user, country in (
        ("TravelRecords", HOSTILE_UPN, "fr"),
        ("Other", HOSTILE_UPN, "de"),
        ("TravelRecords", "bob@contoso.com", "us"),
    ):
        con.execute(
            "INSERT INTO Watchlists VALUES (?, ?, ?, ?, '2026-02-28T00:00:00Z', '2026-03-05T00:00:00Z')",
            [alias, user, user, country],
        )
    return con


def _run(con: Any, query: kql.Query) -> list[dict[str, Any]]:
    relation = duckdb_kql.kql(con, query.text, functions=[_TRAVEL_FUNCTION])
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


@pytest.mark.slow
class TestOnTheEmbeddedEngine:
    def test_row_cap_returns_cap_plus_one_nearest_groups(self, workspace: Any) -> None:
        """With 20 groups and a cap of 5, six come back: the six nearest the incident time."""
        found = _run(workspace, kql.evidence_query([Account(HOSTILE_UPN)], WINDOW, AT, row_cap=5))
        assert len(found) == 6
        assert sorted(row["IPAddress"] for row in found) == sorted(f"198.51.100.{m}" for m in range(6))

    def test_row_cap_applies_to_each_account_on_its_own(self, workspace: Any) -> None:
        """A busy account is cut at cap+1 groups while a quiet one in the same query keeps all of its groups."""
        accounts = [Account(HOSTILE_UPN), Account(object_id="11111111-2222-3333-4444-555555555555")]
        found = _run(workspace, kql.evidence_query(accounts, WINDOW, AT, row_cap=3))
        assert Counter(row["User"] for row in found) == {HOSTILE_UPN.lower(): 4, "bob@contoso.com": 1}

    def test_values_bound_as_parameters_give_the_rows_the_let_lines_give(self, workspace: Any) -> None:
        """The embedded path (declared body, values bound by DuckDB) answers exactly what the Log Analytics text does."""
        accounts = [Account(HOSTILE_UPN), Account(object_id="11111111-2222-3333-4444-555555555555")]
        for query in (
            kql.evidence_query(accounts, WINDOW, AT, row_cap=3),
            kql.baseline_query(accounts, TimeWindow(WINDOW.start - timedelta(days=1), WINDOW.end + timedelta(days=1))),
            kql.context_query(accounts, WINDOW, travel_watchlist="TravelRecords"),
        ):
            relation = duckdb_kql.kql(workspace, query.declared, query.parameters(), functions=[_TRAVEL_FUNCTION])
            bound = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
            assert sorted(map(repr, bound)) == sorted(map(repr, _run(workspace, query))), query.name
            assert bound, query.name

    def test_one_query_returns_every_account_and_nobody_else(self, workspace: Any) -> None:
        """One evidence query finds a quoted, piped UPN and an id-only account, not the look-alike or bystander."""
        accounts = [Account(HOSTILE_UPN), Account(object_id="11111111-2222-3333-4444-555555555555")]
        found = _run(workspace, kql.evidence_query(accounts, WINDOW, AT, row_cap=100))
        assert Counter(row["User"] for row in found) == {HOSTILE_UPN.lower(): 20, "bob@contoso.com": 1}

    def test_context_query_reads_only_the_named_watchlist_for_the_named_user(self, workspace: Any) -> None:
        """Travel rows come from the configured watchlist alias and the suspect's UPN only."""
        found = _run(workspace, kql.context_query([Account(HOSTILE_UPN)], WINDOW, travel_watchlist="TravelRecords"))
        rows = [row for row in found if row["Kind"] not in ("coverage", "presence")]
        assert [(row["Kind"], row["User"], row["Country"]) for row in rows] == [("travel", HOSTILE_UPN.lower(), "FR")]

    def test_context_query_names_the_tables_holding_rows_in_the_window(self, workspace: Any) -> None:
        """One presence row per sign-in table with any row in the window; AuditLogs holds none, so it has none."""
        found = _run(workspace, kql.context_query([Account(HOSTILE_UPN)], WINDOW, travel_watchlist="TravelRecords"))
        assert sorted(row["SourceTable"] for row in found if row["Kind"] == "presence") == [
            Table.NON_INTERACTIVE.value,
            Table.INTERACTIVE.value,
        ]
        earlier = TimeWindow(WINDOW.start - timedelta(days=30), WINDOW.start - timedelta(days=29))
        found = _run(workspace, kql.context_query([Account(HOSTILE_UPN)], earlier, travel_watchlist="TravelRecords"))
        assert [row for row in found if row["Kind"] == "presence"] == []


@pytest.mark.slow
def test_values_that_look_like_json_arrays_are_collected_as_themselves() -> None:
    """A user agent or resource name of `[1,2]` is one value of the baseline's sets, not an error and not two values."""
    con = duckdb_kql.connect()
    create_schema_tables(con)
    hostile = ['["x","y"]', "[1,2]", "[]"]
    for index, value in enumerate(hostile):
        _insert(
            con,
            Table.NON_INTERACTIVE.value,
            TimeGenerated=AT.replace(tzinfo=None) - timedelta(hours=index + 1),
            UserPrincipalName="mallory@contoso.com",
            UserAgent=value,
            ResourceDisplayName=value,
        )
    window = TimeWindow(AT - timedelta(days=1), AT)
    (summary,) = [r for r in _run(con, kql.baseline_query([Account("mallory@contoso.com")], window)) if r["Scope"] == "table"]
    assert sorted(json.loads(summary["UserAgents"])) == sorted(hostile)
    assert sorted(json.loads(summary["Resources"])) == sorted(hostile)
