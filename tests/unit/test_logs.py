"""Logs are JSON lines through stdlib logging, with credentials redacted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from common.logs import configure_logging, get_logger, redact_secrets

ROOT = Path(__file__).resolve().parents[2]


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


def test_asking_for_a_logger_does_not_import_structlog_until_it_logs() -> None:
    """The laptop triage's modules take their loggers at import without loading structlog; the first use loads it."""
    code = (
        "import sys\n"
        "import enrichment.cli.triage, enrichment.services.investigate, enrichment.render.triage\n"
        "before = 'structlog' in sys.modules\n"
        "from common.logs import get_logger\n"
        "get_logger('probe').bind(incident_number=1)\n"
        "print(before, 'structlog' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"], done.stderr
