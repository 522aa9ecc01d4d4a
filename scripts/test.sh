#!/usr/bin/env bash
# Every check, from a fresh clone too (`npm test`, and `.ci/run` in CI): installs what is missing
# (npm dependencies, pinned tools), then builds, typechecks, lints and runs all vitest tests.
# Extra arguments go to vitest, e.g. `npm test -- test/local-stack`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  local started=$SECONDS
  printf '\n==> %s\n' "$*"
  "$@"
  printf '==> %s: done in %ss\n' "$1" "$((SECONDS - started))"
}

step ./scripts/install-tools.sh
step npm run --silent build
step npm run --silent typecheck
step npm run --silent lint
step npx vitest run "$@"
