# The rebootless install onto a whole blank disk, then that disk booted alone through firmware,
# as a PC boots it: SeaBIOS (MBR code -> syslinux) and OVMF (\EFI\BOOT\BOOTX64.EFI ->
# systemd-boot), no -kernel, no flash. The live session runs from the `make flash` image; before
# the real install a second disk is cut off mid-copy by SIGTERM: it must boot nothing at all.
# On the host: the boot partition passes fsck.fat, the root partition e2fsck, and both boot
# entries say root=UUID=<the root filesystem> plus the live boot's own options, no live ones.
DESC="migrate onto a whole disk, then the disk boots alone under SeaBIOS and OVMF"
# The live session runs from the `make flash` image (partitioned, FAT32 LIVE, boot files); the
# runner's copy of the sample medium is replaced with it in prepare().
. "$TOP/tests/qemu/flash-lib.sh"
APPEND="root=live:LABEL=LIVE rd.live.check=1 installtest.keep=yes"
TIMEOUT=300
EXPECT="root-md7 half-sigterm half-not-member install partitioned boot-entry-uuid md7-only-root
	state-migrated"
prepare() {
	flash_prepare || return 1
	truncate -s 1G "$RUNDIR/disk.img"
	truncate -s 1G "$RUNDIR/half.img"
	add_disk "$RUNDIR/disk.img" DISK
	add_disk "$RUNDIR/half.img" HALF
}
guest() {
	cat <<'G'
check_live_root
DISK=$(disk_by_serial DISK); HALF=$(disk_by_serial HALF)
echo "written in the live session" >/root/live-file.txt
dd if=/dev/urandom of=/root/live-file.bin bs=1M count=4 2>/dev/null
sync

# Cut off mid-copy: partitioned, boot partition written, never made bootable.
migrate --yes --speed-max 10000 "$HALF" >/tmp/h.out 2>&1 &
P=$!
n=0
until [ "$(cat /sys/block/md7/md/sync_action 2>/dev/null)" = recover ] &&
	[ "$(cut -d' ' -f1 /sys/block/md7/md/sync_completed)" -gt 20000 ] 2>/dev/null; do
	n=$((n + 1)); [ $n -gt 300 ] && break; sleep 0.1
done
kill -TERM $P
wait $P
rc=$?
sed 's/^/  | /' /tmp/h.out
check half-sigterm sh -c "[ $rc = 1 ] && grep -q 'partitioned but boots nothing' /tmp/h.out"
check half-not-member member_is_live_rw

if migrate --yes "$DISK" >/tmp/m.out 2>&1; then ok install; else fail install "exit $?: $(tail -n 2 /tmp/m.out)"; fi
sed 's/^/  | /' /tmp/m.out
check partitioned test -b "${DISK}1" -a -b "${DISK}2"
uuid=$(liveinit probe "${DISK}2" | sed -n 's/.* UUID=\([0-9a-f-]*\).*/\1/p')
echo "root UUID: $uuid"
check boot-entry-uuid grep -q "boots by itself .* with root=UUID=$uuid" /tmp/m.out
check md7-only-root test "$(md7_members)" = "${DISK#/dev/}2"
check state-migrated grep -qx "migrated=${DISK}2" /run/live/state
echo "ROOTUUID $uuid"
echo "written after migrate" >/root/after.txt
for f in live-file.txt live-file.bin after.txt; do
	echo "SUM $(sha256sum /root/$f)"
done
sync
G
}

# boot_firmware_nothing FW DISK: DISK alone for a while through firmware FW: true when the firmware
# found nothing to start (SeaBIOS: "No bootable device", on the serial line with graphics=off;
# OVMF: its shell, after no boot option loaded) and no boot loader or kernel ran.
boot_firmware_nothing() {
	local FIRMWARE=$1 n=1 log saved=("${QEMU_EXTRA[@]}")
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	QEMU_EXTRA=(-machine graphics=off)
	qemu_start "$RUNDIR" "" "$2" "" 180
	QEMU_EXTRA=("${saved[@]}")
	# Until the firmware gives up (or a loader or kernel shows up), then off.
	wait_for 'No bootable device|Shell>|Linux version|SYSLINUX|systemd-boot|EFI stub' 150
	sleep 2
	qemu_quit
	qemu_wait
	log=$(tr -d '\r' <"$RUNDIR/console.log" | strings)
	cp "$RUNDIR/console.log" "$LOGDIR/install.half-$FIRMWARE.log"
	grep -qE 'Linux version|SYSLINUX|systemd-boot|EFI stub' <<<"$log" && return 1
	if [[ $FIRMWARE == bios ]]; then
		grep -q 'No bootable device' <<<"$log"
	else
		grep -q 'Shell>' <<<"$log"
	fi
}

# disk_checks FIRMWARE: the guest script for a boot of the installed disk.
disk_checks() {
	local script=$RUNDIR/disk-$1.sh sums
	sums=$(tr -d '\r' <"$LOGDIR/install.live.log" | awk '$1 == "SUM" { print $2, $3 }')
	{
		echo 'uuid_dev=$(findfs UUID='"$ROOT_UUID"')'
		echo 'check root-disk test "$(mount_dev /)" = "$uuid_dev"'
		echo 'check root-uuid grep -q "root=UUID='"$ROOT_UUID"'" /proc/cmdline'
		echo 'check kept-options grep -q "installtest.keep=yes" /proc/cmdline'
		echo 'check no-live-options sh -c "! grep -qE \"(^| )(rd\.live\.|live\.|root=live:)\" /proc/cmdline"'
		echo 'check no-md test ! -e /sys/block/md7'
		echo 'check no-live-stack sh -c "[ -z \"$(liveroot losetup -a)\" ] && ! [ -e /dev/mapper/live-rw ]"'
		echo 'check no-flash sh -c "! findfs LABEL=LIVE"'
		while read -r sha file; do
			echo "check 'sum-${file##*/}' sh -c 'sha256sum $file | grep -q ^$sha'"
		done <<<"$sums"
		echo 'cat /proc/cmdline'
	} >"$script"
	echo "$script"
}

verify() {
	cp "$RUNDIR/console.log" "$LOGDIR/install.live.log"
	ROOT_UUID=$(tr -d '\r' <"$RUNDIR/console.log" | awk '$1 == "ROOTUUID" { print $2; exit }')
	[[ -n $ROOT_UUID ]] || { problem "no root UUID from the live session"; return; }
	local fw m
	for fw in bios uefi; do
		FIRMWARE=$fw boot_again "" 360 "$(disk_checks "$fw")" "$RUNDIR/disk.img"
		cp "$RUNDIR/console.log" "$LOGDIR/install.$fw.log"
		for m in root-disk root-uuid kept-options no-live-options no-md no-live-stack no-flash \
			sum-live-file.txt sum-live-file.bin sum-after.txt done; do
			marker "$m" || problem "$fw boot of the disk: no 'LIVEROOT-TEST ok $m'"
		done
		[[ $QEMU_RC == 0 ]] || problem "$fw boot of the disk: QEMU ended with $QEMU_RC"
	done
	# The half-written disk: no firmware starts anything from it.
	for fw in bios uefi; do
		boot_firmware_nothing "$fw" "$RUNDIR/half.img" && continue
		problem "$fw: the disk cut off mid-install started something: $(tr -d '\r' <"$RUNDIR/console.log" | grep -a -m1 -E 'Linux version|syslinux|systemd-boot')"
	done
	# Host checks of what migrate wrote.
	local img=$RUNDIR/disk.img boot=$RUNDIR/boot.part
	dd if="$img" of="$boot" bs=1M skip=1 count=128 status=none
	local out
	out=$(fsck.fat -n "$boot" 2>&1) || problem "fsck.fat -n on the boot partition: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	MTOOLS_SKIP_CHECK=1 mtype -i "$boot" ::/loader/entries/liveroot.conf | grep -q "^options root=UUID=$ROOT_UUID rw .*installtest.keep=yes" ||
		problem "the UEFI entry does not say root=UUID=$ROOT_UUID with the kept options"
	MTOOLS_SKIP_CHECK=1 mtype -i "$boot" ::/boot/syslinux/syslinux.cfg | grep -q "APPEND root=UUID=$ROOT_UUID rw .*installtest.keep=yes" ||
		problem "the syslinux entry does not say root=UUID=$ROOT_UUID with the kept options"
	rm -f "$boot"
	local start
	start=$(sfdisk -J "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"])')
	dd if="$img" of="$RUNDIR/root.part" bs=512 skip="$start" conv=sparse status=none
	out=$(e2fsck -fn "$RUNDIR/root.part" 2>&1) || problem "e2fsck -fn on the root partition: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	rm -f "$RUNDIR/root.part"
}
