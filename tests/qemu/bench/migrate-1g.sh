# Benchmark (mk/bench.sh migrate, not part of make test): a live boot of a 1 GiB root image
# (built by mk/bench.sh into build/bench-1g/), then in the same boot two copies of the live
# root, each onto its own fresh (never written, sparse) 2 GiB virtual disk: `dd` from
# /dev/mapper/live-rw (page cache dropped first, conv=fsync) and `migrate --no-grow --keep-live`
# (page cache dropped first; it flushes the array and the target before it returns), in the
# order MIGRATE_ORDER gives (dd-first or migrate-first; mk/bench.sh alternates it per boot).
# Both arms copy the same bytes from the same live stack and end with the same flush;
# --keep-live keeps live-rw for the arm that comes after migrate. Prints "BENCH dd SECONDS"
# and "BENCH migrate SECONDS" (from /proc/uptime) and migrate's own lines.
DESC="migrate vs dd, 1 GiB image, ${MIGRATE_ORDER:-dd-first}"
MEDIUM=bench-1g/live-flash.img
TIMEOUT=900
EXPECT="migrate dd"
prepare() {
	truncate -s 2G "$RUNDIR/dd.img" "$RUNDIR/mig.img"
	add_disk "$RUNDIR/dd.img" DDTARGET
	add_disk "$RUNDIR/mig.img" MIGTARGET
}
guest() {
	echo "ORDER=${MIGRATE_ORDER:-dd-first}"
	cat <<'G'
up() { cut -d' ' -f1 /proc/uptime; }
bytes=$(($(cat /sys/block/md7/size) * 512))
DD=$(disk_by_serial DDTARGET) MIG=$(disk_by_serial MIGTARGET)
echo "array: $((bytes >> 20)) MiB; targets $DD (dd) $MIG (migrate)"
arm_dd() {
	sync; echo 3 >/proc/sys/vm/drop_caches
	t0=$(up)
	if dd if=/dev/mapper/live-rw of="$DD" bs=1M count=$((bytes >> 20)) conv=fsync 2>/tmp/dd.out; then ok dd; else fail dd "$(tail -n 1 /tmp/dd.out)"; fi
	t1=$(up)
	echo "BENCH dd $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
}
arm_migrate() {
	sync; echo 3 >/proc/sys/vm/drop_caches
	t0=$(up)
	if migrate --yes --no-bootloader --no-grow --keep-live "$MIG" >/tmp/m.out 2>&1; then ok migrate; else fail migrate "$(tail -n 1 /tmp/m.out)"; fi
	t1=$(up)
	echo "BENCH migrate $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
	grep -v ' recover ' /tmp/m.out | sed 's/^/BENCH-LOG /'
}
if [ "$ORDER" = migrate-first ]; then arm_migrate; arm_dd; else arm_dd; arm_migrate; fi
G
}
verify() {
	tr -d '\r' <"$RUNDIR/console.log" | grep -a '^BENCH' | sed 's/^BENCH-LOG /  /'
}
