"""
Derive `enrichment/render/asn-names.tsv.gz` (AS number -> operator name) from the pinned npm package.

The source is `@ip-location-db/asn` (sapics/ip-location-db: RouteViews prefix-to-AS, the five RIRs'
delegations via NRO, and DB-IP's IP to ASN Lite names; CC BY 4.0), pinned exactly in
`scripts/asn-names/package.json`. Its CSVs map IP ranges to an AS and its organisation; the comment and
the report only need the name of an AS the sign-in rows already carry, so this keeps one line per AS
(the name covering the most addresses, should an AS ever carry two) and drops the ranges: 3 MB of
text, 1.2 MB gzipped, instead of 65 MB of CSV.

Refresh: bump the version in scripts/asn-names/package.json, then
    (cd scripts/asn-names && npm install --no-audit --no-fund) && python3 scripts/asn_names.py
and commit both files. `--package DIR` reads another copy of the package (tests use a small one).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scripts" / "asn-names" / "node_modules" / "@ip-location-db" / "asn"
OUTPUT = ROOT / "enrichment" / "render" / "asn-names.tsv.gz"
FILES = ("asn-ipv4-num.csv", "asn-ipv6-num.csv")
LICENCE = "CC BY 4.0"
ATTRIBUTION = "RouteViews (routeviews.org), NRO (nro.net), DB-IP (db-ip.com)"
# Tabs, line breaks and other control characters would break the one-line-per-AS format.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def names_from(package: Path) -> dict[int, str]:
    """AS number -> the organisation name covering the most addresses in the package's CSVs."""
    weights: dict[int, Counter[str]] = defaultdict(Counter)
    for name in FILES:
        with (package / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                if len(row) != 4 or not row[2].isdigit():
                    continue
                start, end, asn, organisation = row
                cleaned = _CONTROL.sub(" ", organisation).strip()
                if cleaned:
                    weights[int(asn)][cleaned] += max(int(end) - int(start) + 1, 1)
    return {asn: counter.most_common(1)[0][0] for asn, counter in weights.items()}


def write(names: dict[int, str], version: str, output: Path) -> None:
    """The gzipped TSV with its provenance in `#` lines; mtime 0 so the same input gives the same bytes."""
    lines = [
        f"# source\tnpm @ip-location-db/asn {version}",
        f"# licence\t{LICENCE}",
        f"# attribution\t{ATTRIBUTION}",
        *(f"{asn}\t{names[asn]}" for asn in sorted(names)),
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with output.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as handle:
        handle.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--package", type=Path, default=PACKAGE, help="the unpacked @ip-location-db/asn package")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    manifest = args.package / "package.json"
    if not manifest.is_file():
        sys.stderr.write(f"asn_names: {manifest} is missing: run `npm install` in scripts/asn-names first\n")
        return 2
    version = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    names = names_from(args.package)
    write(names, version, args.output)
    sys.stdout.write(f"asn_names: {len(names):,} AS names from @ip-location-db/asn {version} -> {args.output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
