// The thin Logic App playbook between Sentinel and the Function App: Sentinel's automation rule can only run a
// Logic App with the "Microsoft Sentinel incident" trigger, so this one posts the trigger body, unchanged, to
// POST /api/incidents and does nothing else.
//
// How it authenticates to the function. The endpoint is a function-level HTTP trigger (it needs a function
// key), and Flex Consumption apps carry no Entra ID auth in front of it by default, so the choice is where the
// key lives. It lives in Key Vault: a host key of its own ("sentinel_playbook", so it is rotated or revoked
// without touching any other caller) is stored as a secret, and the Logic App reads it at run time with its
// own managed identity (Key Vault Secrets User on this vault, which holds that one secret). The key is never
// in the workflow definition, its parameters or the deployment's inputs, and both actions hide their inputs
// and outputs from the run history (secureData).
//
// The key and the secret are NOT made here: both go through the Functions host runtime, which answers only
// once code is deployed and the host has started, so making them during provisioning fails a first `azd up`.
// infra/scripts/store-function-key.sh does it after deployment (azd's postdeploy hook), through Azure
// Resource Manager only: it keeps an existing key, and writes the secret with the deployer's Azure role.
// Rotating the key is `az functionapp keys set` and the script again; the Logic App needs no change.
//
// The POST to /api/incidents: the function answers 202 with Durable's status URLs. The asynchronous pattern
// is disabled, so the Logic App takes that 202 as the result instead of polling the status URL until the
// orchestration ends (hours, while an approval waits) and re-sending the incident when polling fails; and its
// outputs are secured too, because those status URLs carry the Durable system key, which would let anyone
// who reads run history raise events on or terminate any orchestration. Retries (exponential, 4 times) cover
// 408/429/5xx and timeouts; the Function App is idempotent by incident and alert set, so a retried delivery is
// answered as a duplicate, never a second run. The function also answers 503 with Retry-After when alerts were
// added while the incident's first run is still enriching: this policy is what sends that delivery again.
targetScope = 'resourceGroup'

@description('Name of the Logic App.')
param workflowName string

@description('Name of the Microsoft Sentinel API connection.')
param connectionName string

@maxLength(24)
@description('Name of the Key Vault that holds the function key.')
param keyVaultName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Default host name of the Function App.')
param functionHostName string

@description('Object id of the "Azure Security Insights" service principal, which runs playbooks for automation rules.')
param securityInsightsPrincipalId string

@description('Grant that principal Microsoft Sentinel Automation Contributor on this resource group. Set false when it already holds the role here (Sentinel settings > Playbook permissions lists this group): an assignment made in the portal has another name, and ARM refuses a second one.')
param grantSentinelAutomationRole bool

// The host key the playbook calls with (infra/scripts/store-function-key.sh creates it), and its secret.
var functionKeyName = 'sentinel_playbook'
var secretName = 'incidents-function-key'
var sentinelApiId = subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')

// Key Vault Secrets User: read one secret's value, nothing else.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Microsoft Sentinel Automation Contributor: lets Sentinel's own principal run playbooks in this group.
var sentinelAutomationContributor = 'f4c81013-99ee-4d62-a7ee-b3f1f648599a'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the Logic App (Consumption) reaches Key Vault from shared multi-tenant addresses that are not a trusted service, so the firewall stays open; RBAC lets only the Logic App's identity read the secret
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109, public network access is how the Consumption Logic App reaches the vault
  // checkov:skip=CKV_AZURE_110: no purge protection on purpose: the vault holds one secret that every deployment rewrites from the Function App, and purge protection would block `azd down --purge` and the purge of a soft-deleted vault that a redeployment under the same name needs
  // checkov:skip=CKV_AZURE_42: soft delete is on (7 days); the check also wants purge protection, left off for the reason given for CKV_AZURE_110
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource connection 'Microsoft.Web/connections@2016-06-01' = {
  name: connectionName
  location: location
  tags: tags
  kind: 'V1'
  properties: {
    displayName: connectionName
    api: {
      id: sentinelApiId
    }
    parameterValueType: 'Alternative'
  }
}

resource workflow 'Microsoft.Logic/workflows@2019-05-01' = {
  name: workflowName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    state: 'Enabled'
    definition: {
      '$schema': 'https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#'
      contentVersion: '1.0.0.0'
      parameters: {
        '$connections': {
          defaultValue: {}
          type: 'Object'
        }
      }
      triggers: {
        Microsoft_Sentinel_incident: {
          type: 'ApiConnectionWebhook'
          inputs: {
            host: {
              connection: {
                name: '@parameters(\'$connections\')[\'azuresentinel\'][\'connectionId\']'
              }
            }
            body: {
              callback_url: '@{listCallbackUrl()}'
            }
            path: '/incident-creation'
          }
        }
      }
      actions: {
        Get_function_key: {
          type: 'Http'
          runAfter: {}
          inputs: {
            method: 'GET'
            uri: '${vault.properties.vaultUri}secrets/${secretName}?api-version=7.4'
            authentication: {
              type: 'ManagedServiceIdentity'
              audience: 'https://vault.azure.net'
            }
          }
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
                'outputs'
              ]
            }
          }
        }
        Post_incident: {
          type: 'Http'
          runAfter: {
            Get_function_key: [
              'Succeeded'
            ]
          }
          inputs: {
            method: 'POST'
            uri: 'https://${functionHostName}/api/incidents'
            headers: {
              'Content-Type': 'application/json'
              'x-functions-key': '@{body(\'Get_function_key\')?[\'value\']}'
            }
            body: '@triggerBody()'
            retryPolicy: {
              type: 'exponential'
              count: 4
              interval: 'PT15S'
              minimumInterval: 'PT10S'
              maximumInterval: 'PT10M'
            }
          }
          operationOptions: 'DisableAsyncPattern'
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
                'outputs'
              ]
            }
          }
        }
      }
      outputs: {}
    }
    parameters: {
      '$connections': {
        value: {
          azuresentinel: {
            connectionId: connection.id
            connectionName: connection.name
            id: sentinelApiId
            connectionProperties: {
              authentication: {
                type: 'ManagedServiceIdentity'
              }
            }
          }
        }
      }
    }
  }
}

resource secretReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, workflow.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: workflow.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay playbook: read the function key it calls POST /api/incidents with'
  }
}

resource automationRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSentinelAutomationRole) {
  name: guid(resourceGroup().id, securityInsightsPrincipalId, sentinelAutomationContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelAutomationContributor)
    principalId: securityInsightsPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Azure Security Insights: run the token-replay playbook from the automation rule'
  }
}

@description('Resource id of the Logic App (the automation rule\'s playbook).')
output resourceId string = workflow.id

@description('Principal id of the Logic App\'s system-assigned identity.')
output principalId string = workflow.identity.principalId

@description('Name of the Key Vault the function key secret goes to.')
output keyVaultName string = vault.name

@description('Name of the Function App host key the playbook calls with.')
output functionKeyName string = functionKeyName

@description('Name of the Key Vault secret holding that key.')
output functionKeySecretName string = secretName
