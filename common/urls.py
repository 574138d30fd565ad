"""Links we put in front of people (incident comments, Teams cards): plain https URLs or nothing."""

from __future__ import annotations

import re

#: Longest link carried; incident URLs are a few hundred characters.
URL_LIMIT = 1000
_HTTPS = re.compile(r"https://[^\s/?#]+(?:[/?#]\S*)?")


def https_url(value: object) -> str:
    """The value, stripped, when it is a plain https URL short enough to carry, else '' (no link beats a bad one)."""
    if not isinstance(value, str):
        return ""
    url = value.strip()
    return url if len(url) <= URL_LIMIT and _HTTPS.fullmatch(url) else ""
