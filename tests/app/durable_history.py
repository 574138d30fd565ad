"""
Durable orchestration history, built the way the Durable extension sends it, and a small replay driver.

`History` appends one episode per activity (TaskScheduled, then TaskCompleted or TaskFailed); the
orchestrator is then called with the context JSON and answers its state (`isDone`, `actions`,
`output`), or raises when the orchestration failed (its runtime status becomes Failed).

`Instance` plays the extension's part for one orchestration instance, step by step: it executes each
newly scheduled activity and sub-orchestration with a caller-given function (the real activity code,
in the service tests) and feeds the result back; an activity scheduled with retry options that
raises is retried as the extension does (TaskFailed, a retry timer, TaskScheduled again) up to its
`maxNumberOfAttempts` (the retry interval passes at once, or through a caller-given `pause`, which
a benchmark uses to let it pass on its own clock); a timer the orchestration waits on alone (a
back-off) fires at once, while a timer it races against external events (a deadline) fires only
when told. `advance` runs until the
orchestration is done or waits on nothing but events and deadlines; `raise_event` and `fire_timers`
deliver the next happening, and `status` answers what the Durable client would (runtime status and
custom status), so the approval bot can be pointed at a live orchestration.

`play` drives an `Instance` through a script of happenings; `drive` runs an orchestration that
waits on nothing but its steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playbooks.domain.workflow import INCIDENT_ORCHESTRATOR
from tests.app.indexed import functions

T0 = "2026-03-01T10:00:00.000000Z"
ORCHESTRATOR = INCIDENT_ORCHESTRATOR


class History:
    """The history of one orchestration instance."""

    def __init__(
        self,
        orchestration_input: dict[str, Any],
        instance_id: str = "incident-test",
        orchestrator: str = ORCHESTRATOR,
        *,
        started: str = T0,
    ) -> None:
        self.input = json.dumps(orchestration_input)
        self.started = started
        self.instance_id = instance_id
        self.orchestrator = orchestrator
        self.events: list[dict[str, Any]] = [
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": started},
            {
                "EventType": 0,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": started,
                "Name": orchestrator,
                "Input": self.input,
                "Version": "",
            },
        ]
        self.scheduled = 0

    def _episode(self, name: str, outcome: dict[str, Any]) -> None:
        task_id = self.scheduled
        self.scheduled += 1
        for event in self.events:
            event["IsPlayed"] = True
        self.events += [
            {"EventType": 4, "EventId": task_id, "IsPlayed": False, "Timestamp": self.started, "Name": name},
            {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": self.started},
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": self.started},
            {"EventId": -1, "IsPlayed": False, "Timestamp": self.started, "TaskScheduledId": task_id, **outcome},
        ]

    def completed(self, name: str, result: Any) -> History:
        self._episode(name, {"EventType": 5, "Result": json.dumps(result)})
        return self

    def failed(self, name: str, reason: str, *, attempts: int | None = None) -> History:
        """
        The activity failed on every attempt its retry options allow (`steps.ACTIVITY_RETRY`): each
        attempt's TaskFailed and the extension's retry timer after it, so the orchestrator sees the error.
        """
        from playbooks.functions.steps import ACTIVITY_RETRY

        task_id = self.scheduled
        stamp = {"EventId": -1, "IsPlayed": False, "Timestamp": self.started}
        for event in self.events:
            event["IsPlayed"] = True
        self.events += [
            {**stamp, "EventType": 4, "EventId": task_id, "Name": name},
            {**stamp, "EventType": 13},
            {**stamp, "EventType": 12},
        ]
        for attempt in range(1, (attempts or ACTIVITY_RETRY.max_number_of_attempts) + 1):
            timer = task_id + 1
            self.events += [
                {**stamp, "EventType": 6, "TaskScheduledId": task_id, "Reason": reason, "Details": "Traceback ..."},
                {**stamp, "EventType": 10, "EventId": timer, "FireAt": self.started},
                {**stamp, "EventType": 11, "TimerId": timer, "FireAt": self.started},
            ]
            task_id = timer + 1
            if attempt < (attempts or ACTIVITY_RETRY.max_number_of_attempts):
                self.events.append({**stamp, "EventType": 4, "EventId": task_id, "Name": name})
        self.scheduled = task_id
        return self

    def episode(self, sent: list[dict[str, Any]], received: list[dict[str, Any]]) -> History:
        """One round trip: what the orchestrator scheduled (already carrying their EventIds), then what came back."""
        for event in self.events:
            event["IsPlayed"] = True
        stamp = {"EventId": -1, "IsPlayed": False, "Timestamp": self.started}
        self.events += [
            *({**stamp, **event} for event in sent),
            {**stamp, "EventType": 13},
            {**stamp, "EventType": 12},
            *({**stamp, **event} for event in received),
        ]
        return self

    def context(self) -> str:
        return json.dumps(
            {
                "history": self.events,
                "instanceId": self.instance_id,
                "isReplaying": False,
                "parentInstanceId": None,
                "input": self.input,
                "upperSchemaVersion": 2,
            }
        )


class OrchestrationFailed(Exception):
    """The orchestrator raised: Durable records the instance as Failed, with the error as its output."""

    def __init__(self, error: str, state: dict[str, Any]) -> None:
        super().__init__(error)
        self.error = error
        self.state = state


def run(history: History) -> dict[str, Any]:
    """One orchestrator invocation over `history`: its state JSON, parsed; `OrchestrationFailed` when it raised."""
    orchestrator = functions()[history.orchestrator].get_user_function()
    try:
        return json.loads(orchestrator(history.context()))  # type: ignore[no-any-return]
    except Exception as raised:
        message, found, state = str(raised).partition("\n\n$OutOfProcData$:")
        if not found:
            raise
        parsed = json.loads(state)
        raise OrchestrationFailed(str(parsed.get("error") or message), parsed) from raised


def atomic_actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action of the state in order, compound actions (task_any / task_all) opened up."""
    return [action for action, _raced in _actions(state)]


def _actions(state: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """Every action in order, each with whether it is raced against an external event (a deadline timer)."""
    flat: list[tuple[dict[str, Any], bool]] = []

    def add(action: dict[str, Any], raced: bool) -> None:
        if "compoundActions" in action:
            children = action["compoundActions"]
            racing = raced or any(child.get("actionType") == WAIT_FOR_EVENT for child in children)
            for child in children:
                add(child, racing)
        else:
            flat.append((action, raced))

    for episode in state["actions"]:
        for action in episode:
            add(action, False)
    return flat


CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR, CREATE_TIMER, WAIT_FOR_EVENT = 0, 1, 2, 5, 6
#: A scripted happening: `("event", name, payload)` raises an event, `("timeout",)` fires the pending timers.
Happening = tuple[Any, ...]


@dataclass
class Played:
    """
    The end of a scripted run: the output (or, for a Failed instance, the error Durable keeps as its
    output), the steps taken, the custom statuses published, what was left of the script.
    """

    output: Any
    called: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    unused: list[Happening] = field(default_factory=list)
    failed: bool = False
    error: str = ""

    def names(self) -> list[str]:
        return [name for name, _ in self.called]


class Instance:
    """One orchestration instance, played step by step as the Durable extension would (see the module docstring)."""

    def __init__(
        self,
        orchestration_input: dict[str, Any],
        execute: Callable[[str, dict[str, Any]], Any],
        *,
        orchestrator: str = ORCHESTRATOR,
        instance_id: str = "incident-test",
        started: str = T0,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        self.history = History(orchestration_input, instance_id, orchestrator, started=started)
        self.execute = execute
        self.pause = pause
        self.played = Played(None)
        self.custom_status: Any = None
        self.done = False
        self._seen = 0
        self._next_id = 0
        self._deadlines: dict[int, str] = {}
        self._received: list[dict[str, Any]] = []

    @property
    def runtime_status(self) -> str:
        if not self.done:
            return "Running"
        return "Failed" if self.played.failed else "Completed"

    def raise_event(self, name: str, payload: Any) -> None:
        """Deliver an external event (as `client.raise_event` does); `advance` plays it."""
        if not self.done:
            self._received.append({"EventType": 15, "Name": name, "Input": json.dumps(payload)})

    def fire_timers(self) -> None:
        """Fire the deadline timers the orchestration races against its events."""
        self._received += [
            {"EventType": 11, "TimerId": task_id, "FireAt": fire_at} for task_id, fire_at in self._deadlines.items()
        ]
        self._deadlines.clear()

    def advance(self, limit: int = 80) -> None:
        """Play episodes until the orchestration is done or waits on nothing but events and deadlines."""
        for _ in range(limit):
            try:
                state = run(self.history)
            except OrchestrationFailed as failed:
                self.done, self.played.failed, self.played.error = True, True, failed.error
                self.played.output = failed.error
                return
            self.custom_status = state.get("customStatus")
            self.played.statuses.append(self.custom_status)
            if state["isDone"]:
                self.done, self.played.output = True, state["output"]
                return
            actions = _actions(state)
            sent: list[dict[str, Any]] = []
            received, self._received = self._received, []
            for action, raced in actions[self._seen :]:
                self._schedule(action, raced, sent, received)
            self._seen = len(actions)
            if not sent and not received:
                return
            self.history.episode(sent, received)
        msg = f"the orchestration did not finish in {limit} episodes"
        raise AssertionError(msg)

    def _take_id(self) -> int:
        task_id, self._next_id = self._next_id, self._next_id + 1
        return task_id

    def _schedule(self, action: dict[str, Any], raced: bool, sent: list[dict[str, Any]], received: list[dict[str, Any]]) -> None:
        kind = action["actionType"]
        if kind == WAIT_FOR_EVENT:
            return
        if kind == CREATE_TIMER:
            task_id = self._take_id()
            sent.append({"EventType": 10, "EventId": task_id, "FireAt": action["fireAt"]})
            if action.get("isCanceled"):
                return
            if raced:
                self._deadlines[task_id] = action["fireAt"]
            else:  # a back-off the orchestration waits on alone: it passes at once
                received.append({"EventType": 11, "TimerId": task_id, "FireAt": action["fireAt"]})
            return
        name, payload = action["functionName"], json.loads(action["input"]) if action.get("input") else None
        attempts = action.get("retryOptions", {}).get("maxNumberOfAttempts", 1) if kind == CALL_ACTIVITY_WITH_RETRY else 1
        activity = kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY)
        task_id = self._take_id()
        sent.append({"EventType": 4 if activity else 7, "EventId": task_id, "Name": name, "InstanceId": action.get("instanceId")})
        for attempt in range(1, attempts + 1):
            self.played.called.append((name, payload))
            try:
                received.append(
                    {
                        "EventType": 5 if activity else 8,
                        "TaskScheduledId": task_id,
                        "Result": json.dumps(self.execute(name, payload)),
                    }
                )
                return
            except Exception as error:
                received.append(
                    {
                        "EventType": 6 if activity else 9,
                        "TaskScheduledId": task_id,
                        "Reason": f"{type(error).__name__}: {error}",
                        "Details": "",
                    }
                )
            if kind != CALL_ACTIVITY_WITH_RETRY:
                return
            timer = self._take_id()  # the extension's retry timer, also after the last attempt
            received += [
                {"EventType": 10, "EventId": timer, "FireAt": self.history.started},
                {"EventType": 11, "TimerId": timer, "FireAt": self.history.started},
            ]
            if attempt < attempts:
                if self.pause is not None:
                    self.pause(_retry_interval(action["retryOptions"], attempt))
                task_id = self._take_id()
                received.append({"EventType": 4, "EventId": task_id, "Name": name})


def _retry_interval(options: dict[str, Any], failed_attempts: int) -> float:
    """Seconds the extension waits after the `failed_attempts`-th failure: the first interval grown by the coefficient, capped."""
    seconds = options["firstRetryIntervalInMilliseconds"] / 1000 * options.get("backoffCoefficient", 1) ** (failed_attempts - 1)
    cap = options.get("maxRetryIntervalInMilliseconds")
    return float(min(seconds, cap / 1000) if cap else seconds)


def play(
    orchestration_input: dict[str, Any],
    execute: Callable[[str, dict[str, Any]], Any],
    script: list[Happening],
    *,
    orchestrator: str = ORCHESTRATOR,
    instance_id: str = "incident-test",
    started: str = T0,
) -> Played:
    """
    Run an orchestration to its end as the Durable extension would: activities and sub-orchestrations
    are executed by `execute(name, input)` (a raise becomes a failure, retried when the activity was
    scheduled with retry options), back-off timers pass, and whenever the orchestration waits on
    nothing else the next scripted happening is delivered.
    """
    instance = Instance(orchestration_input, execute, orchestrator=orchestrator, instance_id=instance_id, started=started)
    script = list(script)
    while True:
        instance.advance()
        if instance.done:
            instance.played.unused = script
            return instance.played
        if not script:
            msg = "the orchestration waits for something the script does not provide"
            raise AssertionError(msg)
        happening = script.pop(0)
        if happening[0] == "event":
            instance.raise_event(happening[1], happening[2])
        else:
            instance.fire_timers()


def drive(
    orchestration_input: dict[str, Any], execute: Callable[[str, dict[str, Any]], Any], *, started: str = T0
) -> tuple[Any, list[str]]:
    """
    Run an orchestration that waits on nothing but its steps to the end; its output (or, for a Failed
    run, the error Durable keeps as its output) and the steps called, in order. `started` is the run's
    start (a later delivery of the incident is a later run).
    """
    played = play(orchestration_input, execute, [], started=started)
    return played.output, played.names()
