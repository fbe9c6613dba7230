#!/usr/bin/env bash
# Captures real HTTP/1.1 keep-alive traffic on loopback: wrk against nginx,
# recorded by tcpdump until it holds $PACKETS packets (default 300000).
#   bash bench/capture.sh OUT.pcap [PACKETS] [KIND]
# KIND: "small" (default: a 615-byte page, wrk's two request headers) or "browser" (a
# 2 KB page, and the request headers a real browser sends: Firefox's, 11 of them with a
# session cookie, ~700 bytes)
set -euo pipefail
source "$(dirname "$0")/../scripts/nginx.sh"
out=${1:?usage: capture.sh OUT.pcap [PACKETS]}
packets=${2:-300000}
kind=${3:-small}
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
headers=()
page=615
if [ "$kind" = browser ]; then
  page=2048
  headers=(
    -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
    -H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/png,image/svg+xml,*/*;q=0.8'
    -H 'Accept-Language: en-GB,en;q=0.7,de;q=0.3'
    -H 'Accept-Encoding: gzip, deflate, br, zstd'
    -H 'Referer: http://127.0.0.1:18080/catalogue/index.html?page=2&sort=price'
    -H 'Cookie: session=4f9c2a7e1b3d4c5f8a6e0d2b9c7f1e3a; theme=dark; consent=analytics%3Dno%26ads%3Dno; _ga=GA1.1.1234567890.1732873200'
    -H 'Upgrade-Insecure-Requests: 1'
    -H 'Sec-Fetch-Dest: document'
    -H 'Sec-Fetch-Mode: navigate'
    -H 'Sec-Fetch-Site: same-origin'
    -H 'Priority: u=0, i'
  )
fi
# a typical small page (nginx's own welcome page is 615 bytes), or a 2 KB one
head -c "$page" /dev/urandom | base64 -w 76 | head -c "$page" > "$work/www/index.html"
start_nginx "$work" 'keepalive_requests 1000000;' "listen 127.0.0.1:18080; root $work/www;"
sleep 0.3
tcpdump -i lo -s 0 -B 131072 -c "$packets" -w "$out" 'tcp port 18080' 2>"$work/tcpdump.log" &
echo $! > "$work/tcpdump.pid"
sleep 1
# a fixed, modest rate keeps the capture lossless: wrk has no rate limit, so few connections and short runs
( while kill -0 "$(cat "$work/tcpdump.pid")" 2>/dev/null; do wrk -t1 -c4 -d2s "${headers[@]}" http://127.0.0.1:18080/ >/dev/null 2>&1 || true; done ) &
wait "$(cat "$work/tcpdump.pid")" 2>/dev/null || true
rm -f "$work/tcpdump.pid"
grep -E 'captured|dropped' "$work/tcpdump.log" >&2 || true
