"""The README's dependency table names exactly the packages the requirements files pin, so neither can drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ("requirements.txt", "requirements-local.txt", "requirements-dev.txt", "requirements-checkov.txt")
#: npm packages the product ships data from (not the test tools under tests/): pinned in these manifests.
DATA_MANIFESTS = ("scripts/asn-names/package.json",)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def _normalise(name: str) -> str:
    """PEP 503: case, `_` and `.` do not distinguish package names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_packages(text: str) -> set[str]:
    """Package names of a requirements file: every requirement line, not comments, blanks or `-r` includes."""
    names = set()
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if not stripped or stripped.startswith("-"):
            continue
        match = _NAME.match(stripped)
        assert match, f"not a requirement line: {line!r}"
        names.add(_normalise(match.group(1)))
    return names


def dependency_table(readme: str) -> set[str]:
    """Package names in the first column of the tables in the README's `## Dependencies` section."""
    section = readme.split("\n## Dependencies\n", 1)
    assert len(section) == 2, "README.md has no '## Dependencies' section"
    body = section[1].split("\n## ", 1)[0]
    return {_normalise(m.group(1)) for line in body.splitlines() if (m := _ROW.match(line))}


def test_every_pinned_package_has_a_line_in_the_readme_dependency_table() -> None:
    """Each package of every requirements file (checkov's too, when present) and each npm data package is explained in the README."""
    pinned = set()
    for name in REQUIREMENTS:
        path = ROOT / name
        if path.exists():
            pinned |= pinned_packages(path.read_text(encoding="utf-8"))
    for name in DATA_MANIFESTS:
        pinned |= {_normalise(package) for package in json.loads((ROOT / name).read_text(encoding="utf-8"))["dependencies"]}
    documented = dependency_table((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "azure-functions" in pinned
    assert sorted(pinned - documented) == [], "pinned but not in README's Dependencies table"
    assert sorted(documented - pinned) == [], "in README's Dependencies table but pinned nowhere"


def test_requirement_lines_are_read_as_names_without_versions_extras_or_markers() -> None:
    """Extras, environment markers, comments and includes do not leak into the names compared."""
    text = '# comment\n-r other.txt\n\nduckdb-kql[duckdb]==1.1.2\nazure-functions==2.3.0; python_version >= "3.13"\nPyJWT==2.15.1  # why\n'
    assert pinned_packages(text) == {"duckdb-kql", "azure-functions", "pyjwt"}


def test_the_table_parser_reads_only_the_dependencies_section() -> None:
    """Rows of other tables in the README are not taken for dependencies."""
    readme = "# T\n\n## Layout\n\n| `enrichment/` | x |\n\n## Dependencies\n\n| `structlog` | logs |\n| `Py_JWT` | j |\n\n## Next\n\n| `other` | y |\n"
    assert dependency_table(readme) == {"structlog", "py-jwt"}
