"""
Addresses inside catalog prefixes: deterministic picks from a seeded generator, as text.

Prefixes are parsed once and cached, because carrier churn and privacy addresses pick a fresh
address for many rows and `ipaddress` parsing per row would dominate the generator's time.
"""

from __future__ import annotations

import ipaddress
import random
from functools import lru_cache


@lru_cache(maxsize=4096)
def _network(prefix: str) -> tuple[int, int, int]:
    """(first address as int, number of addresses, IP version) of a prefix."""
    net = ipaddress.ip_network(prefix, strict=False)
    return int(net.network_address), net.num_addresses, net.version


def _text(value: int, version: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


def host(prefix: str, index: int) -> str:
    """The `index`-th usable address of an IPv4 prefix (wrapping, never the network or broadcast address)."""
    first, size, version = _network(prefix)
    usable = max(size - 2, 1)
    return _text(first + 1 + index % usable, version)


def random_host(rng: random.Random, prefix: str) -> str:
    """A random usable address of an IPv4 prefix, or a random address of an IPv6 prefix."""
    first, size, version = _network(prefix)
    if version == 6:
        return _text(first + rng.getrandbits(min(size.bit_length() - 1, 128)), 6)
    return _text(first + 1 + rng.randrange(max(size - 2, 1)), 4)


def subnet(prefix: str, new_length: int, index: int) -> str:
    """The `index`-th subnet of length `new_length` inside `prefix` (wrapping), e.g. an office /28."""
    first, size, version = _network(prefix)
    bits = 32 if version == 4 else 128
    block = 1 << (bits - new_length)
    count = max(size // block, 1)
    start = first + (index % count) * block
    return f"{_text(start, version)}/{new_length}"


def random_subnet(rng: random.Random, prefix: str, new_length: int) -> str:
    """A random subnet of length `new_length` inside `prefix` (a home's IPv6 /64, a VPS's /24)."""
    _, size, version = _network(prefix)
    bits = 32 if version == 4 else 128
    block = 1 << (bits - new_length)
    return subnet(prefix, new_length, rng.randrange(max(size // block, 1)))


def contains(prefix: str, address: str) -> bool:
    """Whether `address` is inside `prefix`."""
    return ipaddress.ip_address(address) in ipaddress.ip_network(prefix, strict=False)
