"""The README's settings and permission tables are the code's, generated, and cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import Settings
from playbooks.cli import permissions as permissions_cli
from playbooks.domain.permissions import AZURE_ROLES, GRAPH_NEEDS

README = Path(__file__).resolve().parents[2] / "README.md"


def block(text: str, kind: str) -> str:
    start = text.index(permissions_cli.begin_marker(kind))
    stop = text.index(permissions_cli.end_marker(kind)) + len(permissions_cli.end_marker(kind))
    return text[start:stop]


@pytest.mark.parametrize("kind", permissions_cli.BLOCKS)
def test_the_readme_holds_exactly_the_generated_block(kind: str) -> None:
    """Each generated block equals `python -m playbooks.permissions --markdown KIND` (fix: --update-readme README.md)."""
    assert block(README.read_text(encoding="utf-8"), kind) == permissions_cli.generated_block(kind)


def test_every_setting_the_code_reads_is_in_the_readme() -> None:
    """Every name of Settings.names() appears in the README's settings table."""
    table = block(README.read_text(encoding="utf-8"), "settings")

    assert [name for name in Settings.names() if f"| `{name}` |" not in table] == []


def test_every_graph_permission_and_azure_role_is_in_the_readme() -> None:
    """The permissions block names every Graph permission and every Azure role the code declares."""
    table = block(README.read_text(encoding="utf-8"), "permissions")
    permissions = {p for need in GRAPH_NEEDS.values() for p in need.permissions}

    assert [p for p in sorted(permissions) if f"| `{p}` |" not in table] == []
    assert [r.name for r in AZURE_ROLES if f"| {r.name} | `{r.role_id}` |" not in table] == []


def test_the_readme_explains_deployment_testing_and_rollback() -> None:
    """The deployment guide has its steps: the permission script, the Teams package, one-incident test, rollback."""
    text = README.read_text(encoding="utf-8")

    for needle in (
        "## Deploy to Azure",
        "azd up",
        "az deployment sub create",
        "infra/scripts/grant-graph-permissions.sh",
        "infra/scripts/build-teams-package.py",
        "### 6. Test on one incident before enabling the automation rule",
        "### Roll back",
        "--prune",
        "## Permissions",
    ):
        assert needle in text, needle
