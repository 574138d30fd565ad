"""
Our exception hierarchy:

* ReplayError
  x SettingsError        bad or missing settings; lists every one, by name
  x InputError           an input we cannot use: export file, incident body, time, user (exit 2 / HTTP 400)
  x UpstreamError        an Azure dependency failed after its SDK's own retries
    + TransientUpstreamError   safe to retry the whole operation (the only thing tenacity retries)

Expected outcomes are values, not exceptions: a partial query result, a user with no sign-ins, an
incident with no account, a rejected approval.
"""

from __future__ import annotations

from collections.abc import Sequence


class ReplayError(Exception):
    """Root of every error this product raises on purpose."""


class SettingsError(ReplayError):
    """One or more settings are bad or missing; `problems` holds one line per setting."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("bad settings: " + "; ".join(self.problems))


class InputError(ReplayError):
    """An input the product cannot use; the message is meant for the person who supplied it."""


class UpstreamError(ReplayError):
    """
    An Azure service failed after its client's own retries.

    `service` names the system ("Log Analytics", "Sentinel", "Microsoft Graph"), `status` the HTTP
    status when there was one, and `hint` what an operator should check.
    """

    def __init__(self, service: str, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.service = service
        self.status = status
        self.hint = hint
        super().__init__(f"{service}: {message}" + (f" (HTTP {status})" if status else ""))


class TransientUpstreamError(UpstreamError):
    """A failure worth retrying as a whole operation (throttling, 5xx, timeouts)."""


def first_line(error: BaseException, limit: int | None = None) -> str:
    """
    The first line of an error's message (at most `limit` characters), or its type's name when it has none.

    SDK and database errors carry pages of context (stack frames, candidate tokens, request bodies); a
    comment, a log field or a one-line CLI error keeps the line that says what went wrong.
    """
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if limit is None else line[:limit]
