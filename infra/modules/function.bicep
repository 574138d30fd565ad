// The Function App on the Flex Consumption plan, its storage account, and the storage roles of its identity.
// No connection string or key anywhere: the host, Durable Functions and the deployment container all reach
// storage with the user-assigned identity (shared key access is off), and telemetry goes to Application
// Insights with Entra ID auth.
//
// Flex Consumption rejects several siteConfig properties other plans accept (ARM error 51021, "The following
// site configuration properties (Site.SiteConfig.FtpsState, ...) for Flex Consumption sites is invalid"):
// the runtime lives in functionAppConfig.runtime and scaling in functionAppConfig.scaleAndConcurrency, and
// siteConfig carries only what Flex still reads. tests/infra/test_bicep.py holds the list and checks every
// Bicep file against it. FTP stays off without ftpsState: the ftp publishing-credential policy below
// refuses FTP's only credential.
targetScope = 'resourceGroup'

@description('Name of the Function App (also its host name: <appName>.azurewebsites.net).')
param appName string

@description('Name of the Flex Consumption plan.')
param planName string

@maxLength(24)
@description('Name of the storage account (host state, Durable Functions task hub, deployment package).')
param storageAccountName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@allowed([
  '3.11'
  '3.13'
])
@description('Python version of the Function App.')
param pythonVersion string

@minValue(1)
@maxValue(1000)
@description('Most Flex Consumption instances.')
param maximumInstanceCount int

@description('Resource id of the user-assigned identity the app runs as (host, storage, telemetry, Log Analytics, Sentinel).')
param identityResourceId string

@description('Resource id of the approval bot\'s identity: the code takes its tokens for Bot Framework and the approver check.')
param botIdentityResourceId string

@description('Resource id of the containment identity: the code takes its tokens for Graph containment.')
param containmentIdentityResourceId string

@description('Client id of that identity.')
param identityClientId string

@description('Principal id of that identity, granted the storage data roles.')
param functionPrincipalId string

@description('Application Insights connection string (endpoint and identifier; ingestion needs the identity).')
param appInsightsConnectionString string

@description('The app settings the code reads (REPLAY_* and AZURE_CLIENT_ID), name to value.')
param replaySettings object

var deploymentContainerName = 'app-package'

// The three storage data roles of playbooks/domain/permissions.py AZURE_ROLES, by built-in role id.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

module storage 'br/public:avm/res/storage/storage-account:0.25.0' = {
  name: 'storage-avm'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    kind: 'StorageV2'
    skuName: 'Standard_LRS'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
          publicAccess: 'None'
        }
      ]
    }
    enableTelemetry: false
  }
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: host and Durable Functions blobs, leases, deployment package'
  }
  dependsOn: [
    storage
  ]
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: Durable Functions control and work-item queues'
  }
  dependsOn: [
    storage
  ]
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, functionPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: Durable Functions history and instance tables'
  }
  dependsOn: [
    storage
  ]
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists only in some regions and is not needed here: incidents are redelivered and the work is idempotent, so a zone outage delays enrichment, it loses nothing
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// The host's own settings. Flex Consumption takes the worker runtime and version from functionAppConfig, so
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not set (Flex rejects them).
var hostAppSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageAccount.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageAccount.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageAccount.properties.primaryEndpoints.table
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

var codeAppSettings = [for setting in items(replaySettings): {
  name: setting.key
  value: setting.value
}]

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Sentinel's Logic App (Consumption) and Teams' Bot Framework call the app from shared public addresses; the endpoints are protected by a function key (incidents) and Bot Framework JWT validation (messages)
  // checkov:skip=CKV_AZURE_17: neither caller (Logic App HTTP action, Bot Framework service) can present a client certificate; callers authenticate with a function key or a signed JWT instead
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero and its instances are managed by the platform; a minimum instance count would only add cost to a workload that tolerates a cold start
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not use App Service health check: the platform replaces unhealthy instances itself
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState (ARM error 51021); FTP stays off because the ftp basicPublishingCredentialsPolicies resource below refuses its credentials
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
      '${botIdentityResourceId}': {}
      '${containmentIdentityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(hostAppSettings, codeAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
  dependsOn: [
    storage
    blobDataOwner
    queueDataContributor
    tableDataContributor
  ]
}

// Publishing with a user name and password (FTP, SCM basic auth) stays off: azd and `func` deploy with Entra ID.
// Both carry the site's location, as Azure Verified Modules' site module does (the API answers "location has
// an invalid value" without it on some api-versions).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  location: location
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  location: location
  properties: {
    allow: false
  }
}

@description('Name of the Function App.')
output name string = site.name

@description('Default host name of the Function App.')
output defaultHostName string = site.properties.defaultHostName

@description('Resource id of the Function App.')
output resourceId string = site.id
