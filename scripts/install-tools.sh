#!/usr/bin/env bash
# Installs what garden-deploy needs on this machine, skipping whatever is already in place:
#   1. the pinned Go tools of src/local-stack/tools.json, built with `go install` into a per-user
#      cache that every clone and CI run shares (the path rule is the one src/local-stack/tools.ts uses):
#      the Temporal CLI (dev server), fake-gcs-server, and the production cluster's Temporal server,
#      SQL tool and Web UI server; a tool with a "source" (pstest, Google's Pub/Sub fake, a library)
#      is a small Go main in this repo, built with `go build` there;
#   2. PostgreSQL for the production cluster's tests (`npm run test:cluster`): Debian's `postgresql`
#      package with apt-get, as root or with passwordless sudo; elsewhere it says what to install;
#   3. Chromium for the Web UI test (test/codec/web-ui.test.ts): Debian's `chromium` package, the same way;
#   4. the npm dependencies, when node_modules is missing or older than package-lock.json.
# Usage: scripts/install-tools.sh
#   (env: GARDEN_DEPLOY_TOOLS_DIR, XDG_CACHE_HOME, GARDEN_DEPLOY_POSTGRESQL_BIN, GARDEN_DEPLOY_CHROMIUM)
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

# "binary module version source" lines ("-" without a source), read with node so that tools.json
# stays the only place naming versions.
tool_lines="$(node -e '
  for (const t of Object.values(require(process.argv[1])))
    console.log(`${t.binary} ${t.module} ${t.version} ${t.source ?? "-"}`);
' "$manifest")"

# What a tool built from source is stamped with: module@version and a digest of its files, so an
# edit of the Go main rebuilds it (src/local-stack/tools.ts toolStamp computes the same).
source_stamp() {
  node -e '
    const fs = require("fs"), path = require("path"), hash = require("crypto").createHash("sha256");
    const dir = process.argv[1];
    for (const name of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (fs.statSync(file).isFile()) hash.update(`${name}\0`).update(fs.readFileSync(file)).update("\0");
    }
    console.log(`${process.argv[2]} src:${hash.digest("hex").slice(0, 16)}`);
  ' "$1" "$2"
}

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
  local binary="$1" module="$2" version="$3" source="$4"
  local dest="$tools_dir/$binary-$version"
  local want="$module@$version"
  [[ "$source" == "-" ]] || want="$(source_stamp "$root/$source" "$want")"

  if [[ -x "$dest/$binary" && -f "$dest/$stamp_name" && "$(cat "$dest/$stamp_name")" == "$want" ]]; then
    say "$binary $version: already installed ($dest)"
    return
  fi
  # A binary put there by hand or by an older script: keep it if Go says it is the pinned build
  # (a tool built from source has no module version to compare).
  if [[ "$source" == "-" && -x "$dest/$binary" ]] && command -v go >/dev/null 2>&1 && [[ "$(built_from "$dest/$binary")" == "$want" ]]; then
    printf '%s\n' "$want" >"$dest/$stamp_name"
    say "$binary $version: already installed ($dest)"
    return
  fi

  require_go "$binary $version"
  local staging started=$SECONDS
  staging="$(mktemp -d "$tools_dir/.staging-$binary.XXXXXX")"
  staging_dirs+=("$staging")
  # Built into a staging dir and renamed into place: an interrupted build never leaves a half binary.
  # CGO off: the tools are pure Go, so no C toolchain is needed.
  if [[ "$source" != "-" ]]; then
    say "$binary $version: building $source ($module@$version) with go build..."
    # -buildvcs=false: the repo's git metadata is not the tool's version; go.sum pins every module.
    (cd "$root/$source" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o "$staging/bin/$binary" .) ||
      die "go build of $source failed (output above). Check network access to the Go module proxy ($(go env GOPROXY))."
  else
    say "$binary $version: building $want with go install (the first build takes several minutes)..."
    (cd "$staging" && CGO_ENABLED=0 GOBIN="$staging/bin" go install "$want") ||
      die "go install $want failed (output above). Check network access to the Go module proxy ($(go env GOPROXY))."
    # go install names the binary after the package (`server`, `sql`); tools.json names it as used.
    local built="$staging/bin/${module##*/}"
    [[ "$built" == "$staging/bin/$binary" ]] || mv "$built" "$staging/bin/$binary"
  fi
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

while read -r binary module version source; do
  install_tool "$binary" "$module" "$version" "$source"
done <<<"$tool_lines"

# PostgreSQL's programs (initdb, postgres, pg_isready): GARDEN_DEPLOY_POSTGRESQL_BIN, else the newest
# /usr/lib/postgresql/<major>/bin (Debian's layout). src/local-stack/postgres.ts uses the same rule.
postgresql_bin() {
  if [[ -n "${GARDEN_DEPLOY_POSTGRESQL_BIN:-}" ]]; then
    printf '%s\n' "$GARDEN_DEPLOY_POSTGRESQL_BIN"
    return
  fi
  local dir major best="" best_major=-1
  for dir in /usr/lib/postgresql/*/bin; do
    major="${dir#/usr/lib/postgresql/}"
    major="${major%/bin}"
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major > best_major)); then
      best="$dir"
      best_major=$major
    fi
  done
  printf '%s\n' "$best"
}

postgresql_installed() {
  local bin
  bin="$(postgresql_bin)"
  [[ -n "$bin" && -x "$bin/initdb" && -x "$bin/postgres" && -x "$bin/pg_isready" ]]
}

# Runs a command as root: directly, or with sudo when it needs no password; fails otherwise.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 126
  fi
}

# Debian packages, as root; the package lists are updated once per run, and only when one is missing.
apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Installs an optional Debian package when what needs it is missing. Only one test needs each, so
# whatever goes wrong is a warning: the local stack, the demo and the main suite work without them.
# Arguments: package, how to check it is there (a command), what it is once there (a command),
# "<what> not found" wording, who needs it, how to install it by hand.
optional_debian_package() {
  local package=$1 present=$2 describe=$3 missing=$4 needed_by=$5 how=$6
  if $present; then
    say "$package: already installed ($($describe))"
    return
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "warning: $missing; $needed_by: $how" >&2
    return
  fi
  say "$package: installing Debian's $package package with apt-get..."
  local status=0
  apt_install "$package" || status=$?
  if ((status == 126)); then
    say "warning: $missing and installing it needs root; $needed_by: $how" >&2
  elif ((status != 0)); then
    say "warning: apt-get could not install $package (output above); $needed_by: $how" >&2
  elif $present; then
    say "$package: installed ($($describe))"
  else
    say "warning: the $package package was installed, still: $missing; $how" >&2
  fi
}

# The browser the Web UI test drives with playwright-core (test/codec/web-ui.test.ts reads the same
# variable).
chromium_bin="${GARDEN_DEPLOY_CHROMIUM:-/usr/bin/chromium}"
chromium_installed() { [[ -x "$chromium_bin" ]]; }
chromium_path() { echo "$chromium_bin"; }

# Still under the lock: two runs must not both call apt-get.
optional_debian_package postgresql postgresql_installed postgresql_bin "PostgreSQL not found" \
  "npm run test:cluster needs it" \
  "install Debian's postgresql package (sudo apt-get install postgresql) or set GARDEN_DEPLOY_POSTGRESQL_BIN to the directory of initdb, postgres and pg_isready"
optional_debian_package chromium chromium_installed chromium_path "Chromium not found at $chromium_bin" \
  "the Web UI test needs it" \
  "install Debian's chromium package (sudo apt-get install chromium) or set GARDEN_DEPLOY_CHROMIUM to a Chromium binary"

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
