"""
Incident storm: 200 incidents arriving within 10 minutes, through the Function App's real intake, orchestration and activities.

Each delivery is a Logic App trigger body POSTed to the real `POST /api/incidents` handler; 20 of the
incidents are delivered twice (automation rules fire on create and on update, Logic Apps retry). The
handler starts each orchestration through a Durable client that plays it with the orchestrator tests'
replay helper (`tests.app.durable_history.Instance`) on as many worker threads as host.json's
`maxConcurrentActivityFunctions`: one Function App instance, which is all `infra/main.bicep` lets Flex
Consumption start (see README, "Concurrency and limits"). The activities are the real ones: the queries go
through the real `LogAnalyticsEngine` (azure-monitor-query over HTTPS to 127.0.0.1) to the Log Analytics fake
of the tests with Log Analytics' per-identity limits on (5 concurrent queries, 200 per 30 s, 429 with
Retry-After past them), the comments and labels through the real Sentinel adapter to the Sentinel fake.
Machinery: `tests/service/incident_storm.py`.

Time is simulated: one clock runs `--scale` times faster than the wall clock, and the arrival schedule,
the fake's 30 s window and Retry-After, every retry wait (azure-core, tenacity, Durable's retry interval)
and the reported times are on it. A query's wall time on this machine counts `--scale` times.

    .venv/bin/python bench/storm.py [--incidents 200] [--duplicates 20] [--span 600] [--scale 4] [--seed 11] [--per-window 200]

On a 2-core machine the fake workspace answers one query at a time (its DuckDB connection is shared)
in about 0.2 s wall, 0.8 s simulated at x4, so the pipeline cannot reach 200 queries per 30 s simulated:
`--per-window 25` lowers the fake's window limit below the storm's peak, to show the 429s retried under load.

Exits 1 when a target is missed: every incident enriched exactly once (one enrichment comment at the
Sentinel fake) and none lost; no query refused for the concurrency limit (the app held it) and no more than
`--per-window` answered in any 30 s window; 429s at most 10% of the requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.service import replay_data as data  # noqa: E402
from tests.service.incident_storm import StormResult, run_storm  # noqa: E402

#: 429s allowed, as a share of the requests sent: bounded, not zero (a burst may cross 200 per 30 s).
MAX_THROTTLED_SHARE = 0.10


def table(result: StormResult, scale: float) -> str:
    """The figures as a Markdown table (the README keeps a copy)."""
    throttled = result.throttled_busy + result.throttled_rate
    rows = [
        ("incidents", f"{result.incidents} ({result.deliveries} deliveries)"),
        ("LA requests", str(result.la_requests)),
        (
            "429s",
            f"{throttled} ({result.throttled_rate} over {result.per_window}/30 s, {result.throttled_busy} over 5 concurrent)",
        ),
        (
            "retries",
            f"{result.retries} requests sent again (azure-core, Retry-After); {result.activity_retries} activity retries (Durable)",
        ),
        ("time to comment p50 / p95", f"{result.median:.1f} s / {result.percentile(0.95):.1f} s (simulated)"),
        (
            "comments written",
            f"{result.comments_written} ({sum(1 for n in result.enrichments.values() if n == 1)} incidents with exactly one enrichment)",
        ),
        ("duplicates suppressed", str(result.duplicates_suppressed)),
        ("per-identity peak", f"{result.limits.max_concurrent} concurrent, {result.limits.max_in_window} in one 30 s window"),
        ("lost / enriched twice", f"{len(result.lost)} / {len(result.duplicated)}"),
        ("clock", f"{result.simulated_seconds:.0f} s simulated in {result.wall_seconds:.0f} s wall (x{scale:g})"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)


def misses(result: StormResult) -> list[str]:
    found = []
    if result.lost:
        found.append(f"{len(result.lost)} incident(s) lost (no completed run with its enrichment comment)")
    if result.duplicated:
        found.append(f"{len(result.duplicated)} incident(s) enriched more than once")
    if result.throttled_busy or result.limits.max_concurrent > 5:
        found.append(f"the app exceeded 5 concurrent queries ({result.throttled_busy} refused)")
    if result.limits.max_in_window > result.per_window:
        found.append(f"{result.limits.max_in_window} queries answered in one 30 s window")
    throttled = result.throttled_busy + result.throttled_rate
    if throttled > MAX_THROTTLED_SHARE * result.la_requests:
        found.append(f"{throttled} 429s of {result.la_requests} requests (more than {MAX_THROTTLED_SHARE:.0%})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--duplicates", type=int, default=20, help="incidents delivered a second time")
    parser.add_argument("--span", type=float, default=600.0, help="simulated seconds within which every delivery arrives")
    parser.add_argument("--scale", type=float, default=4.0, help="simulated seconds per wall-clock second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--per-window",
        type=int,
        default=200,
        help="queries the fake allows an identity per 30 s (default: Log Analytics' 200); lower it to meet the limit on a slow machine",
    )
    options = parser.parse_args()
    workers = int(json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]["maxConcurrentActivityFunctions"])
    logging.disable(logging.ERROR)  # the product logs every activity and every refused query; the table is the bench's output
    with tempfile.TemporaryDirectory(prefix="storm-") as folder:
        database = data.build_database(Path(folder) / "signins.duckdb")
        result = run_storm(
            database,
            incidents=options.incidents,
            duplicates=options.duplicates,
            span=options.span,
            scale=options.scale,
            workers=workers,
            seed=options.seed,
            per_window=options.per_window,
        )
    print(
        f"storm: {options.incidents} incidents (+{options.duplicates} repeated deliveries) within {options.span:g} simulated s; "
        f"one app instance, {workers} activity workers; limits 5 concurrent, {options.per_window} per 30 s per identity; "
        f"clock x{options.scale:g} (simulated s per wall s)"
    )
    print(table(result, options.scale))
    found = misses(result)
    for miss in found:
        print(f"MISSED: {miss}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
