"""
The embedded query engine: the production questions run on DuckDB over a local file of exports.

It is the `QueryEngine` the laptop triage and every test use, so the queries that run against Log
Analytics are exercised on real data without a workspace. A question's body is translated to SQL by
duckdb-kql once per (declared body, duckdb-kql version, tables' columns, workspace functions), and
the SQL is kept in the cache file (`_triage_sql`), so a warm run never loads the translator. Each run
then binds the question's values to that SQL and executes it on a cursor of its own, narrowed to the
accounts the question is about (`exports.narrow_to`), so several questions can run at once.

Nothing here imports DuckDB or duckdb-kql until an engine is opened, which keeps
`python -m enrichment --help` quick; duckdb-kql is imported only when something must be translated.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from common.errors import InputError, UpstreamError, first_line
from enrichment.adapters.exports import (
    INTERNAL_PREFIX,
    STORE,
    TABLES,
    LoadReport,
    narrow_to,
    narrowable,
    open_database,
    open_exports,
)
from enrichment.domain.model import QueryOutcome
from enrichment.queries.kql import QUESTIONS, Query, Question

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from duckdb import DuckDBPyConnection

#: Sentinel's `_GetWatchlist` is a workspace function; here it reads the `Watchlists` table the
#: loader always creates. Passed with every translation, not through `duckdb_kql.set_functions`,
#: whose registry is process-wide and would leak into (or be clobbered by) other users of duckdb-kql.
WATCHLIST_FUNCTION = "function _GetWatchlist(watchlistAlias:string) { Watchlists | where WatchlistAlias == watchlistAlias }"

#: The cache table holding translated questions: key (see `_key`), SQL, and binding name -> $slot.
TRANSLATIONS_TABLE = f"{INTERNAL_PREFIX}sql"

_SERVICE = "embedded engine (duckdb-kql)"
_MESSAGE_LIMIT = 300
_MISSING_COLUMN = re.compile(r'Referenced column "?(?P<name>[^"\s]+)"? not found', re.IGNORECASE)
_MISSING_TABLE = re.compile(r'Table with name "?(?P<name>[^"\s!]+)"? does not exist', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Translation:
    """A question's SQL and, for each binding its SQL reads, the `$slot` it is bound to."""

    sql: str
    slots: tuple[tuple[str, str], ...]

    def values(self, query: Query) -> dict[str, object]:
        """The query's values by slot; a slot with no binding of its name is a bug in the question."""
        given = query.parameters()
        missing = [name for name, _ in self.slots if name not in given]
        if missing:
            msg = f"query {query.name}: no value bound for {', '.join(missing)}"
            raise UpstreamError(_SERVICE, msg, hint="the question declares a parameter its builder did not bind")
        return {slot: given[name] for name, slot in self.slots}


#: Translations made in this process, by key: engines over equal schemas share them.
_MEMO: dict[str, Translation] = {}
_MEMO_LOCK = threading.Lock()
#: Cache files engines of this process have open (how many each): never written while open here,
#: since a lock held by this same process would not stop the write.
_OPEN: dict[Path, int] = {}
_OPEN_LOCK = threading.Lock()


class EmbeddedEngine:
    """
    A `QueryEngine` over a DuckDB connection from `exports.open_database` (named "embedded").

    Rows come back as dicts column -> value: strings, numbers, booleans, naive UTC datetimes, and
    dynamic values as their JSON text. Every run uses a cursor of its own, so queries from several
    threads run side by side.
    """

    def __init__(
        self,
        connection: DuckDBPyConnection,
        *,
        source: str = "",
        notes: tuple[str, ...] = (),
        report: LoadReport | None = None,
        translations: Mapping[str, Translation] | None = None,
        schema_digest: str = "",
    ) -> None:
        self._con = connection
        self._lock = threading.Lock()
        self._schema = schema_digest or _schema_digest(connection)
        self._translations: dict[str, Translation] = dict(translations or {})
        self._narrowable = narrowable(connection)
        self._database: Path | None = None  # the file `open` attached, while this engine has it open
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

        For a folder, the questions' translations are stored in its cache the first time (later runs
        read them); a `.duckdb` file given directly is never written, so its translations are made in
        memory. Raises `InputError` for anything else, and for exports that cannot be loaded.
        """
        path = Path(path)
        report: LoadReport | None = None
        if path.is_dir():
            loaded, connection, notes = open_exports(path, cache=cache, tables=tables)
            database, report = loaded.database, loaded.report
        elif path.is_file() and path.suffix.lower() == ".duckdb":
            database = path
            connection, notes = open_database(database)
        elif path.exists():
            msg = f"{path}: give a folder of exported logs or a .duckdb file"
            raise InputError(msg)
        else:
            msg = f"{path}: no such folder or file"
            raise InputError(msg)
        stored = stored_translations(connection)
        digest = _schema_digest(connection)
        if report is not None and not all(_key(digest, q.declared) in stored for q in QUESTIONS):
            connection.close()
            store_translations(database, QUESTIONS)
            connection, notes = open_database(database)
            stored = stored_translations(connection)
        engine = cls(
            connection,
            source=str(path),
            notes=(*notes, *_load_notes(report)),
            report=report,
            translations=stored,
            schema_digest=digest,
        )
        engine._database = database.resolve()
        with _OPEN_LOCK:
            _OPEN[engine._database] = _OPEN.get(engine._database, 0) + 1
        return engine

    def run(self, query: Query) -> QueryOutcome:
        """Run `query`; translation and execution failures become `InputError` / `UpstreamError`."""
        import duckdb

        translation = self._translation(query)
        with self._lock:
            cursor = self._con.cursor()
        try:
            if query.subjects is not None and self._narrowable:
                narrow_to(cursor, query.subjects.upns, query.subjects.object_ids)
            cursor.execute(translation.sql, translation.values(query))
            columns = [column[0] for column in cursor.description or ()]
            records = cursor.fetchall()
        except (duckdb.BinderException, duckdb.CatalogException) as error:
            raise InputError(self._schema_problem(query, error)) from error
        except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
            msg = f"query {query.name}: {self._subject()} holds a value DuckDB cannot use: {first_line(error)}"
            raise InputError(msg) from error
        except duckdb.Error as error:
            raise UpstreamError(_SERVICE, f"query {query.name} failed: {first_line(error)}") from error
        finally:
            cursor.close()
        rows = tuple({name: _value(value) for name, value in zip(columns, record, strict=True)} for record in records)
        return QueryOutcome(rows=rows, warnings=self.notes, missing_columns=self.missing_columns)

    def close(self) -> None:
        with self._lock:
            self._con.close()
        if self._database is not None:
            with _OPEN_LOCK:
                _OPEN[self._database] -= 1
                if not _OPEN[self._database]:
                    del _OPEN[self._database]
            self._database = None

    def __enter__(self) -> EmbeddedEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def _translation(self, query: Query) -> Translation:
        """The query's SQL: from the cache file, from this process's memo, or translated now (and memoised)."""
        key = _key(self._schema, query.declared)
        found = self._translations.get(key)
        if found is None:
            with _MEMO_LOCK:
                found = _MEMO.get(key)
            if found is None:
                with self._lock:
                    schema = _read_schema(self._con)
                found = translate(query.name, query.declared, schema)
                with _MEMO_LOCK:
                    _MEMO[key] = found
            self._translations[key] = found
        return found

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


def translate(name: str, declared: str, schema: Mapping[str, list[str]]) -> Translation:
    """
    Translate one declared body with duckdb-kql against `schema` (table -> columns).

    Its errors become ours: a missing column or table is the data's problem (`InputError`), KQL the
    translator cannot run or parse is an `UpstreamError` that says so.
    """
    import duckdb_kql

    try:
        result = duckdb_kql.to_sql(declared, schema=dict(schema), functions=[WATCHLIST_FUNCTION], allow_write=False)
    except duckdb_kql.KqlSchemaError as error:
        msg = f"query {name}: the data has no column or table {error.name!r}"
        raise InputError(msg) from error
    except duckdb_kql.KqlUnsupportedError as error:
        raise UpstreamError(
            _SERVICE,
            f"query {name}: {_short(error)}",
            hint="the embedded engine does not translate this KQL; run it on Log Analytics",
        ) from error
    except duckdb_kql.KqlError as error:
        raise UpstreamError(
            _SERVICE, f"query {name}: {_short(error)}", hint="the query text is not valid KQL for duckdb-kql"
        ) from error
    if result.udfs:
        raise UpstreamError(
            _SERVICE,
            f"query {name}: its SQL needs duckdb-kql functions registered on the connection ({', '.join(sorted(result.udfs))})",
            hint="the embedded engine runs translated SQL on its own cursors; keep questions to KQL that needs none",
        )
    slots = tuple((d.name, d.slot) for d in result.declarations if d.slot in result.slots)
    return Translation(str(result), slots)


def stored_translations(connection: DuckDBPyConnection) -> dict[str, Translation]:
    """The translations kept in the attached cache file (none when it has no table of them)."""
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?", [STORE, TRANSLATIONS_TABLE]
    ).fetchone()
    if not found or not found[0]:
        return {}
    rows = connection.execute(f"SELECT key, sql, slots FROM {STORE}.main.{TRANSLATIONS_TABLE}").fetchall()  # noqa: S608 - constant names
    return {str(key): Translation(str(sql), tuple((str(n), str(s)) for n, s in json.loads(slots))) for key, sql, slots in rows}


def store_translations(database: Path, questions: Iterable[Question]) -> None:
    """
    Translate the questions the cache file lacks and keep them in it, so later runs skip duckdb-kql.

    Needs the file to itself: when an engine of this process or another process has it open (a
    second triage running), nothing is stored and each run translates in memory instead, which costs
    time, never correctness.
    """
    import duckdb

    with _OPEN_LOCK:
        if database.resolve() in _OPEN:
            return
    try:
        connection, _ = open_database(database, writable=True)
    except InputError as error:
        if isinstance(error.__cause__, duckdb.IOException):
            return  # held by another process; see the docstring
        raise
    try:
        schema_digest = _schema_digest(connection)
        stored = stored_translations(connection)
        missing = [q for q in questions if _key(schema_digest, q.declared) not in stored]
        if not missing:
            return
        schema = _read_schema(connection)
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {STORE}.main.{TRANSLATIONS_TABLE} (key VARCHAR PRIMARY KEY, sql VARCHAR, slots VARCHAR)"
        )
        for question in missing:
            translation = translate(question.name, question.declared, schema)
            connection.execute(
                f"INSERT OR REPLACE INTO {STORE}.main.{TRANSLATIONS_TABLE} VALUES (?, ?, ?)",  # noqa: S608 - constant names
                [_key(schema_digest, question.declared), translation.sql, json.dumps(translation.slots)],
            )
        connection.execute("CHECKPOINT")
    finally:
        connection.close()


def _read_schema(connection: DuckDBPyConnection) -> dict[str, list[str]]:
    """Table -> columns of what queries see (the in-memory database's views and tables), as duckdb-kql reads it."""
    rows = connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_catalog = current_database() AND table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        schema.setdefault(str(table), []).append(str(column))
    return schema


def _schema_digest(connection: DuckDBPyConnection) -> str:
    return hashlib.sha256(json.dumps(_read_schema(connection), sort_keys=True).encode()).hexdigest()


def _key(schema_digest: str, declared: str) -> str:
    """What a translation depends on: the translator's version, the functions, the schema and the declared body."""
    material = json.dumps([_translator_version(), WATCHLIST_FUNCTION, schema_digest, declared])
    return hashlib.sha256(material.encode()).hexdigest()


_VERSION_LINE = re.compile(r"""^__version__\s*=\s*(?:version\s*=\s*)?['"]([^'"]+)['"]""", re.MULTILINE)


@functools.cache
def _translator_version() -> str:
    """
    duckdb-kql's version, without importing it (that loads the translator, which a warm run never needs).

    Read from the `_version.py` its build writes beside the package (a few milliseconds); the
    package metadata (`importlib.metadata`, ten times slower) when that file says nothing.
    """
    from importlib.util import find_spec

    spec = find_spec("duckdb_kql")
    if spec is not None and spec.origin:
        written = Path(spec.origin).with_name("_version.py")
        found = _VERSION_LINE.search(written.read_text(encoding="utf-8")) if written.is_file() else None
        if found:
            return found.group(1)
    from importlib.metadata import version

    return version("duckdb-kql")


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
