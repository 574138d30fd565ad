"""
The Durable Functions client, as the approval bot uses it: read an approval's state, raise its events.

The client binding of the bot's HTTP function (`df.DurableOrchestrationClient`) is wrapped per
request. What the orchestration publishes (its custom status) is read through the workflow contract
(`playbooks.domain.approval.approval_state`), and events go out encoded by the one codec, so the bot
and the orchestration can never disagree on a key.

The client raises bare `Exception` for any answer it did not expect (404, 410) and aiohttp's errors
when the host does not answer: the first is a request that is gone, the second is worth a retry.
"""

from __future__ import annotations

from typing import Any

from common.errors import TransientUpstreamError, UpstreamError
from playbooks.domain import codec
from playbooks.domain.approval import ApprovalState, approval_state
from playbooks.domain.workflow import APPROVAL_EVENT, ATTEMPT_EVENT, ApprovalAttempt, ApprovalDecision

SERVICE = "Durable Functions"


class DurableOrchestrations:
    """The bot's `Orchestrations` port over the Durable Functions client binding."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def approval_state(self, instance_id: str) -> ApprovalState:
        try:
            status = await self._client.get_status(instance_id)
        except Exception as error:  # the durable client raises bare Exception for unexpected statuses
            msg = f"cannot read the status of {instance_id}: {error}"
            raise TransientUpstreamError(SERVICE, msg) from error
        runtime = getattr(status, "runtime_status", None) if status else None
        custom = getattr(status, "custom_status", None) if status else None
        return approval_state(None if runtime is None else str(getattr(runtime, "value", runtime)), custom)

    async def raise_decision(self, instance_id: str, decision: ApprovalDecision) -> None:
        await self._raise(instance_id, APPROVAL_EVENT, decision)

    async def raise_attempt(self, instance_id: str, attempt: ApprovalAttempt) -> None:
        await self._raise(instance_id, ATTEMPT_EVENT, attempt)

    async def _raise(self, instance_id: str, event: str, payload: ApprovalDecision | ApprovalAttempt) -> None:
        import aiohttp

        try:
            await self._client.raise_event(instance_id, event, codec.encode(payload))
        except (aiohttp.ClientError, TimeoutError) as error:  # the host did not answer: worth a retry
            msg = f"cannot reach the Durable host to deliver the {event} event to {instance_id}: {error}"
            raise TransientUpstreamError(SERVICE, msg) from error
        except Exception as error:  # 404 / 410 arrive as bare Exception with the host's words
            msg = f"cannot deliver the {event} event to {instance_id}: {error}"
            raise UpstreamError(SERVICE, msg, hint="the request may have finished or been purged") from error
