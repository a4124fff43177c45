# rd.live.ram: the image is copied to RAM, the medium is released and can be unplugged; the
# system keeps running from RAM after the disk is gone. migrate onto a whole disk is then refused
# (no kernel or boot code left to install) and writes nothing. With liveroot.stamps, the console
# has every step's stamp, in the order of the steps (boot.sh checks there are none without it).
DESC="rd.live.ram → medium released and hot-unplugged; liveroot.stamps"
APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image rd.live.ram liveroot.stamps"
EXPECT="root-md7 medium-unmounted medium-not-held medium-unplugged root-readable-after-unplug
	migrate-refused-released"
prepare() {
	truncate -s 1G "$RUNDIR/spare.img"
	add_disk "$RUNDIR/spare.img" SPARE
}
guest() {
	cat <<'G'
check_live_root
med=$(findfs LABEL=LIVE)
med=${med#/dev/}
echo "medium: $med"
check medium-unmounted sh -c "! grep -q '^/dev/$med ' /proc/mounts"
holders() {
	h=/sys/class/block/$med/holders
	[ -d "$h" ] || { echo "no $h"; return 1; }
	[ -z "$(ls "$h")" ] || { echo "holders: $(ls "$h")"; return 1; }
	# Every loop left must read from RAM (the copy, the overlay, or files inside the squashfs
	# mounted from the copy), never from the medium.
	for f in /sys/block/loop*/loop/backing_file; do
		[ -e "$f" ] || continue
		b=$(cat "$f")
		case $b in
		/run/live/ram/* | /run/live/overlay/* | /run/live/squashfs/*) echo "loop reads $b" ;;
		*) echo "a loop still reads $b"; return 1 ;;
		esac
	done
}
check medium-not-held holders
echo "LIVEROOT-TEST unplug-now"
i=0
while [ -e /sys/block/$med ] && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
check medium-unplugged test ! -e /sys/block/$med
echo 3 > /proc/sys/vm/drop_caches
check root-readable-after-unplug sh -c 'find / -xdev -type f -exec cat {} + >/dev/null && test -s /etc/hostname'
migrate --yes "$(disk_by_serial SPARE)" >/tmp/m.out 2>/tmp/m.err
rc=$?
echo "migrate: exit $rc: $(cat /tmp/m.err)"
check migrate-refused-released sh -c "[ $rc = 1 ] && grep -q 'the medium was released (rd.live.ram).*--no-bootloader' /tmp/m.err && [ ! -s /tmp/m.out ]"
G
}
verify() {
	cmp -s -n 1G "$RUNDIR/spare.img" /dev/zero || problem "migrate wrote to the disk it refused"
	local steps
	steps=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'liveroot-stamp [a-z-]+ [0-9.]+' |
		awk '$3 < t { print "out-of-order"; exit } { t = $3; printf "%s ", $2 }')
	[[ $steps == "init-start modules medium verified image root state init-exec real-init " ]] ||
		problem "liveroot.stamps: the stamps were: ${steps:-none}"
}
drive() {
	wait_for 'LIVEROOT-TEST unplug-now' "$TIMEOUT" || return
	monitor 'device_del flash' >/dev/null
}
