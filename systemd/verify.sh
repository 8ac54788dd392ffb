#!/usr/bin/env bash
# Checks the unit as systemd would load it, and prints its security exposure score.
# usage: systemd/verify.sh [PATH-TO-GEMLIVE-BINARY]   (default: target/debug/gemlive)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/gemlive}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants ExecStart= to exist: point it at the built binary.
sed "s#/usr/bin/gemlive#$bin#" systemd/gemlive.service > "$tmp/gemlive.service"
systemd-analyze verify "$tmp/gemlive.service"
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=true "$tmp/gemlive.service" | tail -1
