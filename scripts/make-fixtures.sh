#!/usr/bin/env bash
# Regenerates fixtures/*.pcap* from real servers and clients on loopback:
# nginx (HTTP/1.1: keep-alive, pipelining, chunked gzip, HEAD, 404, 304, PUT with
# 100-continue) queried by curl, and dnsmasq answered by dig over UDP and TCP.
# Needs root (tcpdump on lo) and the packages scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nginx.sh
out=${FIXTURES_OUT:-fixtures}
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# --- servers ---------------------------------------------------------------
mkdir -p "$work/www" "$work/dav"
printf 'hello from nginx\n' > "$work/www/index.html"
head -c 20000 /dev/zero | tr '\0' 'a' > "$work/www/big.txt"
start_nginx "$work" \
  'gzip on; gzip_min_length 100; gzip_types text/plain; keepalive_requests 1000; if_modified_since before;' \
  "listen 127.0.0.1:8080; root $work/www; location /dav/ { root $work; dav_methods PUT DELETE; create_full_put_path on; }"
dnsmasq --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
  --pid-file="$work/dnsmasq.pid" --local=/example.test/ \
  --host-record=www.example.test,10.1.2.3,2001:db8::3 \
  --cname=alias.example.test,www.example.test \
  --mx-host=example.test,mail.example.test,10 \
  --txt-record=example.test,"v=spf1 -all" \
  --srv-host=_http._tcp.example.test,www.example.test,8080,0,5 \
  --caa-record=example.test,0,issue,ca.example.test \
  --ptr-record=3.2.1.10.in-addr.arpa,www.example.test
sleep 0.5

capture() { # name filter
  tcpdump -i lo -U -s 0 --time-stamp-precision=nano -w "$work/$1.pcap" "$2" 2>/dev/null &
  echo $! > "$work/tcpdump.pid"
  sleep 1
}
stop_capture() { # name
  sleep 0.5
  kill -INT "$(cat "$work/tcpdump.pid")"
  wait "$(cat "$work/tcpdump.pid")" 2>/dev/null || true
  rm -f "$work/tcpdump.pid"
}

# --- HTTP and DNS, one capture ---------------------------------------------
capture http-dns 'tcp port 8080 or port 53'
u=http://127.0.0.1:8080
curl -s -o /dev/null -A 'pktflow-fixture' "$u/" "$u/index.html?x=1" "$u/missing"          >/dev/null # keep-alive, 404
curl -s -o /dev/null -I "$u/index.html"                                                     >/dev/null # HEAD
curl -s -o /dev/null --compressed "$u/big.txt"                                              >/dev/null # chunked gzip
curl -s -o /dev/null -H 'If-Modified-Since: Tue, 01 Jan 2030 00:00:00 GMT' "$u/index.html"  >/dev/null # 304
head -c 3000 /dev/zero | tr '\0' 'p' > "$work/body"
curl -s -o /dev/null -H 'Expect: 100-continue' -T "$work/body" "$u/dav/upload.txt"          >/dev/null # 100-continue, 201
curl -s -o /dev/null -g "http://[::1]:8080/" || true                                        >/dev/null # IPv6 (refused: nginx listens on v4 only)
printf 'GET /index.html HTTP/1.1\r\nHost: p\r\n\r\nGET /missing HTTP/1.1\r\nHost: p\r\n\r\nGET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n' \
  | python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",8080)); s.sendall(sys.stdin.buffer.read()); [None for _ in iter(lambda: s.recv(65536), b"")]'   # pipelined
dig @127.0.0.1 +tries=1 +time=1 www.example.test A >/dev/null
dig @127.0.0.1 +tries=1 +time=1 www.example.test AAAA >/dev/null
dig @127.0.0.1 +tries=1 +time=1 alias.example.test A >/dev/null
dig @127.0.0.1 +tries=1 +time=1 example.test MX >/dev/null
dig @127.0.0.1 +tries=1 +time=1 example.test TXT >/dev/null
dig @127.0.0.1 +tries=1 +time=1 _http._tcp.example.test SRV >/dev/null
dig @127.0.0.1 +tries=1 +time=1 example.test CAA >/dev/null
dig @127.0.0.1 +tries=1 +time=1 -x 10.1.2.3 >/dev/null
dig @127.0.0.1 +tries=1 +time=1 nothing.example.test A >/dev/null                          # NXDOMAIN
dig @127.0.0.1 +tries=1 +time=1 +tcp +keepopen www.example.test A example.test MX >/dev/null # DNS over TCP, two messages
stop_capture http-dns

# nanosecond pcap as tcpdump wrote it; microsecond pcap and pcapng from it
cp "$work/http-dns.pcap" "$out/http-dns-nsec.pcap"
editcap -F pcap "$work/http-dns.pcap" "$out/http-dns.pcap"
editcap -F pcapng "$work/http-dns.pcap" "$out/http-dns.pcapng"
echo "fixtures written: $(ls $out)"
