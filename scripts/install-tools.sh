#!/usr/bin/env bash
# Installs what garden-deploy needs on this machine, skipping whatever is already in place:
#   1. the pinned Go tools of src/local-stack/tools.json, built with `go install` into a per-user
#      cache that every clone and CI run shares (the path rule is the one src/local-stack/tools.ts uses);
#   2. the npm dependencies, when node_modules is missing or older than package-lock.json.
# Usage: scripts/install-tools.sh    (env: GARDEN_DEPLOY_TOOLS_DIR, XDG_CACHE_HOME)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="$root/src/local-stack/tools.json"
stamp_name=".garden-deploy-installed"

say() { printf 'install-tools: %s\n' "$*"; }
die() {
  printf 'install-tools: error: %s\n' "$*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 || die "Node.js 20.3+ is required (https://nodejs.org); install it and re-run $0."

if [[ -n "${GARDEN_DEPLOY_TOOLS_DIR:-}" ]]; then
  mkdir -p "$GARDEN_DEPLOY_TOOLS_DIR"
  tools_dir="$(cd "$GARDEN_DEPLOY_TOOLS_DIR" && pwd)"
else
  tools_dir="${XDG_CACHE_HOME:-$HOME/.cache}/garden-deploy/tools"
fi

# "binary module version" lines, read with node so that tools.json stays the only place naming versions.
tool_lines="$(node -e '
  for (const t of Object.values(require(process.argv[1]))) console.log(`${t.binary} ${t.module} ${t.version}`);
' "$manifest")"

# Prints "module@version" of a Go binary from its embedded build info.
built_from() {
  go version -m "$1" 2>/dev/null | awk '$1 == "path" { p = $2 } $1 == "mod" { v = $3 } END { if (p && v) print p "@" v }'
}

require_go() {
  command -v go >/dev/null 2>&1 && return
  die "Go is required to build $1 (Go 1.25+: https://go.dev/dl/). Install it and re-run $0,
or skip the local tools and run the production-like stack with Docker instead:
  docker compose --profile local up --build     (see README.md)"
}

staging_dirs=()
cleanup() { ((${#staging_dirs[@]} == 0)) || rm -rf "${staging_dirs[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_tool() {
  local binary="$1" module="$2" version="$3"
  local dest="$tools_dir/$binary-$version"
  local want="$module@$version"

  if [[ -x "$dest/$binary" && -f "$dest/$stamp_name" && "$(cat "$dest/$stamp_name")" == "$want" ]]; then
    say "$binary $version: already installed ($dest)"
    return
  fi
  # A binary put there by hand or by an older script: keep it if Go says it is the pinned build.
  if [[ -x "$dest/$binary" ]] && command -v go >/dev/null 2>&1 && [[ "$(built_from "$dest/$binary")" == "$want" ]]; then
    printf '%s\n' "$want" >"$dest/$stamp_name"
    say "$binary $version: already installed ($dest)"
    return
  fi

  require_go "$binary $version"
  say "$binary $version: building $want with go install (the first build takes several minutes)..."
  local staging started=$SECONDS
  staging="$(mktemp -d "$tools_dir/.staging-$binary.XXXXXX")"
  staging_dirs+=("$staging")
  # Built into a staging dir and renamed into place: an interrupted build never leaves a half binary.
  # CGO off: both tools are pure Go, so no C toolchain is needed.
  (cd "$staging" && CGO_ENABLED=0 GOBIN="$staging/bin" go install "$want") ||
    die "go install $want failed (output above). Check network access to the Go module proxy ($(go env GOPROXY))."
  printf '%s\n' "$want" >"$staging/bin/$stamp_name"
  rm -rf "$dest"
  mv "$staging/bin" "$dest"
  say "$binary $version: built in $((SECONDS - started))s -> $dest/$binary"
}

mkdir -p "$tools_dir"
if command -v flock >/dev/null 2>&1; then
  # Serialises concurrent runs (two clones, parallel CI jobs) that share the cache.
  exec 9>"$tools_dir/.install.lock"
  if ! flock -n 9; then
    say "waiting for another install-tools run to finish..."
    flock 9
  fi
  # Holding the lock, any staging dir left here comes from a run that was killed.
  rm -rf "$tools_dir"/.staging-*
fi

while read -r binary module version; do
  install_tool "$binary" "$module" "$version"
done <<<"$tool_lines"

lockfile="$root/package-lock.json"
installed="$root/node_modules/.package-lock.json"
if [[ ! -f "$installed" || "$lockfile" -nt "$installed" ]]; then
  say "npm dependencies: installing (npm install, then the build via the prepare script)..."
  # `npm install`, not `npm ci`: the lock holds the locked versions either way, but npm ci rejects a
  # lock whose other-platform optional packages (@swc/core-darwin-*, ...) the registry could not list.
  (cd "$root" && npm install --no-audit --no-fund)
else
  say "npm dependencies: up to date"
fi
