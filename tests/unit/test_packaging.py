"""pyproject.toml: the wheel declares exactly the pinned runtime, ships every file of its packages, and names a real command."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from playbooks.cli import token_replay

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_lines(name: str) -> list[str]:
    """The requirement lines of a requirements file and of the files it includes with `-r`."""
    lines: list[str] = []
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped.startswith("-r "):
            lines += requirement_lines(stripped.removeprefix("-r ").strip())
        elif stripped:
            lines.append(stripped)
    return lines


def _key(text: str) -> tuple[str, str, frozenset[str], str]:
    requirement = Requirement(text)
    return (requirement.name.lower(), str(requirement.specifier), frozenset(requirement.extras), str(requirement.marker))


def test_dependencies_are_the_pins_of_requirements_local() -> None:
    """`pip install .` installs what the laptop setup does: requirements.txt plus the embedded engine, same pins and markers."""
    declared = sorted(_key(text) for text in PYPROJECT["project"]["dependencies"])
    assert declared == sorted(_key(text) for text in requirement_lines("requirements-local.txt"))


def test_the_pinned_setuptools_can_build_the_wheel_offline() -> None:
    """requirements-dev.txt pins a setuptools that the build-system accepts, so tests build with --no-build-isolation."""
    [backend] = (Requirement(text) for text in PYPROJECT["build-system"]["requires"])
    [pin] = (Requirement(text) for text in requirement_lines("requirements-dev.txt") if Requirement(text).name == backend.name)
    [version] = (spec.version for spec in pin.specifier)
    assert backend.specifier.contains(version)
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"


def test_every_folder_of_the_packages_is_a_package_or_declared_data() -> None:
    """With namespaces off, a folder without __init__.py would silently miss the wheel; a data file must match package-data."""
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in ("common", "enrichment", "playbooks", "sample_tenant"):
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT / package).as_posix()
            if "__pycache__" in path.parts or path.is_dir():
                continue
            if path.suffix == ".py":
                assert (path.parent / "__init__.py").is_file(), f"{path.parent.relative_to(ROOT)} has no __init__.py"
            else:
                assert any(fnmatch.fnmatch(relative, pattern) for pattern in data.get(package, [])), f"{package}/{relative}"


def test_the_console_script_names_the_dispatcher() -> None:
    """`token-replay` runs playbooks.cli.token_replay:main, which knows the three documented commands."""
    assert PYPROJECT["project"]["scripts"] == {"token-replay": "playbooks.cli.token_replay:main"}
    assert set(token_replay.COMMANDS) == {"triage", "run", "sample"}
