"""Logs are JSON lines through stdlib logging, with credentials redacted."""

from __future__ import annotations

import io
import json

from common.logs import configure_logging, get_logger, redact_secrets


def test_credential_keys_and_bearer_tokens_are_redacted() -> None:
    """Values of token/secret/password keys and bearer tokens inside strings never reach a log."""
    event = redact_secrets(
        None, "info", {"access_token": "eyJ.abc", "detail": "sent Authorization: Bearer eyJhbGciOi.x.y", "incident": 7}
    )

    assert event == {"access_token": "[redacted]", "detail": "sent Authorization: Bearer [redacted]", "incident": 7}


def test_events_are_json_lines_on_the_given_stream() -> None:
    """A logged event arrives on the stream as one JSON object with level and timestamp."""
    stream = io.StringIO()
    configure_logging(stream=stream)

    get_logger("test").info("incident_enriched", incident_number=42, client_secret="s3cr3t")

    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert (line["event"], line["incident_number"], line["level"], line["client_secret"]) == (
        "incident_enriched",
        42,
        "info",
        "[redacted]",
    )
    assert "timestamp" in line
