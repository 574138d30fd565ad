"""The Function App indexes: every function with its bindings, cheaply, and the real worker accepts it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.indexed import functions

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "incident_http_start": {"httpTrigger", "durableClient", "http"},
    "incident_orchestrator": {"orchestrationTrigger"},
    "incident_entities": {"activityTrigger"},
    "enrich_incident": {"activityTrigger"},
    "label_incident": {"activityTrigger"},
    "comment_incident": {"activityTrigger"},
    "approval_orchestrator": {"orchestrationTrigger"},
    "post_approval_card": {"activityTrigger"},
    "update_approval_card": {"activityTrigger"},
    "contain_account": {"activityTrigger"},
    "comment_approval": {"activityTrigger"},
    "bot_messages": {"httpTrigger", "durableClient", "http"},
}


def test_every_function_is_indexed_with_its_bindings() -> None:
    """The app exposes exactly the expected functions, each with its trigger and bindings."""
    indexed = functions()

    assert {name: {b.type for b in f.get_bindings()} for name, f in indexed.items()} == EXPECTED


def test_http_trigger_is_post_incidents_with_a_function_key() -> None:
    """POST /api/incidents needs a function key (the Logic App sends it)."""
    trigger = functions()["incident_http_start"].get_trigger().get_dict_repr()

    assert (trigger["route"], [str(m) for m in trigger["methods"]], str(trigger["authLevel"])) == (
        "incidents",
        ["POST"],
        "FUNCTION",
    )


def test_activity_and_orchestrator_names_match_what_the_orchestrator_calls() -> None:
    """The names the orchestrators schedule are the names the triggers register."""
    from playbooks.domain import workflow
    from playbooks.functions import approval_flow, orchestrator

    names = {
        json.loads(json.dumps(f.get_trigger().get_dict_repr(), default=str)).get("activity")
        for f in functions().values()
        if f.get_trigger().type == "activityTrigger"
    }

    assert names == {
        orchestrator.ACTIVITY_ENTITIES,
        orchestrator.ACTIVITY_ENRICH,
        orchestrator.ACTIVITY_LABELS,
        orchestrator.ACTIVITY_COMMENT,
        approval_flow.ACTIVITY_POST_CARD,
        approval_flow.ACTIVITY_UPDATE_CARD,
        approval_flow.ACTIVITY_CONTAIN,
        approval_flow.ACTIVITY_COMMENT,
    }
    assert {workflow.APPROVAL_ORCHESTRATOR, workflow.INCIDENT_ORCHESTRATOR} <= set(functions())


@pytest.mark.slow
def test_importing_the_app_builds_nothing_and_skips_the_graph_sdk() -> None:
    """`import function_app` loads no Graph SDK, no identity and no query client (nothing connects at import)."""
    script = (
        "import sys, function_app\n"
        "heavy = [m for m in ('msgraph', 'azure.identity', 'azure.monitor.query', 'duckdb', 'requests') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)

    assert done.stdout.strip() == "[]"


# The real Python worker's indexing (azure_functions_runtime, Python 3.13 only): it validates every
# parameter name and annotation against the bindings, which app.get_functions() does not. Run in a
# fresh interpreter because get_functions() may be called only once per app object.
WORKER_SCRIPT = r"""
import json, sys, types
from azure_functions_runtime import loader
from azure_functions_runtime.bindings import meta
from azure_functions_runtime.functions import Registry

meta.load_binding_registry()

class BindingInfo(types.SimpleNamespace):
    out = 1
    inout = 2
    undefined = None
setattr(BindingInfo, "in", 0)

protos = types.SimpleNamespace(
    BindingInfo=BindingInfo,
    RpcFunctionMetadata=lambda **kw: types.SimpleNamespace(**kw),
    RpcRetryOptions=lambda **kw: types.SimpleNamespace(**kw),
)
registry = Registry()
indexed = loader.index_function_app(sys.argv[1])
metadata, _logs = loader.process_indexed_function(protos, registry, indexed, sys.argv[2])
print(json.dumps({
    "functions": {m.name: [json.loads(b)["type"] for b in m.raw_bindings] for m in metadata},
    "context": {info.name: info.requires_context for info in registry._functions.values()},
    "graph_loaded": "msgraph" in sys.modules,
}))
"""


@pytest.mark.py313
@pytest.mark.skipif(sys.version_info < (3, 13), reason="the v2 worker (azure_functions_runtime) needs Python 3.13")
def test_the_real_worker_indexes_every_function() -> None:
    """azure_functions_runtime loads and validates every function; every one but the orchestrators receives func.Context."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT, str(ROOT / "function_app.py"), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert {name: set(types) for name, types in result["functions"].items()} == EXPECTED
    orchestrators = {"incident_orchestrator", "approval_orchestrator"}
    assert result["context"] == {name: name not in orchestrators for name in EXPECTED}
    assert result["graph_loaded"] is False


#: Log Analytics runs at most 5 queries at once per identity (further ones wait in a FIFO queue, 429 after 3 min).
LOG_ANALYTICS_CONCURRENT_QUERIES = 5
#: The enrichment activity runs the evidence, baseline and context queries one after the other (enrichment.services.gather).
QUERIES_PER_ENRICHMENT = 3


def test_host_json_suits_log_analytics_and_durable() -> None:
    """host.json: v2, bundle [4.*, 5.0.0), task hub TokenReplay, one instance never runs more than 5 queries at once."""
    host = json.loads((ROOT / "host.json").read_text())
    durable = host["extensions"]["durableTask"]

    assert (host["version"], host["extensionBundle"]["version"]) == ("2.0", "[4.*, 5.0.0)")
    # Renaming the hub orphans every running orchestration (pending approvals) in the old one.
    assert durable["hubName"] == "TokenReplay"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", durable["hubName"])
    # One activity runs one query at a time, so the activity slots are the per-instance query limit.
    assert durable["maxConcurrentActivityFunctions"] == LOG_ANALYTICS_CONCURRENT_QUERIES
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
    assert "Request" in host["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";")
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", host["functionTimeout"])


def test_function_timeout_outlasts_the_slowest_enrichment_and_traces_keep_personal_data_out() -> None:
    """functionTimeout covers 3 queries at the largest allowed server timeout plus their retries; inputs are not traced."""
    from common.errors import SettingsError
    from common.settings import Settings
    from enrichment.adapters.loganalytics import READ_TIMEOUT_MARGIN, Retries

    host = json.loads((ROOT / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    largest = 600
    assert Settings.from_values({"REPLAY_QUERY_TIMEOUT_SECONDS": str(largest)}).query_timeout_seconds == largest
    with pytest.raises(SettingsError):
        Settings.from_values({"REPLAY_QUERY_TIMEOUT_SECONDS": str(largest + 1)})
    r = Retries()
    waits = r.attempts * r.sdk_total * max(r.sdk_backoff_max, r.retry_after_max) + (r.attempts - 1) * r.wait_max

    assert hours * 3600 + minutes * 60 + seconds >= QUERIES_PER_ENRICHMENT * (largest + READ_TIMEOUT_MARGIN + waits)
    # Orchestration inputs and outputs hold UPNs, IPs and attacker-controlled strings.
    tracing = host["extensions"]["durableTask"].get("tracing", {})
    assert tracing.get("traceInputsAndOutputs", False) is False
    assert host["logging"]["logLevel"]["default"] in ("Warning", "Error")


def test_funcignore_keeps_tests_and_tooling_out_of_the_package() -> None:
    """The deployment package leaves out tests, infra, benches, venvs and local settings."""
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()}

    assert {"tests/", "infra/", "bench/", ".venv/", ".venv313/", "local.settings.json"} <= ignored
    assert not {"enrichment/", "playbooks/", "function_app.py", "host.json", "requirements.txt"} & ignored
