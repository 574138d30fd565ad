"""
What a delivery of an incident asks for, given the runs the incident already had: a run, a
follow-up for alerts added since, a duplicate, or "come back later".

Sentinel delivers an incident when it is created and again when alerts are added to it (the Defender
portal's correlation merges new alerts into open incidents), and the Logic App retries. The incident's
first run is `incident-<id>`; alerts added while it runs or within `DUPLICATE_WINDOW` after it
succeeded are enriched by a follow-up run named after the alert set it covers
(`incident-<id>:alerts-<sha256 of the sorted ids>[:16]`), so the same alert set delivered again is a
duplicate of that follow-up, never a third run.

Pure functions over values the HTTP starter reads from the Durable client (`RunSeen`); the alert ids
come from the delivered body (`alert_ids`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from playbooks.domain.incident import SentinelIncident
from playbooks.domain.workflow import EarlierRequest, FollowUp, IncidentRunInput

#: Most alert ids kept from one delivery: Sentinel groups at most 150 alerts into one incident.
MAX_ALERT_IDS = 150
#: An alert id as Sentinel and Defender write them (GUIDs, `da638...`, `2516950546359999999_bd8e...`).
_ALERT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: The follow-up instance ids of one incident's first run `iid` (never its approvals' sub-orchestrations).
FOLLOW_UP_SUFFIX = re.compile(r"^:alerts-[0-9a-f]{16}$")


def alert_ids(body: object) -> tuple[str, ...]:
    """
    The ids of the alerts the delivered incident carries (`properties.alerts[]`, any key case: each
    alert's `properties.systemAlertId`, else its `name`), lower-case, sorted, at most `MAX_ALERT_IDS`.

    Incidents of the Defender portal often arrive with an empty `alerts` list: then there is nothing
    to compare and the delivery is decided as it always was (a duplicate within the window).
    """
    resource = body.get("object", body) if isinstance(body, Mapping) else None
    properties = resource.get("properties") if isinstance(resource, Mapping) else None
    if not isinstance(properties, Mapping):
        return ()
    alerts = next((v for k, v in properties.items() if str(k).lower() == "alerts"), None)
    if not isinstance(alerts, list):
        return ()
    found: set[str] = set()
    for alert in alerts:
        if not isinstance(alert, Mapping):
            continue
        inner = alert.get("properties")
        system = inner.get("systemAlertId") if isinstance(inner, Mapping) else None
        for candidate in (system, alert.get("name")):
            if isinstance(candidate, str) and _ALERT_ID.fullmatch(candidate.strip()):
                found.add(candidate.strip().lower())
                break
    return tuple(sorted(found)[:MAX_ALERT_IDS])


def follow_up_id(first_run: str, covered: Sequence[str]) -> str:
    """The instance id of the follow-up that covers the alert set `covered` (order and repeats do not matter)."""
    digest = hashlib.sha256("\n".join(sorted(set(covered))).encode("utf-8")).hexdigest()
    return f"{first_run}:alerts-{digest[:16]}"


def is_follow_up(first_run: str, instance_id: str) -> bool:
    """Whether `instance_id` is a follow-up of the incident whose first run is `first_run`."""
    return instance_id.startswith(first_run) and bool(FOLLOW_UP_SUFFIX.fullmatch(instance_id[len(first_run) :]))


@dataclass(frozen=True, slots=True)
class RunSeen:
    """
    One run of the incident, as the Durable client reports it.

    `duplicate` is why it makes a delivery a duplicate (it runs, or succeeded within the window),
    None when it no longer counts (failed, terminated, older, absent). `alert_ids` are the alerts it
    covers (None when it does not say); `enriched` whether its enrichment is done, so its approvals
    (`requests`: those still waiting or decided) are known.
    """

    instance_id: str
    duplicate: str | None
    alert_ids: frozenset[str] | None = None
    enriched: bool = True
    requests: tuple[EarlierRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class Start:
    """Start (or run again) `instance_id` with `run_input`."""

    instance_id: str
    run_input: IncidentRunInput


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Nothing to start: `instance_id` covers this delivery, for `reason`."""

    instance_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Later:
    """New alerts, but an earlier run's approvals are not known yet: deliver again shortly."""

    instance_id: str
    reason: str


Delivery = Start | Duplicate | Later


def decide(incident: SentinelIncident, delivered: Sequence[str], first: RunSeen, follow_ups: Sequence[RunSeen] = ()) -> Delivery:
    """
    What this delivery (the incident as it is now, with the alert ids `delivered`) asks for.

    * The first run does not count (absent, failed, terminated, older than the window): it runs again
      with the whole incident, as it always did.
    * Every alert delivered is covered by a run that counts: a duplicate of that run.
    * New alerts: the follow-up named after every alert covered so far plus these, unless it already
      runs or succeeded (a duplicate of it), or a run that counts has not finished its enrichment
      (its approvals are unknown, so a follow-up could ask twice): `Later`.

    Every run started carries the approvals the runs that count asked for and still wait on or
    decided (`earlier_requests`), so the same plan never gets a second card.
    """
    active = [run for run in (first, *follow_ups) if run.duplicate is not None]
    requests = _requests(active)
    if first.duplicate is None:
        return Start(first.instance_id, IncidentRunInput(incident, tuple(delivered), None, requests))
    covered = frozenset().union(*(run.alert_ids or frozenset() for run in active))
    new = sorted(set(delivered) - covered)
    if not new:
        holder = next((run for run in reversed(active) if run.alert_ids is not None and set(delivered) <= run.alert_ids), first)
        return Duplicate(holder.instance_id, holder.duplicate or "")
    everything = sorted(covered | set(delivered))
    target = follow_up_id(first.instance_id, everything)
    same = next((run for run in follow_ups if run.instance_id == target), None)
    if same is not None and same.duplicate is not None:
        return Duplicate(same.instance_id, same.duplicate)
    busy = next((run for run in active if not run.enriched), None)
    if busy is not None:
        return Later(
            busy.instance_id,
            f"{len(new)} new alert(s), but the run {busy.instance_id} is still enriching this incident; "
            "deliver it again in a minute, once that run's approvals are known",
        )
    follow_up = FollowUp(tuple(new), tuple(run.instance_id for run in active))
    return Start(target, IncidentRunInput(incident, tuple(everything), follow_up, requests))


def _requests(runs: Sequence[RunSeen]) -> tuple[EarlierRequest, ...]:
    """The approvals of `runs`, each plan once, in order."""
    seen: dict[str, EarlierRequest] = {}
    for run in runs:
        for request in run.requests:
            seen.setdefault(request.plan_digest, request)
    return tuple(seen.values())
