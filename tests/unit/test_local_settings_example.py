"""local.settings.json.example names every app setting the code reads, with its default, ready for `func start`."""

from __future__ import annotations

import json
from pathlib import Path

from common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "local.settings.json.example"
#: What the Functions host itself reads locally: the Python worker, and Azurite for its storage and the Durable task hub.
HOST = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_names_every_setting_of_the_settings_table_and_nothing_else() -> None:
    """The Values are the host's two settings plus exactly `Settings.names()` (the README's generated table), in its order."""
    values = json.loads(EXAMPLE.read_text(encoding="utf-8"))["Values"]
    expected = [*HOST, *Settings.names()]
    assert sorted(set(expected) - set(values)) == [], "add these settings (with their defaults) to local.settings.json.example"
    assert sorted(set(values) - set(expected)) == [], "local.settings.json.example names settings the code does not read"
    assert list(values) == expected, "keep the example in the order of common/settings.py"
    assert {name: values[name] for name in HOST} == HOST


def test_holds_the_defaults_with_containment_off() -> None:
    """Every value parses and is the code's default, except containment, off locally (it needs a tenant, a bot and approvers)."""
    assert Settings.from_file(EXAMPLE) == Settings(containment_enabled=False)
    assert Settings.from_file(EXAMPLE).missing_for_azure() == ["REPLAY_WORKSPACE_ID: required"]
