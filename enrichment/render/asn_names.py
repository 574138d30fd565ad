"""
Operator names of autonomous systems, so no ASN is shown as a bare number.

The names come from `asn-names.tsv.gz` beside this module, derived by `scripts/asn_names.py` from the
npm package `@ip-location-db/asn` pinned in `scripts/asn-names/package.json` (RouteViews, the RIRs via
NRO and DB-IP's IP to ASN Lite, CC BY 4.0; `ATTRIBUTION` is shown wherever names are). The file is read
on the first lookup only (about 90,000 lines; one decompression, then a substring search per AS) and kept for the process, so
importing this module costs nothing and a render that names no AS never reads it.

An AS name is chosen by whoever registered the AS: it is untrusted text, escaped by every renderer
like a sign-in value. The curated tables in `enrichment.domain.networks` answer for an AS the file does
not know (a private or reserved number never is).
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from enrichment.domain import networks

DATA = Path(__file__).with_name("asn-names.tsv.gz")


@cache
def _text() -> str:
    """The whole file, decompressed once: a lookup is one substring search, faster than building a dict."""
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        return "\n" + handle.read()


def _field(key: str) -> str:
    text = _text()
    start = text.find(f"\n{key}\t")
    if start < 0:
        return ""
    start += len(key) + 2
    end = text.find("\n", start)
    return text[start : end if end >= 0 else len(text)]


@cache
def asn_name(asn: int | None) -> str:
    """The operator's name for `asn` ("" when unknown or None)."""
    if asn is None or asn < 0:
        return ""
    return _field(str(asn)) or networks.operator_name(asn)


def asn_label(asn: int | None) -> str:
    """'AS8220 COLT Technology Services Group Limited', 'AS64512' when unnamed, '' for no ASN."""
    if asn is None:
        return ""
    name = asn_name(asn)
    return f"AS{asn} {name}" if name else f"AS{asn}"


def source() -> str:
    """Where the names come from, e.g. 'npm @ip-location-db/asn 2.3.2026061719'."""
    return _field("# source")


#: The credit CC BY 4.0 asks for, shown under every rendering that names an AS.
ATTRIBUTION = "AS names: RouteViews, NRO and DB-IP.com (CC BY 4.0)"
ATTRIBUTION_URL = "https://db-ip.com"
