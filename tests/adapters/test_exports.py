"""The exports loader: real files in every format the analysts bring, loaded by real DuckDB into the schema."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from common.errors import InputError
from enrichment.adapters.exports import (
    CACHE_NAME,
    TABLES,
    WATCHLIST_COLUMNS,
    LoadReport,
    load_exports,
    narrow_to,
    narrowable,
    open_database,
    open_exports,
    schema_columns,
)

pytestmark = pytest.mark.slow

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "dynamic": "JSON",
    "bool": "BOOLEAN",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
}

LOCATION = {"city": "Seattle", "countryOrRegion": "US", "geoCoordinates": {"latitude": 47.6, "longitude": -122.3}}
DEVICE = {"deviceId": "", "operatingSystem": "Windows10", "browser": "Edge 18", "isCompliant": False}

# Two sign-ins as the portal writes them: US times, ` [UTC]` headers, JSON in quoted cells.
PORTAL_HEADER = [
    "TimeGenerated [UTC]",
    "UserPrincipalName",
    "IPAddress",
    "LocationDetails",
    "IsInteractive",
    "DurationMs",
    "CreatedDateTime [UTC]",
]
PORTAL_ROWS = [
    [
        "6/15/2026, 9:56:49.975 AM",
        "victim@contoso.example",
        "192.0.2.10",
        json.dumps(LOCATION),
        "true",
        "0",
        "6/15/2026, 9:55:42.817 AM",
    ],
    [
        "6/15/2026, 12:05:09.100 PM",
        "victim@contoso.example",
        "198.51.100.7",
        json.dumps(LOCATION),
        "FALSE",
        "12",
        "6/15/2026, 12:05:01 PM",
    ],
]


# --------------------------------------------------------------------------------------------
# helpers: write hand-made exports, read back what the loader built
# --------------------------------------------------------------------------------------------


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]], *, newline: str = "\r\n") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write(path: Path, data: bytes | str, *, encoding: str = "utf-8", gz: bool = False) -> Path:
    raw = data.encode(encoding) if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@contextmanager
def database(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The loaded file as queries see it (`open_database`: the tables as views, the user key hidden)."""
    con, _ = open_database(path)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def stored(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file itself, as the loader wrote it."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    try:
        yield con
    finally:
        con.close()


def fetch(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with database(path) as con:
        return con.execute(sql).fetchall()


def column_types(path: Path, table: str) -> dict[str, str]:
    with database(path) as con:
        return {name: kind for name, kind, *_ in con.execute(f'DESCRIBE "{table}"').fetchall()}


def load(folder: Path, **kwargs: Any) -> tuple[Path, LoadReport]:
    loaded = load_exports(folder, cache=folder.parent / f"{folder.name}.duckdb", **kwargs)
    return loaded.database, loaded.report


def only_file(report: LoadReport, name: str) -> Any:
    (found,) = [f for f in report.files if f.path == name]
    return found


# --------------------------------------------------------------------------------------------
# schema normalisation
# --------------------------------------------------------------------------------------------


def test_every_table_has_every_schema_column_with_the_duckdb_type_of_its_kusto_type(tmp_path: Path) -> None:
    """Each table matches the fixture column for column, in order, whatever the export held."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, _ = load(tmp_path / "in")
    for table in TABLES:
        expected = {c.name: DUCKDB_TYPES[c.kusto_type] for c in schema_columns(table)}
        assert list(column_types(db, table).items()) == list(expected.items()), table


def test_json_text_columns_stay_text_and_dynamic_columns_are_json(tmp_path: Path) -> None:
    """The non-interactive table's LocationDetails is JSON text, the interactive one's is JSON."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    write(tmp_path / "in" / "AADNonInteractiveUserSignInLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, _ = load(tmp_path / "in")
    assert column_types(db, "SigninLogs")["LocationDetails"] == "JSON"
    assert column_types(db, "AADNonInteractiveUserSignInLogs")["LocationDetails"] == "VARCHAR"
    assert column_types(db, "SigninLogs")["AuthenticationDetails"] == "VARCHAR"
    (text,) = fetch(db, "SELECT DISTINCT LocationDetails FROM AADNonInteractiveUserSignInLogs")[0]
    assert json.loads(text) == LOCATION


def test_a_table_with_no_file_is_empty_with_the_full_schema(tmp_path: Path) -> None:
    """No AuditLogs export still gives an AuditLogs table the context query can read."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM AuditLogs") == [(0,)]
    assert len(column_types(db, "AuditLogs")) == len(schema_columns("AuditLogs"))
    assert report.rows("AuditLogs") == 0
    assert report.rows("SigninLogs") == 2


def test_missing_columns_are_null_and_reported(tmp_path: Path) -> None:
    """A column the export lacks is NULL in every row and listed in the file's report."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM SigninLogs WHERE SessionId IS NULL AND DeviceDetail IS NULL") == [(2,)]
    missing = only_file(report, "SigninLogs.csv").missing_columns
    assert "SessionId" in missing
    assert "DeviceDetail" in missing
    assert "TimeGenerated" not in missing
    assert "IPAddress" not in missing


def test_unknown_columns_are_dropped_and_reported(tmp_path: Path) -> None:
    """Columns outside the schema are not loaded, and the report names them."""
    header = [*PORTAL_HEADER, "OfficeWorkload", "Latitude"]
    rows = [[*r, "Exchange", "47.6"] for r in PORTAL_ROWS]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, rows))
    db, report = load(tmp_path / "in")
    assert "OfficeWorkload" not in column_types(db, "SigninLogs")
    assert only_file(report, "SigninLogs.csv").unknown_columns == ("OfficeWorkload", "Latitude")


def test_present_empty_strings_stay_empty_strings_and_empty_typed_cells_are_null(tmp_path: Path) -> None:
    """Kusto strings are never null; an empty time, bool or number cell is null."""
    header = ["TimeGenerated", "UserPrincipalName", "AppDisplayName", "IsRisky", "DurationMs"]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, [["2026-06-15T10:00:00Z", "a@contoso.example", "", "", ""]]))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT AppDisplayName, IsRisky, DurationMs FROM SigninLogs") == [("", None, None)]
    assert only_file(report, "SigninLogs.csv").problems == ()


# --------------------------------------------------------------------------------------------
# portal CSV quirks
# --------------------------------------------------------------------------------------------


def test_portal_utc_header_suffix_is_stripped_and_us_times_parse_as_utc(tmp_path: Path) -> None:
    """`TimeGenerated [UTC]` becomes TimeGenerated; AM/PM times become naive UTC timestamps."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, _ = load(tmp_path / "in")
    rows = fetch(db, "SELECT TimeGenerated, CreatedDateTime, IsInteractive, DurationMs FROM SigninLogs ORDER BY TimeGenerated")
    assert rows == [
        (datetime(2026, 6, 15, 9, 56, 49, 975000), datetime(2026, 6, 15, 9, 55, 42, 817000), True, 0),
        (datetime(2026, 6, 15, 12, 5, 9, 100000), datetime(2026, 6, 15, 12, 5, 1), False, 12),
    ]


def test_midnight_and_noon_hours_follow_the_twelve_hour_clock(tmp_path: Path) -> None:
    """12:xx AM is just after midnight and 12:xx PM just after noon."""
    header = ["TimeGenerated [UTC]", "UserPrincipalName"]
    rows = [["1/2/2026, 12:00:01.000 AM", "a@contoso.example"], ["1/2/2026, 12:00:01.000 PM", "a@contoso.example"]]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, rows))
    db, _ = load(tmp_path / "in")
    assert fetch(db, "SELECT TimeGenerated FROM SigninLogs ORDER BY 1") == [
        (datetime(2026, 1, 2, 0, 0, 1),),
        (datetime(2026, 1, 2, 12, 0, 1),),
    ]


def test_iso_times_with_offsets_and_seven_digit_fractions_become_naive_utc(tmp_path: Path) -> None:
    """`Z`, `+02:00` and 100-ns precision all land on the same UTC clock."""
    rows = [
        {"TimeGenerated": "2026-06-15T12:35:28.8064136+00:00", "UserPrincipalName": "a@contoso.example"},
        {"TimeGenerated": "2026-06-15T14:35:28+02:00", "UserPrincipalName": "b@contoso.example"},
        {"TimeGenerated": "2026-06-15T12:35:28Z", "UserPrincipalName": "c@contoso.example"},
        {"TimeGenerated": "2026-06-15 12:35:28", "UserPrincipalName": "d@contoso.example"},
    ]
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    assert fetch(db, "SELECT UserPrincipalName, TimeGenerated FROM SigninLogs ORDER BY 1") == [
        ("a@contoso.example", datetime(2026, 6, 15, 12, 35, 28, 806413)),
        ("b@contoso.example", datetime(2026, 6, 15, 12, 35, 28)),
        ("c@contoso.example", datetime(2026, 6, 15, 12, 35, 28)),
        ("d@contoso.example", datetime(2026, 6, 15, 12, 35, 28)),
    ]


def test_times_in_a_zone_other_than_utc_are_refused(tmp_path: Path) -> None:
    """A `[Local Time]` export would shift every time silently, so it is an input error."""
    header = ["TimeGenerated [Local Time]", "UserPrincipalName"]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, [["6/15/2026, 9:56:49.975 AM", "a@contoso.example"]]))
    with pytest.raises(InputError, match=r"SigninLogs\.csv.*Local Time.*UTC"):
        load(tmp_path / "in")


def test_values_that_do_not_type_are_null_and_reported_with_an_example(tmp_path: Path) -> None:
    """A garbled time or bool loads as NULL and the report counts it, quoting one."""
    rows = [
        ["6/15/2026, 9:56:49.975 AM", "a@contoso.example", "not a time", "maybe"],
        ["6/15/2026, 9:57:49.975 AM", "a@contoso.example", "6/15/2026, 9:57:00 AM", "true"],
    ]
    write(
        tmp_path / "in" / "SigninLogs.csv",
        csv_text(["TimeGenerated [UTC]", "UserPrincipalName", "CreatedDateTime [UTC]", "IsRisky"], rows),
    )
    db, report = load(tmp_path / "in")
    assert fetch(
        db, "SELECT count(*) FILTER (WHERE CreatedDateTime IS NULL), count(*) FILTER (WHERE IsRisky IS NULL) FROM SigninLogs"
    ) == [(1, 1)]
    problems = only_file(report, "SigninLogs.csv").problems
    assert any(p.startswith("CreatedDateTime: 1 value(s) not understood as datetime") and "'not a time'" in p for p in problems)
    assert any(p.startswith("IsRisky: 1 value(s) not understood as bool") and "'maybe'" in p for p in problems)


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    """A BOM before the first header does not hide the first column."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS), encoding="utf-8-sig")
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(TimeGenerated) FROM SigninLogs") == [(2,)]
    assert only_file(report, "SigninLogs.csv").encoding == "utf-8-sig"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("gz", [False, True])
def test_utf16_exports_with_a_bom_load_like_utf8(tmp_path: Path, encoding: str, gz: bool) -> None:
    """UTF-16 (either byte order, gzip or not) is transcoded and loads the same rows, accents intact."""
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    rows = [[*PORTAL_ROWS[0][:3], json.dumps({"city": "Zürich", "countryOrRegion": "CH"}), *PORTAL_ROWS[0][4:]]]
    name = "SigninLogs.csv.gz" if gz else "SigninLogs.csv"
    write(tmp_path / "in" / name, bom + csv_text(PORTAL_HEADER, rows).encode(encoding), gz=gz)
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT TimeGenerated, LocationDetails->>'city' FROM SigninLogs") == [
        (datetime(2026, 6, 15, 9, 56, 49, 975000), "Zürich")
    ]
    assert only_file(report, name).encoding == encoding


def test_utf16_without_a_bom_is_recognised(tmp_path: Path) -> None:
    """Every other byte NUL means UTF-16 even when the exporter left the BOM out."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS).encode("utf-16-le"))
    db, _ = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM SigninLogs WHERE UserPrincipalName = 'victim@contoso.example'") == [(2,)]


def test_multi_line_quoted_json_cells_stay_one_row(tmp_path: Path) -> None:
    """Pretty-printed JSON with CRLFs inside a quoted cell is one value, and parses."""
    details = json.dumps([{"authenticationMethod": "Previously satisfied", "succeeded": True}], indent=2).replace("\n", "\r\n")
    location = json.dumps(LOCATION, indent=2)
    header = ["TimeGenerated [UTC]", "UserPrincipalName", "AuthenticationDetails", "LocationDetails"]
    rows = [
        ["6/15/2026, 9:56:49.975 AM", "a@contoso.example", details, location],
        ["6/15/2026, 9:58:00.000 AM", "b@contoso.example", "[]", "{}"],
    ]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, rows))
    db, report = load(tmp_path / "in")
    assert report.rows("SigninLogs") == 2
    (text, city) = fetch(
        db, "SELECT AuthenticationDetails, LocationDetails->>'city' FROM SigninLogs WHERE UserPrincipalName = 'a@contoso.example'"
    )[0]
    assert json.loads(text)[0]["authenticationMethod"] == "Previously satisfied"
    assert city == "Seattle"


def test_ingestion_format_dynamic_and_string_pairs_merge_into_one_column(tmp_path: Path) -> None:
    """`X_dynamic` / `X_string` become X, whichever of the two is filled."""
    header = [
        "TimeGenerated",
        "UserPrincipalName",
        "LocationDetails_dynamic",
        "LocationDetails_string",
        "Status_dynamic",
        "Status_string",
    ]
    rows = [
        ["2026-06-15T10:00:00Z", "a@contoso.example", json.dumps(LOCATION), "", '{"errorCode":0}', ""],
        ["2026-06-15T10:01:00Z", "b@contoso.example", "", json.dumps({"city": "Oslo"}), "", '{"errorCode":50140}'],
    ]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, rows))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT UserPrincipalName, LocationDetails->>'city', Status->>'errorCode' FROM SigninLogs ORDER BY 1") == [
        ("a@contoso.example", "Seattle", "0"),
        ("b@contoso.example", "Oslo", "50140"),
    ]
    file_report = only_file(report, "SigninLogs.csv")
    assert file_report.unknown_columns == ()
    assert "LocationDetails" not in file_report.missing_columns


def test_a_row_with_too_many_fields_is_an_input_error_naming_the_line(tmp_path: Path) -> None:
    """A broken CSV fails loudly, naming the file and the line, rather than shifting columns."""
    text = (
        csv_text(["TimeGenerated", "UserPrincipalName"], [["2026-06-15T10:00:00Z", "a@contoso.example"]])
        + "2026-06-15T10:00:00Z,b,extra\r\n"
    )
    write(tmp_path / "in" / "SigninLogs.csv", text)
    with pytest.raises(InputError, match=r"SigninLogs\.csv: .*[Ll]ine.*3"):
        load(tmp_path / "in")


# --------------------------------------------------------------------------------------------
# JSON formats
# --------------------------------------------------------------------------------------------


def test_dynamic_values_as_objects_or_as_json_text_load_the_same(tmp_path: Path) -> None:
    """The query API writes objects, other tools JSON text in a string: both become the same JSON."""
    rows = [
        {
            "TimeGenerated": "2026-06-15T10:00:00Z",
            "UserPrincipalName": "a@contoso.example",
            "DeviceDetail": DEVICE,
            "ConditionalAccessPolicies": [{"id": "p1"}],
        },
        {
            "TimeGenerated": "2026-06-15T10:00:00Z",
            "UserPrincipalName": "b@contoso.example",
            "DeviceDetail": json.dumps(DEVICE),
            "ConditionalAccessPolicies": '[{"id": "p1"}]',
        },
        {"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "c@contoso.example", "DeviceDetail": "just text"},
    ]
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    got = fetch(db, "SELECT UserPrincipalName, DeviceDetail, ConditionalAccessPolicies FROM SigninLogs ORDER BY 1")
    assert json.loads(got[0][1]) == json.loads(got[1][1]) == DEVICE
    assert json.loads(got[0][2]) == json.loads(got[1][2]) == [{"id": "p1"}]
    assert json.loads(got[2][1]) == "just text"
    assert got[2][2] is None


def test_objects_in_json_text_columns_are_kept_as_their_json_text(tmp_path: Path) -> None:
    """An object where the schema has JSON text (the non-interactive LocationDetails) is stored as text."""
    rows = [
        {
            "TimeGenerated": "2026-06-15T10:00:00Z",
            "UserPrincipalName": "a@contoso.example",
            "LocationDetails": LOCATION,
            "DurationMs": 17,
            "IsInteractive": False,
        }
    ]
    write(tmp_path / "in" / "AADNonInteractiveUserSignInLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    (text, duration, interactive) = fetch(
        db, "SELECT LocationDetails, DurationMs, IsInteractive FROM AADNonInteractiveUserSignInLogs"
    )[0]
    assert json.loads(text) == LOCATION
    assert (duration, interactive) == (17, False)


@pytest.mark.parametrize(
    ("name", "gz"),
    [("SigninLogs.json", False), ("SigninLogs.json.gz", True), ("SigninLogs.ndjson", False), ("SigninLogs.jsonl.gz", True)],
)
def test_json_arrays_json_lines_and_gzip_all_load(tmp_path: Path, name: str, gz: bool) -> None:
    """A JSON array, NDJSON and their gzip forms give the same rows."""
    rows = [
        {"TimeGenerated": f"2026-06-15T10:0{i}:00Z", "UserPrincipalName": "a@contoso.example", "IPAddress": f"192.0.2.{i}"}
        for i in range(3)
    ]
    text = json.dumps(rows) if ".json" in name and "jsonl" not in name and "ndjson" not in name else jsonl(rows)
    write(tmp_path / "in" / name, text, gz=gz)
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT IPAddress FROM SigninLogs ORDER BY 1") == [("192.0.2.0",), ("192.0.2.1",), ("192.0.2.2",)]
    assert report.rows("SigninLogs") == 3


def test_json_with_a_utf8_bom_loads(tmp_path: Path) -> None:
    """PowerShell's UTF-8 writes a BOM DuckDB's JSON reader would choke on; it is stripped."""
    write(
        tmp_path / "in" / "SigninLogs.json",
        json.dumps([{"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "a@contoso.example"}]),
        encoding="utf-8-sig",
    )
    db, _ = load(tmp_path / "in")
    assert fetch(db, "SELECT UserPrincipalName FROM SigninLogs") == [("a@contoso.example",)]


def test_malformed_json_is_an_input_error_naming_file_and_line(tmp_path: Path) -> None:
    """A broken JSON line fails the load with the file and the line number."""
    text = (
        jsonl([{"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "a@contoso.example"}] * 2)
        + '{"TimeGenerated": "2026-06-15T10:00:00Z", "UserPr\n'
    )
    write(tmp_path / "in" / "SigninLogs.jsonl", text)
    with pytest.raises(InputError, match=r"SigninLogs\.jsonl: .*line 3"):
        load(tmp_path / "in")


def test_json_rows_that_are_not_objects_are_refused(tmp_path: Path) -> None:
    """An array of arrays is not an export of rows."""
    write(tmp_path / "in" / "SigninLogs.json", json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(InputError, match=r"SigninLogs\.json: expected one JSON object per row, found ARRAY"):
        load(tmp_path / "in")


def test_a_file_with_none_of_the_tables_columns_is_refused(tmp_path: Path) -> None:
    """A Log Analytics API response saved under a table's name is not mistaken for rows."""
    write(tmp_path / "in" / "SigninLogs.json", json.dumps({"tables": [{"name": "PrimaryResult", "columns": [], "rows": []}]}))
    with pytest.raises(InputError, match=r"none of the SigninLogs columns found \(it has tables\)"):
        load(tmp_path / "in")


AUDIT_ROW = {
    "TimeGenerated": "2026-06-15T10:00:00Z",
    "OperationName": "User registered security info",
    "Category": "UserManagement",
    "Result": "success",
    "ActivityDisplayName": "User registered security info",
    "ActivityDateTime": "2026-06-15T10:00:00Z",
    "LoggedByService": "Authentication Methods",
    "InitiatedBy": {"user": {"userPrincipalName": "victim@contoso.example"}},
    "TargetResources": [{"userPrincipalName": "victim@contoso.example"}],
    "CorrelationId": "5e0b9a3c-1111-4222-8333-944455556666",
}


def test_a_file_holding_another_tables_rows_is_refused_naming_that_table(tmp_path: Path) -> None:
    """AuditLogs rows saved as SigninLogs.jsonl are refused in one line that names AuditLogs and the --table fix."""
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl([AUDIT_ROW]))
    with pytest.raises(InputError, match=r"SigninLogs\.jsonl: holds AuditLogs rows, not SigninLogs") as raised:
        load(tmp_path / "in")
    assert "--table SigninLogs.jsonl=AuditLogs" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_partial_export_of_the_right_table_is_not_mistaken_for_another(tmp_path: Path) -> None:
    """A few shared columns (TimeGenerated, OperationName, CorrelationId) are not evidence of another table."""
    row = {key: AUDIT_ROW[key] for key in ("TimeGenerated", "OperationName", "Category", "CorrelationId")}
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl([{**row, "UserPrincipalName": "victim@contoso.example"}]))
    _, report = load(tmp_path / "in")
    assert report.rows("SigninLogs") == 1


def test_links_that_lead_nowhere_are_listed_and_good_links_are_read(tmp_path: Path) -> None:
    """A symlink loop and a broken link are named in the load report; a link to a real export is loaded."""
    folder = tmp_path / "in"
    real = write(tmp_path / "elsewhere" / "export.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    folder.mkdir()
    (folder / "SigninLogs.csv").symlink_to(real)
    (folder / "AuditLogs.jsonl").symlink_to(folder / "AuditLogs.jsonl")
    (folder / "AADNonInteractiveUserSignInLogs.csv").symlink_to(folder / "gone.csv")
    _, report = load(folder)
    assert report.rows("SigninLogs") == 2
    assert report.ignored == (
        "AADNonInteractiveUserSignInLogs.csv: a link that leads nowhere readable (no such file or directory), not read",
        "AuditLogs.jsonl: a link that leads nowhere readable (a symlink loop), not read",
    )
    assert any("a symlink loop" in line for line in report.lines())


def test_sign_in_tables_carry_an_indexed_user_key_and_a_directory_of_ids(tmp_path: Path) -> None:
    """Each sign-in row keeps its lower-case UPN as an indexed key, and every (user, object id) pair is kept."""
    rows = [
        {"TimeGenerated": f"2026-06-15T1{hour}:00:00Z", "UserPrincipalName": upn, "UserId": user_id}
        for hour, upn, user_id in [
            (5, "Zed@Contoso.example", "00000000-0000-4000-8000-00000000000z"),
            (1, "amy@contoso.example", "00000000-0000-4000-8000-00000000000a"),
            (3, "zed@contoso.example", "00000000-0000-4000-8000-00000000000z"),
            (2, "", "00000000-0000-4000-8000-0000000000e0"),
            (0, "AMY@contoso.example", "00000000-0000-4000-8000-00000000000a"),
        ]
    ]
    write(tmp_path / "in" / "AADNonInteractiveUserSignInLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    with stored(db) as con:
        keys = con.execute("SELECT _user_key, hour(TimeGenerated) FROM AADNonInteractiveUserSignInLogs ORDER BY ALL").fetchall()
        pairs = con.execute("SELECT user_key, user_id FROM _triage_users ORDER BY ALL").fetchall()
        indexed = con.execute("SELECT table_name, expressions FROM duckdb_indexes() ORDER BY ALL").fetchall()
    assert keys == [
        ("", 12),
        ("amy@contoso.example", 10),
        ("amy@contoso.example", 11),
        ("zed@contoso.example", 13),
        ("zed@contoso.example", 15),
    ]
    assert [(table, expressions.strip("[]'\"")) for table, expressions in indexed] == [
        ("AADNonInteractiveUserSignInLogs", "_user_key"),
        ("SigninLogs", "_user_key"),
    ]
    assert ("", "00000000-0000-4000-8000-0000000000e0") in pairs
    assert ("zed@contoso.example", "00000000-0000-4000-8000-00000000000z") in pairs


def test_a_narrowed_question_fetches_the_users_rows_through_the_index(tmp_path: Path) -> None:
    """Narrowed to three busy users, the sign-in table is read by index scan, not row group by row group."""
    rows = [
        {"TimeGenerated": f"2026-06-15T10:{index % 60:02d}:00Z", "UserPrincipalName": f"user{index % 40}@contoso.example"}
        for index in range(120_000)
    ]
    write(tmp_path / "in" / "AADNonInteractiveUserSignInLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    con, _ = open_database(db)
    try:
        cursor = con.cursor()
        narrow_to(cursor, ["user1@contoso.example", "user2@contoso.example", "user3@contoso.example"], [])
        (plan,) = cursor.execute("EXPLAIN ANALYZE SELECT count(*) FROM AADNonInteractiveUserSignInLogs").fetchall()
        assert cursor.execute("SELECT count(*) FROM AADNonInteractiveUserSignInLogs").fetchall() == [(9_000,)]
    finally:
        con.close()
    assert "Type: Index Scan" in plan[1]


def test_a_narrowed_cursor_sees_the_accounts_rows_and_its_neighbours_see_all(tmp_path: Path) -> None:
    """narrow_to keeps every row a UPN or object id filter could select, on that cursor only."""
    rows = [
        {
            "TimeGenerated": "2026-06-15T10:00:00Z",
            "UserPrincipalName": "Amy@contoso.example",
            "UserId": "aaaaaaaa-0000-4000-8000-000000000001",
        },
        {"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "", "UserId": "aaaaaaaa-0000-4000-8000-000000000001"},
        {
            "TimeGenerated": "2026-06-15T10:00:00Z",
            "UserPrincipalName": "bob@contoso.example",
            "UserId": "bbbbbbbb-0000-4000-8000-000000000002",
        },
    ]
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl(rows))
    db, _ = load(tmp_path / "in")
    con, _ = open_database(db)
    try:
        assert narrowable(con)
        by_upn, by_id, other = con.cursor(), con.cursor(), con.cursor()
        narrow_to(by_upn, ["amy@contoso.example"], [])
        narrow_to(by_id, [], ["aaaaaaaa-0000-4000-8000-000000000001"])
        sql = "SELECT UserPrincipalName FROM SigninLogs ORDER BY ALL"
        assert by_upn.execute(sql).fetchall() == [("Amy@contoso.example",)]
        assert by_id.execute(sql).fetchall() == [("",), ("Amy@contoso.example",)]
        assert other.execute(sql).fetchall() == [("",), ("Amy@contoso.example",), ("bob@contoso.example",)]
        assert "_user_key" not in [row[0] for row in other.execute("DESCRIBE SigninLogs").fetchall()]
    finally:
        con.close()


def test_hostile_column_names_are_data_not_sql(tmp_path: Path) -> None:
    """Header text with quotes and statements is reported as an unknown column and changes nothing else."""
    evil = 'x" VARCHAR); DROP TABLE SigninLogs; --'
    rows = [{"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "a@contoso.example", evil: "1"}]
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl(rows))
    write(
        tmp_path / "in" / "AuditLogs.csv",
        csv_text(["TimeGenerated", "OperationName", evil], [["2026-06-15T10:00:00Z", "Register device", "1"]]),
    )
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM SigninLogs") == [(1,)]
    assert fetch(db, "SELECT OperationName FROM AuditLogs") == [("Register device",)]
    assert only_file(report, "SigninLogs.jsonl").unknown_columns == (evil,)
    assert only_file(report, "AuditLogs.csv").unknown_columns == (evil,)


# --------------------------------------------------------------------------------------------
# encodings and broken files
# --------------------------------------------------------------------------------------------


def test_an_unknown_encoding_is_an_input_error(tmp_path: Path) -> None:
    """Latin-1 bytes are not guessed at: the error names the file and the offending byte."""
    write(tmp_path / "in" / "SigninLogs.csv", "TimeGenerated,City\r\n2026-06-15T10:00:00Z,Zürich\r\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"SigninLogs\.csv: unknown encoding .*0xfc"):
        load(tmp_path / "in")


def test_utf32_is_refused_by_name(tmp_path: Path) -> None:
    """UTF-32 exports get an error that says so."""
    write(tmp_path / "in" / "SigninLogs.csv", codecs.BOM_UTF32_LE + "TimeGenerated\r\n".encode("utf-32-le"))
    with pytest.raises(InputError, match="UTF-32"):
        load(tmp_path / "in")


def test_a_file_that_is_not_gzip_despite_its_name_is_an_input_error(tmp_path: Path) -> None:
    """`.gz` that is not gzip names the file."""
    write(tmp_path / "in" / "SigninLogs.jsonl.gz", "plain text")
    with pytest.raises(InputError, match=r"SigninLogs\.jsonl\.gz: cannot read it"):
        load(tmp_path / "in")


def test_a_truncated_gzip_file_is_an_input_error(tmp_path: Path) -> None:
    """A download cut short fails the load instead of loading half the rows."""
    rows = [
        {"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": f"u{i}@contoso.example", "UserAgent": os.urandom(64).hex()}
        for i in range(2000)
    ]
    whole = gzip.compress(jsonl(rows).encode())
    write(tmp_path / "in" / "SigninLogs.jsonl.gz", whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"SigninLogs\.jsonl\.gz"):
        load(tmp_path / "in")


def test_an_empty_file_loads_nothing_and_says_so(tmp_path: Path) -> None:
    """A zero-byte export is reported, not an error, and the table is still there."""
    write(tmp_path / "in" / "SigninLogs.csv", b"")
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM SigninLogs") == [(0,)]
    assert only_file(report, "SigninLogs.csv").problems == ("empty file",)


# --------------------------------------------------------------------------------------------
# which file is which table
# --------------------------------------------------------------------------------------------


def test_several_files_per_table_and_the_table_as_first_or_last_dotted_part(tmp_path: Path) -> None:
    """`SigninLogs.part1.jsonl`, `x.SigninLogs.csv.gz` and `signinlogs.json` all feed SigninLogs."""
    row = {"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": "a@contoso.example"}
    write(tmp_path / "in" / "SigninLogs.part1.jsonl", jsonl([row, row]))
    write(
        tmp_path / "in" / "export.SigninLogs.csv.gz",
        csv_text(["TimeGenerated", "UserPrincipalName"], [["2026-06-15T10:00:00Z", "b@contoso.example"]]),
        gz=True,
    )
    write(tmp_path / "in" / "signinlogs.json", json.dumps([row]))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT count(*) FROM SigninLogs") == [(4,)]
    assert sorted((f.path, f.table, f.rows) for f in report.files if f.table == "SigninLogs") == [
        ("SigninLogs.part1.jsonl", "SigninLogs", 2),
        ("export.SigninLogs.csv.gz", "SigninLogs", 1),
        ("signinlogs.json", "SigninLogs", 1),
    ]


def test_files_of_other_tables_and_formats_are_ignored_and_reported(tmp_path: Path) -> None:
    """SecurityEvent.csv (a table the triage does not read) and notes.txt are left out, each with the reason."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    write(tmp_path / "in" / "SecurityEvent.csv", "TimeGenerated,EventID\r\n2026-06-15T10:00:00Z,4624\r\n")
    write(tmp_path / "in" / "notes.txt", "the victim called at 10")
    _, report = load(tmp_path / "in")
    assert [f.path for f in report.files] == ["SigninLogs.csv"]
    assert len(report.ignored) == 2
    assert report.ignored[0].startswith("SecurityEvent.csv: not one of the tables")
    assert report.ignored[1].startswith("notes.txt: not a .json, .jsonl, .ndjson or .csv file")


def test_an_explicit_mapping_names_the_table_of_an_oddly_named_file(tmp_path: Path) -> None:
    """`tables={"sign-ins.csv": "SigninLogs"}` loads a file whose name says nothing."""
    write(tmp_path / "in" / "sign-ins.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, report = load(tmp_path / "in", tables={"sign-ins.csv": "SigninLogs"})
    assert report.rows("SigninLogs") == 2
    assert fetch(db, "SELECT count(*) FROM SigninLogs") == [(2,)]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"sign-ins.csv": "SecurityEvent"}, "is not one of"),
        ({"absent.csv": "SigninLogs"}, "no file named"),
        ({"../sign-ins.csv": "SigninLogs"}, "no file named"),
    ],
)
def test_a_bad_mapping_is_an_input_error(tmp_path: Path, mapping: dict[str, str], message: str) -> None:
    """A mapping to an unknown table, or to a file not in the folder, is refused."""
    write(tmp_path / "in" / "sign-ins.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    write(tmp_path / "sign-ins.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    with pytest.raises(InputError, match=message):
        load(tmp_path / "in", tables=mapping)


def test_no_created_time_fallback_is_needed_when_time_generated_exists_but_is_used_when_it_is_not(tmp_path: Path) -> None:
    """An export without TimeGenerated takes CreatedDateTime, and the report says so."""
    header = ["CreatedDateTime [UTC]", "UserPrincipalName"]
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(header, [["4/28/2021, 2:08:45.221 PM", "a@contoso.example"]]))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT TimeGenerated, CreatedDateTime FROM SigninLogs") == [(datetime(2021, 4, 28, 14, 8, 45, 221000),) * 2]
    assert only_file(report, "SigninLogs.csv").problems == ("no TimeGenerated column: CreatedDateTime used instead",)


def test_a_folder_that_does_not_exist_is_an_input_error(tmp_path: Path) -> None:
    """The path is named in the error."""
    with pytest.raises(InputError, match="not a folder of exported logs"):
        load_exports(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# watchlists
# --------------------------------------------------------------------------------------------


def test_watchlists_table_exists_with_its_columns_when_no_watchlist_was_exported(tmp_path: Path) -> None:
    """`_GetWatchlist` always has a table to read."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    db, report = load(tmp_path / "in")
    assert list(column_types(db, "Watchlists").items()) == [(c, "VARCHAR") for c in WATCHLIST_COLUMNS]
    assert report.rows("Watchlists") == 0


def test_watchlist_files_load_under_their_alias_with_extra_columns_kept(tmp_path: Path) -> None:
    """Travel records get WatchlistAlias from the file name, SearchKey from the UPN, ISO times, and keep extras."""
    header = ["UserPrincipalName", "Country", "StartTime", "EndTime", "Ticket"]
    rows = [["victim@contoso.example", "NO", "6/10/2026, 12:00:00 AM", "2026-06-20", "TRV-1"]]
    write(tmp_path / "in" / "watchlists" / "TravelRecords.csv", csv_text(header, rows), encoding="utf-8-sig")
    write(
        tmp_path / "in" / "watchlists" / "VipUsers.csv",
        csv_text(["SearchKey", "UserPrincipalName"], [["boss", "boss@contoso.example"]]),
    )
    write(tmp_path / "in" / "watchlists" / "bad alias!.csv", csv_text(header, rows))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT * FROM Watchlists ORDER BY WatchlistAlias") == [
        (
            "TravelRecords",
            "victim@contoso.example",
            "victim@contoso.example",
            "NO",
            "2026-06-10T00:00:00Z",
            "2026-06-20T00:00:00Z",
            "TRV-1",
        ),
        ("VipUsers", "boss", "boss@contoso.example", None, None, None, None),
    ]
    assert report.rows("Watchlists") == 2
    assert only_file(report, "watchlists/VipUsers.csv").missing_columns == ("Country", "StartTime", "EndTime")
    assert any(entry.startswith("watchlists/bad alias!.csv: not a watchlist alias") for entry in report.ignored)


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------


def test_the_cache_defaults_into_the_folder_and_a_second_load_reads_it(tmp_path: Path) -> None:
    """Same inputs: the cached file is reused, untouched, with the same report."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    first = load_exports(folder)
    assert first.database == folder / CACHE_NAME
    assert not first.report.from_cache
    built = first.database.stat().st_mtime_ns
    second = load_exports(folder)
    assert second.report.from_cache
    assert second.database.stat().st_mtime_ns == built
    assert second.report.files == first.report.files
    assert second.report.table_rows == first.report.table_rows


def test_open_exports_answers_through_the_connection_that_checked_the_cache(tmp_path: Path) -> None:
    """A current cache is checked and queried through one attach; a stale one is rebuilt, then opened."""
    folder = tmp_path / "in"
    path = write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    load_exports(folder)
    loaded, con, _ = open_exports(folder)
    try:
        assert loaded.report.from_cache
        assert con.execute("SELECT count(*) FROM SigninLogs").fetchall() == [(2,)]
    finally:
        con.close()
    with path.open("a", encoding="utf-8", newline="") as out:
        csv.writer(out, lineterminator="\r\n").writerow(PORTAL_ROWS[0])
    rebuilt, con, _ = open_exports(folder)
    try:
        assert not rebuilt.report.from_cache
        assert con.execute("SELECT count(*) FROM SigninLogs").fetchall() == [(3,)]
    finally:
        con.close()


def test_a_changed_input_rebuilds_the_cache(tmp_path: Path) -> None:
    """Appending a row (new size and mtime) is seen on the next load."""
    folder = tmp_path / "in"
    path = write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    load_exports(folder)
    with path.open("a", encoding="utf-8", newline="") as out:
        csv.writer(out, lineterminator="\r\n").writerow(PORTAL_ROWS[0])
    again = load_exports(folder)
    assert not again.report.from_cache
    assert fetch(again.database, "SELECT count(*) FROM SigninLogs") == [(3,)]


def test_a_new_file_or_a_new_mapping_rebuilds_the_cache(tmp_path: Path) -> None:
    """The fingerprint covers the file list and the table mapping, not only file contents."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    write(folder / "odd.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS[:1]))
    assert load_exports(folder).report.rows("SigninLogs") == 2
    mapped = load_exports(folder, tables={"odd.csv": "AADNonInteractiveUserSignInLogs"})
    assert not mapped.report.from_cache
    assert mapped.report.rows("AADNonInteractiveUserSignInLogs") == 1


def test_a_failed_load_leaves_no_cache_and_no_scratch_files(tmp_path: Path) -> None:
    """Nothing half-loaded is cached: the good file's rows are not kept when another file is broken."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    write(folder / "AADNonInteractiveUserSignInLogs.jsonl", '{"TimeGenerated": \n')
    with pytest.raises(InputError, match=r"AADNonInteractiveUserSignInLogs\.jsonl"):
        load_exports(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["AADNonInteractiveUserSignInLogs.jsonl", "SigninLogs.csv"]


def test_a_file_at_the_default_cache_path_that_is_not_a_cache_is_refused_not_replaced(tmp_path: Path) -> None:
    """Garbage at the default cache path is someone's file: refused in one line, left as it was."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    garbage = write(folder / CACHE_NAME, b"not a duckdb file at all" * 100)
    with pytest.raises(InputError, match=r"is not a triage cache \(.*\); refusing to overwrite it") as raised:
        load_exports(folder)
    assert "\n" not in str(raised.value)
    assert garbage.read_bytes() == b"not a duckdb file at all" * 100


def test_a_folder_at_the_cache_path_is_refused_in_one_line(tmp_path: Path) -> None:
    """A folder where the cache file goes (default or given) is bad input naming the path, not a traceback."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    (folder / CACHE_NAME).mkdir()
    with pytest.raises(InputError, match="the cache path is a folder") as raised:
        load_exports(folder)
    assert str(folder / CACHE_NAME) in str(raised.value)
    with pytest.raises(InputError, match="the cache path is a folder"):
        load_exports(folder, cache=tmp_path)


def test_a_cache_from_an_older_loader_is_rebuilt(tmp_path: Path) -> None:
    """Our own cache of other inputs (or of another loader version) is replaced, unlike anybody else's file."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    first = load_exports(folder)
    with duckdb.connect(str(first.database)) as con:
        con.execute("UPDATE _triage_meta SET value = 'from an older loader' WHERE key = 'fingerprint'")
    again = load_exports(folder)
    assert not again.report.from_cache
    assert fetch(again.database, "SELECT count(*) FROM SigninLogs") == [(2,)]


def test_a_killed_builds_folder_is_removed_and_a_running_ones_is_left(tmp_path: Path) -> None:
    """Build folders whose lock is free (the build was killed) go; one whose lock is held stays."""
    import fcntl

    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    killed = folder / ".triage-build-killed"
    write(killed / "cache.duckdb", b"half a database")
    write(killed / "building.lock", b"")
    running = folder / ".triage-build-running"
    write(running / "building.lock", b"")
    with open(running / "building.lock", "r+", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        load_exports(folder)
        assert not killed.exists()
        assert running.exists()
    assert sorted(p.name for p in folder.iterdir()) == [".triage-build-running", CACHE_NAME, "SigninLogs.csv"]


def test_an_explicit_cache_path_that_is_someone_elses_file_is_not_overwritten(tmp_path: Path) -> None:
    """Pointing the cache at an unrelated file or DuckDB database is refused and leaves it intact."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    notes = write(tmp_path / "notes.txt", "precious")
    with pytest.raises(InputError, match="refusing to overwrite"):
        load_exports(folder, cache=notes)
    assert notes.read_text() == "precious"
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE keep AS SELECT 42 AS answer")
    con.close()
    with pytest.raises(InputError, match="refusing to overwrite"):
        load_exports(folder, cache=other)
    assert fetch(other, "SELECT answer FROM keep") == [(42,)]


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield
    finally:
        folder.chmod(stat.S_IRWXU)


def test_a_read_only_folder_gets_its_cache_in_a_private_folder_of_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evidence folder marked read-only is never written to; the cache goes to <temp>/triage-cache-<uid>, mode 0700."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with read_only(folder):
        loaded = load_exports(folder)
        private = scratch / f"triage-cache-{os.getuid()}"
        assert loaded.database.parent == private
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert sorted(p.name for p in folder.iterdir()) == ["SigninLogs.csv"]
        assert load_exports(folder).report.from_cache


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        ("open", r"open to other users \(mode 0o777\)"),
        ("link", "is not a folder"),
        ("file", "is not a folder"),
    ],
)
def test_a_private_cache_folder_others_could_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str, message: str
) -> None:
    """A planted or loosened private folder is refused in one line: a cache planted there would decide verdicts."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    private = scratch / f"triage-cache-{os.getuid()}"
    if plant == "open":
        private.mkdir()
        private.chmod(0o777)
    elif plant == "link":
        (scratch / "elsewhere").mkdir(mode=0o700)
        private.symlink_to(scratch / "elsewhere")
    else:
        private.write_text("x")
    with read_only(folder), pytest.raises(InputError, match=message) as raised:
        load_exports(folder)
    assert "\n" not in str(raised.value)


def test_a_cache_file_of_another_user_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache at the cache path owned by someone else is refused, never read: ownership is checked, not assumed."""
    folder = tmp_path / "in"
    write(folder / "SigninLogs.csv", csv_text(PORTAL_HEADER, PORTAL_ROWS))
    load_exports(folder)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(folder).st_uid + 1)
    with pytest.raises(InputError, match="belongs to user id"):
        load_exports(folder, cache=folder / CACHE_NAME)


def test_open_database_supplies_missing_tables_as_empty_without_writing_the_file(tmp_path: Path) -> None:
    """A DuckDB file with only SigninLogs still answers queries on every table, and is not modified."""
    path = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE SigninLogs AS SELECT 'a@contoso.example' AS UserPrincipalName")
    con.close()
    before = path.read_bytes()
    opened, notes = open_database(path)
    try:
        assert opened.execute("SELECT count(*) FROM AuditLogs").fetchall() == [(0,)]
        assert opened.execute("SELECT count(*) FROM SigninLogs").fetchall() == [(1,)]
        assert notes == (
            "mine.duckdb has no AADNonInteractiveUserSignInLogs table: treated as empty",
            "mine.duckdb has no AuditLogs table: treated as empty",
            "mine.duckdb has no Watchlists table: treated as empty",
        )
    finally:
        opened.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [None, b"plain text, not a database"])
def test_open_database_refuses_what_is_not_a_duckdb_file(tmp_path: Path, content: bytes | None) -> None:
    """A missing path or a non-DuckDB file is an input error naming it."""
    path = tmp_path / "x.duckdb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=r"x\.duckdb"):
        open_database(path)


def test_json_keys_first_seen_after_the_sampled_rows_are_still_loaded(tmp_path: Path) -> None:
    """A column that only appears deep in a JSON-lines file is read, not silently dropped."""
    early = [{"TimeGenerated": "2026-06-15T10:00:00Z", "UserPrincipalName": f"u{i}@contoso.example"} for i in range(5001)]
    late = {
        "TimeGenerated": "2026-06-15T11:00:00Z",
        "UserPrincipalName": "late@contoso.example",
        "SessionId": "s-late",
        "DurationMs": 5,
    }
    write(tmp_path / "in" / "SigninLogs.jsonl", jsonl([*early, late]))
    db, report = load(tmp_path / "in")
    assert fetch(db, "SELECT SessionId, DurationMs FROM SigninLogs WHERE UserPrincipalName = 'late@contoso.example'") == [
        ("s-late", 5)
    ]
    assert fetch(db, "SELECT count(*) FROM SigninLogs WHERE SessionId IS NULL") == [(5001,)]
    assert report.rows("SigninLogs") == 5002


def test_a_malformed_json_array_names_the_line(tmp_path: Path) -> None:
    """A broken element of a pretty-printed JSON array is located by line and column."""
    text = '[\n  {"TimeGenerated": "2026-06-15T10:00:00Z"},\n  {"TimeGenerated": "2026-06-15T10:00:00Z" "UserPrincipalName": "x"}\n]\n'
    write(tmp_path / "in" / "SigninLogs.json", text)
    with pytest.raises(InputError, match=r"SigninLogs\.json: malformed JSON at line 3, column 44"):
        load(tmp_path / "in")


def test_the_report_reads_as_lines_for_a_terminal(tmp_path: Path) -> None:
    """Rows per file, missing and unknown columns, problems and ignored files each get a line."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text([*PORTAL_HEADER, "Extra"], [[*r, "x"] for r in PORTAL_ROWS]))
    write(tmp_path / "in" / "SecurityEvent.csv", "a\r\n1\r\n")
    _, report = load(tmp_path / "in")
    lines = report.lines()
    assert lines[0] == "SigninLogs.csv -> SigninLogs: 2 rows (utf-8)"
    assert any(line.startswith("SigninLogs.csv: ") and "columns missing (NULL)" in line for line in lines)
    assert "SigninLogs.csv: unknown columns ignored: Extra" in lines
    assert lines[-1].startswith("ignored SecurityEvent.csv: ")
    assert LoadReport.from_dict(json.loads(json.dumps(report.to_dict())), from_cache=False) == report


def test_a_bracketed_suffix_on_a_column_that_is_not_a_time_is_just_an_unknown_column(tmp_path: Path) -> None:
    """Only time columns are checked for their zone; `Notes [internal]` is reported as unknown."""
    write(tmp_path / "in" / "SigninLogs.csv", csv_text([*PORTAL_HEADER, "Notes [internal]"], [[*r, "n"] for r in PORTAL_ROWS]))
    _, report = load(tmp_path / "in")
    assert only_file(report, "SigninLogs.csv").unknown_columns == ("Notes [internal]",)
