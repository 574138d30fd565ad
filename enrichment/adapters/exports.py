"""
Load a folder of exported Entra ID logs into a DuckDB file shaped exactly like the workspace's tables.

Analysts triage on a laptop from whatever the portal, the query API or a colleague exported: CSV
with ` [UTC]` headers and US-style times, JSON arrays, JSON lines, gzip, UTF-16, ingestion-format
`X_dynamic` / `X_string` column pairs. Every table is normalised to the project's schema fixture
(`enrichment/schemas/*.json`), so the production KQL runs unchanged on the result, and what could not
be used is reported file by file rather than silently dropped.

Parsing is DuckDB's: its readers stream the big formats (a two-week export is millions of rows), and
Python only peeks at headers and transcodes the encodings DuckDB cannot read. The result is cached in
a DuckDB file keyed by a fingerprint of the inputs, built beside it and renamed into place, so a
second run opens it at once and a failed load never leaves a half-built cache behind.

The cache is laid out for the questions the triage asks, which are always about a few users: each
sign-in row carries the normalised user (`_user_key`, the lower-case UPN), indexed (an ART index), and
`open_database` narrows the tables to the users a question names with an equality filter on that
column, so DuckDB fetches only those users' rows however large the tenant is. The rows stay in the
order the parallel reader wrote them: an index costs a fraction of a second per million rows, where
sorting them by user nearly doubles the load on a million wide rows, and at 25 million does not
finish under the build's memory bound (bench/sort_cost.py, bench/user_index.py).

A cache decides verdicts, so nothing but our own cache is trusted or replaced: a file at the cache
path that is not one is refused, and when the evidence folder is read-only the cache goes to a
private per-user folder whose owner and mode are checked.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import InputError, first_line
from enrichment.domain import optional_tables
from enrichment.queries.kql import InvalidQueryInput, validate_watchlist_alias

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

#: Bump when the loader's output changes for the same input: every older cache is rebuilt.
LOADER_VERSION = "4"

#: The tables every folder is read as holding, as Log Analytics names them: one with no file is an
#: empty table (and said so with every answer).
TABLES = ("SigninLogs", "AADNonInteractiveUserSignInLogs", "AuditLogs")
#: Tables a folder may hold besides (activity and identity context): loaded when a file feeds them, and
#: otherwise absent, as in a workspace that does not collect them, so the queries can tell.
OPTIONAL_TABLES = tuple(name for name in optional_tables.TABLES if name not in TABLES)
#: Every table a folder may hold.
KNOWN_TABLES = (*TABLES, *OPTIONAL_TABLES)

#: The table `_GetWatchlist` reads; these columns exist even when no watchlist was exported.
WATCHLIST_TABLE = "Watchlists"
WATCHLIST_COLUMNS = ("WatchlistAlias", "SearchKey", "UserPrincipalName", "Country", "StartTime", "EndTime")
WATCHLIST_FOLDER = "watchlists"

#: Files that travel with exports but are never one: the sample tenant generator's ground truth and
#: app settings, and a Functions settings file. Skipped without a word (its `incidents/` folder is a
#: folder, and folders other than `watchlists/` are not read).
COMPANION_FILES = frozenset({"scenarios.json", "settings.json", "local.settings.json"})

#: Where the cache goes unless the caller names a path.
CACHE_NAME = ".triage-cache.duckdb"

#: The sign-in tables, stored with `USER_KEY` (`lower(UserPrincipalName)`, never NULL) and an index on it.
SIGNIN_TABLES = ("SigninLogs", "AADNonInteractiveUserSignInLogs")
USER_KEY = "_user_key"
#: Every (user key, lower-case object id) pair of the sign-in tables: how a question naming an
#: account by object id finds the user keys to narrow the tables to.
DIRECTORY_TABLE = "_triage_users"
#: The session variable `open_database`'s views read: the user keys a question is about (NULL: all).
SCOPE_VARIABLE = "triage_user_keys"
#: Cache tables of our own, never shown to queries.
INTERNAL_PREFIX = "_triage_"

_META_TABLE = "_triage_meta"
_BUILD_PREFIX = ".triage-build-"
_BUILD_LOCK = "building.lock"
_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "dynamic": "JSON",
    "bool": "BOOLEAN",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
}
_FORMATS = {"json": "json", "jsonl": "jsonl", "ndjson": "jsonl", "csv": "csv"}
#: When a table's export has no TimeGenerated (older ingestion-format exports), the event's own time
#: stands in for it; otherwise every window filter would silently match nothing.
_TIME_FALLBACK = {
    "SigninLogs": "CreatedDateTime",
    "AADNonInteractiveUserSignInLogs": "CreatedDateTime",
    "AuditLogs": "ActivityDateTime",
    "CloudAppEvents": "Timestamp",
    "AADUserRiskEvents": "DetectedDateTime",
    "AADRiskyUsers": "RiskLastUpdatedDateTime",
}
#: A spreadsheet that re-saves an export can cut TimeGenerated down to the time of day (`3:53 PM`).
#: Where the table records a later time of the same event with its date (the audit's Start_Time,
#: minutes after the event), the date is taken from it: the event is the latest such time not after it.
_DATE_FROM = {"OfficeActivity": "Start_Time"}
_TIME_OF_DAY = r"^\s*[0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([AaPp][Mm])?\s*$"
_TIME_OF_DAY_FORMATS = ("%I:%M %p", "%I:%M:%S %p", "%I:%M:%S.%g %p", "%H:%M", "%H:%M:%S", "%H:%M:%S.%g")
#: The portal writes times as `6/15/2026, 9:56:49.975 AM` in the zone named in the header.
_PORTAL_TIME_FORMATS = ("%m/%d/%Y, %I:%M:%S.%g %p", "%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y, %I:%M %p")
_HEADER_ZONE = re.compile(r"^(?P<name>.*?)\s*\[(?P<zone>[^\]]*)\]\s*$")
_PAIR_SUFFIXES = ("_dynamic", "_string")
_ERROR_KIND = re.compile(r"^[A-Za-z ]*Error: ")
#: Rows sampled to learn a JSON file's keys (DuckDB reads the columns it is told about).
_JSON_KEY_SAMPLE = 5000
_SNIFF_BYTES = 64 * 1024
_COPY_CHUNK = 1024 * 1024
#: Largest JSON row DuckDB accepts; its read buffers are sized from it, so it stays at its default.
_MAX_OBJECT = 16 * 1024 * 1024
#: A JSON array larger than this is not re-parsed in Python to locate a syntax error.
_LOCATE_ARRAY_LIMIT = 64 * 1024 * 1024
#: DuckDB's buffer pool while building: bounded so a multi-million-row export spills to disk
#: instead of exhausting a laptop (about 1.1 GB RSS on 1M non-interactive rows, bench/embedded_load.py).
_BUILD_MEMORY_LIMIT = "1GB"
#: The most rows a narrowed question fetches through the user index before DuckDB scans instead
#: (its default, 2,048, sends three busy users to a full scan); a service account with more is scanned.
INDEX_SCAN_MAX_ROWS = 100_000
#: Scratch columns of a table while one file is inserted (see `_load_table_file`); no schema column starts so.
_UNTYPED_PREFIX = "__untyped_"


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one exported file: where its rows went and what could not be used."""

    path: str
    table: str
    rows: int
    encoding: str
    missing_columns: tuple[str, ...] = ()
    unknown_columns: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadReport:
    """
    The whole load, file by file, kept with the cache so a cached run reports the same thing.

    `ignored` lists files that were not loaded, each with the reason, so an analyst who exported
    the wrong table (or misnamed a file) finds out before trusting an empty result.
    """

    files: tuple[FileReport, ...]
    ignored: tuple[str, ...] = ()
    table_rows: tuple[tuple[str, int], ...] = ()
    from_cache: bool = False

    def rows(self, table: str) -> int:
        """Rows loaded into `table` (0 for a table with no file)."""
        return dict(self.table_rows).get(table, 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; also what the cache stores."""
        return {
            "files": [
                {
                    "path": f.path,
                    "table": f.table,
                    "rows": f.rows,
                    "encoding": f.encoding,
                    "missing_columns": list(f.missing_columns),
                    "unknown_columns": list(f.unknown_columns),
                    "problems": list(f.problems),
                }
                for f in self.files
            ],
            "ignored": list(self.ignored),
            "table_rows": dict(self.table_rows),
            "from_cache": self.from_cache,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, from_cache: bool) -> LoadReport:
        files = tuple(
            FileReport(
                path=str(f["path"]),
                table=str(f["table"]),
                rows=int(f["rows"]),
                encoding=str(f["encoding"]),
                missing_columns=tuple(f["missing_columns"]),
                unknown_columns=tuple(f["unknown_columns"]),
                problems=tuple(f["problems"]),
            )
            for f in data["files"]
        )
        rows = tuple((str(k), int(v)) for k, v in dict(data["table_rows"]).items())
        return cls(files=files, ignored=tuple(data["ignored"]), table_rows=rows, from_cache=from_cache)

    def lines(self) -> list[str]:
        """The report as short lines for a terminal."""
        out = [f"{f.path} -> {f.table}: {f.rows} rows ({f.encoding})" for f in self.files]
        for f in self.files:
            if f.missing_columns:
                out.append(f"{f.path}: {len(f.missing_columns)} columns missing (NULL): {', '.join(f.missing_columns)}")
            if f.unknown_columns:
                out.append(f"{f.path}: unknown columns ignored: {', '.join(f.unknown_columns)}")
            out.extend(f"{f.path}: {problem}" for problem in f.problems)
        out.extend(f"ignored {entry}" for entry in self.ignored)
        return out


@dataclass(frozen=True, slots=True)
class LoadedExports:
    """A DuckDB file holding every table (read it with `open_database`) and how it was made."""

    database: Path
    report: LoadReport


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    kusto_type: str

    @property
    def duckdb_type(self) -> str:
        return _DUCKDB_TYPES[self.kusto_type]


@dataclass(frozen=True, slots=True)
class _Export:
    """One input file and the table it feeds (WATCHLIST_TABLE for a watchlist; `alias` names it)."""

    path: Path
    display: str
    table: str
    format: str
    compressed: bool
    alias: str = ""


@dataclass(frozen=True, slots=True)
class _Readable:
    """A file as DuckDB will read it: maybe a UTF-8 copy, with the header names when it is CSV."""

    path: Path
    compressed: bool
    encoding: str
    header: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def schema_columns(table: str) -> tuple[_Column, ...]:
    """The project's columns for `table`, in fixture order."""
    document = json.loads((_SCHEMAS / f"{table}.json").read_text(encoding="utf-8"))
    return tuple(_Column(c["name"], c["type"]) for c in document["columns"])


def load_exports(folder: Path, *, cache: Path | None = None, tables: Mapping[str, str] | None = None) -> LoadedExports:
    """
    Load every export in `folder` (cached), returning the DuckDB file and the load report.

    `tables` maps file names (relative to `folder`) whose names do not say their table, e.g.
    `{"sign-in_adelete.csv": "SigninLogs"}`. The cache defaults to `<folder>/.triage-cache.duckdb`;
    when the folder is read-only it goes to a private per-user folder in the temp directory
    (`private_cache_folder`). Raises `InputError` for a missing folder, a file that cannot be read or
    does not hold its table's rows, and anything at the cache path that is not a triage cache.
    """
    loaded, con, _ = open_exports(folder, cache=cache, tables=tables)
    con.close()
    return loaded


def open_exports(
    folder: Path, *, cache: Path | None = None, tables: Mapping[str, str] | None = None
) -> tuple[LoadedExports, DuckDBPyConnection, tuple[str, ...]]:
    """
    `load_exports`, then `open_database` on its file: the loaded exports, the open connection and its notes.

    A current cache (the usual run) is attached once, both to check it is of these inputs and to
    query it: a second open of the file cost a one-user run about 20 ms.
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = f"{folder}: not a folder of exported logs"
        raise InputError(msg)
    exports, ignored = _discover(folder, tables or {})
    fingerprint = _fingerprint(folder, exports, ignored, tables or {})
    target = _cache_path(folder, cache)
    opened = _open_cache(target, fingerprint)
    if opened is None:
        report = _build(target, exports, ignored, fingerprint)
        con = _attach(target)
    else:
        con, report = opened
    return LoadedExports(target, report), *_exposed(con, target)


#: The alias the cache file is attached under; queries see views of its tables in the in-memory database.
STORE = "triage_store"


def open_database(path: Path, *, writable: bool = False) -> tuple[DuckDBPyConnection, tuple[str, ...]]:
    """
    Open a DuckDB file for KQL, with every table the queries read.

    The file is attached (read-only unless `writable`) to an in-memory database that shows each of
    its tables as a view of the same name: a sign-in table of our layout through the user filter of
    `narrow_to` (its `_user_key` column hidden), anything else as it is. A table the file lacks is
    supplied as an empty table with the full schema (the file itself is never written), and named in
    the returned notes so the caller can say so. Every cursor of the connection sees the views.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such DuckDB file"
        raise InputError(msg)
    return _exposed(_attach(path, writable=writable), path)


def _attach(path: Path, *, writable: bool = False) -> DuckDBPyConnection:
    """An in-memory connection with the file at `path` attached as `STORE` (read-only unless `writable`)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_progress_bar=false")
        con.execute(f"SET index_scan_max_count={INDEX_SCAN_MAX_ROWS}")
        mode = "" if writable else " (READ_ONLY)"
        con.execute(f"ATTACH {_sql_string(str(path))} AS {STORE}{mode}")
    except duckdb.Error as error:
        con.close()
        msg = f"{path}: not a DuckDB database this version can open: {first_line(error)}"
        raise InputError(msg) from error
    return con


def _exposed(con: DuckDBPyConnection, path: Path) -> tuple[DuckDBPyConnection, tuple[str, ...]]:
    """`con` with the attached file's tables as views (see `open_database`), and the notes; `con` is closed on failure."""
    try:
        return con, _expose(con, path)
    except BaseException:
        con.close()
        raise


def _expose(con: DuckDBPyConnection, path: Path) -> tuple[str, ...]:
    """The attached file's tables as views (see `open_database`); the notes naming the tables it lacks."""
    stored: dict[str, list[str]] = {}
    for name, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns()"
        " WHERE database_name = ? AND schema_name = 'main' ORDER BY table_name, column_index",
        [STORE],
    ).fetchall():
        stored.setdefault(name, []).append(column)
    for name, columns in stored.items():
        if name.startswith(INTERNAL_PREFIX):
            continue
        source = f"{STORE}.main.{_ident(name)}"
        if USER_KEY in columns:
            scope = f"getvariable('{SCOPE_VARIABLE}')"
            select = (
                f"SELECT * EXCLUDE ({_ident(USER_KEY)}) FROM {source}"  # noqa: S608 - quoted identifiers, constant names
                f" WHERE {scope} IS NULL OR list_contains({scope}, {_ident(USER_KEY)})"
            )
        else:
            select = f"SELECT * FROM {source}"  # noqa: S608 - quoted identifiers
        con.execute(f"CREATE VIEW {_ident(name)} AS {select}")
    present = {name.lower() for name in stored}
    notes: list[str] = []
    for table in (*TABLES, WATCHLIST_TABLE):
        if table.lower() in present:
            continue
        con.execute(f"CREATE TABLE {_ident(table)} ({_table_ddl(table)})")
        notes.append(f"{path.name} has no {table} table: treated as empty")
    return tuple(notes)


def narrowable(con: DuckDBPyConnection) -> bool:
    """Whether `con` (from `open_database`) shows a cache of our layout, whose sign-in tables `narrow_to` can narrow."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?", [STORE, DIRECTORY_TABLE]
    ).fetchone()
    return bool(found and found[0])


def narrow_to(cursor: DuckDBPyConnection, upns: Sequence[str], object_ids: Sequence[str]) -> None:
    """
    Show `cursor` only the sign-ins of these accounts (lower-case UPNs and object ids).

    The rows any filter `UserPrincipalName in~ (upns) or UserId in~ (object_ids)` selects are all
    kept: an object id brings every user key it was ever seen with (the directory holds each pair,
    an empty UPN included). Only for a connection where `narrowable` is true; the cursor's own
    setting, so concurrent cursors narrow independently.
    """
    keys = set(upns)
    if object_ids:
        found = cursor.execute(
            f"SELECT DISTINCT user_key FROM {STORE}.main.{DIRECTORY_TABLE} WHERE list_contains(?, user_id)",  # noqa: S608 - constant names
            [list(object_ids)],
        ).fetchall()
        keys.update(str(row[0]) for row in found)
    cursor.execute(f"SET VARIABLE {SCOPE_VARIABLE} = ?::VARCHAR[]", [sorted(keys)])


# --------------------------------------------------------------------------------------------
# Discovering files
# --------------------------------------------------------------------------------------------


def _split_name(name: str) -> tuple[str, str, bool] | None:
    """(stem, format, compressed) for a supported file name, else None."""
    compressed = name.lower().endswith(".gz")
    base = name[:-3] if compressed else name
    stem, dot, extension = base.rpartition(".")
    fmt = _FORMATS.get(extension.lower())
    if not dot or not stem or fmt is None:
        return None
    return stem, fmt, compressed


def _table_for(stem: str) -> str | None:
    """The table a file stem names: its first or its last dotted part (`x.SigninLogs`, `SigninLogs.part1`)."""
    known = {t.lower(): t for t in KNOWN_TABLES}
    parts = stem.split(".")
    return known.get(parts[0].lower()) or known.get(parts[-1].lower())


def _discover(folder: Path, mapping: Mapping[str, str]) -> tuple[list[_Export], list[str]]:
    """The files to load and the files left out, each with the reason."""
    known = {t.lower(): t for t in KNOWN_TABLES}
    wanted: dict[str, str] = {}
    for name, table in mapping.items():
        if table.lower() not in known:
            msg = f"tables: {table!r} (for {name}) is not one of {', '.join(KNOWN_TABLES)}"
            raise InputError(msg)
        if Path(name).name != name or not (folder / name).is_file():
            msg = f"tables: no file named {name!r} in {folder}"
            raise InputError(msg)
        if _split_name(name) is None:
            msg = f"tables: {name!r} is not a .json, .jsonl, .ndjson or .csv file (optionally .gz)"
            raise InputError(msg)
        wanted[name] = known[table.lower()]

    exports: list[_Export] = []
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith("."):
            continue
        if not path.is_file():
            ignored.extend(f"{name}: {reason}" for reason in _not_a_file(path))
            continue
        if name.lower() in COMPANION_FILES and name not in wanted:
            continue
        split = _split_name(name)
        if split is None:
            ignored.append(f"{name}: not a .json, .jsonl, .ndjson or .csv file (optionally .gz)")
            continue
        feeds = wanted.get(name) or _table_for(split[0])
        if feeds is None:
            ignored.append(f"{name}: not one of the tables the triage reads ({', '.join(KNOWN_TABLES)}); name it after its table")
        else:
            exports.append(_Export(path, name, feeds, split[1], split[2]))

    watchlists = folder / WATCHLIST_FOLDER
    if watchlists.is_dir():
        for path in sorted(watchlists.iterdir()):
            name = f"{WATCHLIST_FOLDER}/{path.name}"
            if path.name.startswith("."):
                continue
            if not path.is_file():
                ignored.extend(f"{name}: {reason}" for reason in _not_a_file(path))
                continue
            split = _split_name(path.name)
            if split is None:
                ignored.append(f"{name}: not a .json, .jsonl, .ndjson or .csv file (optionally .gz)")
                continue
            try:
                alias = validate_watchlist_alias(split[0])
            except InvalidQueryInput as error:
                ignored.append(f"{name}: {error}")
                continue
            exports.append(_Export(path, name, WATCHLIST_TABLE, split[1], split[2], alias=alias))
    return exports, ignored


def _not_a_file(path: Path) -> list[str]:
    """
    Why an entry that is not a readable file was skipped, when it is worth saying (none for a folder).

    A link that leads nowhere (broken, or a loop) or a special file (a pipe, a socket) may be an
    export the analyst meant to give, so it is listed rather than passed over.
    """
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 and 3.12 report a loop so
            return ["a link that leads nowhere readable (a symlink loop), not read"]
        except OSError as error:
            if error.errno == errno.ELOOP:  # 3.13 and later
                return ["a link that leads nowhere readable (a symlink loop), not read"]
            return [f"a link that leads nowhere readable ({(error.strerror or type(error).__name__).lower()}), not read"]
    if path.is_dir():
        return []
    return ["not a regular file (a pipe, socket or device), not read"]


def _fingerprint(folder: Path, exports: Sequence[_Export], ignored: Sequence[str], mapping: Mapping[str, str]) -> str:
    """Names, sizes and mtimes of the inputs, the schema fixture and the loader: what the cache depends on."""
    import duckdb

    digest = hashlib.sha256()
    digest.update(f"loader {LOADER_VERSION} duckdb {duckdb.__version__}\n".encode())
    for table in KNOWN_TABLES:
        digest.update((_SCHEMAS / f"{table}.json").read_bytes())
    digest.update(json.dumps(sorted(mapping.items())).encode())
    for export in exports:
        stat = export.path.stat()
        digest.update(f"{export.display}\0{export.table}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update("\n".join(ignored).encode())
    digest.update(str(folder.resolve()).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def _cache_path(folder: Path, cache: Path | None) -> Path:
    if cache is not None:
        return Path(cache)
    if _writable(folder):
        return folder / CACHE_NAME
    # A read-only folder (a mounted share, an evidence copy): its cache goes to this user's own folder.
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return private_cache_folder() / f"{key}.duckdb"


def _writable(folder: Path) -> bool:
    """
    Whether the loader may put its cache in `folder`.

    The mode bits count as well as access: an administrator (or root in a container) can write
    anywhere, but a folder someone marked read-only is evidence and stays untouched.
    """
    writable_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & writable_bits)


def private_cache_folder() -> Path:
    """
    This user's own folder for the caches of read-only evidence folders: `<temp>/triage-cache-<uid>`.

    The temp directory is shared, and a cache decides verdicts, so the folder is created with mode
    0700 and refused when it is not a plain folder of this user's, closed to everyone else: whoever
    could write there could plant a cache. (On Windows the temp directory is already per user.)
    """
    base = Path(tempfile.gettempdir())
    if not hasattr(os, "getuid"):
        folder = base / "triage-cache"
        folder.mkdir(exist_ok=True)
        return folder
    uid = os.getuid()
    folder = base / f"triage-cache-{uid}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode):
        msg = f"{folder}: the private cache folder is not a folder (a link or a file); remove it, or give --cache FILE"
        raise InputError(msg)
    if info.st_uid != uid:
        msg = f"{folder}: the private cache folder belongs to user id {info.st_uid}, not to you ({uid}); give --cache FILE"
        raise InputError(msg)
    if info.st_mode & 0o077:
        mode = oct(stat.S_IMODE(info.st_mode))
        msg = f"{folder}: the private cache folder is open to other users (mode {mode}); chmod 700 it, or give --cache FILE"
        raise InputError(msg)
    return folder


def _read_cache(path: Path, fingerprint: str) -> LoadReport | None:
    """
    The stored report when `path` is our cache of exactly these inputs; None when there is nothing
    there or our cache of other inputs (rebuilt). Anything else at the path is refused, never replaced.
    """
    opened = _open_cache(path, fingerprint)
    if opened is None:
        return None
    con, report = opened
    con.close()
    return report


def _open_cache(path: Path, fingerprint: str) -> tuple[DuckDBPyConnection, LoadReport] | None:
    """`_read_cache`, keeping the connection (`_attach`) it read the report through open for the caller."""
    import duckdb

    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        msg = f"{path}: the cache path is a folder, not a triage cache; remove it, or give --cache FILE"
        raise InputError(msg)
    if not stat.S_ISREG(info.st_mode):
        msg = f"{path}: the cache path is a link or a special file, not a triage cache; refusing to use or replace it"
        raise InputError(msg)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        msg = f"{path}: the cache file belongs to user id {info.st_uid}, not to you; refusing to trust or replace it"
        raise InputError(msg)
    try:
        con = _attach(path)
    except InputError as error:
        msg = f"{path}: exists and is not a triage cache ({first_line(error.__cause__ or error)}); refusing to overwrite it"
        raise InputError(msg) from error
    try:
        meta = dict(con.execute(f"SELECT key, value FROM {STORE}.main.{_META_TABLE}").fetchall())  # noqa: S608 - constant names
    except duckdb.Error as error:
        con.close()
        msg = f"{path}: is a DuckDB file but not a triage cache; refusing to overwrite it"
        raise InputError(msg) from error
    if meta.get("fingerprint") != fingerprint:
        con.close()
        return None
    return con, LoadReport.from_dict(json.loads(meta["report"]), from_cache=True)


def _build(target: Path, exports: Sequence[_Export], ignored: Sequence[str], fingerprint: str) -> LoadReport:
    """
    Build the database beside `target` and rename it into place; on any failure nothing is left.

    The build folder is locked while it is in use, so a later load can tell the folder of a killed
    build (removed) from one another process is still filling (left alone).
    """
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(target.parent)
    work = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=target.parent))
    try:
        with _locked(work / _BUILD_LOCK):
            building = work / "cache.duckdb"
            con = duckdb.connect(str(building))
            try:
                con.execute("SET TimeZone='UTC'")
                con.execute(f"SET memory_limit='{_BUILD_MEMORY_LIMIT}'")
                con.execute(f"SET temp_directory={_sql_string(str(work / 'spill'))}")
                con.execute("SET enable_progress_bar=false")
                # No question depends on the order rows are stored in (engines promise none), and
                # keeping the file's order makes DuckDB insert a large export on one thread.
                con.execute("SET preserve_insertion_order=false")
                report = _load_all(con, exports, ignored, work)
                con.execute(f"CREATE TABLE {_META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
                con.execute(
                    f"INSERT INTO {_META_TABLE} VALUES ('fingerprint', ?), ('loader_version', ?), ('report', ?)",  # noqa: S608 - constant name
                    [fingerprint, LOADER_VERSION, json.dumps(report.to_dict())],
                )
                con.execute("CHECKPOINT")
            finally:
                con.close()
            _replace(building, target, fingerprint)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: A build folder without its lock file this old was left by a build killed before it took the lock.
_UNLOCKED_BUILD_AGE_S = 300


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created) for the block; a no-op where there is no `fcntl` (Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _remove_stale_builds(parent: Path) -> None:
    """Remove the build folders in `parent` whose build is gone (killed): their lock is free."""
    try:
        import fcntl
    except ImportError:
        return
    for folder in parent.glob(f"{_BUILD_PREFIX}*"):
        if folder.is_symlink() or not folder.is_dir():
            continue
        lock = folder / _BUILD_LOCK
        try:
            handle = open(lock, "r+", encoding="utf-8")  # noqa: SIM115 - held across the check below
        except FileNotFoundError:
            if time.time() - folder.stat().st_mtime > _UNLOCKED_BUILD_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process is building there
            shutil.rmtree(folder, ignore_errors=True)


def _replace(building: Path, target: Path, fingerprint: str) -> None:
    try:
        os.replace(building, target)
    except PermissionError:
        # Windows refuses to replace a file another process has open. If that process built the
        # same inputs, its cache is as good as ours.
        if _read_cache(target, fingerprint) is None:
            raise


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _load_all(con: DuckDBPyConnection, exports: Sequence[_Export], ignored: Sequence[str], work: Path) -> LoadReport:
    reports: list[FileReport] = []
    table_rows: list[tuple[str, int]] = []
    for table in KNOWN_TABLES:
        mine = [e for e in exports if e.table == table]
        if table in OPTIONAL_TABLES and not mine:
            continue  # absent, as in a workspace that does not collect it
        columns = schema_columns(table)
        con.execute(f"CREATE TABLE {_ident(table)} ({_table_ddl(table, stored=True)})")
        loaded = [_load_table_file(con, table, columns, export, work / f"{index}-{table}") for index, export in enumerate(mine)]
        if table in SIGNIN_TABLES:
            con.execute(f"CREATE INDEX {_ident(INTERNAL_PREFIX + table + USER_KEY)} ON {_ident(table)} ({_ident(USER_KEY)})")
        reports.extend(loaded)
        table_rows.append((table, sum(r.rows for r in loaded)))
    watchlist_reports = _load_watchlists(con, [e for e in exports if e.table == WATCHLIST_TABLE], work)
    reports.extend(watchlist_reports)
    table_rows.append((WATCHLIST_TABLE, sum(r.rows for r in watchlist_reports)))
    pairs = " UNION ".join(
        f"SELECT DISTINCT {_ident(USER_KEY)} AS user_key, lower(UserId) AS user_id FROM {_ident(table)}"  # noqa: S608 - constant names
        " WHERE UserId IS NOT NULL AND UserId <> ''"
        for table in SIGNIN_TABLES
    )
    con.execute(f"CREATE TABLE {DIRECTORY_TABLE} AS {pairs}")
    return LoadReport(files=tuple(reports), ignored=tuple(ignored), table_rows=tuple(table_rows))


def _clean_header(name: str, display: str) -> str:
    """
    A column name without BOM, padding or the portal's ` [UTC]` suffix.

    A time column exported in another zone (`[Local Time]`) is refused: loading it would shift
    every sign-in by the analyst's offset without a trace.
    """
    name = name.lstrip("\ufeff").strip()
    zone = _HEADER_ZONE.match(name)
    if zone is None:
        return name
    if zone["zone"].strip().upper() == "UTC":
        return zone["name"]
    if zone["name"].lower() not in _time_columns():
        return name
    msg = (
        f"{display}: column {name!r} holds times in {zone['zone']!r}, not UTC; "
        "export again with the portal's time zone set to UTC"
    )
    raise InputError(msg)


@functools.cache
def _time_columns() -> frozenset[str]:
    """Lower-cased names of every datetime column the loader fills (the watchlist's included)."""
    names = {c.name.lower() for table in KNOWN_TABLES for c in schema_columns(table) if c.kusto_type == "datetime"}
    return frozenset(names | {"starttime", "endtime"})


def _map_sources(columns: Sequence[_Column], sources: Sequence[tuple[str, str]]) -> tuple[dict[str, list[str]], list[str]]:
    """
    Which source columns feed each schema column, and the source names that feed none.

    `sources` pairs the reader's identifier with the cleaned header name. A schema column `X` is fed
    by `X` itself and by the ingestion-format pair `X_dynamic` / `X_string`, first non-empty wins;
    names match case-insensitively because the exporters disagree on case.
    """
    by_name = {c.name.lower(): c.name for c in columns}
    feeds: dict[str, list[str]] = {c.name: [] for c in columns}
    unknown: list[str] = []
    for identifier, name in sources:
        lowered = name.lower()
        target = by_name.get(lowered)
        for suffix in _PAIR_SUFFIXES:
            if target is None and lowered.endswith(suffix):
                target = by_name.get(lowered.removesuffix(suffix))
        if target is None:
            unknown.append(name)
        else:
            feeds[target].append(identifier)
    return feeds, unknown


def _text_expression(column: _Column, identifiers: Sequence[str], *, present: bool = True) -> str:
    """The text one schema column takes from its sources, before typing (NULL when it has none)."""
    if not identifiers:
        return "NULL"
    if column.kusto_type == "string" and present and len(identifiers) == 1:
        # Kusto strings are never null: a missing cell is the empty string (one call per value, not two).
        return f"coalesce({_ident(identifiers[0])}, '')"
    parts = [f"NULLIF({_ident(i)}, '')" for i in identifiers]
    if column.kusto_type == "string" and present:
        # Kusto strings are never null: a present but empty cell is the empty string.
        parts.append("''")
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def _load_table_file(
    con: DuckDBPyConnection, table: str, columns: Sequence[_Column], export: _Export, scratch: Path
) -> FileReport:
    """
    One file into its table, typed on the way in.

    Values that do not type (a time in an unknown format, "maybe" in a bool column) become NULL and
    are counted, with an example, in the same pass, so the report can name them.
    """
    readable = _readable(export, scratch)
    sources = _source_columns(con, export, readable)
    feeds, unknown = _map_sources(columns, sources)
    problems: list[str] = []
    fallback = _TIME_FALLBACK.get(table, "")
    if not feeds["TimeGenerated"] and fallback and feeds[fallback]:
        feeds["TimeGenerated"] = list(feeds[fallback])
        problems.append(f"no TimeGenerated column: {fallback} used instead")
    missing = tuple(c.name for c in columns if not feeds[c.name])
    if not sources:
        return FileReport(export.display, table, 0, readable.encoding, problems=("empty file",))
    if len(missing) == len(columns):
        found = ", ".join(name for _, name in sources[:8])
        msg = f"{export.display}: none of the {table} columns found (it has {found}); is it a {table} export?"
        raise InputError(msg)
    _refuse_other_tables_rows(export, table, sources)
    present = {c.name for c in columns if feeds[c.name]}
    reads = [identifier for identifier, _ in sources]
    if export.format != "csv":
        for column_name, identifier in _unsampled_keys(columns, sources):
            feeds[column_name].append(identifier)
            reads.append(identifier)
    # Reading a big gzipped export is most of the cost, so it is read once: each typed column gets
    # a scratch column holding the raw text where the cast failed, read back and dropped after the
    # insert (a separate counting scan cost a quarter of the load).
    checked = [c for c in columns if c.kusto_type not in {"string", "dynamic"} and feeds[c.name]]
    scratch_columns = [f"{_UNTYPED_PREFIX}{index}" for index in range(len(checked))]
    dated = _dated_time_of_day(table, columns, feeds)
    if dated is not None:
        scratch_columns.append(f"{_UNTYPED_PREFIX}dated")
    for name in scratch_columns:
        con.execute(f"ALTER TABLE {_ident(table)} ADD COLUMN {_ident(name)} VARCHAR")
    typed = {
        c.name: _cast_sql(_text_expression(c, feeds[c.name], present=c.name in present), c.kusto_type, c.duckdb_type)
        for c in columns
    }
    if dated is not None:
        typed["TimeGenerated"] = f"CASE WHEN {dated[0]} THEN {dated[1]} ELSE {typed['TimeGenerated']} END"
    select = [typed[c.name] for c in columns]
    for c in checked:
        text = _text_expression(c, feeds[c.name])
        select.append(f"CASE WHEN ({text}) IS NOT NULL AND ({typed[c.name]}) IS NULL THEN {text} END")
    if dated is not None:
        select.append(f"CASE WHEN {dated[0]} THEN 'dated' END")
    targets = [*(c.name for c in columns), *scratch_columns]
    if table in SIGNIN_TABLES:
        # The key the questions narrow by (see the module docstring).
        upn = select[[c.name for c in columns].index("UserPrincipalName")]
        select.append(f"coalesce(lower({upn}), '')")
        targets.append(USER_KEY)
    names = ", ".join(_ident(name) for name in targets)
    reader, params = _reader(export, readable, reads)
    sql = f"INSERT INTO {_ident(table)} ({names}) SELECT {', '.join(select)} FROM {reader}"  # noqa: S608 - quoted identifiers, bound values
    rows = _count(_run(con, export, sql, params, readable))
    if dated is not None:
        problems.extend(_dated_values(con, table, scratch_columns.pop()))
    problems.extend(_untyped_values(con, table, checked, scratch_columns))
    return FileReport(
        path=export.display,
        table=table,
        rows=rows,
        encoding=readable.encoding,
        missing_columns=missing,
        unknown_columns=tuple(unknown),
        problems=tuple(problems),
    )


def _dated_time_of_day(table: str, columns: Sequence[_Column], feeds: Mapping[str, list[str]]) -> tuple[str, str] | None:
    """
    (condition, value) SQL giving a time-of-day-only TimeGenerated its date from `_DATE_FROM` (see
    there), or None when the table has no such column or the file does not feed both.
    """
    anchor_name = _DATE_FROM.get(table)
    by_name = {c.name: c for c in columns}
    if anchor_name is None or not feeds["TimeGenerated"] or not feeds[anchor_name]:
        return None
    text = _text_expression(by_name["TimeGenerated"], feeds["TimeGenerated"])
    anchor = _cast_sql(_text_expression(by_name[anchor_name], feeds[anchor_name]), "datetime", "TIMESTAMP")
    formats = ", ".join(_sql_string(f) for f in _TIME_OF_DAY_FORMATS)
    moment = f"(CAST({anchor} AS DATE) + CAST(try_strptime(trim({text}), [{formats}]) AS TIME))"
    condition = f"(regexp_matches(coalesce({text}, ''), {_sql_string(_TIME_OF_DAY)}) AND {anchor} IS NOT NULL)"
    # The event precedes the record's later time: a time of day after it (beyond clock skew) was the day before.
    value = f"CASE WHEN {moment} > {anchor} + INTERVAL 1 HOUR THEN {moment} - INTERVAL 1 DAY ELSE {moment} END"
    return condition, value


def _dated_values(con: DuckDBPyConnection, table: str, scratch: str) -> list[str]:
    """How many TimeGenerated values took their date from `_DATE_FROM` (said, since a spreadsheet lost it); drops the scratch column."""
    row = con.execute(f"SELECT count({_ident(scratch)}) FROM {_ident(table)}").fetchone()  # noqa: S608 - quoted identifiers
    con.execute(f"ALTER TABLE {_ident(table)} DROP COLUMN {_ident(scratch)}")
    count = int(row[0]) if row else 0
    if not count:
        return []
    return [
        f"TimeGenerated: {count} value(s) held only a time of day (re-saved by a spreadsheet?); "
        f"the date was taken from {_DATE_FROM[table]}"
    ]


#: Columns only another table has that a file must show before it is refused as that table's rows.
_OTHER_TABLE_EVIDENCE = 3


def _refuse_other_tables_rows(export: _Export, table: str, sources: Sequence[tuple[str, str]]) -> None:
    """
    Refuse a file whose columns are another table's (AuditLogs rows saved as `SigninLogs.jsonl`).

    Tables share many columns (TimeGenerated, OperationName, CorrelationId...), so a file is only
    refused when another table knows more of its columns than its own table does, and at least a
    few of them are columns its own table does not have: a partial export of the right table never is.
    """
    own_schema = {c.name for c in schema_columns(table)}

    def known(other: str) -> set[str]:
        feeds, _ = _map_sources(schema_columns(other), sources)
        return {name for name, identifiers in feeds.items() if identifiers}

    own = known(table)
    for other in KNOWN_TABLES:
        theirs = known(other) if other != table else set()
        if len(theirs) > len(own) and len(theirs - own_schema) >= _OTHER_TABLE_EVIDENCE:
            msg = (
                f"{export.display}: holds {other} rows, not {table} ({len(theirs)} of its columns are {other}'s,"
                f" {len(own)} are {table}'s); name it after its table, or map it with --table {export.display}={other}"
            )
            raise InputError(msg)


def _unsampled_keys(columns: Sequence[_Column], sources: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """
    (schema column, JSON key) for every schema key the sampled rows did not show.

    DuckDB reads only the keys it is told about, and a key first seen after the sample would
    otherwise be lost without a word; asking for an absent key costs nothing. The ingestion-format
    pairs are asked for only when the sample shows that format.
    """
    seen = {identifier.lower() for identifier, _ in sources}
    paired = any(name.lower().endswith(_PAIR_SUFFIXES) for _, name in sources)
    out: list[tuple[str, str]] = []
    for c in columns:
        keys = [c.name, *(c.name + suffix for suffix in _PAIR_SUFFIXES)] if paired else [c.name]
        out.extend((c.name, key) for key in keys if key.lower() not in seen)
    return out


def _untyped_values(con: DuckDBPyConnection, table: str, checked: Sequence[_Column], scratch_columns: Sequence[str]) -> list[str]:
    """
    For each typed column: how many values did not type, with one example; drops the scratch columns.

    Only the file just inserted has values there: each file adds its scratch columns afresh.
    """
    if not checked:
        return []
    clauses = ", ".join(f"count({_ident(name)}), min({_ident(name)})" for name in scratch_columns)
    row = con.execute(f"SELECT {clauses} FROM {_ident(table)}").fetchone() or ()  # noqa: S608 - quoted identifiers
    for name in scratch_columns:
        con.execute(f"ALTER TABLE {_ident(table)} DROP COLUMN {_ident(name)}")
    found = []
    for position, c in enumerate(checked):
        count, example = row[2 * position], row[2 * position + 1]
        if count:
            found.append(f"{c.name}: {count} value(s) not understood as {c.kusto_type}, left empty (e.g. {str(example)[:60]!r})")
    return found


def _cast_sql(raw: str, kind: str, duckdb_type: str) -> str:
    """SQL turning the text `raw` into the Kusto type's DuckDB type; NULL when it does not parse."""
    if kind == "string":
        return raw
    if kind == "datetime":
        # ISO 8601 first (API and JSON exports): DuckDB's COALESCE tries the portal's formats only
        # on the rows that are left, so a large JSON export pays for one cast per value.
        formats = ", ".join(_sql_string(f) for f in _PORTAL_TIME_FORMATS)
        return (
            f"COALESCE(CAST(try_cast({raw} AS TIMESTAMPTZ) AS TIMESTAMP),"
            f" CASE WHEN upper({raw}) LIKE '%M' THEN try_strptime({raw}, [{formats}]) END)"
        )
    if kind == "dynamic":
        # Objects arrive as JSON text (CSV cells, JSON objects re-serialised by the reader, JSON
        # strings holding JSON); anything else is a plain string value.
        return f"CASE WHEN {raw} IS NULL THEN NULL WHEN json_valid({raw}) THEN CAST({raw} AS JSON) ELSE to_json({raw}) END"
    return f"try_cast({raw} AS {duckdb_type})"


def _load_watchlists(con: DuckDBPyConnection, exports: Sequence[_Export], work: Path) -> list[FileReport]:
    """Every watchlist into one `Watchlists` table: the fixed columns first, then each file's own."""
    loaded: list[tuple[_Export, _Readable, list[tuple[str, str]]]] = []
    extras: dict[str, str] = {}
    fixed = {c.lower(): c for c in WATCHLIST_COLUMNS}
    for index, export in enumerate(exports):
        readable = _readable(export, work / f"watchlist-{index}")
        sources = _source_columns(con, export, readable)
        loaded.append((export, readable, sources))
        for _, name in sources:
            if name.lower() not in fixed:
                extras.setdefault(name.lower(), name)
    names = [*WATCHLIST_COLUMNS, *extras.values()]
    con.execute(f"CREATE TABLE {WATCHLIST_TABLE} ({', '.join(f'{_ident(n)} VARCHAR' for n in names)})")
    reports = []
    for export, readable, sources in loaded:
        if not sources:
            reports.append(FileReport(export.display, WATCHLIST_TABLE, 0, readable.encoding, problems=("empty file",)))
            continue
        by_name = {name.lower(): identifier for identifier, name in reversed(sources)}
        missing = tuple(c for c in ("UserPrincipalName", "Country", "StartTime", "EndTime") if c.lower() not in by_name)

        def source(name: str, by_name: dict[str, str] = by_name) -> str:
            identifier = by_name.get(name.lower())
            return f"NULLIF(trim({_ident(identifier)}), '')" if identifier else "NULL"

        select = [
            _sql_string(export.alias),
            f"COALESCE({source('SearchKey')}, {source('UserPrincipalName')})",
            source("UserPrincipalName"),
            source("Country"),
            _watchlist_time(source("StartTime")),
            _watchlist_time(source("EndTime")),
            *(source(name) for name in extras.values()),
        ]
        reader, params = _reader(export, readable, [identifier for identifier, _ in sources])
        quoted = ", ".join(_ident(n) for n in names)
        sql = f"INSERT INTO {WATCHLIST_TABLE} ({quoted}) SELECT {', '.join(select)} FROM {reader}"  # noqa: S608 - quoted identifiers
        rows = _count(_run(con, export, sql, params, readable))
        reports.append(FileReport(export.display, WATCHLIST_TABLE, rows, readable.encoding, missing_columns=missing))
    return reports


def _watchlist_time(expression: str) -> str:
    """Travel dates as ISO 8601 UTC text when they parse (portal or ISO format), else as written."""
    typed = _cast_sql(expression, "datetime", "TIMESTAMP")
    return f"COALESCE(strftime({typed}, '%Y-%m-%dT%H:%M:%SZ'), {expression})"


# --------------------------------------------------------------------------------------------
# Reading one file
# --------------------------------------------------------------------------------------------


def _reader(export: _Export, readable: _Readable, identifiers: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The DuckDB table function that streams the file, the listed columns (all, for CSV) as text."""
    if export.format == "csv":
        # CSV columns are positional: DuckDB must be told every one, whichever the caller reads.
        identifiers = [f"c{i}" for i in range(len(readable.header))]
    params: dict[str, Any] = {
        "path": str(readable.path),
        "columns": dict.fromkeys(identifiers, "VARCHAR"),
        "compression": "gzip" if readable.compressed else "none",
    }
    if export.format == "csv":
        sql = (
            "read_csv($path, header = true, columns = $columns, delim = ',', quote = '\"', escape = '\"',"
            " auto_detect = false, compression = $compression)"
        )
        return sql, params
    params["format"] = "newline_delimited" if export.format == "jsonl" else "auto"
    params["max_object"] = _MAX_OBJECT
    sql = "read_json($path, format = $format, records = true, columns = $columns, compression = $compression, maximum_object_size = $max_object)"
    return sql, params


def _source_columns(con: DuckDBPyConnection, export: _Export, readable: _Readable) -> list[tuple[str, str]]:
    """
    (reader identifier, cleaned name) for each column the file has.

    CSV columns are positional (`c0`, `c1`, ...), so no header text reaches the SQL. A JSON file's
    keys are learnt from its first rows: DuckDB's reader only reads the columns it is told about.
    """
    if export.format == "csv":
        return [(f"c{i}", _clean_header(name, export.display)) for i, name in enumerate(readable.header)]
    sql = (
        "WITH sample AS MATERIALIZED (SELECT json FROM read_json_objects($path, format = $format,"
        " compression = $compression, maximum_object_size = $max_object) LIMIT $sample)"
        " SELECT (SELECT list(DISTINCT json_type(json)) FROM sample),"
        " (SELECT list(DISTINCT k ORDER BY k) FROM (SELECT unnest(json_keys(json)) AS k FROM sample))"
    )
    params = {
        "path": str(readable.path),
        "format": "newline_delimited" if export.format == "jsonl" else "auto",
        "compression": "gzip" if readable.compressed else "none",
        "max_object": _MAX_OBJECT,
        "sample": _JSON_KEY_SAMPLE,
    }
    row = _run(con, export, sql, params, readable).fetchone()
    kinds, keys = (row[0] or [], row[1] or []) if row else ([], [])
    others = sorted(str(k) for k in kinds if k != "OBJECT")
    if others:
        msg = f"{export.display}: expected one JSON object per row, found {', '.join(others)}"
        raise InputError(msg)
    seen: set[str] = set()
    out = []
    for key in keys:
        # DuckDB matches column names case-insensitively: two keys differing in case are one column.
        if key.lower() not in seen:
            seen.add(key.lower())
            out.append((key, _clean_header(key, export.display)))
    return out


def _run(
    con: DuckDBPyConnection, export: _Export, sql: str, params: dict[str, Any], readable: _Readable | None = None
) -> DuckDBPyConnection:
    import duckdb

    try:
        return con.execute(sql, params)
    except duckdb.Error as error:
        located = _locate_json_error(export, readable) if readable and "Malformed JSON" in str(error) else None
        msg = f"{export.display}: {located or _duckdb_problem(error)}"
        raise InputError(msg) from error


def _locate_json_error(export: _Export, readable: _Readable) -> str | None:
    """
    Where a JSON file breaks, found again by Python on the error path only.

    DuckDB's message counts lines one too far, and an analyst fixing a file by hand needs the
    right one. JSON lines are scanned a line at a time (flat memory); a JSON array is parsed whole,
    so only when it is small enough; otherwise DuckDB's own message stands.
    """
    opener = gzip.open if readable.compressed else open
    number = 0
    try:
        with opener(readable.path, "rt", encoding="utf-8-sig") as text:
            if export.format == "json" and text.read(1).lstrip() == "[":
                if readable.path.stat().st_size > _LOCATE_ARRAY_LIMIT:
                    return None
                text.seek(0)
                json.load(text)
                return None
            text.seek(0)
            for number, line in enumerate(text, start=1):  # noqa: B007 - read in the handler
                if line.strip():
                    json.loads(line)
    except json.JSONDecodeError as error:
        line_number = number or error.lineno
        return f"malformed JSON at line {line_number}, column {error.colno}: {error.msg}"
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        return None
    return None


def _count(cursor: DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _duckdb_problem(error: Exception) -> str:
    """
    DuckDB's explanation cut to what and where (it names the line), without its tuning advice.

    The advice ("enable ignore_errors") would lose rows, which is the one thing the loader must not
    do silently; the reader options it lists are ours, not the analyst's.
    """
    kept: list[str] = []
    for line in str(error).splitlines():
        text = line.strip()
        if text.startswith(("Possible fixes", "file =", "See also")):
            break
        if text:
            kept.append(text[:160])
    summary = "; ".join(kept) or type(error).__name__
    return _ERROR_KIND.sub("", summary)[:600]


@contextmanager
def _open_bytes(export: _Export) -> Iterator[io.BufferedIOBase]:
    try:
        with open(export.path, "rb") as raw:
            if export.compressed:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    yield unzipped
            else:
                yield raw
    except OSError as error:
        # Includes gzip.BadGzipFile; EOFError (truncated gzip) is handled by the caller.
        msg = f"{export.display}: cannot read it: {error}"
        raise InputError(msg) from error


def _detect_encoding(head: bytes, display: str) -> str:
    """utf-8, utf-8-sig, utf-16-le or utf-16-be from the BOM or the NUL pattern; anything else is refused."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        msg = f"{display}: UTF-32 is not supported; export as UTF-8 or UTF-16"
        raise InputError(msg)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    sample = head[:2048]
    if len(sample) >= 4 and sample.count(0) >= len(sample) // 4:
        # UTF-16 without a BOM: ASCII text leaves every other byte NUL.
        if sample[1::2].count(0) > sample[0::2].count(0):
            return "utf-16-le"
        return "utf-16-be"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError as error:
        msg = f"{display}: unknown encoding (not UTF-8 or UTF-16: byte 0x{head[error.start]:02x} at offset {error.start})"
        raise InputError(msg) from error
    return "utf-8"


def _readable(export: _Export, scratch: Path) -> _Readable:
    """
    The file as DuckDB can read it, and its CSV header.

    DuckDB reads UTF-8 (gzip or not); UTF-16 and JSON with a BOM are transcoded to a UTF-8 copy in
    the build folder, streaming, so memory stays flat whatever the size.
    """
    try:
        with _open_bytes(export) as stream:
            head = stream.read(_SNIFF_BYTES)
    except EOFError as error:
        msg = f"{export.display}: truncated gzip file"
        raise InputError(msg) from error
    encoding = _detect_encoding(head, export.display)
    path, compressed = export.path, export.compressed
    if encoding.startswith("utf-16") or (encoding == "utf-8-sig" and export.format != "csv"):
        path, compressed = _transcode(export, encoding, scratch), False
    header = _csv_header(path, compressed=compressed, display=export.display) if export.format == "csv" else ()
    return _Readable(path, compressed, encoding, header)


def _transcode(export: _Export, encoding: str, scratch: Path) -> Path:
    target = scratch.with_suffix(".utf8")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    try:
        with _open_bytes(export) as stream, open(target, "w", encoding="utf-8", newline="") as out:
            first = True
            while chunk := stream.read(_COPY_CHUNK):
                text = decoder.decode(chunk, final=False)
                if first and text:
                    text, first = text.removeprefix("\ufeff"), False
                out.write(text)
                offset += len(chunk)
            out.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as error:
        msg = f"{export.display}: not valid {encoding} near byte {offset + error.start}"
        raise InputError(msg) from error
    except (EOFError, zlib.error) as error:
        msg = f"{export.display}: truncated or corrupt gzip file"
        raise InputError(msg) from error
    return target


def _csv_header(path: Path, *, compressed: bool, display: str) -> tuple[str, ...]:
    """The header row, read with Python's csv (it may be quoted); DuckDB is told the columns by position."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as text:
            header = tuple(next(csv.reader(text), []))
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as error:
        msg = f"{display}: cannot read the CSV header: {error}"
        raise InputError(msg) from error
    if header and not any(name.strip() for name in header):
        msg = f"{display}: the first line is not a CSV header"
        raise InputError(msg)
    return header


# --------------------------------------------------------------------------------------------
# SQL helpers
# --------------------------------------------------------------------------------------------


def _table_ddl(table: str, *, stored: bool = False) -> str:
    """The columns of `table`; `stored` adds the user key a sign-in table of the cache is sorted by."""
    if table == WATCHLIST_TABLE:
        return ", ".join(f"{_ident(c)} VARCHAR" for c in WATCHLIST_COLUMNS)
    columns = [f"{_ident(c.name)} {c.duckdb_type}" for c in schema_columns(table)]
    if stored and table in SIGNIN_TABLES:
        columns.append(f"{_ident(USER_KEY)} VARCHAR NOT NULL")
    return ", ".join(columns)


def _ident(name: str) -> str:
    """A DuckDB quoted identifier: names come from exported headers, so they are quoted, never pasted."""
    return '"' + name.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
