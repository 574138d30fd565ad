"""The egress-list builder: a publisher's file becomes the shipped, dated, collapsed list the product reads."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("egress_lists", ROOT / "scripts" / "egress_lists.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["egress_lists"] = module
    spec.loader.exec_module(module)
    return module


builder = _builder()


def test_apple_csv_rows_are_read_by_their_first_column_and_collapsed() -> None:
    """Apple's CSV (prefix, country, region, city) gives its prefixes; adjacent and nested ones are merged."""
    lines = [
        "172.224.226.0/27,FR,FR-75,Paris,",
        "172.224.226.32/27,FR,FR-75,Paris,",
        "172.224.226.40/29,FR,FR-75,Paris,",
        "",
        "# a comment",
        "2a02:26f7:b38a:4000::/64,DE,DE-BE,Berlin,",
    ]
    assert [str(n) for n in builder.prefixes(lines)] == ["172.224.226.0/26", "2a02:26f7:b38a:4000::/64"]


def test_a_bad_line_is_named() -> None:
    """A line that is not a prefix stops the build with its line number."""
    with pytest.raises(ValueError, match="line 2: 'nonsense'"):
        builder.prefixes(["192.0.2.0/24", "nonsense,FR"])


def test_the_file_names_its_source_and_date_and_rebuilds_byte_identical() -> None:
    """The header carries the source and the date; the same input gives the same bytes (no gzip timestamp)."""
    found = builder.prefixes(["192.0.2.0/25", "192.0.2.128/25"])
    first = builder.render("example", found, "Example, https://example.invalid/list.csv", date(2026, 8, 17))
    again = builder.render("example", found, "Example, https://example.invalid/list.csv", date(2026, 8, 17))
    assert first == again
    text = gzip.decompress(first).decode("ascii").splitlines()
    assert text == [
        "# list: example",
        "# source: Example, https://example.invalid/list.csv",
        "# retrieved: 2026-08-17",
        "# prefixes: 1",
        "192.0.2.0/24",
    ]
