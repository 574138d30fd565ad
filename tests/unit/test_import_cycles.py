"""scripts/import_cycles.py: no module of ours imports itself in a circle, lazy imports included."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scripts.import_cycles import PACKAGES, cycles, edges, main, module_files

ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return module_files(root, packages=("common", "enrichment"))


def _loops(root: Path, files: dict[str, str]) -> list[list[str]]:
    return [[edge.source for edge in loop] for loop in cycles(edges(_tree(root, files)))]


def test_the_product_packages_import_in_one_direction() -> None:
    """common, enrichment, playbooks and sample_tenant have no import cycle, counting function-level imports."""
    modules = module_files(ROOT)
    assert {name.split(".")[0] for name in modules} == set(PACKAGES)
    assert cycles(edges(modules)) == []


def test_an_import_inside_a_function_closes_a_cycle(tmp_path: Path) -> None:
    """A lazy import still runs, so it counts: a.b -> a.c at module level and a.c -> a.b in a function is a cycle."""
    files = {
        "common/__init__.py": "",
        "common/b.py": "from common import c\n",
        "common/c.py": "def f():\n    from common.b import thing\n    return thing\n",
    }
    assert _loops(tmp_path, files) == [["common.b", "common.c"]]


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    """Imports under `if TYPE_CHECKING:` never run; those in its `else:` do."""
    files = {
        "common/__init__.py": "",
        "common/b.py": "import common.c\n",
        "common/c.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from common.b import Thing
            """,
    }
    assert _loops(tmp_path, files) == []
    (tmp_path / "common/c.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from common import b\n", encoding="utf-8"
    )
    assert _loops(tmp_path, {}) == [["common.b", "common.c"]]


def test_relative_and_cross_package_imports_are_resolved(tmp_path: Path) -> None:
    """`from ..x import y` and imports across packages point at the module they name, not a prefix of it."""
    files = {
        "common/__init__.py": "",
        "common/settings.py": "from enrichment.domain.model import Account\n",
        "enrichment/__init__.py": "",
        "enrichment/domain/__init__.py": "",
        "enrichment/domain/model.py": "from ..cli import triage\n",
        "enrichment/cli/__init__.py": "",
        "enrichment/cli/triage.py": "from common.settings import Settings\n",
    }
    assert _loops(tmp_path, files) == [["common.settings", "enrichment.domain.model", "enrichment.cli.triage"]]


def test_the_command_names_each_cycle_with_its_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 and one line per import of the cycle (file:line imports module); exit 0 when there is none."""
    _tree(tmp_path, {"common/__init__.py": "", "common/b.py": "\nimport common.c\n", "common/c.py": "import common.b\n"})
    for package in ("enrichment", "playbooks", "sample_tenant"):
        (tmp_path / package).mkdir()
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "import cycle: common.b -> common.c -> common.b",
        "  common/b.py:2 imports common.c",
        "  common/c.py:1 imports common.b",
    ]
    (tmp_path / "common/c.py").write_text("", encoding="utf-8")
    assert main([str(tmp_path)]) == 0
