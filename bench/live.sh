#!/usr/bin/env bash
# Live capture on lo under load: wrk against nginx for $SECONDS_LOAD seconds while
# one capturer runs (tcpdump -w /dev/null, then pktflow capture with the default
# pipeline to /dev/null, then the same with --workers 2). The true packet count is lo's rx counter over the run;
# the share dropped is what the capturer did not see. Needs root.
#   bash bench/live.sh [SECONDS_LOAD] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nginx.sh
load=${1:-10}
conns=${2:-8}
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 615 /dev/zero | tr '\0' 'x' > "$work/www/index.html"
start_nginx "$work" 'keepalive_requests 100000000;' "listen 127.0.0.1:18080; root $work/www;"
sleep 0.3
rx() { cat /sys/class/net/lo/statistics/rx_packets; }

run() { # name command...
  local name=$1; shift
  "$@" > /dev/null 2> "$work/$name.err" &
  local pid=$!
  sleep 2
  local before; before=$(rx)
  wrk -t1 -c"$conns" -d"${load}s" http://127.0.0.1:18080/ > "$work/$name.wrk"
  sleep 1
  local after; after=$(rx)
  kill -INT "$pid"; wait "$pid" || true
  local seen
  if [ "$name" = tcpdump ]; then seen=$(grep -oE '^[0-9]+ packets captured' "$work/$name.err" | cut -d' ' -f1)
  else seen=$(grep -oE '^pktflow: source: frames=[0-9]+' "$work/$name.err" | grep -oE '[0-9]+$'); fi
  local total=$((after - before))
  local rps; rps=$(grep -oE 'Requests/sec: +[0-9.]+' "$work/$name.wrk" | grep -oE '[0-9.]+$')
  awk -v n="$name" -v s="$seen" -v t="$total" -v d="$load" -v r="$rps" 'BEGIN {
    drop = t > s ? (t - s) / t * 100 : 0
    printf "| %s | %d | %d | %.0f | %.2f %% | %.0f |\n", n, t, s, s / d, drop, r }'
}

echo "wrk -t1 -c$conns -d${load}s against nginx on lo; $(nproc) cores"
echo
echo "| capturer | packets on lo | packets captured | captured/s | dropped | wrk requests/s |"
echo "|---|---|---|---|---|---|"
run tcpdump tcpdump -i lo -w /dev/null 'tcp port 18080'
run pktflow node bin/pktflow.js capture -i lo -f 'tcp port 18080' --ports http=18080
run pktflow-workers-2 node bin/pktflow.js capture -i lo -f 'tcp port 18080' --ports http=18080 --workers 2
