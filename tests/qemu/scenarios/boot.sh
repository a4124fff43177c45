# The default live boot: root on md7 whose only member is live-rw, writes land in the RAM overlay,
# the flash stays byte-for-byte unchanged (the runner's FLASH_UNCHANGED check).
# No liveroot.stamps on the command line: no liveroot-stamp line on the console (ram.sh asks).
DESC="LABEL=LIVE boot, root on md7 over live-rw, writes go to the overlay, no stamps unasked"
EXPECT="root-md7 md7-member-live-rw md7-no-superblock write-to-overlay"
guest() {
	cat <<'G'
check_live_root
check md7-no-superblock grep -qx none /sys/block/md7/md/metadata_version
cat /proc/mdstat
a1=$(snap_allocated)
dd if=/dev/urandom of=/root/written bs=64k count=64 2>/dev/null && sync
a2=$(snap_allocated)
echo "overlay allocated: before ${a1:-?} after ${a2:-?}"
if [ -n "$a1" ] && [ -n "$a2" ] && [ "$a2" -gt "$a1" ] && [ -s /root/written ]; then
	ok write-to-overlay
else
	fail write-to-overlay "allocated ${a1:-?} -> ${a2:-?} ($(snap_status 2>&1))"
fi
G
}
verify() {
	grep -aq 'liveroot-stamp' "$RUNDIR/console.log" && problem "liveroot-stamp lines without liveroot.stamps"
	return 0
}
