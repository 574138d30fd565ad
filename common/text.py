"""
Untrusted text made safe to show and to store: pure functions, no I/O.

Incident titles, entity names and every value of a sign-in row are attacker-controlled. Before such
text reaches a comment, a card or a workflow payload it loses the characters that let it look like
something it is not or that break a consumer downstream:

* control characters (C0 but tab, line feed and carriage return; DEL; C1): NUL truncates text in
  some viewers, ESC starts terminal escape sequences in a log tail;
* bidirectional controls (U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates, the
  LRM/RLM/ALM marks): they reorder what a reader sees ("Trojan Source", CVE-2021-42574);
* invisible formatting (zero-width space and joiners, word joiner, invisible operators, soft hyphen,
  byte-order mark): they make two different names look the same;
* lone surrogates (a JSON `"\\ud800"` escape decodes to one): not encodable as UTF-8, so a file,
  an HTTP answer or a Durable payload holding one fails to be written. Each becomes U+FFFD, so the
  reader still sees that something was there.

Tabs and line breaks stay: each renderer decides what a break means (a space on a card, whitespace
in HTML).
"""

from __future__ import annotations

import re

#: Removed outright: controls, bidirectional controls and invisible formatting characters.
_HIDDEN = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f"  # C0 controls but \t \n \r
    "\x7f-\x9f"  # DEL and the C1 controls
    "\u00ad"  # soft hyphen
    "\u061c"  # Arabic letter mark
    "\u180e"  # Mongolian vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner; left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO)
    "\u2060-\u2064"  # word joiner and the invisible operators
    "\u2066-\u2069"  # bidi isolates (LRI, RLI, FSI, PDI)
    "\ufeff"  # zero-width no-break space / byte-order mark
    "]"
)
#: Replaced by U+FFFD: a surrogate code point on its own (a str never holds a valid pair as two).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

ELLIPSIS = "\u2026"


def safe_text(value: object) -> str:
    """`value` as text that reads as what it is: hidden characters removed, lone surrogates shown as U+FFFD."""
    text = value if isinstance(value, str) else str(value)
    return _LONE_SURROGATE.sub("\ufffd", _HIDDEN.sub("", text))


def capped_text(value: object, limit: int) -> str:
    """`safe_text(value)` in at most `limit` characters; a cut text ends with an ellipsis."""
    if limit < 1:
        msg = "limit must be at least 1"
        raise ValueError(msg)
    text = safe_text(value)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS
