// The thin Logic App playbook between Sentinel and the Function App: Sentinel's automation rule can only run a
// Logic App with the "Microsoft Sentinel incident" trigger, so this one posts the trigger body, unchanged, to
// POST /api/incidents and does nothing else.
//
// How it authenticates to the function. The endpoint is a function-level HTTP trigger (it needs a function
// key), and Flex Consumption apps carry no Entra ID auth in front of it by default, so the choice is where the
// key lives. It lives in Key Vault: the deployment creates a host key of its own ("sentinel_playbook", so it
// is rotated or revoked without touching any other caller), stores it as a secret, and the Logic App reads it at
// run time with its own managed identity (Key Vault Secrets User on that one secret). The key is never in the
// workflow definition, its parameters or the deployment's inputs, and both actions hide their inputs and
// outputs from the run history (secureData). Rotating it is `az functionapp keys set` plus updating the secret;
// the Logic App needs no change.
//
// Retries: the POST retries (exponential, 4 times) on 408/429/5xx and timeouts; the Function App is idempotent
// by incident, so a retried delivery is answered as a duplicate, never a second run.
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

@description('Name of the Function App (in this resource group).')
param functionAppName string

@description('Default host name of the Function App.')
param functionHostName string

@description('Object id of the "Azure Security Insights" service principal, which runs playbooks for automation rules.')
param securityInsightsPrincipalId string

var functionKeyName = 'sentinel_playbook'
var secretName = 'incidents-function-key'
var sentinelApiId = subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')

// Key Vault Secrets User: read one secret's value, nothing else.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Microsoft Sentinel Automation Contributor: lets Sentinel's own principal run playbooks in this group.
var sentinelAutomationContributor = 'f4c81013-99ee-4d62-a7ee-b3f1f648599a'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// Microsoft.Web/sites/host/functionKeys at the api-version the Functions docs show for host keys as resources.
resource playbookKey 'Microsoft.Web/sites/host/functionKeys@2022-09-01' = {
  name: '${functionAppName}/default/${functionKeyName}'
  properties: {
    name: functionKeyName
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the Logic App (Consumption) reaches Key Vault from shared multi-tenant addresses that are not a trusted service, so the firewall stays open; RBAC lets only the Logic App's identity read the secret
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109, public network access is how the Consumption Logic App reaches the vault
  // checkov:skip=CKV_AZURE_110: no purge protection on purpose: the vault holds one secret that every deployment re-reads from the Function App, and purge protection would block `azd down --purge` and a redeployment under the same name for the retention period
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

resource functionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: a function key has no expiry of its own; an expiry here would only stop the playbook on a date, rotation is done on the Function App
  parent: vault
  name: secretName
  properties: {
    contentType: 'Azure Functions host key for POST /api/incidents'
    value: listKeys('${site.id}/host/default', '2022-09-01').functionKeys[functionKeyName]
    attributes: {
      enabled: true
    }
  }
  dependsOn: [
    playbookKey
  ]
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
          runtimeConfiguration: {
            secureData: {
              properties: [
                'inputs'
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
  name: guid(functionKeySecret.id, workflow.id, keyVaultSecretsUser)
  scope: functionKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: workflow.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay playbook: read the function key it calls POST /api/incidents with'
  }
}

resource automationRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
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
