# Never brick, the good path: v2 synced to a FAT32 flash is on trial; its first boot takes a try
# (trial=2 in the state), the running system calls `liveinit mark-good` (a second call: already
# good, exit 0). The next two boots are plain v2 boots: no trial=, no fallback, and the flash is
# byte-identical across both (a boot after mark-good writes nothing; mark-good again writes
# nothing either).
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="v2 on trial calls mark-good: stays v2; the next two boots write nothing to the flash"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="booted-v1 synced on-trial tries-3"

prepare() {
	V2=$BUILD/trial-v2
	make_version "$V2" 2 0
	TESTS_FILES=("$V2/squashfs.img" "$V2/SHA256SUMS")
	trial_file_on_flash
}

guest() {
	trial_sync_guest
}

verify() {
	local first=$RUNDIR/first.sh later=$RUNDIR/later.sh prev=$RUNDIR/prev.img s m n
	cat >"$first" <<'G'
check_live_root
check booted-v2 test "$(cat /etc/liveroot-version)" = 2
check trial-2 test "$(liveinit state get trial)" = 2
check marked sh -c 'liveinit mark-good | grep -q "marked good; the trial is over"'
check idempotent sh -c 'liveinit mark-good | grep -q "is already good"'
eval "$(liveinit trial status)"
check recorded-good test "$TRIAL_STATUS" = good
G
	cat >"$later" <<'G'
check_live_root
check booted-v2 test "$(cat /etc/liveroot-version)" = 2
check no-trial-key sh -c '! liveinit state get trial'
check no-fallback sh -c '! liveinit state get fallback_reason'
check idempotent sh -c 'liveinit mark-good | grep -q "is already good"'
G
	cp "$FLASH" "$prev"
	boot_again "$TRIAL_APPEND" 150 "$first" "$FLASH"
	for m in root-md7 booted-v2 trial-2 marked idempotent recorded-good done; do
		marker "$m" || problem "v2's first boot: no 'LIVEROOT-TEST ok $m'"
	done
	s=$(changed_sectors "$prev" "$FLASH")
	[[ $s == 2 ]] || problem "v2's first boot changed $s sectors of the flash, not 2 (the try, mark-good)"
	echo "    measured: v2's trial boot wrote $((s * 512)) bytes to the flash (the try + mark-good)"
	for n in 2 3; do
		cp "$FLASH" "$prev"
		boot_again "$TRIAL_APPEND" 150 "$later" "$FLASH"
		for m in root-md7 booted-v2 no-trial-key no-fallback idempotent done; do
			marker "$m" || problem "v2 boot $n: no 'LIVEROOT-TEST ok $m'"
		done
		s=$(changed_sectors "$prev" "$FLASH")
		[[ $s == 0 ]] || problem "v2 boot $n after mark-good wrote $s sectors of the flash"
		echo "    measured: v2 boot $n after mark-good wrote $((s * 512)) bytes to the flash"
	done
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
}
