#!/bin/bash
# Full smoke test of the VM tier, from the host: setup (cached), then the guest smoke test with
# the optional parts enabled:
#   - a host echo server on 127.0.0.1:<free port>, forwarded with HOSTFWD_PORTS, so the guest
#     checks relay.py + guestfwd (one host connection per guest connection);
#   - the gemlive binary (GEMLIVE_BIN, default: target/release/gemlive, else target/debug/gemlive
#     of this checkout or $CARGO_TARGET_DIR), for `gemlive list-devices` in the guest.
# usage: tests/vm/run-smoke.sh       env: VMDIR, TIMEOUT, SMP, GEMLIVE_BIN, KEEP=1 (keep the share dir)
# Exit status = the guest smoke test's (124 timeout, 125 VM died).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
t0=$(date +%s%N)
"$HERE/setup-host.sh"
t1=$(date +%s%N)
SHARE=$(mktemp -d /tmp/gemlive-smoke.XXXXXX)
cp "$HERE"/smoke/* "$SHARE/"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${GEMLIVE_BIN:-}
[ -n "$BIN" ] || for b in "$TGT/release/gemlive" "$TGT/debug/gemlive"; do [ -x "$b" ] && { BIN=$b; break; }; done
if [ -n "$BIN" ]; then echo "$BIN" > "$SHARE/gemlive_bin"; else echo "run-smoke: no gemlive binary built: BIN check skipped"; fi
# echo server: replies "conn<N> " + everything it received, after the client's EOF
/usr/bin/python3 - "$SHARE/net_port" > "$SHARE/echo.log" 2>&1 <<'PY' &
import socket, sys, threading
ls = socket.socket(); ls.bind(('127.0.0.1', 0)); ls.listen(16)
open(sys.argv[1] + '.tmp', 'w').write(str(ls.getsockname()[1]))
import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])
n = 0
def serve(c, k):
    data = b''
    while True:
        d = c.recv(4096)
        if not d: break
        data += d
    c.sendall(b'conn%d ' % k + data); c.close()
    print('echo: conn', k, data, flush=True)
while True:
    c, _ = ls.accept(); n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
PY
ECHO=$!
trap 'kill $ECHO 2>/dev/null || true' EXIT
i=0; until [ -f "$SHARE/net_port" ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
set +e
HOSTFWD_PORTS=$(cat "$SHARE/net_port") "$HERE/vmrun.sh" "$SHARE"
rc=$?
set -e
t2=$(date +%s%N)
echo "run-smoke: rc $rc; setup $(( (t1 - t0) / 1000000 )) ms, VM run $(( (t2 - t1) / 1000000 )) ms; guest boot: $(grep -o 'init: ready at [0-9.]*s' "$SHARE/console.log" || echo '?')"
if [ "$rc" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$SHARE"; else echo "run-smoke: share dir kept: $SHARE"; fi
exit "$rc"
