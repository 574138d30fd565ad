"""The Log Analytics query budget across every instance Flex Consumption may start: the deployed numbers multiply to at most 5."""

from __future__ import annotations

import json
from pathlib import Path

from enrichment.adapters.loganalytics import MAX_CONCURRENT_QUERIES
from tests.infra.test_bicep import decorator, module_call, one, tree

ROOT = Path(__file__).resolve().parents[2]
#: Log Analytics' limit: 5 concurrent queries per user; a managed identity is one user, shared by every instance.
LOG_ANALYTICS_CONCURRENT_PER_IDENTITY = 5
#: The enrichment activity asks its evidence, baseline and context questions side by side (then the scope question).
QUERIES_PER_ACTIVITY = 3


def _most_instances() -> int:
    """The most instances the template lets Flex Consumption start: the parameter's ceiling, passed to the plan unchanged."""
    parameter = tree("main.bicep")["parameters"]["maximumInstanceCount"]
    assert module_call("modules/function.bicep")["maximumInstanceCount"] == "maximumInstanceCount"
    site = one("modules/function.bicep", "Microsoft.Web/sites")
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    ceiling = decorator(parameter, "max_value")
    assert parameter["default"] <= ceiling
    return int(ceiling)


def test_instances_times_queries_per_instance_stay_within_the_identity_limit() -> None:
    """maximumInstanceCount x min(process slots, activities x queries per activity) <= 5: the limit holds across instances."""
    durable = json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]
    per_instance = min(MAX_CONCURRENT_QUERIES, durable["maxConcurrentActivityFunctions"] * QUERIES_PER_ACTIVITY)

    assert _most_instances() * per_instance <= LOG_ANALYTICS_CONCURRENT_PER_IDENTITY


def test_one_instance_still_uses_the_whole_budget() -> None:
    """The one instance may run all 5 queries at once (its activities are not throttled below the limit)."""
    durable = json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]

    assert min(MAX_CONCURRENT_QUERIES, durable["maxConcurrentActivityFunctions"] * QUERIES_PER_ACTIVITY) == 5
