#!/usr/bin/env bash
# After the code is deployed (azd's postdeploy hook runs this; by hand after `func azure functionapp publish`):
# make sure the Function App has the host key the Sentinel playbook calls with, and that the Key Vault secret
# the Logic App reads holds it.
#
# Why not in the template: listing and creating host keys goes through the Functions host runtime, which
# answers only once code is deployed and the host has started; doing it while provisioning fails the first
# `azd up` on an empty subscription. Here the host is given time to start (--attempts x --wait).
#
# Safe to re-run: an existing key is kept (the secret is rewritten with the same value, a new secret version),
# so deploying again never breaks a running playbook. The key is never printed or put on a command line: it
# goes from az's output to a private temporary file that is the request body. Everything goes through Azure
# Resource Manager: the secret is written as the ARM resource Microsoft.KeyVault/vaults/secrets, which the
# deployer's Contributor (or Owner) role allows, so no Key Vault data-plane role is needed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
usage: store-function-key.sh [options]      (defaults: the azd environment's values)

  --subscription ID      subscription of the deployment (default: $AZURE_SUBSCRIPTION_ID)
  --resource-group NAME  the product's resource group (default: $AZURE_RESOURCE_GROUP)
  --app NAME             the Function App (default: $AZURE_FUNCTION_APP_NAME)
  --vault NAME           the Key Vault the Logic App reads (default: $AZURE_KEY_VAULT_NAME)
  --key-name NAME        the host key (default: $AZURE_FUNCTION_KEY_NAME, else sentinel_playbook)
  --secret-name NAME     the secret (default: $AZURE_FUNCTION_KEY_SECRET_NAME, else incidents-function-key)
  --attempts N           tries while the host starts (default 20)
  --wait SECONDS         pause between tries (default 15)
  -h, --help             this text
USAGE
}

subscription="${AZURE_SUBSCRIPTION_ID:-}"
group="${AZURE_RESOURCE_GROUP:-}"
app="${AZURE_FUNCTION_APP_NAME:-}"
vault="${AZURE_KEY_VAULT_NAME:-}"
key_name="${AZURE_FUNCTION_KEY_NAME:-sentinel_playbook}"
secret_name="${AZURE_FUNCTION_KEY_SECRET_NAME:-incidents-function-key}"
attempts=20
wait_seconds=15

while (($# > 0)); do
  case "$1" in
    --subscription) subscription="${2:?}"; shift 2 ;;
    --resource-group) group="${2:?}"; shift 2 ;;
    --app) app="${2:?}"; shift 2 ;;
    --vault) vault="${2:?}"; shift 2 ;;
    --key-name) key_name="${2:?}"; shift 2 ;;
    --secret-name) secret_name="${2:?}"; shift 2 ;;
    --attempts) attempts="${2:?}"; shift 2 ;;
    --wait) wait_seconds="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail "unknown argument: $1" ;;
  esac
done

# Every value goes into a URL or an az argument: refuse anything outside the names Azure allows.
[[ "$subscription" =~ $GUID_RE ]] || fail "--subscription is not a subscription id: '$subscription'"
[[ "$group" =~ ^[-_.()A-Za-z0-9]{1,90}$ ]] || fail "--resource-group is not a resource group name: '$group'"
[[ "$app" =~ ^[A-Za-z0-9][-A-Za-z0-9]{0,58}$ ]] || fail "--app is not a Function App name: '$app'"
[[ "$vault" =~ ^[A-Za-z][-A-Za-z0-9]{1,22}[A-Za-z0-9]$ ]] || fail "--vault is not a Key Vault name: '$vault'"
[[ "$key_name" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || fail "--key-name is not a host key name: '$key_name'"
[[ "$secret_name" =~ ^[-A-Za-z0-9]{1,127}$ ]] || fail "--secret-name is not a secret name: '$secret_name'"
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || fail "--attempts must be a positive number"
[[ "$wait_seconds" =~ ^[0-9]+$ ]] || fail "--wait must be a number of seconds"

work="$(umask 077 && mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The host answers key calls only once it runs the deployed code: try again until it does.
host_call() {
  local try
  for ((try = 1; try <= attempts; try++)); do
    if az functionapp keys "$@" --subscription "$subscription" --resource-group "$group" --name "$app" \
      --output json >"$work/answer.json" 2>"$work/error.txt"; then
      return 0
    fi
    echo "the Functions host of $app did not answer yet (try $try of $attempts): $(head -c 300 "$work/error.txt")" >&2
    ((try == attempts)) || sleep "$wait_seconds"
  done
  echo "error: the Functions host of $app never answered; is the code deployed? (azd deploy)" >&2
  exit 1
}

host_call list
key="$(json_field "$work/answer.json" functionKeys "$key_name")"
if [[ -n "$key" ]]; then
  what="kept"
else
  host_call set --key-type functionKeys --key-name "$key_name"
  key="$(json_field "$work/answer.json" value)"
  what="created"
fi
# Host keys are base64 text; anything else is not a key (and would not survive the JSON body as is).
[[ "$key" =~ ^[A-Za-z0-9+/=_-]{16,}$ ]] || { echo "error: the host returned no usable key for $key_name" >&2; exit 1; }

printf '{"properties": {"value": "%s", "contentType": "Azure Functions host key for POST /api/incidents", "attributes": {"enabled": true}}}' \
  "$key" >"$work/secret.json"
unset key
az rest --method put \
  --url "/subscriptions/$subscription/resourceGroups/$group/providers/Microsoft.KeyVault/vaults/$vault/secrets/$secret_name?api-version=2023-07-01" \
  --headers "Content-Type=application/json" --body "@$work/secret.json" --output none

echo "host key $key_name of $app: $what"
echo "Key Vault secret $secret_name in $vault: written (the playbook reads it on its next run)"
