"""
How the orchestrations and their activities talk through Durable: one activity wrapper, one typed call.

The binding stays JSON: the Functions worker refuses a builtin generic (`types.GenericAlias`) as a
binding annotation and would drop the function, so an activity is declared as
`(payload: Payload, context: func.Context) -> Payload` with `Payload = typing.Dict[str, Any]`. The
contract is decoded at the edge, here:

* `Step` names one activity with its input and output types; `Step.run` is the body of every
  activity function: decode the input, run the work, turn our errors into a `Failure` value (with
  what was being done and what to check), log the one summary line of the invocation, and answer
  the encoded activity result. A defect (any other exception) is logged on the same line and
  raised, so Durable records it.
* `call` is how an orchestrator schedules a `Step`: it encodes the input and reads the answer back
  as the typed output or a `Failure`; a raise (a defect, or the host giving up) and an unreadable
  answer become a `Failure` too, so an orchestrator never handles a bare dict.

Retries: a `Failure` that is `transient` (throttling, 5xx, timeouts, conflicts: what is still failing
after the call's own retry owner, azure-core, kiota or tenacity, gave up) is raised as
`TransientStepError` instead of answered, so Durable's retry options (`ACTIVITY_RETRY`) run the
activity again later, on a durable timer that holds no worker. When the attempts are spent, `call`
reads the `Failure` back out of the error Durable hands the orchestrator. Everything else is answered
at once: a refusal, a missing role or bad input does not get better by waiting.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import typing
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import azure.durable_functions as df
import azure.functions as func
import structlog

from common.errors import InputError, ReplayError
from common.logs import get_logger
from playbooks.domain import codec
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.workflow import Failure, activity_result, read_activity_result

#: What an activity takes and returns. `typing.Dict`, not `dict[...]`: the Functions worker refuses
#: a builtin generic (`types.GenericAlias`) as a binding annotation and would drop the function.
Payload = typing.Dict[str, Any]  # noqa: UP006

T = TypeVar("T")

_log = get_logger("activity")

HINT_BUG = "report this with the Function App's logs"

#: Durable's retry of an activity that failed transiently: 4 attempts, a minute apart (the extension's
#: default backoff coefficient is 1). Inside each attempt the call's own retry owner has already
#: retried the blips of a few seconds; this covers a service that is down or throttling for minutes.
ACTIVITY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=60_000, max_number_of_attempts=4)


class TransientStepError(Exception):
    """
    An activity's transient failure, raised so that Durable retries the activity. The message
    carries the `Failure` as JSON after `MARKER`, because the message is all of it that reaches the
    orchestrator once the retries are spent.
    """

    MARKER = "transient failure: "

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        super().__init__(self.MARKER + codec.dumps(failure))


def failure_of(step_name: str, error: BaseException) -> Failure:
    """The `Failure` behind an activity error Durable handed the orchestrator: ours when it carries one, else a defect."""
    text = str(error)
    at = text.find(TransientStepError.MARKER)
    if at >= 0:
        try:
            found, _end = json.JSONDecoder().raw_decode(text[at + len(TransientStepError.MARKER) :])
            return codec.decode(Failure, found)
        except (ValueError, InputError):
            pass
    return Failure(f"run the {step_name} step", text.strip()[:500], HINT_BUG, "bug")


class StepInput(Protocol):
    """Every activity input names the incident it serves (for the summary line)."""

    @property
    def incident(self) -> SentinelIncident: ...


I = TypeVar("I", bound=StepInput)  # noqa: E741 - the conventional name of an input type variable
O = TypeVar("O")  # noqa: E741 - and of an output type variable


def _ids(value: StepInput | None) -> dict[str, Any]:
    if value is None:
        return {}
    ids: dict[str, Any] = {"incident": value.incident.number, "incident_id": value.incident.name}
    approval = getattr(value, "instance_id", None)
    if isinstance(approval, str):
        ids["approval"] = approval
    return ids


@dataclass(frozen=True, slots=True)
class Step(Generic[I, O]):
    """
    One activity of the workflow: its function name, what it does (for a `Failure`), its input and
    output types. The orchestrators `call` it; its trigger function `run`s it.
    """

    name: str
    what: str
    input_type: type[I]
    output_type: type[O]

    async def run(
        self, payload: object, context: func.Context, body: Callable[[I], Awaitable[O | Failure]] | Callable[[I], O | Failure]
    ) -> Payload:
        """
        Decode `payload`, run `body`, and answer its result (or the `Failure` of `what`).

        A coroutine function is awaited; a plain function (the Sentinel adapter and the query engines
        block) runs in a worker thread. `body` may also return a `Failure` itself, when one activity
        does two things that fail differently. One summary line per invocation: activity,
        invocation, incident, outcome, time.
        """
        started = time.monotonic()
        value: I | None = None
        with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
            try:
                value = codec.decode(self.input_type, payload)
                if inspect.iscoroutinefunction(body):
                    result: object = await body(value)
                else:
                    result = await asyncio.to_thread(body, value)
            except ReplayError as error:
                result = Failure.from_error(self.what, error)
            except Exception as error:
                self._done(context, value, started, outcome="error", failure=f"{type(error).__name__}: {str(error)[:300]}")
                raise
            failure = result if isinstance(result, Failure) else None
            if failure is not None and failure.transient:
                self._done(context, value, started, outcome="retry", failure=failure.error, hint=failure.hint)
                raise TransientStepError(failure)
            self._done(
                context,
                value,
                started,
                outcome="failed" if failure else "ok",
                failure=failure.error if failure else None,
                hint=failure.hint if failure else None,
            )
            return activity_result(result)

    def _done(self, context: func.Context, value: StepInput | None, started: float, **outcome: Any) -> None:
        _log.info(
            "activity_done",
            activity=self.name,
            invocation_id=context.invocation_id,
            **_ids(value),
            **outcome,
            ms=round((time.monotonic() - started) * 1000),
        )


def call(context: df.DurableOrchestrationContext, step: Step[I, O], payload: I) -> Generator[Any, Any, O | Failure]:
    """Schedule `step` with `payload` (retried by Durable while it fails transiently); its typed answer, or a `Failure`."""
    try:
        raw = yield context.call_activity_with_retry(step.name, ACTIVITY_RETRY, codec.encode(payload))
    except Exception as error:
        return failure_of(step.name, error)
    try:
        return read_activity_result(step.output_type, raw)
    except InputError as error:
        return Failure(f"run the {step.name} step", f"the step answered something unreadable: {error}", HINT_BUG, "bug")
