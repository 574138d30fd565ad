"""
One bounded azure-core retry policy for every adapter whose HTTP retries azure-core owns.

azure-core's `RetryPolicy` honours any `Retry-After` it is sent, however long: a throttled ARM or
Log Analytics call could hold a Functions worker for an hour. The adapters (Log Analytics, Sentinel)
need the same two corrections, so they live here once:

* a `Retry-After` longer than `retry_after_max` is not slept: the response is returned as it is,
  and the adapter surfaces it as a `TransientUpstreamError` so the caller reschedules the whole
  operation instead of blocking;
* a `Retry-After` azure-core cannot parse (neither seconds nor an HTTP date) counts as absent
  instead of raising from inside the pipeline.

An adapter adds its own refusals through `extra_no_retry` (Log Analytics refuses to re-run a query
that timed out on the server, 504). Which failures azure-core retries at all, and who retries the
rest, is each adapter's decision and is written in its module docstring. azure-core is imported
when a policy is built, never at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

#: `(status code, Retry-After in seconds or None) -> True` when azure-core must not retry.
NoRetry = Callable[[int, float | None], bool]


def bounded_retry_policy(
    *,
    total: int,
    backoff_factor: float,
    backoff_max: float,
    retry_after_max: float,
    extra_no_retry: NoRetry | None = None,
    **options: Any,
) -> Any:
    """
    azure-core's `RetryPolicy` with `total` retries, exponential backoff capped at `backoff_max`,
    and the corrections in the module docstring. `options` go to `RetryPolicy` unchanged
    (`retry_on_status_codes`, ...).
    """
    if total < 0 or min(backoff_factor, backoff_max, retry_after_max) < 0:
        msg = "retry bounds must not be negative"
        raise ValueError(msg)
    policy_class = _policy_class()
    return policy_class(
        retry_after_max,
        extra_no_retry,
        retry_total=total,
        retry_backoff_factor=backoff_factor,
        retry_backoff_max=backoff_max,
        **options,
    )


@functools.cache
def _policy_class() -> type[Any]:
    """The subclass, built on first use so that importing this module does not import azure-core."""
    from azure.core.pipeline.policies import RetryPolicy

    class BoundedRetryPolicy(RetryPolicy[Any, Any]):
        """azure-core's policy that will not sleep a Retry-After beyond its cap (see the module docstring)."""

        def __init__(self, retry_after_max: float, extra_no_retry: NoRetry | None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.retry_after_max = retry_after_max
            self.extra_no_retry = extra_no_retry

        def get_retry_after(self, response: Any) -> float | None:
            # azure-core raises on a Retry-After that is neither seconds nor an HTTP date; a server
            # that sends nonsense has not asked for a wait.
            try:
                value = super().get_retry_after(response)
            except (ValueError, TypeError, OverflowError):
                return None
            return None if value is None else float(value)

        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            retry_after = self.get_retry_after(response)
            if retry_after is not None and retry_after > self.retry_after_max:
                return False
            if self.extra_no_retry is not None and self.extra_no_retry(response.http_response.status_code, retry_after):
                return False
            return bool(super().is_retry(settings, response))

    return BoundedRetryPolicy
