"""
Identifiers drawn from a seeded generator: GUIDs, token identifiers, device names.

Every identifier in the sample tenant comes from here, so the same seed always yields the same
GUIDs and a different seed different ones; nothing uses `uuid4()` or the clock.
"""

from __future__ import annotations

import base64
import random


def generator(seed: int, *purpose: object) -> random.Random:
    """
    The seeded generator for one purpose (a user's activity, a scenario, an incident...).

    One generator per purpose, keyed by text, so the draws of one part never shift another's:
    adding a user or a scenario leaves every other user's rows unchanged. This is simulation,
    not security, so Python's Mersenne Twister is the right tool.
    """
    key = ":".join(("sample-tenant", str(seed), *(str(p) for p in purpose)))
    return random.Random(key)  # noqa: S311 - reproducible simulation, never used for secrets


_VERSION_MASK = ~(0xF << 76) & ((1 << 128) - 1)
_VARIANT_MASK = ~(0x3 << 62) & ((1 << 128) - 1)


def guid(rng: random.Random) -> str:
    """A random (version 4 shaped) GUID in the lower-case 8-4-4-4-12 form Entra writes."""
    value = (rng.getrandbits(128) & _VERSION_MASK & _VARIANT_MASK) | (0x4 << 76) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def token_identifier(rng: random.Random) -> str:
    """A UniqueTokenIdentifier: 16 random bytes, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode("ascii").rstrip("=")


def windows_device_name(rng: random.Random) -> str:
    """A default Windows computer name (`DESKTOP-` and 7 characters), as a freshly registered PC has."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "DESKTOP-" + "".join(rng.choice(alphabet) for _ in range(7))
