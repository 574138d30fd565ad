"""The shared bounded retry policy, in a real azure-core pipeline against a scripted server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.rest import HttpRequest

from common.azure_retry import bounded_retry_policy

Answer = tuple[int, dict[str, str]]


class ScriptedServer:
    """Answers each request with the next scripted (status, headers), then 200; counts requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests = 0
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                script.requests += 1
                status, headers = script.answers.pop(0) if script.answers else (200, {})
                body = b"{}"
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(server: ScriptedServer, method: str = "GET", **policy: Any) -> int:
    options: dict[str, Any] = {"total": 3, "backoff_factor": 0.01, "backoff_max": 0.02, "retry_after_max": 1.0, **policy}
    client: PipelineClient[Any, Any] = PipelineClient(server.url, policies=[bounded_retry_policy(**options)])
    with client:
        response = client.send_request(HttpRequest(method, server.url + "/x"))
        return int(response.status_code)


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    with ScriptedServer(*request.param) as server:
        yield server


@pytest.mark.parametrize("scripted", [[(429, {"Retry-After": "0"}), (503, {})]], indirect=True)
def test_short_retry_after_and_5xx_are_retried(scripted: ScriptedServer) -> None:
    """A 429 with a short Retry-After and a 503 are retried by azure-core until the 200."""
    assert _send(scripted) == 200
    assert scripted.requests == 3


@pytest.mark.parametrize("scripted", [[(429, {"Retry-After": "3600"})]], indirect=True)
def test_retry_after_beyond_the_cap_is_returned_at_once(scripted: ScriptedServer) -> None:
    """A Retry-After of an hour is not slept: the 429 comes back after one request."""
    started = time.monotonic()
    assert _send(scripted) == 429
    assert scripted.requests == 1
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("scripted", [[(429, {"Retry-After": "soon"}), (429, {"Retry-After": "soon"})]], indirect=True)
def test_unreadable_retry_after_counts_as_absent(scripted: ScriptedServer) -> None:
    """A Retry-After that is neither seconds nor a date does not raise; the 429 is retried on backoff."""
    assert _send(scripted) == 200
    assert scripted.requests == 3


@pytest.mark.parametrize("scripted", [[(504, {}), (504, {})]], indirect=True)
def test_extra_no_retry_refuses_what_the_adapter_says(scripted: ScriptedServer) -> None:
    """An adapter's own refusal (here: 504 without Retry-After) stops the retry after one request."""
    seen: list[tuple[int, float | None]] = []

    def timed_out(status: int, retry_after: float | None) -> bool:
        seen.append((status, retry_after))
        return status == 504 and retry_after is None

    assert _send(scripted, extra_no_retry=timed_out) == 504
    assert scripted.requests == 1
    assert seen == [(504, None)]


@pytest.mark.parametrize("scripted", [[(504, {}), (504, {})]], indirect=True)
def test_without_extra_refusal_504_is_retried(scripted: ScriptedServer) -> None:
    """Without an adapter refusal a GET's 504 follows azure-core's own rule: retried."""
    assert _send(scripted) == 200
    assert scripted.requests == 3


def test_negative_bounds_are_refused() -> None:
    """A negative retry count or wait is a programming error, refused before any request."""
    with pytest.raises(ValueError, match="negative"):
        bounded_retry_policy(total=-1, backoff_factor=0.1, backoff_max=1, retry_after_max=1)
    with pytest.raises(ValueError, match="negative"):
        bounded_retry_policy(total=1, backoff_factor=0.1, backoff_max=1, retry_after_max=-1)
