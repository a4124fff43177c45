# No medium carries the label: a clear error line, then a shell (no kernel panic).
DESC="unknown label → error line and a shell"
APPEND="root=live:LABEL=NOSUCHLABEL rd.live.image rd.retry=5"
EXPECT="shell-works"
drive() {
	if ! wait_for 'NOSUCHLABEL.*(not found|no such|cannot find|missing|timed out|no device)' "$TIMEOUT"; then
		problem "no error line naming LABEL=NOSUCHLABEL"
		return
	fi
	sleep 3
	# Quoted so the echo of the typed line does not itself look like a marker.
	send 'echo LIVEROOT-TEST" ok" shell-works'
	wait_for 'LIVEROOT-TEST ok shell-works' 30
	qemu_quit
	ENDED_BY_DRIVE=1
}
verify() {
	grep -aq 'sample-os: up' "$RUNDIR/console.log" && problem "the sample OS booted anyway"
	# The same line in the kernel log (the console shows printk with its timestamp).
	tr -d '\r' <"$RUNDIR/console.log" | grep -aqE '^\[ *[0-9.]+\] liveroot: find-medium: .*NOSUCHLABEL' ||
		problem "the error line is not in the kernel log"
}
