# A 32 MiB overlay and 64 MiB written: writes fail with EIO, the system stays up, and the
# snapshot reports Overflow.
DESC="rd.live.overlay.size=32, write 64 MiB → EIO, Overflow, still up"
APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image rd.live.overlay.size=32"
EXPECT="root-md7 write-fails still-up overflow"
guest() {
	cat <<'G'
check_live_root
dmesg -n 1
if dd if=/dev/zero of=/root/big bs=1M count=64 conv=fsync 2>/tmp/dd.err; then
	fail write-fails "64 MiB went into a 32 MiB overlay"
else
	cat /tmp/dd.err
	ok write-fails
fi
sync
check still-up sh -c 'echo 3 > /proc/sys/vm/drop_caches; test -s /etc/hostname && cat /bin/busybox >/dev/null'
st=$(snap_status 2>&1)
echo "snapshot status: $st"
case $st in
*Overflow*) ok overflow ;;
*) fail overflow "status: $st" ;;
esac
G
}
