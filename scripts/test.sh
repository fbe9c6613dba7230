#!/usr/bin/env bash
# The whole test suite, with everything it needs installed first. The Kafka tests
# start brokers of their own (test/broker.ts), the Cassandra tests a node of their own
# (test/cassandra-env.ts); only the jars of both are fetched here, once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-run
bash scripts/kafka.sh fetch
bash scripts/cassandra.sh fetch
npx tsc -p tsconfig.json --noEmit
# a test that hangs fails after 20 minutes, naming itself, instead of eating CI's time; one
# that blocks its event loop (a synchronous loop that never ends) is killed after 15 minutes
# by test/watchdog.cjs, with the stack it was blocked in
exec node --require "$PWD/test/watchdog.cjs" --import tsx --test --test-timeout=1200000 --test-reporter=spec test/*.test.ts
