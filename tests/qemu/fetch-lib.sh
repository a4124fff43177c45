# tests/qemu/fetch-lib.sh — host side of the network-image scenarios (sourced by scenarios).
#
# fetch_setup builds once into build/fetch/ (stock tools, no root):
#   key.pub/key.sec, other.sec   minisign keys made here with the real minisign (never committed)
#   initramfs.cpio.gz            mk/mkinitramfs.sh with PUBKEY=key.pub (/etc/liveroot/pubkey)
#   flash-v1.img                 live-flash.img + LiveOS/SHA256SUMS.minisig (key, version=1)
#   flash-badsig.img             live-flash.img + a signature by other.sec
#   srv/new/                     a different image (/etc/image-version = 2), signed version=2
#   srv/old/                     the same image signed version=0 (older than the flash's 1)
#   srv/badsig/                  the same image signed by other.sec, version=5
#   initramfs-min6.cpio.gz       the same with MIN_VERSION=6 (/etc/liveroot/min-version)
#   flash-v5.img                 live-flash.img with its manifest signed version=5
#   flash-unlisted.img           LiveOS/SHA256SUMS lists only LiveOS/other.img (present, matching),
#                                signed version=1: it vouches for nothing about squashfs.img
#   flash-oldv5.img              a cut mid-rotation: only squashfs.img.old + SHA256SUMS.old signed
#                                version=5 (+ .minisig.old); no primary pair
#   srv/v3/                      the v2 image signed version=3
#   srv/norootfs/                a signed (version=2) squashfs with no LiveOS/rootfs.img inside
#   srv/delta/                   v1 with a few files changed (/etc/image-version = 2, two files
#                                added), its block index squashfs.img.zidx (imgcheck
#                                --make-index), both in SHA256SUMS signed version=2
# fetch_server MODE DIR: start tests/httpd/misbehave.py on 127.0.0.1 and let the guest reach it
# as http://10.0.2.100/ through slirp (restrict=on: no other way out) and one socat per
# connection; sets FETCH_URL; the server logs each request to $RUNDIR/http.log (misbehave.py
# --log: METHOD PATH STATUS RECV SENT). fetch_server down: the same wiring to a port nobody listens on.
FETCH=$BUILD/fetch
INITRD=$FETCH/initramfs.cpio.gz

fetch_setup() {
	mkdir -p "$FETCH"
	local k
	for k in key other; do
		[[ -f $FETCH/$k.sec ]] || minisign -G -W -f -p "$FETCH/$k.pub" -s "$FETCH/$k.sec" >/dev/null
	done
	local stamp
	stamp=$(cat "$BUILD/initramfs.cpio.gz" "$BUILD/live-flash.img" "$FETCH/key.pub" "$TOP/tests/qemu/fetch-lib.sh" "$TOP/mk/mkinitramfs.sh" | sha256sum)
	[[ -f $FETCH/stamp && $(cat "$FETCH/stamp") == "$stamp" ]] && { delta_index; return 0; }
	local tmp=$FETCH/tmp
	rm -rf "$tmp" "$FETCH/srv"
	mkdir -p "$tmp/init" "$tmp/sq" "$FETCH/srv"
	# What `make initramfs PUBKEY=key.pub` builds.
	PUBKEY=$FETCH/key.pub "$TOP/mk/mkinitramfs.sh" "$INITRD" >/dev/null
	PUBKEY=$FETCH/key.pub MIN_VERSION=6 "$TOP/mk/mkinitramfs.sh" "$FETCH/initramfs-min6.cpio.gz" >/dev/null
	# Local media: the flash's manifest signed as version 1, or by the wrong key.
	debugfs -R "dump /LiveOS/SHA256SUMS $tmp/SHA256SUMS" "$BUILD/live-flash.img" 2>/dev/null
	debugfs -R "dump /LiveOS/squashfs.img $tmp/v1.img" "$BUILD/live-flash.img" 2>/dev/null
	local f n s v
	for f in v1:key:1 badsig:other:1 v5:key:5; do
		IFS=: read -r n s v <<<"$f"
		rm -f "$tmp/SHA256SUMS.minisig"
		minisign -S -W -s "$FETCH/$s.sec" -m "$tmp/SHA256SUMS" -t "version=$v" >/dev/null
		cp "$BUILD/live-flash.img" "$FETCH/flash-$n.img"
		printf 'cd /LiveOS\nwrite %s SHA256SUMS.minisig\n' "$tmp/SHA256SUMS.minisig" |
			debugfs -w -f - "$FETCH/flash-$n.img" >/dev/null 2>&1
	done
	# A signed manifest that binds another file only.
	echo "a file the manifest does vouch for" >"$tmp/other.img"
	(cd "$tmp" && sha256sum other.img >SHA256SUMS.other && rm -f SHA256SUMS.other.minisig &&
		minisign -S -W -s "$FETCH/key.sec" -m SHA256SUMS.other -x SHA256SUMS.other.minisig -t "version=1" >/dev/null)
	cp "$BUILD/live-flash.img" "$FETCH/flash-unlisted.img"
	printf 'cd /LiveOS\nrm SHA256SUMS\nwrite %s SHA256SUMS\nwrite %s SHA256SUMS.minisig\nwrite %s other.img\n' \
		"$tmp/SHA256SUMS.other" "$tmp/SHA256SUMS.other.minisig" "$tmp/other.img" |
		debugfs -w -f - "$FETCH/flash-unlisted.img" >/dev/null 2>&1
	# Mid-rotation: the primary pair is gone, the .old pair (the same image) is signed version 5.
	rm -f "$tmp/SHA256SUMS.minisig"
	minisign -S -W -s "$FETCH/key.sec" -m "$tmp/SHA256SUMS" -t "version=5" >/dev/null
	cp "$BUILD/live-flash.img" "$FETCH/flash-oldv5.img"
	# (debugfs ln + unlink: a rename. Sidecars, when the image has them, move with it.)
	{
		for f in squashfs.img squashfs.img.verity squashfs.img.roothash; do
			debugfs -R "stat /LiveOS/$f" "$FETCH/flash-oldv5.img" >/dev/null 2>&1 || continue
			printf 'ln /LiveOS/%s /LiveOS/%s.old\nunlink /LiveOS/%s\n' "$f" "$f" "$f"
		done
		printf 'cd /LiveOS\nrm SHA256SUMS\nwrite %s SHA256SUMS.old\nwrite %s SHA256SUMS.minisig.old\n' \
			"$tmp/SHA256SUMS" "$tmp/SHA256SUMS.minisig"
	} | debugfs -w -f - "$FETCH/flash-oldv5.img" >/dev/null 2>&1
	# The newer image: the same OS with /etc/image-version = 2.
	unsquashfs -q -n -d "$tmp/sq/root" "$tmp/v1.img" >/dev/null
	echo 2 >"$tmp/image-version"
	printf 'cd /etc\nwrite %s image-version\n' "$tmp/image-version" |
		debugfs -w -f - "$tmp/sq/root/LiveOS/rootfs.img" >/dev/null 2>&1
	mksquashfs "$tmp/sq/root" "$tmp/v2.img" -noappend -quiet -no-progress -all-root >/dev/null
	# The delta image: v1 with a few files changed, published with its block index.
	unsquashfs -q -n -d "$tmp/sq/delta" "$tmp/v1.img" >/dev/null
	echo "a file added in the delta image" >"$tmp/delta-a"
	head -c 20000 /dev/urandom >"$tmp/delta-b"
	printf 'cd /etc\nwrite %s image-version\nwrite %s delta-a\nwrite %s delta-b\n' "$tmp/image-version" "$tmp/delta-a" "$tmp/delta-b" |
		debugfs -w -f - "$tmp/sq/delta/LiveOS/rootfs.img" >/dev/null 2>&1
	mkdir -p "$FETCH/srv/delta"
	mksquashfs "$tmp/sq/delta" "$FETCH/srv/delta/squashfs.img" -noappend -quiet -no-progress -all-root >/dev/null
	mkdir -p "$tmp/empty/LiveOS"
	echo "no rootfs here" >"$tmp/empty/LiveOS/README"
	mksquashfs "$tmp/empty" "$tmp/norootfs.img" -noappend -quiet -no-progress -all-root >/dev/null
	for f in new:key:2 old:key:0 badsig:other:5 v3:key:3 norootfs:key:2; do
		IFS=: read -r n s v <<<"$f"
		mkdir -p "$FETCH/srv/$n"
		if [[ $n == norootfs ]]; then cp "$tmp/norootfs.img" "$FETCH/srv/$n/squashfs.img"; else cp "$tmp/v2.img" "$FETCH/srv/$n/squashfs.img"; fi
		(cd "$FETCH/srv/$n" && sha256sum squashfs.img >SHA256SUMS &&
			minisign -S -W -s "$FETCH/$s.sec" -m SHA256SUMS -t "version=$v" >/dev/null)
	done
	rm -rf "$tmp"
	delta_index
	echo "$stamp" >"$FETCH/stamp"
}

# delta_index: srv/delta's block index, made by the publisher's build under test (its format is
# that binary's), and the manifest listing it, signed version=2. Every run: it takes a moment.
delta_index() {
	"$BUILD/publisher/liveroot" imgcheck --make-index "$FETCH/srv/delta/squashfs.img"
	(cd "$FETCH/srv/delta" && sha256sum squashfs.img squashfs.img.zidx >SHA256SUMS && rm -f SHA256SUMS.minisig &&
		minisign -S -W -s "$FETCH/key.sec" -m SHA256SUMS -t "version=2" >/dev/null)
}

fetch_server() {
	local mode=$1 port
	if [[ $mode == down ]]; then
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	else
		python3 "$TOP/tests/httpd/misbehave.py" "$FETCH/srv" --idle 120 --log "$RUNDIR/http.log" >"$RUNDIR/port" &
		SERVER_PID=$!
		local n=40
		while [[ ! -s $RUNDIR/port ]] && ((n-- > 0)); do sleep 0.1; done
		port=$(cat "$RUNDIR/port")
	fi
	FETCH_URL=http://10.0.2.100/$mode/${2:-new}/ FETCH_PORT=$port
	NET_ARGS=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:$port"
		-device virtio-net-pci,netdev=n0)
	QEMU_EXTRA+=("${NET_ARGS[@]}")
}

# net_boot DIR SCRIPT [APPEND]: one more boot from $FLASH with the server's NIC (NET_ARGS of
# fetch_server), fetching /ok/DIR/, with SCRIPT on a fresh TESTS disk; the previous boot's
# console.log is kept as console.N.log.
net_boot() {
	local url=http://10.0.2.100/ok/$1/ script=$2 n=1
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	{ echo ". /run/tests/lib.sh"; cat "$script"; echo done_tests; } >"$RUNDIR/test.$n.sh"
	make_tests_disk "$RUNDIR/tests.$n.img" "$RUNDIR/test.$n.sh" || { problem "cannot build the TESTS disk"; return 1; }
	QEMU_EXTRA=("${NET_ARGS[@]}" -drive "file=$FLASH,format=raw,if=none,id=again1" -device "virtio-blk-pci,drive=again1"
		-drive "file=$RUNDIR/tests.$n.img,format=raw,if=none,id=again2" -device "virtio-blk-pci,drive=again2")
	qemu_start "$RUNDIR" "$(fetch_append "$url")${3:+ $3}" "" "" 200
	QEMU_EXTRA=()
	qemu_wait
}

fetch_stop() {
	[[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null
	return 0
}

# fetch_append [URL]: the kernel command line of a boot from the flash that fetches URL
# (default $FETCH_URL of fetch_server) over DHCP.
fetch_append() { echo "root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=${1:-$FETCH_URL} live.fetch.timeout=60"; }

# The guest's view: /run/live/state has KEY=VALUE.
state_is() { echo "check state-$1 grep -qx '$1=$2' /run/live/state"; }
fetch_setup

# fetch_falls_back MODE DIR REASON: a scenario where the fetch must fail and the signed local
# image (version 1) boot instead, with one console line `liveroot: fetch: ...REASON...; booting
# the local image`. Sets MEDIUM, EXPECT and defines prepare/guest/verify.
fetch_falls_back() {
	FB_MODE=$1 FB_DIR=$2 FB_REASON=$3
	MEDIUM=fetch/flash-v1.img
	EXPECT="root-md7 state-booted state-image_version no-v2 no-image-in-ram ram-clean"
	prepare() {
		fetch_server "$FB_MODE" "$FB_DIR"
		APPEND=$(fetch_append)
	}
	guest() {
		cat <<G
check_live_root
$(state_is booted local)
$(state_is image_version 1)
check no-v2 test ! -e /etc/image-version
echo "ram: \$(ls -A /run/live/ram 2>/dev/null)"
check no-image-in-ram test ! -e /run/live/ram/squashfs.img
check ram-clean sh -c 'test -z "\$(ls -A /run/live/ram 2>/dev/null | grep -vx local)"'
G
	}
	verify() {
		fetch_stop
		grep -aqE "liveroot: fetch: .*$FB_REASON.*; booting the local image" "$RUNDIR/console.log" ||
			problem "no 'fetch: ...$FB_REASON...; booting the local image' line"
	}
}

# image_bytes_sent DIR: the bytes the server sent for GETs of DIR's squashfs.img (http.log).
image_bytes_sent() {
	awk -v p="/$1/squashfs.img" '$1 == "GET" && substr($2, length($2) - length(p) + 1) == p { n += $5 } END { print n + 0 }' "$RUNDIR/http.log" 2>/dev/null
}
