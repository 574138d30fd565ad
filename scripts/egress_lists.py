"""
Rebuild a shipped egress list (`enrichment/egress_lists/NAME.txt.gz`) from the list its publisher serves.

The product ships published egress lists as data so triage can run offline; they go stale as the
publishers add addresses. Download the publisher's file where the internet is reachable, then:

    python scripts/egress_lists.py icloud-private-relay egress-ip-ranges.csv \
        --source "Apple, https://mask-api.icloud.com/egress-ip-ranges.csv" --retrieved 2026-08-17

Inputs are CSV (Apple's format: the prefix is the first column) or one prefix per line; blank lines
and `#` comments are skipped. Prefixes are collapsed (adjacent and nested ones merged) and written
sorted, one per line, under `#` header lines that name the source and the date: the product shows
both wherever it uses the list, and the README's detection section names them.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "enrichment" / "egress_lists"


def prefixes(lines: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The prefixes in a publisher's file, collapsed; raises ValueError naming the first bad line."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        first = text.split(",", 1)[0].strip()
        try:
            network = ipaddress.ip_network(first, strict=False)
        except ValueError as error:
            msg = f"line {number}: {first!r} is not an address prefix"
            raise ValueError(msg) from error
        (v4 if network.version == 4 else v6).append(network)  # type: ignore[arg-type]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def render(name: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], source: str, retrieved: date) -> bytes:
    """The shipped file: header lines, then one prefix per line; gzip with a fixed mtime, so a rebuild is byte-identical."""
    header = [f"# list: {name}", f"# source: {source}", f"# retrieved: {retrieved.isoformat()}", f"# prefixes: {len(networks)}"]
    text = "\n".join([*header, *(str(n) for n in networks)]) + "\n"
    return gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild a shipped egress list from the publisher's file(s).")
    parser.add_argument("name", help="the list's name, e.g. icloud-private-relay (enrichment.domain.networks.EGRESS_LISTS)")
    parser.add_argument("files", type=Path, nargs="+", help="the publisher's file(s): CSV or one prefix per line")
    parser.add_argument("--source", required=True, help="where the publisher serves the list (and any mirror it came through)")
    parser.add_argument("--retrieved", type=date.fromisoformat, required=True, help="the date the list was taken, YYYY-MM-DD")
    args = parser.parse_args(argv)
    lines: list[str] = []
    for path in args.files:
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    try:
        found = prefixes(lines)
    except ValueError as error:
        print(f"egress_lists: {error}", file=sys.stderr)
        return 2
    if not found:
        print("egress_lists: no prefixes in the input", file=sys.stderr)
        return 2
    target = FOLDER / f"{args.name}.txt.gz"
    target.write_bytes(render(args.name, found, args.source, args.retrieved))
    print(f"{target}: {len(found)} prefixes from {args.source} ({args.retrieved.isoformat()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
