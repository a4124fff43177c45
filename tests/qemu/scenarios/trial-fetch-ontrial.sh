# Issue 18 item 5: one trial at a time, and a try only for the image that boots. The flash's v1 is
# on trial (a record written on the host: 2 tries) and the server has a newer signed v2. The first
# boot does not fetch ("fetch: skipped: the local image is on trial"): v1 boots, takes its try
# (trial=1) and calls mark-good. The second boot fetches v2 and boots it on trial (trial=2 of 3,
# floor 1 kept), and the flash changes by exactly one sector: the fetched image's take, none for
# v1 (before, v1's try was spent and then v2 booted anyway, abandoning v1's trial).
. "$TOP/tests/qemu/fetch-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="v1 on trial: no fetch until it is good; then the fetched v2 alone takes a try"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7 booted-local version-1 trial-1 marked"

prepare() {
	local t sha
	t=$(mktemp -d)
	debugfs -R "dump /LiveOS/SHA256SUMS $t/SHA256SUMS" "$FLASH" 2>/dev/null
	sha=$(awk '$2 == "squashfs.img" { print $1 }' "$t/SHA256SUMS")
	"$BUILD/liveroot" liveinit trial create "$t/trial.state"
	"$BUILD/liveroot" liveinit trial start --file "$t/trial.state" --sha256 "$sha" --version 1 --tries 2 --via-fs >/dev/null
	printf 'cd /LiveOS\nwrite %s trial.state\n' "$t/trial.state" | debugfs -w -f - "$FLASH" >/dev/null 2>&1
	rm -rf "$t"
	fetch_server ok new
	APPEND=$(fetch_append)
}
guest() {
	cat <<'G'
check_live_root
check booted-local test "$(liveinit state get booted)" = local
check version-1 test "$(liveinit state get image_version)" = 1
check trial-1 test "$(liveinit state get trial)" = 1
check marked sh -c 'liveinit mark-good | grep -q "version 1 marked good"'
G
}

verify() {
	local v2=$RUNDIR/v2.sh before=$RUNDIR/flash.before m s
	grep -aq 'liveroot: fetch: skipped: the local image is on trial' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "first boot: the console does not say the fetch was skipped"
	grep -aq 'version 1 is on trial: try 1 of 2' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "first boot: no 'version 1 is on trial: try 1 of 2' line"
	cat >"$v2" <<'G'
check_live_root
check booted-net test "$(liveinit state get booted)" = net
check version-2 test "$(liveinit state get image_version)" = 2
check trial-2 test "$(liveinit state get trial)" = 2
eval "$(liveinit trial status)"
check record-v2 test "$TRIAL_VERSION" = 2
check floor-1 test "$TRIAL_FLOOR" = 1
check no-failed test -z "$TRIAL_FAILED"
G
	cp --sparse=always "$FLASH" "$before"
	net_boot new "$v2"
	for m in root-md7 booted-net version-2 trial-2 record-v2 floor-1 no-failed done; do
		marker "$m" || problem "second boot: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'version 2 is on trial: try 1 of 3' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "second boot: no 'version 2 is on trial: try 1 of 3' line"
	s=$(changed_sectors "$before" "$FLASH")
	[[ $s == 1 ]] || problem "second boot changed $s sectors of the flash, not 1 (the fetched image's take alone)"
	rm -f "$before"
	fetch_stop
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
}
