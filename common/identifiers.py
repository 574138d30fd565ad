"""Identifiers that cross trust boundaries: Entra, Azure and Sentinel ids are GUIDs, checked whole."""

from __future__ import annotations

import re

#: A GUID in its 8-4-4-4-12 hexadecimal form, either case. Use `fullmatch` (`is_guid`): `match` with
#: `$` would accept a trailing newline.
GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def is_guid(text: str) -> bool:
    """Whether `text` is exactly one GUID, nothing before or after it."""
    return GUID.fullmatch(text) is not None
