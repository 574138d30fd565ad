// The token-replay playbook in one deployment: `azd up` (or `az deployment sub create`) stands up everything
// the product runs on, and grants its identities exactly what the code needs.
//
// Module choice. Azure Verified Modules (br/public:avm/res/..., pinned) where one exists and fits a plain
// resource: the user-assigned identity, the storage account, the Log Analytics workspace and Application
// Insights; they carry Microsoft's maintained defaults and need no code of ours. Direct resources where AVM
// does not fit:
// - the Function App and its Flex Consumption plan: the infra tests read its app settings from this source, and
//   the Flex `functionAppConfig` block is clearer written out than passed through a generic site module;
// - role assignments: each names its role by the built-in id the code declares (playbooks/domain/permissions.py
//   AZURE_ROLES), with deterministic guid() names, several on resources that already exist in another
//   resource group (the Sentinel workspace), which a resource module cannot target;
// - the automation rule (an extension resource on the existing Sentinel workspace, no AVM module);
// - the Logic App, its Sentinel connection, the Key Vault holding the function key, and the Azure Bot with
//   its user-assigned managed identity: small resources whose every property matters to the product;
// - optionally (grantGraphPermissions), the Graph app-role assignments, through the Bicep Microsoft Graph extension.
//
// Three managed identities, each holding only what its code path needs (playbooks/domain/permissions.py): the
// app identity (Functions host, storage, telemetry, Log Analytics, Sentinel; AZURE_CLIENT_ID), the bot identity
// (the Azure Bot's registration and the approver check; REPLAY_BOT_APP_ID) and the containment identity (Graph
// containment; REPLAY_CONTAINMENT_CLIENT_ID). The bot, which handles clicks arriving from Teams, can never
// revoke a session or delete a method.
//
// What runs after this template: azd's postdeploy hook (infra/scripts/store-function-key.sh) creates the
// playbook's function key and its Key Vault secret once the code is deployed (the Functions host runtime does
// not answer before), and azd's preprovision hook (infra/scripts/purge-deleted-vault.sh) purges this
// environment's soft-deleted Key Vault left by `azd down` without --purge, whose name this template reuses.
//
// Python 3.11 is the runtime because it is the version the whole suite runs on first (`.venv`), including
// the embedded-engine service tests, and the one served by the mature azure-functions 1.x worker;
// 3.13 (the new azure-functions-runtime worker, also tested) is one parameter away: pythonVersion.
targetScope = 'subscription'

// ---------- Deployment ----------

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

// Regions that offer Flex Consumption, as Microsoft's own Flex Consumption azd template lists them
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep, 2025-11), less the canary region.
// The live list for a subscription: az functionapp list-flexconsumption-locations --runtime python.
@minLength(1)
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
@description('Azure region of the Function App (Flex Consumption), its storage, monitoring, Key Vault and Logic App.')
param location string

@description('Resource group for the product; empty means rg-<environmentName>.')
param resourceGroupName string = ''

@allowed([
  '3.11'
  '3.13'
])
@description('Python version of the Function App; the code is tested on both.')
param pythonVersion string = '3.11'

@minValue(1)
@maxValue(1)
@description('Most Flex Consumption instances: 1. Log Analytics allows one identity 5 concurrent queries; every instance runs as the same managed identity and holds the 5 query slots of its process, so a second instance would let the app send 10 (tests/infra/test_query_budget.py).')
param maximumInstanceCount int = 1

@minLength(1)
@description('Resource id of the existing Sentinel Log Analytics workspace (/subscriptions/.../resourceGroups/.../providers/Microsoft.OperationalInsights/workspaces/...).')
param sentinelWorkspaceResourceId string

@minLength(36)
@maxLength(36)
@description('Object id, in this tenant, of the "Azure Security Insights" service principal (appId 98785600-1bb7-4fb9-b9fa-19afe2c8a360): az ad sp show --id 98785600-1bb7-4fb9-b9fa-19afe2c8a360 --query id -o tsv')
param securityInsightsPrincipalId string

@description('Grant the "Azure Security Insights" principal Microsoft Sentinel Automation Contributor on the product\'s resource group. Set false when Sentinel settings > Playbook permissions already lists that group: the portal\'s assignment has another name and ARM refuses a duplicate (RoleAssignmentExists).')
param grantSentinelAutomationRole bool = true

@description('Run the playbook from the automation rules. Off by default: test on one incident (run the playbook manually) before enabling it for everything.')
param automationRuleEnabled bool = false

@description('Also run it when alerts are added to an open incident (the Defender portal merges new alerts into open incidents), not only on creation.')
param automationRuleOnAlertsAdded bool = true

@minValue(1)
@maxValue(1000)
@description('Order of the automation rules among the workspace\'s rules.')
param automationRuleOrder int = 100

@description('The rules run for incidents with an alert from one of these products (SecurityAlert ProductName; check yours with: SecurityAlert | summarize count() by ProductName). Default: the identity alert products, Entra ID Protection and Defender for Cloud Apps. Empty together with automationRuleAnalyticRuleIds = every incident.')
param automationRuleProductNames array = [
  'Azure Active Directory Identity Protection'
  'Microsoft Cloud App Security'
]

@description('...or raised by one of these analytics rules (resource ids .../providers/Microsoft.SecurityInsights/alertRules/<id>), e.g. your own token-replay or sign-in rules.')
param automationRuleAnalyticRuleIds array = []

@description('And, when given, only incidents whose title contains one of these.')
param automationRuleIncidentTitles array = []

@description('Grant the Graph application permissions in this template (Bicep Microsoft Graph extension) instead of with infra/scripts/grant-graph-permissions.sh. Needs a deployer who may grant app roles (Privileged Role Administrator, or AppRoleAssignment.ReadWrite.All + Application.Read.All); it never removes a permission (the script\'s --prune does).')
param grantGraphPermissions bool = false

@allowed([
  'F0'
  'S1'
])
@description('Azure Bot pricing tier; Teams is a standard channel, so F0 serves it without message limits.')
param botSku string = 'F0'

// ---------- App settings the code reads (common/settings.py), same names ----------

@description('Log Analytics query endpoint.')
param REPLAY_LOGS_ENDPOINT string = 'https://api.loganalytics.io'

@minValue(10)
@maxValue(600)
@description('Server-side timeout of one query, in seconds.')
param REPLAY_QUERY_TIMEOUT_SECONDS int = 180

@minValue(1)
@maxValue(720)
@description('Hours of sign-ins before the incident time.')
param REPLAY_WINDOW_BEFORE_HOURS int = 24

@minValue(0)
@maxValue(168)
@description('Hours of sign-ins after the incident time.')
param REPLAY_WINDOW_AFTER_HOURS int = 6

@minValue(1)
@maxValue(90)
@description('Days of history summarised as the baseline.')
param REPLAY_BASELINE_DAYS int = 14

@minValue(100)
@maxValue(400000)
@description('Most evidence rows one query returns.')
param REPLAY_ROW_CAP int = 20000

@minValue(1)
@maxValue(500)
@description('Most accounts of one incident assessed; the rest are listed as not assessed.')
param REPLAY_MAX_ACCOUNTS int = 50

@description('Corporate egress networks, comma-separated CIDRs.')
param REPLAY_CORPORATE_CIDRS string = ''

@description('Corporate VPN egress networks, comma-separated CIDRs.')
param REPLAY_VPN_CIDRS string = ''

@description('ASNs whose traffic is the organisation\'s own, comma-separated.')
param REPLAY_TRUSTED_ASNS string = ''

@description('The organisation\'s security service edge(s), comma-separated: zscaler, netskope, entra_gsa, cloudflare_one.')
param REPLAY_SSE_PROVIDER string = ''

@description('The organisation\'s SSE egress networks (dedicated egress addresses), comma-separated CIDRs.')
param REPLAY_SSE_CIDRS string = ''

@description('Alias of the Sentinel watchlist of travel records.')
param REPLAY_TRAVEL_WATCHLIST string = 'TravelRecords'

@minValue(1)
@maxValue(100)
@description('Score at or above which the verdict is replay_likely.')
param REPLAY_THRESHOLD_LIKELY int = 70

@minValue(1)
@maxValue(100)
@description('Score at or above which the verdict is suspicious.')
param REPLAY_THRESHOLD_SUSPICIOUS int = 40

@description('Per-signal weight overrides, signal_id=points comma-separated (0 turns a signal off).')
param REPLAY_SIGNAL_WEIGHTS string = ''

@description('Azure Resource Manager endpoint.')
param REPLAY_ARM_ENDPOINT string = 'https://management.azure.com'

@minValue(1000)
@maxValue(100000)
@description('Longest incident comment written, in characters.')
param REPLAY_COMMENT_MAX_CHARS int = 30000

@description('Raise the incident to High when a replay is likely.')
param REPLAY_RAISE_SEVERITY bool = false

@description('Ask analysts in Teams to approve containment when a replay is likely.')
param REPLAY_CONTAINMENT_ENABLED bool = true

@description('Optional containment actions offered, comma-separated: confirm_compromised, disable_account, delete_flagged_methods.')
param REPLAY_OPTIONAL_ACTIONS string = ''

@minValue(1)
@maxValue(168)
@description('Hours an approval request stays open.')
param REPLAY_APPROVAL_TIMEOUT_HOURS int = 4

@description('Object id of the Entra group whose members may approve containment.')
param REPLAY_APPROVER_GROUP_ID string = ''

@description('Object ids allowed to approve containment, comma-separated.')
param REPLAY_APPROVER_OBJECT_IDS string = ''

@description('Microsoft Graph endpoint.')
param REPLAY_GRAPH_ENDPOINT string = 'https://graph.microsoft.com/v1.0'

@description('Entra tenant id; the deployment\'s tenant by default.')
param REPLAY_TENANT_ID string = tenant().tenantId

@description('Teams channel id (19:...@thread.tacv2) the approval cards are posted to.')
param REPLAY_TEAMS_CHANNEL_ID string = ''

@description('Bot Framework service URL for the tenant.')
param REPLAY_TEAMS_SERVICE_URL string = 'https://smba.trafficmanager.net/teams'

// ---------- Names ----------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  product: 'token-replay-playbook'
}
var workspaceIdParts = split(sentinelWorkspaceResourceId, '/')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

resource sentinelWorkspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceIdParts[8]
  scope: resourceGroup(workspaceIdParts[2], workspaceIdParts[4])
}

// ---------- Resources ----------

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module botIdentity 'modules/identity.bicep' = {
  name: 'bot-identity'
  scope: rg
  params: {
    name: 'id-bot-${resourceToken}'
    location: location
    tags: tags
  }
}

module containmentIdentity 'modules/identity.bicep' = {
  name: 'containment-identity'
  scope: rg
  params: {
    name: 'id-contain-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    functionPrincipalId: identity.outputs.principalId
  }
}

// Every app setting the code reads, by the name the code reads it under; values are parameters of the same
// name or outputs of the resources that define them.
var replaySettings = {
  REPLAY_WORKSPACE_ID: sentinelWorkspace.properties.customerId
  REPLAY_LOGS_ENDPOINT: REPLAY_LOGS_ENDPOINT
  REPLAY_QUERY_TIMEOUT_SECONDS: string(REPLAY_QUERY_TIMEOUT_SECONDS)
  REPLAY_WINDOW_BEFORE_HOURS: string(REPLAY_WINDOW_BEFORE_HOURS)
  REPLAY_WINDOW_AFTER_HOURS: string(REPLAY_WINDOW_AFTER_HOURS)
  REPLAY_BASELINE_DAYS: string(REPLAY_BASELINE_DAYS)
  REPLAY_ROW_CAP: string(REPLAY_ROW_CAP)
  REPLAY_MAX_ACCOUNTS: string(REPLAY_MAX_ACCOUNTS)
  REPLAY_CORPORATE_CIDRS: REPLAY_CORPORATE_CIDRS
  REPLAY_VPN_CIDRS: REPLAY_VPN_CIDRS
  REPLAY_TRUSTED_ASNS: REPLAY_TRUSTED_ASNS
  REPLAY_SSE_PROVIDER: REPLAY_SSE_PROVIDER
  REPLAY_SSE_CIDRS: REPLAY_SSE_CIDRS
  REPLAY_TRAVEL_WATCHLIST: REPLAY_TRAVEL_WATCHLIST
  REPLAY_THRESHOLD_LIKELY: string(REPLAY_THRESHOLD_LIKELY)
  REPLAY_THRESHOLD_SUSPICIOUS: string(REPLAY_THRESHOLD_SUSPICIOUS)
  REPLAY_SIGNAL_WEIGHTS: REPLAY_SIGNAL_WEIGHTS
  REPLAY_ARM_ENDPOINT: REPLAY_ARM_ENDPOINT
  REPLAY_COMMENT_MAX_CHARS: string(REPLAY_COMMENT_MAX_CHARS)
  REPLAY_RAISE_SEVERITY: REPLAY_RAISE_SEVERITY ? 'true' : 'false'
  REPLAY_CONTAINMENT_ENABLED: REPLAY_CONTAINMENT_ENABLED ? 'true' : 'false'
  REPLAY_OPTIONAL_ACTIONS: REPLAY_OPTIONAL_ACTIONS
  REPLAY_APPROVAL_TIMEOUT_HOURS: string(REPLAY_APPROVAL_TIMEOUT_HOURS)
  REPLAY_APPROVER_GROUP_ID: REPLAY_APPROVER_GROUP_ID
  REPLAY_APPROVER_OBJECT_IDS: REPLAY_APPROVER_OBJECT_IDS
  REPLAY_GRAPH_ENDPOINT: REPLAY_GRAPH_ENDPOINT
  REPLAY_TENANT_ID: REPLAY_TENANT_ID
  REPLAY_BOT_APP_ID: botIdentity.outputs.clientId
  REPLAY_TEAMS_CHANNEL_ID: REPLAY_TEAMS_CHANNEL_ID
  REPLAY_TEAMS_SERVICE_URL: REPLAY_TEAMS_SERVICE_URL
  AZURE_CLIENT_ID: identity.outputs.clientId
  REPLAY_CONTAINMENT_CLIENT_ID: containmentIdentity.outputs.clientId
}

// The Graph permissions each identity needs with these settings, from the code's own table (regenerated by
// `python -m playbooks.permissions --template-json > infra/graph-permissions.json`; a test compares them).
var graphTable = loadJsonContent('graph-permissions.json')
// The key is the requested optional actions in the order graphTable.optionalActions lists them (written out,
// not a lambda, so checkov's parser reads this file; a test checks the two lists are the same).
var requestedActions = split(replace(toLower(REPLAY_OPTIONAL_ACTIONS), ' ', ''), ',')
var confirmCompromised = contains(requestedActions, 'confirm_compromised') ? ['confirm_compromised'] : []
var disableAccount = contains(requestedActions, 'disable_account') ? ['disable_account'] : []
var deleteFlaggedMethods = contains(requestedActions, 'delete_flagged_methods') ? ['delete_flagged_methods'] : []
var requirePasswordChange = contains(requestedActions, 'require_password_change') ? ['require_password_change'] : []
var deleteAttackerDevices = contains(requestedActions, 'delete_attacker_devices') ? ['delete_attacker_devices'] : []
var removeInboxRules = contains(requestedActions, 'remove_inbox_rules') ? ['remove_inbox_rules'] : []
var actionKey = join(concat(confirmCompromised, disableAccount, deleteFlaggedMethods, requirePasswordChange, deleteAttackerDevices, removeInboxRules), ',')
var containmentGraphPermissions = REPLAY_CONTAINMENT_ENABLED ? graphTable.containment[actionKey] : []
var botGraphPermissions = REPLAY_CONTAINMENT_ENABLED && !empty(REPLAY_APPROVER_GROUP_ID) ? graphTable.botWithApproverGroup : []

module function 'modules/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    appName: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    storageAccountName: 'st${resourceToken}'
    location: location
    tags: tags
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    functionPrincipalId: identity.outputs.principalId
    botIdentityResourceId: botIdentity.outputs.resourceId
    containmentIdentityResourceId: containmentIdentity.outputs.resourceId
    appInsightsConnectionString: monitoring.outputs.connectionString
    replaySettings: replaySettings
  }
}

module playbook 'modules/playbook.bicep' = {
  name: 'playbook'
  scope: rg
  params: {
    workflowName: 'logic-${resourceToken}'
    connectionName: 'azuresentinel-${resourceToken}'
    keyVaultName: 'kv-${resourceToken}'
    location: location
    tags: tags
    functionHostName: function.outputs.defaultHostName
    securityInsightsPrincipalId: securityInsightsPrincipalId
    grantSentinelAutomationRole: grantSentinelAutomationRole
  }
}

module sentinelAccess 'modules/sentinel-access.bicep' = {
  name: 'sentinel-access'
  scope: resourceGroup(workspaceIdParts[2], workspaceIdParts[4])
  params: {
    workspaceName: workspaceIdParts[8]
    functionPrincipalId: identity.outputs.principalId
    playbookPrincipalId: playbook.outputs.principalId
    playbookResourceId: playbook.outputs.resourceId
    ruleName: guid(sentinelWorkspaceResourceId, environmentName, 'token-replay-automation-rule')
    alertsAddedRuleName: guid(sentinelWorkspaceResourceId, environmentName, 'token-replay-automation-rule', 'alerts-added')
    ruleEnabled: automationRuleEnabled
    runOnAlertsAdded: automationRuleOnAlertsAdded
    ruleOrder: automationRuleOrder
    productNames: automationRuleProductNames
    analyticRuleIds: automationRuleAnalyticRuleIds
    incidentTitles: automationRuleIncidentTitles
  }
}

module bot 'modules/bot.bicep' = {
  name: 'bot'
  scope: rg
  params: {
    name: 'bot-${resourceToken}'
    sku: botSku
    tags: tags
    identityResourceId: botIdentity.outputs.resourceId
    identityClientId: botIdentity.outputs.clientId
    tenantId: REPLAY_TENANT_ID
    messagingEndpoint: 'https://${function.outputs.defaultHostName}/api/messages'
  }
}

module graphGrants 'modules/graph-grants.bicep' = if (grantGraphPermissions) {
  name: 'graph-grants'
  scope: rg
  params: {
    botPrincipalId: botIdentity.outputs.principalId
    botPermissions: botGraphPermissions
    containmentPrincipalId: containmentIdentity.outputs.principalId
    containmentPermissions: containmentGraphPermissions
  }
}

// ---------- Outputs: azd writes them to the environment; the REPLAY_* ones are the app settings ----------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = function.outputs.name
output AZURE_FUNCTION_URL string = 'https://${function.outputs.defaultHostName}'
output AZURE_PLAYBOOK_RESOURCE_ID string = playbook.outputs.resourceId
output AZURE_BOT_NAME string = bot.outputs.name
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_BOT_PRINCIPAL_ID string = botIdentity.outputs.principalId
output AZURE_CONTAINMENT_PRINCIPAL_ID string = containmentIdentity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = playbook.outputs.keyVaultName
output AZURE_FUNCTION_KEY_NAME string = playbook.outputs.functionKeyName
output AZURE_FUNCTION_KEY_SECRET_NAME string = playbook.outputs.functionKeySecretName

output REPLAY_WORKSPACE_ID string = replaySettings.REPLAY_WORKSPACE_ID
output REPLAY_LOGS_ENDPOINT string = replaySettings.REPLAY_LOGS_ENDPOINT
output REPLAY_QUERY_TIMEOUT_SECONDS string = replaySettings.REPLAY_QUERY_TIMEOUT_SECONDS
output REPLAY_WINDOW_BEFORE_HOURS string = replaySettings.REPLAY_WINDOW_BEFORE_HOURS
output REPLAY_WINDOW_AFTER_HOURS string = replaySettings.REPLAY_WINDOW_AFTER_HOURS
output REPLAY_BASELINE_DAYS string = replaySettings.REPLAY_BASELINE_DAYS
output REPLAY_ROW_CAP string = replaySettings.REPLAY_ROW_CAP
output REPLAY_MAX_ACCOUNTS string = replaySettings.REPLAY_MAX_ACCOUNTS
output REPLAY_CORPORATE_CIDRS string = replaySettings.REPLAY_CORPORATE_CIDRS
output REPLAY_VPN_CIDRS string = replaySettings.REPLAY_VPN_CIDRS
output REPLAY_TRUSTED_ASNS string = replaySettings.REPLAY_TRUSTED_ASNS
output REPLAY_SSE_PROVIDER string = replaySettings.REPLAY_SSE_PROVIDER
output REPLAY_SSE_CIDRS string = replaySettings.REPLAY_SSE_CIDRS
output REPLAY_TRAVEL_WATCHLIST string = replaySettings.REPLAY_TRAVEL_WATCHLIST
output REPLAY_THRESHOLD_LIKELY string = replaySettings.REPLAY_THRESHOLD_LIKELY
output REPLAY_THRESHOLD_SUSPICIOUS string = replaySettings.REPLAY_THRESHOLD_SUSPICIOUS
output REPLAY_SIGNAL_WEIGHTS string = replaySettings.REPLAY_SIGNAL_WEIGHTS
output REPLAY_ARM_ENDPOINT string = replaySettings.REPLAY_ARM_ENDPOINT
output REPLAY_COMMENT_MAX_CHARS string = replaySettings.REPLAY_COMMENT_MAX_CHARS
output REPLAY_RAISE_SEVERITY string = replaySettings.REPLAY_RAISE_SEVERITY
output REPLAY_CONTAINMENT_ENABLED string = replaySettings.REPLAY_CONTAINMENT_ENABLED
output REPLAY_OPTIONAL_ACTIONS string = replaySettings.REPLAY_OPTIONAL_ACTIONS
output REPLAY_APPROVAL_TIMEOUT_HOURS string = replaySettings.REPLAY_APPROVAL_TIMEOUT_HOURS
output REPLAY_APPROVER_GROUP_ID string = replaySettings.REPLAY_APPROVER_GROUP_ID
output REPLAY_APPROVER_OBJECT_IDS string = replaySettings.REPLAY_APPROVER_OBJECT_IDS
output REPLAY_GRAPH_ENDPOINT string = replaySettings.REPLAY_GRAPH_ENDPOINT
output REPLAY_TENANT_ID string = replaySettings.REPLAY_TENANT_ID
output REPLAY_BOT_APP_ID string = replaySettings.REPLAY_BOT_APP_ID
output REPLAY_TEAMS_CHANNEL_ID string = replaySettings.REPLAY_TEAMS_CHANNEL_ID
output REPLAY_TEAMS_SERVICE_URL string = replaySettings.REPLAY_TEAMS_SERVICE_URL
output AZURE_CLIENT_ID string = replaySettings.AZURE_CLIENT_ID
output REPLAY_CONTAINMENT_CLIENT_ID string = replaySettings.REPLAY_CONTAINMENT_CLIENT_ID
