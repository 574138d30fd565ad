"""The azd hooks against a fake `az`: the function key and its secret after deployment, the left-over vault before provisioning."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import az_cli

pytestmark = pytest.mark.slow  # runs the hook scripts (bash) against the fake az: tests/README.md

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "infra" / "scripts"
SUBSCRIPTION = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
AZD = {
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": "rg-token-replay",
    "AZURE_FUNCTION_APP_NAME": "func-abc123",
    "AZURE_KEY_VAULT_NAME": "kv-abc123",
    "AZURE_FUNCTION_KEY_NAME": "sentinel_playbook",
    "AZURE_FUNCTION_KEY_SECRET_NAME": "incidents-function-key",
    "AZURE_ENV_NAME": "token-replay",
}


@dataclass
class FakeAzure:
    """The fake az's state and call log, and how to run a script against them."""

    tmp: Path

    def __post_init__(self) -> None:
        az_cli.install(self.tmp)
        self.state_file, self.log_file = self.tmp / "state.json", self.tmp / "calls.jsonl"
        self.set(keys={}, starting=0, deleted=[])

    def set(self, *, keys: dict[str, str], starting: int, deleted: list[dict[str, Any]]) -> None:
        app = {"name": AZD["AZURE_FUNCTION_APP_NAME"], "group": AZD["AZURE_RESOURCE_GROUP"], "keys": keys, "starting": starting}
        self.state_file.write_text(json.dumps({"function_app": app, "secrets": {}, "deleted_vaults": deleted}))
        self.log_file.write_text("")

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    @property
    def calls(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def run(self, script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return az_cli.run_script(SCRIPTS / script, args, folder=self.tmp, drop=("AZURE_",), env=env)


@pytest.fixture
def azure(tmp_path: Path) -> FakeAzure:
    return FakeAzure(tmp_path)


def deleted_vault(name: str, environment: str) -> dict[str, Any]:
    """An entry of `az keyvault list-deleted`, as the service lists a soft-deleted vault."""
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/{name}",
        "name": name,
        "properties": {"location": "westeurope", "purgeProtectionEnabled": None, "tags": {"azd-env-name": environment}},
    }


class TestStoreFunctionKey:
    def test_first_deployment_creates_the_key_and_writes_the_secret_through_arm(self, azure: FakeAzure) -> None:
        """No key yet: it is created on the host, and its value goes to the vault as the secret the Logic App reads."""
        done = azure.run("store-function-key.sh", "--wait", "0", env=AZD)

        assert done.returncode == 0, done.stderr
        key = azure.state["function_app"]["keys"]["sentinel_playbook"]
        assert azure.state["secrets"] == {"kv-abc123/incidents-function-key": key}
        assert "host key sentinel_playbook of func-abc123: created" in done.stdout
        assert key not in done.stdout + done.stderr
        put = next(call for call in azure.calls if call["method"] == "put")
        assert put["url"].startswith(
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-token-replay/providers/Microsoft.KeyVault/"
        )
        assert put["body"].startswith("@")
        assert key not in json.dumps(azure.calls)

    def test_a_redeployment_keeps_the_key_the_playbook_already_uses(self, azure: FakeAzure) -> None:
        """An existing key is never replaced (no `keys set`): the secret is rewritten with the same value."""
        azure.set(keys={"sentinel_playbook": "ExistingKey_0123456789abcdef=="}, starting=0, deleted=[])

        done = azure.run("store-function-key.sh", "--wait", "0", env=AZD)

        assert done.returncode == 0, done.stderr
        assert "host key sentinel_playbook of func-abc123: kept" in done.stdout
        assert [call["command"] for call in azure.calls] == ["functionapp keys list", "rest"]
        assert azure.state["secrets"] == {"kv-abc123/incidents-function-key": "ExistingKey_0123456789abcdef=="}

    def test_it_waits_for_the_host_to_start(self, azure: FakeAzure) -> None:
        """'error from host runtime' right after deployment is retried until the host answers."""
        azure.set(keys={}, starting=3, deleted=[])

        done = azure.run("store-function-key.sh", "--wait", "0", "--attempts", "5", env=AZD)

        assert done.returncode == 0, done.stderr
        assert done.stderr.count("did not answer yet") == 3
        assert azure.state["secrets"]

    def test_a_host_that_never_answers_fails_the_hook_and_writes_nothing(self, azure: FakeAzure) -> None:
        """After the last try the hook exits 1 (azd stops and says so); no secret is written."""
        azure.set(keys={}, starting=10, deleted=[])

        done = azure.run("store-function-key.sh", "--wait", "0", "--attempts", "2", env=AZD)

        assert done.returncode == 1
        assert "never answered" in done.stderr
        assert azure.state["secrets"] == {}

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("AZURE_SUBSCRIPTION_ID", "", "not a subscription id"),
            ("AZURE_KEY_VAULT_NAME", "kv/../other", "not a Key Vault name"),
            ("AZURE_RESOURCE_GROUP", "rg?x=1", "not a resource group name"),
            ("AZURE_FUNCTION_KEY_NAME", "a b", "not a host key name"),
        ],
    )
    def test_bad_values_are_refused_before_any_call(self, azure: FakeAzure, name: str, value: str, message: str) -> None:
        """A value that could bend a URL or an argument stops the hook with exit 2 and no az call."""
        done = azure.run("store-function-key.sh", env=AZD | {name: value})

        assert done.returncode == 2
        assert message in done.stderr
        assert azure.calls == []


class TestPurgeDeletedVault:
    def test_first_provision_has_nothing_to_purge(self, azure: FakeAzure) -> None:
        """No vault recorded in the environment yet: no call at all."""
        done = azure.run("purge-deleted-vault.sh", env={"AZURE_ENV_NAME": "token-replay"})

        assert done.returncode == 0
        assert "nothing to purge" in done.stdout
        assert azure.calls == []

    def test_a_live_vault_is_left_alone(self, azure: FakeAzure) -> None:
        """When the recorded vault is not soft-deleted (a normal re-provision), nothing is purged."""
        azure.set(keys={}, starting=0, deleted=[deleted_vault("kv-other", "token-replay")])

        done = azure.run("purge-deleted-vault.sh", env=AZD)

        assert done.returncode == 0
        assert "is not soft-deleted" in done.stdout
        assert "purged" not in azure.state

    def test_this_environments_soft_deleted_vault_is_purged(self, azure: FakeAzure) -> None:
        """After `azd down` without --purge, the vault of this environment is purged in its location (dry run first)."""
        azure.set(keys={}, starting=0, deleted=[deleted_vault("kv-abc123", "token-replay")])

        planned = azure.run("purge-deleted-vault.sh", "--dry-run", env=AZD)
        assert "would purge soft-deleted Key Vault kv-abc123 (westeurope)" in planned.stdout
        assert "purged" not in azure.state

        done = azure.run("purge-deleted-vault.sh", env=AZD)
        assert done.returncode == 0, done.stderr
        assert azure.state["purged"] == ["kv-abc123"]
        assert azure.state["deleted_vaults"] == []

    def test_another_environments_vault_is_never_purged(self, azure: FakeAzure) -> None:
        """A soft-deleted vault of the same name tagged for another azd environment stops the hook untouched."""
        azure.set(keys={}, starting=0, deleted=[deleted_vault("kv-abc123", "someone-else")])

        done = azure.run("purge-deleted-vault.sh", env=AZD)

        assert done.returncode == 1
        assert "belongs to environment 'someone-else'" in done.stderr
        assert "purged" not in azure.state
