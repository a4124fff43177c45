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

# trial_bad_v2: $FETCH/srv/trialbad (fetch-lib.sh), once: the server's v2 (signed version 2) with a
# /sbin/init that exits at once, so each boot of it panics (panic=1 reboots).
trial_bad_v2() {
	local bad=$FETCH/srv/trialbad tmp
	[[ -f $bad/SHA256SUMS.minisig ]] && return 0
	tmp=$(mktemp -d)
	unsquashfs -q -n -d "$tmp/sq" "$FETCH/srv/new/squashfs.img" >/dev/null
	printf '#!/bin/sh\necho "trial-v2: init exits at once"\nexit 1\n' >"$tmp/init"
	printf '%s\n' "rm /sbin/init" "write $tmp/init /sbin/init" "sif /sbin/init mode 0100755" >"$tmp/cmds"
	debugfs -w -f "$tmp/cmds" "$tmp/sq/LiveOS/rootfs.img" >/dev/null 2>&1
	mkdir -p "$bad"
	mksquashfs "$tmp/sq" "$bad/squashfs.img" -noappend -quiet -no-progress -all-root >/dev/null
	(cd "$bad" && sha256sum squashfs.img >SHA256SUMS &&
		minisign -S -W -s "$FETCH/key.sec" -m SHA256SUMS -t "version=2" >/dev/null)
	rm -rf "$tmp"
}
