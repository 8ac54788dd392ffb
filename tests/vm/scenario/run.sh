#!/bin/sh
# Guest side of tests/vm_hw.rs: real drivers, the real gemlive binary. Results go to $S/results.
S=$(dirname "$0")
. "$S/vars"      # DAEMON, PORT
cd "$S"
res() { echo "$1=$2" >> "$S/results"; }
: > "$S/results"

# gpio-sim: one chip, line 0 = BTN (pulled up: not pressed), line 1 = LED, line 2 = MUTE (a
# switch, pulled up: off)
G=/sys/kernel/config/gpio-sim/gemlive
mkdir -p $G/bank0/line0 $G/bank0/line1 $G/bank0/line2
echo 3 > $G/bank0/num_lines
echo BTN > $G/bank0/line0/name
echo LED > $G/bank0/line1/name
echo MUTE > $G/bank0/line2/name
echo 1 > $G/live
CHIP=$(cat $G/bank0/chip_name)
SIM=$(ls -d /sys/devices/platform/gpio-sim.*/$CHIP | head -1)
echo pull-up > $SIM/sim_gpio0/pull
echo pull-up > $SIM/sim_gpio2/pull
res chip "$CHIP"

python3 "$S/mjpeg_producer.py" /dev/video10 "$S/camera.mjpeg" --fps 30 > "$S/producer.log" 2>&1 &
PROD=$!
python3 "$S/record.py" hw:Loopback,1,1 24000 "$S/speaker.raw" "$S/speaker.times" > "$S/record.log" 2>&1 &
REC=$!
aplay -q -D hw:Loopback,0,0 -f S16_LE -r 16000 -c 1 "$S/mic.raw" > "$S/aplay.log" 2>&1 &
MIC=$!
python3 "$S/relay.py" "$PORT" > "$S/relay.log" 2>&1 &
RELAY=$!
sleep 1

GEMINI_API_KEY=vm-test-key "$DAEMON" --config "$S/gemlive.toml" -v run > "$S/daemon.log" 2>&1 &
D=$!
for i in $(seq 100); do
  gpioinfo -c "$CHIP" 2>/dev/null | grep -q gemlive && break
  sleep 0.2
done
res button_requested "$(gpioinfo -c "$CHIP" 2>/dev/null | grep -c gemlive)"
res led_before "$(gpioget -c "$CHIP" --numeric LED 2>/dev/null || cat $SIM/sim_gpio1/value)"

# A short press starts the session.
echo pull-down > $SIM/sim_gpio0/pull; sleep 0.2; echo pull-up > $SIM/sim_gpio0/pull
sleep 2
res led_on "$(cat $SIM/sim_gpio1/value)"

# The host runs its script (replies, an interruption), then creates host_done.
for i in $(seq 600); do [ -e "$S/host_done" ] && break; sleep 0.1; done
res host_done "$([ -e "$S/host_done" ] && echo 1 || echo 0)"

# The camera goes away (producer stopped) and comes back: audio must go on meanwhile.
kill -TERM $PROD; wait $PROD
res camera_gone_at "$(cut -d' ' -f1 /proc/uptime)"
sleep 6
python3 "$S/mjpeg_producer.py" /dev/video10 "$S/camera.mjpeg" --fps 30 > "$S/producer2.log" 2>&1 &
PROD=$!
res camera_back_at "$(cut -d' ' -f1 /proc/uptime)"
sleep 4

# The mute switch on for 4 s: the LED blinks its mute pattern (1 s on, 1 s off) meanwhile.
echo pull-down > $SIM/sim_gpio2/pull
ones=0; zeros=0
for i in $(seq 16); do
  sleep 0.25
  if [ "$(cat $SIM/sim_gpio1/value)" = 1 ]; then ones=$((ones+1)); else zeros=$((zeros+1)); fi
done
echo pull-up > $SIM/sim_gpio2/pull
res mute_led_ones "$ones"
res mute_led_zeros "$zeros"
sleep 1.5
res led_unmuted "$(cat $SIM/sim_gpio1/value)"
sleep 2

# A long press ends the session.
echo pull-down > $SIM/sim_gpio0/pull; sleep 2.2; echo pull-up > $SIM/sim_gpio0/pull
sleep 1.5
res led_after "$(cat $SIM/sim_gpio1/value)"

# The host set a 40 s kitchen timer just before host_done: it rings with no session open and
# the LED blinks until a short press, which only silences it (no new session).
last=$(cat $SIM/sim_gpio1/value); flips=0
for i in $(seq 800); do
  v=$(cat $SIM/sim_gpio1/value); [ "$v" != "$last" ] && flips=$((flips+1)); last=$v
  [ $flips -ge 6 ] && break
  sleep 0.05
done
res timer_led_flips "$flips"
echo pull-down > $SIM/sim_gpio0/pull; sleep 0.3; echo pull-up > $SIM/sim_gpio0/pull
sleep 0.5
last=$(cat $SIM/sim_gpio1/value); flips=0
for i in $(seq 40); do
  v=$(cat $SIM/sim_gpio1/value); [ "$v" != "$last" ] && flips=$((flips+1)); last=$v
  sleep 0.05
done
res silenced_led_flips "$flips"
res led_silenced "$(cat $SIM/sim_gpio1/value)"

kill -TERM $D; wait $D; res daemon_rc $?
kill -TERM $REC $PROD $MIC $RELAY 2>/dev/null; wait $REC
res done 1
