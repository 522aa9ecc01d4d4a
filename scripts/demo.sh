#!/usr/bin/env bash
# The demo on the embedded default (`npm run demo`): installs what is missing, builds, then runs
# `garden-deploy dev --demo` in the foreground until Ctrl-C: the local stack, then a sample model
# written to the GCS emulator, validated and deployed end to end on the Vertex emulator.
# Extra arguments go to `garden-deploy dev`, e.g. `npm run demo -- --temporal-port 7300`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/install-tools.sh
npm run --silent build
exec node bin/garden-deploy.js dev --demo "$@"
