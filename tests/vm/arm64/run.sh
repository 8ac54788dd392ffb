#!/bin/sh
# Guest side of tests/vm_systemd.rs's arm64 test: the arm64 .deb on Debian bookworm for arm64
# under a real systemd, on qemu-system-aarch64 -M virt (Debian's own arm64 kernel). A shorter
# first hour than the amd64 tier's, in one boot: install, skipped without a key, start with
# READY, a conversation (wake = "always": no button) with mic audio and camera frames at the
# stand-in, a reload with a new voice, a quick stop, purge.
. "$VM_SHARE/lib.sh"
: > "$S/results"
phase install
res arch "$(uname -m) $(dpkg --print-architecture)"
rig_units
systemctl daemon-reload
systemctl enable --now vm-mic vm-camera vm-relay 2>&1
install_deb
res binary_arch "$(od -An -tx1 -j18 -N2 /usr/bin/gemlive | tr -d ' ')"
nokey_start
# The owner's edits; wake stays "always".
owner_conf
put_key
phase start
t0=$(now)
systemctl start gemlive
res start_rc $?
res start_s "$(since "$t0")"
res start_status "$(prop StatusText)"
res start_result "$(systemctl is-active gemlive)"
wait_until 30 [ "$(jcount "session starting")" -gt 0 ] && res session ok || res session no_session
sleep 8
res session_status "$(prop StatusText)"
systemctl status gemlive --no-pager > "$S/status-running.txt" 2>&1
reload_voice 6
stop_service
purge
exit 0
