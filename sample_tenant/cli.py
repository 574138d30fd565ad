"""
`python -m sample_tenant`: write a sample tenant's exports, scenarios and incidents to a folder.

Prints one summary line on success; bad arguments exit 2 with one line on stderr, like the
triage CLI, so scripts can tell a usage error from a crash.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from common.command import EXIT_BAD_INPUT, EXIT_OK, ArgumentParser
from common.errors import InputError
from common.times import parse_utc


def _end(text: str) -> datetime:
    """ISO 8601; a time without an offset is UTC, like every sign-in log."""
    try:
        return parse_utc(text)
    except ValueError as error:
        msg = f"not an ISO 8601 time: {text!r}"
        raise argparse.ArgumentTypeError(msg) from error


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m sample_tenant", description="Generate a deterministic sample Entra ID tenant's sign-in exports."
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created; earlier exports in it are replaced)")
    parser.add_argument("--users", type=int, default=300, help="number of users (default 300)")
    parser.add_argument("--days", type=int, default=14, help="days of logs ending at --end (default 14, at least 3)")
    parser.add_argument("--seed", type=int, default=7, help="seed; the same arguments give byte-identical files (default 7)")
    parser.add_argument("--variants", type=int, default=20, help="seeded variants of every scenario family (default 20)")
    parser.add_argument(
        "--end", type=_end, default="2026-06-15T23:59:59Z", help="end of the period, ISO 8601 (default 2026-06-15T23:59:59Z)"
    )
    parser.add_argument("--compress", action="store_true", help="write .jsonl.gz instead of .jsonl")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from sample_tenant.generate import Options, generate

    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
        options = Options(
            out=args.out,
            users=args.users,
            days=args.days,
            seed=args.seed,
            variants=args.variants,
            end=args.end,
            compress=args.compress,
        )
        problems = options.problems()
        if problems:
            raise InputError("; ".join(problems))
    except InputError as error:
        print(f"python -m sample_tenant: {error}", file=err)
        return EXIT_BAD_INPUT
    began = time.perf_counter()
    summary = generate(options)
    print(f"{summary.line()} in {time.perf_counter() - began:.1f}s", file=out)
    return EXIT_OK
