# Sourced by vmrun.sh and vmrun-systemd.sh (which set HERE to this directory): the qemu settings
# both tiers share.
#   NETDEV  user networking with restrict=on; for each PORT in HOSTFWD_PORTS, guest
#           10.0.2.100:PORT reaches host 127.0.0.1:PORT through its own connector per guest
#           connection (guestfwd's cmd: form, README trap 1): socat, or relay.py --stdio when
#           socat is missing or VM_CONNECTOR=python.
#   BIOS    qboot when installed (~1 s faster than SeaBIOS).
NETDEV="user,id=n0,restrict=on"
for p in ${HOSTFWD_PORTS:-}; do
  case "$p" in ''|*[!0-9]*) echo "vmrun: bad port '$p' in HOSTFWD_PORTS" >&2; exit 2 ;; esac
  if [ "${VM_CONNECTOR:-auto}" != python ] && command -v socat >/dev/null; then conn="socat - TCP:127.0.0.1:$p"
  else conn="/usr/bin/python3 $HERE/relay.py --stdio 127.0.0.1:$p"; fi
  NETDEV+=",guestfwd=tcp:10.0.2.100:$p-cmd:$conn"
done
BIOS=()
[ -f /usr/share/qemu/qboot.rom ] && BIOS=(-bios /usr/share/qemu/qboot.rom)
