"""
A fake `az` for the Graph permission script: `az rest` against an in-file Microsoft Graph.

The script under test runs it as `az` (first on PATH). Its state (the Graph service principal with
its appRoles, the identity's appRoleAssignments, the page size) is a JSON file named by
FAKE_AZ_STATE; every call is appended to the JSON-lines log FAKE_AZ_LOG, so a test sees exactly
which reads and writes the script made. It answers only the calls Graph documents, with Graph's
shapes and errors (a duplicate assignment is a 400, an unknown one a 404, paging by @odata.nextLink),
and refuses any other argument, so a script that misuses `az rest` fails here as it would there.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH = "https://graph.microsoft.com/v1.0"
_OPTIONS = {"--method": "method", "-m": "method", "--url": "url", "--uri": "url", "-u": "url", "--body": "body", "-b": "body"}
_OPTIONS |= {"--headers": "headers", "--output": "output", "-o": "output"}


def _fail(status: int, code: str, message: str) -> int:
    """What `az rest` prints for an HTTP error, and its exit status."""
    reason = {400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    print(f"{reason}({json.dumps({'error': {'code': code, 'message': message}})})", file=sys.stderr)
    return 1


def _parse(argv: list[str]) -> dict[str, str]:
    if not argv or argv[0] != "rest":
        raise SystemExit(f"fake az: only 'az rest' is answered, got {argv[:1]}")
    args: dict[str, str] = {}
    rest = argv[1:]
    while rest:
        flag, *rest = rest
        if flag not in _OPTIONS or not rest:
            raise SystemExit(f"fake az: unknown or incomplete argument {flag!r}")
        value, *rest = rest
        args[_OPTIONS[flag]] = value
    if "method" not in args or "url" not in args:
        raise SystemExit("fake az: az rest needs --method and --url")
    return args


def _answer(state: dict[str, Any], method: str, url: str, body: str | None) -> tuple[int, Any]:
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
    if principal != state["principal"]:
        return _fail(404, "Request_ResourceNotFound", f"Resource '{principal}' does not exist"), None
    held: list[dict[str, Any]] = state["assignments"]
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
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, principal + wanted["appRoleId"])),
            "principalId": principal,
            "resourceId": sp["id"],
            "appRoleId": wanted["appRoleId"],
        }
        held.append(created)
        return 0, created
    if method == "delete" and len(path) == 4:
        remaining = [a for a in held if a["id"] != path[3]]
        if len(remaining) == len(held):
            return _fail(404, "Request_ResourceNotFound", f"Resource '{path[3]}' does not exist"), None
        state["assignments"] = remaining
        return 0, None
    return _fail(405, "Request_BadRequest", f"{method.upper()} {parts.path} is not supported"), None


def main(argv: list[str]) -> int:
    args = _parse(argv)
    state_file = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_file.read_text())
    method = args["method"].lower()
    with Path(os.environ["FAKE_AZ_LOG"]).open("a") as log:
        log.write(json.dumps({"method": method, "url": args["url"], "body": args.get("body")}) + "\n")
    status, document = _answer(state, method, args["url"], args.get("body"))
    state_file.write_text(json.dumps(state))
    if status == 0 and document is not None and args.get("output", "json") != "none":
        print(json.dumps(document, indent=2))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
