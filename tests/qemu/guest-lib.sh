# Guest side of the QEMU scenarios: sourced by test.sh on the TESTS disk (busybox sh).
# Results are console lines the runner parses:
#   LIVEROOT-TEST ok NAME
#   LIVEROOT-TEST FAIL NAME: why
# Note: Debian's busybox sh runs its own applet for a bare command name that is also a busybox
# applet (losetup) even when PATH has another program first: call such tools by path.
T=/run/tests
export PATH=$T/bin:/sbin:/bin:/usr/sbin:/usr/bin
. $T/env

ok() { echo "LIVEROOT-TEST ok $1"; }
fail() { echo "LIVEROOT-TEST FAIL $1: $2"; }

# check NAME CMD...: ok when CMD succeeds, else FAIL with its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		fail "$name" "$* -> $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# The device mounted at MOUNTPOINT (last mount wins).
mount_dev() { awk -v m="$1" '$2 == m { d = $1 } END { print d }' /proc/mounts; }

# The status line of the live-rw snapshot: liveroot's dmsnap, or dmsetup with the stock initramfs.
snap_status() {
	if command -v dmsnap >/dev/null 2>&1; then
		dmsnap status live-rw 2>/dev/null || dmsnap status
	elif [ -n "$STOCK" ] && command -v dmsetup >/dev/null 2>&1; then
		dmsetup status live-rw
	else
		echo "no dmsnap applet on the TESTS disk"
		return 1
	fi
}

# Sectors allocated in the COW store: the A of the first "A/B" field of the status.
snap_allocated() {
	if command -v dmsnap >/dev/null 2>&1; then dmsnap status --raw live-rw; else snap_status; fi | tr ' \t' '\n\n' | awk -F/ 'NF == 2 && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print $1; exit }'
}

# md7's members as block device names (dm-0 ...).
md7_members() {
	for d in /sys/block/md7/md/dev-*; do
		[ -e "$d" ] && echo "${d##*/dev-}"
	done
}

root_on_md7() { [ "$(mount_dev /)" = /dev/md7 ]; }

member_is_live_rw() {
	local m
	m=$(md7_members)
	[ "$(echo "$m" | wc -w)" = 1 ] || { echo "md7 members: $m"; return 1; }
	[ "$(cat /sys/block/$m/dm/name 2>/dev/null)" = live-rw ] || { echo "member $m is not live-rw"; return 1; }
}

# The standard checks of a successful live boot (root on md7 whose one member is live-rw).
check_live_root() {
	check root-md7 root_on_md7
	check md7-member-live-rw member_is_live_rw
	check root-readable test -s /etc/hostname
}

# The /dev node of the virtio disk whose serial is $1 (QEMU -device ...,serial=X).
disk_by_serial() {
	local s
	for s in /sys/block/vd*/serial; do
		[ "$(cat "$s" 2>/dev/null)" = "$1" ] && { echo "/dev/$(basename "${s%/serial}")"; return 0; }
	done
	return 1
}

done_tests() { ok done; }
