#!/bin/sh
# Guest-side check of `dmsnap` against a real kernel (device-mapper, loop, dm-snapshot loaded).
# POSIX sh for busybox. Takes dmsnap, losetup, dd, ... from PATH; dmsetup is optional and only
# used for the parity checks. Prints `ok NAME` or `FAIL NAME: why` per check, a summary line,
# and exits 1 if anything failed. Leaves no devices, loops or files behind on success.

W=${DMSNAP_CHECK_DIR:-/tmp/dmsnap-check}
N=dmsnap-test
pass=0
fail=0

ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
check() { # NAME WHY COMMAND...
	n=$1 w=$2
	shift 2
	if "$@"; then ok "$n"; else bad "$n" "$w"; fi
}

have_dmsetup=0
if command -v dmsetup >/dev/null 2>&1; then
	have_dmsetup=1
	# No udev here: libdevmapper must not wait for it.
	export DM_DISABLE_UDEV=1
else
	# A parity check that cannot run is a failure, never a silent pass.
	bad dmsetup "dmsetup not in PATH: the dmsetup parity checks cannot run"
fi

# "M:m" of a block device node.
devno() {
	set -- $(stat -L -c '%t %T' "$1" 2>/dev/null) || return 1
	[ -n "$1" ] && echo "$((0x$1)):$((0x$2))"
}

# The loop device (/dev/loopN) whose backing file is $1, if any.
loop_of() {
	for b in /sys/block/loop*/loop/backing_file; do
		[ -r "$b" ] || continue
		f=$(cat "$b")
		if [ "$f" = "$1" ] || [ "$f" = "$1 (deleted)" ]; then
			d=${b#/sys/block/}
			echo "/dev/${d%%/*}"
			return 0
		fi
	done
	return 1
}

# Devices that existed before the check (in a live system: live-rw) are not the check's
# business; drop_pre filters their lines out of list/ls/status output.
PRE="$(dmsnap list --all 2>/dev/null | cut -f1 | tr '\n' ' ')"
drop_pre() { awk -v pre=" $PRE" '{ n = $1; sub(/:$/, "", n) } index(pre, " " n " ") == 0'; }

# `dmsnap list --all`, or "ERROR: ..." if it fails, so an empty answer means really none.
all_devs() {
	o=$(dmsnap list --all 2>&1) || o="ERROR: $o"
	echo "$o" | drop_pre
}

# dd into the snapshot; refuses when /dev/mapper/$N is not a block device, so a failed create
# never leaves a regular file there.
dd_to_snap() {
	[ -b "/dev/mapper/$N" ] || { echo "/dev/mapper/$N is not a block device" >&2; return 1; }
	dd of="/dev/mapper/$N" "$@"
}

# Allocated sectors from `dmsnap status --raw NAME` (0 S snapshot A/T M).
allocated() {
	dmsnap status --raw "$1" | sed -n 's/^[0-9]* [0-9]* snapshot \([0-9]*\)\/.*/\1/p'
}

mkdir -p "$W"
mounted=0
if mount -t tmpfs -o size=64m dmsnap-check "$W" 2>/dev/null; then mounted=1; fi
mkdir -p "$W/ovl"

# Origin: 8 MiB file, first MiB a known pattern, on a read-only loop like the live image.
dd if=/dev/zero of="$W/origin.img" bs=1M count=8 2>/dev/null
i=0
while [ $i -lt 64 ]; do printf 'ORIGIN-BLOCK-%04d-%s\n' $i "................................................................................................." ; i=$((i + 1)); done |
	dd of="$W/origin.img" conv=notrunc 2>/dev/null
ORIG=$(losetup -f)
losetup -r "$ORIG" "$W/origin.img" || { bad setup "cannot attach origin loop"; echo "dmsnap-check: 0 passed, 1 failed"; exit 1; }
OMM=$(devno "$ORIG")
ORIG_SUM=$(md5sum <"$W/origin.img")

# --- create with an overlay file ---------------------------------------------------------
out=$(dmsnap create "$N" --origin "$ORIG" --overlay-size 4M --overlay-dir "$W/ovl" 2>&1)
check create "exit $?: $out" [ $? -eq 0 ]
check create-silent "printed '$out'" [ -z "$out" ]
check mapper-node "/dev/mapper/$N is not a block device" [ -b "/dev/mapper/$N" ]
OVL="$W/ovl/$N.overlay"
check overlay-file "$OVL missing" [ -f "$OVL" ]
sz=$(stat -c %s "$OVL" 2>/dev/null)
check overlay-size "size $sz, want 4194304" [ "$sz" = 4194304 ]
blocks=$(stat -c %b "$OVL" 2>/dev/null)
check overlay-sparse "$blocks blocks allocated before any write" [ "${blocks:-999}" -lt 64 ]
COWLOOP=$(loop_of "$OVL")
check overlay-loop "no loop device backs $OVL" [ -n "$COWLOOP" ]
CMM=$(devno "$COWLOOP")
ac=$(cat "/sys/block/${COWLOOP#/dev/}/loop/autoclear" 2>/dev/null)
check overlay-autoclear "autoclear is '$ac'" [ "$ac" = 1 ]

SECTORS=$(cat "/sys/block/${ORIG#/dev/}/size")
want="0 $SECTORS snapshot $OMM $CMM PO 8"
got=$(dmsnap table "$N")
check table "got '$got', want '$want'" [ "$got" = "$want" ]

MM=$(devno "/dev/mapper/$N")
got=$(dmsnap list | drop_pre)
check list "got '$got', want '$N<TAB>($MM)'" [ "$got" = "$(printf '%s\t(%s)' "$N" "$MM")" ]

# --- writes land in the overlay, the origin stays untouched -------------------------------
a0=$(allocated "$N")
echo "status before: $(dmsnap status "$N")"
dd if=/dev/urandom of="$W/data" bs=64k count=16 2>/dev/null
dd_to_snap if="$W/data" bs=64k seek=16 conv=fsync 2>/dev/null
check write "dd to the snapshot failed" [ $? -eq 0 ]
a1=$(allocated "$N")
echo "status after 1 MiB: $(dmsnap status "$N")"
check status-grows "allocated $a0 -> $a1 sectors" [ "${a1:-0}" -gt "${a0:-0}" -a "${a1:-0}" -ge 2048 ]
st=$(dmsnap status "$N")
case $st in
"$N: "*" / 4.0M used ("*"%), metadata "*) ok status-human ;;
*) bad status-human "got '$st'" ;;
esac
got=$(dd if="/dev/mapper/$N" bs=64k skip=16 count=16 2>/dev/null | md5sum)
check read-back "data read through the snapshot differs" [ "$got" = "$(md5sum <"$W/data")" ]
got=$(dd if="/dev/mapper/$N" bs=512 count=1 2>/dev/null | head -c 13)
check origin-through "first sector through the snapshot is '$got'" [ "$got" = "ORIGIN-BLOCK-" ]
check origin-untouched "the origin file changed" [ "$(md5sum <"$W/origin.img")" = "$ORIG_SUM" ]

# --- parity with dmsetup ------------------------------------------------------------------
if [ $have_dmsetup = 1 ]; then
	a=$(dmsetup table "$N" 2>&1) b=$(dmsnap table "$N" 2>&1)
	check parity-table "dmsetup '$a' vs dmsnap '$b'" [ "$a" = "$b" ]
	a=$(dmsetup status "$N" 2>&1) b=$(dmsnap status --raw "$N" 2>&1)
	check parity-status "dmsetup '$a' vs dmsnap '$b'" [ "$a" = "$b" ]
	a=$(dmsetup ls 2>&1 | drop_pre) b=$(dmsnap list --all 2>&1 | drop_pre)
	check parity-ls "dmsetup '$a' vs dmsnap '$b'" [ "$a" = "$b" ]
	info=$(dmsetup info "$N" 2>&1)
	echo "$info" | sed 's/^/  dmsetup info: /'
	maj=${MM%:*} min=${MM#*:}
	check info-name "no 'Name: $N'" sh -c 'echo "$1" | grep -qx "Name: *$2"' - "$info" "$N"
	check info-uuid "no 'UUID: LIVEROOT-$N.overlay'" sh -c 'echo "$1" | grep -qx "UUID: LIVEROOT-$2.overlay"' - "$info" "$N"
	check info-state "not ACTIVE" sh -c 'echo "$1" | grep -qx "State: *ACTIVE"' - "$info"
	check info-live "no live table" sh -c 'echo "$1" | grep -qx "Tables present: *LIVE"' - "$info"
	check info-devno "not $maj, $min" sh -c 'echo "$1" | grep -qx "Major, minor: *$2, $3"' - "$info" "$maj" "$min"
	check info-targets "not 1 target" sh -c 'echo "$1" | grep -qx "Number of targets: *1"' - "$info"
fi

# --- devices not made by dmsnap: listed only with --all, never in status (linear: built in) ---
if [ $have_dmsetup = 1 ]; then
	dmsetup create dmsnap-other --table "0 8 linear $OMM 0" >/dev/null 2>&1
	check foreign-create "dmsetup create failed" [ $? -eq 0 ]
	got=$(dmsnap list | drop_pre)
	check foreign-not-listed "got '$got'" [ "$got" = "$(printf '%s\t(%s)' "$N" "$MM")" ]
	case $(all_devs) in *dmsnap-other*) ok foreign-listed-all ;; *) bad foreign-listed-all "got '$(all_devs)'" ;; esac
	a=$(dmsetup ls 2>&1 | drop_pre) b=$(dmsnap list --all 2>&1 | drop_pre)
	check parity-ls-two "dmsetup '$a' vs dmsnap '$b'" [ "$a" = "$b" ]
	got=$(dmsnap status | drop_pre)
	case $got in "$N: "*) ;; *) got="BAD: $got" ;; esac
	check status-only-ours "got '$got'" [ "$(echo "$got" | wc -l)" -eq 1 -a "${got#BAD}" = "$got" ]
	got=$(dmsnap table dmsnap-other)
	check table-foreign "got '$got'" [ "$got" = "0 8 linear $OMM 0" ]
	a=$(dmsetup table dmsnap-other)
	check parity-table-foreign "dmsetup '$a' vs dmsnap '$got'" [ "$a" = "$got" ]
	out=$(dmsnap status dmsnap-other 2>&1)
	rc=$?
	check status-not-snapshot "exit $rc: $out" [ $rc -eq 1 ]
	out=$(dmsnap remove dmsnap-other 2>&1)
	rc=$?
	check remove-refuses-foreign "exit $rc: $out" [ $rc -eq 1 -a -b /dev/mapper/dmsnap-other ]
	dmsetup remove dmsnap-other
fi

# --- refusals -----------------------------------------------------------------------------
out=$(dmsnap create "$N" --origin "$ORIG" --overlay-size 4M --overlay-dir "$W/ovl" 2>&1)
rc=$?
check refuse-duplicate "exit $rc: $out" [ $rc -eq 1 ]
case $out in *"already exists"*) ok refuse-duplicate-msg ;; *) bad refuse-duplicate-msg "got '$out'" ;; esac
check duplicate-keeps-overlay "the live overlay was touched" [ -f "$OVL" -a "$(loop_of "$OVL")" = "$COWLOOP" ]

# --- a busy device is not removed, and its overlay stays --------------------------------------
exec 3<"/dev/mapper/$N"
out=$(dmsnap remove "$N" 2>&1)
rc=$?
exec 3<&-
check remove-busy "exit $rc: $out" [ $rc -eq 1 -a -b "/dev/mapper/$N" -a -f "$OVL" ]
case $out in *"in use"*) ok remove-busy-msg ;; *) bad remove-busy-msg "got '$out'" ;; esac

# --- remove -------------------------------------------------------------------------------
out=$(dmsnap remove "$N" 2>&1)
check remove "exit $?: $out" [ $? -eq 0 ]
check remove-node "/dev/mapper/$N still there" [ ! -e "/dev/mapper/$N" ]
check remove-file "$OVL still there" [ ! -e "$OVL" ]
l=$(loop_of "$OVL")
check remove-loop "$l still backs the overlay" [ -z "$l" ]
check remove-listed "still listed" [ -z "$(all_devs)" ]
out=$(dmsnap table "$N" 2>&1)
rc=$?
check table-missing "exit $rc: $out" [ $rc -eq 1 ]
check origin-still-attached "origin loop gone" [ "$(loop_of "$W/origin.img")" = "$ORIG" ]

# --- overflow: a 1 MiB overlay, 4 MiB written -----------------------------------------------
dmsnap create "$N" --origin "$ORIG" --overlay-size 1M --overlay-dir "$W/ovl"
check overflow-create "exit $?" [ $? -eq 0 ]
dd_to_snap if=/dev/urandom bs=64k count=64 conv=fsync 2>"$W/dd.err"
rc=$?
echo "dd into the full snapshot said: $(tr '\n' ' ' <"$W/dd.err")"
check overflow-write-fails "dd exit $rc" [ $rc -ne 0 -a -b "/dev/mapper/$N" ]
st=$(dmsnap status "$N")
echo "status when full: $st"
case $st in "$N: Overflow"*) ok overflow-status ;; *) bad overflow-status "got '$st'" ;; esac
raw=$(dmsnap status --raw "$N")
check overflow-raw "got '$raw'" [ "$raw" = "0 $SECTORS snapshot Overflow" ]
got=$(dd if="/dev/mapper/$N" bs=64k skip=100 count=1 2>/dev/null | md5sum)
want=$(dd if="$W/origin.img" bs=64k skip=100 count=1 2>/dev/null | md5sum)
check overflow-reads-work "unwritten area reads differ from the origin" [ "$got" = "$want" ]
if [ $have_dmsetup = 1 ]; then
	a=$(dmsetup status "$N" 2>&1)
	check parity-overflow "dmsetup '$a' vs dmsnap '$raw'" [ "$a" = "$raw" ]
fi
dmsnap remove "$N"
rc=$?
check overflow-remove "exit $rc, left: '$(ls "$W/ovl")' '$(all_devs)'" \
	[ $rc -eq 0 -a ! -e "$W/ovl/$N.overlay" -a -z "$(all_devs)" ]

# --- --cow DEV and store modes: remove must not touch a COW it did not make -----------------
dd if=/dev/zero of="$W/cow.img" bs=1M count=2 2>/dev/null
COW=$(losetup -f)
losetup "$COW" "$W/cow.img"
dmsnap create "$N" --origin "$ORIG" --cow "$COW" --transient --chunk 16
check transient-create "exit $?" [ $? -eq 0 ]
got=$(dmsnap table "$N")
check transient-table "got '$got'" [ "$got" = "0 $SECTORS snapshot $OMM $(devno "$COW") N 16" ]
dmsnap remove "$N"
check cow-kept "the user's COW was detached or deleted" [ -f "$W/cow.img" -a "$(loop_of "$W/cow.img")" = "$COW" ]
# A COW the user gave on a file that happens to be named like dmsnap's own overlay: still the
# user's, never detached or deleted.
dd if=/dev/zero of="$W/ovl/$N.overlay" bs=1M count=2 2>/dev/null
UCOW=$(losetup -f)
losetup "$UCOW" "$W/ovl/$N.overlay"
dmsnap create "$N" --origin "$ORIG" --cow "$UCOW"
check user-overlay-create "exit $?" [ $? -eq 0 ]
dmsnap remove "$N"
check user-overlay-kept "the user's $N.overlay was detached or deleted" [ -f "$W/ovl/$N.overlay" -a "$(loop_of "$W/ovl/$N.overlay")" = "$UCOW" ]
losetup -d "$UCOW"
rm -f "$W/ovl/$N.overlay"
dd if=/dev/zero of="$COW" bs=64k count=1 conv=fsync 2>/dev/null # forget the transient's data
dmsnap create "$N" --origin "$ORIG" --cow "$COW" --persistent
got=$(dmsnap table "$N")
check persistent-table "got '$got'" [ "$got" = "0 $SECTORS snapshot $OMM $(devno "$COW") P 8" ]
# Without overflow tolerance a full COW drops the snapshot: status says Invalid.
dd_to_snap if=/dev/urandom bs=64k count=64 conv=fsync 2>/dev/null
st=$(dmsnap status "$N")
echo "persistent when full: $st"
case $st in "$N: Invalid"*) ok persistent-invalid ;; *) bad persistent-invalid "got '$st'" ;; esac
dmsnap remove "$N"
check persistent-remove "exit $?" [ $? -eq 0 ]
losetup -d "$COW"

# --- a table the kernel rejects leaves nothing behind -------------------------------------
out=$(dmsnap create "$N" --origin "$ORIG" --overlay-size 4M --overlay-dir "$W/ovl" --chunk 2097152 2>&1)
rc=$?
echo "rejected create said: $out"
check reject-fails "exit $rc" [ $rc -eq 1 ]
case $out in *"table: 0 $SECTORS snapshot"*) ok reject-says-table ;; *) bad reject-says-table "got '$out'" ;; esac
check reject-clean "left: device '$(all_devs)' file '$(ls "$W/ovl")' loop '$(loop_of "$W/ovl/$N.overlay")'" \
	[ -z "$(all_devs)" -a -z "$(ls "$W/ovl")" -a -z "$(loop_of "$W/ovl/$N.overlay")" -a ! -e "/dev/mapper/$N" ]

# --- clean up -----------------------------------------------------------------------------
losetup -d "$ORIG"
[ $mounted = 1 ] && umount "$W"
echo "dmsnap-check: $pass passed, $fail failed"
[ $fail -eq 0 ]
