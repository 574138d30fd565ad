"""The README's fault matrix: every row names the tests that pin it, and each of them exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Fault matrix", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    return [(row.split(" | ")[0].strip("| "), re.findall(r"`([^`]*::[^`]*|tests/[^`]*)`", row.split(" | ")[-1])) for row in rows]


def test_every_fault_is_pinned_by_tests_that_exist() -> None:
    """Each row names at least one test; a renamed or deleted test breaks the row, not silently the guarantee."""
    rows = _rows()
    assert len(rows) >= 10
    for fault, refs in rows:
        assert refs, f"no test pins: {fault}"
        path = ""
        for ref in refs:
            file_part, _, names = ref.partition("::")
            path = file_part or path
            source = (ROOT / path).read_text(encoding="utf-8")
            for name in filter(None, names.split("::")):
                assert re.search(rf"\b(def|class) {re.escape(name)}\b", source), f"{fault}: {path}::{name} does not exist"
