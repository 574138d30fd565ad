"""
What the directory and the mailbox hold about one user, as the product's own values.

The Graph adapter builds these from Microsoft Graph answers; the pure audits (`footholds`) judge
them; containment acts on them. Every string here was chosen by whoever created the object, which
for a device, a method or an inbox rule may be the attacker: they stay raw data, and the renderers
escape them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Authentication method kinds (the @odata.type name without "AuthenticationMethod") Graph can delete.
DELETABLE_METHOD_KINDS = frozenset(
    {
        "email",
        "external",
        "fido2",
        "microsoftAuthenticator",
        "phone",
        "platformCredential",
        "softwareOath",
        "temporaryAccessPass",
        "windowsHelloForBusiness",
    }
)


@dataclass(frozen=True, slots=True)
class AuthMethod:
    """
    One registered authentication method.

    `kind` comes from @odata.type ("microsoftAuthenticator", "phone", "fido2", ...). `label` is what
    identifies it to a person (display name, phone number, e-mail address, device): it is chosen by
    whoever registered the method, possibly the attacker, so it stays raw data here.
    """

    id: str
    kind: str
    label: str = ""
    created_at: datetime | None = None

    @property
    def deletable(self) -> bool:
        return self.kind in DELETABLE_METHOD_KINDS


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    """
    A device registered or joined by the user (Graph `registeredDevices`).

    `id` is the directory object id (what DELETE /devices/{id} takes), `device_id` the id the device
    itself reports; `name` is the device's own display name, chosen by whoever registered it.
    """

    id: str
    name: str = ""
    device_id: str = ""
    operating_system: str = ""
    registered_at: datetime | None = None
    enabled: bool | None = None
    trust_type: str = ""  # "Workplace" (registered), "AzureAd" (joined), "ServerAd" (hybrid joined)


@dataclass(frozen=True, slots=True)
class MessageRule:
    """An inbox rule of the user's mailbox (Graph `messageRules`); `actions` names what it does, in words."""

    id: str
    name: str
    enabled: bool = True
    actions: tuple[str, ...] = ()
