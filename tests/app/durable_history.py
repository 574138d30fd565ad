"""
Durable orchestration history, built the way the Durable extension sends it, and a tiny replay driver.

`History` appends one episode per activity (TaskScheduled, then TaskCompleted or TaskFailed); the
orchestrator is then called with the context JSON and answers its state (`isDone`, `actions`,
`output`). `drive` plays the extension's part for a whole run: it executes each newly scheduled
activity with a caller-given function (the real activity code, in the service tests) and feeds the
result back, until the orchestration is done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from playbooks.orchestrator import ORCHESTRATOR
from tests.app.indexed import functions

T0 = "2026-03-01T10:00:00.000000Z"


class History:
    """The history of one orchestration instance."""

    def __init__(self, orchestration_input: dict[str, Any], instance_id: str = "incident-test") -> None:
        self.input = json.dumps(orchestration_input)
        self.instance_id = instance_id
        self.events: list[dict[str, Any]] = [
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": T0},
            {
                "EventType": 0,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": T0,
                "Name": ORCHESTRATOR,
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
    orchestrator = functions()[ORCHESTRATOR].get_user_function()
    return json.loads(orchestrator(history.context()))  # type: ignore[no-any-return]


def drive(
    orchestration_input: dict[str, Any], execute: Callable[[str, dict[str, Any]], Any], *, limit: int = 20
) -> tuple[dict[str, Any], list[str]]:
    """Run an orchestration to the end; returns its output and the activities it called, in order."""
    history = History(orchestration_input)
    called: list[str] = []
    for _ in range(limit):
        state = run(history)
        if state["isDone"]:
            return state["output"], called
        actions = [a for episode in state["actions"] for a in episode]
        for action in actions[history.scheduled :]:
            name, payload = action["functionName"], json.loads(action["input"])
            called.append(name)
            try:
                history.completed(name, execute(name, payload))
            except Exception as error:
                history.failed(name, f"{type(error).__name__}: {error}")
    msg = f"the orchestration did not finish in {limit} episodes"
    raise AssertionError(msg)
