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
from common.settings import OPTIONAL_ACTIONS, Settings
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


def unwrap(config: dict[str, Any]) -> dict[str, Any]:
    """The body of a declaration, whether it is plain or conditional (`= if (...) {...}`)."""
    body: dict[str, Any] = config["config"] if set(config) == {"condition", "config"} else config
    return body


def condition(relative: str, symbol: str) -> Any:
    """The `if (...)` of a declared resource or module, None when it is unconditional."""
    parsed = tree(relative)
    declared = parsed.get("resources", {}).get(symbol) or parsed["modules"][symbol]
    config = declared["config"]
    return config["condition"] if set(config) == {"condition", "config"} else None


def resources(relative: str, kind: str) -> dict[str, dict[str, Any]]:
    """Symbol -> config of the resources of one type declared (not `existing`) in a file."""
    return {
        symbol: unwrap(declared["config"])
        for symbol, declared in tree(relative).get("resources", {}).items()
        if declared["type"] == kind and not declared["existing"]
    }


def one(relative: str, kind: str) -> dict[str, Any]:
    found = resources(relative, kind)
    assert len(found) == 1, f"{relative}: expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


def module_call(path: str) -> dict[str, Any]:
    """The params main.bicep passes to the local module at `path` (e.g. modules/function.bicep)."""
    calls = [unwrap(m["config"]) for m in tree("main.bicep")["modules"].values() if m["detail"].get("path") == path]
    assert len(calls) == 1, f"main.bicep calls {path} {len(calls)} times"
    params: dict[str, Any] = calls[0]["params"]
    return params


def module_symbol(path: str, **params: Any) -> dict[str, dict[str, Any]]:
    """Symbol -> params of every call main.bicep makes to the local module at `path` (a module may be called more than once)."""
    return {
        symbol: unwrap(m["config"])["params"]
        for symbol, m in tree("main.bicep")["modules"].items()
        if m["detail"].get("path") == path and all(unwrap(m["config"])["params"].get(k) == v for k, v in params.items())
    }


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


def identity_roles(module: str) -> set[str]:
    """Role GUIDs granted to the principal main.bicep passes as <module>.outputs.principalId (an identity module)."""
    granted = set()
    for relative, role, config in role_assignments():
        principal = config["properties"]["principalId"]
        if not isinstance(principal, str):
            # Another resource's own identity (the Logic App's): never one of the user-assigned identities.
            assert accessor(principal)[1:] == ["identity", "principalId"], f"{relative}: unexpected principal {principal}"
            continue
        assert principal in tree(relative)["parameters"], f"{relative}: principalId {principal} is not a parameter"
        if accessor(module_call(relative)[principal]) == [module, "outputs", "principalId"]:
            granted.add(role)
    return granted


def function_identity_roles() -> set[str]:
    """Role GUIDs granted to the Function App's (app) identity."""
    return identity_roles("identity")


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

    def test_the_bot_and_containment_identities_hold_no_azure_role(self) -> None:
        """The bot and containment identities act only through Bot Framework and Graph: no Azure role anywhere."""
        assert identity_roles("botIdentity") == set()
        assert identity_roles("containmentIdentity") == set()

    def test_role_assignment_names_are_deterministic(self) -> None:
        """Every assignment is named guid(scope, principal, role), as Microsoft's Flex azd template names them, so a redeployment updates instead of duplicating."""
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
        """The Logic App reads the one-secret vault and the workspace; Sentinel's principal may run playbooks in the group."""
        granted = {(relative, role) for relative, role, _ in role_assignments()}
        assert ("modules/playbook.bicep", "4633458b-17de-408a-b874-0445c86b69e6") in granted  # Key Vault Secrets User
        assert ("modules/playbook.bicep", "f4c81013-99ee-4d62-a7ee-b3f1f648599a") in granted  # Sentinel Automation Contributor
        assert ("modules/sentinel-access.bicep", "8d289c81-5878-46d4-8554-54e1e3d8b5cb") in granted  # Sentinel Reader
        by_role = {role: config for relative, role, config in role_assignments() if relative == "modules/playbook.bicep"}
        assert by_role["4633458b-17de-408a-b874-0445c86b69e6"]["scope"] == "vault"

    def test_an_automation_role_granted_in_the_portal_can_be_left_alone(self) -> None:
        """Sentinel's principal gets its role only when grantSentinelAutomationRole (default true): false when the portal already gave it."""
        assert condition("modules/playbook.bicep", "automationRunner") == "grantSentinelAutomationRole"
        assert tree("main.bicep")["parameters"]["grantSentinelAutomationRole"]["default"] is True
        assert module_call("modules/playbook.bicep")["grantSentinelAutomationRole"] == "grantSentinelAutomationRole"


#: siteConfig properties Flex Consumption rejects (ARM error 51021 "The following site configuration properties
#: (...) for Flex Consumption sites is invalid") or that its functionAppConfig replaced. Sources: the error text
#: quoted in Microsoft Q&A 2277522 and azure-pipelines-tasks#21032 (FtpsState, Use32BitWorkerProcess,
#: NetFrameworkVersion, FunctionsRuntimeScaleMonitoringEnabled, PreWarmedInstanceCount), AVM
#: terraform-azurerm-avm-res-web-site #283 and PR #345 (LinuxFxVersion, WindowsFxVersion, AlwaysOn and the
#: language versions, whose place is functionAppConfig.runtime), and Microsoft's "Flex Consumption plan
#: deprecations" (functionAppScaleLimit -> scaleAndConcurrency.maximumInstanceCount, minimumElasticInstanceCount).
FLEX_REJECTED_SITE_CONFIG = frozenset(
    {
        "ftpsState",
        "use32BitWorkerProcess",
        "netFrameworkVersion",
        "functionsRuntimeScaleMonitoringEnabled",
        "preWarmedInstanceCount",
        "linuxFxVersion",
        "windowsFxVersion",
        "alwaysOn",
        "javaVersion",
        "pythonVersion",
        "nodeVersion",
        "powerShellVersion",
        "phpVersion",
        "functionAppScaleLimit",
        "minimumElasticInstanceCount",
    }
)


def site_configs(parsed: Any) -> Iterator[dict[str, Any]]:
    """Every object under a `siteConfig` key, anywhere in a parsed Bicep file (resources, modules, variables)."""
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if key == "siteConfig" and isinstance(value, dict):
                yield value
            yield from site_configs(value)
    elif isinstance(parsed, list):
        for value in parsed:
            yield from site_configs(value)


def flex_violations(parsed: dict[str, Any]) -> set[str]:
    """The rejected properties a parsed file sets in a siteConfig or a sites/config 'web' resource."""
    found = {key for config in site_configs(parsed) for key in config if key in FLEX_REJECTED_SITE_CONFIG}
    for declared in parsed.get("resources", {}).values():
        if declared["type"] == "Microsoft.Web/sites/config":
            found |= set(unwrap(declared["config"]).get("properties", {})) & FLEX_REJECTED_SITE_CONFIG
    return found


class TestFlexConsumption:
    @pytest.mark.parametrize("path", BICEP_FILES, ids=lambda path: path.relative_to(INFRA).as_posix())
    def test_no_bicep_file_sets_a_site_property_flex_consumption_rejects(self, path: Path) -> None:
        """No siteConfig in any Bicep file carries a property Flex Consumption refuses (the rule list above)."""
        assert flex_violations(tree(path.relative_to(INFRA).as_posix())) == set()

    def test_the_rule_finds_a_rejected_property(self) -> None:
        """The check is not vacuous: ftpsState in a site's siteConfig, or alwaysOn in a sites/config resource, is found."""
        site = "resource s 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n  properties: {\n    siteConfig: {\n      ftpsState: 'Disabled'\n      minTlsVersion: '1.2'\n    }\n  }\n}\n"
        web = "resource w 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'x/web'\n  properties: {\n    alwaysOn: false\n  }\n}\n"
        assert flex_violations(dict(BicepParser().parse(text=site))) == {"ftpsState"}
        assert flex_violations(dict(BicepParser().parse(text=web))) == {"alwaysOn"}

    def test_publishing_credential_policies_carry_the_location(self) -> None:
        """Both basicPublishingCredentialsPolicies (ftp, scm: off) have `location`, as AVM's site module sets it."""
        policies = resources("modules/function.bicep", "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
        assert {config["name"]: (config["location"], config["properties"]["allow"]) for config in policies.values()} == {
            "ftp": ("location", False),
            "scm": ("location", False),
        }

    def test_location_is_limited_to_flex_consumption_regions(self) -> None:
        """`location` allows only regions that offer Flex Consumption (no canary region), and azd asks for it as a location."""
        parameter = tree("main.bicep")["parameters"]["location"]
        allowed = decorator(parameter, "allowed")
        assert {"westeurope", "northeurope", "eastus", "eastus2", "swedencentral", "uksouth", "australiaeast"} <= set(allowed)
        assert all(re.fullmatch(r"[a-z]+[0-9]?", region) for region in allowed)
        assert not {"eastus2euap", "centraluseuap"} & set(allowed)
        assert len(allowed) == len(set(allowed)) >= 25
        assert decorator(parameter, "metadata") == {"azd": {"type": "location"}}


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

    def test_the_post_does_not_poll_the_durable_status(self) -> None:
        """The asynchronous pattern is off: the 202 is the result, the Logic App never follows the status Location."""
        post = one("modules/playbook.bicep", "Microsoft.Logic/workflows")["properties"]["definition"]["actions"]["Post_incident"]
        assert post["operationOptions"] == "DisableAsyncPattern"

    def test_neither_action_shows_inputs_or_outputs_in_run_history(self) -> None:
        """Both HTTP actions secure inputs and outputs: the key, and the status URLs carrying the Durable system key."""
        actions = one("modules/playbook.bicep", "Microsoft.Logic/workflows")["properties"]["definition"]["actions"]
        assert {name: set(action["runtimeConfiguration"]["secureData"]["properties"]) for name, action in actions.items()} == {
            "Get_function_key": {"inputs", "outputs"},
            "Post_incident": {"inputs", "outputs"},
        }

    def test_function_key_is_read_from_key_vault_at_run_time(self) -> None:
        """The key header comes from the Key Vault action's output, read with the Logic App's identity."""
        definition = one("modules/playbook.bicep", "Microsoft.Logic/workflows")["properties"]["definition"]
        get_key = definition["actions"]["Get_function_key"]
        assert get_key["inputs"]["authentication"] == {"type": "ManagedServiceIdentity", "audience": "https://vault.azure.net"}
        assert get_key["inputs"]["uri"] == "${vault.properties.vaultUri}secrets/${secretName}?api-version=7.4"
        post = definition["actions"]["Post_incident"]
        assert post["inputs"]["headers"]["'x-functions-key'"] == "@{body(\\'Get_function_key\\')?[\\'value\\']}"
        assert post["runAfter"] == {"Get_function_key": ["Succeeded"]}

    def test_no_host_key_is_touched_while_provisioning(self) -> None:
        """No Bicep file creates or lists a Functions host key (the host runtime answers only after deployment)."""
        for path in BICEP_FILES:
            parsed = tree(path.relative_to(INFRA).as_posix())
            kinds = {declared["type"] for declared in parsed.get("resources", {}).values()}
            assert not {"Microsoft.Web/sites/host/functionKeys", "Microsoft.KeyVault/vaults/secrets"} & kinds, path
            assert not any(isinstance(leaf, str) and leaf in ("list_keys", "listKeys") for leaf in leaves(parsed)), path

    def test_the_postdeploy_script_writes_the_key_the_playbook_reads(self) -> None:
        """The key and secret names the template outputs are the script's defaults, and azd passes them on as outputs."""
        variables = tree("modules/playbook.bicep")["variables"]
        script = (INFRA / "scripts" / "store-function-key.sh").read_text(encoding="utf-8")
        assert f'key_name="${{AZURE_FUNCTION_KEY_NAME:-{variables["functionKeyName"]["value"]}}}"' in script
        assert f'secret_name="${{AZURE_FUNCTION_KEY_SECRET_NAME:-{variables["secretName"]["value"]}}}"' in script
        outputs = tree("main.bicep")["outputs"]
        assert accessor(outputs["AZURE_FUNCTION_KEY_NAME"]["value"]) == ["playbook", "outputs", "functionKeyName"]
        assert accessor(outputs["AZURE_FUNCTION_KEY_SECRET_NAME"]["value"]) == ["playbook", "outputs", "functionKeySecretName"]
        assert accessor(outputs["AZURE_KEY_VAULT_NAME"]["value"]) == ["playbook", "outputs", "keyVaultName"]

    def test_sentinel_connection_authenticates_with_the_logic_app_identity(self) -> None:
        """The azuresentinel connection is the managed-identity kind, and the workflow uses it that way."""
        connection = one("modules/playbook.bicep", "Microsoft.Web/connections")
        assert connection["properties"]["parameterValueType"] == "Alternative"
        workflow = one("modules/playbook.bicep", "Microsoft.Logic/workflows")
        assert workflow["identity"] == {"type": "SystemAssigned"}
        sentinel = workflow["properties"]["parameters"]["'$connections'"]["value"]["azuresentinel"]
        assert sentinel["connectionProperties"]["authentication"] == {"type": "ManagedServiceIdentity"}


def load_table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads((INFRA / "graph-permissions.json").read_text(encoding="utf-8"))
    return table


def rules() -> dict[str, dict[str, Any]]:
    return resources("modules/sentinel-access.bicep", "Microsoft.SecurityInsights/automationRules")


def variable(relative: str, name: str) -> Any:
    return tree(relative)["variables"][name]["value"]


class TestAutomationRules:
    def test_one_rule_on_creation_and_one_on_alerts_added(self) -> None:
        """Created: the scope conditions; Updated: 'alerts were added' (PropertyArrayChanged Alerts/Added) and the same scope."""
        found = rules()
        created, added = found["onCreated"]["properties"], found["onAlertsAdded"]["properties"]
        assert (created["triggeringLogic"]["triggersOn"], created["triggeringLogic"]["triggersWhen"]) == ("Incidents", "Created")
        assert (added["triggeringLogic"]["triggersOn"], added["triggeringLogic"]["triggersWhen"]) == ("Incidents", "Updated")
        assert created["triggeringLogic"]["conditions"] == "scopeConditions"
        concat = added["triggeringLogic"]["conditions"]["function"]
        assert concat["type"] == "concat"
        assert list(concat["parameters"].values()) == [["alertsAddedCondition"], "scopeConditions"]
        assert variable("modules/sentinel-access.bicep", "alertsAddedCondition") == {
            "conditionType": "PropertyArrayChanged",
            "conditionProperties": {"arrayType": "Alerts", "changeType": "Added"},
        }
        assert condition("modules/sentinel-access.bicep", "onAlertsAdded") == "runOnAlertsAdded"
        assert tree("main.bicep")["parameters"]["automationRuleOnAlertsAdded"]["default"] is True

    def test_both_rules_are_off_until_enabled_and_run_the_playbook(self) -> None:
        """Both are disabled by default and run the playbook, nothing else."""
        assert tree("main.bicep")["parameters"]["automationRuleEnabled"]["default"] is False
        for rule in rules().values():
            assert rule["properties"]["triggeringLogic"]["isEnabled"] == "ruleEnabled"
            assert rule["properties"]["actions"] == "runPlaybook"
        (action,) = variable("modules/sentinel-access.bicep", "runPlaybook")
        assert action["actionType"] == "RunPlaybook"
        assert action["actionConfiguration"]["logicAppResourceId"] == "playbookResourceId"

    def test_the_default_scope_is_identity_alerts_not_every_incident(self) -> None:
        """By default the rules need an alert from Entra ID Protection or Defender for Cloud Apps; rule ids and titles are parameters."""
        parameters = tree("main.bicep")["parameters"]
        assert parameters["automationRuleProductNames"]["default"] == [
            "Azure Active Directory Identity Protection",
            "Microsoft Cloud App Security",
        ]
        assert parameters["automationRuleAnalyticRuleIds"]["default"] == []
        assert parameters["automationRuleIncidentTitles"]["default"] == []
        call = module_call("modules/sentinel-access.bicep")
        assert (call["productNames"], call["analyticRuleIds"], call["incidentTitles"]) == (
            "automationRuleProductNames",
            "automationRuleAnalyticRuleIds",
            "automationRuleIncidentTitles",
        )

    def test_products_or_analytics_rules_and_then_titles(self) -> None:
        """Scope = (AlertProductNames OR IncidentRelatedAnalyticRuleIds) AND IncidentTitle, each only when given."""
        sentinel = "modules/sentinel-access.bicep"
        product = variable(sentinel, "productCondition")["conditionProperties"]
        rule = variable(sentinel, "analyticRuleCondition")["conditionProperties"]
        title = variable(sentinel, "titleCondition")["conditionProperties"]
        assert (product["propertyName"], product["operator"], product["propertyValues"]) == (
            "AlertProductNames",
            "Equals",
            "productNames",
        )
        assert (rule["propertyName"], rule["operator"], rule["propertyValues"]) == (
            "IncidentRelatedAnalyticRuleIds",
            "Contains",
            "analyticRuleIds",
        )
        assert (title["propertyName"], title["operator"], title["propertyValues"]) == (
            "IncidentTitle",
            "Contains",
            "incidentTitles",
        )
        either = variable(sentinel, "eitherSource")
        assert either["conditionType"] == "Boolean"
        assert either["conditionProperties"] == {"operator": "Or", "innerConditions": "sourceConditions"}
        assert "titleCondition" in set(leaves(variable(sentinel, "scopeConditions")))
        assert "eitherSource" in set(leaves(variable(sentinel, "sourceScope")))


class TestIdentities:
    def test_three_identities_and_the_app_runs_as_all_three(self) -> None:
        """The app, bot and containment identities are separate modules; the Function App holds all three."""
        calls = module_symbol("modules/identity.bicep")
        assert {symbol: params["name"] for symbol, params in calls.items()} == {
            "identity": "id-${resourceToken}",
            "botIdentity": "id-bot-${resourceToken}",
            "containmentIdentity": "id-contain-${resourceToken}",
        }
        function = module_call("modules/function.bicep")
        assert accessor(function["identityResourceId"]) == ["identity", "outputs", "resourceId"]
        assert accessor(function["botIdentityResourceId"]) == ["botIdentity", "outputs", "resourceId"]
        assert accessor(function["containmentIdentityResourceId"]) == ["containmentIdentity", "outputs", "resourceId"]
        site = one("modules/function.bicep", "Microsoft.Web/sites")
        assert set(site["identity"]["userAssignedIdentities"]) == {
            "'${identityResourceId}'",
            "'${botIdentityResourceId}'",
            "'${containmentIdentityResourceId}'",
        }

    def test_each_setting_names_its_identity(self) -> None:
        """AZURE_CLIENT_ID is the app identity, REPLAY_BOT_APP_ID the bot's, REPLAY_CONTAINMENT_CLIENT_ID the containment one."""
        settings = replay_settings()
        assert accessor(settings["AZURE_CLIENT_ID"]) == ["identity", "outputs", "clientId"]
        assert accessor(settings["REPLAY_BOT_APP_ID"]) == ["botIdentity", "outputs", "clientId"]
        assert accessor(settings["REPLAY_CONTAINMENT_CLIENT_ID"]) == ["containmentIdentity", "outputs", "clientId"]
        outputs = tree("main.bicep")["outputs"]
        assert accessor(outputs["AZURE_BOT_PRINCIPAL_ID"]["value"]) == ["botIdentity", "outputs", "principalId"]
        assert accessor(outputs["AZURE_CONTAINMENT_PRINCIPAL_ID"]["value"]) == ["containmentIdentity", "outputs", "principalId"]
        assert accessor(outputs["AZURE_IDENTITY_PRINCIPAL_ID"]["value"]) == ["identity", "outputs", "principalId"]


class TestGraphGrants:
    def test_the_template_grants_graph_permissions_only_when_asked(self) -> None:
        """graph-grants.bicep runs only with grantGraphPermissions (default false), for the bot and containment identities."""
        assert tree("main.bicep")["parameters"]["grantGraphPermissions"]["default"] is False
        assert condition("main.bicep", "graphGrants") == "grantGraphPermissions"
        call = module_call("modules/graph-grants.bicep")
        assert accessor(call["botPrincipalId"]) == ["botIdentity", "outputs", "principalId"]
        assert accessor(call["containmentPrincipalId"]) == ["containmentIdentity", "outputs", "principalId"]
        assert (call["botPermissions"], call["containmentPermissions"]) == ("botGraphPermissions", "containmentGraphPermissions")

    def test_the_permissions_come_from_the_codes_table(self) -> None:
        """main.bicep reads infra/graph-permissions.json (generated from the code), keyed by the optional actions, gated by containment."""
        table = variable("main.bicep", "graphTable")["function"]
        assert table["type"] == "load_json_content"
        assert (INFRA / next(iter(table["parameters"].values()))).is_file()
        containment = variable("main.bicep", "containmentGraphPermissions")
        assert "REPLAY_CONTAINMENT_ENABLED" in set(leaves(containment))
        assert {"graphTable", "actionKey"} <= set(leaves(containment))
        bot = set(leaves(variable("main.bicep", "botGraphPermissions")))
        assert {"REPLAY_CONTAINMENT_ENABLED", "REPLAY_APPROVER_GROUP_ID", "graphTable"} <= bot
        concat = variable("main.bicep", "actionKey")["function"]["parameters"]["input_array"]["function"]["parameters"]
        named = [variable("main.bicep", part)["operator"]["operands"]["true_value"] for part in concat.values()]
        assert [name for (name,) in named] == list(OPTIONAL_ACTIONS) == load_table()["optionalActions"]

    def test_each_identity_gets_its_list_through_the_graph_extension(self) -> None:
        """appRoleAssignedTo per permission, resolving the app role id from Graph's own service principal; extension pinned."""
        parsed = tree("modules/graph-grants.bicep")
        assert "microsoftGraphV1" in parsed["extensions"]
        config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
        assert config["extensions"]["microsoftGraphV1"] == "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"
        graph = parsed["resources"]["graph"]
        assert (graph["type"], graph["existing"]) == ("Microsoft.Graph/servicePrincipals", True)
        assert graph["config"]["appId"] == "00000003-0000-0000-c000-000000000000"
        for symbol, principal, permissions in (
            ("botGrants", "botPrincipalId", "botPermissions"),
            ("containmentGrants", "containmentPrincipalId", "containmentPermissions"),
        ):
            declared = parsed["resources"][symbol]
            assert declared["type"] == "Microsoft.Graph/appRoleAssignedTo"
            loop = declared["config"]
            assert loop["loop_type"]["detail"]["array_name"] == permissions
            assert loop["config"]["principalId"] == principal
            assert accessor(loop["config"]["resourceId"]) == ["graph", "id"]


class TestBot:
    def test_bot_is_the_bot_identity_with_teams(self) -> None:
        """The Azure Bot authenticates as the bot's own user-assigned identity and has the Teams channel enabled."""
        bot = one("modules/bot.bicep", "Microsoft.BotService/botServices")
        assert bot["kind"] == "azurebot"
        assert bot["properties"]["msaAppType"] == "UserAssignedMSI"
        call = module_call("modules/bot.bicep")
        assert accessor(call["identityClientId"]) == ["botIdentity", "outputs", "clientId"]
        assert accessor(call["identityResourceId"]) == ["botIdentity", "outputs", "resourceId"]
        assert call["messagingEndpoint"] == "https://${function.outputs.defaultHostName}/api/messages"
        channel = one("modules/bot.bicep", "Microsoft.BotService/botServices/channels")
        assert channel["properties"]["channelName"] == "MsTeamsChannel"
        assert channel["properties"]["properties"]["isEnabled"] is True


AZD_BUILT_INS = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"}


class TestAzd:
    def test_azure_yaml_deploys_this_folder_as_a_python_function(self) -> None:
        """azure.yaml names the project, points at infra/main.bicep and declares the api service."""
        document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
        assert document["name"]
        assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
        api = document["services"]["api"]
        assert {key: api[key] for key in ("project", "language", "host")} == {
            "project": ".",
            "language": "python",
            "host": "function",
        }
        assert (ROOT / document["infra"]["path"] / f"{document['infra']['module']}.bicep").is_file()

    def test_hooks_purge_a_left_vault_before_and_store_the_key_after(self) -> None:
        """preprovision runs purge-deleted-vault.sh; the api service's postdeploy runs store-function-key.sh; both stop azd on failure."""
        document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
        hooks = {
            "preprovision": document["hooks"]["preprovision"],
            "postdeploy": document["services"]["api"]["hooks"]["postdeploy"],
        }
        assert hooks["preprovision"]["run"] == "bash infra/scripts/purge-deleted-vault.sh"
        assert hooks["postdeploy"]["run"] == "bash infra/scripts/store-function-key.sh"
        for hook in hooks.values():
            assert hook["continueOnError"] is False
            assert (ROOT / hook["run"].split()[-1]).is_file()

    def test_every_value_a_script_reads_is_an_output_or_an_azd_built_in(self) -> None:
        """Each AZURE_* variable the deployment scripts read is an output of main.bicep or one azd sets itself."""
        outputs = set(tree("main.bicep")["outputs"])
        for script in ("store-function-key.sh", "purge-deleted-vault.sh", "grant-graph-permissions.sh"):
            text = (INFRA / "scripts" / script).read_text(encoding="utf-8")
            read = set(re.findall(r"\$\{(AZURE_[A-Z_]+)[:}-]", text))
            assert read, script
            assert read - outputs - AZD_BUILT_INS == set(), script

    def test_parameters_file_fills_main_bicep(self) -> None:
        """main.parameters.json sets only parameters main.bicep declares, every one without a default, each from the azd environment."""
        document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
        parameters = tree("main.bicep")["parameters"]
        given = set(document["parameters"])
        assert given <= set(parameters)
        required = {name for name, parameter in parameters.items() if "default" not in parameter}
        assert required <= given
        for name, entry in document["parameters"].items():
            match = re.fullmatch(r"\$\{[A-Z0-9_]+(?:=(?P<default>[^}]*))?\}", entry["value"])
            assert match, f"{name} is not taken from the azd environment"
            if match["default"] is not None:
                assert rendered(parameters[name]["default"]) == match["default"], f"{name}: the two defaults differ"
