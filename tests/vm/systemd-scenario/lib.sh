# Sourced by the systemd tier's guest scenarios (run.sh for amd64, arm64/run.sh): the share,
# results, phases and the test rig's services. Results go to $S/results as key=value lines, and
# $S/phase tells the host's stand-in what each new connection is for.
S=$VM_SHARE
cd "$S" || exit 1
. "$S/vars"        # PORT, DEB, ENDPOINT_PATH
res() { echo "$1=$2" >> "$S/results"; echo "scenario: $1=$2"; }
phase() { echo "$1" > "$S/phase.tmp" && mv "$S/phase.tmp" "$S/phase"; echo "scenario: --- $1 at $(cut -d' ' -f1 /proc/uptime)s"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }
# wait_until SECONDS CMD...: poll every 0.2 s
wait_until() {
  n=$(($1 * 5)); shift; i=0
  while [ $i -lt $n ]; do "$@" && return 0; sleep 0.2; i=$((i + 1)); done
  return 1
}
jcount() { journalctl -b -u gemlive --no-pager -o cat 2>/dev/null | grep -c -- "$1"; }
prop() { systemctl show -p "$1" --value gemlive; }
active() { [ "$(systemctl is-active gemlive)" = active ]; }
mono_s() { echo "$1" | awk '{printf "%.2f", $1 / 1000000}'; }
CONF=/etc/gemlive/gemlive.toml
unit() { # NAME EXECSTART: a small always-on service of the test rig, started before gemlive
  cat > "/etc/systemd/system/$1.service" <<UNIT
[Unit]
Before=gemlive.service
After=systemd-udevd.service sys-kernel-config.mount
[Service]
ExecStart=$2
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
UNIT
}
# The rig's mic playing into snd-aloop, camera feeding v4l2loopback and relay to the host's
# stand-in: there at every boot, as a box's devices are.
rig_units() {
  unit vm-mic "/bin/sh -c 'exec aplay -q -D hw:Loopback,0,0 -f S16_LE -r 16000 -c 1 $S/mic.raw'"
  unit vm-camera "/usr/bin/python3 $S/mjpeg_producer.py /dev/video10 $S/camera.mjpeg --fps 10"
  unit vm-relay "/usr/bin/python3 $S/relay.py $PORT"
}
# install_deb: the owner's `apt install ./gemlive_….deb` on a box without internet
install_deb() {
  mv /etc/apt/sources.list /etc/apt/sources.list.no-internet
  t0=$(now)
  apt-get install -y "$S/$DEB" > "$S/apt-install.log" 2>&1
  res apt_install_rc $?
  res apt_install_s "$(since "$t0")"
  cat "$S/apt-install.log"
  res not_started_msg "$(grep -c 'NOT started' "$S/apt-install.log")"
  res enabled "$(systemctl is-enabled gemlive)"
}
# nokey_start: without a key a start is skipped, not failed
nokey_start() {
  systemctl start gemlive
  res nokey_start_rc $?
  res nokey_condition "$(prop ConditionResult)"
  res nokey_active "$(systemctl is-active gemlive)"
  systemctl status gemlive --no-pager > "$S/status-nokey.txt" 2>&1
}
# owner_conf: the owner's edits that both architectures make: the devices and (here) the
# stand-in as the server. A scenario appends its own sections.
owner_conf() {
  cat > "$CONF" <<CONF
# vm-test-edit: the owner's own configuration
[live]
endpoint = "ws://127.0.0.1:$PORT$ENDPOINT_PATH"
voice = "Puck"

[audio]
capture_device = "plughw:Loopback,1,0"
playback_device = "dmix:CARD=Loopback,DEV=0,SUBDEV=1"
echo = "none"

[video]
device = "/dev/video10"
CONF
}
# put_key: the owner's key in place
put_key() {
  install -m 600 /dev/null /etc/gemlive/api-key
  echo vm-test-key > /etc/gemlive/api-key
}
# reload_voice: a changed voice; the session moves to a new connection that resumes
reload_voice() {
  phase reload-voice
  sed -i 's/^voice = .*/voice = "Kore"/' "$CONF"
  n=$(jcount "configuration reloaded")
  systemctl reload gemlive
  res reload_rc $?
  res reload_applied_on_return "$([ "$(jcount "configuration reloaded")" -gt "$n" ] && echo yes || echo no)"
  wait_until 20 [ "$(jcount "configuration reloaded")" -gt "$n" ]
  sleep "${1:-5}"
}
# stop_service: a quick, clean stop, then the sandbox's score
stop_service() {
  phase stop
  t0=$(now)
  systemctl stop gemlive
  res stop_rc $?
  res stop_s "$(since "$t0")"
  res stop_result "$(prop Result)"
  res stop_exit_status "$(prop ExecMainStatus)"
  res security "$(systemd-analyze security gemlive --no-pager 2>&1 | tail -1)"
  systemd-analyze security gemlive --no-pager > "$S/security.txt" 2>&1
}
# purge: everything but the key goes
purge() {
  phase purge
  apt-get purge -y gemlive > "$S/apt-purge.log" 2>&1; res purge_rc $?
  res purge_conf_gone "$([ ! -e "$CONF" ] && echo yes || echo no)"
  res purge_key_kept "$([ -e /etc/gemlive/api-key ] && echo yes || echo no)"
  res purge_unit_gone "$([ ! -e /usr/lib/systemd/system/gemlive.service ] && echo yes || echo no)"
  res purge_enabled_link_gone "$([ ! -e /etc/systemd/system/multi-user.target.wants/gemlive.service ] && echo yes || echo no)"
}
journal_dump() { journalctl -b -u gemlive --no-pager -o short-monotonic > "$S/journal-$VM_BOOT.txt" 2>&1; }
trap journal_dump EXIT
