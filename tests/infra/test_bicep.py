"""
infra/ read as data: every Bicep file parses, and what it deploys agrees with what the code needs.

Nothing can be deployed from a test, so the deployment is checked where it can drift from the code: the app
settings (exactly `Settings.names()`, each from a parameter of its name or a resource output), the roles of
the Function App's identity (exactly `AZURE_ROLES`), no secret in any setting, the Flex Consumption shape,
the playbook's call, the automation rule's default, the bot's identity, and the azd wiring. The Bicep is
parsed with pycep (the parser checkov uses), and the tree is walked, never the text grepped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pycep import BicepParser

from common.errors import SettingsError
from common.settings import Settings
from playbooks.domain.permissions import AZURE_ROLES

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
GUID = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")
CODE_SETTING = re.compile(r"^(REPLAY_[A-Z0-9_]+|AZURE_CLIENT_ID)$")


@cache
def tree(relative: str) -> dict[str, Any]:
    """The pycep tree of one Bicep file under infra/, parsed once."""
    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=INFRA / relative))
    return parsed


def resources(relative: str, kind: str) -> dict[str, dict[str, Any]]:
    """Symbol -> config of the resources of one type declared (not `existing`) in a file."""
    return {
        symbol: declared["config"]
        for symbol, declared in tree(relative).get("resources", {}).items()
        if declared["type"] == kind and not declared["existing"]
    }


def one(relative: str, kind: str) -> dict[str, Any]:
    found = resources(relative, kind)
    assert len(found) == 1, f"{relative}: expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


def module_call(path: str) -> dict[str, Any]:
    """The params main.bicep passes to the local module at `path` (e.g. modules/function.bicep)."""
    calls = [m["config"] for m in tree("main.bicep")["modules"].values() if m["detail"].get("path") == path]
    assert len(calls) == 1, f"main.bicep calls {path} {len(calls)} times"
    params: dict[str, Any] = calls[0]["params"]
    return params


def accessor(expression: Any) -> list[Any]:
    """`a.b.c` as ['a', 'b', 'c']; anything else as []."""
    if not (isinstance(expression, dict) and expression.get("operator", {}).get("type") == "property_accessor"):
        return []
    operands = expression["operator"]["operands"]
    rest = accessor(operands["operand_2"]) or [operands["operand_2"]]
    return [operands["operand_1"], *rest]


def leaves(node: Any) -> Iterator[Any]:
    """Every scalar in an expression or object: string literals, identifiers and numbers alike."""
    if isinstance(node, dict):
        for value in node.values():
            yield from leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value)
    else:
        yield node


def role_id(relative: str, expression: Any) -> str:
    """The role definition GUID of `subscriptionResourceId('...roleDefinitions', <guid or var>)`."""
    function = expression["function"]
    assert function["type"] == "subscription_resource_id", f"{relative}: role not named by built-in id: {expression}"
    assert function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    name = function["parameters"]["resource_name_1"]
    variables = tree(relative).get("variables", {})
    value = variables[name]["value"] if name in variables else name
    assert isinstance(value, str)
    assert GUID.match(value), f"{relative}: {name} is not a role definition GUID"
    return value


def role_assignments() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, role GUID, config) of every role assignment in infra/."""
    for path in BICEP_FILES:
        relative = path.relative_to(INFRA).as_posix()
        for config in resources(relative, "Microsoft.Authorization/roleAssignments").values():
            yield relative, role_id(relative, config["properties"]["roleDefinitionId"]), config


def function_identity_roles() -> set[str]:
    """Role GUIDs granted to the principal main.bicep passes as identity.outputs.principalId."""
    granted = set()
    for relative, role, config in role_assignments():
        principal = config["properties"]["principalId"]
        if not isinstance(principal, str):
            # Another resource's own identity (the Logic App's): never the Function App's.
            assert accessor(principal)[1:] == ["identity", "principalId"], f"{relative}: unexpected principal {principal}"
            continue
        assert principal in tree(relative)["parameters"], f"{relative}: principalId {principal} is not a parameter"
        if accessor(module_call(relative)[principal]) == ["identity", "outputs", "principalId"]:
            granted.add(role)
    return granted


def replay_settings() -> dict[str, Any]:
    """The app settings the code reads, name -> expression, as main.bicep hands them to the Function App."""
    passed = module_call("modules/function.bicep")["replaySettings"]
    settings: dict[str, Any] = tree("main.bicep")["variables"][passed]["value"]
    return settings


def app_settings() -> dict[str, Any]:
    """Every app setting of the Function App, name -> expression, following concat() and the items() loop."""
    site = one("modules/function.bicep", "Microsoft.Web/sites")
    expression = site["properties"]["siteConfig"]["appSettings"]
    assert expression["function"]["type"] == "concat"
    variables = tree("modules/function.bicep")["variables"]
    found: dict[str, Any] = {}
    for part in expression["function"]["parameters"].values():
        value = variables[part]["value"]
        if isinstance(value, list):
            for setting in value:
                assert setting["name"] not in found, f"{setting['name']} set twice"
                found[setting["name"]] = setting["value"]
        else:
            loop = value["loop_type"]["detail"]["array_name"]["function"]
            assert loop["type"] == "items"
            assert loop["parameters"]["arg_1"] == "replaySettings"
            assert value["config"] == {
                "name": {"operator": {"type": "property_accessor", "operands": {"operand_1": "setting", "operand_2": "key"}}},
                "value": {"operator": {"type": "property_accessor", "operands": {"operand_1": "setting", "operand_2": "value"}}},
            }
            for name, setting_value in replay_settings().items():
                assert name not in found, f"{name} set twice"
                found[name] = setting_value
    return found


def decorator(parameter: dict[str, Any], kind: str) -> Any:
    return next((d["argument"] for d in parameter["decorators"] if d["type"] == kind), None)


def rendered(value: Any) -> str:
    """A Bicep literal as the app setting string main.bicep makes of it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TestParsing:
    def test_the_expected_files_exist(self) -> None:
        """main.bicep orchestrates one module per concern."""
        names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
        assert {
            "main.bicep",
            "modules/identity.bicep",
            "modules/monitoring.bicep",
            "modules/function.bicep",
            "modules/playbook.bicep",
            "modules/sentinel-access.bicep",
            "modules/bot.bicep",
        } <= names

    @pytest.mark.parametrize("path", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
    def test_every_bicep_file_parses(self, path: Path) -> None:
        """pycep parses the file without error and finds at least one declaration."""
        parsed = BicepParser().parse(file_path=path)
        assert parsed.get("resources") or parsed.get("modules")

    def test_every_local_module_exists(self) -> None:
        """Each module main.bicep calls by path is a file in infra/."""
        for declared in tree("main.bicep")["modules"].values():
            if declared["type"] == "local":
                assert (INFRA / declared["detail"]["path"]).is_file()

    @pytest.mark.slow
    def test_verified_modules_are_pinned(self) -> None:
        """Every Azure Verified Module reference carries an exact semantic version."""
        seen = 0
        for path in BICEP_FILES:
            for declared in tree(path.relative_to(INFRA).as_posix()).get("modules", {}).values():
                if declared["type"] == "bicep_registry_alias":
                    seen += 1
                    assert declared["detail"]["path"].startswith("avm/res/")
                    assert re.fullmatch(r"\d+\.\d+\.\d+", declared["detail"]["tag"])
        assert seen >= 4


class TestAppSettings:
    def test_settings_from_the_code_are_exactly_the_settings_the_code_reads(self) -> None:
        """The Function App's REPLAY_* and AZURE_CLIENT_ID settings equal Settings.names(): none missing, none extra."""
        deployed = {name for name in app_settings() if CODE_SETTING.match(name)}
        assert deployed == set(Settings.names())

    def test_host_settings_connect_with_the_identity(self) -> None:
        """Storage and Application Insights are reached with the managed identity; Flex-only settings are absent."""
        settings = app_settings()
        host = {name: value for name, value in settings.items() if not CODE_SETTING.match(name)}
        assert host["AzureWebJobsStorage__credential"] == "managedidentity"
        assert host["AzureWebJobsStorage__clientId"] == "identityClientId"
        assert {f"AzureWebJobsStorage__{kind}ServiceUri" for kind in ("blob", "queue", "table")} <= set(host)
        assert host["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
        assert host["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
        forbidden = {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}
        assert not forbidden & set(settings)

    def test_each_setting_comes_from_its_parameter_or_a_resource(self) -> None:
        """A code setting's value is the parameter of the same name, or an output of a deployed resource."""
        main = tree("main.bicep")
        symbols = set(main["resources"]) | set(main["modules"])
        for name, expression in replay_settings().items():
            path = accessor(expression)
            if path:
                assert path[0] in symbols, f"{name} reads {path[0]}, which is no resource or module"
                continue
            assert name in main["parameters"], f"{name} is neither a parameter nor a resource output"
            referenced = set(leaves(expression))
            assert name in referenced, f"{name} is not set from the parameter {name}"

    def test_outputs_repeat_every_setting(self) -> None:
        """main.bicep outputs each code setting under its own name, from the same value the app gets."""
        outputs = tree("main.bicep")["outputs"]
        for name in Settings.names():
            assert accessor(outputs[name]["value"]) == ["replaySettings", name]

    def test_parameter_defaults_are_the_code_defaults(self) -> None:
        """A setting left at its Bicep default gives the app the same value as the code's own default."""
        parameters = tree("main.bicep")["parameters"]
        defaults = Settings()
        checked = 0
        for spec_name, setting_name in ((f, n) for f, n in zip(Settings.__dataclass_fields__, Settings.names(), strict=True)):
            parameter = parameters.get(setting_name)
            if parameter is None or isinstance(parameter.get("default"), dict):
                continue
            deployed = Settings.from_values({setting_name: rendered(parameter["default"])})
            assert getattr(deployed, spec_name) == getattr(defaults, spec_name), setting_name
            checked += 1
        assert checked >= 20

    def test_parameter_bounds_are_the_code_bounds(self) -> None:
        """Deployment-time @minValue/@maxValue accept exactly the range the code accepts."""
        parameters = tree("main.bicep")["parameters"]
        defaults = Settings()
        integers = {
            name
            for field, name in zip(Settings.__dataclass_fields__, Settings.names(), strict=True)
            if type(getattr(defaults, field)) is int
        }
        checked = set()
        for name in Settings.names():
            parameter = parameters.get(name)
            if parameter is None or parameter["type"] != "int":
                continue
            low, high = decorator(parameter, "min_value"), decorator(parameter, "max_value")
            assert low is not None, f"{name} has no @minValue"
            assert high is not None, f"{name} has no @maxValue"
            # The thresholds are also checked against each other; keep that pair valid while one moves.
            base = {"REPLAY_THRESHOLD_LIKELY": "100", "REPLAY_THRESHOLD_SUSPICIOUS": "1"}
            Settings.from_values({**base, name: str(low)})
            Settings.from_values({**base, name: str(high)})
            for outside in (low - 1, high + 1):
                with pytest.raises(SettingsError, match=name):
                    Settings.from_values({**base, name: str(outside)})
            checked.add(name)
        assert checked == integers

    def test_no_setting_value_is_a_literal_secret(self) -> None:
        """No app setting holds a key or a key-bearing connection string, and no Bicep file spells one."""
        secret = re.compile(r"AccountKey=|InstrumentationKey=|SharedAccessKey|DefaultEndpointsProtocol=|listKeys|Password", re.I)
        for name, value in app_settings().items():
            for leaf in leaves(value):
                assert not (isinstance(leaf, str) and secret.search(leaf)), f"{name}: {leaf}"
        for path in BICEP_FILES:
            for leaf in leaves(tree(path.relative_to(INFRA).as_posix())):
                assert not (isinstance(leaf, str) and re.search(r"AccountKey=|InstrumentationKey=", leaf)), f"{path}: {leaf}"


class TestRoles:
    def test_function_identity_holds_exactly_the_azure_roles(self) -> None:
        """The roles granted to the Function App's identity are AZURE_ROLES, by built-in id, no more and no fewer."""
        assert function_identity_roles() == {role.role_id for role in AZURE_ROLES}

    def test_role_assignment_names_are_deterministic(self) -> None:
        """Every assignment is named guid(scope, principal, role), so a redeployment updates instead of duplicating."""
        count = 0
        for relative, _role, config in role_assignments():
            function = config["name"]["function"]
            assert function["type"] == "guid", relative
            arguments = list(leaves(function["parameters"]))
            principal = config["properties"]["principalId"]
            # A principal known only at run time (a resource's own identity) is named by that resource's id.
            assert (principal if isinstance(principal, str) else accessor(principal)[0]) in arguments, relative
            role_argument = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
            assert role_argument in arguments, relative
            assert config["properties"]["principalType"] == "ServicePrincipal"
            count += 1
        assert count >= 8

    def test_playbook_and_sentinel_principals_get_least_privilege(self) -> None:
        """The Logic App reads its one secret and the workspace; Sentinel's principal may run playbooks in the group."""
        granted = {(relative, role) for relative, role, _ in role_assignments()}
        assert ("modules/playbook.bicep", "4633458b-17de-408a-b874-0445c86b69e6") in granted  # Key Vault Secrets User
        assert ("modules/playbook.bicep", "f4c81013-99ee-4d62-a7ee-b3f1f648599a") in granted  # Sentinel Automation Contributor
        assert ("modules/sentinel-access.bicep", "8d289c81-5878-46d4-8554-54e1e3d8b5cb") in granted  # Sentinel Reader
        by_role = {role: config for relative, role, config in role_assignments() if relative == "modules/playbook.bicep"}
        assert by_role["4633458b-17de-408a-b874-0445c86b69e6"]["scope"] == "functionKeySecret"


class TestFunctionApp:
    def test_flex_consumption_plan_and_runtime(self) -> None:
        """FC1 plan, Linux function app, Python runtime, 2048 MB instances, deployment container read by the identity."""
        plan = one("modules/function.bicep", "Microsoft.Web/serverfarms")
        assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
        site = one("modules/function.bicep", "Microsoft.Web/sites")
        assert site["kind"] == "functionapp,linux"
        assert site["properties"]["httpsOnly"] is True
        config = site["properties"]["functionAppConfig"]
        assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
        assert config["scaleAndConcurrency"]["instanceMemoryMB"] == 2048
        assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
        assert decorator(tree("main.bicep")["parameters"]["pythonVersion"], "allowed") == ["3.11", "3.13"]

    def test_storage_takes_no_shared_keys(self) -> None:
        """The storage account refuses shared keys and public blobs and requires TLS 1.2."""
        storage = tree("modules/function.bicep")["modules"]["storage"]
        assert storage["detail"]["path"] == "avm/res/storage/storage-account"
        params = storage["config"]["params"]
        assert params["allowSharedKeyAccess"] is False
        assert params["allowBlobPublicAccess"] is False
        assert params["minimumTlsVersion"] == "TLS1_2"
        assert params["blobServices"]["containers"][0]["publicAccess"] == "None"

    def test_application_insights_has_local_auth_disabled(self) -> None:
        """Application Insights is workspace-based and accepts telemetry only with Entra ID auth."""
        params = tree("modules/monitoring.bicep")["modules"]["appInsights"]["config"]["params"]
        assert params["disableLocalAuth"] is True
        assert accessor(params["workspaceResourceId"]) == ["workspace", "outputs", "resourceId"]


class TestPlaybook:
    def test_posts_the_trigger_body_to_the_incidents_endpoint_with_retries(self) -> None:
        """The Logic App's incident trigger body goes, unchanged, to POST /api/incidents, retried 4 times exponentially."""
        workflow = one("modules/playbook.bicep", "Microsoft.Logic/workflows")
        definition = workflow["properties"]["definition"]
        trigger = definition["triggers"]["Microsoft_Sentinel_incident"]
        assert trigger["type"] == "ApiConnectionWebhook"
        assert trigger["inputs"]["path"] == "/incident-creation"
        post = definition["actions"]["Post_incident"]
        assert post["inputs"]["method"] == "POST"
        assert post["inputs"]["uri"] == "https://${functionHostName}/api/incidents"
        assert post["inputs"]["body"] == "@triggerBody()"
        assert post["inputs"]["retryPolicy"]["type"] == "exponential"
        assert post["inputs"]["retryPolicy"]["count"] == 4

    def test_function_key_is_read_from_key_vault_at_run_time(self) -> None:
        """The key header comes from the Key Vault action's output, which the run history does not show."""
        definition = one("modules/playbook.bicep", "Microsoft.Logic/workflows")["properties"]["definition"]
        get_key = definition["actions"]["Get_function_key"]
        assert get_key["inputs"]["authentication"] == {"type": "ManagedServiceIdentity", "audience": "https://vault.azure.net"}
        assert set(get_key["runtimeConfiguration"]["secureData"]["properties"]) == {"inputs", "outputs"}
        post = definition["actions"]["Post_incident"]
        assert post["inputs"]["headers"]["'x-functions-key'"] == "@{body(\\'Get_function_key\\')?[\\'value\\']}"
        assert post["runAfter"] == {"Get_function_key": ["Succeeded"]}

    def test_sentinel_connection_authenticates_with_the_logic_app_identity(self) -> None:
        """The azuresentinel connection is the managed-identity kind, and the workflow uses it that way."""
        connection = one("modules/playbook.bicep", "Microsoft.Web/connections")
        assert connection["properties"]["parameterValueType"] == "Alternative"
        workflow = one("modules/playbook.bicep", "Microsoft.Logic/workflows")
        assert workflow["identity"] == {"type": "SystemAssigned"}
        sentinel = workflow["properties"]["parameters"]["'$connections'"]["value"]["azuresentinel"]
        assert sentinel["connectionProperties"]["authentication"] == {"type": "ManagedServiceIdentity"}

    def test_automation_rule_is_off_until_enabled(self) -> None:
        """The rule runs the playbook on created incidents, is disabled by default, and filters only when asked."""
        parameters = tree("main.bicep")["parameters"]
        assert parameters["automationRuleEnabled"]["default"] is False
        assert parameters["automationRuleIncidentTitles"]["default"] == []
        assert parameters["automationRuleProductNames"]["default"] == []
        rule = one("modules/sentinel-access.bicep", "Microsoft.SecurityInsights/automationRules")
        logic = rule["properties"]["triggeringLogic"]
        assert logic["isEnabled"] == "ruleEnabled"
        assert (logic["triggersOn"], logic["triggersWhen"]) == ("Incidents", "Created")
        (action,) = rule["properties"]["actions"]
        assert action["actionType"] == "RunPlaybook"
        assert action["actionConfiguration"]["logicAppResourceId"] == "playbookResourceId"


class TestBot:
    def test_bot_is_the_managed_identity_with_teams(self) -> None:
        """The Azure Bot authenticates as the user-assigned identity and has the Teams channel enabled."""
        bot = one("modules/bot.bicep", "Microsoft.BotService/botServices")
        assert bot["kind"] == "azurebot"
        assert bot["properties"]["msaAppType"] == "UserAssignedMSI"
        call = module_call("modules/bot.bicep")
        assert accessor(call["identityClientId"]) == ["identity", "outputs", "clientId"]
        assert call["messagingEndpoint"] == "https://${function.outputs.defaultHostName}/api/messages"
        assert accessor(replay_settings()["REPLAY_BOT_APP_ID"]) == ["identity", "outputs", "clientId"]
        channel = one("modules/bot.bicep", "Microsoft.BotService/botServices/channels")
        assert channel["properties"]["channelName"] == "MsTeamsChannel"
        assert channel["properties"]["properties"]["isEnabled"] is True


class TestAzd:
    def test_azure_yaml_deploys_this_folder_as_a_python_function(self) -> None:
        """azure.yaml names the project, points at infra/main.bicep and declares the api service."""
        document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
        assert document["name"]
        assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
        assert document["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
        assert (ROOT / document["infra"]["path"] / f"{document['infra']['module']}.bicep").is_file()

    def test_parameters_file_fills_main_bicep(self) -> None:
        """main.parameters.json sets only parameters main.bicep declares, and every one without a default."""
        document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
        parameters = tree("main.bicep")["parameters"]
        given = set(document["parameters"])
        assert given <= set(parameters)
        required = {name for name, parameter in parameters.items() if "default" not in parameter}
        assert required <= given
        for name, entry in document["parameters"].items():
            assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", entry["value"]), f"{name} is not taken from the azd environment"
