#!/bin/sh
# The box's "hardware" at every boot, before gemlive starts (vm-hw.service): a gpio-sim chip
# with a button (BTN, pulled up: not pressed) and an LED, the way a Pi's gpiochip0 is simply
# there at boot.
G=/sys/kernel/config/gpio-sim/gemlive
[ -d /sys/kernel/config/gpio-sim ] || mount -t configfs none /sys/kernel/config 2>/dev/null
mkdir -p $G/bank0/line0 $G/bank0/line1
echo 2 > $G/bank0/num_lines
echo BTN > $G/bank0/line0/name
echo LED > $G/bank0/line1/name
echo 1 > $G/live
CHIP=$(cat $G/bank0/chip_name)
SIM=$(ls -d /sys/devices/platform/gpio-sim.*/"$CHIP" | head -1)
echo pull-up > "$SIM/sim_gpio0/pull"
# udev applies the package's rule to the new chip; wait for it so gemlive never sees it half-made.
udevadm settle -t 10 || true
