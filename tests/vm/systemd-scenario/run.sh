#!/bin/sh
# Guest side of tests/vm_systemd.rs: a Pi owner's first hour with the .deb on Debian bookworm
# under a real systemd (PID 1). Runs once per boot (VM_BOOT); results go to $S/results as
# key=value lines, and $S/phase tells the host's stand-in what each new connection is for.
. "$VM_SHARE/lib.sh"   # res, phase, wait_until, jcount, prop, unit, install_deb, ...
CHIP=$(cat /sys/kernel/config/gpio-sim/gemlive/bank0/chip_name 2>/dev/null)
SIM=$(ls -d /sys/devices/platform/gpio-sim.*/"$CHIP" 2>/dev/null | head -1)
press() { echo pull-down > "$SIM/sim_gpio0/pull"; sleep 0.3; echo pull-up > "$SIM/sim_gpio0/pull"; }
# A session: a short press, then the stand-in's answer is awaited in the log.
session() {
  before=$(jcount "session starting")
  press
  wait_until 30 [ "$(jcount "session starting")" -gt "$before" ] || { res "$1" no_session; return; }
  sleep "${2:-6}"
  res "$1" ok
}

case "$VM_BOOT" in
1)
  : > "$S/results"
  phase install
  # The rig: the gpio-sim chip (a oneshot before gemlive), a mic playing into snd-aloop, a
  # camera feeding v4l2loopback and the relay to the host's stand-in: there at every boot.
  cat > /etc/systemd/system/vm-hw.service <<UNIT
[Unit]
Before=gemlive.service
After=systemd-udevd.service sys-kernel-config.mount
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$S/hw.sh
[Install]
WantedBy=multi-user.target
UNIT
  rig_units
  systemctl daemon-reload
  systemctl enable --now vm-hw vm-mic vm-camera vm-relay 2>&1
  CHIP=$(cat /sys/kernel/config/gpio-sim/gemlive/bank0/chip_name)
  SIM=$(ls -d /sys/devices/platform/gpio-sim.*/"$CHIP" | head -1)
  # This box has no internet: only the stand-in. apt works from local files and repositories.
  install_deb
  res gpiochip "$(stat -c '%U:%G %a' "/dev/$CHIP")"
  # No key yet: a start is skipped, not failed.
  nokey_start

  # The owner's edits, with the button.
  owner_conf
  cat >> "$CONF" <<CONF

[session]
wake = "button"

[button]
line = "BTN"
led_line = "LED"
CONF
  put_key

  phase start
  t0=$(now)
  systemctl start gemlive
  res start_rc $?
  res start_s "$(since "$t0")"
  res start_status "$(prop StatusText)"
  res start_result "$(systemctl is-active gemlive)"
  session session1 8
  res session_status "$(prop StatusText)"
  systemctl status gemlive --no-pager > "$S/status-running.txt" 2>&1
  res led_on "$(cat "$SIM/sim_gpio1/value")"

  # A changed voice: the session moves to a new connection that resumes the conversation.
  reload_voice 5
  # A broken file: the reload fails, the running configuration stays.
  phase reload-broken
  cp "$CONF" /root/gemlive.toml.good
  echo '[[[ not toml' >> "$CONF"
  n=$(jcount "config reload failed")
  systemctl reload gemlive > "$S/reload-broken.txt" 2>&1
  res broken_reload_rc $?
  wait_until 20 [ "$(jcount "config reload failed")" -gt "$n" ]
  res broken_reload_logged "$(jcount "config reload failed")"
  sleep 1
  res broken_active "$(systemctl is-active gemlive)"
  cp /root/gemlive.toml.good "$CONF"

  # A wedged daemon (SIGSTOP): the watchdog (WatchdogSec=30) kills it and systemd restarts it.
  phase watchdog
  pid=$(prop MainPID)
  kill -STOP "$pid"
  t0=$(now)
  wait_until 120 sh -c "[ \"\$(systemctl show -p MainPID --value gemlive)\" != $pid ] && [ \"\$(systemctl show -p MainPID --value gemlive)\" != 0 ]"
  wait_until 60 active
  res watchdog_restart_s "$(since "$t0")"
  res watchdog_nrestarts "$(prop NRestarts)"
  res watchdog_logged "$(journalctl -b -u gemlive --no-pager | grep -c 'Watchdog timeout')"
  res watchdog_active "$(systemctl is-active gemlive)"

  # Another program shares the speaker's card through dmix and must keep playing while gemlive
  # (the dmix's first user, so the owner of its IPC objects) restarts, stops and starts.
  phase dmix
  systemctl restart gemlive
  # A session's start chime opens the speaker: gemlive is the dmix's first user, so the dmix's
  # SysV semaphores and shared memory are created by (and owned by) the gemlive user.
  session dmix_session 2
  res dmix_gemlive_ipc "$(ipcs -s | awk '$3 == "gemlive"' | wc -l) semaphore set(s), $(ipcs -m | awk '$3 == "gemlive"' | wc -l) shared memory segment(s)"
  useradd --system --no-create-home --groups audio music 2>/dev/null
  # dmix runs the card at its own best format: S32_LE, 48 kHz, stereo on snd-aloop.
  arecord -q -D hw:Loopback,1,1 -f S32_LE -r 48000 -c 2 -d 26 "$S/dmix.raw" > "$S/dmix-rec.log" 2>&1 &
  REC=$!
  sleep 1
  t_play=$(now)
  setpriv --reuid=music --regid=music --init-groups aplay -q -D "plug:'dmix:CARD=Loopback,DEV=0,SUBDEV=1'" \
    -f S16_LE -r 48000 -c 2 "$S/tone.raw" > "$S/dmix-player.log" 2>&1 &
  PLAYER=$!
  sleep 4
  echo "restart $(since "$t_play")" >> "$S/dmix-events"
  systemctl restart gemlive; res dmix_restart_rc $?
  # After each start, a session: gemlive opens the shared dmix again while the player holds it.
  e=$(jcount "reply audio is dropped until it opens")
  session dmix_session_restarted 2
  sleep 1
  echo "stop $(since "$t_play")" >> "$S/dmix-events"
  systemctl stop gemlive; res dmix_stop_rc $?
  res dmix_ipc_while_stopped "$(ipcs -s | awk '$3 == "gemlive"' | wc -l) semaphore set(s), $(ipcs -m | awk '$3 == "gemlive"' | wc -l) shared memory segment(s)"
  sleep 3
  echo "start $(since "$t_play")" >> "$S/dmix-events"
  systemctl start gemlive; res dmix_start_rc $?
  session dmix_session_started 2
  res dmix_gemlive_open_failures "$(( $(jcount "reply audio is dropped until it opens") - e ))"
  wait "$PLAYER"; res dmix_player_rc $?
  wait "$REC"
  res dmix_player_log "$(head -c 300 "$S/dmix-player.log" | tr '\n' ' ')"
  res dmix_gemlive_ipc_after "$(ipcs -s | awk '$3 == "gemlive"' | wc -l) semaphore set(s) of gemlive left"

  # A quick, clean stop.
  stop_service
  # Enabled, with the key in place: the next boot starts it.
  touch "$S/reboot"
  exit 0
  ;;
2)
  phase boot2
  wait_until 90 active
  res boot_active "$(systemctl is-active gemlive)"
  res boot_active_s "$(mono_s "$(prop ActiveEnterTimestampMonotonic)")"
  res boot_network_online_s "$(mono_s "$(systemctl show -p ActiveEnterTimestampMonotonic --value network-online.target)")"
  res boot_status "$(prop StatusText)"
  session session2 5

  # Updates from the signed repository, as the README tells an owner to set it up.
  phase repo
  install -d -m 755 /etc/apt/keyrings
  cp "$S/repo1/gemlive-archive-keyring.gpg" /etc/apt/keyrings/gemlive.gpg
  cat > /etc/apt/sources.list.d/gemlive.sources <<SRC
Types: deb
URIs: file:$S/repo1
Suites: stable
Components: main
Signed-By: /etc/apt/keyrings/gemlive.gpg
SRC
  apt-get update > "$S/apt-update1.log" 2>&1; res repo_update_rc $?
  apt-get install -y gemlive > "$S/apt-repo-install.log" 2>&1; res repo_install_rc $?
  res repo_install_newest "$(grep -c 'already the newest version' "$S/apt-repo-install.log")"
  apt-cache policy gemlive > "$S/policy1.txt" 2>&1
  # The publisher adds a newer version: `apt upgrade` restarts the running service, keeps the
  # edited config, and the conversation goes on from the persisted handle.
  phase upgrade
  pid=$(prop MainPID)
  sed -i "s|file:$S/repo1|file:$S/repo2|" /etc/apt/sources.list.d/gemlive.sources
  apt-get update > "$S/apt-update2.log" 2>&1; res repo2_update_rc $?
  apt-get upgrade -y > "$S/apt-upgrade.log" 2>&1; res upgrade_rc $?
  cat "$S/apt-upgrade.log"
  res upgrade_version "$(dpkg-query -W -f='${Version}' gemlive)"
  wait_until 60 active
  res upgrade_active "$(systemctl is-active gemlive)"
  res upgrade_restarted "$([ "$(prop MainPID)" != "$pid" ] && echo yes || echo no)"
  res upgrade_config_kept "$(grep -c '^# vm-test-edit' "$CONF")"
  res upgrade_handle_file "$(ls /var/lib/gemlive | tr '\n' ' ')"
  phase resumed
  session session4 5
  # The next boot has no network card at all.
  phase offline
  touch "$S/offline" "$S/reboot"
  exit 0
  ;;
3)
  phase boot3-offline
  wait_until 90 active
  res offline_active "$(systemctl is-active gemlive)"
  res offline_active_s "$(mono_s "$(prop ActiveEnterTimestampMonotonic)")"
  res offline_network_online_s "$(mono_s "$(systemctl show -p ActiveEnterTimestampMonotonic --value network-online.target)")"
  res offline_wait_online "$(systemctl show -p Result --value systemd-networkd-wait-online)"
  res offline_status "$(prop StatusText)"
  purge
  exit 0
  ;;
esac
exit 1
