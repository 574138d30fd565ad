"""
What a hostile or huge incident costs at intake: `POST /api/incidents` parsing, measured, not asserted in a test.

    .venv/bin/python bench/intake.py [--entities 40000]

Each row runs the real intake code (`playbooks.domain.incident`: `incident_body`, then
`parse_incident` with the default REPLAY_MAX_ACCOUNTS) on a body built here:

* merge: `--entities` Account entities, each a distinct person (object id + UPN), resolved and merged
  (issue 11 measured 39.5 s for 40,000 on the quadratic merge);
* largest body: Account entities up to just under `MAX_BODY_BYTES`, read and parsed end to end;
* 20 MB body: refused by size before it is parsed (answered 413 by the HTTP function), and, to show
  the parse itself is linear past the limit, the same body parsed without the size check;
* 2 MB title: the size of the orchestration input (`SentinelIncident.to_json()`) that Durable stores, and
  that every activity payload of the run carries again.

Targets: the merge under 5 s, the largest body under 10 s, the 2 MB title's orchestration input under
4 KB. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playbooks.domain.incident import MAX_BODY_BYTES, BodyTooLarge, incident_body, parse_incident, resolve_accounts

SUB = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
NAME = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
INCIDENT_ID = (
    f"/subscriptions/{SUB}/resourceGroups/soc-rg/providers/Microsoft.OperationalInsights/workspaces/soc-ws"
    f"/providers/Microsoft.SecurityInsights/incidents/{NAME}"
)
TARGET_MERGE_SECONDS = 5.0
TARGET_LARGEST_BODY_SECONDS = 10.0
TARGET_INPUT_BYTES = 4096


def _account(index: int) -> dict[str, Any]:
    return {
        "kind": "Account",
        "properties": {
            "aadUserId": str(uuid.UUID(int=index + 1, version=4)),
            "accountName": f"user{index}",
            "upnSuffix": "contoso.com",
        },
    }


def _body(entities: list[dict[str, Any]], title: str = "Token replay") -> dict[str, Any]:
    properties = {"title": title, "firstActivityTimeUtc": "2026-03-01T09:00:00Z", "relatedEntities": entities}
    return {"objectSchemaType": "Incident", "object": {"id": INCIDENT_ID, "properties": properties}}


def _body_of_size(limit: int) -> bytes:
    """A trigger body of Account entities, as large as possible without exceeding `limit` bytes."""
    per_entity = len(json.dumps(_account(10**6))) + 2
    count = (limit - len(json.dumps(_body([])))) // per_entity
    raw = json.dumps(_body([_account(i) for i in range(count)])).encode()
    while len(raw) > limit:
        count -= 100
        raw = json.dumps(_body([_account(i) for i in range(count)])).encode()
    return raw


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=40_000, help="Account entities in the merge row")
    args = parser.parse_args(argv)
    missed: list[str] = []
    rows: list[tuple[str, str, str]] = []

    entities = [_account(i) for i in range(args.entities)]
    seconds, resolution = _timed(lambda: resolve_accounts(entities))
    rows.append(
        (
            f"merge {args.entities:,} Account entities",
            f"{seconds:.2f} s",
            f"{len(resolution.accounts)} assessed, {resolution.not_assessed_total:,} not assessed",
        )
    )
    if seconds > TARGET_MERGE_SECONDS:
        missed.append(f"merge took {seconds:.1f} s (target {TARGET_MERGE_SECONDS} s)")

    largest = _body_of_size(MAX_BODY_BYTES)
    seconds, incident = _timed(lambda: parse_incident(incident_body(largest)))
    rows.append((f"largest body accepted ({len(largest):,} bytes)", f"{seconds:.2f} s", f"{len(incident.accounts)} assessed"))
    if seconds > TARGET_LARGEST_BODY_SECONDS:
        missed.append(f"the largest body took {seconds:.1f} s (target {TARGET_LARGEST_BODY_SECONDS} s)")

    huge = _body_of_size(20_000_000)

    def refuse() -> str:
        try:
            incident_body(huge)
        except BodyTooLarge as error:
            return f"refused: {error}"
        return "accepted"

    seconds, outcome = _timed(refuse)
    rows.append((f"20 MB body ({len(huge):,} bytes)", f"{seconds:.3f} s", outcome))
    seconds, incident = _timed(lambda: parse_incident(json.loads(huge)))
    rows.append(("20 MB body parsed past the limit", f"{seconds:.2f} s", f"{incident.not_assessed_total:,} not assessed"))

    titled = parse_incident(incident_body(json.dumps(_body([_account(0)], title="T" * 2_000_000)).encode()))
    stored = len(json.dumps(titled.to_json()))
    rows.append(("2 MB title: orchestration input", f"{stored:,} bytes", f"title kept: {len(titled.title)} characters"))
    if stored > TARGET_INPUT_BYTES:
        missed.append(f"the orchestration input is {stored:,} bytes (target {TARGET_INPUT_BYTES:,})")

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'cost':>14}  outcome")
    for case, cost, outcome in rows:
        print(f"{case:<{width}}  {cost:>14}  {outcome}")
    for line in missed:
        print(f"MISSED: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
