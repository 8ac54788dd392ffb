#!/bin/sh
# Smoke test of the gemlive VM tier, run INSIDE the VM by vmrun.sh (root, host / as overlay root).
# Checks the real-driver paths gemlive uses:
#   ALSA  snd-aloop: a 440 Hz tone played into hw:Loopback,0,0 is captured on hw:Loopback,1,0
#         with the expected amplitude, in real time;
#   V4L2  v4l2loopback: MJPEG frames from mjpeg_producer.py reach `v4l2-ctl --stream-mmap`,
#         also after the producer was stopped and restarted (v4l2loopback 0.12.7 trap);
#   GPIO  gpio-sim: a simulated pull is read by gpioget, edges seen by gpiomon, a gpioset output
#         is visible in sysfs.
# Optional (SKIP when not set up by run-smoke.sh):
#   NET   ./net_port: via relay.py on 127.0.0.1:PORT -> 10.0.2.100:PORT -> host echo server;
#         two guest connections must get two distinct host connections (guestfwd cmd: form);
#   BIN   ./gemlive_bin: `gemlive list-devices` sees hw:Loopback and /dev/video10 as MJPEG.
# Helpers come from $VM_TOOLS (the host's tests/vm, passed in by vmrun.sh), else from here.
set -u
D=$(pwd)
T=${VM_TOOLS:-$D}
[ -f "$T/mjpeg_producer.py" ] || T=$D
W=/tmp/smoke; mkdir -p $W
pass=0; fail=0; skip=0
ok()   { echo "PASS: $*"; pass=$((pass+1)); }
bad()  { echo "FAIL: $*"; fail=$((fail+1)); }
skp()  { echo "SKIP: $*"; skip=$((skip+1)); }
ms()   { echo $(( $(date +%s%N) / 1000000 )); }
T0=$(ms)
section() { echo "== [$(( $(ms) - T0 )) ms] $*"; }

section "devices"
ls /dev/snd /dev/video* 2>&1 | tr '\n' ' '; echo
cat /proc/asound/cards

section "ALSA: 2 s 440 Hz tone into hw:Loopback,0,0, captured from hw:Loopback,1,0"
python3 - <<'PY'
import math, struct
with open('/tmp/smoke/tone.raw', 'wb') as f:
    f.write(b''.join(struct.pack('<hh', v, v) for v in
            (int(10000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(48000 * 2))))
PY
t0=$(ms)
arecord -q -D hw:Loopback,1,0 -f S16_LE -r 48000 -c 2 -d 2 -t raw $W/cap.raw & rec=$!
aplay -q -D hw:Loopback,0,0 -f S16_LE -r 48000 -c 2 -t raw $W/tone.raw
wait $rec; t1=$(ms)
python3 - $((t1 - t0)) <<'PY' && ok "aloop tone captured" || bad "aloop tone"
import struct, sys
d = open('/tmp/smoke/cap.raw', 'rb').read()
s = struct.unpack('<%dh' % (len(d) // 2), d)
# capture starts before playback: measure 1 s (96000 interleaved samples) from the tone's onset
start = next((i for i, x in enumerate(s) if abs(x) > 100), len(s))
body = s[start:start + 96000]
m = sum(abs(x) for x in body) / max(1, len(body)); wall = int(sys.argv[1]) / 1000
print(f"aloop: {len(d)} bytes, tone from {start / 96000:.3f}s, mean|x|={m:.0f} over 1 s "
      f"(10000-amplitude sine: 6366), wall {wall:.2f}s for 2 s of audio")
sys.exit(0 if len(d) == 48000 * 4 * 2 and len(body) == 96000 and 6000 < m < 6700 and 1.9 < wall < 5 else 1)
PY

section "V4L2: v4l2loopback /dev/video10 fed by mjpeg_producer.py"
python3 - <<'PY'
for i, rgb in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
    with open(f'/tmp/smoke/f{i}.ppm', 'wb') as f:
        f.write(b'P6 640 480 255\n' + bytes(rgb) * (640 * 480))
PY
for i in 0 1 2; do cjpeg -quality 80 $W/f$i.ppm > $W/f$i.jpg; done
cat $W/f0.jpg $W/f1.jpg $W/f2.jpg > $W/clip.mjpeg     # a concatenated MJPEG input works too
count_jpegs() {  # FILE -> number of complete JPEG frames (SOI..EOI; first one may be padded)
  python3 -c "
import sys; sys.path.insert(0, '$T'); import mjpeg_producer as p
print(len(p.split_jpegs(open('$1', 'rb').read())))"
}
grab() {  # N OUTFILE: capture N frames, at most 20 s
  timeout 20 v4l2-ctl -d /dev/video10 --stream-mmap --stream-count=$1 --stream-to=$2 2>&1 | tail -1
}
for round in 1 2; do
  python3 "$T/mjpeg_producer.py" /dev/video10 $W/clip.mjpeg --fps 30 --pidfile $W/prod.pid > $W/prod$round.log 2>&1 &
  prod=$!
  i=0; until [ -f $W/prod.pid ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
  [ $round = 1 ] && v4l2-ctl -d /dev/video10 --list-formats-ext | grep -E "MJPG|Size|Interval"
  grab 10 $W/loop$round.mjpeg
  kill -TERM $prod; wait $prod; prc=$?
  cat $W/prod$round.log
  n=$(count_jpegs $W/loop$round.mjpeg)
  echo "v4l2loopback round $round: $(stat -c %s $W/loop$round.mjpeg 2>/dev/null) bytes, $n JPEG frames, producer exit $prc"
  if [ "$n" = 10 ] && [ $prc = 0 ]; then ok "v4l2loopback MJPEG 10 frames (producer start $round)"
  else bad "v4l2loopback round $round ($n frames, producer exit $prc)"; fi
done

section "GPIO: gpio-sim via configfs"
C=/sys/kernel/config/gpio-sim/smoke
mkdir $C $C/bank0 && echo 8 > $C/bank0/num_lines && echo sim-bank0 > $C/bank0/label
mkdir $C/bank0/line3 && echo button > $C/bank0/line3/name
mkdir $C/bank0/line5 && echo led > $C/bank0/line5/name
echo 1 > $C/live
DEV=$(cat $C/dev_name); CHIP=$(cat $C/bank0/chip_name); S=/sys/devices/platform/$DEV/$CHIP
echo "gpio-sim: $DEV -> /dev/$CHIP"; gpiodetect
echo pull-down > $S/sim_gpio3/pull; v0=$(gpioget -c $CHIP --numeric button)
echo pull-up   > $S/sim_gpio3/pull; v1=$(gpioget -c $CHIP --numeric button)
echo "button: pull-down => $v0, pull-up => $v1"
[ "$v0$v1" = 01 ] && ok "gpioget follows the simulated pull" || bad "gpioget ($v0$v1)"
echo pull-down > $S/sim_gpio3/pull
timeout 10 gpiomon -c $CHIP --num-events=2 --edges=both button > $W/mon.txt & mon=$!
i=0; until gpioinfo -c $CHIP button 2>/dev/null | grep -q 'consumer="gpiomon"' || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
echo pull-up > $S/sim_gpio3/pull; sleep 0.2; echo pull-down > $S/sim_gpio3/pull
wait $mon; cat $W/mon.txt
if grep -q rising $W/mon.txt && grep -q falling $W/mon.txt; then ok "gpiomon saw rising+falling edges"
else bad "gpiomon edges"; fi
gpioset -c $CHIP led=1 & set=$!
i=0; until [ "$(cat $S/sim_gpio5/value)" = 1 ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
lv=$(cat $S/sim_gpio5/value); kill $set; wait $set 2>/dev/null
echo "led: gpioset led=1 => sim_gpio5/value=$lv"
[ "$lv" = 1 ] && ok "gpioset output visible in gpio-sim" || bad "gpioset output ($lv)"

section "NET: guest 127.0.0.1:PORT -> relay.py -> 10.0.2.100:PORT -> host 127.0.0.1:PORT"
if [ -f ./net_port ]; then
  P=$(cat ./net_port)
  python3 "$T/relay.py" --pidfile $W/relay.pid "$P" > $W/relay.log 2>&1 & relay=$!
  i=0; until [ -f $W/relay.pid ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
  python3 - "$P" <<'PY' && ok "two guest connections -> two host connections" || bad "relay/guestfwd"
import socket, sys
port = int(sys.argv[1]); seen = []
for i in range(2):   # the host echo server prefixes its connection number
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(b'hello %d\n' % i); s.shutdown(socket.SHUT_WR)
        data = b''
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    print('net: reply', data)
    seen.append(data.split(b' ', 1)[0])
    assert data.endswith(b'hello %d\n' % i), data
sys.exit(0 if len(set(seen)) == 2 else 1)
PY
  kill -TERM $relay; wait $relay; echo "relay exit $?"
else
  skp "network (no ./net_port; run-smoke.sh provides one)"
fi

section "BIN: gemlive list-devices"
if [ -f ./gemlive_bin ] && [ -x "$(cat ./gemlive_bin)" ]; then
  # with exclusive_caps=1, video10 is a capture device only while a producer is streaming
  python3 "$T/mjpeg_producer.py" /dev/video10 $W/f0.jpg --fps 10 --pidfile $W/prod.pid > $W/prod3.log 2>&1 & prod=$!
  i=0; until [ -f $W/prod.pid ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
  "$(cat ./gemlive_bin)" list-devices > $W/devices.txt 2>&1; grc=$?
  kill -TERM $prod; wait $prod
  grep -A2 -E '^hw:CARD=Loopback|^/dev/video' $W/devices.txt   # the full list is long
  if [ $grc = 0 ] && grep -q 'Loopback' $W/devices.txt && grep -q 'video10' $W/devices.txt; then
    ok "gemlive list-devices sees Loopback and /dev/video10"
  else bad "gemlive list-devices (rc $grc)"; fi
else
  skp "gemlive binary (no ./gemlive_bin; run-smoke.sh provides one)"
fi

section "done: $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ] && [ $pass -gt 0 ]
