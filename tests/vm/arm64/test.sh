#!/bin/bash
# The arm64 systemd tier in one command: the host set-up with the arm64 image (setup-host.sh
# with VM_ARM64=1, as root), the arm64 .deb (cross/deb.sh aarch64), then the test
# (tests/vm_systemd.rs, arm64_deb_under_systemd_in_a_vm). Prints each phase's time.
# usage: bash tests/vm/arm64/test.sh
# env: VMDIR (default /tmp/gemlive-vm)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
t() { date +%s; }
T0=$(t)
$SUDO env VM_ARM64=1 VMDIR="${VMDIR:-/tmp/gemlive-vm}" bash tests/vm/setup-host.sh
T1=$(t)
bash cross/deb.sh aarch64
T2=$(t)
VM_ARM64=1 cargo test --test vm_systemd arm64 -- --nocapture
T3=$(t)
echo "arm64 tier: set-up $((T1 - T0)) s, arm64 .deb $((T2 - T1)) s, test $((T3 - T2)) s, total $((T3 - T0)) s"
