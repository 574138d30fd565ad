// Optional (main.bicep grantGraphPermissions=true): the Microsoft Graph application permissions of the bot and
// containment identities, granted by the template through the Bicep Microsoft Graph extension
// (bicepconfig.json: br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0).
//
// Only for a deployer who holds the right to grant app roles (Privileged Role Administrator, or
// AppRoleAssignment.ReadWrite.All + Application.Read.All): an ordinary Azure deployment does not. The lists are
// the code's (infra/graph-permissions.json, generated from playbooks/domain/permissions.py). The template only
// adds: taking a permission back (--prune) and previewing (--dry-run) stay with
// infra/scripts/grant-graph-permissions.sh. The extension deploys from Azure CLI or PowerShell in the public
// cloud; what-if and deployment stacks do not cover Graph resources.
extension microsoftGraphV1

@description('Object (principal) id of the approval bot\'s identity.')
param botPrincipalId string

@description('Graph application permissions (app role values) of the bot identity.')
param botPermissions array

@description('Object (principal) id of the containment identity.')
param containmentPrincipalId string

@description('Graph application permissions (app role values) of the containment identity.')
param containmentPermissions array

// The Microsoft Graph service principal: the same appId in every tenant; its appRoles carry each permission's id.
resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource botGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for permission in botPermissions: {
    appRoleId: filter(graph.appRoles, role => role.value == permission)[0].id
    principalId: botPrincipalId
    resourceId: graph.id
  }
]

resource containmentGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for permission in containmentPermissions: {
    appRoleId: filter(graph.appRoles, role => role.value == permission)[0].id
    principalId: containmentPrincipalId
    resourceId: graph.id
  }
]
