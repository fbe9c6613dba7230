#!/usr/bin/env bash
# FerretDB (a MongoDB wire-protocol server in Go, SQLite backend) on 127.0.0.1, for
# fixtures, tests and benchmarks: MongoDB has no Debian package. Built once from the Go
# module proxy into .cache/ferretdb (a few minutes), then reused.
#   bash scripts/ferretdb.sh build     fetch and build if needed, print the binary's path
#   bash scripts/ferretdb.sh start     build if needed, start, wait until it accepts connections
#   bash scripts/ferretdb.sh stop      stop it and remove its state
#   bash scripts/ferretdb.sh status    exit 0 if it accepts connections
# FERRETDB_PORT (default 27017) moves it; FERRETDB_DIR (default a directory under
# $TMPDIR named after the port) holds its SQLite files, log and pid.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/service.sh
. scripts/service.sh
version=v1.24.2
cache=$PWD/.cache/ferretdb
bin=$cache/ferretdb-$version
port=${FERRETDB_PORT:-27017}
dir=${FERRETDB_DIR:-${TMPDIR:-/tmp}/pktflow-ferretdb-$port}

answers() { (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

build() {
  [ -x "$bin" ] && return
  command -v go >/dev/null 2>&1 || { echo "ferretdb: go is not installed" >&2; exit 1; }
  echo "ferretdb: building FerretDB $version from the Go module proxy (once; a few minutes)" >&2
  local mod src
  mod=$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$mod" ] || { echo "ferretdb: go mod download gave no source directory" >&2; exit 1; }
  # the module as published has no version file, which FerretDB's own build writes from git
  src=$cache/src-$version
  rm -rf "$src" && mkdir -p "$cache" && cp -r "$mod" "$src" && chmod -R u+w "$src"
  echo "$version" > "$src/build/version/version.txt"
  # an older Go fetches the toolchain FerretDB's go.mod names (a module of the Go module proxy)
  (cd "$src" && GOTOOLCHAIN=auto go build -trimpath -o "$bin.tmp" ./cmd/ferretdb)
  mv "$bin.tmp" "$bin"
  rm -rf "$src"
}

case "${1:-}" in
  build) build; echo "$bin" ;;
  start)
    if answers; then echo "ferretdb: something already listens on 127.0.0.1:$port" >&2; exit 1; fi
    build
    mkdir -p "$dir/data"
    nohup "$bin" --listen-addr="127.0.0.1:$port" --handler=sqlite --sqlite-url="file:$dir/data/" \
      --state-dir="$dir" --debug-addr=- --telemetry=disable --log-level=warn > "$dir/ferretdb.log" 2>&1 &
    echo $! > "$dir/ferretdb.pid"
    service_wait ferretdb "$dir/ferretdb.pid" "${FERRETDB_START_WAIT:-120}" 0.2 "exited; see $dir/ferretdb.log" "$dir/ferretdb.log" quiet ;;
  stop)
    service_stop "$dir/ferretdb.pid" 50 0.2
    rm -rf "$dir" ;;
  status) answers ;;
  *) echo "usage: scripts/ferretdb.sh build|start|stop|status" >&2; exit 2 ;;
esac
