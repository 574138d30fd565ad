"""
Durable orchestration history, built the way the Durable extension sends it, and a tiny replay driver.

`History` appends one episode per activity (TaskScheduled, then TaskCompleted or TaskFailed); the
orchestrator is then called with the context JSON and answers its state (`isDone`, `actions`,
`output`). `drive` plays the extension's part for a whole run: it executes each newly scheduled
activity with a caller-given function (the real activity code, in the service tests) and feeds the
result back, until the orchestration is done. `play` does the same for orchestrations that also
create timers, call sub-orchestrations and wait for external events: when the orchestration waits
on nothing but timers and events, the next scripted happening (an event raised, or the timers
firing) is delivered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playbooks.functions.orchestrator import ORCHESTRATOR
from tests.app.indexed import functions

T0 = "2026-03-01T10:00:00.000000Z"


class History:
    """The history of one orchestration instance."""

    def __init__(
        self, orchestration_input: dict[str, Any], instance_id: str = "incident-test", orchestrator: str = ORCHESTRATOR
    ) -> None:
        self.input = json.dumps(orchestration_input)
        self.instance_id = instance_id
        self.orchestrator = orchestrator
        self.events: list[dict[str, Any]] = [
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": T0},
            {
                "EventType": 0,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": T0,
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
            {"EventType": 4, "EventId": task_id, "IsPlayed": False, "Timestamp": T0, "Name": name},
            {"EventType": 13, "EventId": -1, "IsPlayed": False, "Timestamp": T0},
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": T0},
            {"EventId": -1, "IsPlayed": False, "Timestamp": T0, "TaskScheduledId": task_id, **outcome},
        ]

    def completed(self, name: str, result: Any) -> History:
        self._episode(name, {"EventType": 5, "Result": json.dumps(result)})
        return self

    def failed(self, name: str, reason: str) -> History:
        self._episode(name, {"EventType": 6, "Reason": reason, "Details": "Traceback ..."})
        return self

    def episode(self, sent: list[dict[str, Any]], received: list[dict[str, Any]]) -> History:
        """One round trip: what the orchestrator scheduled (already carrying their EventIds), then what came back."""
        for event in self.events:
            event["IsPlayed"] = True
        stamp = {"EventId": -1, "IsPlayed": False, "Timestamp": T0}
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


def run(history: History) -> dict[str, Any]:
    """One orchestrator invocation over `history`: its state JSON, parsed."""
    orchestrator = functions()[history.orchestrator].get_user_function()
    return json.loads(orchestrator(history.context()))  # type: ignore[no-any-return]


def atomic_actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action of the state in order, compound actions (task_any / task_all) opened up."""
    flat: list[dict[str, Any]] = []

    def add(action: dict[str, Any]) -> None:
        if "compoundActions" in action:
            for child in action["compoundActions"]:
                add(child)
        else:
            flat.append(action)

    for episode in state["actions"]:
        for action in episode:
            add(action)
    return flat


CALL_ACTIVITY, CALL_SUB_ORCHESTRATOR, CREATE_TIMER, WAIT_FOR_EVENT = 0, 2, 5, 6
#: A scripted happening: `("event", name, payload)` raises an event, `("timeout",)` fires the pending timers.
Happening = tuple[Any, ...]


@dataclass
class Played:
    """The end of a scripted run: the output, the steps taken, the custom statuses published, what was left of the script."""

    output: Any
    called: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    unused: list[Happening] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.called]


def play(
    orchestration_input: dict[str, Any],
    execute: Callable[[str, dict[str, Any]], Any],
    script: list[Happening],
    *,
    orchestrator: str = ORCHESTRATOR,
    instance_id: str = "incident-test",
    limit: int = 60,
) -> Played:
    """
    Run an orchestration to its end as the Durable extension would: activities and sub-orchestrations
    are executed by `execute(name, input)` (a raise becomes a failure), timers wait, and whenever the
    orchestration waits on nothing else the next scripted happening is delivered.
    """
    history = History(orchestration_input, instance_id, orchestrator)
    played = Played(None)
    seen, next_id = 0, 0
    timers: dict[int, str] = {}
    script = list(script)
    for _ in range(limit):
        state = run(history)
        played.statuses.append(state.get("customStatus"))
        if state["isDone"]:
            played.output, played.unused = state["output"], script
            return played
        actions = atomic_actions(state)
        sent: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        for action in actions[seen:]:
            kind = action["actionType"]
            if kind == WAIT_FOR_EVENT:
                continue
            task_id, next_id = next_id, next_id + 1
            if kind == CREATE_TIMER:
                timers[task_id] = action["fireAt"]
                sent.append({"EventType": 10, "EventId": task_id, "FireAt": action["fireAt"]})
                continue
            name, payload = action["functionName"], json.loads(action["input"]) if action.get("input") else None
            played.called.append((name, payload))
            created = 4 if kind == CALL_ACTIVITY else 7
            sent.append({"EventType": created, "EventId": task_id, "Name": name, "InstanceId": action.get("instanceId")})
            try:
                received.append(
                    {
                        "EventType": 5 if kind == CALL_ACTIVITY else 8,
                        "TaskScheduledId": task_id,
                        "Result": json.dumps(execute(name, payload)),
                    }
                )
            except Exception as error:
                received.append(
                    {
                        "EventType": 6 if kind == CALL_ACTIVITY else 9,
                        "TaskScheduledId": task_id,
                        "Reason": f"{type(error).__name__}: {error}",
                        "Details": "",
                    }
                )
        seen = len(actions)
        if not received:
            if not script:
                msg = "the orchestration waits for something the script does not provide"
                raise AssertionError(msg)
            happening = script.pop(0)
            if happening[0] == "event":
                received.append({"EventType": 15, "Name": happening[1], "Input": json.dumps(happening[2])})
            else:
                received += [{"EventType": 11, "TimerId": task_id, "FireAt": fire_at} for task_id, fire_at in timers.items()]
                timers.clear()
        history.episode(sent, received)
    msg = f"the orchestration did not finish in {limit} episodes"
    raise AssertionError(msg)


def drive(
    orchestration_input: dict[str, Any], execute: Callable[[str, dict[str, Any]], Any], *, limit: int = 20
) -> tuple[dict[str, Any], list[str]]:
    """Run an orchestration that waits on nothing but its steps to the end; its output and the steps called, in order."""
    played = play(orchestration_input, execute, [], limit=limit)
    return played.output, played.names()
