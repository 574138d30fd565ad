// The one user-assigned managed identity the product acts as: the Function App (Log Analytics, Sentinel,
// Graph, storage, Application Insights) and the Azure Bot (msaAppType UserAssignedMSI) share it, so every
// right the product holds is granted to one principal and listed in one place (playbooks/domain/permissions.py).
targetScope = 'resourceGroup'

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object

module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity-avm'
  params: {
    name: name
    location: location
    tags: tags
    enableTelemetry: false
  }
}

@description('Resource id of the identity.')
output resourceId string = identity.outputs.resourceId

@description('Client (application) id: AZURE_CLIENT_ID and REPLAY_BOT_APP_ID.')
output clientId string = identity.outputs.clientId

@description('Object (principal) id the role assignments and Graph app roles are granted to.')
output principalId string = identity.outputs.principalId
