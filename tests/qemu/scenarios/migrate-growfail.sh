# migrate when the grow step fails: the root filesystem is remounted read-only first, so md
# copies and switches as usual but the online ext4 grow gets EROFS. migrate says so and exits
# 1, yet /run/live/state already has migrated=TARGET (recorded right after live-rw left, before
# the grow), the array runs on the target alone and the live stack is released.
DESC="migrate with a grow that fails (read-only root): exit 1, migrated= recorded"
TIMEOUT=240
EXPECT="root-md7 root-ro grow-fails grow-reason switched-summary state-migrated md7-only-target
	no-live-rw root-rw-again"
prepare() {
	truncate -s 512M "$RUNDIR/target.img"
	add_disk "$RUNDIR/target.img" TARGET
}
guest() {
	cat <<'G'
check_live_root
TARGET=$(disk_by_serial TARGET) || fail target "no disk with serial TARGET"
sync
check root-ro mount -o remount,ro /
migrate --yes --no-bootloader "$TARGET" >/run/mg.out 2>&1
rc=$?
sed 's/^/  | /' /run/mg.out
check grow-fails test "$rc" = 1
check grow-reason grep -q "cannot grow the filesystem online: Read-only file system; /dev/md7 runs on $TARGET all the same (migrated=$TARGET recorded)" /run/mg.out
check switched-summary grep -q "switched, not grown" /run/mg.out
check state-migrated grep -qx "migrated=$TARGET" /run/live/state
check md7-only-target test "$(md7_members)" = "${TARGET#/dev/}"
check no-live-rw sh -c '! [ -e /dev/mapper/live-rw ]'
check root-rw-again mount -o remount,rw /
G
}
