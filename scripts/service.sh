# What the scripts that run a local server share (kafka.sh, cassandra.sh, ferretdb.sh),
# sourced by them. The caller defines answers() (does the server answer on $port?).

# service_wait NAME PIDFILE SECONDS TICK EXITED LOG [QUIET]: wait until the server just
# started (its pid in PIDFILE) answers, checking every TICK seconds: exit 0 then
# (saying so unless QUIET); exit 1 if it exits first (with the message EXITED and the
# last lines of LOG) or does not answer within SECONDS.
service_wait() {
  local name=$1 pidfile=$2 wait=$3 tick=$4 exited=$5 log=$6 quiet=${7:-}
  local deadline=$(( $(date +%s) + wait ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if answers; then
      [ -n "$quiet" ] || echo "$name: running on 127.0.0.1:$port" >&2
      exit 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "$name: $exited" >&2; tail -5 "$log" >&2; exit 1; }
    sleep "$tick"
  done
  echo "$name: no answer on 127.0.0.1:$port after $wait s" >&2
  exit 1
}

# service_stop PIDFILE TRIES TICK: stop the process in PIDFILE (TERM, then KILL after
# TRIES checks TICK seconds apart) and remove PIDFILE; nothing when there is none.
service_stop() {
  local pidfile=$1 tries=$2 tick=$3 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || break; sleep "$tick"; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
