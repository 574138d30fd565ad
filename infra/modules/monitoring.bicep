// Where the Function App's telemetry goes: a Log Analytics workspace of its own (not the Sentinel one, whose
// ingestion is billed as security data) and a workspace-based Application Insights with local (instrumentation
// key) auth disabled, so only the Function App's managed identity can send telemetry.
targetScope = 'resourceGroup'

@description('Name of the Log Analytics workspace for the app\'s telemetry.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Principal id of the Function App\'s user-assigned identity (sends telemetry with Entra ID auth).')
param functionPrincipalId string

@minValue(30)
@maxValue(730)
@description('Days the telemetry is kept.')
param retentionInDays int = 30

// Monitoring Metrics Publisher: the role that lets an identity ingest into an Application Insights component
// whose local auth is disabled (APPLICATIONINSIGHTS_AUTHENTICATION_STRING on the Function App).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

module workspace 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'telemetry-workspace-avm'
  params: {
    name: workspaceName
    location: location
    tags: tags
    dataRetention: retentionInDays
    enableTelemetry: false
  }
}

module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'app-insights-avm'
  params: {
    name: appInsightsName
    location: location
    tags: tags
    workspaceResourceId: workspace.outputs.resourceId
    applicationType: 'web'
    kind: 'web'
    disableLocalAuth: true
    retentionInDays: retentionInDays
    enableTelemetry: false
  }
}

resource component 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(component.id, functionPrincipalId, monitoringMetricsPublisher)
  scope: component
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: send telemetry to Application Insights with Entra ID auth'
  }
  dependsOn: [
    appInsights
  ]
}

@description('Application Insights connection string: an endpoint and an identifier, useless without an Entra token since local auth is disabled.')
output connectionString string = appInsights.outputs.connectionString

@description('Resource id of the Application Insights component.')
output appInsightsResourceId string = appInsights.outputs.resourceId
