# Benchmark (mk/bench.sh migrate, not part of make test): a live boot of a 1 GiB root image
# (built by mk/bench.sh into build/bench-1g/), then in the same boot and onto the same 2 GiB
# virtual disk: dd of the array's bytes (/dev/md7, 1 GiB, page cache dropped first, fsync'd),
# then migrate (page cache dropped first). Prints "BENCH dd SECONDS" and "BENCH migrate SECONDS"
# (from /proc/uptime) and migrate's own lines.
DESC="migrate vs dd, 1 GiB image"
MEDIUM=bench-1g/live-flash.img
TIMEOUT=900
EXPECT="migrate"
prepare() {
	truncate -s 2G "$RUNDIR/target.img"
	add_disk "$RUNDIR/target.img" TARGET
}
guest() {
	cat <<'G'
TARGET=$(disk_by_serial TARGET)
up() { cut -d' ' -f1 /proc/uptime; }
bytes=$(($(cat /sys/block/md7/size) * 512))
echo "array: $((bytes >> 20)) MiB, target $TARGET $(($(cat /sys/block/${TARGET#/dev/}/size) >> 11)) MiB"
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(up)
dd if=/dev/md7 of="$TARGET" bs=1M count=$((bytes >> 20)) conv=fsync 2>/dev/null
t1=$(up)
echo "BENCH dd $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(up)
if migrate --yes "$TARGET" >/tmp/m.out 2>&1; then ok migrate; else fail migrate "$(tail -n 1 /tmp/m.out)"; fi
t1=$(up)
echo "BENCH migrate $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
grep -v ' recover ' /tmp/m.out | sed 's/^/BENCH-LOG /'
G
}
verify() {
	tr -d '\r' <"$RUNDIR/console.log" | grep -a '^BENCH' | sed 's/^BENCH-LOG /  /'
}
