"""Fixtures the service tests share: the exported logs as a DuckDB file, and a Sentinel fake holding the incident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sample_tenant.generate import Options, generate
from tests.fakes.sentinel_server import SentinelServer
from tests.service import replay_data as data


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated sample tenant (34 users, 4 days, 2 variants of each scenario), gzip exports, per module."""
    folder = tmp_path_factory.mktemp("tenant")
    generate(Options(out=folder, users=34, days=4, variants=2, compress=True))
    return folder


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The replay scenario's exports loaded once per module (Alice replayed from Lagos, Bob benign)."""
    return data.build_database(tmp_path_factory.mktemp("exports") / "signins.duckdb")


@pytest.fixture
def sentinel() -> Iterator[SentinelServer]:
    """A Sentinel ARM fake with the scenario's incident and its entities."""
    with SentinelServer() as server:
        resource = data.incident_resource()
        server.add_incident(
            data.SUBSCRIPTION, data.RESOURCE_GROUP, data.WORKSPACE_NAME, data.INCIDENT_NAME, resource["properties"], data.ENTITIES
        )
        yield server
