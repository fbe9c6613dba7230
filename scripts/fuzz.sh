#!/usr/bin/env bash
# The long version of the robustness tests (npm run fuzz [-- SECONDS]): the property
# tests run for SECONDS (default 600) instead of a fixed count, the corrupted-capture
# corpus with 300 variants per fixture under a fresh seed, and the adversarial
# captures at full size (docs/limits.md). Replay a failure with the seed it prints:
#   PKTFLOW_FUZZ_SEED=<seed> PKTFLOW_FUZZ_PATH=<path> npm run fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
export PKTFLOW_FUZZ_SECONDS=$seconds
export PKTFLOW_FUZZ_VARIANTS=${PKTFLOW_FUZZ_VARIANTS:-300}
export PKTFLOW_FUZZ_SEED=${PKTFLOW_FUZZ_SEED:-$RANDOM}
export PKTFLOW_ADVERSARIAL_SCALE=${PKTFLOW_ADVERSARIAL_SCALE:-full}
# a file's properties run for minutes each, one after the other without a turn of the
# event loop: test/watchdog.cjs waits longer than all of them
export PKTFLOW_TEST_WATCHDOG_SEC=${PKTFLOW_TEST_WATCHDOG_SEC:-$(( seconds * 4 + 900 ))}
echo "fuzz: ${seconds}s of properties, corpus seed $PKTFLOW_FUZZ_SEED, adversarial scale $PKTFLOW_ADVERSARIAL_SCALE" >&2
timeout=$(( (seconds + 3600) * 1000 ))
node --require "$PWD/test/watchdog.cjs" --import tsx --test --test-reporter=spec --test-timeout=$timeout test/fuzz.test.ts test/mongodb-fuzz.test.ts test/fuzz-regressions.test.ts test/corrupt.test.ts test/adversarial.test.ts
# each protocol's own properties over its fixtures' streams (their suites are named so;
# the live tests beside them are left out)
exec node --require "$PWD/test/watchdog.cjs" --import tsx --test --test-reporter=spec --test-timeout=$timeout --test-name-pattern='fuzz|propert' \
  test/redis.test.ts test/memcache.test.ts test/mysql.test.ts test/cassandra.test.ts test/nfs.test.ts \
  test/dhcpv4.test.ts test/sip.test.ts test/amqp.test.ts test/thrift.test.ts test/tls.test.ts test/http2.test.ts test/tls-keylog.test.ts
