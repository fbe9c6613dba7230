#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-run
# the Kafka tests talk to a real broker: start one unless one answers already
bash scripts/kafka.sh start
npx tsc -p tsconfig.json --noEmit
exec node --import tsx --test --test-reporter=spec test/*.test.ts
