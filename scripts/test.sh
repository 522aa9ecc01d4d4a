#!/usr/bin/env bash
# Every check, from a fresh clone too (`npm test`, and `.ci/run` in CI): installs what is missing
# (npm dependencies, pinned tools, PostgreSQL), then builds, typechecks, lints and runs all vitest
# tests: the main suite, then the production cluster's (`npm run test:cluster`).
# Extra arguments go to vitest's main suite and run only that, e.g. `npm test -- test/local-stack`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs a command between timing lines; returns its status (also where `set -e` is off, as in `a || b`).
step() {
  local started=$SECONDS status=0
  printf '\n==> %s\n' "$*"
  "$@" || status=$?
  printf '==> %s: %s in %ss\n' "$*" "$( ((status == 0)) && echo done || echo "FAILED ($status)")" "$((SECONDS - started))"
  return "$status"
}

step ./scripts/install-tools.sh
step npm run --silent build

# Typecheck and lint run beside the tests, which spend much of their time waiting for servers;
# their output is shown when the tests are done.
static_log="$(mktemp)"
trap 'rm -f "$static_log"' EXIT
(step npm run --silent typecheck && step npm run --silent lint) >"$static_log" 2>&1 &
static_pid=$!

# Two test files per core (vitest's default is one per core, less one): the files spend much of
# their time waiting for servers and child processes (on 2 cores: 180 s instead of 220 s).
tests_status=0
step npx vitest run --maxWorkers="$(($(nproc) * 2))" "$@" || tests_status=$?
# After the main suite, not beside it: its cluster, workers and deployments would compete with the
# main suite for two cores.
cluster_status=0
if (($# == 0)); then
  step npm run --silent test:cluster || cluster_status=$?
fi
static_status=0
wait "$static_pid" || static_status=$?
cat "$static_log"

if ((static_status != 0)); then echo "==> typecheck or lint failed (output above)" >&2; fi
if ((tests_status != 0)); then echo "==> tests failed (vitest output above)" >&2; fi
if ((cluster_status != 0)); then echo "==> cluster tests failed (vitest output above)" >&2; fi
exit $((static_status != 0 || tests_status != 0 || cluster_status != 0))
