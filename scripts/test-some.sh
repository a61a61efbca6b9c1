#!/usr/bin/env bash
# Development helper: compile into a private folder and run a subset of the tests.
#   scripts/test-some.sh NAME 'test/emulator/**/*.test.js' [more mocha args]
# NAME picks the output folder (.build-NAME), so several people can compile at once.
set -uo pipefail
cd "$(dirname "$0")/.."
name=$1; shift; glob=$1; shift
out=".build-$name"
npx tsc -p tsconfig.test.json --outDir "$out" || echo "(tsc reported errors; running what was emitted)"
node scripts/copy-assets.cjs "$out"
npx mocha --no-config --require "$out/test/setup.js" --reporter ./scripts/summary-reporter.cjs \
  --timeout 30000 --exit "$out/$glob" "$@"
