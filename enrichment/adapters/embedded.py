"""
The embedded query engine: the production KQL run by duckdb-kql on a local DuckDB file of exports.

It is the `QueryEngine` the laptop triage and every test use, so the queries that run against Log
Analytics are exercised on real data without a workspace. Nothing here imports DuckDB or duckdb-kql
until an engine is opened, which keeps `python -m enrichment --help` quick.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from common.errors import InputError, UpstreamError, first_line
from enrichment.adapters.exports import TABLES, LoadReport, load_exports, open_database
from enrichment.domain.model import QueryOutcome
from enrichment.queries.kql import Query

if TYPE_CHECKING:
    from collections.abc import Mapping

    from duckdb import DuckDBPyConnection

#: Sentinel's `_GetWatchlist` is a workspace function; here it reads the `Watchlists` table the
#: loader always creates. Passed with every query, not through `duckdb_kql.set_functions`, whose
#: registry is process-wide and would leak into (or be clobbered by) other users of duckdb-kql.
WATCHLIST_FUNCTION = "function _GetWatchlist(watchlistAlias:string) { Watchlists | where WatchlistAlias == watchlistAlias }"

_SERVICE = "embedded engine (duckdb-kql)"
_MESSAGE_LIMIT = 300
_MISSING_COLUMN = re.compile(r'Referenced column "?(?P<name>[^"\s]+)"? not found', re.IGNORECASE)
_MISSING_TABLE = re.compile(r'Table with name "?(?P<name>[^"\s!]+)"? does not exist', re.IGNORECASE)


class EmbeddedEngine:
    """
    A `QueryEngine` over a DuckDB connection (named "embedded").

    Rows come back as dicts column -> value: strings, numbers, booleans, naive UTC datetimes, and
    dynamic values as their JSON text. Queries from several threads are serialised: one DuckDB
    connection runs one statement at a time.
    """

    def __init__(
        self, connection: DuckDBPyConnection, *, source: str = "", notes: tuple[str, ...] = (), report: LoadReport | None = None
    ) -> None:
        self._con = connection
        self._lock = threading.Lock()
        self.source = source
        self.notes = notes
        self.report = report
        self.missing_columns = _missing_columns(report)

    @property
    def name(self) -> str:
        return "embedded"

    @classmethod
    def open(cls, path: Path, *, cache: Path | None = None, tables: Mapping[str, str] | None = None) -> EmbeddedEngine:
        """
        An engine over `path`: a folder of exports (loaded, cached) or a `.duckdb` file (read-only).

        Raises `InputError` for anything else, and for exports that cannot be loaded.
        """
        path = Path(path)
        report: LoadReport | None = None
        if path.is_dir():
            loaded = load_exports(path, cache=cache, tables=tables)
            database, report = loaded.database, loaded.report
        elif path.is_file() and path.suffix.lower() == ".duckdb":
            database = path
        elif path.exists():
            msg = f"{path}: give a folder of exported logs or a .duckdb file"
            raise InputError(msg)
        else:
            msg = f"{path}: no such folder or file"
            raise InputError(msg)
        connection, notes = open_database(database)
        return cls(connection, source=str(path), notes=(*notes, *_load_notes(report)), report=report)

    def run(self, query: Query) -> QueryOutcome:
        """Run `query`; translation and execution failures become `InputError` / `UpstreamError`."""
        import duckdb
        import duckdb_kql

        with self._lock:
            try:
                relation = duckdb_kql.kql(self._con, query.text, functions=[WATCHLIST_FUNCTION], allow_write=False)
                columns = list(relation.columns)
                records = relation.fetchall()
            except duckdb_kql.KqlSchemaError as error:
                msg = f"query {query.name}: {self._subject()} has no column or table {error.name!r}"
                raise InputError(msg) from error
            except duckdb_kql.KqlUnsupportedError as error:
                raise UpstreamError(
                    _SERVICE,
                    f"query {query.name}: {_short(error)}",
                    hint="the embedded engine does not translate this KQL; run it on Log Analytics",
                ) from error
            except duckdb_kql.KqlError as error:
                raise UpstreamError(
                    _SERVICE, f"query {query.name}: {_short(error)}", hint="the query text is not valid KQL for duckdb-kql"
                ) from error
            except (duckdb.BinderException, duckdb.CatalogException) as error:
                raise InputError(self._schema_problem(query, error)) from error
            except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
                msg = f"query {query.name}: {self._subject()} holds a value DuckDB cannot use: {first_line(error)}"
                raise InputError(msg) from error
            except duckdb.Error as error:
                raise UpstreamError(_SERVICE, f"query {query.name} failed: {first_line(error)}") from error
        rows = tuple({name: _value(value) for name, value in zip(columns, record, strict=True)} for record in records)
        return QueryOutcome(rows=rows, warnings=self.notes, missing_columns=self.missing_columns)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> EmbeddedEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def _subject(self) -> str:
        return f"the exported data ({self.source})" if self.source else "the embedded database"

    def _schema_problem(self, query: Query, error: Exception) -> str:
        text = str(error)
        column = _MISSING_COLUMN.search(text)
        if column:
            return f"query {query.name}: {self._subject()} has no column {column['name']!r}"
        table = _MISSING_TABLE.search(text)
        if table:
            return f"query {query.name}: {self._subject()} has no table {table['name']!r}"
        return f"query {query.name}: {first_line(error)}"


def _load_notes(report: LoadReport | None) -> tuple[str, ...]:
    """
    What every answer from these exports should carry: tables with no rows and values not loaded.

    A missing non-interactive export hides token replay entirely, so it is said with each result
    rather than left in a load report nobody reads.
    """
    if report is None:
        return ()
    empty = [f"the exports hold no {table} rows" for table in TABLES if report.rows(table) == 0]
    problems = [f"{f.path}: {problem}" for f in report.files for problem in f.problems]
    return (*empty, *problems)


def _missing_columns(report: LoadReport | None) -> dict[str, tuple[str, ...]]:
    """Table -> the schema columns some loaded file of it did not have (they are NULL, not empty, in its rows)."""
    missing: dict[str, set[str]] = {}
    for f in report.files if report is not None else ():
        missing.setdefault(f.table, set()).update(f.missing_columns)
    return {table: tuple(sorted(columns)) for table, columns in missing.items() if columns}


def _value(value: Any) -> Any:
    """Naive datetimes stay naive UTC (the connection's zone); aware ones are converted to it."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _short(error: Exception) -> str:
    """The parser lists every token it expected; the position and the first words say enough."""
    text = first_line(error)
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."
