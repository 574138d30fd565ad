"""A small incident storm through the real intake, orchestration, activities and fakes: each incident enriched exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.incident_storm import run_storm, schedule

pytestmark = pytest.mark.slow


def test_a_small_storm_enriches_every_incident_exactly_once_within_the_identity_limits(database: Path) -> None:
    """10 incidents, 3 delivered twice: 10 runs, 3 duplicates answered, one enrichment comment each, no query over 5 at once."""
    result = run_storm(database, incidents=10, duplicates=3, span=20.0, scale=10.0, workers=5)

    assert (result.deliveries, result.runs, result.duplicates_suppressed) == (13, 10, 3)
    assert result.statuses == {202: 13}
    assert result.lost == []
    assert result.enrichments == dict.fromkeys(result.enrichments, 1)
    assert len(result.enrichments) == 10
    assert result.comments_written == 10
    assert result.throttled_busy == 0
    assert 0 < result.limits.max_concurrent <= 5
    assert result.la_requests == 35 + result.retries  # 5 incidents with Alice (4 questions), 5 with Bob only (3)


def test_the_schedule_keeps_every_delivery_within_the_span_and_repeats_distinct_incidents() -> None:
    """The storm's schedule: every incident once, the repeats later than their first delivery, all within the span."""
    deliveries = schedule(200, 20, 600.0, seed=11)

    firsts = {d.index: d.at for d in deliveries if not d.repeat}
    repeats = [d for d in deliveries if d.repeat]
    assert sorted(firsts) == list(range(200))
    assert len({d.index for d in repeats}) == 20
    assert all(firsts[d.index] <= d.at <= 600.0 for d in repeats)
    assert sum(1 for at in firsts.values() if at <= 30.0) >= 100
