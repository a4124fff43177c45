# migrate's refusals write nothing: a target smaller than the array, the flash disk, a mounted
# disk, live-rw, a nonexistent path, a regular file, another array than the live one, no --yes
# without a terminal, a whole disk when the medium has no kernel to install (this test flash holds
# only LiveOS/; the disks are checksummed before and after; the flash by the runner). Then
# SIGTERM in the middle of the copy: exit 1, the target out of the array, the live system as it
# was and writable; a rerun with --no-grow --keep-live migrates and changes nothing else.
DESC="migrate refusals write nothing; SIGTERM mid-copy leaves the live system, a rerun works"
TIMEOUT=240
EXPECT="root-md7 refuse-small refuse-flash refuse-mounted refuse-live-rw refuse-missing
	refuse-regular refuse-other-md refuse-notty refuse-no-kernel mounted-unchanged still-live sigterm-exit
	sigterm-message sigterm-live sigterm-slots sigterm-speed sigterm-writable sigterm-no-state
	rerun md7-only-target no-grow keep-live rerun-state refuse-again"
prepare() {
	truncate -s 512M "$RUNDIR/target.img"
	truncate -s 128M "$RUNDIR/small.img"
	truncate -s 300M "$RUNDIR/notty.img"
	mke2fs -q -F -t ext4 -L MNT "$RUNDIR/mnt.img" 32M >/dev/null 2>&1
	MNT_SHA=$(sha256sum <"$RUNDIR/mnt.img")
	add_disk "$RUNDIR/target.img" TARGET
	add_disk "$RUNDIR/small.img" SMALL
	add_disk "$RUNDIR/notty.img" NOTTY
	add_disk "$RUNDIR/mnt.img" MNT
}
guest() {
	cat <<'G'
check_live_root
TARGET=$(disk_by_serial TARGET); SMALL=$(disk_by_serial SMALL); NOTTY=$(disk_by_serial NOTTY)
MNT=$(disk_by_serial MNT)
MEDIUM=$(sed -n 's/^medium=//p' /run/live/state)
mkdir -p /mnt/m && mount -o ro "$MNT" /mnt/m
m0=$(sha256sum <"$MNT")
echo plain >/root/plain-file
# refuse NAME PATTERN ARGS...: migrate ARGS exits 1 with PATTERN in its one error line.
refuse() {
	local name=$1 pat=$2 rc
	shift 2
	migrate "$@" >/tmp/r.out 2>/tmp/r.err </dev/null
	rc=$?
	echo "migrate $*: exit $rc: $(cat /tmp/r.err)"
	if [ "$rc" = 1 ] && grep -q "$pat" /tmp/r.err && [ "$(wc -l </tmp/r.err)" = 1 ] && [ ! -s /tmp/r.out ]; then
		ok "$name"
	else
		fail "$name" "exit $rc, stdout '$(cat /tmp/r.out)', stderr '$(cat /tmp/r.err)'"
	fi
}
refuse refuse-small "too small" --yes "$SMALL"
refuse refuse-flash "is the live medium" --yes "$MEDIUM"
refuse refuse-mounted "mounted on /mnt/m" --yes "$MNT"
refuse refuse-live-rw "is .*live-rw\|under the live array" --yes /dev/mapper/live-rw
refuse refuse-missing "No such file" --yes /dev/nonexistent
refuse refuse-regular "not a block device" --yes /root/plain-file
refuse refuse-other-md "not the live array" --yes --md /dev/md9 "$TARGET"
refuse refuse-notty "no terminal" --no-bootloader "$NOTTY"
refuse refuse-no-kernel "/run/live/medium/boot/vmlinuz: No such file.*no kernel to install.*--no-bootloader" --yes "$NOTTY"
check mounted-unchanged test "$(sha256sum <"$MNT")" = "$m0"
umount /mnt/m
check still-live member_is_live_rw

# SIGTERM mid-copy (capped at 20 MiB/s so the copy lasts a while).
migrate --yes --no-bootloader --speed-max 20000 "$TARGET" >/tmp/m1.out 2>&1 &
P=$!
n=0
until [ "$(cat /sys/block/md7/md/sync_action)" = recover ] &&
	[ "$(cut -d' ' -f1 /sys/block/md7/md/sync_completed)" -gt 20000 ] 2>/dev/null; do
	n=$((n + 1)); [ $n -gt 300 ] && break; sleep 0.1
done
cat /proc/mdstat
kill -TERM $P
wait $P
rc=$?
sed 's/^/  | /' /tmp/m1.out
check sigterm-exit test "$rc" = 1
check sigterm-message grep -q "interrupted by SIGTERM: removed from /dev/md7" /tmp/m1.out
check sigterm-live member_is_live_rw
check sigterm-slots test "$(cat /sys/block/md7/md/raid_disks)" = 2
check sigterm-speed grep -q system /sys/block/md7/md/sync_speed_min
check sigterm-writable sh -c 'echo after-term >/root/after-term && sync && grep -q after-term /root/after-term'
check sigterm-no-state sh -c '! grep -q "^migrated=" /run/live/state'

# The rerun keeps the live stack and the size: the target is the only member, nothing else moved.
if migrate --yes --no-bootloader --no-grow --keep-live "$TARGET" >/tmp/m2.out 2>&1; then ok rerun; else fail rerun "exit $?: $(tail -n 1 /tmp/m2.out)"; fi
grep -v recover /tmp/m2.out | sed 's/^/  | /'
check md7-only-target test "$(md7_members)" = "${TARGET#/dev/}"
check no-grow test "$(cat /sys/block/md7/md/component_size)" = 262144
check keep-live sh -c '[ -b /dev/mapper/live-rw ] && grep -q " /run/live/medium " /proc/mounts && grep -q " /run/live/overlay " /proc/mounts'
check rerun-state grep -qx "migrated=$TARGET" /run/live/state
refuse refuse-again "already migrated to $TARGET" --yes "$NOTTY"
G
}
verify() {
	cmp -s -n 128M "$RUNDIR/small.img" /dev/zero || problem "the too-small disk was written to"
	cmp -s -n 300M "$RUNDIR/notty.img" /dev/zero || problem "the disk refused (no terminal, no kernel) was written to"
	[[ $(sha256sum <"$RUNDIR/mnt.img") == "$MNT_SHA" ]] || problem "the mounted disk changed (mounted read-only)"
}
