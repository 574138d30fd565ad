"""
The one JSON codec of the Durable workflow: typed contracts in, plain JSON out, and back, strictly.

Durable Functions keeps every activity input and output, every external event and every custom
status as JSON text in its history, and hands them back on replay. The bindings stay JSON (the
Functions worker refuses builtin generics as binding annotations); the contract is decoded here, at
the edge, into the frozen dataclasses of `playbooks.domain.workflow`, and encoded here on the way out.

Decoding is strict, because history outlives deployments and events can be raised by anyone holding
the host's key: an unknown key, a missing field, a value of the wrong type or a time without a zone
raises `InputError` naming the path (`ApprovalDecision.decided_at: ...`), never a half-read value.

What it knows:

* frozen dataclasses, field by field (their type hints say what each field holds);
* `str`, `int` (not `bool`), `bool`, `X | None`, `tuple[X, ...]` and fixed tuples, string enums;
* `datetime`, as ISO 8601 with a zone (`...Z` for UTC);
* `dict[str, Any]`: an opaque JSON object (an Adaptive Card), copied as it is;
* the domain values that validate themselves: `Account` (a UPN or an object id),
  `ContainmentPlan` (rebuilt and checked against its digest, since a decision is bound to it; what
  attack disruption already did and the steps by hand travel with it) and
  `SentinelIncident` (every ARM segment checked against its pattern, since they become URLs).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from common.errors import InputError
from enrichment.domain.model import Account
from playbooks.domain.incident import SentinelIncident, account_from_json, account_json
from playbooks.domain.plan import ActionKind, ContainmentPlan, ProposedAction

T = TypeVar("T")

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any, str], Any]


def encode(value: object) -> Any:
    """`value` as plain JSON values (dicts, lists, strings, numbers, booleans, None)."""
    custom = _CUSTOM.get(type(value))
    if custom is not None:
        return custom[0](value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    msg = f"cannot encode a {type(value).__name__} as workflow JSON"
    raise TypeError(msg)


def decode(cls: type[T], data: object) -> T:
    """
    A `cls` from JSON values, or from their JSON text (the Durable client JSON-encodes event data
    before posting it, so what an orchestrator receives depends on the host's decoding).
    """
    if isinstance(data, str | bytes) and cls is not str:
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            msg = f"{cls.__name__}: not JSON ({error})"
            raise InputError(msg) from error
    return typing.cast("T", _decode(cls, data, cls.__name__))


def dumps(value: object) -> str:
    """The JSON text of `value` (compact, keys in field order)."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def iso(moment: datetime) -> str:
    """An aware time as ISO 8601, UTC written as `Z`."""
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(value: object, path: str) -> datetime:
    """An aware datetime from ISO 8601 text, or `InputError` naming `path`."""
    if not isinstance(value, str):
        msg = f"{path}: expected an ISO 8601 time, got {_shown(value)}"
        raise InputError(msg)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        msg = f"{path}: not an ISO 8601 time: {value[:60]!r}"
        raise InputError(msg) from error
    if moment.tzinfo is None:
        msg = f"{path}: the time {value[:60]!r} has no time zone"
        raise InputError(msg)
    return moment


# -- decoding -------------------------------------------------------------------------------------


def _shown(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _decode(hint: Any, data: object, path: str) -> Any:
    custom = _CUSTOM.get(hint) if isinstance(hint, type) else None
    if custom is not None:
        return custom[1](data, path)
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if data is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            msg = f"{path}: unions of several types are not part of the contract"
            raise TypeError(msg)
        return _decode(options[0], data, path)
    if origin is tuple:
        return _tuple(typing.get_args(hint), data, path)
    if origin is dict:
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            msg = f"{path}: expected a JSON object, got {_shown(data)}"
            raise InputError(msg)
        return dict(data)
    if hint is Any:
        return data
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, data, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(data)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in hint)
            msg = f"{path}: {_shown(data)} is not one of {allowed}"
            raise InputError(msg) from None
    if hint is datetime:
        return parse_time(data, path)
    if hint is bool:
        if isinstance(data, bool):
            return data
    elif hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif hint is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
    elif hint is str:
        if isinstance(data, str):
            return data
    else:
        msg = f"{path}: the type {hint!r} is not part of the workflow contract"
        raise TypeError(msg)
    msg = f"{path}: expected {hint.__name__}, got {_shown(data)}"
    raise InputError(msg)


def _tuple(args: tuple[Any, ...], data: object, path: str) -> tuple[Any, ...]:
    if not isinstance(data, list):
        msg = f"{path}: expected a list, got {_shown(data)}"
        raise InputError(msg)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], item, f"{path}[{index}]") for index, item in enumerate(data))
    if len(data) != len(args):
        msg = f"{path}: expected {len(args)} items, got {len(data)}"
        raise InputError(msg)
    return tuple(_decode(arg, item, f"{path}[{index}]") for index, (arg, item) in enumerate(zip(args, data, strict=True)))


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """A dataclass's resolved field types (resolved once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _object(data: object, path: str, allowed: frozenset[str] | set[str]) -> Mapping[str, Any]:
    """A JSON object whose keys are all `allowed`; anything else is refused by name."""
    if not isinstance(data, Mapping):
        msg = f"{path}: expected a JSON object, got {_shown(data)}"
        raise InputError(msg)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        msg = f"{path}: unknown field(s) {', '.join(unknown)}"
        raise InputError(msg)
    return data


def _dataclass(cls: type[Any], data: object, path: str) -> Any:
    fields = dataclasses.fields(cls)
    mapping = _object(data, path, {f.name for f in fields})
    hints = _hints(cls)
    values: dict[str, Any] = {}
    missing = []
    for item in fields:
        if item.name in mapping:
            values[item.name] = _decode(hints[item.name], mapping[item.name], f"{path}.{item.name}")
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            missing.append(item.name)
    if missing:
        msg = f"{path}: missing field(s) {', '.join(missing)}"
        raise InputError(msg)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        msg = f"{path}: {error}"
        raise InputError(msg) from error


# -- the domain values that check themselves -------------------------------------------------------


def _account(data: object, path: str) -> Account:
    mapping = _object(data, path, {"upn", "object_id"})
    texts = {key: mapping.get(key, "") for key in ("upn", "object_id")}
    bad = [key for key, value in texts.items() if not isinstance(value, str)]
    if bad:
        msg = f"{path}: {', '.join(bad)} must be text"
        raise InputError(msg)
    try:
        return account_from_json(mapping)
    except ValueError as error:
        msg = f"{path}: {error}"
        raise InputError(msg) from error


_PLAN_FIELDS = frozenset({"incident_id", "account", "actions", "needs_approval", "reason", "digest"})
#: Fields a plan of an earlier release stored without (still waiting in history across a deployment).
_PLAN_OPTIONAL = frozenset({"already_done", "manual"})


def plan_document(plan: ContainmentPlan) -> dict[str, Any]:
    """What a plan says on its own (the local run's `result.json` shows this): the actions, why, and the digest."""
    return {
        "needs_approval": plan.needs_approval,
        "reason": plan.reason,
        "actions": [{"kind": a.kind.value, "description": a.description, "destructive": a.destructive} for a in plan.actions],
        "already_done": [{"kind": kind.value, "by": who} for kind, who in plan.already_done],
        "manual": list(plan.manual),
        "digest": plan.digest,
    }


def _plan_json(plan: ContainmentPlan) -> dict[str, Any]:
    return {"incident_id": plan.incident_id, "account": account_json(plan.account), **plan_document(plan)}


def _plan(data: object, path: str) -> ContainmentPlan:
    """
    The plan rebuilt from history and checked against its digest: the digest is what a decision is
    bound to, and a stored plan that does not reproduce it was damaged or altered.
    """
    mapping = _object(data, path, _PLAN_FIELDS | _PLAN_OPTIONAL)
    missing = sorted(_PLAN_FIELDS - set(mapping))
    if missing:
        msg = f"{path}: missing field(s) {', '.join(missing)}"
        raise InputError(msg)
    actions_data = mapping["actions"]
    if not isinstance(actions_data, list):
        msg = f"{path}.actions: expected a list, got {_shown(actions_data)}"
        raise InputError(msg)
    actions = []
    for index, item in enumerate(actions_data):
        where = f"{path}.actions[{index}]"
        action = _object(item, where, {"kind", "description", "destructive"})
        kind = _decode(ActionKind, action.get("kind"), f"{where}.kind")
        actions.append(ProposedAction(kind, _decode(str, action.get("description"), f"{where}.description")))
    done_data = mapping.get("already_done", [])
    if not isinstance(done_data, list):
        msg = f"{path}.already_done: expected a list, got {_shown(done_data)}"
        raise InputError(msg)
    done = []
    for index, item in enumerate(done_data):
        where = f"{path}.already_done[{index}]"
        entry = _object(item, where, {"kind", "by"})
        done.append((_decode(ActionKind, entry.get("kind"), f"{where}.kind"), _decode(str, entry.get("by"), f"{where}.by")))
    plan = ContainmentPlan(
        _decode(str, mapping["incident_id"], f"{path}.incident_id"),
        _account(mapping["account"], f"{path}.account"),
        tuple(actions),
        _decode(bool, mapping["needs_approval"], f"{path}.needs_approval"),
        _decode(str, mapping["reason"], f"{path}.reason"),
        tuple(done),
        _decode(tuple[str, ...], mapping.get("manual", []), f"{path}.manual"),
    )
    if plan.digest != mapping["digest"]:
        msg = f"{path}: the stored containment plan does not match its digest"
        raise InputError(msg)
    return plan


_INCIDENT_FIELDS = frozenset(f.name for f in dataclasses.fields(SentinelIncident))


def _incident(data: object, path: str) -> SentinelIncident:
    mapping = _object(data, path, _INCIDENT_FIELDS)
    try:
        return SentinelIncident.from_json(mapping)
    except InputError as error:
        msg = f"{path}: {error}"
        raise InputError(msg) from error


_CUSTOM: dict[type[Any], tuple[Encoder, Decoder]] = {
    Account: (account_json, _account),
    ContainmentPlan: (_plan_json, _plan),
    SentinelIncident: (lambda incident: incident.to_json(), _incident),
}
