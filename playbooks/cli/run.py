"""
`python -m playbooks run`: the Function's enrichment, run inline on a laptop over exported logs.

The same steps as the orchestration's activities (`playbooks.services.enrich`), on the embedded engine, with
the write replaced by files: `DIR/comment.html` (what would be posted on the incident), `DIR/report.html`
(the same for a browser or a printer, with a timeline picture per account),
`DIR/result.json` (per account the triage document and the containment plan) and, when a plan needs
approval, `DIR/card.json` (the Teams approval card the bot would post; `card-2.json`, ... for further
accounts). Only `--dry-run` is supported: the local run never writes to Sentinel or Teams, the
Function App does.

Exit 0 on success, 2 with one line on stderr for bad input (flags, files, incident, settings), 1
when an engine failed. Neither the Graph SDK nor azure.functions is imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from common.command import ArgumentParser, run_command
from common.errors import InputError
from common.settings import Settings

NO_ENTITIES_WARNING = (
    "the incident file carries no entities (relatedEntities): the Function App reads them from Sentinel, "
    "this run cannot, so no account was assessed"
)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m playbooks", description="Run the incident enrichment locally over exported sign-in logs."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    run = commands.add_parser("run", help="enrich one incident as the Function would, writing files instead of Sentinel")
    run.add_argument(
        "--incident", type=Path, required=True, help="JSON file: a Logic App incident trigger body or an incident resource"
    )
    run.add_argument("--data", type=Path, required=True, help="folder of exported logs, or a DuckDB file made from one")
    run.add_argument(
        "--cache", type=Path, help="where the DuckDB cache of a --data folder goes (default PATH/.triage-cache.duckdb)"
    )
    run.add_argument("--settings", type=Path, help="a Functions local.settings.json whose Values are the app settings")
    run.add_argument("--out", type=Path, required=True, help="folder for comment.html and result.json (created if needed)")
    run.add_argument("--dry-run", action="store_true", help="required: write files, never the incident")
    return parser


def _read_incident(path: Path) -> object:
    """The file's JSON, bounded as the Function bounds a request body (one byte over the limit is enough to refuse)."""
    from playbooks.domain.incident import MAX_BODY_BYTES, incident_body

    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BODY_BYTES + 1)
    except OSError as error:
        msg = f"--incident: cannot read {path} ({error.strerror})"
        raise InputError(msg) from error
    try:
        return incident_body(raw)
    except InputError as error:
        msg = f"--incident: {path}: {error}"
        raise InputError(msg) from error


def run(args: argparse.Namespace, out: TextIO) -> None:
    """Parse, enrich, render, write; raises our errors for `main` to turn into exit codes."""
    from enrichment.adapters.embedded import EmbeddedEngine
    from playbooks.domain import approval
    from playbooks.domain.codec import iso
    from playbooks.domain.incident import instance_id, parse_incident
    from playbooks.services import enrich

    if not args.dry_run:
        msg = "--dry-run is required: the local run never writes to Sentinel (the Function App does)"
        raise InputError(msg)
    if not args.data.exists():
        msg = f"--data: no such file or folder: {args.data}"
        raise InputError(msg)
    if args.cache is not None and not args.data.is_dir():
        msg = "--cache applies to a folder of exports, not to a DuckDB file"
        raise InputError(msg)
    settings = Settings.from_file(args.settings) if args.settings is not None else Settings()
    incident = parse_incident(_read_incident(args.incident), max_accounts=settings.max_accounts)
    if incident.accounts is None:
        result = enrich.Enrichment(incident, (), (NO_ENTITIES_WARNING,))
    elif not incident.accounts:
        result = enrich.Enrichment(incident, ())
    else:
        with EmbeddedEngine.open(args.data, cache=args.cache) as engine:
            result = enrich.enrich(incident, engine, settings)
    now = datetime.now(UTC)
    requests = approval.approval_requests(
        incident, result.accounts, parent_instance_id=instance_id(incident), requested_at=now, settings=settings
    )
    html = enrich.comment_html(result, settings, generated_at=now, approvals=requests)
    report = enrich.report_html(result, settings, generated_at=now, approvals=requests)
    document = enrich.result_document(result)
    cards: dict[str, object] = {}
    for number, (index, request) in enumerate(sorted(requests.items()), start=1):
        name = "card.json" if number == 1 else f"card-{number}.json"
        if request.card is not None:
            cards[name] = request.card
        document["accounts"][index]["approval"] = {
            "card": name if request.card is not None else None,
            "instance_id": request.instance_id,
            "expires_at": iso(request.expires_at),
            **({"problem": request.problem} if request.problem else {}),
        }
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "comment.html").write_text(html, encoding="utf-8")
        (args.out / "report.html").write_text(report, encoding="utf-8")
        (args.out / "result.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for stale in args.out.glob("card*.json"):
            if stale.name not in cards:
                stale.unlink()
        for name, card in cards.items():
            (args.out / name).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        msg = f"--out: cannot write to {args.out} ({error.strerror})"
        raise InputError(msg) from error
    verdicts = ", ".join(f"{a.evidence.account.key} {a.assessment.verdict.value} {a.assessment.score}" for a in result.accounts)
    written = ", ".join(str(args.out / name) for name in ("comment.html", "report.html", "result.json", *cards))
    out.write(f"incident {incident.label}: {verdicts or 'no account assessed'}; wrote {written}\n")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from common.logs import configure_logging

    # Warnings only: a normal run prints one summary line, and bad input exactly one error line.
    configure_logging(stream=err, level=logging.WARNING)
    return run_command(lambda: run(_parser().parse_args(argv), out), err)
