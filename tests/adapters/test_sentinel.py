"""Sentinel adapter: the real azure-core pipeline against a fake ARM endpoint over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from common.errors import TransientUpstreamError, UpstreamError
from common.settings import Settings
from enrichment.domain.model import Verdict
from playbooks.adapters import sentinel
from playbooks.adapters.sentinel import SentinelIncidents, SentinelRetries
from playbooks.domain.incident import SentinelIncident, comment_id, incident_update
from tests.fakes.sentinel_server import FakeCredential, SentinelServer, conflict, forbidden, server_error, slow, throttled

SUB = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
INCIDENT = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
FAST = SentinelRetries(
    sdk_total=3,
    sdk_backoff_factor=0.01,
    sdk_backoff_max=0.05,
    retry_after_max=2.0,
    connection_timeout=2.0,
    read_timeout=0.5,
    conflict_attempts=3,
    conflict_wait_initial=0.01,
    conflict_wait_max=0.02,
)

RUN = "incident-x@20260301T100000.000000Z"


def _ref(name: str = INCIDENT) -> SentinelIncident:
    return SentinelIncident(
        SUB, "soc-rg", "soc-workspace", name, 42, "Token replay", "Medium", datetime(2026, 3, 1, 9, tzinfo=UTC), None
    )


def _properties(**extra: Any) -> dict[str, Any]:
    return {
        "title": "Token replay",
        "severity": "Medium",
        "status": "New",
        "labels": [{"labelName": "vip", "labelType": "User"}],
        "incidentNumber": 42,
        "description": "kept as it was",
        **extra,
    }


@pytest.fixture
def server() -> Iterator[SentinelServer]:
    with SentinelServer() as running:
        running.add_incident(
            SUB,
            "soc-rg",
            "soc-workspace",
            INCIDENT,
            _properties(),
            entities=[{"kind": "Account", "properties": {"aadUserId": "2046feea-040d-4a46-9e2b-91c2941bfa70"}}],
        )
        yield running


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def incidents(server: SentinelServer, credential: FakeCredential) -> Iterator[SentinelIncidents]:
    adapter = SentinelIncidents.create(
        Settings(), credential, endpoint=server.url, connection_verify=server.ca_path, retries=FAST
    )
    yield adapter
    adapter.close()


class TestReads:
    def test_get_incident_asks_for_an_arm_token_not_one_for_the_test_host(
        self, incidents: SentinelIncidents, server: SentinelServer, credential: FakeCredential
    ) -> None:
        """The token scope comes from the ARM audience even though requests go to 127.0.0.1."""
        resource = incidents.get_incident(_ref())

        assert resource.properties["title"] == "Token replay"
        assert resource.etag == server.incident(INCIDENT).etag
        assert credential.scopes[:1] == [("https://management.azure.com/.default",)]
        assert {("2025-12-01", "Bearer fake-arm-token")} == {(r.api_version, r.authorization) for r in server.requests}

    def test_sovereign_cloud_endpoint_gives_its_own_scope(self) -> None:
        """The scope follows REPLAY_ARM_ENDPOINT (e.g. Azure US Government)."""
        assert sentinel.arm_scope("https://management.usgovcloudapi.net/") == "https://management.usgovcloudapi.net/.default"

    def test_list_entities_posts_and_returns_the_entity_objects(
        self, incidents: SentinelIncidents, server: SentinelServer
    ) -> None:
        """Entities are read with POST .../entities."""
        entities = incidents.list_entities(_ref())

        assert [e["kind"] for e in entities] == ["Account"]
        assert [(r.method, r.route) for r in server.requests] == [("POST", "entities")]

    def test_list_entities_retries_a_429_without_retry_after(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """The entities POST is a read, so it opts into azure-core's retry of 429 even without Retry-After."""
        server.fail("entities", throttled(), throttled())

        entities = incidents.list_entities(_ref())

        assert len(entities) == 1
        assert server.count("entities") == 3

    @pytest.mark.slow
    def test_retry_after_is_honoured(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """A 429 with Retry-After: 1 is retried after about a second."""
        server.fail("get_incident", throttled(retry_after=1))

        started = time.monotonic()
        incidents.get_incident(_ref())

        assert time.monotonic() - started >= 0.9
        assert server.count("get_incident") == 2

    def test_retry_after_beyond_the_cap_is_not_slept(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """A Retry-After of two minutes surfaces at once as a transient failure with the throttling hint."""
        server.fail("get_incident", throttled(retry_after=120))

        started = time.monotonic()
        with pytest.raises(TransientUpstreamError) as caught:
            incidents.get_incident(_ref())

        assert time.monotonic() - started < 2
        assert (caught.value.status, caught.value.hint) == (429, sentinel.HINT_THROTTLED)
        assert server.count("get_incident") == 1

    @pytest.mark.slow
    def test_a_read_timeout_is_retried(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """A GET that outlives the read timeout is sent again and the second answer is used."""
        server.fail("get_incident", slow(1.5))

        started = time.monotonic()
        resource = incidents.get_incident(_ref())

        assert resource.properties["status"] == "New"
        # The slow answer takes 1.5 s: finishing sooner means the 0.5 s timeout fired and a retry answered.
        assert time.monotonic() - started < 1.4

    @pytest.mark.slow
    def test_timeouts_every_time_end_as_a_transient_failure(self, server: SentinelServer, credential: FakeCredential) -> None:
        """When every attempt times out, the caller gets TransientUpstreamError, not a hang."""
        retries = SentinelRetries(sdk_total=1, sdk_backoff_factor=0.01, read_timeout=0.3, connection_timeout=1.0)
        adapter = SentinelIncidents.create(
            Settings(), credential, endpoint=server.url, connection_verify=server.ca_path, retries=retries
        )
        server.fail("get_incident", slow(1.0), slow(1.0))

        with pytest.raises(TransientUpstreamError) as caught:
            adapter.get_incident(_ref())

        assert caught.value.hint == sentinel.HINT_UNAVAILABLE

    def test_forbidden_is_not_retried_and_names_the_role(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """403 fails at once with the Sentinel Responder hint."""
        server.fail("get_incident", forbidden())

        with pytest.raises(UpstreamError) as caught:
            incidents.get_incident(_ref())

        assert not isinstance(caught.value, TransientUpstreamError)
        assert caught.value.status == 403
        assert "Microsoft Sentinel Responder" in caught.value.hint
        assert server.count("get_incident") == 1

    def test_unknown_incident_is_not_found(self, incidents: SentinelIncidents) -> None:
        """An incident the workspace does not have gives 404 with the not-found hint."""
        with pytest.raises(UpstreamError) as caught:
            incidents.get_incident(_ref("00000000-0000-0000-0000-000000000001"))

        assert (caught.value.status, caught.value.hint) == (404, sentinel.HINT_NOT_FOUND)

    def test_a_credential_failure_says_to_check_the_identity(self, server: SentinelServer) -> None:
        """No token: the error names the managed identity, and nothing is sent."""

        class NoToken:
            def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
                raise ClientAuthenticationError("ManagedIdentityCredential authentication unavailable")

        adapter = SentinelIncidents.create(
            Settings(), NoToken(), endpoint=server.url, connection_verify=server.ca_path, retries=FAST
        )  # type: ignore[arg-type]

        with pytest.raises(UpstreamError) as caught:
            adapter.get_incident(_ref())

        assert caught.value.hint == sentinel.HINT_CREDENTIAL
        assert server.requests == []


class TestComments:
    def test_same_comment_id_twice_creates_then_lands_on_the_same_comment(
        self, incidents: SentinelIncidents, server: SentinelServer
    ) -> None:
        """A deterministic id makes a second write of the record land on the same comment: never a duplicate."""
        cid = comment_id(_ref(), RUN, "enrichment")

        first = incidents.write_comment(_ref(), cid, "<p>first</p>")
        second = incidents.write_comment(_ref(), cid, "<p>second</p>")

        comments = server.comments(INCIDENT)
        assert (first.created, second.created) == (True, False)
        assert [cid] == list(comments)
        assert (comments[cid]["message"], comments[cid]["writes"]) == ("<p>second</p>", 2)

    def test_5xx_on_the_comment_put_is_retried(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """Two 503s then success: the PUT is retried by azure-core and the comment exists once."""
        server.fail("put_comment", server_error(503), server_error(500))

        incidents.write_comment(_ref(), comment_id(_ref(), RUN, "enrichment"), "<p>x</p>")

        assert server.count("put_comment") == 3
        assert len(server.comments(INCIDENT)) == 1

    def test_persistent_5xx_ends_as_transient_failure(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """After the SDK's retries (1 + 3 attempts), a 500 surfaces as TransientUpstreamError."""
        server.fail("put_comment", *[server_error(500)] * 4)

        with pytest.raises(TransientUpstreamError) as caught:
            incidents.write_comment(_ref(), comment_id(_ref(), RUN, "enrichment"), "<p>x</p>")

        assert caught.value.status == 500
        assert server.count("put_comment") == 4

    @pytest.mark.slow
    def test_a_timed_out_comment_put_is_retried_without_a_duplicate(
        self, incidents: SentinelIncidents, server: SentinelServer
    ) -> None:
        """The server stored the slow PUT; the retry replaces it, so there is still one comment."""
        server.fail("put_comment", slow(1.0))
        cid = comment_id(_ref(), RUN, "enrichment")

        incidents.write_comment(_ref(), cid, "<p>x</p>")
        time.sleep(0.7)  # let the slow request finish on the server

        assert [cid] == list(server.comments(INCIDENT))

    @pytest.mark.parametrize("status", [409, 412])
    def test_a_conflict_on_the_comment_put_is_written_again(
        self, incidents: SentinelIncidents, server: SentinelServer, status: int
    ) -> None:
        """409 and 412, which azure-core never retries, are written again by the conflict loop: one comment."""
        server.fail("put_comment", conflict(status), conflict(status))

        written = incidents.write_comment(_ref(), comment_id(_ref(), RUN, "enrichment"), "<p>x</p>")

        assert [r.status for r in server.requests if r.route == "put_comment"] == [status, status, 201]
        assert written.created
        assert len(server.comments(INCIDENT)) == 1

    def test_conflicts_beyond_the_budget_end_as_a_transient_failure(
        self, incidents: SentinelIncidents, server: SentinelServer
    ) -> None:
        """A comment that keeps conflicting stops after `conflict_attempts` PUTs, as a transient failure with the hint."""
        server.fail("put_comment", *[conflict()] * 5)

        with pytest.raises(TransientUpstreamError) as caught:
            incidents.write_comment(_ref(), comment_id(_ref(), RUN, "enrichment"), "<p>x</p>")

        assert (caught.value.status, caught.value.hint) == (409, sentinel.HINT_CONFLICT)
        assert server.count("put_comment") == FAST.conflict_attempts
        assert server.comments(INCIDENT) == {}


def _likely(properties: Any) -> dict[str, Any] | None:
    return incident_update(properties, Verdict.REPLAY_LIKELY, raise_severity=True)


class TestUpdateIncident:
    def test_labels_and_severity_written_with_the_etag(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """GET then a full PUT carrying the etag: our label added, theirs kept, severity raised."""
        etag = server.incident(INCIDENT).etag

        changed = incidents.update_incident(_ref(), _likely)

        stored = server.incident(INCIDENT)
        put = next(r for r in server.requests if r.route == "put_incident")
        assert changed
        assert put.body["etag"] == etag
        assert [label["labelName"] for label in stored.properties["labels"]] == ["vip", "token-replay:likely"]
        assert (stored.properties["severity"], stored.properties["description"]) == ("High", "kept as it was")
        assert "incidentNumber" not in put.body["properties"]

    def test_nothing_to_change_sends_no_put(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """A second identical update reads the incident and stops: no PUT, no new etag."""
        incidents.update_incident(_ref(), _likely)
        etag = server.incident(INCIDENT).etag

        changed = incidents.update_incident(_ref(), _likely)

        assert not changed
        assert server.count("put_incident") == 1
        assert etag == server.incident(INCIDENT).etag

    def test_412_rereads_and_keeps_the_other_writers_label(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """Another writer changed the incident between our GET and PUT: we re-read, re-merge and win."""
        server.interfere(INCIDENT, lambda p: p["labels"].append({"labelName": "analyst-note", "labelType": "User"}))

        incidents.update_incident(_ref(), _likely)

        names = [label["labelName"] for label in server.incident(INCIDENT).properties["labels"]]
        assert names == ["vip", "analyst-note", "token-replay:likely"]
        assert [r.status for r in server.requests if r.route == "put_incident"] == [412, 200]
        assert server.count("get_incident") == 2

    @pytest.mark.slow
    def test_conflicts_every_time_stop_after_the_bound(self, incidents: SentinelIncidents, server: SentinelServer) -> None:
        """A constantly changing incident ends after `conflict_attempts` tries with the conflict hint."""
        server.interfere(INCIDENT, lambda p: p.update(description=str(time.monotonic())), times=5)

        with pytest.raises(TransientUpstreamError) as caught:
            incidents.update_incident(_ref(), _likely)

        assert (caught.value.status, caught.value.hint) == (412, sentinel.HINT_CONFLICT)
        assert server.count("put_incident") == FAST.conflict_attempts
