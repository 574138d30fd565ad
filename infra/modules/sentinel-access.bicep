// Everything on the existing Sentinel workspace, deployed to the workspace's own resource group: the Function
// App identity's two workspace roles, the Logic App identity's read role, and the automation rule that runs
// the playbook when an incident is created.
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
@description('Name (a GUID) of the automation rule; deterministic, so redeploying updates the same rule.')
param ruleName string

@description('Whether the rule runs the playbook. Off until the playbook was tested on one incident.')
param ruleEnabled bool

@minValue(1)
@maxValue(1000)
@description('Order of the rule among the workspace\'s automation rules.')
param ruleOrder int

@description('Incident titles (substring match) the rule runs on; empty = every title.')
param incidentTitles array

@description('Alert product names the rule runs on; empty = every product.')
param productNames array

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

var titleCondition = [
  {
    conditionType: 'Property'
    conditionProperties: {
      propertyName: 'IncidentTitle'
      operator: 'Contains'
      propertyValues: incidentTitles
    }
  }
]

var productCondition = [
  {
    conditionType: 'Property'
    conditionProperties: {
      propertyName: 'AlertProductNames'
      operator: 'Equals'
      propertyValues: productNames
    }
  }
]

resource automationRule 'Microsoft.SecurityInsights/automationRules@2024-09-01' = {
  name: ruleName
  scope: workspace
  properties: {
    displayName: 'Token replay: enrich and ask for containment'
    order: ruleOrder
    triggeringLogic: {
      isEnabled: ruleEnabled
      triggersOn: 'Incidents'
      triggersWhen: 'Created'
      conditions: concat(empty(incidentTitles) ? [] : titleCondition, empty(productNames) ? [] : productCondition)
    }
    actions: [
      {
        order: 1
        actionType: 'RunPlaybook'
        actionConfiguration: {
          logicAppResourceId: playbookResourceId
          tenantId: tenant().tenantId
        }
      }
    ]
  }
  dependsOn: [
    playbookReader
  ]
}

@description('Resource id of the automation rule.')
output automationRuleId string = automationRule.id
