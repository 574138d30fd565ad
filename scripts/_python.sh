# Sourced by the other scripts: python_for VERSION prints an interpreter for that X.Y version.
python_for() {
  local want="$1" cand
  for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/$(pyenv latest "$want" 2>/dev/null)/bin/python$want")"; do
    if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  echo "no Python $want found (install it with pyenv)" >&2; return 1
}

# make_venv DIR VERSION REQUIREMENTS: create or update a venv; pip runs only when the requirements changed.
make_venv() {
  local dir="$1" version="$2" reqs="$3" py stamp
  py=$(python_for "$version") || return 1
  [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
  stamp="$dir/.requirements.sha"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(cat requirements*.txt | sha256sum)" ]; then
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" && cat requirements*.txt | sha256sum > "$stamp"
  fi
}
