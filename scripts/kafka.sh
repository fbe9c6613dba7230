#!/usr/bin/env bash
# A single-node Apache Kafka 3.9 broker in KRaft mode on 127.0.0.1, for development
# and tests. Jars come from Maven Central (docker/kafka/pom.xml); data lives in .kafka/.
#   bash scripts/kafka.sh start    fetch if needed, format storage once, start, wait until it answers
#   bash scripts/kafka.sh stop     stop it
#   bash scripts/kafka.sh status   exit 0 if it answers
# KAFKA_PORT (default 9092) and KAFKA_CONTROLLER_PORT (default 9093) move it;
# KAFKA_DIR (default .kafka) holds its data, configuration, logs and pid, so a second
# broker (the restart tests start one) lives beside the first. The jars are shared.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/service.sh
. scripts/service.sh
libs=$PWD/.kafka/libs
dir=${KAFKA_DIR:-$PWD/.kafka}
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-9093}

answers() { (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && node scripts/kafka-ready.js "127.0.0.1:$port" 2>/dev/null; }

fetch() {
  # fetched once per version of the pom
  local want; want=$(sha1sum docker/kafka/pom.xml | cut -d' ' -f1)
  [ "$(cat "$libs/.complete" 2>/dev/null)" = "$want" ] && return
  echo "kafka: fetching Apache Kafka 3.9 from Maven Central" >&2
  rm -rf "$libs" && mkdir -p "$libs"
  mvn -q -B -f docker/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$libs" >&2
  echo "$want" > "$libs/.complete"
}

configure() {
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
  printf 'log4j.rootLogger=WARN, file\nlog4j.appender.file=org.apache.log4j.FileAppender\nlog4j.appender.file.File=%s/broker.log\nlog4j.appender.file.layout=org.apache.log4j.PatternLayout\nlog4j.appender.file.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n' "$dir" > "$dir/log4j.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id; id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)
    java -cp "$libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >&2
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start)
    if answers; then echo "kafka: already running on 127.0.0.1:$port" >&2; exit 0; fi
    fetch
    configure
    nohup java -Xms256m -Xmx512m -cp "$libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" kafka.Kafka "$dir/server.properties" > "$dir/stdout.log" 2>&1 &
    echo $! > "$dir/broker.pid"
    # a busy machine starts a JVM slowly: wait up to KAFKA_START_WAIT seconds (default 300)
    service_wait kafka "$dir/broker.pid" "${KAFKA_START_WAIT:-300}" 1 "the broker exited; see $dir/broker.log" "$dir/stdout.log" ;;
  stop) service_stop "$dir/broker.pid" 30 1 ;;
  status) answers ;;
  *) echo "usage: scripts/kafka.sh start|stop|status|fetch" >&2; exit 2 ;;
esac
