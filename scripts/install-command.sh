#!/usr/bin/env bash
# Makes `pktflow` a command on the PATH: a two-line script in BIN_DIR (default
# /usr/local/bin: on every user's PATH on Debian, and in sudo's secure_path, so
# `sudo pktflow capture` works too) that execs this checkout's bin/pktflow.js with
# the node found now, by absolute path (root's PATH may lack an nvm or /opt node).
# exec makes pktflow the process itself: Ctrl-C and kill -INT reach it, and it flushes
# and exits 0 (through npx, npm takes the signal and exits 130 while a capture runs on).
# Run again after moving the checkout or node. Uses sudo when BIN_DIR is not writable.
#   bash scripts/install-command.sh [BIN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/usr/local/bin}
node=$(command -v node) || { echo "install-command: node is not on the PATH" >&2; exit 1; }
marker="# pktflow command, written by scripts/install-command.sh"
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
script="#!/bin/sh
$marker
exec $(quote "$node") $(quote "$PWD/bin/pktflow.js") \"\$@\""

target=$dir/pktflow
if [ -e "$target" ] || [ -L "$target" ]; then
  [ "$(cat "$target" 2>/dev/null)" = "$script" ] && exit 0
  # replace our own script or a link (npm link's), never another program of that name
  if [ ! -L "$target" ] && ! grep -qF "$marker" "$target"; then
    echo "install-command: $target exists and is not pktflow's; remove it or pass another directory" >&2
    exit 1
  fi
fi
sudo=""
if [ "$(id -u)" -ne 0 ] && ! { [ -d "$dir" ] && [ -w "$dir" ]; }; then sudo="sudo"; fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$script" > "$tmp"
$sudo mkdir -p "$dir"
$sudo rm -f "$target"
$sudo install -m 755 "$tmp" "$target"
echo "install-command: $target runs $PWD/bin/pktflow.js" >&2
case ":$PATH:" in
  *":$dir:"*) ;;
  *) echo "install-command: $dir is not on your PATH; add it, or run $target" >&2 ;;
esac
