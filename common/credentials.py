"""
The Function App's Azure identity: the one rule every Azure adapter uses to pick its credential.

The user-assigned managed identity named by AZURE_CLIENT_ID when set (DefaultAzureCredential would
otherwise take whichever identity it finds first, maybe one without the roles), else
DefaultAzureCredential: the system-assigned identity in Azure, `az login` on a laptop. Log Analytics
and Sentinel use the synchronous credential, Graph (msgraph-sdk is async) the asynchronous one.
azure-identity is imported when a credential is made, never at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential


def default_credential(settings: Settings) -> TokenCredential:
    """The synchronous credential of the rule in the module docstring."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.managed_identity_client_id:
        return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return DefaultAzureCredential()


def default_async_credential(settings: Settings) -> AsyncTokenCredential:
    """The asynchronous credential of the same rule, for the async SDKs."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if settings.managed_identity_client_id:
        return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return DefaultAzureCredential()
