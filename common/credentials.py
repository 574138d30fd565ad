"""
The Azure identities: the one rule every Azure adapter uses to pick its credential, per identity.

The deployment runs three user-assigned managed identities (playbooks/domain/permissions.py):

* the app identity, AZURE_CLIENT_ID: Log Analytics and Sentinel (`default_credential`);
* the containment identity, REPLAY_CONTAINMENT_CLIENT_ID: Graph for containment (`containment_async_credential`);
* the bot identity, REPLAY_BOT_APP_ID: the approver check on Graph (`bot_async_credential`); the bot's Bot
  Framework token comes from the same identity through the Agents SDK.

Each is the user-assigned managed identity named by its client id when set (DefaultAzureCredential would
otherwise take whichever identity it finds first, maybe one without the roles), else the app identity's
rule: AZURE_CLIENT_ID when set, else DefaultAzureCredential (the system-assigned identity in Azure,
`az login` on a laptop), so a deployment that runs everything as one identity needs no new setting.
Log Analytics and Sentinel use the synchronous credential, Graph (msgraph-sdk is async) the asynchronous
one. azure-identity is imported when a credential is made, never at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential


def default_credential(settings: Settings) -> TokenCredential:
    """The app identity, synchronous: the rule in the module docstring."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.managed_identity_client_id:
        return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return DefaultAzureCredential()


def default_async_credential(settings: Settings, client_id: str = "") -> AsyncTokenCredential:
    """The asynchronous credential: the managed identity `client_id` when given, else the app identity's rule."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    chosen = client_id or settings.managed_identity_client_id
    if chosen:
        return ManagedIdentityCredential(client_id=chosen)
    return DefaultAzureCredential()


def containment_async_credential(settings: Settings) -> AsyncTokenCredential:
    """Graph for containment: the containment identity (REPLAY_CONTAINMENT_CLIENT_ID), else the app identity."""
    return default_async_credential(settings, settings.containment_client_id)


def bot_async_credential(settings: Settings) -> AsyncTokenCredential:
    """Graph for the approver check: the bot's own identity (REPLAY_BOT_APP_ID), else the app identity."""
    return default_async_credential(settings, settings.bot_app_id)
