"""The Log Analytics fake's per-identity limits, seen through the real LogsQueryClient (no retries, so each 429 surfaces)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import RetryPolicy
from azure.monitor.query import LogsQueryClient

from tests.fakes.loganalytics_server import IdentityLimits, LogAnalyticsServer, slow

WORKSPACE = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
QUERY = "Probe | take 1"


class Identity:
    """A TokenCredential for one caller identity: its token is what the fake tells identities apart by."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class ManualClock:
    """The run's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE Probe AS SELECT 1 AS x")
    yield connection
    connection.close()


def _client(server: LogAnalyticsServer, token: str = "identity-a") -> LogsQueryClient:
    """The real SDK client pointed at the fake, with azure-core's retries off so a 429 reaches the caller."""
    return LogsQueryClient(
        Identity(token),  # type: ignore[arg-type]
        endpoint=server.url,
        audience="https://api.loganalytics.io",
        retry_policy=RetryPolicy(retry_total=0),
        connection_verify=server.ca_path,
    )


def _throttled(client: LogsQueryClient) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as raised:
        client.query_workspace(WORKSPACE, QUERY, timespan=None)
    assert raised.value.status_code == 429
    return raised.value


def _five_running(server: LogAnalyticsServer, client: LogsQueryClient) -> list[threading.Thread]:
    """Five slow queries of the client's identity started, and all five being answered by the fake."""
    server.fail(*(slow(1.0) for _ in range(5)))
    threads = [
        threading.Thread(target=client.query_workspace, args=(WORKSPACE, QUERY), kwargs={"timespan": None}) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    while server.max_in_flight < 5:
        time.sleep(0.01)
    return threads


def test_limits_are_off_by_default(con: duckdb.DuckDBPyConnection) -> None:
    """Without `limits`, a sixth concurrent query is answered like any other (the other tests are unchanged)."""
    with LogAnalyticsServer(con) as server:
        client = _client(server)
        threads = _five_running(server, client)
        assert client.query_workspace(WORKSPACE, QUERY, timespan=None).tables[0].rows[0][0] == 1
        for thread in threads:
            thread.join()
        assert server.limit_stats.refused_busy == 0


def test_a_sixth_concurrent_query_of_one_identity_gets_429_with_retry_after(con: duckdb.DuckDBPyConnection) -> None:
    """Five queries of one identity running: the sixth is refused with 429 and Retry-After; another identity is not."""
    with LogAnalyticsServer(con, limits=IdentityLimits()) as server:
        client = _client(server)
        threads = _five_running(server, client)

        refused = _throttled(client)
        assert refused.response is not None
        assert refused.response.headers["Retry-After"] == "1"
        other = _client(server, "identity-b")
        assert other.query_workspace(WORKSPACE, QUERY, timespan=None).tables[0].rows[0][0] == 1

        for thread in threads:
            thread.join()
        assert (server.limit_stats.refused_busy, server.limit_stats.max_concurrent) == (1, 5)
        assert client.query_workspace(WORKSPACE, QUERY, timespan=None).tables[0].rows[0][0] == 1


def test_the_201st_query_in_30_seconds_gets_429_until_the_window_moves(con: duckdb.DuckDBPyConnection) -> None:
    """200 queries of one identity in a 30 s window pass; the 201st gets 429 with the wait left; 30 s later it passes."""
    clock = ManualClock()
    with LogAnalyticsServer(con, limits=IdentityLimits(clock=clock)) as server:
        client = _client(server)
        for index in range(200):
            clock.now = index * 0.1
            client.query_workspace(WORKSPACE, QUERY, timespan=None)
        clock.now = 25.0

        refused = _throttled(client)
        assert refused.response is not None
        assert refused.response.headers["Retry-After"] == "5"  # the first of the 200 leaves the window at 30 s
        assert _client(server, "identity-b").query_workspace(WORKSPACE, QUERY, timespan=None).tables[0].rows[0][0] == 1

        clock.now = 30.0
        assert client.query_workspace(WORKSPACE, QUERY, timespan=None).tables[0].rows[0][0] == 1
        stats = server.limit_stats
        assert (stats.refused_rate, stats.max_in_window) == (1, 200)


def test_a_compressed_clock_asks_for_the_wait_in_wall_seconds() -> None:
    """Under a clock running 20 times faster than the wall, a 5 s wait is asked as Retry-After 0.250 (what the client sleeps)."""
    assert IdentityLimits(time_scale=20).retry_after(5.0) == "0.250"
    assert IdentityLimits().retry_after(4.2) == "5"
