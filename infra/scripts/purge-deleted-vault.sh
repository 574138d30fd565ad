#!/usr/bin/env bash
# Before provisioning (azd's preprovision hook runs this): when `azd down` ran without --purge, this
# environment's Key Vault waits soft-deleted for 7 days under the name the template gives it again, and the
# next provision fails on the name. This purges that one vault, and only when it is this environment's: its
# name is the one the last provision recorded (AZURE_KEY_VAULT_NAME) and its azd-env-name tag is this
# environment. It held only the playbook's function key, which the postdeploy hook writes again.
#
# Nothing to do on a first provision (no vault recorded) or while the vault exists. With --dry-run it says what
# it would purge. Needs: az, logged in with a role that may purge vaults in the subscription (Contributor does).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vault="${AZURE_KEY_VAULT_NAME:-}"
environment="${AZURE_ENV_NAME:-}"
dry_run=false
while (($# > 0)); do
  case "$1" in
    --vault) vault="${2:?}"; shift 2 ;;
    --environment) environment="${2:?}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) echo "usage: purge-deleted-vault.sh [--vault NAME] [--environment AZD_ENV] [--dry-run]"; exit 0 ;;
    *) fail "unknown argument: $1" ;;
  esac
done

if [[ -z "$vault" ]]; then
  echo "no Key Vault recorded for this environment yet: nothing to purge"
  exit 0
fi
[[ "$vault" =~ ^[A-Za-z][-A-Za-z0-9]{1,22}[A-Za-z0-9]$ ]] || fail "not a Key Vault name: '$vault'"
[[ -n "$environment" ]] || fail "the azd environment name is unknown (AZURE_ENV_NAME or --environment)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
az keyvault list-deleted --resource-type vault --output json >"$work/deleted.json"
"$python" - "$work/deleted.json" "$vault" >"$work/match.json" <<'PY'
import json, sys
found = [v for v in json.load(open(sys.argv[1])) if str(v.get("name", "")).lower() == sys.argv[2].lower()]
print(json.dumps(found[0] if found else {}))
PY
location="$(json_field "$work/match.json" properties location)"
owner="$(json_field "$work/match.json" properties tags azd-env-name)"

if [[ -z "$location" ]]; then
  echo "Key Vault $vault is not soft-deleted: nothing to purge"
  exit 0
fi
if [[ "$owner" != "$environment" ]]; then
  echo "error: a soft-deleted Key Vault named $vault exists, but it belongs to environment '$owner', not '$environment'; not purging it" >&2
  exit 1
fi
if [[ "$dry_run" == true ]]; then
  echo "[dry run] would purge soft-deleted Key Vault $vault ($location) of environment $environment"
  exit 0
fi
az keyvault purge --name "$vault" --location "$location" --output none
echo "purged soft-deleted Key Vault $vault ($location): the provision recreates it, and postdeploy writes the function key again"
