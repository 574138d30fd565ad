#!/usr/bin/env bash
# The main job on the embedded default: a sample tenant, one attack incident, the playbook in dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
data=data/sample
if [ ! -f "$data/scenarios.json" ]; then
  "$py" -m sample_tenant --out "$data" --users 300 --days 14 --seed 7 --variants 3 --compress
fi
incident=$("$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(x["incident"] for x in s if x["family"]=="aitm_cookie_replay"))' "$data/scenarios.json")
"$py" -m playbooks run --incident "$data/$incident" --data "$data" --settings "$data/settings.json" --dry-run --out out/demo
echo "Wrote out/demo/comment.html, out/demo/result.json and, when containment is proposed, out/demo/card.json"
"$py" -c 'import json; r=json.load(open("out/demo/result.json")); [print(a["triage"]["user"], a["triage"]["verdict"], a["triage"]["score"], "suspect:", ", ".join(a["triage"]["suspect_ips"])) for a in r["accounts"]]'
