"""The loader counts values that do not type in the same pass that loads them, file by file, leaving no trace."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from enrichment.adapters.exports import USER_KEY, load_exports, schema_columns

pytestmark = pytest.mark.slow


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))


def _row(time: str, risky: str) -> dict[str, str]:
    return {"TimeGenerated": time, "UserPrincipalName": "a@contoso.example", "IsRisky": risky, "DurationMs": "12"}


def test_each_file_reports_only_its_own_untyped_values(tmp_path: Path) -> None:
    """Two files of one table: each report counts and quotes its own bad values, not the other file's."""
    folder = tmp_path / "in"
    _write_jsonl(folder / "SigninLogs.part1.jsonl.gz", [_row("2026-06-15T10:00:00Z", "maybe"), _row("yesterday", "true")])
    _write_jsonl(
        folder / "SigninLogs.part2.jsonl.gz",
        [_row("2026-06-15T11:00:00Z", "perhaps"), _row("2026-06-15T11:01:00Z", "nope"), _row("2026-06-15T11:02:00Z", "false")],
    )
    report = load_exports(folder, cache=tmp_path / "cache.duckdb").report
    first, second = sorted(report.files, key=lambda f: f.path)
    assert first.rows == 2
    assert second.rows == 3
    assert sorted(first.problems) == [
        "IsRisky: 1 value(s) not understood as bool, left empty (e.g. 'maybe')",
        "TimeGenerated: 1 value(s) not understood as datetime, left empty (e.g. 'yesterday')",
    ]
    assert second.problems == ("IsRisky: 2 value(s) not understood as bool, left empty (e.g. 'nope')",)


def test_the_loaded_table_has_exactly_the_schema_columns(tmp_path: Path) -> None:
    """The scratch columns used while counting are gone from the cache: its columns are the schema fixture's and the user key."""
    folder = tmp_path / "in"
    _write_jsonl(folder / "SigninLogs.jsonl.gz", [_row("2026-06-15T10:00:00Z", "maybe")])
    database = load_exports(folder, cache=tmp_path / "cache.duckdb").database
    with duckdb.connect(str(database), read_only=True) as con:
        columns = [
            r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'SigninLogs'").fetchall()
        ]
        values = con.execute("SELECT IsRisky, DurationMs FROM SigninLogs").fetchall()
    assert columns == [*(c.name for c in schema_columns("SigninLogs")), USER_KEY]
    assert values == [(None, 12)]
