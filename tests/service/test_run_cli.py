"""`python -m playbooks run`: the Function's steps inline over exports, writing files, never Sentinel."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.command import EXIT_BAD_INPUT, EXIT_OK
from playbooks.cli.run import NO_ENTITIES_WARNING, main
from tests.service import replay_data as data

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _incident_file(tmp_path: Path, body: object, name: str = "incident.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _run_with_settings(tmp_path: Path, database: Path, settings: Path, out_dir: Path) -> tuple[int, str, str]:
    """The scenario's trigger body run with a settings file."""
    incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))
    argv = ["run", "--incident", str(incident), "--data", str(database), "--settings", str(settings)]
    return _run(*argv, "--dry-run", "--out", str(out_dir))


class TestRun:
    def test_writes_the_comment_and_the_result_document(self, tmp_path: Path, database: Path) -> None:
        """A trigger body and exports give comment.html and result.json with triage and plan per account."""
        incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))

        code, out, err = _run(
            "run", "--incident", str(incident), "--data", str(database), "--dry-run", "--out", str(tmp_path / "out")
        )

        assert (code, err) == (EXIT_OK, "")
        assert "alice@contoso.com replay_likely" in out
        result = json.loads((tmp_path / "out" / "result.json").read_text())
        assert result["incident"] == {
            "id": _incident_id(),
            "name": data.INCIDENT_NAME,
            "number": 4242,
            "title": "Anomalous token <b>for</b> Alice",
        }
        alice, bob = result["accounts"]
        assert (alice["account"]["upn"], alice["triage"]["verdict"], bob["triage"]["verdict"]) == (
            data.ALICE_UPN,
            "replay_likely",
            "benign",
        )
        assert alice["plan"]["needs_approval"] is True
        assert {a["kind"] for a in alice["plan"]["actions"]} >= {"revoke_sessions", "audit_mfa_methods"}
        assert len(alice["plan"]["digest"]) == 32
        assert bob["plan"] == {
            "needs_approval": False,
            "reason": "verdict is benign: no containment proposed",
            "actions": [],
            "already_done": [],
            "manual": [],
            "digest": bob["plan"]["digest"],
        }
        html = (tmp_path / "out" / "comment.html").read_text()
        assert "Token replay likely" in html
        assert "<img" not in html

    def test_writes_the_approval_card_for_the_account_that_needs_one(self, tmp_path: Path, database: Path) -> None:
        """card.json is the pending Teams card for the replay_likely account, bound to its plan; the benign one gets none."""
        incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))
        out_dir = tmp_path / "out"

        code, out, _err = _run("run", "--incident", str(incident), "--data", str(database), "--dry-run", "--out", str(out_dir))

        assert code == EXIT_OK
        assert str(out_dir / "card.json") in out
        assert sorted(p.name for p in out_dir.glob("card*.json")) == ["card.json"]
        alice, bob = json.loads((out_dir / "result.json").read_text())["accounts"]
        assert alice["approval"]["card"] == "card.json"
        assert alice["approval"]["instance_id"].startswith(f"incident-{data.INCIDENT_NAME}:approval:0:")
        assert "approval" not in bob
        card = json.loads((out_dir / "card.json").read_text())
        assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
        execute = [a for a in card["actions"] if a["type"] == "Action.Execute"]
        assert {a["verb"] for a in execute} == {"approve", "reject"}
        assert {a["data"]["plan_digest"] for a in execute} == {alice["plan"]["digest"]}
        assert {a["data"]["user_upn"] for a in execute} == {data.ALICE_UPN}

    def test_a_second_run_without_approvals_removes_the_old_card(self, tmp_path: Path, database: Path) -> None:
        """A re-run into the same folder that proposes nothing leaves no stale card.json behind."""
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        (out_dir / "card.json").write_text("{}")
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"Values": {"REPLAY_CONTAINMENT_ENABLED": "false"}}))

        code, _out, _err = _run_with_settings(tmp_path, database, settings, out_dir)

        assert code == EXIT_OK
        assert list(out_dir.glob("card*.json")) == []

    def test_settings_file_is_honoured(self, tmp_path: Path, database: Path) -> None:
        """Settings from local.settings.json are honoured (a smaller comment limit is respected)."""
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"REPLAY_COMMENT_MAX_CHARS": "1500"}}))

        code, _out, _err = _run_with_settings(tmp_path, database, settings, tmp_path / "o")

        assert code == EXIT_OK
        assert len((tmp_path / "o" / "comment.html").read_text()) <= 1500

    def test_incident_without_entities_is_a_warned_no_account_run(self, tmp_path: Path, database: Path) -> None:
        """A bare incident resource has no entities to read offline: no account, said in result.json and the comment."""
        incident = _incident_file(tmp_path, data.incident_resource())

        code, out, _err = _run(
            "run", "--incident", str(incident), "--data", str(database), "--dry-run", "--out", str(tmp_path / "out")
        )

        assert code == EXIT_OK
        assert "no account assessed" in out
        result = json.loads((tmp_path / "out" / "result.json").read_text())
        assert (result["accounts"], result["warnings"]) == ([], [NO_ENTITIES_WARNING])
        assert "relatedEntities" in (tmp_path / "out" / "comment.html").read_text()

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"drop": "--dry-run"}, "--dry-run is required"),
            ({"incident": "missing.json"}, "--incident: cannot read"),
            ({"incident_text": "{not json"}, "is not JSON"),
            ({"incident_text": "[" * 100_000 + "]" * 100_000}, "nested too deeply"),
            (
                {"incident_text": json.dumps(data.trigger_body()).replace("2026", "9999", 1)},
                "not the time of a Sentinel incident",
            ),
            ({"incident_body": {"id": "/subscriptions/x"}}, "not a Sentinel incident resource id"),
            ({"data": "no-such-folder"}, "--data: no such file or folder"),
            ({"drop": "--out"}, "the following arguments are required: --out"),
        ],
    )
    def test_bad_input_is_exit_2_with_one_line(
        self, tmp_path: Path, database: Path, change: dict[str, object], message: str
    ) -> None:
        """Each bad input exits 2 with exactly one clear line on stderr and no traceback."""
        incident = _incident_file(tmp_path, change.get("incident_body", data.trigger_body(data.ENTITIES)))
        if "incident_text" in change:
            incident.write_text(str(change["incident_text"]))
        argv = [
            "run",
            "--incident",
            str(tmp_path / str(change.get("incident", incident.name))),
            "--data",
            str(tmp_path / str(change["data"])) if "data" in change else str(database),
            "--dry-run",
            "--out",
            str(tmp_path / "out"),
        ]
        if "drop" in change:
            index = argv.index(str(change["drop"]))
            del argv[index : index + (1 if change["drop"] == "--dry-run" else 2)]

        code, out, err = _run(*argv)

        assert (code, out) == (EXIT_BAD_INPUT, "")
        assert len(err.splitlines()) == 1
        assert err.startswith("error: ")
        assert message in err


class TestHostileIncident:
    def test_hidden_characters_and_a_lone_surrogate_in_the_title(self, tmp_path: Path, database: Path) -> None:
        """NUL, ESC, a bidi override and a lone surrogate in the title: exit 0, and none of them in comment.html or result.json."""
        hostile = json.dumps(data.trigger_body(data.ENTITIES)).replace(
            "Anomalous token <b>for</b> Alice", "Tok\\u0000en \\u001b[31m\\u202eAlice\\ud800"
        )
        incident = tmp_path / "incident.json"
        incident.write_text(hostile, encoding="utf-8")

        code, _out, err = _run(
            "run", "--incident", str(incident), "--data", str(database), "--dry-run", "--out", str(tmp_path / "out")
        )

        assert (code, err) == (EXIT_OK, "")
        html = (tmp_path / "out" / "comment.html").read_text(encoding="utf-8")
        title = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))["incident"]["title"]
        assert title == "Token [31mAlice\ufffd"
        assert "Token [31mAlice\ufffd" in html
        assert not any(char in html for char in "\x00\x1b\u202e")

    def test_accounts_over_the_cap_are_named_as_not_assessed(self, tmp_path: Path, database: Path) -> None:
        """REPLAY_MAX_ACCOUNTS=1: one account assessed, the other listed in result.json and warned about in the comment."""
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"Values": {"REPLAY_MAX_ACCOUNTS": "1"}}), encoding="utf-8")

        code, _out, err = _run_with_settings(tmp_path, database, settings, tmp_path / "out")

        assert (code, err) == (EXIT_OK, "")
        result = json.loads((tmp_path / "out" / "result.json").read_text())
        assert [a["account"]["upn"] for a in result["accounts"]] == [data.ALICE_UPN]
        assert (result["not_assessed_accounts"], result["not_assessed_total"]) == (
            [{"upn": data.BOB_UPN, "object_id": ""}],
            1,
        )
        assert result["warnings"][0].startswith("REPLAY_MAX_ACCOUNTS: the first 1 accounts were assessed, 1 more were not")
        assert "REPLAY_MAX_ACCOUNTS" in (tmp_path / "out" / "comment.html").read_text()


def _incident_id() -> str:
    return (
        f"/subscriptions/{data.SUBSCRIPTION}/resourceGroups/{data.RESOURCE_GROUP}/providers/Microsoft.OperationalInsights/"
        f"workspaces/{data.WORKSPACE_NAME}/providers/Microsoft.SecurityInsights/incidents/{data.INCIDENT_NAME}"
    )


# Run as a real process: the exit code, the files, and which modules the command loaded.
WRAPPER = (
    "import json, sys\n"
    "from playbooks.cli.run import main\n"
    "code = main(sys.argv[1:])\n"
    "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'msgraph' or m.startswith(('azure.functions', 'azure.durable_functions')))\n"
    "print(json.dumps({'code': code, 'loaded': loaded}))\n"
)


def test_dry_run_card_renders_cleanly_in_the_official_renderer(tmp_path: Path, database: Path) -> None:
    """DIR/card.json from a dry run parses, validates and renders in adaptivecards on headless Chromium (screenshot kept)."""
    card_dir = ROOT / "tests" / "card"
    chromium, node = shutil.which("chromium"), shutil.which("node")
    if chromium is None or node is None or not (card_dir / "node_modules" / "adaptivecards").is_dir():
        pytest.fail("the card renderer is not set up: run `bash scripts/setup.sh --dev`")
    incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))
    assert _run("run", "--incident", str(incident), "--data", str(database), "--dry-run", "--out", str(tmp_path))[0] == EXIT_OK
    card = json.loads((tmp_path / "card.json").read_text())
    payload = {"chromium": chromium, "outDir": str(card_dir / "out"), "cards": [{"name": "dry_run", "card": card}]}

    done = subprocess.run(
        [node, str(card_dir / "render.mjs")], input=json.dumps(payload), capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert (result["parseEvents"], result["validationEvents"], result["console"], result["pageErrors"]) == ([], [], [], [])
    decisions = [b for b in result["buttons"] if b.startswith(("Approve", "Reject"))]
    assert decisions == ["Approve: revoke sessions", "Reject: change nothing"]
    assert data.ALICE_UPN in result["text"]
    assert (card_dir / "out" / "dry_run.png").is_file()


def test_the_command_runs_without_graph_or_functions(tmp_path: Path, database: Path) -> None:
    """In a fresh interpreter the run succeeds and never imports msgraph, azure.functions or durable functions."""
    incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WRAPPER,
            "run",
            "--incident",
            str(incident),
            "--data",
            str(database),
            "--dry-run",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert (tmp_path / "out" / "comment.html").is_file()


def test_module_entry_point_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    """`python -m playbooks` with a bad flag exits 2 with one stderr line."""
    done = subprocess.run(
        [sys.executable, "-m", "playbooks", "run", "--bogus"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_cache_option_puts_the_exports_cache_where_it_is_told(tmp_path: Path) -> None:
    """`run --cache FILE` over a folder of exports builds the cache at FILE, leaves the folder untouched, and reuses it."""
    from sample_tenant.generate import Options, generate

    exports = tmp_path / "exports"
    generate(Options(out=exports, users=20, days=3, variants=1, compress=True))
    incident = sorted((exports / "incidents").glob("*.json"))[0]
    cache = tmp_path / "cache" / "triage.duckdb"
    argv = ["run", "--incident", str(incident), "--data", str(exports), "--cache", str(cache), "--dry-run"]
    code, _, err = _run(*argv, "--out", str(tmp_path / "first"))
    assert (code, err) == (EXIT_OK, ""), err
    assert cache.is_file()
    assert not (exports / ".triage-cache.duckdb").exists()
    built = cache.stat().st_mtime_ns
    code, _, err = _run(*argv, "--out", str(tmp_path / "second"))
    assert (code, err) == (EXIT_OK, "")
    assert cache.stat().st_mtime_ns == built
    first, second = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("first", "second"))
    assert [a["triage"] for a in first["accounts"]] == [a["triage"] for a in second["accounts"]]


def test_cache_option_needs_a_folder_of_exports(tmp_path: Path, database: Path) -> None:
    """--cache with a DuckDB file as --data is one line of bad input, not silently ignored."""
    incident = _incident_file(tmp_path, data.trigger_body(data.ENTITIES))
    code, out, err = _run(
        "run",
        "--incident",
        str(incident),
        "--data",
        str(database),
        "--cache",
        str(tmp_path / "c.duckdb"),
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
    )
    assert (code, out, err.count("\n")) == (EXIT_BAD_INPUT, "", 1)
    assert "--cache applies to a folder of exports" in err
