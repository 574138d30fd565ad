# Shared by the scripts in infra/scripts (sourced, not run): errors, the Python to use, JSON field reads.
# Each script talks to Azure only through `az`, so a test can put a fake `az` first on PATH.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GUID_RE='^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'

fail() {
  echo "error: $*" >&2
  exit 2
}

# The project's venv when there is one, else python3 (the scripts need only the standard library).
if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
  python="$ROOT/.venv/bin/python"
else
  python="python3"
fi

# json_field FILE PATH...: print the value at PATH (keys or list indexes) of the JSON in FILE, "" when absent.
json_field() {
  "$python" - "$@" <<'PY'
import json, sys
node = json.load(open(sys.argv[1]))
for step in sys.argv[2:]:
    if isinstance(node, list) and step.lstrip("-").isdigit() and -len(node) <= int(step) < len(node):
        node = node[int(step)]
    elif isinstance(node, dict) and step in node:
        node = node[step]
    else:
        node = ""
        break
print("" if node is None else node if isinstance(node, str) else json.dumps(node))
PY
}
