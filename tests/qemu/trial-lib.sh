# Host helpers for the trial scenarios (sourced by tests/qemu/scenarios/trial-*.sh after
# syncflash-lib.sh): a FAT32 flash holding LiveOS/trial.state, v2 synced in the first boot.

TRIAL_APPEND="root=live:LABEL=LIVE rd.live.image panic=1"

# trial_file_on_flash: LiveOS/trial.state on $FLASH (the FAT sample medium), as make flash makes it.
trial_file_on_flash() {
	local t
	t=$(mktemp -d)
	"$BUILD/liveroot" liveinit trial create "$t/trial.state"
	MTOOLS_SKIP_CHECK=1 mcopy -i "$FLASH" "$t/trial.state" ::/LiveOS/trial.state
	rm -rf "$t"
}

# trial_sync_guest: the first boot's guest: v1 runs, the v2 on the TESTS disk is put where imgfetch
# leaves an image, syncflash writes it (marker synced) and puts it on trial (on-trial, tries-3).
trial_sync_guest() {
	cat <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS /run/live/ram/
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit $?: $(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
eval "$(liveinit trial status --file /run/live/medium/LiveOS/trial.state)"
check on-trial test "$TRIAL_STATUS" = trial
check tries-3 test "$TRIAL_LEFT" = 3
G
}

# changed_sectors A B: how many 512-byte sectors differ between two images.
changed_sectors() { cmp -l "$1" "$2" | awk '{ print int(($1 - 1) / 512) }' | sort -u | wc -l; }

# all_fails: every FAIL marker of every boot of this run.
all_fails() { cat "$RUNDIR"/console*.log | tr -d '\r' | grep -aoE 'LIVEROOT-TEST FAIL .*'; }
