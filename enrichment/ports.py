"""
The one seam between the queries and whatever runs them.

Two engines implement it: `LogAnalyticsEngine` (azure-monitor-query against a workspace) and
`EmbeddedEngine` (duckdb-kql over exported logs). Both take the same `Query` text and give back a
`QueryOutcome`, so everything above this line is the same code whichever engine ran.
"""

from __future__ import annotations

from typing import Protocol

from enrichment.domain.model import QueryOutcome
from enrichment.queries.kql import Query


class QueryEngine(Protocol):
    """
    **Protocol:** runs a KQL query and returns its rows.

    Rows are dicts from column name to value: `str`, `int`, `float`, `bool`, `None`, `datetime`
    (aware or naive UTC) or, for dynamic columns, a list/dict or its JSON text. Partial results are
    returned with `warnings`; an engine raises `UpstreamError` only when nothing usable came back.
    """

    @property
    def name(self) -> str:
        """A short name for logs and warnings ("log-analytics", "embedded")."""
        ...

    def run(self, query: Query) -> QueryOutcome: ...
