"""
A fake `az` for the deployment scripts: `az rest` against an in-file Microsoft Graph and ARM, plus the
`az functionapp keys` and `az keyvault` commands the scripts use.

The script under test runs it as `az` (first on PATH). Its state is a JSON file named by FAKE_AZ_STATE:

* `graph_sp` (the Graph service principal with its appRoles), `principals` (the identities that exist),
  `assignments` (their appRoleAssignments, each with its `principalId`), `page_size`;
* `function_app` {`keys`: host function keys by name, `starting`: how many key calls fail before the host
  answers}, `secrets` (Key Vault secrets written through ARM, by vault/name);
* `deleted_vaults` (what `az keyvault list-deleted` returns), `purged` (what was purged).

Every call is appended to the JSON-lines log FAKE_AZ_LOG, so a test sees exactly which reads and writes the
script made. It answers only the calls the services document, with their shapes and errors: app-role
assignment ids are base64url strings as Graph makes them (never GUIDs), a duplicate assignment is a 400, an
unknown one a 404, paging is by @odata.nextLink; and it refuses any other argument, so a script that misuses
`az` fails here as it would there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH = "https://graph.microsoft.com/v1.0"
#: An app-role assignment id exactly as Graph returned one (base64url, 43 characters, not a GUID).
REAL_ASSIGNMENT_ID = "41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE"
_OPTIONS = {"--method": "method", "-m": "method", "--url": "url", "--uri": "url", "-u": "url", "--body": "body", "-b": "body"}
_OPTIONS |= {"--headers": "headers", "--output": "output", "-o": "output", "--subscription": "subscription"}
_OPTIONS |= {"--resource-group": "group", "-g": "group", "--name": "name", "-n": "name", "--key-type": "key_type"}
_OPTIONS |= {"--key-name": "key_name", "--resource-type": "resource_type", "--location": "location", "-l": "location"}
_SECRET_URL = re.compile(
    r"^/subscriptions/(?P<sub>[0-9a-f-]{36})/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.KeyVault/vaults/"
    r"(?P<vault>[^/]+)/secrets/(?P<secret>[^/?]+)\?api-version=\d{4}-\d{2}-\d{2}$"
)


def assignment_id(principal: str, app_role_id: str) -> str:
    """An id of Graph's shape: base64url of the principal's GUID bytes and 16 more, unpadded (43 characters)."""
    tail = hashlib.sha256(f"{principal}/{app_role_id}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(uuid.UUID(principal).bytes_le + tail).decode().rstrip("=")


def _fail(status: int, code: str, message: str) -> int:
    """What `az` prints for an HTTP error, and its exit status."""
    reason = {400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}.get(status, "Error")
    print(f"{reason}({json.dumps({'error': {'code': code, 'message': message}})})", file=sys.stderr)
    return 1


def _parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """(command, options): `rest`, `functionapp keys list|set` or `keyvault list-deleted|purge`."""
    commands = {("rest",): 1, ("functionapp", "keys", "list"): 3, ("functionapp", "keys", "set"): 3}
    commands |= {("keyvault", "list-deleted"): 2, ("keyvault", "purge"): 2}
    words = next((words for words in commands if tuple(argv[: len(words)]) == words), None)
    if words is None:
        raise SystemExit(f"fake az: command not answered: {argv[:3]}")
    args: dict[str, str] = {}
    rest = argv[len(words) :]
    while rest:
        flag, *rest = rest
        if flag not in _OPTIONS or not rest:
            raise SystemExit(f"fake az: unknown or incomplete argument {flag!r}")
        value, *rest = rest
        args[_OPTIONS[flag]] = value
    return " ".join(words), args


def _graph(state: dict[str, Any], method: str, url: str, body: str | None) -> tuple[int, Any]:
    """(0, JSON to print) or (exit status, None) after printing the error."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" + "/v1.0" != GRAPH or not parts.path.startswith("/v1.0/"):
        return _fail(404, "BadRequest", f"not a Graph v1.0 URL: {url}"), None
    path = parts.path.removeprefix("/v1.0/").split("/")
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    sp = state["graph_sp"]
    if method == "get" and path == ["servicePrincipals"]:
        if query.get("$filter") != f"appId eq '{GRAPH_APP_ID}'":
            return _fail(400, "BadRequest", f"unexpected $filter {query.get('$filter')!r}"), None
        return 0, {"@odata.context": f"{GRAPH}/$metadata#servicePrincipals", "value": [sp]}
    if len(path) < 3 or path[0] != "servicePrincipals" or path[2] != "appRoleAssignments":
        return _fail(404, "Request_ResourceNotFound", f"no such resource: {parts.path}"), None
    principal = path[1]
    if principal not in state["principals"]:
        return _fail(404, "Request_ResourceNotFound", f"Resource '{principal}' does not exist"), None
    held = [a for a in state["assignments"] if a["principalId"] == principal]
    if method == "get" and len(path) == 3:
        start = int(query.get("$skiptoken", "0"))
        size = state.get("page_size", 100)
        page: dict[str, Any] = {"value": held[start : start + size]}
        if start + size < len(held):
            page["@odata.nextLink"] = f"{GRAPH}/servicePrincipals/{principal}/appRoleAssignments?$skiptoken={start + size}"
        return 0, page
    if method == "post" and len(path) == 3:
        wanted = json.loads(body or "{}")
        if wanted.get("principalId") != principal or wanted.get("resourceId") != sp["id"]:
            return _fail(400, "Request_BadRequest", "principalId or resourceId does not match"), None
        if wanted.get("appRoleId") not in {role["id"] for role in sp["appRoles"]}:
            return _fail(400, "Request_BadRequest", "Permission being assigned was not found on application"), None
        if any(a["appRoleId"] == wanted["appRoleId"] and a["resourceId"] == sp["id"] for a in held):
            return _fail(400, "Request_BadRequest", "Permission being assigned already exists on the object"), None
        created = {
            "id": assignment_id(principal, wanted["appRoleId"]),
            "principalId": principal,
            "resourceId": sp["id"],
            "appRoleId": wanted["appRoleId"],
        }
        state["assignments"].append(created)
        return 0, created
    if method == "delete" and len(path) == 4:
        remaining = [a for a in state["assignments"] if not (a["principalId"] == principal and a["id"] == path[3])]
        if len(remaining) == len(state["assignments"]):
            return _fail(404, "Request_ResourceNotFound", f"Resource '{path[3]}' does not exist"), None
        state["assignments"] = remaining
        return 0, None
    return _fail(405, "Request_BadRequest", f"{method.upper()} {parts.path} is not supported"), None


def _arm(state: dict[str, Any], method: str, url: str, body: str | None) -> tuple[int, Any]:
    """ARM by resource path (az rest prefixes the cloud's ARM endpoint): only a Key Vault secret PUT."""
    match = _SECRET_URL.match(url)
    if method != "put" or match is None:
        return _fail(404, "ResourceNotFound", f"{method.upper()} {url} is not supported"), None
    if not body or not body.startswith("@"):
        return _fail(400, "InvalidRequestContent", "expected the body in a file (--body @FILE)"), None
    document = json.loads(Path(body[1:]).read_text())
    value = document.get("properties", {}).get("value")
    if not isinstance(value, str) or not value:
        return _fail(400, "BadRequest", "properties.value is required"), None
    state.setdefault("secrets", {})[f"{match['vault']}/{match['secret']}"] = value
    return 0, {"id": url.split("?", maxsplit=1)[0], "properties": {"contentType": document["properties"].get("contentType")}}


def _keys(state: dict[str, Any], command: str, args: dict[str, str]) -> tuple[int, Any]:
    app = state.get("function_app", {})
    if args.get("name") != app.get("name") or args.get("group") != app.get("group"):
        return _fail(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{args.get('name')}' was not found"), None
    if app.get("starting", 0) > 0:
        app["starting"] -= 1
        return _fail(400, "BadRequest", "Encountered an error (ServiceUnavailable) from host runtime."), None
    if command.endswith("list"):
        return 0, {"functionKeys": dict(app["keys"]), "masterKey": "m" * 40, "systemKeys": {}}
    if args.get("key_type") != "functionKeys" or not args.get("key_name"):
        return _fail(400, "BadRequest", "--key-type functionKeys and --key-name are required"), None
    value = base64.urlsafe_b64encode(hashlib.sha256(args["key_name"].encode()).digest()).decode()
    app["keys"][args["key_name"]] = value
    return 0, {"name": args["key_name"], "value": value}


def _keyvault(state: dict[str, Any], command: str, args: dict[str, str]) -> tuple[int, Any]:
    deleted: list[dict[str, Any]] = state.setdefault("deleted_vaults", [])
    if command.endswith("list-deleted"):
        return 0, deleted
    found = [v for v in deleted if v["name"] == args.get("name") and v["properties"]["location"] == args.get("location")]
    if not found:
        return _fail(404, "DeletedVaultNotFound", f"Deleted vault {args.get('name')} not found"), None
    state["deleted_vaults"] = [v for v in deleted if v not in found]
    state.setdefault("purged", []).append(args["name"])
    return 0, None


def install(folder: Path) -> Path:
    """Write an `az` launcher for this fake into `folder`/bin and return that folder, for the front of PATH."""
    launcher = folder / "bin" / "az"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{__file__}" "$@"\n')
    launcher.chmod(0o755)
    return launcher.parent


def run_script(
    script: Path,
    args: tuple[str, ...],
    *,
    folder: Path,
    drop: tuple[str, ...],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a deployment script with the fake first on PATH, its state and log in `folder`, and no variable starting with `drop`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    clean |= {
        "PATH": f"{folder / 'bin'}{os.pathsep}{clean['PATH']}",
        "PYTHON": sys.executable,
        "FAKE_AZ_STATE": str(folder / "state.json"),
        "FAKE_AZ_LOG": str(folder / "calls.jsonl"),
    }
    return subprocess.run(
        ["bash", str(script), *args],
        env=clean | dict(env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def main(argv: list[str]) -> int:
    command, args = _parse(argv)
    state_file = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_file.read_text())
    with Path(os.environ["FAKE_AZ_LOG"]).open("a") as log:
        entry = {**args, "command": command, "method": args.get("method", "").lower(), "url": args.get("url", "")}
        log.write(json.dumps(entry) + "\n")
    if command == "rest":
        if "method" not in args or "url" not in args:
            raise SystemExit("fake az: az rest needs --method and --url")
        method = args["method"].lower()
        answer = _arm if args["url"].startswith("/") else _graph
        status, document = answer(state, method, args["url"], args.get("body"))
    elif command.startswith("functionapp"):
        status, document = _keys(state, command, args)
    else:
        status, document = _keyvault(state, command, args)
    state_file.write_text(json.dumps(state))
    if status == 0 and document is not None and args.get("output", "json") != "none":
        print(json.dumps(document, indent=2))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
