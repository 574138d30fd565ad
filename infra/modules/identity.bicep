// One user-assigned managed identity. main.bicep makes three, each holding only what its code path uses
// (playbooks/domain/permissions.py): the app identity (Functions host, storage, Application Insights, Log
// Analytics, Sentinel), the bot identity (the Azure Bot's registration and the approver check on Graph) and
// the containment identity (the Graph permissions of containment). All three are attached to the Function App.
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

@description('Client (application) id: AZURE_CLIENT_ID, REPLAY_BOT_APP_ID or REPLAY_CONTAINMENT_CLIENT_ID.')
output clientId string = identity.outputs.clientId

@description('Object (principal) id the role assignments and Graph app roles are granted to.')
output principalId string = identity.outputs.principalId
