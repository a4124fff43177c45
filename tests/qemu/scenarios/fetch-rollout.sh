# Fleet updates at boot (issue 13): a v2 signed with rollout=0 is not taken (v1 boots, the
# console says why, with this box's bucket from rd.live.machine_id=); the same v2 re-signed with
# rollout=100 is fetched and boots; and a medium whose LiveOS/fetch.cache holds the server's
# validators of an unchanged manifest costs one conditional GET answered 304 (< 1 KiB on the
# wire, counted by the server's --log), and v1 boots.
DESC="rollout=0 → v1 stays; rollout=100 → v2; fetch.cache + unchanged manifest → one 304, v1"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=200
MACHINE=qemu-box-7
EXPECT="root-md7 state-booted state-image_version no-v2"

# srv/ DIR: the v2 image signed "version=2 rollout=PCT"; srv/v1: the flash's own manifest
# signed version=1 (up to date).
rollout_dirs() {
	local p d
	for p in 0 100; do
		d=$FETCH/srv/rollout$p
		mkdir -p "$d"
		cp "$FETCH/srv/new/squashfs.img" "$FETCH/srv/new/SHA256SUMS" "$d/"
		rm -f "$d/SHA256SUMS.minisig"
		minisign -S -W -s "$FETCH/key.sec" -m "$d/SHA256SUMS" -t "version=2 rollout=$p" >/dev/null
	done
	d=$FETCH/srv/v1
	mkdir -p "$d"
	debugfs -R "dump /LiveOS/SHA256SUMS $d/SHA256SUMS" "$BUILD/live-flash.img" 2>/dev/null
	rm -f "$d/SHA256SUMS.minisig"
	minisign -S -W -s "$FETCH/key.sec" -m "$d/SHA256SUMS" -t "version=1" >/dev/null
}

prepare() {
	rollout_dirs
	fetch_server ok v1
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=http://10.0.2.100/ok/rollout0/ live.fetch.timeout=60 rd.live.machine_id=$MACHINE"
}

guest() {
	cat <<G
check_live_root
$(state_is booted local)
$(state_is image_version 1)
check no-v2 test ! -e /etc/image-version
G
}

verify() {
	local bucket log m v2=$RUNDIR/v2.sh v1=$RUNDIR/v1.sh etag lines cost
	bucket=$(python3 -c 'import hashlib, sys; print(int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8], "big") % 10000)' "$MACHINE:2")
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqF "fetch: http://10.0.2.100/ok/rollout0/: version 2 not yet rolled out to this box (bucket $bucket, rollout 0.00% open; --machine-id); booting the local image" <<<"$log" ||
		problem "rollout=0: no 'version 2 not yet rolled out to this box (bucket $bucket, ...)' line"
	grep -q '^GET /ok/rollout0/squashfs.img\|^HEAD /ok/rollout0/squashfs.img' "$RUNDIR/http.log" && problem "rollout=0: the image was requested"

	cat >"$v2" <<'G'
check_live_root
check booted-net test "$(liveinit state get booted)" = net
check version-2 test "$(liveinit state get image_version)" = 2
check image-is-v2 grep -qx 2 /etc/image-version
check said-rolled-out sh -c 'dmesg | grep -q "version 2 rolled out to this box (bucket "'
G
	net_boot rollout100 "$v2"
	for m in root-md7 booted-net version-2 image-is-v2 said-rolled-out done; do
		marker "$m" || problem "rollout=100 boot: no 'LIVEROOT-TEST ok $m'"
	done

	# The medium holds the validators syncflash would leave beside the image it wrote: those
	# the server gives for the manifest of the version on the flash.
	etag=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).headers["ETag"])' \
		"http://127.0.0.1:$FETCH_PORT/ok/v1/SHA256SUMS.minisig")
	printf 'url=http://10.0.2.100/ok/v1/squashfs.img\nabove=1\nversion=1\nwaiting=0\nuntil=0\netag=%s\n' "$etag" >"$RUNDIR/fetch.cache"
	printf 'cd /LiveOS\nwrite %s fetch.cache\n' "$RUNDIR/fetch.cache" | debugfs -w -f - "$FLASH" >/dev/null 2>&1
	cat >"$v1" <<'G'
check_live_root
check booted-local test "$(liveinit state get booted)" = local
check version-1 test "$(liveinit state get image_version)" = 1
check cache-in-run grep -q '^etag=' /run/live/fetch.cache
G
	sleep 1
	lines=$(wc -l <"$RUNDIR/http.log")
	net_boot v1 "$v1"
	for m in root-md7 booted-local version-1 cache-in-run done; do
		marker "$m" || problem "304 boot: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aqF 'fetch: http://10.0.2.100/ok/v1/: already up to date (version 1): SHA256SUMS.minisig not modified since the last check (HTTP 304); booting the local image' \
		<(tr -d '\r' <"$RUNDIR/console.log") || problem "304 boot: no 'already up to date ... (HTTP 304)' line"
	sleep 1
	tail -n +$((lines + 1)) "$RUNDIR/http.log" >"$RUNDIR/wire-304.log"
	cost=$(awk '{ n += $4 + $5 } END { print n + 0 }' "$RUNDIR/wire-304.log")
	echo "304 boot: $(wc -l <"$RUNDIR/wire-304.log") request(s), $cost bytes on the wire: $(tr '\n' ';' <"$RUNDIR/wire-304.log")"
	[[ $(wc -l <"$RUNDIR/wire-304.log") == 1 ]] && grep -q '^GET /ok/v1/SHA256SUMS.minisig 304 ' "$RUNDIR/wire-304.log" ||
		problem "304 boot: expected one 'GET .../SHA256SUMS.minisig 304', got: $(cat "$RUNDIR/wire-304.log")"
	((cost > 0 && cost < 1024)) || problem "304 boot: $cost bytes on the wire (goal < 1024)"
	fetch_stop
}
