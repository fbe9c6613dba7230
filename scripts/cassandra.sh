#!/usr/bin/env bash
# A single-node Apache Cassandra 4.1 on 127.0.0.1, for fixtures and tests. Jars come
# from Maven Central (docker/cassandra/pom.xml), fetched once into .cassandra/libs.
#   bash scripts/cassandra.sh fetch    fetch the jars if needed
#   bash scripts/cassandra.sh start    fetch, configure, start, wait until it answers CQL
#   bash scripts/cassandra.sh stop     stop it
#   bash scripts/cassandra.sh status   exit 0 if it answers CQL
# CASSANDRA_DIR (default .cassandra/node) holds its configuration, data, logs and pid;
# CASSANDRA_PORT (default 9042) is the native (CQL) port, CASSANDRA_STORAGE_PORT
# (default 7000) the internode one. No JMX. CASSANDRA_AUTH=1 turns on password
# authentication (the superuser cassandra/cassandra is created at once).
# Cassandra 4.1 runs here on Java 17 with the module options of Cassandra's own
# jvm17-server.options; a busy machine starts it slowly: the wait is bounded by
# CASSANDRA_START_WAIT seconds (default 600), and ends as soon as CQL answers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/service.sh
. scripts/service.sh
libs=$PWD/.cassandra/libs
dir=${CASSANDRA_DIR:-$PWD/.cassandra/node}
port=${CASSANDRA_PORT:-9042}
sport=${CASSANDRA_STORAGE_PORT:-7000}

# an OPTIONS frame (v4, stream 0) must get a SUPPORTED frame (opcode 0x06) back
answers() {
  node -e '
    const s = require("net").connect(+process.argv[1], "127.0.0.1");
    const t = setTimeout(() => process.exit(1), 5000);
    s.on("connect", () => s.write(Buffer.from([4, 0, 0, 0, 5, 0, 0, 0, 0])));
    s.on("data", (d) => process.exit(d.length >= 9 && d[4] === 6 ? 0 : 1));
    s.on("error", () => process.exit(1));
    s.on("close", () => process.exit(1));' "$port" 2>/dev/null
}

fetch() {
  local want; want=$(sha1sum docker/cassandra/pom.xml | cut -d' ' -f1)
  [ "$(cat "$libs/.complete" 2>/dev/null)" = "$want" ] && return
  echo "cassandra: fetching Apache Cassandra 4.1 from Maven Central" >&2
  rm -rf "$libs" && mkdir -p "$libs"
  mvn -q -B -f docker/cassandra/pom.xml dependency:copy-dependencies -DoutputDirectory="$libs" >&2
  echo "$want" > "$libs/.complete"
}

configure() {
  mkdir -p "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw"
  local auth=AllowAllAuthenticator authz=AllowAllAuthorizer
  if [ "${CASSANDRA_AUTH:-0}" = 1 ]; then auth=PasswordAuthenticator; authz=CassandraAuthorizer; fi
  cat > "$dir/cassandra.yaml" <<CONF
cluster_name: pktflow
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $sport
native_transport_port: $port
start_native_transport: true
native_transport_allow_older_protocols: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$sport"
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
authenticator: $auth
authorizer: $authz
role_manager: CassandraRoleManager
disk_access_mode: mmap_index_only
concurrent_reads: 4
concurrent_writes: 4
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
dynamic_snitch: false
CONF
  cat > "$dir/logback.xml" <<CONF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
CONF
}

# Cassandra's jvm17-server.options: the JDK internals it reaches into
jvm17=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  # jamm 0.3 (Cassandra 4.1 measures objects with it) walks fields of these too
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.locks=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED
  --add-opens java.base/sun.nio.fs=ALL-UNNAMED
  --add-opens java.base/java.math=ALL-UNNAMED
  --add-opens java.base/java.time=ALL-UNNAMED
  --add-opens java.base/java.util.regex=ALL-UNNAMED
  --add-opens java.base/java.security=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
)

case "${1:-}" in
  fetch) fetch ;;
  start)
    if answers; then echo "cassandra: already running on 127.0.0.1:$port" >&2; exit 0; fi
    fetch
    configure
    nohup java -javaagent:"$(ls "$libs"/jamm-*.jar)" -Xms256m -Xmx768m -Xss512k -XX:+UseG1GC -XX:+UseStringDeduplication "${jvm17[@]}" \
      -Dcassandra-foreground=yes -Dcassandra.config="file://$dir/cassandra.yaml" \
      -Dlogback.configurationFile="$dir/logback.xml" -Dcassandra.logdir="$dir" -Dcassandra.storagedir="$dir" \
      -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000 \
      -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.consistent.rangemovement=false \
      -cp "$libs/*" org.apache.cassandra.service.CassandraDaemon > "$dir/stdout.log" 2>&1 &
    echo $! > "$dir/cassandra.pid"
    service_wait cassandra "$dir/cassandra.pid" "${CASSANDRA_START_WAIT:-600}" 1 "the server exited; see $dir/system.log" "$dir/stdout.log" ;;
  stop) service_stop "$dir/cassandra.pid" 60 1 ;;
  status) answers ;;
  *) echo "usage: scripts/cassandra.sh start|stop|status|fetch" >&2; exit 2 ;;
esac
