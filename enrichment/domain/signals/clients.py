"""
Token, client and device evidence: what the sign-ins were made with, against what the user uses.

Explanations of the network do not explain these. Only the organisation's own network or device
vouches for a token-only sign-in's context, and only a Microsoft service explains the absence of a
device, a binding or a familiar app. Rules that compare with the user's reference stay silent
without one rather than call everything new.
"""

from __future__ import annotations

from collections import defaultdict

from common.times import utc_text
from enrichment.domain import networks
from enrichment.domain.model import Column, Signal, Table
from enrichment.domain.picture import Picture
from enrichment.domain.signals.rule import MICROSOFT_SERVICE, NETWORK, NEW_DEVICE, NOTHING, ORGANISATION, Check, rule
from enrichment.domain.signals.wording import addresses, app_name, count, ip_listing, listing

_DEVICE_CODE = "devicecode"
_PRT = "primaryrefreshtoken"


@rule(
    weight=30,
    covered_by=ORGANISATION | NEW_DEVICE,
    reads=NETWORK | {Column.AUTH_DETAILS, Column.DEVICE},
    reason="an MFA claim carried in from elsewhere, on a new network and device, is the AiTM cookie replay",
)
def token_only_new_context(p: Picture, check: Check) -> Signal | None:
    """
    An interactive sign-in satisfied only by a claim in a token, from a new network and device.

    "MFA requirement satisfied by claim in the token" on its own is ordinary single sign-on; it is
    the AiTM cookie replay only when the claim arrives somewhere the user has never been, on a device
    the user never had. Somewhere new is a network the user is not known on, or any address outside
    the sites (/24, /48) of the user's history: a residential proxy inside the user's own ISP or
    carrier is still somewhere the user has never been. A device the user never had is one neither
    in the reference nor reported compliant by Entra: a managed laptop tethered to the user's phone
    carries the claim of its own session, and a copied cookie carries no compliant device.
    """
    if not p.reference.known:
        return None
    rows = [
        s
        for s in p.interactive
        if s.token_only and (s.ip in p.unfamiliar or not p.known_site(s.ip)) and not p.own_device(s) and not check.covers(s.ip)
    ]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    apps = sorted({app_name(s) for s in rows})
    detail = (
        f"{count(sum(s.count for s in rows), 'interactive sign-in')} to {listing(apps)} passed MFA only by a claim "
        f"carried in an existing token, from {ip_listing(p, ips)}: a network and device not in "
        f"{p.reference.describe()}."
    )
    return check.hit(detail, ips)


@rule(
    weight=25,
    covered_by=NOTHING,
    reads={Column.AUTH_PROTOCOL},
    reason="device-code phishing hands the attacker tokens; few users ever use the flow",
)
def device_code_flow(p: Picture, check: Check) -> Signal | None:
    """Device-code authentication, when the user's reference never shows the flow."""
    if _DEVICE_CODE in p.reference.auth_protocols:
        return None
    rows = [s for s in p.rows if s.auth_protocol.lower() == _DEVICE_CODE]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    first = min(s.first for s in rows)
    detail = (
        f"device-code authentication to {listing(sorted({app_name(s) for s in rows}))} from {ip_listing(p, ips)} "
        f"(first at {utc_text(first)}); the flow does not appear in {p.reference.describe()}."
    )
    return check.hit(detail, ips)


@rule(
    weight=20,
    covered_by=NOTHING,
    reads={Column.INCOMING_TOKEN_TYPE, Column.DEVICE},
    reason="a primary refresh token from a device the user never had is a planted device",
)
def prt_unknown_device(p: Picture, check: Check) -> Signal | None:
    """
    A primary refresh token from a device the user never had and the organisation does not manage.

    Compliance is decided by Entra and Intune, not claimed by the client: a new compliant device is
    a new managed laptop or Cloud PC; a planted registration is not compliant.
    """
    if not p.reference.known:
        return None
    rows = [s for s in p.rows if s.incoming_token_type.lower() == _PRT and p.new_device(s) and s.is_compliant is not True]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    devices = sorted({s.device_name or s.device_id or "no device id" for s in rows})
    unbound = any(s.token_protection.lower() == "unbound" for s in rows)
    detail = (
        f"primary refresh token used from device {listing(devices)} at {ip_listing(p, ips)}; "
        f"the device is not in {p.reference.describe()}" + (" and the session is not bound to it." if unbound else ".")
    )
    return check.hit(detail, ips)


@rule(
    weight=20,
    covered_by=NOTHING,
    reads={Column.USER_AGENT},
    reason="people use browsers and Office apps; token replay tools are scripts",
)
def scripted_client(p: Picture, check: Check) -> Signal | None:
    """
    Scripting clients (python-requests, curl, PowerShell, ...) the user's reference never shows.

    An empty user agent counts only on an interactive sign-in: many non-interactive service
    sign-ins carry none, while every browser and Office app sends one when a person signs in.
    """
    if not p.reference.known:
        return None
    known = p.reference.client_families
    families = {agent: networks.scripted_client(agent) for agent in {s.user_agent for s in p.rows}}
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        family = families[s.user_agent]
        if family is None and not s.user_agent and s.table is Table.INTERACTIVE:
            family = "empty user agent"
        if family is not None and family not in known:
            found[family].add(s.ip)
    if not found:
        return None
    ips = addresses(found.values())
    parts = [f"{family} from {ip_listing(p, found[family])}" for family in sorted(found)]
    detail = f"scripted client(s) not in {p.reference.describe()}: {listing(parts)}."
    return check.hit(detail, ips)


@rule(
    weight=15,
    covered_by=NOTHING,
    reads=NETWORK | {Column.APP_ID, Column.DEVICE},
    reason="first-party public clients (CLI, PowerShell, Graph Explorer) accept stolen family refresh tokens",
)
def public_client_new_network(p: Picture, check: Check) -> Signal | None:
    """
    First-party public clients (Azure CLI, PowerShell, Graph Explorer, Office...) new to the user, on a new network.

    A new network, not merely a new address: IPv6 privacy addresses and carriers rotate, and the
    device-code flow logs the phished client from the victim's own browser on the victim's network.
    Sign-ins that carry the user's own or a compliant device are the client running on that device.
    """
    if not p.reference.known:
        return None
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows_from(p.unfamiliar):
        name = networks.FIRST_PARTY_PUBLIC_CLIENTS.get(s.app_id)
        if name and s.app_id not in p.reference.app_ids and not p.own_device(s):
            found[name].add(s.ip)
    if not found:
        return None
    ips = addresses(found.values())
    detail = (
        f"first-party public client(s) {listing(sorted(found))} used from {ip_listing(p, ips)}; "
        f"neither the client nor the network is in {p.reference.describe()}."
    )
    return check.hit(detail, ips)


@rule(
    weight=12,
    covered_by=MICROSOFT_SERVICE | NEW_DEVICE,
    reads=NETWORK | {Column.DEVICE},
    reason="a user who always works on compliant devices suddenly appears without one",
)
def unmanaged_device(p: Picture, check: Check) -> Signal | None:
    """Sign-ins without the user's devices, from a new network, when every device the user had is compliant."""
    ref = p.reference
    if not ref.compliant_device_ids or not ref.device_ids <= ref.compliant_device_ids:
        return None
    candidates = check.uncovered(p.unfamiliar)
    with_known: set[str] = set()
    without: dict[str, int] = defaultdict(int)
    for s in p.rows_from(candidates):
        if s.device_id and s.device_id in ref.device_ids and s.is_compliant is not False:
            with_known.add(s.ip)
        else:
            without[s.ip] += s.count
    ips = sorted(set(without) - with_known)
    if not ips:
        return None
    detail = (
        f"{count(sum(without[ip] for ip in ips), 'sign-in')} from {ip_listing(p, ips)} came from no compliant "
        f"device of the user's; every device in {ref.describe()} is compliant."
    )
    return check.hit(detail, ips)


@rule(
    weight=5,
    covered_by=MICROSOFT_SERVICE | ORGANISATION | NEW_DEVICE,
    reads=NETWORK | {Column.TOKEN_PROTECTION, Column.DEVICE},
    reason="an unbound session can be lifted and replayed; weak on its own",
)
def unbound_session_new_network(p: Picture, check: Check) -> Signal | None:
    """Sessions not bound to a device (token protection "unbound"), on a new network and device."""
    if not p.reference.known:
        return None
    candidates = check.uncovered(p.unfamiliar)
    ips = sorted({s.ip for s in p.rows_from(candidates) if s.token_protection.lower() == "unbound" and p.new_device(s)})
    if not ips:
        return None
    detail = f"sign-ins from {ip_listing(p, ips)} used a session not bound to any device (token protection unbound)."
    return check.hit(detail, ips)


@rule(
    weight=8,
    covered_by=MICROSOFT_SERVICE | ORGANISATION | NEW_DEVICE,
    reads=NETWORK | {Column.APP_ID, Column.RESOURCE},
    reason="attackers browse what the user never opens; weak, users try new apps too",
)
def new_app(p: Picture, check: Check) -> Signal | None:
    """Apps or resources the user never used, reached from a network the user is not known on."""
    if not p.reference.known:
        return None
    ref = p.reference
    candidates = check.uncovered(p.unfamiliar)
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows_from(candidates):
        if s.app_id and s.app_id not in ref.app_ids:
            found[app_name(s)].add(s.ip)
        elif s.resource and ref.resources and s.resource not in ref.resources:
            found[s.resource].add(s.ip)
    if not found:
        return None
    ips = addresses(found.values())
    detail = f"apps or resources not in {ref.describe()}: {listing(sorted(found), 5)}, from {ip_listing(p, ips)}."
    return check.hit(detail, ips)
