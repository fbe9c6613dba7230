#!/usr/bin/env bash
# Captures real HTTP/1.1 keep-alive traffic on loopback: wrk against nginx,
# recorded by tcpdump until it holds $PACKETS packets (default 300000).
#   bash bench/capture.sh OUT.pcap [PACKETS]
set -euo pipefail
source "$(dirname "$0")/../scripts/nginx.sh"
out=${1:?usage: capture.sh OUT.pcap [PACKETS]}
packets=${2:-300000}
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
# a typical small page: nginx's own welcome page is 615 bytes
head -c 615 /dev/urandom | base64 -w 76 | head -c 615 > "$work/www/index.html"
start_nginx "$work" 'keepalive_requests 1000000;' "listen 127.0.0.1:18080; root $work/www;"
sleep 0.3
tcpdump -i lo -s 0 -B 131072 -c "$packets" -w "$out" 'tcp port 18080' 2>"$work/tcpdump.log" &
echo $! > "$work/tcpdump.pid"
sleep 1
# a fixed, modest rate keeps the capture lossless: wrk has no rate limit, so few connections and short runs
( while kill -0 "$(cat "$work/tcpdump.pid")" 2>/dev/null; do wrk -t1 -c4 -d2s http://127.0.0.1:18080/ >/dev/null 2>&1 || true; done ) &
wait "$(cat "$work/tcpdump.pid")" 2>/dev/null || true
rm -f "$work/tcpdump.pid"
grep -E 'captured|dropped' "$work/tcpdump.log" >&2 || true
