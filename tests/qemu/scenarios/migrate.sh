# migrate onto a disk twice the image's size while a writer appends to files, then boot that disk
# alone (no flash; root=/dev/vda through the initramfs's plain-root branch): every file written
# before and during the migration has its bytes, df shows the disk's size, e2fsck -fn is clean
# after a clean shutdown. In the live session after migrate: one md member (the target), no
# live-rw, no loop devices, the medium unmounted, the overlay's RAM (Shmem) given back.
DESC="migrate with a writer running, then boot the target disk alone"
TIMEOUT=240
EXPECT="root-md7 migrate writer-overlapped md7-only-target no-live-rw no-loops medium-unmounted
	overlay-unmounted mem-freed state-migrated df-grown sums flushed-before-switch"
prepare() {
	TARGET_IMG=$RUNDIR/target.img
	truncate -s 512M "$TARGET_IMG"
	add_disk "$TARGET_IMG" TARGET
}
guest() {
	cat <<'G'
check_live_root
TARGET=$(disk_by_serial TARGET) || fail target "no disk with serial TARGET"
dd if=/dev/urandom of=/root/before.bin bs=1M count=8 2>/dev/null
echo "written before migrate" >/root/before.txt
sync
ovl_kib=$(df -k /run/live/overlay | awk 'NR == 2 { print $3 }')
mem0=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)
shm0=$(awk '/^Shmem:/ { print $2 }' /proc/meminfo)
rm -f /tmp/stop
(
	i=0
	while [ ! -e /tmp/stop ]; do
		echo "line $i" >>/root/during.txt
		dd if=/dev/urandom bs=4k count=4 2>/dev/null >>/root/during.bin
		sync
		i=$((i + 1))
	done
) &
W=$!
sleep 1
n0=$(wc -l </root/during.txt)
if migrate --yes --no-bootloader "$TARGET" >/tmp/migrate.out 2>&1; then ok migrate; else fail migrate "exit $?: $(tail -n 2 /tmp/migrate.out)"; fi
n1=$(wc -l </root/during.txt)
sed 's/^/  | /' /tmp/migrate.out
check flushed-before-switch awk '/flushed to/ { f = NR } /runs on .* alone/ { s = NR } END { exit !(f && s && f < s) }' /tmp/migrate.out
touch /tmp/stop
wait $W
echo "written after migrate" >/root/after.txt
sync
echo "writer: $n0 lines before migrate, $n1 when it returned, $(wc -l </root/during.txt) in all"
check writer-overlapped test "$n1" -gt "$n0"
mem1=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)
shm1=$(awk '/^Shmem:/ { print $2 }' /proc/meminfo)
echo "Shmem: $shm0 -> $shm1 KiB"
cat /proc/mdstat
check md7-only-target test "$(md7_members)" = "${TARGET#/dev/}"
check no-live-rw sh -c '! grep -qx live-rw /sys/block/dm-*/dm/name 2>/dev/null && ! [ -e /dev/mapper/live-rw ]'
check no-loops sh -c '[ -z "$(liveroot losetup -a)" ]'
check medium-unmounted sh -c '! grep -q " /run/live/medium " /proc/mounts && ! grep -q " /run/live/squashfs " /proc/mounts'
check overlay-unmounted sh -c '! grep -q " /run/live/overlay " /proc/mounts'
echo "MemAvailable: $mem0 -> $mem1 KiB, overlay used $ovl_kib KiB"
# The overlay's RAM is tmpfs (Shmem) pages: they go back when it goes. (MemAvailable moves with
# everything else the box does meanwhile, by more than the overlay's few MiB.) df counts the
# overlay's blocks a little differently from the page count: 1 % + 64 KiB of slack.
check mem-freed test $((shm0 - shm1)) -ge $((ovl_kib - ovl_kib / 100 - 64))
check state-migrated grep -qx "migrated=$TARGET" /run/live/state
size=$(df -k / | awk 'NR == 2 { print $2 }')
echo "df /: $size KiB"
check df-grown test "$size" -gt 460000
for f in before.bin before.txt during.txt during.bin after.txt; do
	echo "SUM $(sha256sum /root/$f)"
done
ok sums
G
}
verify() {
	local sums script=$RUNDIR/again.sh
	sums=$(tr -d '\r' <"$RUNDIR/console.log" | awk '$1 == "SUM" { print $2, $3 }')
	[[ $(wc -l <<<"$sums") == 5 ]] || { problem "no checksums from the live session"; return; }
	{
		echo 'check root-vda test "$(mount_dev /)" = /dev/vda'
		echo 'check no-md test ! -e /sys/block/md7'
		echo 'check no-flash sh -c "! findfs LABEL=LIVE"'
		while read -r sha file; do
			echo "check 'sum-${file##*/}' sh -c 'sha256sum $file | grep -q ^$sha'"
		done <<<"$sums"
		echo 'size=$(df -k / | awk "NR == 2 { print \$2 }"); echo "df /: $size KiB"'
		echo 'check df-size test "$size" -gt 460000'
		echo 'sync; check remount-ro mount -o remount,ro /'
	} >"$script"
	cp "$RUNDIR/console.log" "$LOGDIR/migrate.live.log"
	boot_again "root=/dev/vda" 120 "$script" "$TARGET_IMG"
	local m
	for m in root-vda no-md no-flash sum-before.bin sum-before.txt sum-during.txt sum-during.bin \
		sum-after.txt df-size remount-ro done; do
		marker "$m" || problem "target boot: no 'LIVEROOT-TEST ok $m'"
	done
	local fs
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "target boot: $fs"
	[[ $QEMU_RC == 0 ]] || problem "target boot: QEMU ended with $QEMU_RC"
	fs=$(e2fsck -fn "$TARGET_IMG" 2>&1) || problem "e2fsck -fn on the target: $(tail -n 3 <<<"$fs" | tr '\n' ' ')"
	echo "$fs" | tail -n 1
}
