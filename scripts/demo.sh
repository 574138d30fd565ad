#!/usr/bin/env bash
# The main job on the embedded default: a sample tenant, one attack incident and one grey-zone incident, the playbook in dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
data=data/sample
# A tenant generated before the grey-zone families existed has no suspicious case to show: make it again.
if ! grep -qs '"kind": "grey"' "$data/scenarios.json"; then
  "$py" -m sample_tenant --out "$data" --users 300 --days 14 --seed 7 --variants 3 --compress
fi
pick='import json,sys; s=json.load(open(sys.argv[1])); print(next(x["incident"] for x in s if x[sys.argv[2]]==sys.argv[3]))'
summary='import json,sys; r=json.load(open(sys.argv[1])); [print(a["triage"]["user"], a["triage"]["verdict"], a["triage"]["score"], "suspect:", ", ".join(a["triage"]["suspect_ips"])) for a in r["accounts"]]'
incident=$("$py" -c "$pick" "$data/scenarios.json" family aitm_cookie_replay)
"$py" -m playbooks run --incident "$data/$incident" --data "$data" --settings "$data/settings.json" --dry-run --out out/demo
echo "Wrote out/demo/comment.html, out/demo/result.json and, when containment is proposed, out/demo/card.json"
"$py" -c "$summary" out/demo/result.json
# The grey zone: a benign story nothing in the evidence can clear lands suspicious, for an analyst to ask the user.
grey=$("$py" -c "$pick" "$data/scenarios.json" kind grey)
"$py" -m playbooks run --incident "$data/$grey" --data "$data" --settings "$data/settings.json" --dry-run --out out/demo-suspicious
echo "A grey-zone incident ($(basename "$grey" .json)): out/demo-suspicious/comment.html"
"$py" -c "$summary" out/demo-suspicious/result.json
