"""
Which Entra directory roles are privileged: the ones an approver must know the suspect account holds.

Microsoft marks a role PRIVILEGED when it can manage credentials, policies or other privileged roles,
or read or change sensitive data broadly ("Microsoft Entra built-in roles", the PRIVILEGED label).
IdentityInfo lists role names only, so the list is by name; names are compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable

PRIVILEGED_ROLES = frozenset(
    name.lower()
    for name in (
        "Application Administrator",
        "Application Developer",
        "Authentication Administrator",
        "Authentication Extensibility Administrator",
        "B2C IEF Keyset Administrator",
        "Cloud Application Administrator",
        "Cloud Device Administrator",
        "Conditional Access Administrator",
        "Directory Writers",
        "Domain Name Administrator",
        "External Identity Provider Administrator",
        "Global Administrator",
        "Global Reader",
        "Helpdesk Administrator",
        "Hybrid Identity Administrator",
        "Intune Administrator",
        "Lifecycle Workflows Administrator",
        "Partner Tier1 Support",
        "Partner Tier2 Support",
        "Password Administrator",
        "Privileged Authentication Administrator",
        "Privileged Role Administrator",
        "Security Administrator",
        "Security Operator",
        "Security Reader",
        "User Administrator",
    )
)


def privileged(role_names: Iterable[str]) -> tuple[str, ...]:
    """The privileged roles among `role_names`, as written, sorted, once each."""
    return tuple(sorted({name for name in role_names if name.strip().lower() in PRIVILEGED_ROLES}))
