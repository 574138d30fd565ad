"""
An incident storm through the Function App's real parts, on one compressed clock.

Deliveries (Logic App trigger bodies, some of them sent twice, as automation rules firing on create
and update and Logic App retries do) reach the real `POST /api/incidents` handler
(`http_api.receive_incident`), whose Durable client is `StormHub`: it starts each orchestration as a
`tests.app.durable_history.Instance` (the replay helper of the orchestrator tests) played on a pool of
`workers` threads, the Durable extension's `maxConcurrentActivityFunctions` of one app instance, and
answers `get_status` from those live instances, so duplicates are decided by the handler's own rules.
The activities are the real ones, the enrichment's queries go through the real `LogAnalyticsEngine`
(azure-monitor-query's `LogsQueryClient`) to the Log Analytics fake with its per-identity limits on,
and the comments and labels go through the real Sentinel adapter to the Sentinel fake.

Time: `SimClock` is simulated time running `scale` times faster than the wall clock. The arrival
schedule, the fake's 30 s window and its Retry-After, the retry waits of azure-core and tenacity
(every bound of `Retries` divided by `scale`, so a "1 s" backoff sleeps 1/scale wall seconds), the
Durable retry interval of a failed activity (`pause`) and every time reported are on that clock. A
query's own wall time counts `scale` times in simulated time. Two simplifications, both on the slow
side: a run's orchestrator replays and activities share one worker thread, and a Durable retry interval
passes in that thread (the extension would free the worker while the timer waits).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import duckdb
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from common.settings import Settings
from enrichment.adapters.embedded import WATCHLIST_FUNCTION
from enrichment.adapters.loganalytics import LogAnalyticsEngine, Retries
from enrichment.ports import QueryEngine
from playbooks import wiring
from playbooks.adapters.sentinel import SentinelIncidents
from playbooks.domain.workflow import RunEnd, run_input_of, run_result_of
from playbooks.functions.http_api import receive_incident
from playbooks.functions.orchestrator import ACTIVITY_COMMENT, ACTIVITY_ENRICH, ORCHESTRATOR
from tests.app.durable_history import Instance
from tests.app.test_http import FakeDurableClient
from tests.fakes import loganalytics_server as la
from tests.fakes.sentinel_server import FakeCredential, SentinelServer
from tests.service import replay_data as data
from tests.service.test_enrich import ENVIRON, SENTINEL_RETRIES, execute

#: Simulated time zero: half an hour after the scenario's incident time.
EPOCH = data.AT + timedelta(minutes=30)
#: Bob alone (benign: three questions); the scenario's entities name Alice too (replayed: the scope question as well).
BOB_ONLY = [{"kind": "Account", "properties": {"friendlyName": "BOB@contoso.com"}}]
ENRICHMENT_HEADING = "Token replay enrichment"
_NAMES = uuid.UUID("5707a000-0000-4000-8000-000000000000")


class SimClock:
    """Simulated seconds since the start, running `scale` times faster than the wall clock."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._start = time.monotonic()

    def __call__(self) -> float:
        return (time.monotonic() - self._start) * self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)

    def sleep_until(self, at: float) -> None:
        self.sleep(at - self())

    @staticmethod
    def moment(seconds: float) -> datetime:
        return EPOCH + timedelta(seconds=seconds)


def scaled_retries(scale: float) -> Retries:
    """The engine's production retry bounds (`Retries()`), every wait on the simulated clock."""
    bounds = Retries()
    return Retries(
        sdk_total=bounds.sdk_total,
        sdk_backoff_factor=bounds.sdk_backoff_factor / scale,
        sdk_backoff_max=bounds.sdk_backoff_max / scale,
        retry_after_max=bounds.retry_after_max / scale,
        attempts=bounds.attempts,
        wait_initial=bounds.wait_initial / scale,
        wait_max=bounds.wait_max / scale,
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of incident `index` at simulated second `at` (`repeat`: a second delivery of it)."""

    at: float
    index: int
    repeat: bool = False


def schedule(incidents: int, duplicates: int, span: float, seed: int) -> list[Delivery]:
    """
    Half the incidents in the first 30 s (a campaign's burst), the rest spread over `span`, and
    `duplicates` of them delivered again up to 90 s later (still within `span`).
    """
    rng = random.Random(seed)
    burst = incidents // 2
    firsts = [Delivery(rng.uniform(0, min(30.0, span)), index) for index in range(burst)]
    firsts += [Delivery(rng.uniform(0, span), index) for index in range(burst, incidents)]
    repeats = [
        Delivery(min(span, firsts[index].at + rng.uniform(1, 90)), index, repeat=True)
        for index in rng.sample(range(incidents), duplicates)
    ]
    return sorted(firsts + repeats, key=lambda delivery: delivery.at)


def incident_name(index: int) -> str:
    return str(uuid.uuid5(_NAMES, f"storm-{index}"))


def trigger_body(index: int) -> dict[str, Any]:
    """The Logic App trigger body of storm incident `index`: the scenario's incident under its own name and number."""
    resource = data.incident_resource(data.ENTITIES if index % 2 == 0 else BOB_ONLY)
    name = incident_name(index)
    resource["id"] = resource["id"].replace(data.INCIDENT_NAME, name)
    resource["name"] = name
    resource["properties"]["incidentNumber"] = 5000 + index
    return {"objectSchemaType": "Incident", "objectEventType": "Create", "workspaceId": data.WORKSPACE_ID, "object": resource}


@dataclass
class Run:
    """One orchestration run the hub started, and when (simulated) it started and last changed."""

    name: str
    arrived: float
    instance: Instance
    input: Any
    state: str = "Pending"
    updated: float = 0.0


class StormHub(FakeDurableClient):
    """The Durable client of the HTTP starter: starts live orchestration instances on the worker pool, answers their status."""

    def __init__(self, clock: SimClock, workers: int, sentinel: SentinelServer) -> None:
        super().__init__()
        self.clock = clock
        self.sentinel = sentinel
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="activity")
        self.runs: dict[str, Run] = {}
        self.all_runs: list[Run] = []
        self.commented: dict[str, float] = {}  # incident name -> when its first comment landed (simulated)
        self._lock = threading.Lock()

    async def get_status(self, instance_id: str, *, show_input: bool = False) -> DurableOrchestrationStatus:
        with self._lock:
            run = self.runs.get(instance_id)
            return self._status(instance_id, run, show_input) if run is not None else DurableOrchestrationStatus.from_json("")

    async def get_status_by(self, *, instance_id_prefix: str | None = None) -> list[DurableOrchestrationStatus]:
        with self._lock:
            return [self._status(iid, run, True) for iid, run in self.runs.items() if iid.startswith(instance_id_prefix or "")]

    @staticmethod
    def _status(instance_id: str, run: Run, show_input: bool) -> DurableOrchestrationStatus:
        """What the extension answers for a run: runtime status, times, custom status, output when done, input when asked."""
        status: dict[str, Any] = {
            "name": ORCHESTRATOR,
            "instanceId": instance_id,
            "createdTime": SimClock.moment(run.arrived).isoformat(),
            "lastUpdatedTime": SimClock.moment(run.updated).isoformat(),
            "runtimeStatus": run.state,
        }
        if run.instance.custom_status is not None:
            status["customStatus"] = run.instance.custom_status
        if run.instance.done:
            status["output"] = run.instance.played.output
        if show_input:
            status["input"] = run.input
        return DurableOrchestrationStatus.from_json(status)

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        assert instance_id is not None
        assert orchestration_function_name == ORCHESTRATOR
        now = self.clock()
        name = run_input_of(client_input).incident.name
        started = SimClock.moment(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        instance = Instance(client_input, self._executor(name), instance_id=instance_id, started=started, pause=self.clock.sleep)
        run = Run(name, now, instance, client_input, updated=now)
        with self._lock:
            self.runs[instance_id] = run
            self.all_runs.append(run)
        self.started.append((orchestration_function_name, instance_id, client_input))
        self.pool.submit(self._play, run)
        return instance_id

    def _executor(self, incident: str) -> Callable[[str, dict[str, Any]], Any]:
        """The host's part for one run: execute the activity; note when the incident's first comment landed."""

        def run_activity(name: str, payload: dict[str, Any]) -> Any:
            result = execute(name, payload)
            if (
                name in (ACTIVITY_ENRICH, ACTIVITY_COMMENT)
                and incident not in self.commented
                and self.sentinel.comments(incident)
            ):
                self.commented[incident] = self.clock()
            return result

        return run_activity

    def _play(self, run: Run) -> None:
        with self._lock:
            run.state, run.updated = "Running", self.clock()
        try:
            run.instance.advance()
        finally:
            with self._lock:
                run.state, run.updated = run.instance.runtime_status, self.clock()

    def drain(self) -> None:
        self.pool.shutdown(wait=True)


@dataclass
class StormResult:
    """What the storm did, read back from the fakes and the runs."""

    incidents: int
    deliveries: int
    runs: int
    duplicates_suppressed: int
    la_requests: int
    throttled_busy: int
    throttled_rate: int
    retries: int
    activity_retries: int
    comments_written: int
    enrichments: dict[str, int]
    lost: list[str]
    times_to_comment: list[float]
    limits: la.LimitStats
    per_window: int
    simulated_seconds: float
    wall_seconds: float
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def duplicated(self) -> list[str]:
        return [name for name, count in self.enrichments.items() if count > 1]

    def percentile(self, fraction: float) -> float:
        """The `fraction` quantile of the times to comment (simulated seconds), nearest rank."""
        ordered = sorted(self.times_to_comment)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    @property
    def median(self) -> float:
        return statistics.median(self.times_to_comment) if self.times_to_comment else float("nan")


def _post(body: dict[str, Any], hub: StormHub, services: wiring.Services, now: datetime) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest(
        "POST", "https://app.example/api/incidents", headers={"Content-Type": "application/json"}, body=json.dumps(body).encode()
    )
    response = asyncio.run(receive_incident(request, hub, services=services, now=now))
    return response.status_code, json.loads(response.get_body())


def run_storm(
    database: Path,
    *,
    incidents: int,
    duplicates: int,
    span: float,
    scale: float,
    workers: int,
    seed: int = 11,
    per_window: int = 200,
) -> StormResult:
    """
    Drive the storm (see the module docstring) and read back what reached Sentinel and Log Analytics.
    `per_window` lowers the fake's 200 queries per 30 s, to make a machine too slow to reach the real
    limit meet one.
    """
    deliveries = schedule(incidents, duplicates, span, seed)
    con = duckdb.connect(str(database), read_only=True)
    with SentinelServer() as sentinel:
        for index in range(incidents):
            properties = trigger_body(index)["object"]["properties"]
            sentinel.add_incident(
                data.SUBSCRIPTION,
                data.RESOURCE_GROUP,
                data.WORKSPACE_NAME,
                incident_name(index),
                properties,
                data.ENTITIES if index % 2 == 0 else BOB_ONLY,
            )
        clock = SimClock(scale)
        limits = la.IdentityLimits(per_window=per_window, clock=clock, time_scale=scale)
        with la.LogAnalyticsServer(
            con, workspace_id=data.WORKSPACE_ID, functions=[WATCHLIST_FUNCTION], limits=limits
        ) as workspace:
            environ = {**ENVIRON, "REPLAY_LOGS_ENDPOINT": workspace.url, "REPLAY_CONTAINMENT_ENABLED": "false"}
            engine = LogAnalyticsEngine.create(
                Settings.from_values(environ),
                la.FakeCredential(),
                connection_verify=workspace.ca_path,
                retries=scaled_retries(scale),
            )

            def build_engine(_settings: Settings) -> QueryEngine:
                return engine

            def build_sentinel(settings: Settings) -> SentinelIncidents:
                return SentinelIncidents.create(
                    settings,
                    FakeCredential(),
                    endpoint=sentinel.url,
                    connection_verify=sentinel.ca_path,
                    retries=SENTINEL_RETRIES,
                )

            services = wiring.Services(environ, engine=build_engine, sentinel=build_sentinel)
            previous = wiring.install(services)
            hub = StormHub(clock, workers, sentinel)
            statuses: dict[int, int] = {}
            suppressed = 0
            wall = time.monotonic()
            try:
                for delivery in deliveries:
                    clock.sleep_until(delivery.at)
                    status, answer = _post(trigger_body(delivery.index), hub, services, SimClock.moment(clock()))
                    statuses[status] = statuses.get(status, 0) + 1
                    suppressed += bool(answer.get("duplicate"))
                hub.drain()
            finally:
                wiring.install(previous)
                engine.close()
            simulated, wall = clock(), time.monotonic() - wall
            answered = workspace.requests
            limit_stats = workspace.limit_stats
        comments = {incident_name(index): sentinel.comments(incident_name(index)) for index in range(incidents)}
    con.close()

    enrichments = {
        name: sum(ENRICHMENT_HEADING in str(comment.get("message", "")) for comment in found.values())
        for name, found in comments.items()
    }
    finished = {run.name for run in hub.all_runs if run.instance.done and not run.instance.played.failed and _succeeded(run)}
    lost = sorted(name for name, count in enrichments.items() if count == 0 or name not in finished)
    first_arrival = {incident_name(d.index): d.at for d in reversed(deliveries)}
    times = [at - first_arrival[name] for name, at in hub.commented.items()]
    enrich_calls = sum(1 for run in hub.all_runs for name in run.instance.played.names() if name == ACTIVITY_ENRICH)
    answered_ok = sum(1 for request in answered if request.status == 200)
    return StormResult(
        incidents=incidents,
        deliveries=len(deliveries),
        runs=len(hub.all_runs),
        duplicates_suppressed=suppressed,
        la_requests=len(answered),
        throttled_busy=limit_stats.refused_busy,
        throttled_rate=limit_stats.refused_rate,
        retries=len(answered) - answered_ok,
        activity_retries=enrich_calls - len(hub.all_runs),
        comments_written=sum(len(found) for found in comments.values()),
        enrichments=enrichments,
        lost=lost,
        times_to_comment=times,
        limits=limit_stats,
        per_window=per_window,
        simulated_seconds=simulated,
        wall_seconds=wall,
        statuses=statuses,
    )


def _succeeded(run: Run) -> bool:
    result = run_result_of(run.instance.played.output)
    return result is not None and result.outcome is not RunEnd.FAILED
