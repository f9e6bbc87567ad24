#!/usr/bin/env bash
# Set-up shared by `npm run demo`, `npm test` and `npm run test:matrix` (which passes
# --containers) on a fresh machine: the Debian packages of the runtimes (scripts/install-deps.sh),
# npm dependencies when missing or stale, and the compiled Node scripts. Quiet when there is
# nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh "$@"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/tsc -p tsconfig.json
