"""
Empty Log Analytics tables in DuckDB, shaped exactly as the exports loader shapes them, and a row inserter.

Tests fill these with a handful of hand-made rows; both engines (embedded, and Log Analytics through
the fake endpoint) then read the same DuckDB data. Column types come from `enrichment.adapters.exports`, so
the tables are the ones `load_exports` would build (dynamic -> JSON, datetime -> TIMESTAMP in UTC,
JSON-text columns as VARCHAR).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb

from enrichment.adapters.exports import TABLES, WATCHLIST_COLUMNS, WATCHLIST_TABLE, schema_columns


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_schema_tables(con: duckdb.DuckDBPyConnection, tables: Iterable[str] = (*TABLES, WATCHLIST_TABLE)) -> None:
    """CREATE every table the queries read (the three log tables and `Watchlists`), empty, with every column."""
    for table in tables:
        if table == WATCHLIST_TABLE:
            columns = ", ".join(f"{_ident(c)} VARCHAR" for c in WATCHLIST_COLUMNS)
        else:
            columns = ", ".join(f"{_ident(c.name)} {c.duckdb_type}" for c in schema_columns(table))
        con.execute(f"CREATE TABLE {_ident(table)} ({columns})")


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert rows given as column -> value (dicts/lists become JSON text); returns how many."""
    count = 0
    for row in rows:
        names = list(row)
        placeholders = ", ".join("?" for _ in names)
        con.execute(
            f"INSERT INTO {_ident(table)} ({', '.join(_ident(n) for n in names)}) VALUES ({placeholders})",
            [_cell(row[n]) for n in names],
        )
        count += 1
    return count
