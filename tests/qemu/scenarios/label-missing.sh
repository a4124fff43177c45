# No medium carries the label: a clear error line, then a shell (no kernel panic).
DESC="unknown label → error line and a shell"
APPEND="root=live:LABEL=NOSUCHLABEL rd.live.image"
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
}
