// Everything on the existing Sentinel workspace, deployed to the workspace's own resource group: the Function
// App identity's two workspace roles, the Logic App identity's read role, and the automation rules that run
// the playbook: one when an incident is created, one when alerts are added to an existing incident (the
// Defender portal's correlation merges new alerts into open incidents, so a token replay often arrives as an
// update; the function enriches alerts its earlier runs of the incident did not see in one follow-up run).
// Both are scoped to identity alerts by default. Schema checked against bicep-types-az
// (Microsoft.SecurityInsights 2024-09-01: triggersWhen Created|Updated, PropertyArrayChanged Alerts/Added,
// Boolean And|Or with 2 to 10 inner conditions, property names AlertProductNames, IncidentRelatedAnalyticRuleIds,
// IncidentTitle).
targetScope = 'resourceGroup'

@description('Name of the existing Sentinel Log Analytics workspace (in this resource group).')
param workspaceName string

@description('Principal id of the Function App\'s user-assigned identity.')
param functionPrincipalId string

@description('Principal id of the Logic App\'s system-assigned identity.')
param playbookPrincipalId string

@description('Resource id of the Logic App playbook.')
param playbookResourceId string

@minLength(36)
@maxLength(36)
@description('Name (a GUID) of the rule that runs on incident creation; deterministic, so redeploying updates the same rule.')
param ruleName string

@minLength(36)
@maxLength(36)
@description('Name (a GUID) of the rule that runs when alerts are added to an existing incident.')
param alertsAddedRuleName string

@description('Whether the rules run the playbook. Off until the playbook was tested on one incident.')
param ruleEnabled bool

@description('Also run the playbook when alerts are added to an existing incident (the Defender portal merges new alerts into open incidents).')
param runOnAlertsAdded bool

@minValue(1)
@maxValue(1000)
@description('Order of the rules among the workspace\'s automation rules.')
param ruleOrder int

@description('Alert product names (SecurityAlert ProductName) whose incidents the rules run on; empty = no product filter.')
param productNames array

@description('Resource ids of analytics rules (.../providers/Microsoft.SecurityInsights/alertRules/<id>) whose incidents the rules run on; empty = no rule filter.')
param analyticRuleIds array

@description('Incident title substrings the rules require (one of them); empty = every title.')
param incidentTitles array

// Built-in role ids. The Function App's two are those of playbooks/domain/permissions.py AZURE_ROLES.
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'
var sentinelResponder = '3e150937-b8fe-4cfb-8069-0eaf05ecd056'
// The Logic App only receives incidents through its trigger and writes nothing to Sentinel, so it gets the
// read role its Sentinel connection authenticates with, not Responder.
var sentinelReader = '8d289c81-5878-46d4-8554-54e1e3d8b5cb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource queryReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionPrincipalId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: run the evidence, baseline and context KQL queries'
  }
}

resource incidentResponder 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionPrincipalId, sentinelResponder)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelResponder)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay Function App: write the enrichment comment and update the incident'
  }
}

resource playbookReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, playbookPrincipalId, sentinelReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelReader)
    principalId: playbookPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Token-replay playbook: its Microsoft Sentinel connection (incident trigger) reads the workspace'
  }
}

// Which incidents: those with an alert from one of `productNames` OR raised by one of `analyticRuleIds`
// (either list alone when the other is empty), AND, when given, whose title contains one of
// `incidentTitles`. With every list empty the rules run on every incident of the workspace: allowed, but never
// the default (main.bicep defaults to the identity products).
var productCondition = {
  conditionType: 'Property'
  conditionProperties: {
    propertyName: 'AlertProductNames'
    operator: 'Equals'
    propertyValues: productNames
  }
}

var analyticRuleCondition = {
  conditionType: 'Property'
  conditionProperties: {
    propertyName: 'IncidentRelatedAnalyticRuleIds'
    operator: 'Contains'
    propertyValues: analyticRuleIds
  }
}

var titleCondition = {
  conditionType: 'Property'
  conditionProperties: {
    propertyName: 'IncidentTitle'
    operator: 'Contains'
    propertyValues: incidentTitles
  }
}

var sourceConditions = concat(empty(productNames) ? [] : [productCondition], empty(analyticRuleIds) ? [] : [analyticRuleCondition])

var eitherSource = {
  conditionType: 'Boolean'
  conditionProperties: {
    operator: 'Or'
    innerConditions: sourceConditions
  }
}

var sourceScope = length(sourceConditions) == 2 ? [eitherSource] : sourceConditions

var scopeConditions = concat(sourceScope, empty(incidentTitles) ? [] : [titleCondition])

// An update of an existing incident counts only when it added alerts (not a status, owner or comment change).
var alertsAddedCondition = {
  conditionType: 'PropertyArrayChanged'
  conditionProperties: {
    arrayType: 'Alerts'
    changeType: 'Added'
  }
}

var runPlaybook = [
  {
    order: 1
    actionType: 'RunPlaybook'
    actionConfiguration: {
      logicAppResourceId: playbookResourceId
      tenantId: tenant().tenantId
    }
  }
]

resource onCreated 'Microsoft.SecurityInsights/automationRules@2024-09-01' = {
  name: ruleName
  scope: workspace
  properties: {
    displayName: 'Token replay: enrich and ask for containment (incident created)'
    order: ruleOrder
    triggeringLogic: {
      isEnabled: ruleEnabled
      triggersOn: 'Incidents'
      triggersWhen: 'Created'
      conditions: scopeConditions
    }
    actions: runPlaybook
  }
  dependsOn: [
    playbookReader
  ]
}

resource onAlertsAdded 'Microsoft.SecurityInsights/automationRules@2024-09-01' = if (runOnAlertsAdded) {
  name: alertsAddedRuleName
  scope: workspace
  properties: {
    displayName: 'Token replay: enrich and ask for containment (alerts added to an incident)'
    order: ruleOrder
    triggeringLogic: {
      isEnabled: ruleEnabled
      triggersOn: 'Incidents'
      triggersWhen: 'Updated'
      conditions: concat([alertsAddedCondition], scopeConditions)
    }
    actions: runPlaybook
  }
  dependsOn: [
    playbookReader
  ]
}

@description('Resource id of the rule that runs on incident creation.')
output automationRuleId string = onCreated.id
