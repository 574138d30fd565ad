// The Azure Bot behind the Teams approval card: Teams delivers card clicks to POST /api/messages on the Function
// App. The bot is registered with the product's user-assigned managed identity (msaAppType UserAssignedMSI), so
// there is no app password to store or rotate: REPLAY_BOT_APP_ID is that identity's client id.
targetScope = 'resourceGroup'

@description('Name of the Azure Bot resource (globally unique).')
param name string

@allowed([
  'F0'
  'S1'
])
@description('Pricing tier; Teams is a standard channel, so F0 serves it without message limits.')
param sku string

@description('Tags for the bot.')
param tags object

@description('Resource id of the user-assigned identity the bot authenticates as.')
param identityResourceId string

@description('Client id of that identity: the bot\'s app id.')
param identityClientId string

@description('Entra tenant of the identity.')
param tenantId string

@description('https://<function host>/api/messages')
param messagingEndpoint string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: sku
  }
  properties: {
    displayName: 'Token replay approvals'
    description: 'Asks analysts to approve containment of a likely token replay'
    endpoint: messagingEndpoint
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppMSIResourceId: identityResourceId
    msaAppTenantId: tenantId
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    isStreamingSupported: false
    schemaTransformationVersion: '1.3'
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
    }
  }
}

@description('Name of the bot.')
output name string = bot.name
