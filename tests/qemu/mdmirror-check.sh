#!/bin/sh
# Guest-side check of `mdmirror` against a real md kernel (QEMU or any scratch machine).
#
#   mdmirror-check.sh [DISK]       DISK: a scratch block device bigger than 32 MiB (default
#                                  /dev/vda). ITS CONTENTS ARE DESTROYED.
# Environment: MDCHECK_MD (default md7), TMPDIR (tmpfs; 80 MiB used).
# Needs: mdmirror in PATH, md-mod + raid1 + loop loaded, busybox (losetup dd md5sum cmp diff).
# mdadm must be in PATH: without it every parity check with `mdadm --detail` FAILs. Prints `ok NAME` or `FAIL NAME: why` per check; exits 1 if any check failed.

DISK=${1:-/dev/vda}
MD=${MDCHECK_MD:-md7}
DEV=/dev/$MD
T=${TMPDIR:-/tmp}/mdcheck.$$
NOK=0
NFAIL=0
LOOP=
SMALL=

ok() { echo "ok $1"; NOK=$((NOK + 1)); }
fail() { echo "FAIL $1: $2"; NFAIL=$((NFAIL + 1)); }
# check NAME COMMAND...: the command must succeed
check() { n=$1; shift; if out=$("$@" 2>&1); then ok "$n"; else fail "$n" "$(echo "$out" | tail -n 3)"; fi; }

# refuse NAME WANT_RC WANT_TEXT COMMAND...: the command must fail with WANT_RC and say WANT_TEXT
refuse() {
	n=$1 want=$2 text=$3; shift 3
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" != "$want" ]; then fail "$n" "exit $rc, wanted $want: $out"
	elif ! echo "$out" | grep -Eq -- "$text"; then fail "$n" "message lacks '$text': $out"
	else ok "$n"; fi
}

mdstat_line() { grep -A2 "^$MD :" /proc/mdstat | tr '\n' ' '; }
# mdstat NAME PATTERN: /proc/mdstat's entry for the array must match PATTERN (grep -E)
mdstat() {
	if mdstat_line | grep -Eq -- "$2"; then ok "$1"; else fail "$1" "mdstat: $(mdstat_line)"; fi
}

sum() { dd if="$1" bs=1M count="$2" 2>/dev/null | md5sum | cut -d' ' -f1; }
flush() { sync; blockdev --flushbufs "$1" 2>/dev/null; echo 3 >/proc/sys/vm/drop_caches; }

MDADM=$(command -v mdadm)
# The fields mdadm --detail shows, whitespace-normalised. Creation Time only when both print
# UTC (mdadm uses the local time zone; mdmirror always prints UTC).
detail_fields() {
	keys='Version|Raid Level|Array Size|Used Dev Size|Raid Devices|Total Devices|State|Active Devices|Working Devices|Failed Devices|Spare Devices|Consistency Policy|Rebuild Status'
	[ -z "$TZ" ] && keys="$keys|Creation Time"
	grep -E "^ *($keys) :|^ +([0-9]+|-) +[0-9]+ +[0-9]+ +([0-9]+|-) " "$1" | sed 's/[[:space:]][[:space:]]*/ /g; s/^ //; s/ $//'
}
parity() {
	if [ -z "$MDADM" ]; then
		fail "$1" "mdadm not in PATH: parity with mdadm --detail cannot be checked"
		return
	fi
	if ! mdmirror detail "$DEV" >"$T/mine" 2>&1; then fail "$1" "mdmirror detail: $(cat "$T/mine")"; return; fi
	mdadm --detail "$DEV" >"$T/theirs" 2>&1
	detail_fields "$T/mine" >"$T/a"
	detail_fields "$T/theirs" >"$T/b"
	if [ ! -s "$T/b" ]; then fail "$1" "mdadm --detail printed nothing usable: $(head -n 3 "$T/theirs")"
	elif cmp -s "$T/a" "$T/b"; then ok "$1"
	else fail "$1" "differs from mdadm --detail: $(diff "$T/b" "$T/a" | grep '^[-+][^-+]' | tr '\n' ';')"; fi
}

cleanup() {
	exec 3<&- 2>/dev/null
	[ -e /sys/block/$MD/md ] && mdmirror stop "$DEV" >/dev/null 2>&1
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	[ -n "$SMALL" ] && losetup -d "$SMALL" 2>/dev/null
	[ -n "$SPEED_MAX" ] && echo "$SPEED_MAX" >/proc/sys/dev/raid/speed_limit_max
	rm -rf "$T"
}

# --- prerequisites -------------------------------------------------------------------------
if ! command -v mdmirror >/dev/null; then fail prereq "mdmirror not in PATH"; exit 1; fi
if [ ! -b "$DISK" ]; then fail prereq "$DISK is not a block device"; exit 1; fi
if [ ! -e /proc/mdstat ]; then fail prereq "md is not loaded (no /proc/mdstat)"; exit 1; fi
if grep -q "^$MD :" /proc/mdstat; then fail prereq "$MD is in use"; exit 1; fi
mkdir -p "$T" || exit 1
SPEED_MAX=$(cat /proc/sys/dev/raid/speed_limit_max)
DISK_KIB=$(( $(cat /sys/class/block/${DISK#/dev/}/size) / 2 ))
[ "$DISK_KIB" -gt 32768 ] || { fail prereq "$DISK must be bigger than 32 MiB"; exit 1; }

# The live member: 32 MiB of random bytes on a loop device; a 16 MiB one that is too small.
dd if=/dev/urandom of="$T/src.img" bs=1M count=32 2>/dev/null
cp "$T/src.img" "$T/orig.img"
dd if=/dev/zero of="$T/small.img" bs=1M count=16 2>/dev/null
LOOP=$(losetup -f) && losetup "$LOOP" "$T/src.img" || { fail prereq "losetup src"; cleanup; exit 1; }
SMALL=$(losetup -f) && losetup "$SMALL" "$T/small.img" || { fail prereq "losetup small"; cleanup; exit 1; }
ORIG=$(sum "$T/orig.img" 32)

# --- usage and refusals before md is touched -----------------------------------------------
refuse usage-no-args 2 "" mdmirror
refuse usage-build-no-devs 2 "no member devices" mdmirror build "$DEV"
refuse usage-build-all-missing 2 "present" mdmirror build "$DEV" missing missing
refuse usage-bad-md 2 "not an md device" mdmirror detail /dev/sda
refuse usage-grow-size 2 "only 'max'" mdmirror grow "$DEV" --size 1G
refuse build-not-blockdev 1 "not a block device" mdmirror build "$DEV" "$T/src.img" missing
check help mdmirror --help

# --- build ---------------------------------------------------------------------------------
check build mdmirror build "$DEV" "$LOOP" missing
mdstat build-mdstat "active.*raid1 ${LOOP#/dev/}\[0\].*\[2/1\] \[U_\]"
mdstat build-no-superblock "non-persistent"
[ "$(cat /sys/block/$MD/size)" = 65536 ] && ok build-size || fail build-size "size $(cat /sys/block/$MD/size) sectors, wanted 65536"
[ "$(sum "$DEV" 32)" = "$ORIG" ] && ok build-bytes-are-member-bytes || fail build-bytes-are-member-bytes "md content differs from the member"
parity detail-after-build
refuse build-again 1 "already" mdmirror build "$DEV" "$SMALL" missing
OTHER=md$((${MD#md} + 1))
refuse build-member-in-use 1 "in use" mdmirror build "/dev/$OTHER" "$LOOP" missing
[ -e /sys/block/$OTHER ] && fail build-refusal-made-nothing "/sys/block/$OTHER exists" || ok build-refusal-made-nothing
refuse remove-last-in-sync 1 "last in-sync" mdmirror remove "$DEV" "$LOOP"
mdstat remove-refused-left-array-alone "\[2/1\] \[U_\]"
refuse add-too-small 1 "too small" mdmirror add "$DEV" "$SMALL"
refuse remove-not-member 1 "not a member" mdmirror remove "$DEV" "$SMALL"

# --- add the disk, write during recovery, wait -----------------------------------------------
echo 4000 >/proc/sys/dev/raid/speed_limit_max   # slow enough to act during the recovery
check add mdmirror add "$DEV" "$DISK"
dd if=/dev/urandom of="$T/marker" bs=1M count=1 2>/dev/null
dd if="$T/marker" of="$DEV" bs=1M seek=4 conv=fsync 2>/dev/null && ok write-during-recovery || fail write-during-recovery "dd to $DEV"
mdstat recovery-running "recovery|resync"
refuse remove-last-in-sync-during-recovery 1 "last in-sync" mdmirror remove "$DEV" "$LOOP"
refuse grow-during-recovery 1 "busy" mdmirror grow "$DEV" --raid-devices 1
refuse add-no-free-slot 1 "no free slot" mdmirror add "$DEV" "$SMALL"
mdmirror wait "$DEV" --progress >"$T/progress" 2>&1; rc=$?
echo "$SPEED_MAX" >/proc/sys/dev/raid/speed_limit_max
sed 's/^/  | /' "$T/progress" | tail -n 6
# Not a terminal: lines at 10 % steps with md's rate and an ETA, the 100 % line, then "in sync";
# no terminal control characters.
sz='[0-9.]+[BKMGT]'
if [ $rc = 0 ] && grep -Eq "^$MD recover: $sz/$sz +[0-9]{1,2}% $sz/s ETA [0-9]+:[0-9]{2}\$" "$T/progress" &&
	tail -n 2 "$T/progress" | head -n 1 | grep -Eq "^$MD recover: $sz/$sz 100% $sz/s done\$" &&
	tail -n 1 "$T/progress" | grep -q "in sync" && ! grep -q "$(printf '[\r\033]')" "$T/progress"; then
	ok wait-progress
else
	fail wait-progress "exit $rc: $(tail -n 2 "$T/progress")"
fi
dd if="$T/marker" of="$T/orig.img" bs=1M seek=4 conv=notrunc 2>/dev/null
EXPECT=$(sum "$T/orig.img" 32)
mdstat recovered-mdstat "\[2/2\] \[UU\]"
[ "$(cat /sys/block/$MD/md/sync_action)" = idle ] && ok recovered-idle || fail recovered-idle "sync_action $(cat /sys/block/$MD/md/sync_action)"
flush "$DISK"
[ "$(sum "$DISK" 32)" = "$EXPECT" ] && ok disk-holds-the-data || fail disk-holds-the-data "disk bytes differ from what was written"
[ "$(sum "$T/src.img" 32)" = "$EXPECT" ] && ok member-holds-the-data || fail member-holds-the-data "loop member differs"
check wait-when-in-sync mdmirror wait "$DEV"
refuse add-member-again 1 "already a member" mdmirror add "$DEV" "$DISK"
parity detail-after-recovery
mdmirror detail "$DEV" 2>&1 | sed 's/^/  | /'

# --- retire the live member, shrink the slots, grow to the disk --------------------------------
check remove-old mdmirror remove "$DEV" "$LOOP"
mdstat removed-mdstat "\[2/1\] \[_U\]"
parity detail-after-remove
refuse remove-now-last 1 "last in-sync" mdmirror remove "$DEV" "$DISK"
check grow-raid-devices mdmirror grow "$DEV" --raid-devices 1
mdstat grown-mdstat "\[1/1\] \[U\]"
parity detail-after-raid-devices
check grow-size-max mdmirror grow "$DEV" --size max
[ "$(cat /sys/block/$MD/md/component_size)" = "$DISK_KIB" ] && ok size-is-disk-size || fail size-is-disk-size "component_size $(cat /sys/block/$MD/md/component_size), disk $DISK_KIB KiB"
[ "$(cat /sys/block/$MD/size)" = "$((DISK_KIB * 2))" ] && ok array-size-is-disk-size || fail array-size-is-disk-size "array $(cat /sys/block/$MD/size) sectors"
check wait-after-grow mdmirror wait "$DEV"
parity detail-after-size-max
[ "$(sum "$DEV" 32)" = "$EXPECT" ] && ok data-kept-after-grow || fail data-kept-after-grow "md content changed"
# The array's last MiB is the disk's last MiB: no superblock, data offset 0.
LAST=$((DISK_KIB / 1024 - 1))
dd if="$T/marker" of="$DEV" bs=1M seek=$LAST conv=fsync 2>/dev/null
flush "$DISK"
dd if="$DISK" of="$T/tail" bs=1M skip=$LAST count=1 2>/dev/null
cmp -s "$T/tail" "$T/marker" && ok tail-written-through || fail tail-written-through "disk's last MiB differs"

# --- stop -----------------------------------------------------------------------------------
exec 3<"$DEV"
refuse stop-busy 1 "in use" mdmirror stop "$DEV"
exec 3<&-
check stop mdmirror stop "$DEV"
grep -q "^$MD :" /proc/mdstat && fail stopped-mdstat "$(mdstat_line)" || ok stopped-mdstat
refuse detail-after-stop 1 "not active|no such array" mdmirror detail "$DEV"

# --- one slot, grown to two for the disk ------------------------------------------------------
check build-one-slot mdmirror build "$DEV" "$LOOP"
mdstat one-slot-mdstat "\[1/1\] \[U\]"
refuse add-one-slot-full 1 "no free slot" mdmirror add "$DEV" "$DISK"
check grow-raid-devices-up mdmirror grow "$DEV" --raid-devices 2
mdstat grown-up-mdstat "\[2/1\] \[U_\]"
parity detail-after-grow-up
check add-after-grow-up mdmirror add "$DEV" "$DISK"
check wait-after-grow-up mdmirror wait "$DEV"
mdstat grown-up-recovered "\[2/2\] \[UU\]"
flush "$DISK"
[ "$(sum "$DISK" 32)" = "$(sum "$T/src.img" 32)" ] && ok grown-up-disk-holds-the-data || fail grown-up-disk-holds-the-data "disk bytes differ"
parity detail-after-grow-up-recovery
check stop-again mdmirror stop "$DEV"

cleanup
echo "mdmirror-check: $NOK ok, $NFAIL failed"
[ "$NFAIL" = 0 ]
