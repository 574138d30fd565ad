"""
`python -m enrichment triage`: the analyst's command line over exports or a workspace.

A contract that outside checks call: flags, JSON fields and exit codes stay as documented. Exit 0 on
success (a user with no sign-ins is a result), 2 with one line on stderr for bad input, 1 when a
service failed. Only the engine that is asked for is imported, and never the Graph SDK.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from enrichment.engine import QueryEngine
from enrichment.errors import InputError, SettingsError, UpstreamError
from enrichment.model import Account
from enrichment.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as bad input (exit 2, one line) instead of its own format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(message)


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC, the unit every sign-in log uses."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        msg = f"--at: not an ISO 8601 time: {text!r}"
        raise InputError(msg) from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def account_from(text: str) -> Account:
    """A `--user` value: a UPN, or an Entra object id (GUID)."""
    value = text.strip()
    if "@" in value:
        return Account(upn=value)
    return Account(object_id=value)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m enrichment", description="Token-replay triage of Entra ID sign-ins.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    triage = commands.add_parser("triage", help="evidence, score and verdict for users around a time")
    source = triage.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of exports (SigninLogs.*, ...) or a DuckDB file made from one")
    source.add_argument("--workspace", help="Log Analytics workspace id to query instead of exports")
    triage.add_argument("--user", action="append", required=True, help="UPN or object id; repeat for several users")
    triage.add_argument("--at", required=True, help="incident time, ISO 8601 (UTC when no offset)")
    triage.add_argument("--settings", type=Path, help="a Functions local.settings.json whose Values are app settings")
    triage.add_argument("--format", choices=("json", "text"), default="json")
    return parser


def _settings(path: Path | None) -> Settings:
    return Settings.from_file(path) if path is not None else Settings()


def run_triage(args: argparse.Namespace, out: TextIO) -> None:
    from enrichment.gather import gather_evidence
    from enrichment.scoring import assess
    from enrichment.triage import render_text, triage_document

    at = parse_time(args.at)
    settings = _settings(args.settings)
    accounts = [account_from(u) for u in args.user]
    engine: QueryEngine
    if args.workspace:
        from enrichment.loganalytics import LogAnalyticsEngine

        engine = LogAnalyticsEngine.create(dataclasses.replace(settings, workspace_id=args.workspace))
    else:
        from enrichment.embedded import EmbeddedEngine

        if not args.data.exists():
            msg = f"--data: no such file or folder: {args.data}"
            raise InputError(msg)
        engine = EmbeddedEngine.open(args.data)
    documents = [
        triage_document(evidence, assess(evidence, settings)) for evidence in gather_evidence(engine, accounts, at, settings)
    ]
    if args.format == "text":
        out.write("\n\n".join(render_text(d) for d in documents) + "\n")
    else:
        payload: object = documents[0] if len(documents) == 1 else documents
        json.dump(payload, out, indent=2, ensure_ascii=False)
        out.write("\n")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from enrichment.logs import configure_logging

    configure_logging(stream=err)
    try:
        args = _parser().parse_args(argv)
        run_triage(args, out)
    except (InputError, SettingsError) as error:
        err.write(f"error: {error}\n")
        return EXIT_BAD_INPUT
    except UpstreamError as error:
        err.write(f"error: {error}" + (f" ({error.hint})" if error.hint else "") + "\n")
        return EXIT_FAILED
    return EXIT_OK
