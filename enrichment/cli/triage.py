"""
`python -m enrichment triage`: the analyst's command line over exports or a workspace.

A contract that outside checks call: flags, JSON fields and exit codes stay as documented. Exit 0 on
success (a user with no sign-ins is a result), 2 with one line on stderr for bad input, 1 when a
service failed. stdout carries only the document; what loading exports took (tables, rows, seconds,
parsed or cached) is one line on stderr. Only the engine that is asked for is imported, and never
the Graph SDK.

One user at one time prints one document. Several (`--user` and `--at` repeated: every user at every
time; or `--pairs FILE` of `user,time` lines) print a JSON array in the order asked, from one engine
and three questions per distinct time.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from common.command import ArgumentParser, run_command
from common.errors import InputError
from common.settings import Settings
from common.times import parse_utc
from enrichment.domain.model import Account, Assessment, UserEvidence
from enrichment.ports import QueryEngine

if TYPE_CHECKING:
    from enrichment.adapters.embedded import EmbeddedEngine
    from enrichment.adapters.exports import LoadReport


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC, the unit every sign-in log uses."""
    try:
        return parse_utc(text)
    except ValueError as error:
        msg = f"--at: not an ISO 8601 time: {text!r}"
        raise InputError(msg) from error


def account_from(text: str) -> Account:
    """A `--user` value: a UPN, or an Entra object id (GUID)."""
    value = text.strip()
    if "@" in value:
        return Account(upn=value)
    return Account(object_id=value)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m enrichment", description="Token-replay triage of Entra ID sign-ins.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    triage = commands.add_parser("triage", help="evidence, score and verdict for users around a time")
    source = triage.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of exports (SigninLogs.*, ...) or a DuckDB file made from one")
    source.add_argument("--workspace", help="Log Analytics workspace id to query instead of exports")
    triage.add_argument("--user", action="append", help="UPN or object id; repeat for several users")
    triage.add_argument(
        "--at", action="append", help="incident time, ISO 8601 (UTC when no offset); repeat to triage every user at each time"
    )
    triage.add_argument(
        "--pairs",
        type=Path,
        metavar="FILE",
        help="instead of --user/--at: a file of `user,time` lines (CSV, `-` for stdin), triaged in its order",
    )
    triage.add_argument("--settings", type=Path, help="a Functions local.settings.json whose Values are app settings")
    triage.add_argument("--format", choices=("json", "text", "html"), default="json")
    triage.add_argument("--cache", type=Path, help="where the DuckDB cache of --data goes (default PATH/.triage-cache.duckdb)")
    triage.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="FILE=TABLE",
        help="load FILE (in the --data folder) into TABLE when its name does not say it; repeatable",
    )
    return parser


def table_options(values: Sequence[str], folder: Path) -> dict[str, str]:
    """
    `--table FILE=TABLE` values as the loader's mapping {file name in `folder`: table}.

    FILE may be a bare name or a path, as long as it is in `folder`: the loader reads one folder,
    so a file elsewhere is bad input rather than silently not loaded. The table name itself is
    checked by the loader, which knows the tables.
    """
    mapping: dict[str, str] = {}
    for value in values:
        name, equals, table = value.rpartition("=")
        if not equals or not name.strip() or not table.strip():
            msg = f"--table: expected FILE=TABLE, got {value!r}"
            raise InputError(msg)
        file = Path(name.strip())
        if file.parent != Path() and file.resolve().parent != folder.resolve():
            msg = f"--table: {name} is not in the --data folder {folder}"
            raise InputError(msg)
        mapping[file.name] = table.strip()
    return mapping


def load_line(report: LoadReport | None, source: Path, seconds: float) -> str:
    """
    The one stderr line saying what the exports gave: rows per table, time, parsed or cached.

    An analyst who gets "no sign-ins" needs to see at once whether the table was empty, and which
    files were left out and why (a misnamed export, a broken link); a slow first run needs to say it
    was parsing, so the second (cached) run is not a surprise.
    """
    if report is None:
        return f"load: opened the DuckDB file {source} in {seconds:.1f} s"
    tables = ", ".join(f"{table} {rows:,}" for table, rows in report.table_rows)
    how = "from the cache" if report.from_cache else "parsed the exports and cached them"
    ignored = f"; {len(report.ignored)} file(s) ignored: {' | '.join(report.ignored)}" if report.ignored else ""
    return f"load: {tables} rows; {how} in {seconds:.1f} s{ignored}"


def read_pairs(lines: Iterable[str], source: str) -> list[tuple[Account, datetime]]:
    """
    `user,time` lines (a `user,at` header, blank lines and `#` comments allowed) as (account, time) pairs.

    A line that is not a user and a time is bad input naming its line number, so nothing is triaged
    from a file that says something else.
    """
    pairs: list[tuple[Account, datetime]] = []
    for number, row in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and [c.lower() for c in cells] in (["user", "at"], ["user", "time"]):
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            msg = f"--pairs: {source} line {number}: expected `user,time`, got {','.join(row)!r}"
            raise InputError(msg)
        try:
            pairs.append((account_from(cells[0]), parse_time(cells[1])))
        except InputError as error:
            msg = f"--pairs: {source} line {number}: {error}"
            raise InputError(msg) from error
    if not pairs:
        msg = f"--pairs: {source} holds no `user,time` line"
        raise InputError(msg)
    return pairs


def requested(args: argparse.Namespace, stdin: TextIO) -> list[tuple[Account, datetime]]:
    """The (account, time) pairs asked for: `--pairs`, or every `--user` at every `--at` (times first)."""
    if args.pairs is not None:
        if args.user or args.at:
            msg = "--pairs replaces --user and --at; give one or the other"
            raise InputError(msg)
        if str(args.pairs) == "-":
            return read_pairs(stdin, "stdin")
        try:
            with args.pairs.open(encoding="utf-8-sig", newline="") as lines:
                return read_pairs(lines, str(args.pairs))
        except OSError as error:
            msg = f"--pairs: cannot read {args.pairs} ({error.strerror})"
            raise InputError(msg) from error
    if not args.user or not args.at:
        msg = "give --user and --at (each may be repeated), or --pairs FILE"
        raise InputError(msg)
    times = [parse_time(text) for text in args.at]
    return [(account_from(user), at) for at in times for user in args.user]


def _settings(path: Path | None) -> Settings:
    return Settings.from_file(path) if path is not None else Settings()


def open_exports(args: argparse.Namespace, err: TextIO) -> EmbeddedEngine:
    """The embedded engine over `--data` (with `--cache` and `--table`), and its load line on `err`."""
    from enrichment.adapters.embedded import EmbeddedEngine

    if not args.data.exists():
        msg = f"--data: no such file or folder: {args.data}"
        raise InputError(msg)
    tables = table_options(args.table, args.data)
    if (args.cache is not None or tables) and not args.data.is_dir():
        msg = "--cache and --table apply to a folder of exports, not to a DuckDB file"
        raise InputError(msg)
    started = time.perf_counter()
    engine = EmbeddedEngine.open(args.data, cache=args.cache, tables=tables)
    err.write(load_line(engine.report, args.data, time.perf_counter() - started) + "\n")
    return engine


def run_triage(args: argparse.Namespace, out: TextIO, err: TextIO | None = None, stdin: TextIO | None = None) -> None:
    from enrichment.render.triage import triage_document
    from enrichment.services.investigate import investigate_at_times

    pairs = requested(args, stdin or sys.stdin)
    settings = _settings(args.settings)
    engine: QueryEngine
    if args.workspace:
        if args.cache is not None or args.table:
            msg = "--cache and --table go with --data, not --workspace"
            raise InputError(msg)
        from common.logs import configure_logging
        from enrichment.adapters.loganalytics import LogAnalyticsEngine

        # The workspace engine is the one that logs (retries, failures); the embedded engine does not,
        # so a laptop run does not pay for loading the logging stack.
        configure_logging(stream=err or sys.stderr)
        engine = LogAnalyticsEngine.create(dataclasses.replace(settings, workspace_id=args.workspace))
    else:
        engine = open_exports(args, err or sys.stderr)
    assessed = investigate_at_times(engine, pairs, settings)
    if args.format == "text":
        from enrichment.render.story import brief
        from enrichment.render.text import text_report

        out.write("\n\n".join(text_report(e, a, brief(e, a)) for e, a in assessed) + "\n")
    elif args.format == "html":
        out.write(html_report(assessed, min(at for _, at in pairs), settings))
    else:
        documents = [triage_document(e, a) for e, a in assessed]
        payload: object = documents[0] if len(documents) == 1 else documents
        json.dump(payload, out, indent=2, ensure_ascii=False)
        out.write("\n")


def html_report(assessed: Sequence[tuple[UserEvidence, Assessment]], at: datetime, settings: Settings) -> str:
    """The offline report of `--format html`: per user the brief, the timeline picture, the evidence and a pivot."""
    from enrichment.queries.kql import InvalidQueryInput
    from enrichment.queries.pivots import pivot
    from enrichment.render.report import ReportSection, report_html
    from enrichment.render.story import brief

    sections, notes = [], []
    for evidence, assessment in assessed:
        summary = brief(evidence, assessment)
        try:
            found = pivot(
                evidence.account,
                evidence.window,
                session_ids=[s.session_id for s in summary.sessions],
                ips=assessment.suspect_ips,
                tenant_id=settings.tenant_id,
            )
        except InvalidQueryInput as error:
            found = None
            notes.append(f"{evidence.account.key}: no pivot query could be built: {error}")
        sections.append(ReportSection(evidence, assessment, summary, found))
    users = ", ".join(e.account.key for e, _ in assessed)
    return report_html(f"Token replay triage: {users} at {at:%Y-%m-%d %H:%M} UTC", sections, generated_at=at, notes=notes)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    return run_command(lambda: run_triage(_parser().parse_args(argv), out, err), err)
