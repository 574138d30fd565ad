#!/usr/bin/env bash
# Grant each managed identity exactly the Microsoft Graph application permissions its enabled features need,
# and with --prune take back the ones no feature needs any more.
#
# Three identities (playbooks/domain/permissions.py): the bot identity (the approver check), the containment
# identity (containment) and the app identity (no Graph permission at all; --prune takes back what an older,
# single-identity deployment granted it). The permission lists are never typed here: `python -m
# playbooks.permissions` derives them from the same table the code uses and the same settings the Function App
# reads. This script only talks to Graph (az rest), so it is safe to re-run: a permission already held is left
# as it is, and every run prints one line per permission and identity: granted, already granted, removed (no
# longer needed), or not needed (kept without --prune). --dry-run prints the plan and writes nothing.
#
# Needs: az (logged in as someone who may grant app roles: Privileged Role Administrator, or
# AppRoleAssignment.ReadWrite.All + Application.Read.All), Python 3.11+, this repository.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
usage: grant-graph-permissions.sh [options]

  (default)                    every identity of the azd environment: $AZURE_BOT_PRINCIPAL_ID (bot),
                               $AZURE_CONTAINMENT_PRINCIPAL_ID (containment), $AZURE_IDENTITY_PRINCIPAL_ID (app)
  --principal-id OBJECT_ID     one identity only, by object (principal) id, with --identity
  --identity NAME              which permissions it gets: bot, containment, app (none), or all (default with
                               --principal-id: every feature's, for a deployment that runs as one identity)
  --settings FILE              read the feature switches from a local.settings.json (its Values)
  --containment-enabled BOOL   REPLAY_CONTAINMENT_ENABLED (default: env, else true)
  --approver-group-id GUID     REPLAY_APPROVER_GROUP_ID (default: env, else none)
  --optional-actions LIST      REPLAY_OPTIONAL_ACTIONS, comma-separated (default: env, else none)
  --prune                      remove Graph permissions no enabled feature needs
  --dry-run                    print the plan; call no write endpoint
  --graph URL                  Microsoft Graph endpoint (default: https://graph.microsoft.com/v1.0)
  -h, --help                   this text

Without --settings the switches come from the flags, else from the environment variables of the
same names (the Function App's app settings).
EOF
}

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"

principal=""
identity=""
settings=""
graph="https://graph.microsoft.com/v1.0"
prune=false
dry_run=false
switch_flags=false

while (($# > 0)); do
  case "$1" in
    --principal-id) principal="${2:?--principal-id needs a value}"; shift 2 ;;
    --identity) identity="${2:?--identity needs a value}"; shift 2 ;;
    --settings) settings="${2:?--settings needs a file}"; shift 2 ;;
    --containment-enabled) export REPLAY_CONTAINMENT_ENABLED="${2?}"; switch_flags=true; shift 2 ;;
    --approver-group-id) export REPLAY_APPROVER_GROUP_ID="${2?}"; switch_flags=true; shift 2 ;;
    --optional-actions) export REPLAY_OPTIONAL_ACTIONS="${2?}"; switch_flags=true; shift 2 ;;
    --prune) prune=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    --graph) graph="${2:?--graph needs a URL}"; graph="${graph%/}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail "unknown argument: $1" ;;
  esac
done

# (identity=principal) pairs to work on.
targets=()
if [[ -n "$principal" ]]; then
  targets+=("${identity:-all}=$principal")
else
  [[ -z "$identity" ]] || fail "--identity needs --principal-id"
  [[ -z "${AZURE_BOT_PRINCIPAL_ID:-}" ]] || targets+=("bot=$AZURE_BOT_PRINCIPAL_ID")
  [[ -z "${AZURE_CONTAINMENT_PRINCIPAL_ID:-}" ]] || targets+=("containment=$AZURE_CONTAINMENT_PRINCIPAL_ID")
  [[ -z "${AZURE_IDENTITY_PRINCIPAL_ID:-}" ]] || targets+=("app=$AZURE_IDENTITY_PRINCIPAL_ID")
fi
((${#targets[@]} > 0)) || fail "--principal-id is required (a managed identity's object id, not its client id), or the azd environment's AZURE_*_PRINCIPAL_ID values"
for target in "${targets[@]}"; do
  [[ "${target%%=*}" =~ ^(bot|containment|app|all)$ ]] || fail "--identity must be bot, containment, app or all: ${target%%=*}"
  [[ "${target#*=}" =~ $GUID_RE ]] || fail "the principal id of the ${target%%=*} identity is not a GUID: ${target#*=}"
done
[[ "$graph" =~ ^https://[^/[:space:]]+(/[^[:space:]]*)?$ ]] || fail "--graph must be an https URL: $graph"
if [[ -n "$settings" ]]; then
  [[ "$switch_flags" == false ]] || fail "give the feature switches either as flags or with --settings, not both"
  [[ -f "$settings" ]] || fail "--settings: no such file: $settings"
  settings="$(cd "$(dirname "$settings")" && pwd)/$(basename "$settings")"
fi

# playbooks.permissions reads only the standard library and common.settings: no venv needed.
permissions() {
  local args=()
  [[ -z "$settings" ]] || args+=(--settings "$settings")
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$python" -m playbooks.permissions ${args[@]+"${args[@]}"} "$@"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Settings first: a bad switch stops the run before Graph is asked anything.
for target in "${targets[@]}"; do
  permissions --identity "${target%%=*}" >"$work/required-${target%%=*}.txt"
done

az rest --method get \
  --url "$graph/servicePrincipals?\$filter=appId%20eq%20'$GRAPH_APP_ID'&\$select=id,appId,appRoles" \
  --output json >"$work/graph-sp.json"

prefix=""
[[ "$dry_run" == false ]] || prefix="[dry run] "
changed=0

for target in "${targets[@]}"; do
  who="${target%%=*}"
  principal="${target#*=}"
  echo "${who} identity ($principal):"

  # Graph pages the identity's assignments; follow @odata.nextLink until the last page.
  page_args=()
  url="$graph/servicePrincipals/$principal/appRoleAssignments"
  page=0
  while [[ -n "$url" ]]; do
    az rest --method get --url "$url" --output json >"$work/assignments-$who-$page.json"
    page_args+=(--assignments "$work/assignments-$who-$page.json")
    url="$(json_field "$work/assignments-$who-$page.json" "@odata.nextLink")"
    page=$((page + 1))
  done

  permissions --identity "$who" --plan --graph-sp "$work/graph-sp.json" "${page_args[@]}" >"$work/plan-$who.tsv"

  resource=""
  while IFS=$'\t' read -r kind permission id; do
    case "$kind" in
      resource) resource="$id" ;;
      keep) echo "${prefix}$permission: already granted" ;;
      grant)
        if [[ "$dry_run" == true ]]; then
          echo "${prefix}$permission: would be granted"
        else
          az rest --method post \
            --url "$graph/servicePrincipals/$principal/appRoleAssignments" \
            --headers "Content-Type=application/json" \
            --body "{\"principalId\": \"$principal\", \"resourceId\": \"$resource\", \"appRoleId\": \"$id\"}" \
            --output none
          echo "$permission: granted"
          changed=$((changed + 1))
        fi
        ;;
      remove)
        if [[ "$prune" == false ]]; then
          echo "${prefix}$permission: not needed (kept; --prune removes it)"
        elif [[ "$dry_run" == true ]]; then
          echo "${prefix}$permission: would be removed (no longer needed)"
        else
          az rest --method delete \
            --url "$graph/servicePrincipals/$principal/appRoleAssignments/$id" \
            --output none
          echo "$permission: removed (no longer needed)"
          changed=$((changed + 1))
        fi
        ;;
      *) fail "unexpected plan line: $kind" ;;
    esac
  done <"$work/plan-$who.tsv"

  if [[ ! -s "$work/required-$who.txt" ]]; then
    echo "${prefix}no Graph permission is needed by the $who identity with these settings"
  fi
done

if ((changed > 0)); then
  echo "note: Graph tokens already issued to a managed identity keep their old roles until they expire" \
    "(the platform caches them up to 24 h); a 403 until then is expected"
fi
