# Sourced by the other scripts (run from the repository root).

# python_for VERSION prints an interpreter for that X.Y version.
python_for() {
  local want="$1" cand
  for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/$(pyenv latest "$want" 2>/dev/null)/bin/python$want")"; do
    if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  echo "no Python $want found (install it with pyenv)" >&2; return 1
}

# requirements_closure FILE prints FILE and every file it includes with `-r` (recursively), one a line.
requirements_closure() {
  local file="$1" line included
  echo "$file"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      -r\ *|--requirement\ *)
        included="${line#* }"; included="${included%%#*}"; included="${included//[[:space:]]/}"
        requirements_closure "$(dirname "$file")/$included" | sed 's|^\./||'
        ;;
    esac
  done < "$file"
}

# make_venv DIR VERSION REQUIREMENTS: create or update a venv; pip runs only when what REQUIREMENTS asks for
# is not installed yet. The stamp DIR/.requirements.sha records, per requirements file, the hash of the
# content that was installed (the file itself and each file it includes), so one venv serves several
# requirement files: after requirements-dev.txt (which includes requirements-local.txt) the laptop setup
# finds everything it needs, and after requirements-local.txt the dev setup still installs its tools.
make_venv() {
  local dir="$1" version="$2" reqs="$3" py stamp wanted
  py=$(python_for "$version") || return 1
  [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
  stamp="$dir/.requirements.sha"
  wanted=$(requirements_closure "$reqs" | sort -u | xargs sha256sum)
  if [ -f "$stamp" ] && [ -z "$(comm -23 <(echo "$wanted" | sort) <(sort "$stamp"))" ]; then
    return 0
  fi
  echo "setup: installing $reqs into $dir (Python $version)" >&2
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
  # Keep the entries of other files (installed before, still valid) and replace those just installed.
  # (A stamp of the older one-hash format names no file and is dropped.)
  { [ -f "$stamp" ] && awk 'NR == FNR { done[$2] = 1; next } NF == 2 && $2 != "-" && !($2 in done)' <(echo "$wanted") "$stamp"
    echo "$wanted"; } | sort -u > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
