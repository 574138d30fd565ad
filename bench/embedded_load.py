"""
Load time, peak memory and per-user triage time of the embedded engine on a 2,000-user, 14-day tenant.

One command:

    .venv/bin/python bench/embedded_load.py [--users 2000] [--days 14] [--seed 5] [--data DIR] [--runs 20]

It generates the sample tenant (`python -m sample_tenant --compress`) into a temporary folder, or uses
`--data DIR`, then measures, each step in a child process of its own so that the peak resident
memory printed is that step's and nothing else's (the generator's included):

* load: the exports parsed into a fresh DuckDB cache (`enrichment.adapters.exports.load_exports`, the
  loader the CLI uses): wall and CPU seconds, peak RSS, rows per table, cache file size;
* open: a second open of the same folder, answered from the cache (`EmbeddedEngine.open`);
* triage: with that engine open, `--runs` different users, each through the path
  `python -m enrichment triage` takes (`gather_evidence`, `assess`, `triage_document`, JSON):
  p50 and p95 seconds, and the peak RSS of that process.

Targets (issue 2): peak memory under 1.5 GB and triage p50 under 1 s on a 2-core machine. Exit status
1 when one is missed. The cache goes to the temporary folder, never into `--data`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEMORY_TARGET_MB = 1536
TRIAGE_P50_TARGET_S = 1.0


def peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM from /proc when there is one, else getrusage (KiB on Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# Children: each prints one JSON line on stdout
# --------------------------------------------------------------------------------------------


def child_load(data: Path, cache: Path) -> dict[str, Any]:
    from enrichment.adapters.exports import load_exports

    started, cpu = time.perf_counter(), cpu_seconds()
    loaded = load_exports(data, cache=cache)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu,
        "peak_rss_mb": peak_rss_mb(),
        "rows": dict(loaded.report.table_rows),
        "from_cache": loaded.report.from_cache,
        "ignored": list(loaded.report.ignored),
        "cache_bytes": loaded.database.stat().st_size,
    }


def pick_users(engine: Any, runs: int) -> list[tuple[str, datetime]]:
    """
    `runs` users spread evenly over the alphabet, each at the time of their last non-interactive sign-in.

    At that time the evidence window is full and the baseline days before it hold the user's history,
    which is what an incident on an ordinary day looks like.
    """
    from enrichment.queries.kql import Query

    outcome = engine.run(
        Query(
            "bench_users",
            "AADNonInteractiveUserSignInLogs | where isnotempty(UserPrincipalName)"
            " | summarize at = max(TimeGenerated) by UserPrincipalName | order by UserPrincipalName asc",
        )
    )
    rows = list(outcome.rows)
    if len(rows) < runs:
        sys.exit(f"the exports hold {len(rows)} users with non-interactive sign-ins; --runs {runs} needs as many")
    step = len(rows) / runs
    chosen = [rows[int(i * step)] for i in range(runs)]
    return [(str(r["UserPrincipalName"]), _utc(r["at"])) for r in chosen]


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def child_triage(data: Path, cache: Path, runs: int) -> dict[str, Any]:
    from common.settings import Settings
    from enrichment.adapters.embedded import EmbeddedEngine
    from enrichment.domain.model import Account
    from enrichment.domain.scoring import assess
    from enrichment.render.triage import triage_document
    from enrichment.services.gather import gather_evidence

    settings = Settings.from_file(data / "settings.json") if (data / "settings.json").is_file() else Settings()
    started = time.perf_counter()
    engine = EmbeddedEngine.open(data, cache=cache)
    opened = time.perf_counter() - started
    from_cache = engine.report is not None and engine.report.from_cache
    timings: list[float] = []
    signins = 0
    with engine:
        for user, last in pick_users(engine, runs):
            at = last - timedelta(minutes=5)
            began = time.perf_counter()
            documents = [
                triage_document(evidence, assess(evidence, settings))
                for evidence in gather_evidence(engine, [Account(upn=user)], at, settings)
            ]
            json.dumps(documents[0], ensure_ascii=False)
            timings.append(time.perf_counter() - began)
            signins += int(documents[0]["signins"])
    return {
        "open_seconds": opened,
        "open_from_cache": from_cache,
        "timings": timings,
        "signins": signins,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(*argv: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *argv]
    done = subprocess.run(command, cwd=ROOT, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench child {argv[0]} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def generate(out: Path, users: int, days: int, seed: int) -> float:
    command = [sys.executable, "-m", "sample_tenant", "--out", str(out), "--users", str(users), "--days", str(days)]
    command += ["--seed", str(seed), "--compress"]
    started = time.perf_counter()
    if subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL).returncode != 0:
        sys.exit(f"the generator failed: {' '.join(command[1:])}")
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with 20 runs, p95 is the 19th fastest, an observed time, not an interpolation."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="users in the generated tenant (default 2000)")
    parser.add_argument("--days", type=int, default=14, help="days of logs (default 14)")
    parser.add_argument("--seed", type=int, default=5, help="generator seed (default 5)")
    parser.add_argument("--data", type=Path, help="use this folder of exports instead of generating one")
    parser.add_argument("--runs", type=int, default=20, help="users triaged after the load (default 20)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, data, cache, *rest = args.child
        result = child_load(Path(data), Path(cache)) if kind == "load" else child_triage(Path(data), Path(cache), int(rest[0]))
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="embedded-bench-") as scratch:
        data = args.data
        if data is None:
            data = Path(scratch) / "tenant"
            seconds = generate(data, args.users, args.days, args.seed)
            origin = f"generated {args.users:,} users x {args.days} days (seed {args.seed}) in {seconds:.0f} s"
        else:
            origin = f"exports in {data}"
        exports_mb = sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and not p.name.startswith(".")) / 1e6
        cache = Path(scratch) / "cache.duckdb"
        load = run_child("load", str(data), str(cache))
        triage = run_child("triage", str(data), str(cache), str(args.runs))

    timings = triage["timings"]
    p50, p95 = statistics.median(timings), percentile(timings, 0.95)
    peak = max(load["peak_rss_mb"], triage["peak_rss_mb"])
    memory_ok, triage_ok = peak < MEMORY_TARGET_MB, p50 < TRIAGE_P50_TARGET_S

    print(f"{origin}; {exports_mb:,.1f} MB of files; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print()
    rows: list[tuple[str, str, str]] = [(f"rows {table}", f"{count:,}", "") for table, count in load["rows"].items()]
    rows += [
        ("load: parse + cache (wall)", f"{load['seconds']:.1f} s", ""),
        ("load: CPU (user + sys)", f"{load['cpu_seconds']:.1f} s", ""),
        ("load: peak RSS", f"{load['peak_rss_mb']:,.0f} MB", f"< {MEMORY_TARGET_MB:,} MB"),
        ("cache file", f"{load['cache_bytes'] / 1e6:,.1f} MB", ""),
        (
            "second open (from cache: " + ("yes" if triage["open_from_cache"] else "NO") + ")",
            f"{triage['open_seconds']:.2f} s",
            "",
        ),
        (f"triage p50 ({len(timings)} users)", f"{p50:.3f} s", f"< {TRIAGE_P50_TARGET_S:g} s"),
        ("triage p95", f"{p95:.3f} s", ""),
        ("triage max", f"{max(timings):.3f} s", ""),
        ("triage: peak RSS", f"{triage['peak_rss_mb']:,.0f} MB", f"< {MEMORY_TARGET_MB:,} MB"),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")
    if load["ignored"]:
        print("files not loaded: " + "; ".join(load["ignored"]))
    print()
    print(
        f"peak memory {peak:,.0f} MB: "
        + ("met" if memory_ok else "MISSED")
        + f"; triage p50 {p50:.3f} s: "
        + ("met" if triage_ok else "MISSED")
    )
    return 0 if memory_ok and triage_ok else 1


if __name__ == "__main__":
    sys.exit(main())
