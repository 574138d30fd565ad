"""
Every production query binds without errors in Microsoft's own Kusto language service.

Log Analytics cannot be reached from tests, and duckdb-kql accepts some KQL that Kusto refuses (and
the reverse), so the queries are also checked by `@kusto/language-service-next`, the parser and
binder behind the portal's query editor, against the project's schema fixture. The node side is
tests/kusto/check.mjs; its package-lock.json pins the service's version.

Run: `.venv/bin/python -m pytest tests/unit/test_kql_language_service.py -q` (marked slow). Needs node
>= 20 and npm; `npm ci` fills tests/kusto/node_modules when it is missing or stale. The tests skip
only when node or npm is absent.
"""

from __future__ import annotations

import inspect
import json
import random
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from enrichment.domain.model import Account, TimeWindow
from enrichment.queries import kql

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KUSTO_DIR = ROOT / "tests" / "kusto"
SCHEMA_DIR = ROOT / "enrichment" / "schemas"
PACKAGE = "@kusto/language-service-next"

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(AT, before=timedelta(hours=6), after=timedelta(hours=1))
BASELINE_WINDOW = TimeWindow(WINDOW.start - timedelta(days=14), WINDOW.start)
TRAVEL_WATCHLIST = "TravelRecords"

#: Every way the product calls a builder; `test_every_query_builder_is_checked` keeps this complete.
BUILDERS: Mapping[str, Callable[[Sequence[Account]], kql.Query]] = {
    "evidence_query": lambda accounts: kql.evidence_query(accounts, WINDOW, AT, row_cap=500),
    "baseline_query": lambda accounts: kql.baseline_query(accounts, BASELINE_WINDOW),
    "context_query": lambda accounts: kql.context_query(accounts, WINDOW, travel_watchlist=TRAVEL_WATCHLIST),
    "scope_query": lambda accounts: kql.scope_query(
        accounts,
        WINDOW,
        suspect_ips=["203.0.113.9", "2001:db8::9"],
        token_ids=["AAAAAAAAAAAAAAAAAAAAAA", "it's-a-token"],
        session_ids=["00000000-1111-2222-3333-444444444444"],
    ),
}

GUEST = "john_contoso.com#EXT#@fabrikam.onmicrosoft.com"
ALICE_ID = "0B4F6C2A-1D3E-4F50-8A9B-C0D1E2F3A4B5"
ACCOUNT_SETS: Mapping[str, tuple[Account, ...]] = {
    "one-upn-and-id": (Account("alice@contoso.com", ALICE_ID),),
    "one-upn-only": (Account(GUEST),),
    "one-id-only": (Account(object_id=ALICE_ID),),
    "several-mixed": (
        Account("alice@contoso.com", ALICE_ID),
        Account(GUEST),
        Account(object_id="11111111-2222-3333-4444-555555555555"),
    ),
    "several-upn-only": (Account("alice@contoso.com"), Account(GUEST), Account("o'brien@contoso.com")),
    "several-id-only": (Account(object_id=ALICE_ID), Account(object_id="11111111-2222-3333-4444-555555555555")),
}
CASES = [(builder, accounts) for builder in BUILDERS for accounts in ACCOUNT_SETS]

#: Sentinel defines `_GetWatchlist(watchlistAlias)` as a workspace function; the columns the product
#: reads come from the watchlist's own header, so their types depend on how it was uploaded. The query
#: converts each one explicitly and must bind whichever type arrives.
WATCHLIST_VARIANTS: Mapping[str, Mapping[str, str]] = {
    "strings": {"StartTime": "string", "EndTime": "string", "Country": "string", "UserPrincipalName": "string"},
    "typed-times": {"StartTime": "datetime", "EndTime": "datetime", "Country": "string", "UserPrincipalName": "string"},
    "dynamic": {"StartTime": "dynamic", "EndTime": "dynamic", "Country": "dynamic", "UserPrincipalName": "dynamic"},
}


def _schema(watchlist: Mapping[str, str]) -> dict[str, Any]:
    """The check script's schema: the project's table fixture plus the watchlist function."""
    tables = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        tables[fixture["table"]] = [[column["name"], column["type"]] for column in fixture["columns"]]
    columns = [[name, watchlist[name]] for name in ("UserPrincipalName", "Country", "StartTime", "EndTime")]
    columns += [["SearchKey", "string"], ["WatchlistAlias", "string"]]
    return {
        "database": "workspace",
        "tables": tables,
        "functions": [{"name": "_GetWatchlist", "parameters": [["watchlistAlias", "string"]], "columns": columns}],
    }


def _installed_version() -> str | None:
    installed = KUSTO_DIR / "node_modules" / PACKAGE / "package.json"
    if not installed.exists():
        return None
    return str(json.loads(installed.read_text(encoding="utf-8"))["version"])


def _locked_version() -> str:
    lock = json.loads((KUSTO_DIR / "package-lock.json").read_text(encoding="utf-8"))
    return str(lock["packages"][f"node_modules/{PACKAGE}"]["version"])


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the locked language service installed next to check.mjs."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.skip("node and npm are needed to run the Kusto language service (tests/kusto)")
    if _installed_version() != _locked_version():
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=KUSTO_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {KUSTO_DIR} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return node_bin


def _check(
    node_bin: str, queries: Sequence[tuple[str, str]], *, watchlist: str = "strings", tokens: bool = False
) -> dict[str, dict[str, Any]]:
    """Run check.mjs once over many queries (node start-up dominates); results by query name."""
    request = {
        "schema": _schema(WATCHLIST_VARIANTS[watchlist]),
        "tokens": tokens,
        "queries": [{"name": name, "text": text} for name, text in queries],
    }
    done = subprocess.run(
        [node_bin, str(KUSTO_DIR / "check.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"check.mjs failed ({done.returncode}): {done.stderr}"
    answer = json.loads(done.stdout)
    assert answer["languageService"] == _locked_version()
    results = {result["name"]: result for result in answer["results"]}
    assert len(results) == len(queries), "query names must be unique"
    return results


def _errors(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [d for d in result["diagnostics"] if d["severity"] == "Error"]


def _explain(text: str, diagnostics: Sequence[Mapping[str, Any]]) -> str:
    """Each diagnostic with the text it points at, so a failure reads without rerunning node."""
    lines = []
    for d in diagnostics:
        start, end = d["start"], d["end"]
        lines.append(f"{d['severity']} {d['code']} at {start}-{end} {text[start:end]!r}: {d['message']}")
        lines.append(f"    ...{text[max(0, start - 80) : end + 40]!r}...")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def production(node: str) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
    """
    Every production query checked: (variant, builder, accounts) -> (text, result).

    The watchlist variants only change `_GetWatchlist`, so only the queries that call it are checked
    again under the other variants (node time is the cost of this module).
    """
    texts = {(builder, accounts): BUILDERS[builder](ACCOUNT_SETS[accounts]).text for builder, accounts in CASES}
    checked = {}
    for variant in WATCHLIST_VARIANTS:
        todo = {key: text for key, text in texts.items() if variant == "strings" or "_GetWatchlist(" in text}
        results = _check(node, [("/".join(key), text) for key, text in todo.items()], watchlist=variant)
        for key, text in todo.items():
            checked[(variant, *key)] = (text, results["/".join(key)])
    return checked


def test_every_query_builder_is_checked() -> None:
    """A new public function in enrichment.queries.kql that returns a Query fails here until it is added to BUILDERS."""
    returning_query = {
        name
        for name, function in inspect.getmembers(kql, inspect.isfunction)
        if function.__module__ == kql.__name__
        and not name.startswith("_")
        and inspect.signature(function).return_annotation in ("Query", kql.Query)
    }
    assert returning_query == set(BUILDERS)


@pytest.mark.parametrize(("builder", "accounts"), CASES, ids=[f"{b}/{a}" for b, a in CASES])
def test_production_query_has_no_error_diagnostics(
    production: Mapping[tuple[str, str, str], tuple[str, dict[str, Any]]], builder: str, accounts: str
) -> None:
    """The query parses and binds against the real columns and types, whatever the watchlist column types."""
    variants = [variant for variant in WATCHLIST_VARIANTS if (variant, builder, accounts) in production]
    assert variants[0] == "strings"
    if builder == "context_query":
        assert variants == list(WATCHLIST_VARIANTS)
    for variant in variants:
        text, result = production[variant, builder, accounts]
        errors = _errors(result)
        assert errors == [], f"watchlist={variant}\n{_explain(text, errors)}"


def _mutated(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"negative control is stale: {old!r} is not in the query"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def controls(node: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Real production queries with one deliberate mistake each, and one wrong table name."""
    accounts = ACCOUNT_SETS["several-mixed"]
    evidence = BUILDERS["evidence_query"](accounts).text
    baseline = BUILDERS["baseline_query"](accounts).text
    context = BUILDERS["context_query"](accounts).text
    texts = {
        "misspelled-column": _mutated(evidence, 'coalesce(AppDisplayName, "")', 'coalesce(AppDisplayNam, "")'),
        "type-error": _mutated(baseline, "hourofday(TimeGenerated)", "hourofday(IPAddress)"),
        "json-text-not-parsed": _mutated(evidence, "todynamic(LocationDetails)", "LocationDetails"),
        "misspelled-watchlist-column": _mutated(context, "toupper(tostring(Country))", "toupper(tostring(Countryy))"),
        "unknown-table": "SignInLogs | take 1",
    }
    results = _check(node, list(texts.items()))
    return {name: (texts[name], results[name]) for name in texts}


class TestNegativeControls:
    """The check finds real mistakes, so a clean result above is not vacuous."""

    def test_misspelled_column_is_an_error(self, controls: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        """A misspelled column in the real evidence query is reported where it is, in both table branches."""
        text, result = controls["misspelled-column"]
        errors = _errors(result)
        assert len(errors) == 2, _explain(text, result["diagnostics"])
        assert {(e["code"], text[e["start"] : e["end"]]) for e in errors} == {("KS142", "AppDisplayNam")}

    def test_type_error_is_an_error(self, controls: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        """A string passed where the baseline query needs a datetime is reported."""
        text, result = controls["type-error"]
        errors = _errors(result)
        assert [(e["code"], text[e["start"] : e["end"]]) for e in errors] == [("KS107", "IPAddress")], _explain(
            text, result["diagnostics"]
        )

    def test_json_text_columns_are_strings_in_the_non_interactive_table(
        self, controls: Mapping[str, tuple[str, dict[str, Any]]]
    ) -> None:
        """Without todynamic() the non-interactive branch fails (JSON text) while the interactive one binds (dynamic)."""
        text, result = controls["json-text-not-parsed"]
        errors = _errors(result)
        assert errors, "LocationDetails is JSON text in AADNonInteractiveUserSignInLogs; reading a property must fail"
        non_interactive = text.index("(AADNonInteractiveUserSignInLogs")
        assert all(e["start"] > non_interactive for e in errors), _explain(text, errors)

    def test_watchlist_function_schema_is_enforced(self, controls: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        """The declared _GetWatchlist result is what the context query binds against."""
        text, result = controls["misspelled-watchlist-column"]
        errors = _errors(result)
        assert [(e["code"], text[e["start"] : e["end"]]) for e in errors] == [("KS142", "Countryy")], _explain(text, errors)

    def test_unknown_table_is_an_error(self, controls: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        """Table names are case-sensitive and checked: `SignInLogs` is not `SigninLogs`."""
        text, result = controls["unknown-table"]
        assert [(e["code"], text[e["start"] : e["end"]]) for e in _errors(result)] == [("KS204", "SignInLogs")]


#: Characters that have broken KQL string building elsewhere: quotes, escapes, line breaks, pipes,
#: comment starts, statement separators, Unicode line separators, controls, astral characters.
HOSTILE_PIECES = (
    '"',
    "'",
    "\\",
    "\\\\",
    '\\"',
    "\n",
    "\r",
    "\r\n",
    "\t",
    "|",
    "//",
    ";",
    "`",
    "```",
    "@",
    "h'",
    "{",
    "}",
    "$",
    "\u2028",
    "\u0085",
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\u200b",
    "é",
    "ß",
    "\U0001f600",
    " ",
    "x",
)
HOSTILE_STRINGS = (
    "",
    '" | take 1 //',
    "' or 1==1 //",
    '\\" ; .drop table SigninLogs',
    "a\\",
    "\\u0041",
    '"""',
    "line1\nline2",
    "```\nSigninLogs\n```",
    '@"verbatim"',
    "alice@contoso.com\n| where true",
    *(
        "".join(random.Random(seed).choices(HOSTILE_PIECES, k=random.Random(seed + 1).randint(1, 12)))
        for seed in range(0, 400, 2)
    ),
)
CONTROLS = {chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"} | {"\x7f"}


def test_string_literal_means_exactly_its_input_to_kusto(node: str) -> None:
    """The official lexer reads every string_literal() back as one literal token holding exactly the input."""
    built = {}
    for index, value in enumerate(HOSTILE_STRINGS):
        try:
            built[f"s{index}"] = (value, kql.string_literal(value))
        except kql.InvalidQueryInput:
            assert CONTROLS & set(value), f"only control characters may be refused, not {value!r}"
    assert sum(1 for value in HOSTILE_STRINGS if not CONTROLS & set(value)) >= 50, "the corpus must not be mostly refusals"
    results = _check(node, [(name, f"print x = {literal}") for name, (_, literal) in built.items()], tokens=True)
    for name, (value, literal) in built.items():
        result = results[name]
        assert result["diagnostics"] == [], f"{value!r} -> {literal}: {result['diagnostics']}"
        kinds = [token["kind"] for token in result["tokens"]]
        assert kinds == ["PrintKeyword", "IdentifierToken", "EqualToken", "StringLiteralToken", "EndOfTextToken"], value
        assert result["tokens"][3]["value"] == value


def _structure(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every token with its trivia (comments live there), string literals reduced to their kind."""
    return [(t["kind"], "" if t["kind"] == "StringLiteralToken" else t["text"], t["trivia"]) for t in result["tokens"]]


def _literal_values(result: Mapping[str, Any]) -> Counter[str]:
    return Counter(t["value"] for t in result["tokens"] if t["kind"] == "StringLiteralToken")


HOSTILE_LOCAL_PARTS = (
    "o'brien",
    "a|b",
    "a//b",
    "x'|take'1",
    "{x}",
    "$x",
    "a`b",
    "a?b",
    "~!#%&*+=^",
    "john_contoso.com#EXT#",
    'a"b',
    "a\\b",
    "a;b",
    "a b",
    "a\nb",
    "a\rb",
    "a@b",
    "",
)


def test_hostile_upns_are_refused_or_stay_inside_their_literal(node: str) -> None:
    """Per the official lexer, a UPN either fails validation or leaves every query's token structure unchanged."""
    accepted = []
    for local in HOSTILE_LOCAL_PARTS:
        upn = f"{local}@contoso.com"
        try:
            kql.validate_upn(upn)
        except kql.InvalidQueryInput:
            continue
        accepted.append(upn)
    # The pattern admits quotes, pipes and slashes: the literal, not the validator, must hold them.
    assert {"o'brien@contoso.com", "a|b@contoso.com", "a//b@contoso.com"} <= set(accepted)

    benign = [f"user{index}@contoso.com" for index in range(len(accepted))]
    queries = []
    for builder, build in BUILDERS.items():
        queries.append((f"{builder}/benign", build([Account(upn, ALICE_ID) for upn in benign]).text))
        queries.append((f"{builder}/hostile", build([Account(upn, ALICE_ID) for upn in accepted]).text))
    texts = dict(queries)
    results = _check(node, queries, tokens=True)

    rename = dict(zip(benign, (upn.lower() for upn in accepted), strict=True))
    for builder in BUILDERS:
        good, bad = results[f"{builder}/benign"], results[f"{builder}/hostile"]
        assert _errors(bad) == [], _explain(texts[f"{builder}/hostile"], _errors(bad))
        assert _structure(bad) == _structure(good), builder
        expected = Counter({rename.get(value, value): n for value, n in _literal_values(good).items()})
        assert _literal_values(bad) == expected, builder
